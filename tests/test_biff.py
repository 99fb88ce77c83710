"""Excel 97-2003 workbooks (.xls, BIFF8): DDE SupBooks, the formulas that use them, XLM
INITIATE calls, and damaged streams (scanner.formats.biff).

Fixtures are written by corpus/xlswriter.py ([MS-XLS] records) on corpus/cfbwriter.py
([MS-CFB]); oletools' public test files are read in place when present.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterable
from pathlib import Path

import pytest
import xlswriter as xw
from conftest import OLETOOLS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanner.api import scan_bytes, scan_path
from scanner.errors import EncryptedInput, ScanError, ScanTimeout
from scanner.formats import biff
from scanner.formats.base import ByteBudget, PartScan, ScanContext
from scanner.formats.biff import (
    BIFF8_PTGS,
    BiffLinks,
    ExcelBinaryFormat,
    Globals,
    decompile,
    scan_workbook_stream,
    starts_encrypted,
)
from scanner.model import (
    Confidence,
    FileFormat,
    Finding,
    Location,
    ProblemKind,
    ScanConfig,
    ScanReport,
    Technique,
    Verdict,
)

CMD = "cmd /c calc.exe"
NAMEX = xw.ptg_namex(0, 1)


def xls(stream: bytes) -> bytes:
    return xw.xls_file(stream)


def scan_stream(stream: bytes, name: str = "book.xls") -> ScanReport:
    return scan_bytes(xls(stream), name)


def only(report: ScanReport, technique: Technique) -> list[Finding]:
    return [f for f in report.findings if f.technique is technique]


def context(config: ScanConfig | None = None) -> ScanContext:
    config = config or ScanConfig()
    return ScanContext(
        config=config,
        location=Location(("book.xls",)),
        host=None,
        depth=0,
        deadline=time.monotonic() + 60,
        budget=ByteBudget(config.limits.max_total_bytes),
    )


def drain(items: Iterable[object]) -> tuple[list[Finding], list[ScanError]]:
    """Run a scan the way the walker does: PartScans in place, typed errors collected."""
    findings: list[Finding] = []
    errors: list[ScanError] = []
    pending = [iter(items)]
    while pending:
        try:
            item = next(pending[-1])
        except StopIteration:
            pending.pop()
            continue
        except ScanError as error:
            errors.append(error)
            pending.pop()
            continue
        if isinstance(item, Finding):
            findings.append(item)
        elif isinstance(item, PartScan):
            pending.append(iter(item.run()))
    return findings, errors


# Identification


def test_identify_workbook_and_not_others() -> None:
    handler = ExcelBinaryFormat()
    assert handler.identify(xls(xw.dde_workbook()), "x.bin") is Confidence.YES
    assert handler.identify(xw.xls_file(xw.dde_workbook(), "Book"), "x") is Confidence.YES
    assert handler.identify(xw.write_cfb({"WordDocument": b"\0" * 64}), "x.xls") is Confidence.NO
    assert handler.identify(b"PK\x03\x04" + b"\0" * 60, "x.xls") is Confidence.NO
    assert handler.identify(b"", "x.xls") is Confidence.NO


def test_identify_says_no_to_filepass_after_bof() -> None:
    stream = xw.dde_workbook()
    bof = xw.bof(xw.DT_GLOBALS)
    encrypted = bof + xw.record(xw.RT_FILEPASS, b"\x01\x00" + b"\0" * 52) + stream[len(bof) :]
    assert starts_encrypted(encrypted)
    assert not starts_encrypted(stream)
    assert ExcelBinaryFormat().identify(xls(encrypted), "x.xls") is Confidence.NO


@pytest.mark.skipif(not (OLETOOLS / "encrypted").is_dir(), reason="oletools files absent")
def test_identify_oletools_encrypted_workbook_is_not_ours() -> None:
    data = (OLETOOLS / "encrypted" / "dde-test-encrypt-standardpassword.xls").read_bytes()
    assert ExcelBinaryFormat().identify(data, "dde-test-encrypt-standardpassword.xls") is (
        Confidence.NO
    )


# DDE SupBook and the formulas that use it


def test_dde_supbook_without_formula_is_one_link_finding() -> None:
    report = scan_stream(xw.dde_workbook())
    assert report.format is FileFormat.XLS
    assert report.verdict is Verdict.MALICIOUS
    assert report.problems == ()
    [finding] = report.findings
    assert finding.technique is Technique.DDE_LINK
    assert finding.dde is not None
    assert (finding.dde.application, finding.dde.topic) == ("cmd", "/c calc.exe")
    assert finding.dde.item == "A0, StdDocumentName"
    assert finding.dde.keyword == "SupBook"
    assert finding.dde.automatic
    assert finding.process.parent == "EXCEL.EXE"
    assert finding.process.image == "cmd.exe"
    assert finding.process.command_line == CMD
    assert finding.location == Location(("book.xls", "Workbook"), "SupBook [1]")
    assert finding.evidence.deobfuscated == "cmd|'/c calc.exe'"
    assert finding.evidence.raw == (
        "SUPBOOK ctab=0 virtPath='cmd\\x03/c calc.exe'; EXTERNNAME items: A0 (advise); "
        "StdDocumentName (advise, ole)"
    )
    assert finding.evidence.steps[0] == (
        "virtual path split at its 0x03 separator into service 'cmd' and topic "
        "'/c calc.exe' ([MS-XLS] 2.5.277)"
    )


def test_formula_using_dde_supbook_is_reported_at_its_cell() -> None:
    report = scan_stream(xw.dde_workbook(cells=[xw.formula(3, 1, NAMEX)]))
    assert report.verdict is Verdict.MALICIOUS
    assert len(report.findings) == 2
    [link] = only(report, Technique.DDE_LINK)
    [formula] = only(report, Technique.DDE_FORMULA)
    assert link.process.command_line == CMD
    assert formula.location == Location(("book.xls", "Workbook"), "Sheet1!B4")
    assert formula.evidence.raw == "=cmd|'/c calc.exe'!A0"
    assert formula.evidence.deobfuscated == "cmd|'/c calc.exe'!A0"
    assert formula.process.command_line == CMD
    assert formula.dde is not None and formula.dde.item == "A0"
    assert formula.evidence.steps[:3] == (
        "formula decompiled from its parsed tokens",
        "PtgNameX: EXTERNSHEET entry 0 points to SUPBOOK 1, a DDE source whose virtual path "
        "'cmd\\x03/c calc.exe' splits at 0x03 into service 'cmd' and topic '/c calc.exe'",
        "EXTERNNAME 1 of it is the item 'A0'",
    )


def test_hidden_and_very_hidden_sheets_label_the_cell() -> None:
    for state, label, step in (
        (1, "Data (hidden)", "sheet 'Data' is hidden"),
        (2, "Data (veryHidden)", "sheet 'Data' is very hidden (only a macro can show it)"),
    ):
        sheet = xw.Sheet("Data", [xw.formula(0, 0, NAMEX)], state=state)
        report = scan_stream(xw.dde_workbook(sheet=sheet))
        [formula] = only(report, Technique.DDE_FORMULA)
        assert formula.location.detail == f"{label}!A1"
        assert formula.evidence.steps[0] == step


def test_shared_formula_is_reported_over_its_range() -> None:
    cells = [
        xw.formula(3, 1, struct.pack("<BHH", 0x01, 3, 1)),
        xw.shrfmla(3, 5, 1, 1, NAMEX),
        xw.formula(4, 1, struct.pack("<BHH", 0x01, 3, 1)),
    ]
    report = scan_stream(xw.dde_workbook(cells=cells))
    [formula] = only(report, Technique.DDE_FORMULA)
    assert formula.location.detail == "Sheet1!B4:B6"
    assert "shared formula over B4:B6 (SHRFMLA)" in formula.evidence.steps
    assert formula.process.command_line == CMD


def test_three_d_reference_through_dde_supbook_names_the_cell_as_item() -> None:
    rgce = xw.ptg_ref3d(0, 0, 0)
    report = scan_stream(xw.dde_workbook(cells=[xw.formula(0, 2, rgce)]))
    [formula] = only(report, Technique.DDE_FORMULA)
    assert formula.location.detail == "Sheet1!C1"
    assert formula.evidence.deobfuscated == "cmd|'/c calc.exe'!A1"
    assert formula.process.command_line == CMD
    assert "the cell A1 of it is the item" in formula.evidence.steps


def test_formula_concatenating_a_dde_reference_keeps_the_rest_as_text() -> None:
    rgce = xw.ptg_str("x") + NAMEX + xw.PTG_CONCAT
    report = scan_stream(xw.dde_workbook(cells=[xw.formula(1, 0, rgce)]))
    [formula] = only(report, Technique.DDE_FORMULA)
    assert formula.evidence.raw == "=\"x\"&cmd|'/c calc.exe'!A0"


def test_defined_name_using_dde_supbook() -> None:
    links = [
        xw.supbook_dde("cmd", "/c calc.exe"),
        xw.externname("A0"),
        xw.supbook_self(1),
        xw.externsheet([(0, -2, -2), (1, 0, 0)]),
        xw.lbl("payload", NAMEX, flags=0x0001),
    ]
    report = scan_stream(xw.workbook_stream([xw.Sheet("Sheet1")], links))
    [formula] = only(report, Technique.DDE_FORMULA)
    assert formula.location.detail == 'defined name "payload" (hidden)'
    assert formula.process.command_line == CMD


def test_unicode_and_quoted_service_survive() -> None:
    stream = xw.workbook_stream(
        [xw.Sheet("Sheet1", [xw.formula(0, 0, NAMEX)])],
        [
            xw.supbook_dde("C:\\Windows\\System32\\cmd.exe", "/c calc.exe ünï"),
            xw.externname("it's"),
            xw.externsheet([(0, -2, -2)]),
        ],
    )
    report = scan_stream(stream)
    [formula] = only(report, Technique.DDE_FORMULA)
    assert formula.dde is not None
    assert formula.dde.application == "C:\\Windows\\System32\\cmd.exe"
    assert formula.dde.topic == "/c calc.exe ünï"
    assert formula.dde.item == "it's"
    assert formula.process.command_line == "C:\\Windows\\System32\\cmd.exe /c calc.exe ünï"


def test_ole_supbook_is_not_a_dde_link() -> None:
    stream = xw.workbook_stream(
        [xw.Sheet("Sheet1", [xw.formula(0, 0, NAMEX)])],
        [
            xw.supbook_dde("Word.Document.8", "C:\\docs\\a.doc"),
            xw.externname("'", xw.OLE_LINK),
            xw.externsheet([(0, -2, -2)]),
        ],
    )
    report = scan_stream(stream)
    assert report.findings == ()
    assert report.verdict is Verdict.CLEAN


def test_dde_path_with_sheet_count_but_dde_items_is_still_a_dde_link() -> None:
    stream = xw.workbook_stream(
        [xw.Sheet("Sheet1")],
        [xw.supbook_dde("cmd", "/c calc.exe", ctab=3), xw.externname("A0", xw.WANT_ADVISE)],
    )
    [finding] = scan_stream(stream).findings
    assert finding.technique is Technique.DDE_LINK
    assert finding.process.command_line == CMD
    assert "ctab is 3, not the 0 of a DDE source; its items carry DDE flags" in (
        finding.evidence.steps
    )


def test_supbook_path_continued_in_a_continue_record() -> None:
    # The virtual path starts as 8-bit characters and goes on, after a CONTINUE record
    # boundary, as UTF-16 (its own flag byte), as [MS-XLS] 2.1.4 allows.
    path = "cmd\x03/c calc.exe"
    head = struct.pack("<HH", 0, len(path)) + b"\x00" + path[:5].encode("latin-1")
    tail = b"\x01" + path[5:].encode("utf-16-le")
    supbook = xw.record(xw.RT_SUPBOOK, head) + xw.record(xw.RT_CONTINUE, tail)
    stream = xw.workbook_stream([xw.Sheet("Sheet1")], [supbook, xw.externname("A0")])
    [finding] = scan_stream(stream).findings
    assert finding.dde is not None
    assert (finding.dde.application, finding.dde.topic) == ("cmd", "/c calc.exe")


def test_sheet_hidden_inside_another_record_is_read_from_lbplypos() -> None:
    # The sheet's BOF..EOF sits inside the body of an unknown globals record: a linear walk
    # skips it, Excel seeks to lbPlyPos and reads it.
    hidden = xw.bof(xw.DT_WORKSHEET) + xw.formula(0, 0, NAMEX) + xw.eof()
    carrier = xw.record(0x0868, hidden)
    links = [
        xw.supbook_dde("cmd", "/c calc.exe"),
        xw.externname("A0"),
        xw.externsheet([(0, -2, -2)]),
    ]
    head = xw.bof(xw.DT_GLOBALS) + xw.codepage()
    entry_size = len(xw.boundsheet(0, "Sheet1"))
    sheet_at = len(head) + entry_size + 4
    stream = head + xw.boundsheet(sheet_at, "Sheet1") + carrier + b"".join(links) + xw.eof()
    report = scan_stream(stream)
    [formula] = only(report, Technique.DDE_FORMULA)
    assert formula.location.detail == "Sheet1!A1"
    assert formula.evidence.steps[0] == (
        f"sheet 'Sheet1' is read from its lbPlyPos {sheet_at}, inside another record"
    )


# Excel 4.0 macro sheets


def macro(*cells: bytes) -> bytes:
    return xw.workbook_stream([xw.Sheet("Macro1", list(cells), kind=1)])


def test_xlm_initiate_with_string_arguments() -> None:
    rgce = xw.ptg_str("cmd") + xw.ptg_str("/c calc.exe") + xw.ptg_func(xw.FTAB_INITIATE)
    report = scan_stream(macro(xw.formula(0, 0, rgce)))
    [finding] = report.findings
    assert finding.technique is Technique.DDE_FORMULA
    assert finding.location.detail == "Macro1!A1"
    assert finding.evidence.raw == '=INITIATE("cmd","/c calc.exe")'
    assert finding.evidence.deobfuscated == "cmd|'/c calc.exe'"
    assert finding.dde is not None and finding.dde.keyword == "INITIATE()"
    assert finding.process.command_line == CMD
    assert finding.evidence.steps[0] == "sheet 'Macro1' is an Excel 4.0 macro sheet"
    assert report.verdict is Verdict.MALICIOUS


def test_xlm_initiate_with_concatenated_and_char_arguments() -> None:
    rgce = (
        xw.ptg_int(99)
        + xw.ptg_func(xw.FTAB_CHAR)
        + xw.ptg_str("md")
        + xw.PTG_CONCAT
        + xw.ptg_str("/c calc.exe")
        + xw.ptg_funcvar(2, xw.FTAB_INITIATE)
    )
    [finding] = scan_stream(macro(xw.formula(0, 0, rgce))).findings
    assert finding.evidence.raw == '=INITIATE(CHAR(99)&"md","/c calc.exe")'
    assert finding.process.command_line == CMD


def test_xlm_alert_macro_is_clean() -> None:
    rgce = xw.ptg_str("Hello from INITIATE") + xw.ptg_funcvar(1, xw.CETAB_ALERT, command=True)
    report = scan_stream(macro(xw.formula(0, 0, rgce)))
    assert report.findings == ()
    assert report.verdict is Verdict.CLEAN


# Clean workbooks


def test_clean_workbook_with_self_and_external_links() -> None:
    links = [
        xw.supbook_self(2),
        xw.supbook_external("\x01\x01C\x03data\x03prices.xls", ["Prices"]),
        xw.externname("Total", 0),
        xw.externsheet([(0, 1, 1), (1, 0, 0)]),
    ]
    cells = [
        xw.number(0, 0, 1.5),
        xw.formula(1, 0, xw.ptg_ref3d(0, 0, 0) + xw.ptg_int(2) + xw.PTG_ADD),
        xw.formula(2, 0, xw.ptg_namex(1, 1)),
        xw.formula(3, 0, xw.ptg_str("cmd|'/c calc.exe'!A0")),
    ]
    stream = xw.workbook_stream([xw.Sheet("Sheet1", cells), xw.Sheet("Sheet2")], links)
    report = scan_stream(stream)
    assert report.findings == ()
    assert report.problems == ()
    assert report.verdict is Verdict.CLEAN


# The decompiler


class _NoLinks:
    def external_name(self, ixti: int, iname: int) -> biff.Resolved:
        return biff.Resolved(f"EXT{ixti}_{iname}")

    def sheet_prefix(self, ixti: int) -> biff.Resolved:
        return biff.Resolved(f"'S{ixti}'!")

    def defined_name(self, index: int) -> str:
        return f"Name{index}"


@pytest.mark.parametrize(
    ("rgce", "text"),
    [
        (xw.ptg_int(1) + xw.ptg_int(2) + xw.PTG_ADD, "1+2"),
        (xw.ptg_ref(0, 0) + xw.ptg_ref(4, 27) + b"\x11", "A1:AB5"),
        (xw.ptg_int(1) + b"\x15" + b"\x13", "-(1)"),
        (xw.ptg_int(3) + xw.ptg_funcvar(1, xw.FTAB_SUM), "SUM(3)"),
        (xw.ptg_str('a"b') + xw.ptg_str("c") + xw.ptg_funcvar(2, 0x0150), '"a""b"&"c"'),
        (struct.pack("<BI", 0x23, 2), "Name2"),
        (xw.ptg_ref3d(1, 2, 3), "'S1'!D3"),
        (b"\x1d\x01" + b"\x1c\x07", "TRUE #DIV/0!"),
        (b"\x1f" + struct.pack("<d", 2.5), "2.5"),
    ],
)
def test_decompiler_writes_formula_text(rgce: bytes, text: str) -> None:
    assert decompile(rgce, BIFF8_PTGS, _NoLinks()).text == text


def test_decompiler_notes_a_missing_operand() -> None:
    # 0x0A is PtgLe: it wants two operands and finds one.
    result = decompile(xw.ptg_int(7) + b"\x0a", BIFF8_PTGS, _NoLinks())
    assert result.complete
    assert result.text == "?<=7"
    assert result.notes == ("a token wants more operands than the formula pushed",)


def test_decompiler_stops_at_unknown_token_and_says_so() -> None:
    result = decompile(xw.ptg_int(7) + b"\x9f", BIFF8_PTGS, _NoLinks())
    assert not result.complete
    assert result.text == "7"
    assert result.notes == (
        "unknown token 0x9F at byte 3 of the formula: the rest of it is not read",
    )


def test_decompiler_stops_at_token_past_the_end() -> None:
    result = decompile(b"\x17\x05\x00ab", BIFF8_PTGS, _NoLinks())
    assert not result.complete
    assert "runs past its end" in result.notes[0]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_decompiler_never_raises(rgce: bytes) -> None:
    result = decompile(rgce, BIFF8_PTGS, _NoLinks())
    assert isinstance(result.text, str)
    result = decompile(rgce, biff.XLSB_PTGS, _NoLinks())
    assert isinstance(result.text, str)


def test_decompiler_resolves_through_an_empty_workbook() -> None:
    book = Globals((), (), (), (), 0)
    result = decompile(NAMEX + xw.ptg_ref3d(5, 0, 0), BIFF8_PTGS, BiffLinks(book))
    assert result.dde == ()


# Damaged and unsupported workbooks


def kinds(report: ScanReport) -> list[ProblemKind]:
    return [problem.kind for problem in report.problems]


def test_record_running_past_the_end_of_the_stream() -> None:
    stream = xw.dde_workbook() + struct.pack("<HH", 0x0006, 500) + b"\0" * 20
    report = scan_stream(stream)
    assert kinds(report) == [ProblemKind.MALFORMED]
    message = report.problems[0].message
    assert message.startswith("record 0x0006 at offset ")
    assert "declares 500 bytes but only 20 remain in the stream" in message
    # Everything before the damage is still reported.
    assert [f.technique for f in report.findings] == [Technique.DDE_LINK]
    assert report.verdict is Verdict.MALICIOUS


def test_absurd_externsheet_count() -> None:
    body = struct.pack("<H", 60000) + struct.pack("<Hhh", 0, -2, -2)
    stream = xw.workbook_stream(
        [xw.Sheet("Sheet1", [xw.formula(0, 0, NAMEX)])],
        [
            xw.supbook_dde("cmd", "/c calc.exe"),
            xw.externname("A0"),
            xw.record(xw.RT_EXTERNSHEET, body),
        ],
    )
    report = scan_stream(stream)
    assert kinds(report) == [ProblemKind.MALFORMED]
    assert "declares 60000 entries but holds 1" in report.problems[0].message
    # The one entry that is there is still used.
    assert len(only(report, Technique.DDE_FORMULA)) == 1


def test_string_longer_than_its_record() -> None:
    supbook = xw.record(xw.RT_SUPBOOK, struct.pack("<HH", 0, 200) + b"\x00cmd\x03/c")
    stream = xw.workbook_stream([xw.Sheet("Sheet1")], [supbook, xw.externname("A0")])
    report = scan_stream(stream)
    assert kinds(report) == [ProblemKind.MALFORMED]
    assert report.problems[0].message.startswith("SUPBOOK at offset ")
    assert report.problems[0].message.endswith(
        "a string of 200 characters runs past the end of the record"
    )
    assert report.verdict is Verdict.ERROR


def test_formula_tokens_longer_than_the_record() -> None:
    bad = xw.record(xw.RT_FORMULA, struct.pack("<HHH", 0, 0, 15) + b"\0" * 14 + b"\xff\x00")
    report = scan_stream(xw.dde_workbook(cells=[bad, xw.formula(1, 0, NAMEX)]))
    assert kinds(report) == [ProblemKind.MALFORMED]
    problem = report.problems[0]
    assert problem.location.detail == "sheet Sheet1"
    assert "declares 255 bytes of tokens but holds 0" in problem.message
    # The sheet's other formula is still read.
    assert [f.location.detail for f in only(report, Technique.DDE_FORMULA)] == ["Sheet1!A2"]


def test_stream_not_starting_with_bof() -> None:
    report = scan_stream(xw.record(0x0042, b"\xb0\x04") + xw.dde_workbook())
    assert kinds(report) == [ProblemKind.MALFORMED]
    assert report.problems[0].message == (
        "workbook stream does not start with a BOF record (0x0809) but with 0x0042"
    )


def test_biff5_and_older_are_unsupported_not_errors() -> None:
    biff5 = xw.bof(xw.DT_GLOBALS, version=0x0500) + xw.eof()
    report = scan_bytes(xw.xls_file(biff5, "Book"), "old.xls")
    assert kinds(report) == [ProblemKind.UNSUPPORTED]
    assert "BIFF5" in report.problems[0].message
    assert report.verdict is Verdict.CLEAN
    biff4 = xw.record(0x0409, struct.pack("<HHH", 0, 0x10, 0)) + xw.eof()
    report = scan_stream(biff4)
    assert kinds(report) == [ProblemKind.UNSUPPORTED]
    assert report.problems[0].message.startswith("Excel 4.0 worksheet (BIFF2-4)")


def test_filepass_later_in_the_globals_locks_the_rest() -> None:
    stream = xw.dde_workbook()
    bof = xw.bof(xw.DT_GLOBALS)
    filepass = xw.record(xw.RT_FILEPASS, b"\x01\x00" + b"\0" * 52)
    locked = bof + xw.codepage() + filepass + stream[len(bof) :]
    findings, errors = drain(scan_workbook_stream(locked, context()))
    assert findings == []
    assert len(errors) == 1 and isinstance(errors[0], EncryptedInput)
    # A stream that was decrypted in place keeps its FILEPASS record: it can be skipped.
    findings, errors = drain(scan_workbook_stream(locked, context(), ignore_filepass=True))
    assert errors == []
    assert [f.process.command_line for f in findings] == [CMD]


_VALID = xw.dde_workbook(
    cells=[
        xw.formula(3, 1, NAMEX),
        xw.formula(4, 1, xw.ptg_str("cmd") + xw.ptg_str("/c x") + xw.ptg_func(0xAF)),
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(0, len(_VALID) - 1), st.integers(0, 255)), min_size=1, max_size=8
    ),
    st.integers(0, len(_VALID)),
)
def test_mutated_streams_raise_only_typed_errors(flips: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(_VALID)
    for at, value in flips:
        data[at] = value
    stream = bytes(data[: max(cut, 4)])
    findings, _errors = drain(scan_workbook_stream(stream, context()))
    assert all(isinstance(f, Finding) for f in findings)


def test_time_limit_is_checked_while_walking() -> None:
    cells = [xw.formula(row, 0, xw.ptg_int(1)) for row in range(5000)]
    stream = xw.dde_workbook(cells=cells)
    config = ScanConfig()
    ctx = context(config)
    expired = ScanContext(
        config=config,
        location=ctx.location,
        host=None,
        depth=0,
        deadline=time.monotonic() - 1,
        budget=ctx.budget,
    )
    with pytest.raises(ScanTimeout):
        drain(scan_workbook_stream(stream, expired))


# oletools' public test files


def _oletools(*parts: str) -> Path:
    return OLETOOLS.joinpath(*parts)


@pytest.mark.skipif(not (OLETOOLS / "excel4-macros").is_dir(), reason="oletools files absent")
@pytest.mark.parametrize(
    "name",
    ["excel4_sample_macro.xls", "excel4_sample_macro.xlt", "excel4_sample_macro_excel5_format.xls"],
)
def test_oletools_excel4_macros_have_no_dde(name: str) -> None:
    report = scan_path(_oletools("excel4-macros", name))
    assert report.format is FileFormat.XLS
    assert report.findings == ()
    assert ProblemKind.INTERNAL not in kinds(report)
    assert ProblemKind.MALFORMED not in kinds(report)


@pytest.mark.skipif(not (OLETOOLS / "encrypted").is_dir(), reason="oletools files absent")
def test_oletools_encrypted_dde_workbook_once_decrypted() -> None:
    # Not ours to open (the encrypted-Office handler decrypts it), but ours to read after.
    report = scan_path(_oletools("encrypted", "dde-test-encrypt-standardpassword.xls"))
    formulas = only(report, Technique.DDE_FORMULA)
    assert [f.process.command_line for f in formulas] == [CMD]
    assert formulas[0].location.detail == "Tabelle1!B4"
    assert [f.process.command_line for f in only(report, Technique.DDE_LINK)] == [CMD]


_EXCEL_FILES = sorted(
    path
    for path in (OLETOOLS.rglob("*") if OLETOOLS.is_dir() else [])
    if path.is_file() and path.suffix.lower() in {".xls", ".xlt", ".xla", ".xlsb"}
)


@pytest.mark.skipif(not _EXCEL_FILES, reason="oletools files absent")
@pytest.mark.parametrize("path", _EXCEL_FILES, ids=lambda p: p.name)
def test_oletools_excel_files_scan_without_internal_errors(path: Path) -> None:
    report = scan_path(path)
    assert ProblemKind.INTERNAL not in kinds(report), report.problems
