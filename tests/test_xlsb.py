"""Excel binary workbooks (.xlsb): DDE external links (BrtBeginSupBook sbt 1), the formulas
that use them, XLM INITIATE calls and damaged parts (scanner.formats.xlsb).

Fixtures are written by corpus/xlswriter.py ([MS-XLSB] records in an OPC package);
oletools' dde-test.xlsb is read in place when present.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
import xlswriter as xw
from conftest import OLETOOLS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanner.api import scan_bytes, scan_path
from scanner.errors import ScanError
from scanner.formats.ooxml import OtherPackageFormat, SpreadsheetFormat, package_kind
from scanner.formats.xlsb import XlsbFormat, records
from scanner.model import (
    Confidence,
    FileFormat,
    Finding,
    Location,
    ProblemKind,
    ScanReport,
    Technique,
    Verdict,
)

CMD = "cmd /c calc.exe"
NAMEX = xw.ptg_namex(0, 1)
LINK = xw.XlsbLink("cmd", "/c calc.exe")


def book(*rows: tuple[int, list[bytes]], **options: object) -> bytes:
    sheet = xw.XlsbSheet("Sheet1", list(rows))
    fields: dict[str, object] = {"sheets": [sheet], "links": [LINK]}
    fields.update(options)
    return xw.xlsb_package(xw.XlsbBook(**fields))


def scan(data: bytes, name: str = "book.xlsb") -> ScanReport:
    return scan_bytes(data, name)


def only(report: ScanReport, technique: Technique) -> list[Finding]:
    return [f for f in report.findings if f.technique is technique]


def kinds(report: ScanReport) -> list[ProblemKind]:
    return [problem.kind for problem in report.problems]


def test_identify_binary_workbook_only() -> None:
    data = book()
    assert package_kind(data) is FileFormat.XLSB
    assert XlsbFormat().identify(data, "x.zip") is Confidence.YES
    assert OtherPackageFormat().identify(data, "x.xlsb") is Confidence.NO
    assert SpreadsheetFormat().identify(data, "x.xlsb") is Confidence.NO
    xlsx = (
        Path(__file__).resolve().parents[1] / "corpus" / "samples" / "excel" / "formula-cmd.xlsx"
    ).read_bytes()
    assert XlsbFormat().identify(xlsx, "x.xlsb") is Confidence.NO
    assert XlsbFormat().identify(b"PK\x03\x04junk", "x.xlsb") is Confidence.NO


def test_dde_external_link_without_formula() -> None:
    report = scan(book())
    assert report.format is FileFormat.XLSB
    assert report.problems == ()
    [finding] = report.findings
    assert finding.technique is Technique.DDE_LINK
    assert finding.location == Location(
        ("book.xlsb", "xl/externalLinks/externalLink1.bin"), "external link [1]"
    )
    assert finding.dde is not None
    assert (finding.dde.application, finding.dde.topic, finding.dde.item) == (
        "cmd",
        "/c calc.exe",
        "A0",
    )
    assert finding.dde.keyword == "SupBook"
    assert finding.process.command_line == CMD
    assert finding.evidence.raw == (
        "BrtBeginSupBook sbt=1 (DDE) service='cmd' topic='/c calc.exe'; items: A0 (advise)"
    )
    assert finding.evidence.deobfuscated == "cmd|'/c calc.exe'"
    assert report.verdict is Verdict.MALICIOUS


def test_formula_using_the_dde_link() -> None:
    report = scan(book((3, [xw.xlsb_formula_cell(1, NAMEX)])))
    assert len(report.findings) == 2
    [formula] = only(report, Technique.DDE_FORMULA)
    assert formula.location == Location(("book.xlsb", "xl/worksheets/sheet1.bin"), "Sheet1!B4")
    assert formula.evidence.raw == "=cmd|'/c calc.exe'!A0"
    assert formula.process.command_line == CMD
    assert formula.evidence.steps == (
        "formula decompiled from its parsed tokens",
        "PtgNameX: BrtExternSheet entry 0 points to external link [1] "
        "(xl/externalLinks/externalLink1.bin), a DDE source (BrtBeginSupBook sbt 1) with "
        "service 'cmd' and topic '/c calc.exe'",
        "BrtSupNameStart 1 of it is the item 'A0'",
    )


def test_escaped_item_name_is_read_without_its_prefix() -> None:
    link = xw.XlsbLink("cmd", "/c calc.exe", (("_xlbgnm.A1", xw.WANT_ADVISE),))
    report = scan(book((0, [xw.xlsb_formula_cell(0, NAMEX)]), links=[link]))
    [formula] = only(report, Technique.DDE_FORMULA)
    assert formula.evidence.deobfuscated == "cmd|'/c calc.exe'!A1"
    assert (
        "item '_xlbgnm.A1' read as 'A1' (Excel's _xlbgnm. escape for a name that reads as a "
        "cell)" in formula.evidence.steps
    )


def test_hidden_sheet_shared_formula_and_3d_reference() -> None:
    shared = xw.xlsb_shared_formula(2, 4, 0, 0, NAMEX)
    sheet = xw.XlsbSheet(
        "Data", [(1, [xw.xlsb_formula_cell(3, xw.xlsb_ptg_ref3d(0, 0, 0))])], state=2,
        extra=[shared],
    )  # fmt: skip
    data = xw.xlsb_package(xw.XlsbBook([sheet], [LINK]))
    report = scan(data)
    formulas = sorted(only(report, Technique.DDE_FORMULA), key=lambda f: f.location.detail)
    assert [f.location.detail for f in formulas] == [
        "Data (veryHidden)!A3:A5",
        "Data (veryHidden)!D2",
    ]
    assert formulas[0].evidence.steps[:2] == (
        "sheet 'Data' is very hidden (only a macro can show it)",
        "shared formula over A3:A5",
    )
    assert formulas[1].evidence.deobfuscated == "cmd|'/c calc.exe'!A1"
    assert all(f.process.command_line == CMD for f in formulas)


def test_defined_name_using_the_dde_link() -> None:
    report = scan(book(names=[("payload", NAMEX)]))
    [formula] = only(report, Technique.DDE_FORMULA)
    assert formula.location == Location(("book.xlsb", "xl/workbook.bin"), 'defined name "payload"')
    assert formula.process.command_line == CMD


def test_macro_sheet_initiate() -> None:
    rgce = xw.xlsb_ptg_str("cmd") + xw.xlsb_ptg_str("/c calc.exe") + xw.ptg_func(xw.FTAB_INITIATE)
    sheet = xw.XlsbSheet("Macro1", [(0, [xw.xlsb_formula_cell(0, rgce)])], macro=True)
    report = scan(xw.xlsb_package(xw.XlsbBook([sheet])))
    [finding] = report.findings
    assert finding.location == Location(("book.xlsb", "xl/macrosheets/sheet1.bin"), "Macro1!A1")
    assert finding.evidence.raw == '=INITIATE("cmd","/c calc.exe")'
    assert finding.process.command_line == CMD
    assert finding.evidence.steps[0] == "sheet 'Macro1' is an Excel 4.0 macro sheet"


def test_clean_binary_workbook() -> None:
    cells = [xw.xlsb_number_cell(0, 2.0), xw.xlsb_formula_cell(1, xw.xlsb_ptg_str("a|b!c"))]
    other = xw.XlsbLink("", "", (("Total", 0),), sbt=0)
    data = xw.xlsb_package(xw.XlsbBook([xw.XlsbSheet("Sheet1", [(0, cells)])], [other]))
    report = scan(data)
    assert report.findings == ()
    assert report.problems == ()
    assert report.verdict is Verdict.CLEAN


def test_unlisted_external_link_part_is_still_reported() -> None:
    # Drop the BrtSupBookSrc record: the part is then listed nowhere.
    workbook = xw.workbook_part(xw.XlsbBook([xw.XlsbSheet("Sheet1")], [], xti=[]))
    orphan = xw.xlsb_package(
        xw.XlsbBook([xw.XlsbSheet("Sheet1")], [LINK], overrides={"xl/workbook.bin": workbook})
    )
    [finding] = scan(orphan).findings
    assert finding.location.detail == "BrtBeginSupBook"
    assert finding.evidence.steps[0] == (
        "external link part not listed by the workbook's BrtSupBookSrc records"
    )


def test_damaged_sheet_part_costs_only_that_part() -> None:
    good = xw.sheet_part(xw.XlsbSheet("Sheet1", [(0, [xw.xlsb_formula_cell(0, NAMEX)])]))
    damaged = good + bytes([0x0B, 0xFF, 0x01]) + b"\x00" * 4
    report = scan(book(overrides={"xl/worksheets/sheet1.bin": damaged}))
    assert kinds(report) == [ProblemKind.MALFORMED]
    problem = report.problems[0]
    assert problem.location.containers[-1] == "xl/worksheets/sheet1.bin"
    assert "declares 255 bytes but only 4 remain" in problem.message
    # The link and the formula read before the damage are still reported.
    assert sorted(f.technique.value for f in report.findings) == ["dde-formula", "dde-link"]


def test_external_link_string_past_its_record() -> None:
    bad = xw.brt(0x0168, struct.pack("<HI", 1, 500) + "cmd".encode("utf-16-le"))
    report = scan(book(overrides={"xl/externalLinks/externalLink1.bin": bad}))
    assert kinds(report) == [ProblemKind.MALFORMED]
    assert report.problems[0].message.endswith(
        "a string of 500 characters runs past the end of the record"
    )
    assert report.verdict is Verdict.ERROR


def test_absurd_extern_sheet_count() -> None:
    entry = struct.pack("<Iii", 0, -2, -2)
    workbook = xw.workbook_part(xw.XlsbBook([xw.XlsbSheet("Sheet1")], [LINK], xti=[(0, -2, -2)]))
    workbook = workbook.replace(
        xw.brt(0x016A, struct.pack("<I", 1) + entry),
        xw.brt(0x016A, struct.pack("<I", 10**9) + entry),
    )
    report = scan(book(overrides={"xl/workbook.bin": workbook}))
    assert kinds(report) == [ProblemKind.MALFORMED]
    assert "BrtExternSheet declares 1000000000 entries but holds 1" in report.problems[0].message


def test_record_type_and_size_encodings() -> None:
    assert list(records(xw.brt(0x024A, b"ab") + xw.brt(5, b""), "p", lambda: None)) == [
        (0, 0x024A, b"ab"),
        (5, 5, b""),
    ]
    with pytest.raises(ScanError, match="record type at offset 0 is over two bytes"):
        list(records(b"\xff\xff\x01\x00", "p", lambda: None))
    with pytest.raises(ScanError, match="record size at offset 0 is over four bytes"):
        list(records(b"\x01\xff\xff\xff\xff\x01", "p", lambda: None))


@pytest.mark.skipif(not (OLETOOLS / "msodde").is_dir(), reason="oletools files absent")
def test_oletools_dde_test_xlsb() -> None:
    report = scan_path(OLETOOLS / "msodde" / "dde-test.xlsb")
    assert report.format is FileFormat.XLSB
    assert report.problems == ()
    assert report.verdict is Verdict.MALICIOUS
    assert len(report.findings) == 2
    for finding in report.findings:
        assert finding.dde is not None
        assert (finding.dde.application, finding.dde.topic) == ("cmd", "/c calc.exe")
        assert finding.process.command_line == CMD
        assert finding.process.image == "cmd.exe"
    [formula] = only(report, Technique.DDE_FORMULA)
    assert formula.location.containers[-1] == "xl/worksheets/sheet1.bin"
    assert formula.location.detail == "Tabelle1!B4"


@pytest.mark.skipif(not (OLETOOLS / "excel4-macros").is_dir(), reason="oletools files absent")
def test_oletools_excel4_xlsb_has_no_dde() -> None:
    report = scan_path(OLETOOLS / "excel4-macros" / "excel4_sample_macro.xlsb")
    assert report.format is FileFormat.XLSB
    assert report.findings == ()
    assert report.problems == ()


_PARTS = {
    "xl/workbook.bin": xw.workbook_part(
        xw.XlsbBook([xw.XlsbSheet("Sheet1")], [LINK], names=[("n", NAMEX)])
    ),
    "xl/worksheets/sheet1.bin": xw.sheet_part(
        xw.XlsbSheet("Sheet1", [(3, [xw.xlsb_formula_cell(1, NAMEX)])])
    ),
    "xl/externalLinks/externalLink1.bin": xw.link_part(LINK),
}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(sorted(_PARTS)),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=6),
    st.integers(0, 10_000),
)
def test_mutated_parts_give_only_typed_problems(
    part: str, flips: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(_PARTS[part])
    for at, value in flips:
        data[at % len(data)] = value
    mutated = bytes(data[: max(1, cut % (len(data) + 1))])
    report = scan(book((3, [xw.xlsb_formula_cell(1, NAMEX)]), overrides={part: mutated}))
    assert ProblemKind.INTERNAL not in kinds(report), report.problems
