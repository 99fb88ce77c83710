"""Excel packages (scanner.formats.spreadsheetml), built by hand with zipfile."""

from __future__ import annotations

import io
import time
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import pytest
from conftest import OLETOOLS
from hypothesis import given, settings
from hypothesis import strategies as st

from scanner.api import scan_bytes
from scanner.formats.base import ByteBudget, PartScan, ScanContext, ScanItem
from scanner.formats.package import Package
from scanner.formats.spreadsheetml import scan_workbook
from scanner.model import (
    FileFormat,
    Finding,
    Location,
    ProblemKind,
    ScanConfig,
    ScanReport,
    Technique,
    Verdict,
)

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
R_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
WORKBOOK_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
SHEET_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
LINK_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml.externalLink+xml"
NAME = "book.xlsx"
SHEET1 = "xl/worksheets/sheet1.xml"


@dataclass(frozen=True)
class Sheet:
    name: str
    body: str
    state: str = ""
    kind: str = "worksheet"
    part: str = ""


def worksheet(body: str, *, root: str = "worksheet", prefix: str = "") -> str:
    colon = ":" if prefix else ""
    xmlns = f"xmlns{colon}{prefix}"
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<{prefix}{colon}{root} {xmlns}="{MAIN_NS}" xmlns:r="{R_NS}">{body}'
        f"</{prefix}{colon}{root}>"
    )


def cells(*cells: str) -> str:
    return '<sheetData><row r="1">' + "".join(cells) + "</row></sheetData>"


def formula_cell(ref: str, formula: str, attributes: str = "") -> str:
    return f'<c r="{ref}"><f{attributes}>{formula}</f><v>0</v></c>'


def dde_link(service: str, topic: str, *items: str) -> str:
    item_xml = "".join(f'<ddeItem name="{item}" advise="1"/>' for item in items)
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<externalLink xmlns="{MAIN_NS}"><ddeLink xmlns:r="{R_NS}" ddeService="{service}" '
        f'ddeTopic="{topic}"><ddeItems>{item_xml}</ddeItems></ddeLink></externalLink>'
    )


def external_book() -> str:
    return (
        f'<externalLink xmlns="{MAIN_NS}" xmlns:r="{R_NS}"><externalBook r:id="rId1">'
        '<sheetNames><sheetName val="Data"/></sheetNames></externalBook></externalLink>'
    )


def xlsx(
    sheets: list[Sheet],
    *,
    names: str = "",
    links: list[str] | None = None,
    extra: dict[str, str | bytes] | None = None,
    list_links: bool = True,
) -> bytes:
    links = links or []
    rels: list[str] = []
    sheet_entries: list[str] = []
    parts: dict[str, str | bytes] = {}
    overrides = {"/xl/workbook.xml": WORKBOOK_CT}
    for position, sheet in enumerate(sheets, start=1):
        folder = "macrosheets" if sheet.kind == "xlMacrosheet" else "worksheets"
        part = sheet.part or f"xl/{folder}/sheet{position}.xml"
        rels.append(
            f'<Relationship Id="rIdS{position}" Type="{REL}{sheet.kind}" '
            f'Target="{part.removeprefix("xl/")}"/>'
        )
        state = f' state="{sheet.state}"' if sheet.state else ""
        sheet_entries.append(
            f'<sheet name="{sheet.name}" sheetId="{position}"{state} r:id="rIdS{position}"/>'
        )
        parts[part] = sheet.body
        overrides["/" + part] = SHEET_CT
    references: list[str] = []
    for position, link in enumerate(links, start=1):
        part = f"xl/externalLinks/externalLink{position}.xml"
        rels.append(
            f'<Relationship Id="rIdL{position}" Type="{REL}externalLink" '
            f'Target="externalLinks/externalLink{position}.xml"/>'
        )
        references.append(f'<externalReference r:id="rIdL{position}"/>')
        parts[part] = link
        overrides["/" + part] = LINK_CT
    workbook = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<workbook xmlns="{MAIN_NS}" xmlns:r="{R_NS}"><sheets>{"".join(sheet_entries)}</sheets>'
        + (
            f"<externalReferences>{''.join(references)}</externalReferences>"
            if references and list_links
            else ""
        )
        + (f"<definedNames>{names}</definedNames>" if names else "")
        + "</workbook>"
    )
    content_types = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        + "".join(f'<Override PartName="{n}" ContentType="{ct}"/>' for n, ct in overrides.items())
        + "</Types>"
    )
    root_rels = (
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        f'<Relationship Id="rId1" Type="{REL}officeDocument" Target="xl/workbook.xml"/>'
        "</Relationships>"
    )
    workbook_rels = (
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        + "".join(rels)
        + "</Relationships>"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", content_types)
        archive.writestr("_rels/.rels", root_rels)
        archive.writestr("xl/workbook.xml", workbook)
        archive.writestr("xl/_rels/workbook.xml.rels", workbook_rels)
        for name, data in {**parts, **(extra or {})}.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def scan(data: bytes) -> ScanReport:
    return scan_bytes(data, NAME)


def summary(report: ScanReport) -> list[tuple[str, str, str, str]]:
    return [
        (
            finding.technique.value,
            finding.location.containers[-1],
            finding.location.detail,
            finding.evidence.deobfuscated,
        )
        for finding in report.findings
    ]


def test_formula_cell() -> None:
    report = scan(xlsx([Sheet("Sheet1", worksheet(cells(formula_cell("A1", "cmd|'/c calc'!A0"))))]))
    assert report.format is FileFormat.XLSX
    assert report.problems == ()
    (finding,) = report.findings
    assert finding.technique is Technique.DDE_FORMULA
    assert finding.location == Location((NAME, SHEET1), "Sheet1!A1")
    assert finding.evidence.raw == "cmd|'/c calc'!A0"
    assert finding.evidence.deobfuscated == "cmd|'/c calc'!A0"
    assert finding.process.parent == "EXCEL.EXE"
    assert finding.process.image == "cmd.exe"
    assert finding.process.command_line == "cmd /c calc"
    assert finding.verdict is Verdict.MALICIOUS


def test_string_results_and_literals_are_not_formulas() -> None:
    body = cells(
        '<c r="A1" t="inlineStr"><is><t>=cmd|\'/c calc\'!A0</t></is></c>',
        formula_cell("B1", "\"cmd|'/c calc'!A0\""),
        formula_cell("C1", "SUM(A1:A3)"),
        '<c r="D1" t="str"><f>HYPERLINK("https://example.invalid")</f><v>x</v></c>',
    )
    report = scan(xlsx([Sheet("Sheet1", worksheet(body))]))
    assert report.findings == ()
    assert report.problems == ()
    assert report.verdict is Verdict.CLEAN


def test_shared_formula_reports_the_master_once() -> None:
    body = (
        '<sheetData><row r="2">'
        + formula_cell("B2", "cmd|'/c calc'!A0", ' t="shared" ref="B2:B4" si="0"')
        + '</row><row r="3"><c r="B3"><f t="shared" si="0"/><v>0</v></c></row>'
        '<row r="4"><c r="B4"><f t="shared" si="0"/><v>0</v></c></row></sheetData>'
    )
    (finding,) = scan(xlsx([Sheet("Sheet1", worksheet(body))])).findings
    assert finding.location.detail == "Sheet1!B2"
    assert finding.evidence.steps[0] == "shared formula 0: master cell, used by B2:B4"


def test_array_formula_and_data_table() -> None:
    body = cells(
        formula_cell("A1", "cmd|'/c calc'!A0", ' t="array" ref="A1:A2"'),
        '<c r="B1"><f t="dataTable" ref="B1:B3" dt2D="0" dtr="0" r1="A1"/></c>',
    )
    (finding,) = scan(xlsx([Sheet("Sheet1", worksheet(body))])).findings
    assert finding.location.detail == "Sheet1!A1"
    assert finding.evidence.steps[0] == "array formula over A1:A2"


def test_hidden_and_very_hidden_sheets() -> None:
    formula = "notepad|'x.txt'!A0"
    report = scan(
        xlsx(
            [
                Sheet("Visible", worksheet(cells())),
                Sheet("Sheet2", worksheet(cells(formula_cell("B7", formula))), "hidden"),
                Sheet("Sheet3", worksheet(cells(formula_cell("C1", formula))), "veryHidden"),
            ]
        )
    )
    assert summary(report) == [
        ("dde-formula", "xl/worksheets/sheet2.xml", "Sheet2 (hidden)!B7", formula),
        ("dde-formula", "xl/worksheets/sheet3.xml", "Sheet3 (veryHidden)!C1", formula),
    ]
    assert report.findings[1].evidence.steps == ("sheet 'Sheet3' is veryHidden",)
    assert report.findings[1].process.image == "notepad.exe"


def test_defined_names() -> None:
    names = (
        '<definedName name="payload" hidden="1">cmd|\'/c calc\'!A0</definedName>'
        '<definedName name="local" localSheetId="0">Sheet1!$A$1+notepad|\'x\'!A0</definedName>'
        '<definedName name="_xlnm.Print_Area" localSheetId="0">Sheet1!$A$1:$B$2</definedName>'
    )
    report = scan(xlsx([Sheet("Sheet1", worksheet(cells()))], names=names))
    assert summary(report) == [
        ("dde-formula", "xl/workbook.xml", 'defined name "local" (sheet Sheet1)', "notepad|'x'!A0"),
        ("dde-formula", "xl/workbook.xml", 'defined name "payload" (hidden)', "cmd|'/c calc'!A0"),
    ]


def test_dde_link_without_a_cell_using_it() -> None:
    report = scan(
        xlsx(
            [Sheet("Sheet1", worksheet(cells()))],
            links=[dde_link("cmd", "/c calc.exe", "_xlbgnm.A1", "StdDocumentName")],
        )
    )
    (finding,) = report.findings
    assert finding.technique is Technique.DDE_LINK
    assert finding.location == Location(
        (NAME, "xl/externalLinks/externalLink1.xml"), "external link [1]"
    )
    assert finding.dde is not None
    assert (finding.dde.application, finding.dde.topic) == ("cmd", "/c calc.exe")
    assert finding.dde.item == "_xlbgnm.A1, StdDocumentName"
    assert finding.dde.keyword == "ddeLink"
    assert finding.dde.automatic
    assert finding.evidence.raw == (
        '<ddeLink ddeService="cmd" ddeTopic="/c calc.exe"> items: _xlbgnm.A1, StdDocumentName'
    )
    assert finding.evidence.deobfuscated == "cmd|'/c calc.exe'"
    assert finding.process.image == "cmd.exe"
    assert finding.process.command_line == "cmd /c calc.exe"


def test_link_index_resolves_to_the_dde_link() -> None:
    body = cells(
        formula_cell("B4", "[2]!_xlbgnm.A1"),
        formula_cell("C4", "[1]Data!A1"),
        formula_cell("D4", "[7]!A1"),
    )
    report = scan(
        xlsx(
            [Sheet("Tabelle1", worksheet(body))],
            links=[external_book(), dde_link("cmd", "/c calc.exe", "_xlbgnm.A1")],
        )
    )
    assert summary(report) == [
        (
            "dde-link",
            "xl/externalLinks/externalLink2.xml",
            "external link [2]",
            "cmd|'/c calc.exe'",
        ),
        ("dde-formula", SHEET1, "Tabelle1!B4", "cmd|'/c calc.exe'!_xlbgnm.A1"),
    ]
    cell = report.findings[1]
    assert cell.evidence.raw == "[2]!_xlbgnm.A1"
    assert cell.evidence.steps == (
        "[2]!_xlbgnm.A1: external link [2] of the workbook is "
        "xl/externalLinks/externalLink2.xml, a DDE link: read as cmd|'/c calc.exe'!_xlbgnm.A1",
    )
    assert cell.dde is not None
    assert cell.dde.item == "_xlbgnm.A1"
    assert cell.process.command_line == "cmd /c calc.exe"


def test_link_not_listed_in_external_references() -> None:
    report = scan(
        xlsx(
            [Sheet("Sheet1", worksheet(cells(formula_cell("A1", "[1]!A1"))))],
            links=[dde_link("cmd", "/c calc.exe")],
            list_links=False,
        )
    )
    # The link part is still reported; the cell cannot be resolved without the table.
    assert summary(report) == [
        ("dde-link", "xl/externalLinks/externalLink1.xml", "ddeLink", "cmd|'/c calc.exe'"),
    ]
    assert report.findings[0].evidence.steps == ("not listed in the workbook's externalReferences",)


def test_conditional_formatting_and_data_validation() -> None:
    body = (
        cells() + '<conditionalFormatting sqref="A1:A5"><cfRule type="expression" priority="1">'
        "<formula>cmd|'/c calc'!A0</formula></cfRule></conditionalFormatting>"
        '<dataValidations count="1"><dataValidation type="list" sqref="B1:B3">'
        "<formula1>notepad|'x'!A0</formula1><formula2>1</formula2></dataValidation>"
        "</dataValidations>"
    )
    report = scan(xlsx([Sheet("Sheet1", worksheet(body))]))
    assert summary(report) == [
        ("dde-formula", SHEET1, "Sheet1 conditional formatting A1:A5", "cmd|'/c calc'!A0"),
        ("dde-formula", SHEET1, "Sheet1 data validation B1:B3", "notepad|'x'!A0"),
    ]


def test_x14_extension_formula() -> None:
    body = (
        cells() + '<extLst><ext uri="{78C0D931-6437-407d-A8EE-F0AAD7539E65}" '
        'xmlns:x14="http://schemas.microsoft.com/office/spreadsheetml/2009/9/main">'
        '<x14:conditionalFormattings><x14:conditionalFormatting xmlns:xm="http://schemas.'
        'microsoft.com/office/excel/2006/main"><x14:cfRule type="expression" priority="2">'
        "<xm:f>cmd|'/c calc'!A0</xm:f></x14:cfRule><xm:sqref>C1</xm:sqref>"
        "</x14:conditionalFormatting></x14:conditionalFormattings></ext></extLst>"
    )
    (finding,) = scan(xlsx([Sheet("Sheet1", worksheet(body))])).findings
    assert finding.location.detail == "Sheet1 conditional formatting"
    assert finding.evidence.deobfuscated == "cmd|'/c calc'!A0"


def test_orphan_part_is_scanned() -> None:
    orphan = worksheet(cells(formula_cell("A1", "cmd|'/c calc'!A0")))
    report = scan(
        xlsx([Sheet("Sheet1", worksheet(cells()))], extra={"xl/worksheets/sheet9.xml": orphan})
    )
    (finding,) = report.findings
    assert finding.location == Location(
        (NAME, "xl/worksheets/sheet9.xml"), "(not a workbook sheet)!A1"
    )
    assert finding.evidence.steps == ("part is not one of the sheets the workbook lists",)


def test_chart_series_formula() -> None:
    chart = (
        '<c:chartSpace xmlns:c="http://schemas.openxmlformats.org/drawingml/2006/chart">'
        "<c:chart><c:plotArea><c:barChart><c:ser><c:tx><c:strRef>"
        "<c:f>cmd|'/c calc'!A0</c:f></c:strRef></c:tx></c:ser></c:barChart></c:plotArea>"
        "</c:chart></c:chartSpace>"
    )
    report = scan(
        xlsx([Sheet("Sheet1", worksheet(cells()))], extra={"xl/charts/chart1.xml": chart})
    )
    (finding,) = report.findings
    assert finding.location == Location(
        (NAME, "xl/charts/chart1.xml"), "(not a workbook sheet) formula 1"
    )
    assert finding.evidence.deobfuscated == "cmd|'/c calc'!A0"


def test_macrosheet_initiate() -> None:
    body = worksheet(cells(formula_cell("A1", 'INITIATE("cmd","/c calc")')), root="xm:macrosheet")
    body = body.replace(
        'xmlns="', 'xmlns:xm="http://schemas.microsoft.com/office/excel/2006/main" xmlns="'
    )
    report = scan(xlsx([Sheet("Macro1", body, kind="xlMacrosheet")]))
    (finding,) = report.findings
    assert finding.location == Location((NAME, "xl/macrosheets/sheet1.xml"), "Macro1!A1")
    assert finding.dde is not None
    assert finding.dde.keyword == "INITIATE()"
    assert finding.evidence.deobfuscated == "cmd|'/c calc'"


def test_prefixed_elements_and_character_references() -> None:
    body = worksheet(
        '<x:sheetData><x:row r="1"><x:c r="A1"><x:f>cmd&#124;\'/c calc\'!A0</x:f></x:c>'
        "</x:row></x:sheetData>",
        prefix="x",
    )
    (finding,) = scan(xlsx([Sheet("Sheet1", body)])).findings
    assert finding.location.detail == "Sheet1!A1"
    assert finding.evidence.raw == "cmd|'/c calc'!A0"


def test_utf16_sheet_part() -> None:
    body = worksheet(cells(formula_cell("A1", "cmd|'/c calc'!A0"))).replace("UTF-8", "UTF-16")
    data = b"\xff\xfe" + body.encode("utf-16-le")
    (finding,) = scan(xlsx([Sheet("Sheet1", "")], extra={SHEET1: data})).findings
    assert finding.location.detail == "Sheet1!A1"


def test_malformed_part_costs_only_itself() -> None:
    good = worksheet(cells(formula_cell("A1", "cmd|'/c calc'!A0")))
    # What streams before the damage is kept; what follows it is lost with the part.
    bad = worksheet(
        cells(
            formula_cell("A1", "cmd|'/c calc'!A0"),
            '<c r="A2"><v>1</c>',
            formula_cell("A3", "notepad|'x'!A0"),
        )
    )
    report = scan(xlsx([Sheet("Bad", bad), Sheet("Good", good)]))
    assert summary(report) == [
        ("dde-formula", SHEET1, "Bad!A1", "cmd|'/c calc'!A0"),
        ("dde-formula", "xl/worksheets/sheet2.xml", "Good!A1", "cmd|'/c calc'!A0"),
    ]
    (problem,) = report.problems
    assert problem.kind is ProblemKind.MALFORMED
    assert problem.location == Location((NAME, SHEET1))
    assert "not well-formed XML" in problem.message


def test_doctype_is_refused() -> None:
    bad = (
        '<?xml version="1.0"?><!DOCTYPE worksheet [<!ENTITY e "cmd">]>'
        + worksheet(cells(formula_cell("A1", "&e;|'/c calc'!A0"))).split("?>", 1)[1]
    )
    report = scan(xlsx([Sheet("Sheet1", bad)]))
    assert report.findings == ()
    (problem,) = report.problems
    assert problem.kind is ProblemKind.MALFORMED
    assert "DOCTYPE" in problem.message


def test_malformed_workbook_part_still_scans_sheets() -> None:
    data = xlsx([Sheet("Sheet1", worksheet(cells(formula_cell("A1", "cmd|'/c calc'!A0"))))])
    buffer = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(buffer, "w") as target:
        for info in source.infolist():
            content = source.read(info)
            if info.filename == "xl/workbook.xml":
                content = content.replace(b"</workbook>", b"")
            target.writestr(info, content)
    report = scan(buffer.getvalue())
    assert summary(report) == [
        ("dde-formula", SHEET1, "(not a workbook sheet)!A1", "cmd|'/c calc'!A0"),
    ]
    assert [(p.kind, p.location.containers) for p in report.problems] == [
        (ProblemKind.MALFORMED, (NAME, "xl/workbook.xml")),
    ]


def _run(items: Iterable[ScanItem]) -> tuple[list[Finding], list[Location]]:
    """Run scan items as the walker does (each PartScan when it comes), without the registry."""
    findings: list[Finding] = []
    part_locations: list[Location] = []
    stack: list[Iterator[ScanItem]] = [iter(items)]
    while stack:
        item = next(stack[-1], None)
        if item is None:
            stack.pop()
        elif isinstance(item, PartScan):
            part_locations.append(item.location)
            stack.append(iter(item.run()))
        elif isinstance(item, Finding):
            findings.append(item)
    return findings, part_locations


def test_scan_workbook_directly_yields_one_part_scan_per_part() -> None:
    data = xlsx(
        [Sheet("Sheet1", worksheet(cells(formula_cell("A1", "cmd|'/c calc'!A0"))))],
        links=[dde_link("cmd", "/c calc.exe", "A0")],
        extra={"xl/styles.xml": f'<styleSheet xmlns="{MAIN_NS}"/>'},
    )
    ctx = ScanContext(
        config=ScanConfig(),
        location=Location((NAME,)),
        host=None,
        depth=0,
        deadline=time.monotonic() + 30,
        budget=ByteBudget(1 << 30),
    )
    findings, parts = _run(scan_workbook(Package(data, ctx), "xl/workbook.xml", ctx))
    assert [p.containers[-1] for p in parts] == [
        "xl/workbook.xml",
        "xl/externalLinks/externalLink1.xml",
        SHEET1,
        "xl/styles.xml",
    ]
    assert [(f.technique, f.location.detail) for f in findings] == [
        (Technique.DDE_LINK, "external link [1]"),
        (Technique.DDE_FORMULA, "Sheet1!A1"),
    ]


@pytest.mark.parametrize("name", ["dde-test.xlsx", "dde-test.xlsm"])
def test_oletools_samples(name: str) -> None:
    sample = OLETOOLS / "msodde" / name
    if not sample.is_file():
        pytest.skip("shared/peers/oletools is not present")
    report = scan_bytes(sample.read_bytes(), name)
    assert report.problems == ()
    assert report.verdict is Verdict.MALICIOUS
    assert summary(report) == [
        (
            "dde-link",
            "xl/externalLinks/externalLink1.xml",
            "external link [1]",
            "cmd|'/c calc.exe'",
        ),
        ("dde-formula", SHEET1, "Tabelle1!B4", "cmd|'/c calc.exe'!_xlbgnm.A1"),
    ]
    for finding in report.findings:
        assert finding.dde is not None
        assert (finding.dde.application, finding.dde.topic) == ("cmd", "/c calc.exe")
        assert finding.process.image == "cmd.exe"
        assert finding.process.command_line == "cmd /c calc.exe"


def test_large_sheet_without_dde_is_skipped_quickly() -> None:
    rows = "".join(
        f'<row r="{r}">' + formula_cell(f"A{r}", f"SUM(B{r}:C{r})*2") + "</row>"
        for r in range(1, 50_001)
    )
    data = xlsx([Sheet("Sheet1", worksheet(f"<sheetData>{rows}</sheetData>"))])
    started = time.monotonic()
    report = scan(data)
    assert time.monotonic() - started < 5
    assert report.findings == ()
    assert report.problems == ()


def test_large_sheet_with_one_payload() -> None:
    rows = "".join(
        f'<row r="{r}">' + formula_cell(f"A{r}", f"SUM(B{r}:C{r})|x") + "</row>"
        for r in range(1, 20_001)
    )
    rows += '<row r="20001">' + formula_cell("A20001", "cmd|'/c calc'!A0") + "</row>"
    data = xlsx([Sheet("Sheet1", worksheet(f"<sheetData>{rows}</sheetData>"))])
    report = scan(data)
    assert [f.location.detail for f in report.findings] == ["Sheet1!A20001"]
    assert report.problems == ()


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=80))
def test_arbitrary_formula_text_never_breaks_the_scan(text: str) -> None:
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "")
    escaped = "".join(ch for ch in escaped if ch in "\t\n" or " " <= ch <= "\ud7ff")
    report = scan(xlsx([Sheet("Sheet1", worksheet(cells(formula_cell("A1", escaped))))]))
    assert all(p.kind is not ProblemKind.INTERNAL for p in report.problems)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_part_bytes_never_break_the_scan(data: bytes) -> None:
    report = scan(
        xlsx(
            [Sheet("Sheet1", "")],
            links=["x"],
            extra={SHEET1: b"<f>|" + data, "xl/externalLinks/externalLink1.xml": data},
        )
    )
    assert all(p.kind is not ProblemKind.INTERNAL for p in report.problems)
