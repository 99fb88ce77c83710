"""Renderers (scanner.render): text, JSON, clamscan lines, and escaping of hostile text."""

from __future__ import annotations

import io
import json
import re
import unicodedata
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scanner.analysis import dde_finding
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
    Severity,
    Technique,
)
from scanner.render import ExitCode, RunSummary, clamscan, json_report, summarize, text
from scanner.render.escape import (
    csv_cell,
    escape_mail_header,
    is_unsafe,
    kql_string_literal,
    visible,
)
from scanner.walker import verdict_for

CLEAR_SCREEN = "\x1b[2J\x1b[H"
OSC52 = "\x1b]52;c;Y2FsYy5leGU=\x07"  # would set the clipboard to "calc.exe"
RLO = "\u202e"


def formula(
    application: str = "cmd",
    topic: str = "/c calc.exe",
    cell: str = "A1",
    name: str = "book.csv",
    config: ScanConfig | None = None,
) -> Finding:
    raw = f"={application}|'{topic}'!A0"
    return dde_finding(
        DdeCall(application, topic, "A0"),
        Technique.DDE_FORMULA,
        Evidence(raw, raw),
        Location((name,), cell),
        HostApplication.EXCEL,
        config or ScanConfig(),
    )


def ddeauto_field() -> Finding:
    return dde_finding(
        DdeCall("c:\\windows\\system32\\cmd.exe", "/k calc.exe", keyword="DDEAUTO", automatic=True),
        Technique.DDE_FIELD,
        Evidence(
            'DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc.exe"',
            'DDEAUTO c:\\windows\\system32\\cmd.exe "/k calc.exe"',
            ("unescaped \\\\ to \\",),
        ),
        Location(("invoice.docx", "word/document.xml"), "field 1"),
        HostApplication.WORD,
        ScanConfig(),
    )


def sap_link(config: ScanConfig | None = None) -> Finding:
    return dde_finding(
        DdeCall("SAPDDE", "System", "Item1"),
        Technique.DDE_LINK,
        Evidence("SAPDDE|System!Item1", "SAPDDE|System!Item1"),
        Location(("erp.xlsx", "xl/externalLinks/externalLink1.xml")),
        HostApplication.EXCEL,
        config or ScanConfig(),
    )


def make_report(
    path: str,
    findings: tuple[Finding, ...] = (),
    problems: tuple[Problem, ...] = (),
    file_format: FileFormat = FileFormat.CSV,
    size: int = 22,
) -> ScanReport:
    relevant = [f.severity for f in findings if not f.allowed]
    return ScanReport(
        path=path,
        size=size,
        sha256="a" * 64,
        md5="b" * 32,
        format=file_format,
        verdict=verdict_for(findings, problems),
        severity=max(relevant) if relevant else None,
        findings=findings,
        problems=problems,
        duration_ms=1.5,
        scanned_parts=1,
    )


class TestText:
    def test_ddeauto_field_in_plain_words(self) -> None:
        report = make_report("invoice.docx", (ddeauto_field(),), file_format=FileFormat.DOCX)
        lines = text.render_report(report).splitlines()
        assert lines[0] == "invoice.docx: MALICIOUS (severity high) - docx, 1 finding"
        assert lines[1] == "  sha256: " + "a" * 64
        assert lines[2] == "  [1/1] DDEAUTO: WINWORD.EXE -> cmd.exe (malicious, severity high)"
        assert lines[3] == (
            "    What: a DDE field: a field code that makes Word start a DDE conversation "
            "[dde-field]"
        )
        assert lines[4] == "    Where: invoice.docx > word/document.xml (field 1)"
        assert lines[5] == (
            '    Evidence as stored: DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc.exe"'
        )
        assert lines[6] == (
            '    Evidence as Office reads it: DDEAUTO c:\\windows\\system32\\cmd.exe "/k calc.exe"'
        )
        assert lines[7] == "      step: unescaped \\\\ to \\"
        assert lines[8] == (
            "    Opening it would run: WINWORD.EXE -> cmd.exe with command line: "
            "c:\\windows\\system32\\cmd.exe /k calc.exe"
        )
        assert lines[9] == "    Program path: c:\\windows\\system32\\cmd.exe"
        assert lines[10] == (
            "    KQL flags: IsOfficeSpawn=true IsDDE_EquationEditor=false SuspiciousArgs=false"
        )
        assert lines[11] == "    Runtime rule: would alert on this process event"
        assert lines[12].startswith("    Why it matters: A DDE field asks Word (WINWORD.EXE)")
        assert len(lines) == 13

    def test_silent_rule_states_the_gap_and_allowed_status(self) -> None:
        config = ScanConfig(allowed_dde_services=frozenset({"SAPDDE"}))
        report = make_report("erp.xlsx", (sap_link(config),), file_format=FileFormat.XLSX)
        rendered = text.render_report(report)
        assert rendered.splitlines()[0] == "erp.xlsx: CLEAN - xlsx, 1 finding, 1 allowed"
        assert "  [1/1] ddeLink: EXCEL.EXE -> SAPDDE.exe (allowed, severity info)\n" in rendered
        assert (
            "    Runtime rule: would stay silent: SAPDDE.exe is not in its "
            "list of suspicious children (coverage gap)\n"
        ) in rendered
        assert "configured as an allowed DDE data service" in rendered

    def test_problems_and_limits_are_shown(self) -> None:
        problems = (
            Problem(ProblemKind.MALFORMED, "bad zip", Location(("x.docx",))),
            Problem(
                ProblemKind.LIMIT, "nesting depth limit of 8 reached", Location(("x.docx", "a"))
            ),
        )
        rendered = text.render_report(make_report("x.docx", (), problems, FileFormat.DOCX))
        assert "x.docx: ERROR - docx, 0 findings\n" in rendered
        assert "  Error (malformed): bad zip [at x.docx]\n" in rendered
        assert (
            "  Not fully inspected (limit): nesting depth limit of 8 reached [at x.docx > a]\n"
        ) in rendered

    def test_summary_line(self) -> None:
        summary = summarize(
            [
                make_report("a.csv", (formula(),)),
                make_report("b.csv"),
                make_report("c", (), (Problem(ProblemKind.MALFORMED, "x", Location(("c",))),)),
            ]
        )
        assert text.summary_text(summary).plain == (
            "Scanned 3 files: 1 malicious, 0 suspicious, 1 clean, 1 error; 1 finding.\n"
        )

    def test_output_is_deterministic(self) -> None:
        report = make_report("invoice.docx", (ddeauto_field(), formula()))
        assert text.render_report(report) == text.render_report(report)
        assert "1.5" not in text.render_report(report)  # no durations in the analyst view

    def test_color_output_has_same_words_and_only_sgr_escapes(self) -> None:
        report = make_report("book.csv", (formula(topic=f"/c calc.exe {CLEAR_SCREEN}"),))
        stream = io.StringIO()
        console = text.make_console(stream, color=True)
        text.write_text(console, text.report_text(report))
        colored = stream.getvalue()
        assert "\x1b[" in colored  # it is styled
        stripped = re.sub(r"\x1b\[[0-9;]*m", "", colored)
        assert "\x1b" not in stripped
        assert stripped == text.render_report(report)

    def test_plain_console_writes_no_escape_at_all(self) -> None:
        stream = io.StringIO()
        text.write_text(text.make_console(stream, color=False), text.summary_text(RunSummary()))
        assert stream.getvalue() == (
            "Scanned 0 files: 0 malicious, 0 suspicious, 0 clean, 0 errors; 0 findings.\n"
        )


HOSTILE = [
    CLEAR_SCREEN,
    OSC52,
    f"invoice{RLO}cod.exe",
    "\u2066calc\u2069",
    "\x9b31m",  # C1 CSI
    "back\x08\x08space",
    "bell\x07",
    "line\nbreak\r",
    "\u200bzero\ufeffwidth",
]


class TestHostileText:
    @pytest.mark.parametrize("payload", HOSTILE)
    def test_text_renderer_never_emits_raw_controls(self, payload: str) -> None:
        finding = formula(topic=f"/c calc.exe {payload}", name=f"book{payload}.csv")
        report = make_report(f"book{payload}.csv", (finding,))
        for rendered in (text.render_report(report), clamscan.result_line(report)):
            assert not any(is_unsafe(char) for char in rendered.replace("\n", ""))
        assert visible(payload) in text.render_report(report)

    def test_escape_forms(self) -> None:
        assert visible(CLEAR_SCREEN) == "\\x1b[2J\\x1b[H"
        assert visible(OSC52) == "\\x1b]52;c;Y2FsYy5leGU=\\x07"
        assert visible(f"a{RLO}b") == "a\\u202eb"
        assert visible("\x9b\x85") == "\\x9b\\x85"
        assert visible("a\nb\tc\rd") == "a\\nb\\tc\\rd"
        assert visible("\U000e0041") == "\\U000e0041"  # tag character
        assert visible("\udcff") == "\\udcff"  # undecodable byte (surrogateescape)
        assert visible("c:\\windows\\cmd.exe é") == "c:\\windows\\cmd.exe é"

    def test_rich_markup_in_payload_is_not_interpreted(self) -> None:
        finding = formula(topic="/c [red]calc[/red] [link=http://x.invalid]y[/link]")
        report = make_report("book.csv", (finding,))
        stream = io.StringIO()
        text.write_text(text.make_console(stream, color=True), text.report_text(report))
        stripped = re.sub(r"\x1b\[[0-9;]*m", "", stream.getvalue())
        assert "/c [red]calc[/red] [link=http://x.invalid]y[/link]" in stripped
        assert "\x1b]8;" not in stream.getvalue()  # no hyperlink was created

    @given(st.text())
    def test_visible_is_always_safe_and_one_line(self, value: str) -> None:
        shown = visible(value)
        assert not any(is_unsafe(char) for char in shown)
        if not any(is_unsafe(char) for char in value):
            assert shown == value


class TestMailHeader:
    def test_ascii_one_line(self) -> None:
        value = escape_mail_header(f"DDEAUTO cmd\r\nBcc: victim@example.invalid {RLO}é")
        assert value == "DDEAUTO cmd\\r\\nBcc: victim@example.invalid \\u202e\\xe9"

    def test_truncation_is_marked_and_never_splits_an_escape(self) -> None:
        assert escape_mail_header("x" * 50, max_length=10) == "xxxxxxx..."
        assert escape_mail_header("abcdef\u202e", max_length=10) == "abcdef..."
        assert escape_mail_header("short", max_length=10) == "short"
        with pytest.raises(ValueError):
            escape_mail_header("x", max_length=3)

    @given(st.text(), st.integers(min_value=4, max_value=300))
    def test_always_bounded_printable_ascii(self, value: str, limit: int) -> None:
        header = escape_mail_header(value, max_length=limit)
        assert len(header) <= limit
        assert all(" " <= char <= "~" for char in header)


def kusto_decode(literal: str) -> str:
    """Decode a double-quoted Kusto literal the way the documentation describes (plus \\u)."""
    assert literal[0] == '"' and literal[-1] == '"'
    body, out, index = literal[1:-1], [], 0
    simple = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "r": "\r", "t": "\t"}
    while index < len(body):
        char = body[index]
        if char == '"':
            raise AssertionError("unescaped quote inside the literal")
        if char in "\n\r":
            raise AssertionError("raw line break inside the literal")
        if char != "\\":
            out.append(char)
            index += 1
            continue
        code = body[index + 1]
        if code == "u":
            out.append(chr(int(body[index + 2 : index + 6], 16)))
            index += 6
        else:
            out.append(simple[code])
            index += 2
    return "".join(out).encode("utf-16", "surrogatepass").decode("utf-16")


class TestKqlLiteral:
    def test_exact_forms(self) -> None:
        assert kql_string_literal("cmd.exe") == '"cmd.exe"'
        assert kql_string_literal('c:\\x "y"') == '"c:\\\\x \\"y\\""'
        assert kql_string_literal("a\nb\tc\rd") == '"a\\nb\\tc\\rd"'
        assert kql_string_literal(f"x{RLO}\x1b") == '"x\\u202e\\u001b"'
        assert kql_string_literal("it's") == '"it\'s"'

    def test_usable_in_the_runtime_rule(self) -> None:
        query = f"| where ProcessCommandLine has {kql_string_literal('/c calc.exe')}"
        assert query == '| where ProcessCommandLine has "/c calc.exe"'

    @given(st.text(alphabet=st.characters(exclude_categories=["Cs"])))
    def test_round_trip(self, value: str) -> None:
        literal = kql_string_literal(value)
        assert kusto_decode(literal) == value
        assert not any(is_unsafe(char) for char in literal)


class TestCsvCell:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("=cmd|'/c calc.exe'!A0", "'=cmd|'/c calc.exe'!A0"),
            ("+cmd|'/c calc.exe'!A0", "'+cmd|'/c calc.exe'!A0"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("\uff1d1+1", "'\uff1d1+1"),
            ("calc.exe", "calc.exe"),
            ("a=b", "a=b"),
            ("", ""),
        ],
    )
    def test_formula_prefix_defused(self, value: str, expected: str) -> None:
        assert csv_cell(value) == expected


class TestJson:
    def test_per_file_object(self) -> None:
        report = make_report("invoice.docx", (ddeauto_field(),), file_format=FileFormat.DOCX)
        data = json_report.report_to_dict(report)
        assert list(data) == [
            "schema_version",
            "path",
            "size",
            "sha256",
            "md5",
            "format",
            "verdict",
            "severity",
            "findings",
            "errors",
            "limits_hit",
            "notes",
            "scanned_parts",
            "duration_ms",
            "file",
            "event",
        ]
        assert data["path"] == "invoice.docx"
        assert data["verdict"] == "malicious"
        assert data["severity"] == "high"
        assert data["format"] == "docx"
        assert data["file"] == {
            "path": "invoice.docx",
            "name": "invoice.docx",
            "size": 22,
            "hash": {"sha256": "a" * 64, "md5": "b" * 32},
        }
        assert data["event"] == {
            "kind": "alert",
            "category": ["malware", "file"],
            "type": ["indicator"],
            "outcome": "success",
            "severity": 3,
            "duration": 1_500_000,
        }
        finding = data["findings"][0]
        assert finding["technique"] == "dde-field"
        assert finding["location"] == {
            "path": ["invoice.docx", "word/document.xml"],
            "display": "invoice.docx > word/document.xml (field 1)",
            "detail": "field 1",
        }
        assert finding["evidence"]["deobfuscated"] == (
            'DDEAUTO c:\\windows\\system32\\cmd.exe "/k calc.exe"'
        )
        assert finding["process"] == {
            "parent": "WINWORD.EXE",
            "image": "cmd.exe",
            "command_line": "c:\\windows\\system32\\cmd.exe /k calc.exe",
            "image_path": "c:\\windows\\system32\\cmd.exe",
            "path_traversal": False,
            "steps": [],
        }
        assert finding["kql"] == {
            "is_office_spawn": True,
            "is_dde_equation_editor": False,
            "suspicious_args": False,
            "would_alert": True,
            "matched_child_terms": ["cmd.exe"],
            "matched_arg_terms": [],
            "gap": "",
        }
        assert finding["dde"] == {
            "application": "c:\\windows\\system32\\cmd.exe",
            "topic": "/k calc.exe",
            "item": "",
            "keyword": "DDEAUTO",
            "automatic": True,
            "switches": [],
        }
        assert finding["threat"]["framework"] == "MITRE ATT&CK"
        assert finding["threat"]["technique"]["id"] == "T1559"
        assert finding["threat"]["technique"]["name"] == "Inter-Process Communication"
        assert finding["threat"]["technique"]["subtechnique"]["id"] == "T1559.002"
        assert finding["threat"]["technique"]["subtechnique"]["name"] == "Dynamic Data Exchange"
        assert finding["threat"]["tactic"]["id"] == "TA0002"
        assert finding["attack_ids"] == ["T1559.002"]
        assert finding["cves"] == []
        assert finding["allowed"] is False

    def test_errors_and_limits_are_split(self) -> None:
        problems = (
            Problem(ProblemKind.MALFORMED, "bad part", Location(("x.docx", "word/a.xml"))),
            Problem(ProblemKind.LIMIT, "member limit of 10000 reached", Location(("x.docx",))),
        )
        data = json_report.report_to_dict(make_report("x.docx", (), problems))
        assert data["errors"] == [
            {
                "kind": "malformed",
                "message": "bad part",
                "location": {
                    "path": ["x.docx", "word/a.xml"],
                    "display": "x.docx > word/a.xml",
                    "detail": "",
                },
            }
        ]
        assert data["limits_hit"][0]["message"] == (
            "not fully inspected: member limit of 10000 reached"
        )
        assert data["verdict"] == "error"
        assert data["event"]["outcome"] == "failure"

    def test_json_line_is_one_ascii_line(self) -> None:
        finding = formula(topic=f"/c calc.exe {CLEAR_SCREEN}{RLO}\n")
        line = json_report.to_json_line(make_report("bé\n.csv", (finding,)))
        assert "\n" not in line
        assert line.isascii()
        assert "\x1b" not in line
        back = json.loads(line)
        assert back["path"] == "bé\n.csv"
        assert back["findings"][0]["dde"]["topic"] == f"/c calc.exe {CLEAR_SCREEN}{RLO}\n"

    def test_document(self) -> None:
        reports = [make_report("a.csv", (formula(),)), make_report("b.csv")]
        document = json_report.document_to_dict(reports, summarize(reports), "9.9.9")
        assert list(document) == ["schema_version", "tool", "reports", "summary"]
        assert document["tool"] == {"name": "ddescan", "version": "9.9.9"}
        assert [r["path"] for r in document["reports"]] == ["a.csv", "b.csv"]
        assert document["summary"] == {
            "files": 2,
            "clean": 1,
            "suspicious": 0,
            "malicious": 1,
            "errors": 0,
            "findings": 1,
            "allowed_findings": 0,
            "bytes_scanned": 44,
            "exit_code": 1,
        }
        json.loads(json_report.to_json_document(document))


class TestClamscan:
    def test_found_lines_and_names(self) -> None:
        assert clamscan.result_line(make_report("/m/invoice.docx", (ddeauto_field(),))) == (
            "/m/invoice.docx: DDE.Field.DDEAUTO.cmd FOUND"
        )
        assert clamscan.result_line(make_report("/m/book.csv", (formula(),))) == (
            "/m/book.csv: DDE.Formula.cmd FOUND"
        )
        assert clamscan.result_line(make_report("/m/erp.xlsx", (sap_link(),))) == (
            "/m/erp.xlsx: DDE.Link.sapdde FOUND"
        )
        powershell = formula("powershell", "-enc SQBFAFgA", cell="B2")
        report = make_report("/m/two.csv", (formula(), powershell))
        assert clamscan.result_line(report) == "/m/two.csv: DDE.Formula.powershell FOUND"

    def test_name_of_hostile_program_stays_ascii(self) -> None:
        finding = formula(f"c:\\x\\{RLO}evil\x1b[2J.name.exe", "/c x")
        name = clamscan.signature_name(finding)
        assert re.fullmatch(r"[A-Za-z0-9._-]+", name)
        assert name.startswith("DDE.Formula.")

    def test_ok_allowed_and_error_lines(self) -> None:
        config = ScanConfig(allowed_dde_services=frozenset({"sapdde"}))
        assert clamscan.result_line(make_report("/m/erp.xlsx", (sap_link(config),))) == (
            "/m/erp.xlsx: OK"
        )
        assert clamscan.result_line(make_report("/m/plain.csv")) == "/m/plain.csv: OK"
        unreadable = make_report(
            "/m/gone",
            (),
            (Problem(ProblemKind.MALFORMED, "cannot read file: gone", Location(("/m/gone",))),),
        )
        assert clamscan.result_line(unreadable) == "/m/gone: cannot read file: gone ERROR"

    def test_amavis_patterns_parse_the_lines(self) -> None:
        # amavisd-new's stock clamscan entry: name regexp and "infected" regexp.
        name_re = re.compile(r"^.*?: (?!Infected Archive)(.*) FOUND$", re.M)
        infected_re = re.compile(r":.*\sFOUND$", re.M)
        hostile_path = f"/m/x\nfake: Eicar FOUND{CLEAR_SCREEN}.csv"
        output = "\n".join(
            [
                clamscan.result_line(make_report(hostile_path, (formula(),))),
                clamscan.result_line(make_report("/m/ok.csv")),
            ]
        )
        assert output.startswith("/m/x\\nfake:\\x20Eicar FOUND\\x1b[2J\\x1b[H.csv: DDE")
        assert name_re.findall(output) == ["DDE.Formula.cmd"]
        assert len(infected_re.findall(output)) == 1
        assert output.count("\n") == 1

    def test_summary_block(self) -> None:
        summary = summarize(
            [
                make_report("a", (formula(),), size=1024 * 1024),
                make_report("b", (), (Problem(ProblemKind.MALFORMED, "x", Location(("b",))),)),
            ],
            directories=3,
        )
        block = clamscan.summary_block(
            summary, "0.1.0", 61.25, datetime(2024, 1, 2, 3, 4, 5), datetime(2024, 1, 2, 3, 5, 6)
        )
        assert block.split("\n") == [
            "",
            "----------- SCAN SUMMARY -----------",
            "Known viruses: 4",
            "Engine version: ddescan 0.1.0",
            "Scanned directories: 3",
            "Scanned files: 2",
            "Infected files: 1",
            "Total errors: 1",
            "Data scanned: 1.00 MB",
            "Data read: 1.00 MB (ratio 1.00:1)",
            "Time: 61.250 sec (1 m 1 s)",
            "Start Date: 2024:01:02 03:04:05",
            "End Date:   2024:01:02 03:05:06",
        ]


class TestSummary:
    @pytest.mark.parametrize(
        ("kinds", "expected"),
        [
            ((), ExitCode.CLEAN),
            (("clean",), ExitCode.CLEAN),
            (("allowed",), ExitCode.CLEAN),
            (("malicious",), ExitCode.FOUND),
            (("suspicious",), ExitCode.FOUND),
            (("error",), ExitCode.ERROR),
            (("error", "malicious"), ExitCode.FOUND),
            (("suspicious", "error", "clean"), ExitCode.FOUND),
        ],
    )
    def test_exit_code_found_wins_over_error(
        self, kinds: tuple[str, ...], expected: ExitCode
    ) -> None:
        config = ScanConfig(allowed_dde_services=frozenset({"SAPDDE"}))
        build = {
            "clean": lambda: make_report("c"),
            "allowed": lambda: make_report("a", (sap_link(config),)),
            "malicious": lambda: make_report("m", (formula(),)),
            "suspicious": lambda: make_report("s", (sap_link(),)),
            "error": lambda: make_report(
                "e", (), (Problem(ProblemKind.TIMEOUT, "t", Location(("e",))),)
            ),
        }
        summary = summarize(build[kind]() for kind in kinds)
        assert summary.exit_code is expected
        assert summary.files == len(kinds)

    def test_sap_link_is_suspicious_without_allow(self) -> None:
        assert sap_link().verdict.value == "suspicious"
        assert sap_link().severity is Severity.MEDIUM


def test_unsafe_set_covers_the_brief() -> None:
    for code in [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]:
        assert is_unsafe(chr(code)), hex(code)
    for code in [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C]:
        assert is_unsafe(chr(code)), hex(code)
    assert unicodedata.category("\u2028") == "Zl" and is_unsafe("\u2028")
    assert not is_unsafe("a") and not is_unsafe("é") and not is_unsafe(" ")


def test_clamscan_flags_a_locked_document_without_findings() -> None:
    from test_archive import CSV_DDE, encrypted_zip

    from scanner import scan_bytes
    from scanner.model import ProblemKind, Verdict
    from scanner.render.clamscan import result_line

    report = scan_bytes(encrypted_zip("a.csv", CSV_DDE, b"infected"), "x.zip")
    assert report.verdict is Verdict.SUSPICIOUS and not report.findings
    assert [p.kind for p in report.problems] == [ProblemKind.LOCKED]
    assert result_line(report) == "x.zip: DDE.Heuristics.Encrypted FOUND"
