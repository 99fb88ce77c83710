"""The `ddescan` command line (scanner.cli): inputs, formats, options and exit codes.

Most tests replace `scanner.cli.scan_path` with a stand-in that returns hand-built reports
for files whose names start with `mal`, `sap` or `err` (and scans everything else for
real), so the command's own logic is tested whatever the format parsers can do. The
`TestRealDetection` tests use a real CSV file and fail if the CSV DDE formula is not
detected.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from scanner import __version__, cli
from scanner.analysis import dde_finding
from scanner.api import scan_path as real_scan_path
from scanner.model import (
    DdeCall,
    Evidence,
    FileFormat,
    Finding,
    HostApplication,
    Location,
    Problem,
    ProblemKind,
    ScanConfig,
    ScanReport,
    Technique,
)
from scanner.walker import verdict_for

REPO = Path(__file__).resolve().parents[1]
CSV_PAYLOAD = "=cmd|'/c calc.exe'!A0\n"


def fake_report(path: str, config: ScanConfig) -> ScanReport:
    name = os.path.basename(path)
    findings: tuple[Finding, ...] = ()
    problems: tuple[Problem, ...] = ()
    here = Location((path,))
    if name.startswith("mal"):
        raw = "=cmd|'/c calc.exe'!A0"
        findings = (
            dde_finding(
                DdeCall("cmd", "/c calc.exe", "A0"),
                Technique.DDE_FORMULA,
                Evidence(raw, raw),
                here.at("A1"),
                HostApplication.EXCEL,
                config,
            ),
        )
    elif name.startswith("sap"):
        findings = (
            dde_finding(
                DdeCall("SAPDDE", "System", "Item1"),
                Technique.DDE_LINK,
                Evidence("SAPDDE|System!Item1", "SAPDDE|System!Item1"),
                here.child("xl/externalLinks/externalLink1.xml"),
                HostApplication.EXCEL,
                config,
            ),
        )
    elif name.startswith("err"):
        problems = (Problem(ProblemKind.MALFORMED, "truncated central directory", here),)
    else:
        return real_scan_path(path, config)
    relevant = [f.severity for f in findings if not f.allowed]
    return ScanReport(
        path=path,
        size=os.path.getsize(path),
        sha256="0" * 64,
        md5="0" * 32,
        format=FileFormat.XLSX,
        verdict=verdict_for(findings, problems),
        severity=max(relevant) if relevant else None,
        findings=findings,
        problems=problems,
    )


@pytest.fixture
def fake_scan(monkeypatch: pytest.MonkeyPatch) -> list[ScanConfig]:
    """Install the stand-in scanner; the list collects the config of every call."""
    seen: list[ScanConfig] = []

    def scan(path: str, config: ScanConfig | None = None) -> ScanReport:
        assert config is not None
        seen.append(config)
        return fake_report(path, config)

    monkeypatch.setattr(cli, "scan_path", scan)
    # The stand-in lives in this process: scan in-process so that it is used.
    monkeypatch.setattr(cli, "ISOLATE_BY_DEFAULT", False)
    return seen


def touch(directory: Path, *names: str) -> list[str]:
    paths = []
    for name in names:
        path = directory / name
        path.write_bytes(b"x" * 10)
        paths.append(str(path))
    return paths


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli.main, list(args), env=env)


def jsonl(result: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines()]


class TestExitCodes:
    def test_clean_is_0(self, tmp_path: Path, fake_scan: list[ScanConfig]) -> None:
        (tmp_path / "empty.docx").write_bytes(b"")
        result = run("scan", str(tmp_path / "empty.docx"))
        assert result.exit_code == 0
        assert jsonl(result)[0]["verdict"] == "clean"

    def test_malicious_is_1(self, tmp_path: Path, fake_scan: list[ScanConfig]) -> None:
        assert run("scan", *touch(tmp_path, "mal.xlsx")).exit_code == 1

    def test_suspicious_is_1(self, tmp_path: Path, fake_scan: list[ScanConfig]) -> None:
        result = run("scan", *touch(tmp_path, "sap.xlsx"))
        assert result.exit_code == 1
        assert jsonl(result)[0]["verdict"] == "suspicious"

    def test_error_alone_is_2(self, tmp_path: Path, fake_scan: list[ScanConfig]) -> None:
        assert run("scan", *touch(tmp_path, "err.xlsx", "clean.txt")).exit_code == 2

    def test_found_wins_over_error(self, tmp_path: Path, fake_scan: list[ScanConfig]) -> None:
        paths = touch(tmp_path, "err.xlsx", "mal.xlsx")
        result = run("scan", *paths, str(tmp_path / "missing.docx"))
        assert result.exit_code == 1
        assert [r["verdict"] for r in jsonl(result)] == ["error", "malicious", "error"]

    def test_bad_usage_is_2(self) -> None:
        assert run("scan").exit_code == 2
        assert run("scan", "--format", "xml", "x").exit_code == 2
        assert run("scan", "--max-depth", "0", "x").exit_code == 2
        assert run("scan", "--timeout", "-1", "x").exit_code == 2
        result = run("scan", "--max-file-size", "lots", "x")
        assert result.exit_code == 2
        assert "is not a size" in result.stderr
        assert run("frobnicate").exit_code == 2


class TestInputs:
    def test_nonexistent_path_gets_an_error_result_and_the_run_goes_on(
        self, tmp_path: Path
    ) -> None:
        (tmp_path / "after.docx").write_bytes(b"")
        missing = str(tmp_path / "nope.docx")
        result = run("scan", "--format", "jsonl", missing, str(tmp_path / "after.docx"))
        reports = jsonl(result)
        assert [r["path"] for r in reports] == [missing, str(tmp_path / "after.docx")]
        assert reports[0]["verdict"] == "error"
        assert reports[0]["errors"] == [
            {
                "kind": "malformed",
                "message": "cannot read file: No such file or directory",
                "location": {"path": [missing], "display": missing, "detail": ""},
            }
        ]
        assert reports[1]["verdict"] == "clean"
        assert result.exit_code == 2

    def test_directory_walk_is_sorted_depth_first_without_following_links(
        self, tmp_path: Path
    ) -> None:
        root = tmp_path / "root"
        (root / "a" / "m").mkdir(parents=True)
        touch(root, "b.csv", "A.txt", "c.txt")
        touch(root / "a", "z.txt")
        touch(root / "a" / "m", "x.txt")
        (root / "link_to_a").symlink_to(root / "a", target_is_directory=True)
        (root / "link_file").symlink_to(root / "c.txt")
        (root / "broken").symlink_to(root / "nowhere")
        os.mkfifo(root / "fifo")
        result = run("scan", "--format", "jsonl", str(root))
        reports = jsonl(result)
        assert [Path(str(r["path"])).relative_to(root).as_posix() for r in reports] == [
            "A.txt",
            "a/m/x.txt",
            "a/z.txt",
            "b.csv",
            "broken",
            "c.txt",
            "fifo",
            "link_file",
            "link_to_a",
        ]
        by_name = {Path(str(r["path"])).name: r for r in reports}
        assert by_name["link_to_a"]["verdict"] == "clean"
        assert by_name["link_to_a"]["errors"][0]["kind"] == "unsupported"
        assert by_name["link_to_a"]["errors"][0]["message"] == (
            "symbolic link to a directory; not followed"
        )
        assert by_name["fifo"]["errors"][0]["message"] == ("a named pipe; not inspected")
        assert by_name["broken"]["verdict"] == "error"
        assert by_name["link_file"]["size"] == 10
        assert result.exit_code == 2  # the dangling link could not be read

    def test_symlinked_directory_named_on_the_command_line_is_walked(self, tmp_path: Path) -> None:
        (tmp_path / "real").mkdir()
        touch(tmp_path / "real", "one.txt")
        (tmp_path / "alias").symlink_to(tmp_path / "real", target_is_directory=True)
        reports = jsonl(run("scan", str(tmp_path / "alias")))
        assert [r["path"] for r in reports] == [str(tmp_path / "alias" / "one.txt")]

    def test_unlistable_directory_gets_an_error_result(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        (tmp_path / "d").mkdir()
        real_scandir = os.scandir

        def scandir(path: str) -> object:
            if Path(path).name == "d":
                raise PermissionError(13, "Permission denied")
            return real_scandir(path)

        monkeypatch.setattr(os, "scandir", scandir)
        result = run("scan", str(tmp_path / "d"))
        report = jsonl(result)[0]
        assert report["verdict"] == "error"
        assert report["errors"][0]["message"] == "cannot list: Permission denied"
        assert result.exit_code == 2


class TestFormats:
    def test_default_is_jsonl_when_not_a_terminal(self, tmp_path: Path) -> None:
        (tmp_path / "e.docx").write_bytes(b"")
        result = run("scan", str(tmp_path / "e.docx"))
        assert json.loads(result.stdout)["format"] == "empty"

    def test_jsonl_one_line_per_file(self, tmp_path: Path, fake_scan: list[ScanConfig]) -> None:
        paths = touch(tmp_path, "mal1.xlsx", "clean.txt", "err.xlsx")
        result = run("scan", "--format", "jsonl", *paths)
        lines = result.stdout.splitlines()
        assert len(lines) == 3
        assert [json.loads(line)["path"] for line in lines] == paths
        finding = json.loads(lines[0])["findings"][0]
        assert finding["process"]["command_line"] == "cmd /c calc.exe"
        assert finding["location"]["display"] == f"{paths[0]} (A1)"

    def test_jsonl_streams_each_line_before_the_next_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        class Recorder(io.StringIO):
            flushed = ""

            def flush(self) -> None:
                self.flushed = self.getvalue()

            def isatty(self) -> bool:
                return False

        stream = Recorder()
        lines_before: list[int] = []

        def scan(path: str, config: ScanConfig | None = None) -> ScanReport:
            lines_before.append(stream.flushed.count("\n"))
            return fake_report(path, config or ScanConfig())

        monkeypatch.setattr(cli, "scan_path", scan)
        monkeypatch.setattr(cli, "ISOLATE_BY_DEFAULT", False)
        monkeypatch.setattr(sys, "stdout", stream)
        paths = touch(tmp_path, "mal.xlsx", "sap.xlsx", "err.xlsx")
        code = cli.main.main(["scan", "--format", "jsonl", *paths], standalone_mode=False)
        assert code == 1
        assert lines_before == [0, 1, 2]
        assert stream.flushed.count("\n") == 3

    def test_json_document(self, tmp_path: Path, fake_scan: list[ScanConfig]) -> None:
        paths = touch(tmp_path, "mal.xlsx", "clean.txt")
        result = run("scan", "--format", "json", *paths)
        document = json.loads(result.stdout)
        assert list(document) == ["schema_version", "tool", "reports", "summary"]
        assert document["tool"] == {"name": "ddescan", "version": __version__}
        assert [r["path"] for r in document["reports"]] == paths
        assert document["summary"]["files"] == 2
        assert document["summary"]["malicious"] == 1
        assert document["summary"]["exit_code"] == 1
        assert result.exit_code == 1

    def test_clamscan(self, tmp_path: Path, fake_scan: list[ScanConfig]) -> None:
        (tmp_path / "sub").mkdir()
        touch(tmp_path, "mal.xlsx", "clean.txt")
        touch(tmp_path / "sub", "err.xlsx")
        result = run("scan", "--format", "clamscan", str(tmp_path))
        lines = result.stdout.splitlines()
        assert lines[:4] == [
            f"{tmp_path}/clean.txt: OK",
            f"{tmp_path}/mal.xlsx: DDE.Formula.cmd FOUND",
            f"{tmp_path}/sub/err.xlsx: truncated central directory ERROR",
            "",
        ]
        assert lines[4] == "----------- SCAN SUMMARY -----------"
        assert lines[5:11] == [
            "Known viruses: 4",
            f"Engine version: ddescan {__version__}",
            "Scanned directories: 2",
            "Scanned files: 3",
            "Infected files: 1",
            "Total errors: 1",
        ]
        assert re.fullmatch(r"Time: \d+\.\d{3} sec \(\d+ m \d+ s\)", lines[13])
        assert result.exit_code == 1

    def test_text(self, tmp_path: Path, fake_scan: list[ScanConfig]) -> None:
        paths = touch(tmp_path, "mal.xlsx", "clean.txt")
        result = run("scan", "--format", "text", *paths)
        out = result.stdout
        assert f"{paths[0]}: MALICIOUS (severity high) - xlsx, 1 finding\n" in out
        assert (
            "    Opening it would run: EXCEL.EXE -> cmd.exe with command line: cmd /c calc.exe\n"
        ) in out
        assert "    Runtime rule: would alert on this process event\n" in out
        assert f"{paths[1]}: CLEAN - csv, 0 findings\n" in out
        assert out.endswith(
            "Scanned 2 files: 1 malicious, 0 suspicious, 1 clean, 0 errors; 1 finding.\n"
        )
        assert "\x1b" not in out

    def test_quiet_lists_only_findings_and_errors(
        self, tmp_path: Path, fake_scan: list[ScanConfig]
    ) -> None:
        paths = touch(tmp_path, "clean.txt", "mal.xlsx", "err.xlsx")
        out = run("scan", "--format", "text", "--quiet", *paths).stdout
        assert paths[0] not in out
        assert f"{paths[1]}: MALICIOUS" in out
        assert f"{paths[2]}: ERROR" in out
        assert "Scanned 3 files" in out

    def test_hostile_file_names_cannot_reach_the_terminal(
        self, tmp_path: Path, fake_scan: list[ScanConfig]
    ) -> None:
        name = "mal\x1b[2J\x1b]52;c;Y2FsYw==\x07\u202etxt.exe\n.xlsx"
        (tmp_path / name).write_bytes(b"x")
        shown = str(tmp_path) + "/mal\\x1b[2J\\x1b]52;c;Y2FsYw==\\x07\\u202etxt.exe\\n.xlsx"
        text = run("scan", "--format", "text", str(tmp_path)).stdout
        assert f"{shown}: MALICIOUS" in text
        clam = run("scan", "--format", "clamscan", str(tmp_path)).stdout
        assert clam.splitlines()[0] == f"{shown}: DDE.Formula.cmd FOUND"
        raw_jsonl = run("scan", "--format", "jsonl", str(tmp_path)).stdout
        for out in (text, clam, raw_jsonl):
            assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
        assert json.loads(raw_jsonl)["path"] == str(tmp_path / name)

    def test_color_only_on_a_terminal_and_never_with_no_color(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        class Tty(io.StringIO):
            def isatty(self) -> bool:
                return True

        monkeypatch.delenv("NO_COLOR", raising=False)
        assert cli._wants_color(False, Tty()) is True
        assert cli._wants_color(True, Tty()) is False
        assert cli._wants_color(False, io.StringIO()) is False
        monkeypatch.setenv("NO_COLOR", "1")
        assert cli._wants_color(False, Tty()) is False

    def test_terminal_gets_colored_text_by_default(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_scan: list[ScanConfig]
    ) -> None:
        class Tty(io.StringIO):
            def isatty(self) -> bool:
                return True

        monkeypatch.delenv("NO_COLOR", raising=False)
        paths = touch(tmp_path, "mal.xlsx")
        for extra, colored in (([], True), (["--no-color"], False)):
            stream = Tty()
            monkeypatch.setattr(sys, "stdout", stream)
            code = cli.main.main(["scan", *extra, *paths], standalone_mode=False)
            assert code == 1
            out = stream.getvalue()
            assert ("\x1b[" in out) is colored
            assert "MALICIOUS" in re.sub(r"\x1b\[[0-9;]*m", "", out)


class TestOptions:
    def test_allow_service_turns_a_finding_into_allowed(
        self, tmp_path: Path, fake_scan: list[ScanConfig]
    ) -> None:
        paths = touch(tmp_path, "sap.xlsx")
        assert run("scan", *paths).exit_code == 1
        result = run("scan", "--allow-service", "SAPDDE", "--allow-service", "BLP", *paths)
        assert result.exit_code == 0
        report = jsonl(result)[0]
        assert report["verdict"] == "clean"
        assert report["findings"][0]["allowed"] is True
        assert fake_scan[-1].allowed_dde_services == frozenset({"SAPDDE", "BLP"})

    def test_config_file(self, tmp_path: Path, fake_scan: list[ScanConfig]) -> None:
        config = tmp_path / "ddescan.toml"
        config.write_text(
            '[dde]\nallowed_services = ["SAPDDE"]\n\n[limits]\nmax_depth = 3\n',
            encoding="utf-8",
        )
        paths = touch(tmp_path, "sap.xlsx")
        result = run("scan", "--config", str(config), *paths)
        assert result.exit_code == 0
        assert fake_scan[-1].limits.max_depth == 3

    def test_config_limit_applies_to_a_real_scan(self, tmp_path: Path) -> None:
        config = tmp_path / "ddescan.toml"
        config.write_text("[limits]\nmax_input_bytes = 5\n", encoding="utf-8")
        paths = touch(tmp_path, "big.docx")
        result = run("scan", "--config", str(config), *paths)
        assert result.exit_code == 2
        assert jsonl(result)[0]["limits_hit"] == [
            {
                "kind": "limit",
                "message": "not fully inspected: file of 10 bytes is over the limit of 5 "
                "bytes; not inspected",
                "location": {"path": paths, "display": paths[0], "detail": ""},
            }
        ]

    def test_command_line_overrides_the_config_file(
        self, tmp_path: Path, fake_scan: list[ScanConfig]
    ) -> None:
        config = tmp_path / "ddescan.toml"
        config.write_text("[limits]\nmax_depth = 3\ntimeout_seconds = 9\n", encoding="utf-8")
        paths = touch(tmp_path, "clean.txt")
        args = ["--max-depth", "2", "--timeout", "2.5", "--max-file-size", "20M"]
        passwords = ["--password", "infected", "--password", "s3cret"]
        result = run("scan", "--config", str(config), *args, *passwords, *paths)
        assert result.exit_code == 0
        limits = fake_scan[-1].limits
        assert (limits.max_depth, limits.timeout_seconds) == (2, 2.5)
        assert limits.max_input_bytes == 20 * 1024 * 1024
        assert fake_scan[-1].passwords == ("infected", "s3cret")

    @pytest.mark.parametrize(
        ("content", "message"),
        [
            ("[bogus]\nx = 1\n", "unknown section(s) in {path}: bogus"),
            ("[limits]\nmax_depth = -1\n", "limit 'max_depth' must be a positive number"),
            ("[limits\n", "cannot read configuration {path}"),
            ('[dde]\nallowed_services = "SAPDDE"\n', "dde.allowed_services must be a list"),
        ],
    )
    def test_bad_config_is_a_clear_error(self, tmp_path: Path, content: str, message: str) -> None:
        config = tmp_path / "bad.toml"
        config.write_text(content, encoding="utf-8")
        (tmp_path / "e.docx").write_bytes(b"")
        result = run("scan", "--config", str(config), str(tmp_path / "e.docx"))
        assert result.exit_code == 2
        assert result.stdout == ""
        assert result.stderr.startswith("Error: ")
        assert message.format(path=config) in result.stderr
        assert "Traceback" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)

    def test_missing_config_file(self, tmp_path: Path) -> None:
        result = run("scan", "--config", str(tmp_path / "none.toml"), str(tmp_path))
        assert result.exit_code == 2
        assert "cannot read configuration" in result.stderr
        assert "Traceback" not in result.output

    def test_size_suffixes(self) -> None:
        size = cli.ByteSize()
        convert: Callable[[str], int] = lambda v: size.convert(v, None, None)  # noqa: E731
        assert convert("1048576") == 1048576
        assert convert("512K") == 512 * 1024
        assert convert("20m") == 20 * 1024 * 1024
        assert convert("1GiB") == 1024**3
        assert convert("3 MB") == 3 * 1024**2

    def test_version(self) -> None:
        result = run("--version")
        assert result.exit_code == 0
        assert result.stdout == f"ddescan, version {__version__}\n"

    def test_help_documents_default_format_and_exit_codes(self) -> None:
        text = " ".join(run("scan", "--help").stdout.split())
        assert "Default: text when standard output is a terminal, jsonl otherwise." in text
        assert "1 wins over 2" in text
        top = " ".join(run("--help").stdout.split())
        assert "A finding wins over an error" in top


class TestRealDetection:
    """End to end on a real CSV file: these fail if the CSV DDE formula is not detected."""

    def csv(self, tmp_path: Path) -> str:
        path = tmp_path / "invoice.csv"
        path.write_text(CSV_PAYLOAD, encoding="utf-8")
        return str(path)

    def test_csv_formula_detected(self, tmp_path: Path) -> None:
        path = self.csv(tmp_path)
        result = run("scan", "--format", "jsonl", path)
        report = jsonl(result)[0]
        assert report["verdict"] == "malicious", "CSV DDE formula not detected"
        assert report["format"] == "csv"
        finding = report["findings"][0]
        assert finding["technique"] == "dde-formula"
        assert finding["process"]["parent"] == "EXCEL.EXE"
        assert finding["process"]["image"] == "cmd.exe"
        assert finding["process"]["command_line"] == "cmd /c calc.exe"
        assert finding["location"]["path"][0] == path
        assert finding["kql"]["would_alert"] is True
        assert result.exit_code == 1

    def test_csv_clamscan_line(self, tmp_path: Path) -> None:
        path = self.csv(tmp_path)
        result = run("scan", "--format", "clamscan", path)
        assert result.stdout.splitlines()[0] == f"{path}: DDE.Formula.cmd FOUND"
        assert "Infected files: 1\n" in result.stdout
        assert result.exit_code == 1

    def test_csv_found_wins_over_a_missing_file(self, tmp_path: Path) -> None:
        result = run("scan", self.csv(tmp_path), str(tmp_path / "missing.csv"))
        assert [r["verdict"] for r in jsonl(result)] == ["malicious", "error"]
        assert result.exit_code == 1

    def test_csv_allow_service(self, tmp_path: Path) -> None:
        result = run("scan", "--allow-service", "cmd", self.csv(tmp_path))
        report = jsonl(result)[0]
        assert report["findings"][0]["allowed"] is True
        assert report["verdict"] == "clean"
        assert result.exit_code == 0


def test_python_dash_m_entry_point(tmp_path: Path) -> None:
    """A real process: `python -m scanner` parses arguments, scans, prints, exits."""
    (tmp_path / "empty.docx").write_bytes(b"")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("NO_COLOR", None)
    version = subprocess.run(
        [sys.executable, "-m", "scanner", "--version"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
        check=False,
    )
    assert version.returncode == 0
    assert version.stdout == f"ddescan, version {__version__}\n"
    scan = subprocess.run(
        [
            sys.executable,
            "-m",
            "scanner",
            "scan",
            "--format",
            "clamscan",
            str(tmp_path / "empty.docx"),
            str(tmp_path / "missing.docx"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
        check=False,
    )
    lines = scan.stdout.splitlines()
    assert lines[0] == f"{tmp_path}/empty.docx: OK"
    assert lines[1] == f"{tmp_path}/missing.docx: cannot read file: No such file or directory ERROR"
    assert "----------- SCAN SUMMARY -----------" in lines
    assert scan.returncode == 2
    assert scan.stderr == ""
