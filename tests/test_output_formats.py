"""`--format csv` and `--format html`: hostile payload text is defused for each context
(a cell starting with `=` stays text in a spreadsheet; markup stays text in a browser)."""

from __future__ import annotations

import csv
import io
import json
from html.parser import HTMLParser
from pathlib import Path

from click.testing import CliRunner

from scanner import cli
from scanner.analysis import dde_finding
from scanner.model import (
    DdeCall,
    Evidence,
    FileFormat,
    HostApplication,
    Location,
    Problem,
    ProblemKind,
    ScanConfig,
    ScanReport,
    Technique,
)
from scanner.render import RunSummary, summarize
from scanner.render.csv_report import HEADER, render_csv, report_rows
from scanner.render.html_report import render_html
from scanner.walker import verdict_for

HOSTILE_RAW = "=cmd|'/c calc.exe <script>alert(1)</script>\x1b[2J\u202eexe.txt'!A0"
HOSTILE_PATH = '=HYPERLINK("http://example.invalid")"><img src=x onerror=alert(1)>.csv'


def hostile_report() -> ScanReport:
    here = Location((HOSTILE_PATH,))
    finding = dde_finding(
        DdeCall("cmd", "/c calc.exe <script>alert(1)</script>\x1b[2J\u202eexe.txt", "A0"),
        Technique.DDE_FORMULA,
        Evidence(HOSTILE_RAW, HOSTILE_RAW),
        here.at("A1"),
        HostApplication.EXCEL,
        ScanConfig(),
    )
    problems = (Problem(ProblemKind.LIMIT, "+limit <b>hit</b>\r\nforged: OK", here),)
    return ScanReport(
        path=HOSTILE_PATH,
        size=10,
        sha256="ab" * 32,
        md5="cd" * 16,
        format=FileFormat.CSV,
        verdict=verdict_for((finding,), problems),
        severity=finding.severity,
        findings=(finding,),
        problems=problems,
    )


def clean_report(path: str = "clean.csv") -> ScanReport:
    return ScanReport(
        path=path,
        size=3,
        sha256="00" * 32,
        md5="11" * 16,
        format=FileFormat.CSV,
        verdict=verdict_for((), ()),
        severity=None,
        findings=(),
        problems=(),
    )


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


class TestCsv:
    def rows(self, text: str) -> list[list[str]]:
        return list(csv.reader(io.StringIO(text, newline="")))

    def test_one_row_per_finding_and_one_for_a_file_without(self) -> None:
        rows = self.rows(render_csv([hostile_report(), clean_report()]))
        assert rows[0] == list(HEADER)
        assert len(rows) == 3
        assert rows[2][:5] == ["clean.csv", "00" * 32, "csv", "clean", ""]
        assert rows[2][5:] == [""] * (len(HEADER) - 5)

    def test_no_cell_can_become_a_formula(self) -> None:
        rows = self.rows(render_csv([hostile_report()]))
        cells = [cell for row in rows[1:] for cell in row]
        assert cells
        assert not [cell for cell in cells if cell.startswith(FORMULA_STARTS)]
        row = dict(zip(HEADER, rows[1], strict=True))
        assert row["path"].startswith("'=HYPERLINK(")
        assert row["evidence_raw"].startswith("'=cmd|")
        assert row["problems"].startswith("limit: +limit <b>hit</b>")
        assert row["image"] == "cmd.exe"
        assert row["technique"] == "dde-formula"

    def test_no_control_character_or_line_break_in_a_cell(self) -> None:
        text = render_csv([hostile_report()])
        body = text.split("\r\n")
        assert body[-1] == ""
        assert len(body) == 3  # header, one row, the final CRLF: no forged lines
        assert "\x1b" not in text and "\u202e" not in text
        row = dict(zip(HEADER, self.rows(text)[1], strict=True))
        assert "\\x1b[2J\\u202eexe.txt" in row["evidence_raw"]
        assert "\\r\\nforged: OK" in row["problems"]

    def test_report_rows_are_escaped_cells(self) -> None:
        (row,) = report_rows(hostile_report())
        assert len(row) == len(HEADER)
        assert row[HEADER.index("verdict")] == "malicious"


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes.extend(attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


class TestHtml:
    def page(self) -> tuple[str, _Collector]:
        reports = [hostile_report(), clean_report()]
        page = render_html(reports, summarize(reports), "0.1.0")
        parser = _Collector()
        parser.feed(page)
        return page, parser

    def test_payload_markup_stays_text(self) -> None:
        page, parser = self.page()
        assert "script" not in parser.tags and "img" not in parser.tags
        assert "<script" not in page.lower()
        assert not [name for name, _ in parser.attributes if name.startswith("on")]
        text = "".join(parser.text)
        assert "<script>alert(1)</script>" in text
        assert '"><img src=x onerror=alert(1)>' in text

    def test_controls_and_bidi_are_shown_not_acted_on(self) -> None:
        page, parser = self.page()
        assert "\x1b" not in page and "\u202e" not in page and "\r" not in page
        assert "\\x1b[2J\\u202eexe.txt" in "".join(parser.text)

    def test_static_page_with_a_restrictive_policy(self) -> None:
        page, parser = self.page()
        assert page.startswith("<!DOCTYPE html>")
        policy = dict(parser.attributes).get("content") or ""
        assert ("http-equiv", "Content-Security-Policy") in parser.attributes
        assert "default-src 'none'" in page
        assert policy
        assert not [value for name, value in parser.attributes if name in ("src", "href")]
        assert page.endswith("</html>\n")

    def test_summary_and_every_file_are_in_the_page(self) -> None:
        page, parser = self.page()
        text = "".join(parser.text)
        assert "clean.csv" in text
        assert page.count("<section>") == 2
        summary = RunSummary().add(hostile_report()).add(clean_report())
        assert f"<tr><th>exit code</th><td>{int(summary.exit_code)}</td></tr>" in page


class TestCli:
    def test_csv_and_html_formats(self, tmp_path: Path) -> None:
        (tmp_path / "a.csv").write_bytes(b"=cmd|'/c calc.exe'!A0\n")
        (tmp_path / "b.csv").write_bytes(b"a,b\n")
        runner = CliRunner()
        result = runner.invoke(cli.main, ["scan", "--format", "csv", str(tmp_path)])
        assert result.exit_code == 1
        rows = list(csv.reader(io.StringIO(result.stdout, newline="")))
        assert rows[0] == list(HEADER)
        assert [row[0] for row in rows[1:]] == [str(tmp_path / "a.csv"), str(tmp_path / "b.csv")]
        assert rows[1][HEADER.index("evidence_raw")] == "'=cmd|'/c calc.exe'!A0"
        result = runner.invoke(cli.main, ["scan", "--format", "html", str(tmp_path)])
        assert result.exit_code == 1
        assert result.stdout.startswith("<!DOCTYPE html>")
        assert result.stdout.count("<section>") == 2
        assert "cmd /c calc.exe" in result.stdout

    def test_json_is_unchanged_by_the_new_formats(self, tmp_path: Path) -> None:
        (tmp_path / "a.csv").write_bytes(b"=cmd|'/c calc.exe'!A0\n")
        result = CliRunner().invoke(cli.main, ["scan", "--format", "json", str(tmp_path)])
        assert json.loads(result.stdout)["summary"]["malicious"] == 1
