"""The `ddescan` command: a thin layer over scanner.api and scanner.config.

All scanning is `scan_path`; all judgement is in the ScanReport; this module only finds the
inputs, picks a renderer and turns the verdicts into an exit status.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import re
import stat
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click

from scanner import __version__
from scanner.api import scan_path
from scanner.config import (
    LOCKED_VERDICTS,
    ConfigError,
    load_config,
    locked_verdict,
    with_overrides,
)
from scanner.isolation import (
    InProcessScanner,
    IsolatedScanner,
    IsolationError,
    Job,
    PathJob,
    Prepared,
    Scanner,
)
from scanner.model import (
    FileFormat,
    Location,
    Problem,
    ProblemKind,
    ScanConfig,
    ScanReport,
    Verdict,
)
from scanner.render import ExitCode, RunSummary, csv_report, html_report, json_report
from scanner.render import clamscan as clamscan_render
from scanner.rulecheck import CORPUS_DIR, check_rules, run_rule_tests
from scanner.yara_stage import SHIPPED_RULES_DIR, RuleSet, describe_rules, load_rules

if TYPE_CHECKING:
    from rich.text import Text

FORMATS = ("text", "json", "jsonl", "clamscan", "csv", "html")

# Scans run in worker processes with hard limits (scanner.isolation) unless --no-isolation
# is given. Tests that replace `scan_path` with an in-process stand-in turn this off.
ISOLATE_BY_DEFAULT = True

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
        # rich costs tens of milliseconds to import: only the text format pays for it.
        from rich.text import Text

        from scanner.render import text as text_render

        self.render = text_render
        self.separator = Text("\n")
        self.console = text_render.make_console(stream, color) if color else None
        self.quiet = quiet
        self.first = True

    def _write(self, text: Text) -> None:
        if self.console is not None:
            self.render.write_text(self.console, text)
        else:
            self.stream.write(text.plain)
        self.stream.flush()

    def file_done(self, report: ScanReport) -> None:
        if self.quiet and report.verdict is Verdict.CLEAN:
            return
        text = self.render.report_text(report)
        if not self.first:
            text = self.separator + text
        self.first = False
        self._write(text)

    def finish(self, summary: RunSummary) -> None:
        text = self.render.summary_text(summary)
        self._write(text if self.first else self.separator + text)


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


class _CsvOutput(_Output):
    """One row per finding (a row per file without findings), streamed as files finish."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self.stream.write(csv_report.header_line())

    def file_done(self, report: ScanReport) -> None:
        self.stream.write(csv_report.report_lines(report))
        self.stream.flush()


class _HtmlOutput(_Output):
    """A static page: its head at once, a section per file as it finishes, the summary."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self.stream.write(html_report.page_start(__version__))

    def file_done(self, report: ScanReport) -> None:
        self.stream.write(html_report.report_section(report))
        self.stream.flush()

    def finish(self, summary: RunSummary) -> None:
        self.stream.write(html_report.page_end(summary))
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
    if output_format == "csv":
        return _CsvOutput(stream)
    if output_format == "html":
        return _HtmlOutput(stream)
    return _JsonlOutput(stream)


def build_config(
    config_path: str | None,
    allow_services: tuple[str, ...],
    passwords: tuple[str, ...],
    max_depth: int | None,
    timeout: float | None,
    max_file_size: int | None,
    password_file: str | None = None,
    locked: str | None = None,
) -> ScanConfig:
    """Defaults, then the TOML file, then the command line. Raises ConfigError."""
    if password_file is not None:
        passwords = (*passwords, *read_password_file(password_file))
    limits: dict[str, float] = {}
    if max_depth is not None:
        limits["max_depth"] = max_depth
    if timeout is not None:
        limits["timeout_seconds"] = timeout
    if max_file_size is not None:
        limits["max_input_bytes"] = max_file_size
    config = load_config(config_path)
    verdict = None if locked is None else locked_verdict(locked)
    return with_overrides(config, allow_services, passwords, limits or None, verdict)


def read_password_file(path: str) -> tuple[str, ...]:
    """One password per line, UTF-8 (a BOM is allowed); the line break is not part of the
    password, every other character is; empty lines are skipped. Raises ConfigError."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read password file {path}: {error}") from error
    lines = (line.removesuffix("\r") for line in text.split("\n"))
    return tuple(line for line in lines if line)


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
@click.option(
    "--password-file",
    type=click.Path(path_type=str, dir_okay=False),
    default=None,
    metavar="FILE",
    help="Passwords to try on encrypted documents, one per line (UTF-8).",
)
@click.option(
    "--locked-verdict",
    "locked",
    type=click.Choice(LOCKED_VERDICTS),
    default=None,
    help=(
        "Verdict of a file whose only trouble is something no password opened (an "
        "encrypted document or archive member). Default: suspicious."
    ),
)
@click.option("--max-depth", type=click.IntRange(min=1), help="Deepest nesting to open.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    help=(
        "Time limit per file, in seconds (default 60). A scan still running at the limit "
        "is killed and the file reported with a timeout error; the scan itself stops a "
        "little earlier where it can, to report what it found so far."
    ),
)
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes scanning in parallel (default 1). Reports keep input order.",
)
@click.option(
    "--no-isolation",
    is_flag=True,
    help=(
        "Scan inside this process, without worker processes, hard time limit or memory "
        "cap (for debugging)."
    ),
)
@click.option(
    "--max-file-size",
    type=ByteSize(),
    help="Largest file to inspect, in bytes (suffix K, M or G allowed).",
)
@click.option(
    "--rules",
    "rule_dirs",
    multiple=True,
    metavar="DIR",
    type=click.Path(path_type=str, file_okay=False),
    help="A folder of YARA rules (.yar/.yara, subfolders included) to run with the shipped "
    "ones. Repeatable.",
)
@click.option("--no-yara", is_flag=True, help="Skip the YARA stage (parsers only).")
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
    password_file: str | None,
    locked: str | None,
    max_depth: int | None,
    timeout: float | None,
    max_file_size: int | None,
    jobs: int | None,
    no_isolation: bool,
    rule_dirs: tuple[str, ...],
    no_yara: bool,
    quiet: bool,
    no_color: bool,
) -> None:
    """Scan FILE_OR_DIR... for DDE payloads; directories are walked recursively in sorted
    order, without following symbolic links to directories found inside them."""
    try:
        config = build_config(
            config_path,
            allow_services,
            passwords,
            max_depth,
            timeout,
            max_file_size,
            password_file=password_file,
            locked=locked,
        )
        config = _with_rules(config, rule_dirs, no_yara)
        if config.yara_enabled:
            # Compiled once here, so a broken rule stops the run before any file is read.
            load_rules(config.rule_dirs)
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
    if no_isolation and jobs is not None:
        raise click.UsageError("--jobs needs worker processes; it cannot go with --no-isolation")
    output = _make_output(output_format, stream, _wants_color(no_color, stream), quiet)
    runner = _make_runner(config, jobs or 1, ISOLATE_BY_DEFAULT and not no_isolation)
    summary = RunSummary()
    directories: list[str] = []
    try:
        for report in runner.scan(_jobs(paths, directories)):
            summary = summary.add(report)
            output.file_done(report)
        for _ in directories:
            summary = summary.with_directory()
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
    except IsolationError as error:
        click.echo(f"ddescan: {error}", err=True)
        ctx.exit(int(ExitCode.ERROR))
    finally:
        runner.close()
    ctx.exit(int(summary.exit_code))


def _jobs(paths: tuple[str, ...], directories: list[str]) -> Iterator[Job]:
    """The scan jobs for every input, in order; directories are listed in `directories`."""
    for entry in _iter_inputs(paths):
        if entry.kind is _EntryKind.DIRECTORY:
            directories.append(entry.path)
        elif entry.kind is _EntryKind.FILE:
            yield PathJob(entry.path)
        else:
            yield Prepared(_unscanned_report(entry))


def _make_runner(config: ScanConfig, jobs: int, isolated: bool) -> Scanner:
    if isolated:
        return IsolatedScanner(config, processes=jobs, start_method=_worker_start_method())
    # Looked up at call time, so that a stand-in for scan_path (tests) is used.
    return InProcessScanner(config, scan_file=lambda path, cfg: scan_path(path, cfg))


def _worker_start_method() -> str | None:
    """How the command starts its workers: a plain fork on Linux, else the default.

    This process has already imported the scanner and compiled the rules, and it runs no
    other thread, so a fork hands a worker all of that in milliseconds; the fork server
    would first start a fresh interpreter that imports everything again (about half a
    second before the first result). The hard time limit and the memory cap are the same
    either way: they are enforced on the worker process, however it was started.
    """
    return "fork" if sys.platform == "linux" else None


def _with_rules(config: ScanConfig, rule_dirs: tuple[str, ...], no_yara: bool) -> ScanConfig:
    """The YARA options of the command line on top of the configuration file's."""
    return dataclasses.replace(
        config,
        rule_dirs=(*config.rule_dirs, *rule_dirs),
        yara_enabled=config.yara_enabled and not no_yara,
    )


def _rule_set(config_path: str | None, rule_dirs: tuple[str, ...]) -> RuleSet:
    """The compiled rules for a `rules` command; a broken rule or configuration -> exit 2."""
    try:
        config = _with_rules(load_config(config_path), rule_dirs, False)
        return load_rules(config.rule_dirs)
    except ConfigError as error:
        raise ConfigFailure(str(error)) from None


def _shown_path(path: str) -> str:
    """Shipped rule files relative to the source tree (yara/...), others as given."""
    shipped = SHIPPED_RULES_DIR.parent
    return os.path.relpath(path, shipped) if Path(path).is_relative_to(shipped) else path


_RULE_DIRS_OPTION = click.option(
    "--rules",
    "rule_dirs",
    multiple=True,
    metavar="DIR",
    type=click.Path(path_type=str, file_okay=False),
    help="A folder of YARA rules to add to the shipped ones (yara/). Repeatable.",
)
_RULES_CONFIG_OPTION = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=str, dir_okay=False),
    default=None,
    help="TOML configuration file (its [yara] rule_dirs are added).",
)


@main.group(name="rules")
def rules_group() -> None:
    """The YARA rules: those shipped in yara/ and those of --rules folders.

    \b
    list   name, file, technique and severity of every rule
    check  every rule compiles; shipped rules have complete metadata and
           existing samples (exit 1 otherwise, 2 if a rule does not compile)
    test   every shipped rule fires on its positive sample, not on its negative
           one, and on no clean look-alike of the corpus (exit 1 otherwise)
    """


@rules_group.command(name="list")
@_RULE_DIRS_OPTION
@_RULES_CONFIG_OPTION
def rules_list(rule_dirs: tuple[str, ...], config_path: str | None) -> None:
    """Name, file, technique and severity of every rule."""
    ruleset = _rule_set(config_path, rule_dirs)
    try:
        infos = describe_rules(ruleset)
    except ConfigError as error:
        raise ConfigFailure(str(error)) from None
    rows = [("NAME", "FILE", "TECHNIQUE", "SEVERITY")]
    rows.extend(
        (
            info.name,
            _shown_path(info.path),
            ",".join(technique.value for technique in info.techniques) or "-",
            info.severity.label if info.severity is not None else "-",
        )
        for info in infos
    )
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        click.echo("  ".join([*cells, row[3]]))


@rules_group.command(name="check")
@_RULE_DIRS_OPTION
@_RULES_CONFIG_OPTION
@click.pass_context
def rules_check(ctx: click.Context, rule_dirs: tuple[str, ...], config_path: str | None) -> None:
    """Compile every rule; check the shipped rules' metadata and samples."""
    ruleset = _rule_set(config_path, rule_dirs)
    try:
        report = check_rules(ruleset, CORPUS_DIR)
    except ConfigError as error:
        raise ConfigFailure(str(error)) from None
    for failure in report.failures:
        click.echo(f"FAIL {failure}")
    for rule in report.rules:
        where = f"{rule.info.name} ({_shown_path(rule.info.path)})"
        for failure in rule.failures:
            click.echo(f"FAIL {where}: {failure}")
        for note in rule.notes:
            click.echo(f"NOTE {where}: {note}")
    failed = sum(1 for rule in report.rules if rule.failures) + len(report.failures)
    click.echo(f"{len(report.rules)} rules checked, {failed} with a failure.")
    ctx.exit(0 if report.ok else 1)


@rules_group.command(name="test")
@click.option(
    "--corpus",
    "corpus_dir",
    type=click.Path(path_type=str, file_okay=False, exists=True),
    default=None,
    help="Corpus folder (manifest.json and samples/). Default: the source tree's corpus/.",
)
@click.pass_context
def rules_test(ctx: click.Context, corpus_dir: str | None) -> None:
    """Prove the shipped rules on the corpus; exit 1 naming each rule that failed and why."""
    corpus = Path(corpus_dir) if corpus_dir else CORPUS_DIR
    try:
        report = check_rules(load_rules(()), corpus)
        results = run_rule_tests(corpus)
    except ConfigError as error:
        raise ConfigFailure(str(error)) from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ConfigFailure(f"cannot read the corpus at {corpus}: {error}") from None
    for failure in report.failures:
        click.echo(f"FAIL {failure}")
    checks = {(rule.info.path, rule.info.name): rule.failures for rule in report.rules}
    failed = 0
    for result in results:
        failures = [*checks.get((result.info.path, result.info.name), ()), *result.failures]
        where = f"{result.info.name} ({_shown_path(result.info.path)})"
        for failure in failures:
            click.echo(f"FAIL {where}: {failure}")
        if failures:
            failed += 1
        else:
            click.echo(f"ok   {where}: fires on {len(result.fired_on)} corpus sample(s)")
    click.echo(f"{len(results)} shipped rules tested, {failed} failed.")
    ctx.exit(1 if failed or report.failures else 0)
