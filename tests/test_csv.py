"""Delimited text and SYLK (scanner.formats.csv_text)."""

from __future__ import annotations

import time

import pytest
from conftest import OLETOOLS
from hypothesis import given, settings
from hypothesis import strategies as st

from scanner.api import scan_bytes
from scanner.formats.base import ByteBudget, ScanContext
from scanner.formats.csv_text import CsvFormat
from scanner.mapping import predict_process
from scanner.model import (
    Confidence,
    DdeCall,
    FileFormat,
    Finding,
    HostApplication,
    Location,
    ScanConfig,
    ScanLimits,
    Technique,
    Verdict,
)

PAYLOAD = "=cmd|'/c calc.exe'!A0"
CANONICAL = "cmd|'/c calc.exe'!A0"


def scan(data: bytes, name: str = "book.csv") -> list[Finding]:
    ctx = ScanContext(
        config=ScanConfig(),
        location=Location((name,)),
        host=None,
        depth=0,
        deadline=time.monotonic() + 30,
        budget=ByteBudget(1 << 30),
    )
    return [item for item in CsvFormat().scan(data, ctx) if isinstance(item, Finding)]


def only(data: bytes) -> Finding:
    findings = scan(data)
    assert len(findings) == 1, [(f.location.detail, f.evidence) for f in findings]
    return findings[0]


def test_plain_formula() -> None:
    finding = only(f"name,value\r\nx,{PAYLOAD}\r\n".encode())
    assert finding.technique is Technique.DDE_FORMULA
    assert finding.location == Location(("book.csv",), "row 2, column 2")
    assert finding.evidence.raw == PAYLOAD
    assert finding.evidence.deobfuscated == CANONICAL
    assert finding.evidence.steps == ("decoded as UTF-8", "fields split on comma")
    assert finding.process.parent == "EXCEL.EXE"
    assert finding.process.image == "cmd.exe"
    assert finding.process.command_line == "cmd /c calc.exe"
    assert finding.verdict is Verdict.MALICIOUS


@pytest.mark.parametrize(
    ("data", "step"),
    [
        (f"a\n{PAYLOAD}\n".encode(), "decoded as UTF-8"),
        (b"\xef\xbb\xbf" + f"a\n{PAYLOAD}\n".encode(), "decoded as UTF-8 (BOM)"),
        (b"\xff\xfe" + f"a\n{PAYLOAD}\n".encode("utf-16-le"), "decoded as UTF-16 LE (BOM)"),
        (b"\xfe\xff" + f"a\n{PAYLOAD}\n".encode("utf-16-be"), "decoded as UTF-16 BE (BOM)"),
        (
            f"a\n{PAYLOAD}\n".encode("utf-16-le"),
            "decoded as UTF-16 LE (no BOM; every other byte is NUL)",
        ),
        (
            f"a\n{PAYLOAD}\n".encode("utf-16-be"),
            "decoded as UTF-16 BE (no BOM; every other byte is NUL)",
        ),
        (f"caf\xe9\n{PAYLOAD}\n".encode("cp1252"), "decoded as Windows-1252"),
    ],
)
def test_encodings(data: bytes, step: str) -> None:
    finding = only(data)
    assert finding.location.detail == "row 2, column 1"
    assert finding.evidence.deobfuscated == CANONICAL
    assert finding.evidence.steps[0] == step
    assert CsvFormat().identify(data, "x.csv") is Confidence.UNSURE


@pytest.mark.parametrize(
    ("line", "column", "step"),
    [
        (f"a,b,{PAYLOAD}", 3, "fields split on comma"),
        (f"a;b;{PAYLOAD}", 3, "fields split on semicolon"),
        (f"a\tb\t{PAYLOAD}", 3, "fields split on tab"),
        (f'a|b|"{PAYLOAD}"', 3, "fields split on bar"),
    ],
)
def test_delimiters(line: str, column: int, step: str) -> None:
    finding = only(f"h\n{line}\n".encode())
    assert finding.location.detail == f"row 2, column {column}"
    assert finding.evidence.steps == ("decoded as UTF-8", step)
    assert finding.evidence.deobfuscated == CANONICAL


def test_one_finding_per_cell_when_several_delimiters_agree() -> None:
    finding = only(f"{PAYLOAD}\n".encode())
    assert finding.location.detail == "row 1, column 1"
    assert finding.evidence.steps[1] == "fields split on comma"


def test_a_delimiter_inside_the_topic_is_found_through_another_delimiter() -> None:
    finding = only(b"a;=cmd|'/c echo 1,2 & calc'!A0\n")
    assert finding.location.detail == "row 1, column 2"
    assert finding.evidence.steps[1] == "fields split on semicolon"
    assert finding.dde is not None
    assert finding.dde.topic == "/c echo 1,2 & calc"


def test_sep_line_is_honoured() -> None:
    finding = only(f"sep=;\r\nx,y;{PAYLOAD}\r\n".encode())
    assert finding.location.detail == "row 2, column 2"
    assert finding.evidence.steps[1] == "first line sep=;: fields split on semicolon"
    # With sep=| the bar splits the reference itself: Excel sees no formula.
    assert scan(f"sep=|\n{PAYLOAD}\n".encode()) == []
    assert scan(f"SEP=|\n{PAYLOAD}\n".encode()) == []


@pytest.mark.parametrize(
    ("field", "raw", "skipped"),
    [
        (f"  {PAYLOAD}", f"  {PAYLOAD}", True),
        (f"\t{PAYLOAD}", f"\t{PAYLOAD}", True),
        (f'"{PAYLOAD}"', PAYLOAD, False),
        (f'" {PAYLOAD}"', f" {PAYLOAD}", True),
        (f'"""{PAYLOAD}"""', f'"{PAYLOAD}"', True),
        (f'  "{PAYLOAD}"', PAYLOAD, False),
    ],
)
def test_leading_spaces_and_quotes(field: str, raw: str, skipped: bool) -> None:
    finding = only(f"a,{field}\n".encode())
    assert finding.location.detail == "row 1, column 2"
    assert finding.evidence.raw == raw
    assert finding.evidence.deobfuscated == CANONICAL
    assert (
        "leading spaces, tabs and quotes before the formula skipped" in finding.evidence.steps
    ) is skipped


def test_leading_apostrophe_makes_text() -> None:
    assert scan(f"a,'{PAYLOAD}\n".encode()) == []


def test_full_width_forms() -> None:
    line = "＝ｃｍｄ｜＇／ｃ　ｃａｌｃ．ｅｘｅ＇！Ａ０"
    finding = only(f"a,{line}\n".encode())
    assert finding.evidence.raw == line
    assert finding.evidence.deobfuscated == CANONICAL
    assert finding.evidence.steps == (
        "decoded as UTF-8",
        "fields split on comma",
        "full-width and compatibility characters folded (Unicode NFKC)",
    )
    assert finding.process.command_line == "cmd /c calc.exe"


@pytest.mark.parametrize(
    "text",
    [
        "amount\n-5\n-12.50\n",
        "phone\n+44 20 7946 0000\n",
        "handle\n@mentions\n@bob said hi\n",
        "total\n=SUM(A1:A3)\n",
        'link\n=HYPERLINK("https://example.invalid")\n',
        'link\n=HYPERLINK("https://example.invalid/a|b")\n',
        "id|amount|note\n1|-5|refund\n2|+3|x!y\n",
        f"'{PAYLOAD}\n",
        "plain words with a | bar and ! marks\n",
        "",
    ],
)
def test_negatives(text: str) -> None:
    assert scan(text.encode()) == []


def test_quoted_field_spanning_lines() -> None:
    data = b"a,\"=cmd|'/c echo one\ntwo & calc'!A0\"\nnext,row\n" + PAYLOAD.encode() + b"\n"
    findings = scan(data)
    assert [(f.location.detail, f.dde.topic if f.dde else "") for f in findings] == [
        ("row 1, column 2", "/c echo one\ntwo & calc"),
        ("row 4, column 1", "/c calc.exe"),
    ]


def test_several_references_in_one_cell() -> None:
    findings = scan(b"=cmd|'/c calc'!A0+notepad|'x.txt'!A0\n")
    assert [f.evidence.deobfuscated for f in findings] == [
        "cmd|'/c calc'!A0",
        "notepad|'x.txt'!A0",
    ]
    assert {f.location.detail for f in findings} == {"row 1, column 1"}


def test_obfuscated_forms() -> None:
    data = (
        b"-2+3+cmd|'/c calc'!A0\n"
        b"@SUM(1+1)*cmd|' /C calc'!A0\n"
        b"=MSEXCEL|'\\..\\..\\..\\Windows\\System32\\cmd.exe /c calc.exe'!''\n"
        b'=DDE("cmd";"/c calc";"A1")\n'
    )
    findings = scan(data)
    assert [(f.location.detail, f.process.image) for f in findings] == [
        ("row 1, column 1", "cmd.exe"),
        ("row 2, column 1", "cmd.exe"),
        ("row 3, column 1", "cmd.exe"),
        ("row 4, column 1", "cmd.exe"),
    ]
    assert findings[2].process.path_traversal
    assert findings[3].dde is not None
    assert findings[3].dde.keyword == "DDE()"


def test_sylk() -> None:
    data = (
        b"ID;PWXL;N;E\r\n"
        b"P;PGeneral\r\n"
        b"F;P0;DG0G8;E;M292\r\n"
        b"C;Y1;X1;K1;EA1+1\r\n"
        b"C;Y3;X2;K0;ECMD|'/c calc'!A0\r\n"
        b"C;X4;K0;ENOTEPAD|'a;;b'!A0\r\n"
        b"NN;Nauto;ECMD|'/c calc.exe'!A0\r\n"
        b"E\r\n"
    )
    findings = scan(data, "book.slk")
    assert [(f.location.detail, f.evidence.deobfuscated) for f in findings] == [
        ("R3C2", "CMD|'/c calc'!A0"),
        ("R3C4", "NOTEPAD|'a;b'!A0"),
        ('name "auto"', "CMD|'/c calc.exe'!A0"),
    ]
    assert findings[0].evidence.steps == ("decoded as UTF-8", "SYLK")
    assert findings[0].process.image == "CMD.exe"
    assert findings[0].process.command_line == "CMD /c calc"


def test_sylk_sample_without_dde_is_clean() -> None:
    sample = OLETOOLS / "excel4-macros" / "excel4_sample_macro.slk"
    if not sample.is_file():
        pytest.skip("shared/peers/oletools is not present")
    assert scan(sample.read_bytes(), sample.name) == []


def test_oletools_dde_in_csv() -> None:
    sample = OLETOOLS / "msodde" / "dde-in-csv.csv"
    if not sample.is_file():
        pytest.skip("shared/peers/oletools is not present")
    report = scan_bytes(sample.read_bytes(), sample.name)
    assert report.format is FileFormat.CSV
    assert report.problems == ()
    (finding,) = report.findings
    assert finding.location == Location((sample.name,), "row 1, column 1")
    assert finding.dde is not None
    assert (finding.dde.application, finding.dde.topic, finding.dde.item) == (
        "cmd",
        "/k \\..\\..\\..\\Windows\\System32\\calc.exe",
        "A0",
    )
    expected = predict_process(finding.dde, HostApplication.EXCEL)
    assert finding.process == expected
    assert finding.process.image == "cmd.exe"
    assert finding.process.command_line == "cmd /k \\..\\..\\..\\Windows\\System32\\calc.exe"
    assert "/k \\..\\..\\..\\Windows\\System32\\calc.exe" in finding.process.command_line
    assert report.verdict is Verdict.MALICIOUS


def test_registry_picks_csv_last() -> None:
    report = scan_bytes(f"a,b\n1,{PAYLOAD}\n".encode(), "data.txt")
    assert report.format is FileFormat.CSV
    assert [f.location.detail for f in report.findings] == ["row 2, column 2"]
    assert report.findings[0].process == predict_process(
        DdeCall("cmd", "/c calc.exe", "A0"), HostApplication.EXCEL
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"a,b\n1,2\n", Confidence.UNSURE),
        (b"\xff\xfe" + "a,b\n".encode("utf-16-le"), Confidence.UNSURE),
        ("a,b\n1,2\n".encode("utf-16-le"), Confidence.UNSURE),
        (b"ID;P\r\nC;Y1;X1;K1\r\n", Confidence.UNSURE),
        (b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(range(256)), Confidence.NO),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 200, Confidence.NO),
        (b"text\x01\x02\x03\x04\x05\x06\x07\x08\x0e\x0f" * 3, Confidence.NO),
        (b"", Confidence.NO),
    ],
)
def test_identify(data: bytes, expected: Confidence) -> None:
    assert CsvFormat().identify(data, "x") is expected


def test_large_bar_separated_file_is_bounded() -> None:
    rows = b"".join(b"%d|-%d|note %d|x!y\n" % (n, n, n) for n in range(60_000))
    data = b"id|amount|note|flag\n" + rows + PAYLOAD.encode() + b"\n"
    config = ScanConfig(limits=ScanLimits(timeout_seconds=20))
    started = time.monotonic()
    report = scan_bytes(data, "big.csv", config)
    assert time.monotonic() - started < 10
    assert report.problems == ()
    assert [f.location.detail for f in report.findings] == ["row 60002, column 1"]


def test_very_long_line_is_bounded() -> None:
    data = b"=" + b"1+" * 400_000 + b"cmd|'/c calc'!A0," + b"x" * 1_000_000 + b"\n"
    started = time.monotonic()
    findings = scan(data)
    assert time.monotonic() - started < 10
    # Past the formula length Excel accepts (and ddescan reads), nothing is reported.
    assert findings == []


def test_stray_quote_does_not_swallow_the_file() -> None:
    data = b'size\n5" screen\n' + b"x\n" * 20_000 + PAYLOAD.encode() + b"\n"
    (finding,) = scan(data)
    assert finding.location.detail == "row 20003, column 1"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_never_raises_on_arbitrary_bytes(data: bytes) -> None:
    CsvFormat().identify(data, "x")
    scan(data)


@settings(max_examples=200, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list("=+-@|'\"!,;\t\n\r ab1()&＝｜＇")),
        max_size=120,
    )
)
def test_never_raises_on_formula_like_text(text: str) -> None:
    for finding in scan(text.encode("utf-8")):
        assert finding.location.detail.startswith("row ")
