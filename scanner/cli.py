"""The `ddescan` command: a thin layer over scanner.api and scanner.config.

All scanning is `scan_path`; all judgement is in the ScanReport; this module only finds the
inputs, picks a renderer and turns the verdicts into an exit status.
"""

from __future__ import annotations

import enum
import os
import re
import stat
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

import click
from rich.text import Text

from scanner import __version__
from scanner.api import scan_path
from scanner.config import ConfigError, load_config, with_overrides
from scanner.model import (
    FileFormat,
    Location,
    Problem,
    ProblemKind,
    ScanConfig,
    ScanReport,
    Verdict,
)
from scanner.render import ExitCode, RunSummary, json_report
from scanner.render import clamscan as clamscan_render
from scanner.render import text as text_render

FORMATS = ("text", "json", "jsonl", "clamscan")

_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)
_SIZE_FACTORS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


class ByteSize(click.ParamType):  # type: ignore[type-arg]  # generic in newer click
    """A size in bytes, with an optional K, M or G suffix (powers of 1024)."""

    name = "SIZE"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> int:
        if isinstance(value, int):
            number = value
        else:
            match = _SIZE.match(str(value))
            if match is None:
                self.fail(f"{value!r} is not a size such as 1048576, 512K, 20M or 1G", param, ctx)
            suffix = (match.group(2) or "").lower()[:1]
            number = int(match.group(1)) * _SIZE_FACTORS[suffix]
        if number <= 0:
            self.fail("the size must be greater than 0", param, ctx)
        return number


class ConfigFailure(click.ClickException):
    """A configuration problem: reported in one line, exit status 2 like any usage error."""

    exit_code = int(ExitCode.ERROR)


class _EntryKind(enum.Enum):
    FILE = "file"
    DIRECTORY = "directory"
    SKIPPED = "skipped"
    UNREADABLE = "unreadable"


@dataclass(frozen=True)
class _Entry:
    kind: _EntryKind
    path: str
    reason: str = ""


def _special_kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _classify(path: str, top_level: bool) -> _Entry:
    """What to do with one path. Symbolic links to directories are followed only when
    named on the command line; special files are never opened (a FIFO would block)."""
    try:
        link = os.lstat(path)
        target = os.stat(path)
    except OSError:
        # Missing or a dangling link: scan_path reports why it cannot be read.
        return _Entry(_EntryKind.FILE, path)
    if stat.S_ISDIR(target.st_mode):
        if stat.S_ISLNK(link.st_mode) and not top_level:
            return _Entry(_EntryKind.SKIPPED, path, "symbolic link to a directory; not followed")
        return _Entry(_EntryKind.DIRECTORY, path)
    if stat.S_ISREG(target.st_mode):
        return _Entry(_EntryKind.FILE, path)
    return _Entry(_EntryKind.SKIPPED, path, f"{_special_kind(target.st_mode)}; not inspected")


def _sorted_children(directory: str) -> list[str] | OSError:
    try:
        with os.scandir(directory) as entries:
            names = sorted(entry.name for entry in entries)
    except OSError as error:
        return error
    return [os.path.join(directory, name) for name in names]


def _iter_inputs(paths: tuple[str, ...]) -> Iterator[_Entry]:
    """Every input, in order: arguments as given, directory contents sorted by name,
    depth first. Uses an explicit stack, so directory depth cannot exhaust recursion."""
    for argument in paths:
        entry = _classify(argument, top_level=True)
        if entry.kind is not _EntryKind.DIRECTORY:
            yield entry
            continue
        stack: list[Iterator[str]] = []
        pending: _Entry | None = entry
        while pending is not None or stack:
            if pending is not None:
                yield pending
                children = _sorted_children(pending.path)
                if isinstance(children, OSError):
                    reason = children.strerror or str(children)
                    yield _Entry(_EntryKind.UNREADABLE, pending.path, f"cannot list: {reason}")
                else:
                    stack.append(iter(children))
                pending = None
                continue
            child = next(stack[-1], None)
            if child is None:
                stack.pop()
                continue
            entry = _classify(child, top_level=False)
            if entry.kind is _EntryKind.DIRECTORY:
                pending = entry
            else:
                yield entry


def _unscanned_report(entry: _Entry) -> ScanReport:
    """A report for an input that was deliberately not opened, or a directory that could
    not be listed. Same shape as scanner.api's reports for unreadable files."""
    unreadable = entry.kind is _EntryKind.UNREADABLE
    return ScanReport(
        path=entry.path,
        size=0,
        sha256="",
        md5="",
        format=FileFormat.UNSUPPORTED,
        verdict=Verdict.ERROR if unreadable else Verdict.CLEAN,
        severity=None,
        findings=(),
        problems=(
            Problem(
                ProblemKind.MALFORMED if unreadable else ProblemKind.UNSUPPORTED,
                entry.reason,
                Location((entry.path,)),
            ),
        ),
    )


class _Output:
    """Writes results as each file finishes, then whatever closes the run."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def file_done(self, report: ScanReport) -> None:
        raise NotImplementedError

    def finish(self, summary: RunSummary) -> None:
        pass


class _TextOutput(_Output):
    def __init__(self, stream: TextIO, color: bool, quiet: bool) -> None:
        super().__init__(stream)
        self.console = text_render.make_console(stream, color) if color else None
        self.quiet = quiet
        self.first = True

    def _write(self, text: Text) -> None:
        if self.console is not None:
            text_render.write_text(self.console, text)
        else:
            self.stream.write(text.plain)
        self.stream.flush()

    def file_done(self, report: ScanReport) -> None:
        if self.quiet and report.verdict is Verdict.CLEAN:
            return
        text = text_render.report_text(report)
        if not self.first:
            text = Text("\n") + text
        self.first = False
        self._write(text)

    def finish(self, summary: RunSummary) -> None:
        text = text_render.summary_text(summary)
        self._write(text if self.first else Text("\n") + text)


class _JsonlOutput(_Output):
    def file_done(self, report: ScanReport) -> None:
        self.stream.write(json_report.to_json_line(report) + "\n")
        self.stream.flush()


class _JsonOutput(_Output):
    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self.reports: list[ScanReport] = []

    def file_done(self, report: ScanReport) -> None:
        self.reports.append(report)

    def finish(self, summary: RunSummary) -> None:
        document = json_report.document_to_dict(self.reports, summary, __version__)
        self.stream.write(json_report.to_json_document(document) + "\n")
        self.stream.flush()


class _ClamscanOutput(_Output):
    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self.started = datetime.now()
        self.clock = time.monotonic()

    def file_done(self, report: ScanReport) -> None:
        self.stream.write(clamscan_render.result_line(report) + "\n")
        self.stream.flush()

    def finish(self, summary: RunSummary) -> None:
        block = clamscan_render.summary_block(
            summary, __version__, time.monotonic() - self.clock, self.started, datetime.now()
        )
        self.stream.write(block + "\n")
        self.stream.flush()


def _wants_color(no_color: bool, stream: TextIO) -> bool:
    if no_color or os.environ.get("NO_COLOR"):
        return False
    return stream.isatty()


def _make_output(output_format: str, stream: TextIO, color: bool, quiet: bool) -> _Output:
    if output_format == "text":
        return _TextOutput(stream, color, quiet)
    if output_format == "json":
        return _JsonOutput(stream)
    if output_format == "clamscan":
        return _ClamscanOutput(stream)
    return _JsonlOutput(stream)


def build_config(
    config_path: str | None,
    allow_services: tuple[str, ...],
    passwords: tuple[str, ...],
    max_depth: int | None,
    timeout: float | None,
    max_file_size: int | None,
) -> ScanConfig:
    """Defaults, then the TOML file, then the command line. Raises ConfigError."""
    limits: dict[str, float] = {}
    if max_depth is not None:
        limits["max_depth"] = max_depth
    if timeout is not None:
        limits["timeout_seconds"] = timeout
    if max_file_size is not None:
        limits["max_input_bytes"] = max_file_size
    config = load_config(config_path)
    return with_overrides(config, allow_services, passwords, limits or None)


_MAIN_HELP = """Pre-execution static scanner for DDE payloads (MITRE ATT&CK T1559.002) in
Office documents, RTF, CSV and mail.

\b
Exit status (the same as clamscan's, so mail filters can use it):
  0  every input is clean
  1  at least one input is malicious or suspicious
  2  an input could not be scanned (verdict "error"), or bad usage or configuration,
     and nothing was found. A finding wins over an error: 1 if both happen.
"""


@click.group(help=_MAIN_HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="ddescan")
def main() -> None:
    pass


@main.command(
    epilog=(
        "Exit status: 0 all clean, 1 something malicious or suspicious found, "
        "2 an input could not be scanned or bad usage/configuration (1 wins over 2)."
    )
)
@click.argument(
    "paths", nargs=-1, required=True, metavar="FILE_OR_DIR...", type=click.Path(path_type=str)
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(FORMATS),
    default=None,
    help=(
        "Output format. text: an account for analysts; jsonl: one JSON object per file "
        "per line, written as each file finishes; json: one document with all reports "
        "and a summary; clamscan: 'PATH: NAME FOUND' / 'PATH: OK' / 'PATH: MESSAGE ERROR' "
        "lines and a SCAN SUMMARY block. Default: text when standard output is a "
        "terminal, jsonl otherwise."
    ),
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=str, dir_okay=False),
    default=None,
    help="TOML configuration file ([dde] allowed_services, [limits] ...).",
)
@click.option(
    "--allow-service",
    "allow_services",
    multiple=True,
    metavar="NAME",
    help=(
        "A DDE data service that is legitimate here (an ERP or market-data link, e.g. "
        "SAPDDE): its links are reported as allowed, not malicious. Repeatable."
    ),
)
@click.option(
    "--password",
    "passwords",
    multiple=True,
    metavar="PW",
    help="A password to try on encrypted documents. Repeatable.",
)
@click.option("--max-depth", type=click.IntRange(min=1), help="Deepest nesting to open.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    help="Time budget per file, in seconds.",
)
@click.option(
    "--max-file-size",
    type=ByteSize(),
    help="Largest file to inspect, in bytes (suffix K, M or G allowed).",
)
@click.option(
    "--quiet",
    "-q",
    is_flag=True,
    help="text: list only files that are malicious, suspicious or had an error.",
)
@click.option(
    "--no-color",
    is_flag=True,
    help="text: never use color (also off when NO_COLOR is set or output is not a terminal).",
)
@click.pass_context
def scan(
    ctx: click.Context,
    paths: tuple[str, ...],
    output_format: str | None,
    config_path: str | None,
    allow_services: tuple[str, ...],
    passwords: tuple[str, ...],
    max_depth: int | None,
    timeout: float | None,
    max_file_size: int | None,
    quiet: bool,
    no_color: bool,
) -> None:
    """Scan FILE_OR_DIR... for DDE payloads; directories are walked recursively in sorted
    order, without following symbolic links to directories found inside them."""
    try:
        config = build_config(
            config_path, allow_services, passwords, max_depth, timeout, max_file_size
        )
    except ConfigError as error:
        raise ConfigFailure(str(error)) from None
    stream = sys.stdout
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is not None:
        # A path or payload with characters the terminal's encoding lacks must not end
        # the run with UnicodeEncodeError.
        reconfigure(errors="backslashreplace")
    if output_format is None:
        output_format = "text" if stream.isatty() else "jsonl"
    output = _make_output(output_format, stream, _wants_color(no_color, stream), quiet)
    summary = RunSummary()
    try:
        for entry in _iter_inputs(paths):
            if entry.kind is _EntryKind.DIRECTORY:
                summary = summary.with_directory()
                continue
            if entry.kind is _EntryKind.FILE:
                report = scan_path(entry.path, config)
            else:
                report = _unscanned_report(entry)
            summary = summary.add(report)
            output.file_done(report)
        output.finish(summary)
    except BrokenPipeError:
        # The reader went away (`ddescan scan . | head`): stop quietly, and keep Python
        # from complaining again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        ctx.exit(int(ExitCode.ERROR))
    except KeyboardInterrupt:
        click.echo("ddescan: interrupted", err=True)
        ctx.exit(int(ExitCode.ERROR))
    ctx.exit(int(summary.exit_code))
