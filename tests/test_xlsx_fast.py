"""The fast path of scanner.formats.spreadsheetml against the full parse.

The fast path leaves rows with no trigger byte out of the parse (after libxml2 has checked
the whole part with each cut wrapped in an element of its own). These tests hold it to the
full parse: identical findings and problems on every corpus sample and on generated sheets
whose DDE formulas are spelled every way XML allows, at every window and piece boundary.
"""

from __future__ import annotations

import re
import time
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from unittest.mock import patch

import pytest
from conftest import OLETOOLS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_spreadsheetml import Sheet
from test_spreadsheetml import xlsx as spreadsheet_package

from scanner import formulas
from scanner.api import scan_bytes
from scanner.formats import spreadsheetml
from scanner.formats.base import ByteBudget, ScanContext
from scanner.formats.package import safe_iterparse
from scanner.model import Location, ProblemKind, ScanConfig, ScanReport, Technique

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
R_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
NAME = "book.xlsx"
SHEET = "xl/worksheets/sheet1.xml"
CONFIG = ScanConfig(yara_enabled=False)
CORPUS = Path(__file__).resolve().parents[1] / "corpus"

# The full parse only, and the fast path tried on every part, with any cut worth making.
FULL = spreadsheetml._FastPath(min_part=1 << 62)
EAGER = spreadsheetml._FastPath(min_part=0, min_cut=0, min_share=0.0)

DDE_CMD = "cmd|'/c calc'!A0"
DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'


def xlsx(sheet: str | bytes, *, state: str = "", links: tuple[str, ...] = ()) -> bytes:
    """A workbook with one sheet "Data" (part SHEET) and external links listed in order."""
    return spreadsheet_package([Sheet("Data", sheet, state)], links=list(links))


def dde_link(service: str = "cmd", topic: str = "/c calc.exe") -> str:
    return (
        f'{DECLARATION}<externalLink xmlns="{MAIN_NS}"><ddeLink ddeService="{service}" '
        f'ddeTopic="{topic}"><ddeItems><ddeItem name="A0" advise="1"/></ddeItems></ddeLink>'
        "</externalLink>"
    )


def sheet_xml(rows: list[str], after: str = "", prefix: str = "") -> str:
    p = f"{prefix}:" if prefix else ""
    xmlns = f"xmlns:{prefix}" if prefix else "xmlns"
    return (
        f'{DECLARATION}<{p}worksheet {xmlns}="{MAIN_NS}" xmlns:r="{R_NS}">'
        f"<{p}sheetData>{''.join(rows)}</{p}sheetData>{after}</{p}worksheet>"
    )


def ordinary_row(row: int, prefix: str = "") -> str:
    p = f"{prefix}:" if prefix else ""
    cells = [f'<{p}c r="A{row}"><{p}v>{row}</{p}v></{p}c>']
    for column, letter in enumerate("BCDEFG", start=1):
        formula = f"SUM(A{row}:{letter}{row})*{column}" if column % 2 else f"IF(A{row}&gt;1,0,1)"
        cells.append(f'<{p}c r="{letter}{row}"><{p}f>{formula}</{p}f><{p}v>0</{p}v></{p}c>')
    return f'<{p}row r="{row}" spans="1:7">' + "".join(cells) + f"</{p}row>"


def cell_row(row: int, formula: str, attributes: str = "", column: str = "A") -> str:
    return f'<row r="{row}"><c r="{column}{row}"><f{attributes}>{formula}</f><v>0</v></c></row>'


@contextmanager
def tuning(
    value: spreadsheetml._FastPath, window: int = 0, piece: int = 0, probes: int = -1
) -> Iterator[None]:
    with ExitStack() as stack:
        stack.enter_context(patch.object(spreadsheetml, "_TUNING", value))
        if window:
            stack.enter_context(patch.object(spreadsheetml, "_WINDOW", window))
        if piece:
            stack.enter_context(patch.object(spreadsheetml, "_PULL_PIECE", piece))
        if probes >= 0:
            stack.enter_context(patch.object(spreadsheetml, "_PAIR_PROBES", probes))
        yield


def scan(data: bytes, value: spreadsheetml._FastPath, **knobs: int) -> ScanReport:
    with tuning(value, **knobs):
        return scan_bytes(data, NAME, CONFIG)


def assert_same(data: bytes, **knobs: int) -> ScanReport:
    """The fast path's report equals the full parse's; returns the full parse's."""
    full = scan(data, FULL)
    fast = scan(data, EAGER, **knobs)
    assert fast.findings == full.findings
    assert fast.problems == full.problems
    return full


def context() -> ScanContext:
    return ScanContext(
        config=CONFIG,
        location=Location((NAME,)),
        host=None,
        depth=0,
        deadline=time.monotonic() + 60,
        budget=ByteBudget(1 << 30),
    )


def cuts(part: str | bytes, value: spreadsheetml._FastPath = EAGER) -> tuple[tuple[int, int], ...]:
    """The ranges the fast path leaves out of a sheet part (() when it does not apply)."""
    data = part.encode() if isinstance(part, str) else part
    ctx = context()
    with tuning(value):
        return spreadsheetml._plan_cuts(data, spreadsheetml._survey(data, ctx), ctx)


def summary(report: ScanReport) -> list[tuple[str, str, str, str]]:
    return [
        (
            finding.technique.value,
            finding.location.containers[-1],
            finding.location.detail,
            finding.evidence.raw,
        )
        for finding in report.findings
    ]


# Exact results, with the fast path engaged at its real settings.


def big_sheet(payload_rows: dict[int, str], rows: int = 1500, after: str = "") -> str:
    return sheet_xml(
        [payload_rows.get(row, ordinary_row(row)) for row in range(1, rows + 1)], after
    )


def test_large_sheet_cuts_all_but_the_payload_row() -> None:
    sheet = big_sheet({1500: cell_row(1500, DDE_CMD)})
    planned = cuts(sheet, spreadsheetml._TUNING)
    assert len(planned) == 1
    start, end = planned[0]
    assert sheet.encode()[start:].startswith(b'<row r="1" ')
    assert sheet.encode()[:end].endswith(b"</row>")
    assert b'<row r="1500">' in sheet.encode()[end:]
    report = scan_bytes(xlsx(sheet), NAME, CONFIG)
    (finding,) = report.findings
    assert finding.location == Location((NAME, SHEET), "Data!A1500")
    assert finding.evidence.raw == DDE_CMD
    assert finding.process.image == "cmd.exe"
    assert finding.process.command_line == "cmd /c calc"
    assert report.problems == ()
    assert_same(xlsx(sheet))


@pytest.mark.parametrize(
    ("spelled", "raw"),
    [
        ("cmd&#124;'/c calc'!A0", DDE_CMD),
        ("cmd&#x7C;'/c calc'!A0", DDE_CMD),
        ("cmd&#x7c;'/c calc'!A0", DDE_CMD),
        ("&#99;md|'/c calc'!A0", DDE_CMD),
        ('&#68;DE("cmd";"/c calc";"A0")', 'DDE("cmd";"/c calc";"A0")'),
        ('d&#x44;e("cmd";"/c calc";"A0")', 'dDe("cmd";"/c calc";"A0")'),
        ('iNiTiAtE("cmd","/c calc")', 'iNiTiAtE("cmd","/c calc")'),
    ],
)
def test_spelled_triggers_in_the_middle_of_a_large_sheet(spelled: str, raw: str) -> None:
    sheet = big_sheet({700: cell_row(700, spelled, column="C")})
    assert len(cuts(sheet, spreadsheetml._TUNING)) == 2
    report = assert_same(xlsx(sheet))
    assert summary(report) == [("dde-formula", SHEET, "Data!C700", raw)]


def test_shared_master_far_from_its_followers() -> None:
    rows = {
        300: cell_row(300, DDE_CMD, ' t="shared" ref="B300:B1400" si="0"', column="B"),
        **{
            row: f'<row r="{row}"><c r="B{row}"><f t="shared" si="0"/><v>0</v></c></row>'
            for row in range(301, 1401)
        },
    }
    sheet = big_sheet(rows)
    assert cuts(sheet, spreadsheetml._TUNING)
    report = assert_same(xlsx(sheet))
    (finding,) = report.findings
    assert finding.location.detail == "Data!B300"
    assert finding.evidence.steps[0] == "shared formula 0: master cell, used by B300:B1400"


def test_array_formula_hidden_sheet_and_link_index() -> None:
    rows = {
        200: cell_row(200, DDE_CMD, ' t="array" ref="D200:D201"', column="D"),
        1200: cell_row(1200, "[1]!A0", column="E"),
    }
    sheet = big_sheet(rows)
    data = xlsx(sheet, state="veryHidden", links=(dde_link(),))
    report = assert_same(data)
    assert [(f.technique, f.location.detail, f.evidence.deobfuscated) for f in report.findings] == [
        (Technique.DDE_LINK, "external link [1]", "cmd|'/c calc.exe'"),
        (Technique.DDE_FORMULA, "Data (veryHidden)!D200", DDE_CMD),
        (Technique.DDE_FORMULA, "Data (veryHidden)!E1200", "cmd|'/c calc.exe'!A0"),
    ]
    assert report.findings[1].evidence.steps == (
        "sheet 'Data' is veryHidden",
        "array formula over D200:D201",
    )


def test_conditional_formatting_validation_and_dde_link_after_the_rows() -> None:
    after = (
        '<conditionalFormatting sqref="A1:A9"><cfRule type="expression" priority="1">'
        f"<formula>{DDE_CMD}</formula></cfRule></conditionalFormatting>"
        '<dataValidations count="1"><dataValidation sqref="B2">'
        "<formula1>notepad|'x'!A0</formula1></dataValidation></dataValidations>"
        '<ddeLink ddeService="cmd" ddeTopic="/c calc"><ddeItems><ddeItem name="x"/>'
        "</ddeItems></ddeLink>"
    )
    sheet = big_sheet({}, after=after)
    assert cuts(sheet, spreadsheetml._TUNING)
    report = assert_same(xlsx(sheet))
    assert [f.location.detail for f in report.findings] == [
        "Data conditional formatting A1:A9",
        "Data data validation B2",
        "Data ddeLink",
    ]


def test_formula_outside_a_cell_is_located_by_the_full_parse() -> None:
    # Its place is "formula N", counted over every formula element before it, some of them
    # in cut rows: the fast path hands over to the full parse.
    sheet = big_sheet({900: f'<row r="900"><f>{DDE_CMD}</f></row>'})
    assert cuts(sheet, spreadsheetml._TUNING)
    report = assert_same(xlsx(sheet))
    assert [f.location.detail for f in report.findings] == [f"Data formula {899 * 6 + 1}"]


@pytest.mark.parametrize(
    "damage",
    [
        '<c r="A2"><v>1</c>',
        '<y:c r="A2"/>',
        '<c r="A2" a="1" a="2"/>',
        '<c r="A2" xmlns:z=""/>',
        '<c r="A2">&nbsp;</c>',
        '<c r="A2">\x01</c>',
        '<c xmlns:a="urn:a" xmlns:b="urn:a" a:x="1" b:x="2"/>',
    ],
)
def test_damage_in_a_row_that_would_be_cut(damage: str) -> None:
    rows = {400: f'<row r="400">{damage}</row>', 1400: cell_row(1400, DDE_CMD)}
    sheet = big_sheet(rows)
    assert cuts(sheet, spreadsheetml._TUNING) == ()
    report = assert_same(xlsx(sheet))
    (problem,) = report.problems
    assert problem.kind is ProblemKind.MALFORMED
    assert problem.location == Location((NAME, SHEET))


def test_damage_after_the_payload_keeps_what_came_before() -> None:
    rows = {100: cell_row(100, DDE_CMD), 1000: '<row r="1000"><c r="A1000"><v>1</c></row>'}
    report = assert_same(xlsx(big_sheet(rows)))
    assert [f.location.detail for f in report.findings] == ["Data!A100"]
    assert "not well-formed XML" in report.problems[0].message


@pytest.mark.parametrize(
    "formula",
    [
        'D<!---->DE("cmd";"/c calc";"A0")',
        'INITI<!-- x -->ATE("cmd","/c calc")',
        'DD<?pi x?>E("cmd";"/c calc";"A0")',
    ],
)
def test_comment_or_instruction_splitting_a_name(formula: str) -> None:
    # No trigger byte anywhere, yet the parser joins the text around the comment.
    sheet = sheet_xml([cell_row(1, formula)])
    report = assert_same(xlsx(sheet))
    (finding,) = report.findings
    assert finding.location.detail == "Data!A1"
    assert "DDE" in finding.evidence.raw.upper() or "INITIATE" in finding.evidence.raw.upper()


def test_comment_or_cdata_turns_the_fast_path_off() -> None:
    for extra in ("<!-- note -->", "<![CDATA[x]]>"):
        sheet = big_sheet({5: f'<row r="5"><c r="A5"><is><t>{extra}</t></is></c></row>'})
        assert cuts(sheet) == ()


def test_prefixed_sheet_is_cut_too() -> None:
    rows = [ordinary_row(row, "x") for row in range(1, 800)]
    rows.append('<x:row r="800"><x:c r="A800"><x:f>' + DDE_CMD + "</x:f></x:c></x:row>")
    sheet = sheet_xml(rows, prefix="x")
    assert cuts(sheet, spreadsheetml._TUNING)
    report = assert_same(xlsx(sheet))
    assert [f.location.detail for f in report.findings] == ["Data!A800"]


def test_marker_keeps_the_text_of_a_formula_around_cut_rows() -> None:
    # Rows inside a formula element (nonsense, but well-formed), cut whole: the text before
    # them is the formula's, the text after them is not, and they must stay apart.
    inner = "".join(ordinary_row(row) for row in range(2, 60))
    sheet = sheet_xml(
        [
            '<row r="1"><c r="A1" t="inlineStr"><is><t>|</t></is></c></row>',
            f"<c r=\"Z9\"><f>cmd{inner}|'/c calc'!A0</f></c>",
        ]
    )
    assert cuts(sheet)
    report = assert_same(xlsx(sheet))
    assert report.findings == ()
    assert report.problems == ()


def test_rows_around_the_root_are_not_cut() -> None:
    # Two root elements: "extra content" for the full parse; a cut around both must not
    # make a well-formed document of them.
    body = "".join(ordinary_row(row) for row in range(1, 40))
    for data in (DECLARATION + body + cell_row(99, DDE_CMD), cell_row(0, DDE_CMD) + body):
        assert cuts(data) == ()
        report = assert_same(xlsx(data))
        assert [p.kind for p in report.problems] == [ProblemKind.MALFORMED]
    assert [f.location.detail for f in report.findings] == ["Data!A0"]


# The corpus, both ways.


def corpus_files() -> list[Path]:
    """Corpus samples (and oletools' files when present) that hold an Excel package: by
    name, or because a ZIP names a worksheet part (ZIP names are stored uncompressed).
    oletools' encrypted.* have an unknown password (no part of them is ever read) and take
    seconds of password attempts each."""
    folders = [CORPUS / "samples", CORPUS / "adversarial"]
    if OLETOOLS.is_dir():
        folders.append(OLETOOLS)
    return sorted(
        path
        for folder in folders
        for path in folder.rglob("*")
        if path.is_file()
        and not path.name.startswith("encrypted.")
        and (
            re.fullmatch(r"\.xl[st][xm]", path.suffix.lower())
            or b"xl/worksheets/" in path.read_bytes()
        )
    )


def test_corpus_reports_are_identical() -> None:
    files = corpus_files()
    assert len(files) >= 20
    checked = 0
    for path in files:
        data = path.read_bytes()
        with tuning(FULL):
            full = scan_bytes(data, path.name, CONFIG)
        with tuning(EAGER, window=97, piece=61):
            fast = scan_bytes(data, path.name, CONFIG)
        assert fast.findings == full.findings, path
        assert fast.problems == full.problems, path
        checked += any(
            container.startswith("xl/")
            for item in (*full.findings, *full.problems)
            for container in item.location.containers
        )
    assert checked >= 10


def test_corpus_sheets_take_the_fast_path() -> None:
    # The fast path is really tried on the corpus's sheets, not always turned away.
    taken = 0
    for path in corpus_files():
        if not zipfile.is_zipfile(path) or path.parent.name == "bombs":
            continue
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.filename.startswith("xl/worksheets/") and info.file_size < 1 << 20:
                    taken += bool(cuts(archive.read(info)))
    assert taken >= 5


# Generated sheets: DDE spelled every way, damage anywhere, seams everywhere.

PAYLOADS = (
    DDE_CMD,
    "cmd&#124;'/c calc'!A0",
    "cmd&#x7C;'/c calc'!A0",
    "c&#109;d|'/c calc'!A0",
    '&#68;DE("cmd";"/c calc";"A0")',
    'dd&#101;("cmd";"/c calc";"A0")',
    'DDE ("cmd";"/c calc";"A0")',
    'InItIaTe("cmd","/c calc")',
    "<![CDATA[cmd|'/c calc'!A0]]>",
    "cmd<![CDATA[|]]>'/c calc'!A0",
    'D<!---->DE("cmd";"/c calc";"A0")',
    'INIT<?p?>IATE("cmd","x")',
    "[1]!A0",
    "'[1]Sheet'!A1",
    "SUM([1]!A0)",
    "notepad | 'x.txt' ! A0",
)
BENIGN = (
    "SUM(A1:B2)",
    "IF(A1&gt;1,ROUND(A1/2,2),A1)",
    "A1&amp;&quot;text&quot;",
    "hidden",
    "VLOOKUP(A1,Sheet2!A:B,2,0)",
    "SUMPRODUCT(--(A1:A9&gt;0))",
    "",
)
ODD = (
    '<c r="Z1" s="1"/>',
    '<c r="Z1" t="inlineStr"><is><t xml:space="preserve"> a b </t></is></c>',
    '<c r="Z1" note="a&gt;b/&gt;" x="/>"/>',
    '<c r="Z1"><f t="shared" si="3"/></c>',
    '<c r="Z1"><f t="dataTable" ref="Z1:Z2" dt2D="0" dtr="0" r1="A1"/></c>',
    '<ddeLink ddeService="cmd" ddeTopic="/c calc"><ddeItems><ddeItem name="A0" advise="1"/>'
    "</ddeItems></ddeLink>",
    '<c r="Z1" xmlns:q="urn:q" q:extra="1"><q:f>x</q:f></c>',
    f"<f>{DDE_CMD}</f>",
    "<row r='9'><c r='Z9'><f>1</f></c></row>",
    "  \n\t",
)
DAMAGE = (
    '<c r="Z1"><v>1</c>',
    '<y:c r="Z1"/>',
    "&nope;",
    "\x01",
    '<c a="1" a="2"/>',
    "</row><row>",
    "<c>",
    '<c xmlns:z=""/>',
)


@st.composite
def cell(draw: st.DrawFn, row: int) -> str:
    kind = draw(st.sampled_from(("benign", "benign", "benign", "benign", "payload", "odd")))
    column = draw(st.sampled_from("ABCDE"))
    if kind == "odd":
        return draw(st.sampled_from(ODD))
    formula = draw(st.sampled_from(PAYLOADS if kind == "payload" else BENIGN))
    attributes = draw(
        st.sampled_from(
            ("", "", ' t="shared" ref="A1:A900" si="3"', ' t="array" ref="A1:B2"', ' t="str"')
        )
    )
    return f'<c r="{column}{row}"><f{attributes}>{formula}</f><v>0</v></c>'


@st.composite
def row(draw: st.DrawFn, number: int) -> str:
    shape = draw(st.sampled_from(("plain", "plain", "plain", "plain", "empty", "filler")))
    if shape == "empty":
        return f'<row r="{number}"/>'
    if shape == "filler":
        return "".join(ordinary_row(number * 100 + k) for k in range(draw(st.integers(1, 12))))
    items = draw(st.lists(cell(number), min_size=0, max_size=3))
    end = draw(st.sampled_from(("</row>", "</row>", "</row >")))
    space = draw(st.sampled_from(("", "", "\n  ")))
    return f'<row r="{number}" spans="1:5">' + "".join(items) + end + space


@st.composite
def sheet(draw: st.DrawFn) -> str:
    rows = [draw(row(number)) for number in range(1, draw(st.integers(0, 14)) + 1)]
    if rows and draw(st.integers(0, 3)) == 0:
        # Damage, in a quarter of the sheets, anywhere in one row.
        index = draw(st.integers(0, len(rows) - 1))
        cut = draw(st.integers(0, len(rows[index])))
        rows[index] = rows[index][:cut] + draw(st.sampled_from(DAMAGE)) + rows[index][cut:]
    after = draw(
        st.sampled_from(
            (
                "",
                '<conditionalFormatting sqref="A1"><cfRule type="expression">'
                f"<formula>{draw(st.sampled_from(PAYLOADS + BENIGN))}</formula></cfRule>"
                "</conditionalFormatting>",
                '<dataValidations><dataValidation sqref="B2"><formula1>'
                f"{draw(st.sampled_from(PAYLOADS + BENIGN))}</formula1></dataValidation>"
                "</dataValidations>",
            )
        )
    )
    text = sheet_xml(rows, after)
    if draw(st.booleans()):
        text = text.removeprefix(DECLARATION)
    return text


@settings(
    max_examples=70,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    text=sheet(),
    window=st.integers(2, 300),
    piece=st.integers(1, 300),
    probes=st.integers(0, 3),
)
def test_generated_sheets_match_the_full_parse(
    text: str, window: int, piece: int, probes: int
) -> None:
    data = xlsx(text, links=(dde_link(),))
    assert_same(data, window=window, piece=piece, probes=probes)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    before=st.integers(0, 3000),
    payload=st.sampled_from(PAYLOADS),
    window=st.sampled_from((64, 97, 256, 1000, 4096)),
)
def test_payload_at_any_offset_of_a_long_sheet(before: int, payload: str, window: int) -> None:
    # Pad so that the payload's trigger falls on every offset relative to the windows.
    filler = [ordinary_row(row) for row in range(1, 40)]
    padded = f'<row r="40"><c r="A40"><is><t>{"x" * before}</t></is></c></row>'
    rows = [*filler, padded, cell_row(41, payload), *[ordinary_row(r) for r in range(42, 70)]]
    data = xlsx(sheet_xml(rows), links=(dde_link(),))
    report = assert_same(data, window=window, piece=window)
    assert [f.location.detail for f in report.findings if f.technique is Technique.DDE_FORMULA]
    assert all(
        f.location.detail == "Data!A41"
        for f in report.findings
        if f.technique is Technique.DDE_FORMULA
    )


# The survey against a plain reference.


SURVEY_TOKENS = (
    b"|", b"[", b"&", b"#", b"&#", b"d", b"D", b"e", b"dde", b"DdE", b"initiate", b"INITIATE",
    b"iniTIATE", b"<", b"!", b"?", b"<!--", b"<?", b"x", b"\xef\xbb",
)  # fmt: skip


def reference_triggers(data: bytes) -> tuple[int, ...]:
    found = []
    for index in range(len(data)):
        if (
            data[index : index + 1] in (b"|", b"[")
            or data[index : index + 2] == b"&#"
            or data[index : index + 3].lower() == b"dde"
            or data[index : index + 8].lower() == b"initiate"
        ):
            found.append(index)
    return tuple(found)


@settings(max_examples=120, deadline=None)
@given(
    data=st.lists(
        st.sampled_from(SURVEY_TOKENS),
        max_size=60,
    ).map(b"".join),
    window=st.integers(1, 40),
    probes=st.integers(0, 2),
)
def test_survey_finds_every_trigger(data: bytes, window: int, probes: int) -> None:
    with tuning(EAGER, window=window, probes=probes):
        survey = spreadsheetml._survey(data, context())
    assert survey.triggers == reference_triggers(data)
    assert survey.markup == (b"<!" in data)
    assert survey.comment == (b"<!--" in data)
    lead = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    others = [m.start() for m in re.finditer(rb"<\?", data) if m.start() != lead]
    assert survey.instruction == bool(others)


def test_survey_gives_up_on_too_many_triggers() -> None:
    data = b"|" * 5000
    survey = spreadsheetml._survey(data, context())
    assert survey.triggers is None
    assert survey.hinted


# The formula pre-test against the search it saves.

FORMULA_TOKENS = (
    "d", "D", "e", "E", "dde", "DDE", "(", " ", "\u3000", "|", "'", "!", "[", "x", "initiate",
    "INITIATE", "ini", "tiate", "\u0130", "\u212a", '"', "A1",
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.sampled_from(FORMULA_TOKENS) | st.text(max_size=3),
        max_size=20,
    ).map("".join)
)
def test_formula_pre_test_never_hides_a_match(text: str) -> None:
    matched = formulas._HINT.search(text) is not None
    assert formulas.may_hold_remote_reference(text) == matched
    assert formulas.may_refer_to_dde(text) == ("[" in text or matched)


# The element search against the pattern it stands for.

ELEMENT_TOKENS = (
    b"<f>", b"<f", b"<x:f ", b"<x:formula1/>", b"<formula2>", b"<fo>", b"<font ", b"<", b":f",
    b"ddeLink", b"<ddeLink ", b"<a.b-c:ddeLink>", b"<1x:f>", b"text", b" ", b"</f>", b"<x:y:f>",
    b"\xc3\xa9", b"<\xc3\xa9:f>", b"f", b":", b">",
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(
    data=st.lists(
        st.sampled_from(ELEMENT_TOKENS),
        max_size=30,
    ).map(b"".join),
    reach=st.integers(1, 12),
    probes=st.integers(0, 3),
)
def test_element_search_agrees_with_the_pattern(data: bytes, reach: int, probes: int) -> None:
    with (
        patch.object(spreadsheetml, "_PREFIX_REACH", reach),
        patch.object(spreadsheetml, "_PAIR_PROBES", probes),
    ):
        found = spreadsheetml._has_element(data)
    assert found == (spreadsheetml._ELEMENT.search(data) is not None)


# The check that licenses the cuts never passes a part the full parse refuses.

XML_TOKENS = (
    "<a>", "</a>", '<b x="1">', "</b>", "<p:c/>", '<a xmlns:p="urn:p">', '<a xmlns:p="">',
    '<a xmlns="urn:d">', '<a xmlns:q="urn:p">', '<c p:x="1" q:x="2"/>', '<c xml:id="i1"/>',
    '<c xml:id="1"/>', '<c xml:lang="en" xml:space="x"/>', "text", "&amp;", "&#60;", "&#0;",
    "&foo;", "<![CDATA[x]]>", "<!--c-->", "<?pi x?>", "]]>", '<c a="1" a="1"/>', "<c a='>'/>",
    '<c a="<"/>', "<xml:c/>", "<xmlns:c/>", '<c xmlns:xml="urn:x"/>', '<c xmlns:xmlns="u"/>',
    "<a:b:c/>", "<:c/>", '<c :a="1"/>', "\x01", "\ufffe", "\xe9", " ", "\n", "<c\n/>",
    '<c xmlns:p="urn:p" p:a="1" p:a="2"/>', "</p:c>", "<p:c>", '<c xml:base="u"/>', "<!DOCTYPE r>",
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(XML_TOKENS), max_size=8).map("".join))
def test_validation_never_passes_what_the_full_parse_refuses(body: str) -> None:
    data = f'<r xmlns:p="urn:p" xmlns:q="urn:q">{body}</r>'.encode()
    if not spreadsheetml._validates(data, [], context()):
        return
    for _event, _element in safe_iterparse(data, ["{*}f"]):
        pass
