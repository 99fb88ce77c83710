"""Single-file Office XML (scanner.formats.officexml): Word 2003 XML, Flat OPC, SpreadsheetML 2003.

Inline fixtures are written from the formats' own markup; oletools' public samples are read
in place when shared/peers/oletools exists.
"""

from __future__ import annotations

import base64
import codecs

import pytest
from conftest import OLETOOLS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanner.api import scan_bytes, scan_path
from scanner.formats.officexml import (
    FlatOpcFormat,
    SpreadsheetXml2003Format,
    WordXml2003Format,
    column_letters,
    sniff_xml,
    xml_kind,
)
from scanner.model import (
    Confidence,
    FileFormat,
    Finding,
    ProblemKind,
    ScanConfig,
    ScanLimits,
    ScanReport,
    Technique,
    Verdict,
)

CMD_LINE = "c:\\windows\\system32\\cmd.exe /k calc.exe"
W03 = "http://schemas.microsoft.com/office/word/2003/wordml"
WORD_PI = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<?mso-application progid="Word.Document"?>\n'
EXCEL_PI = '<?xml version="1.0"?>\n<?mso-application progid="Excel.Sheet"?>\n'
RTF_DDE = (
    rb'{\rtf1{\field{\*\fldinst DDEAUTO c:\\windows\\system32\\cmd.exe "/k calc.exe"}{\fldrslt x}}}'
)


def field_runs(instruction: str, result: str = "x") -> str:
    return (
        '<w:r><w:fldChar w:fldCharType="begin"/></w:r>'
        f"<w:r><w:instrText>{instruction}</w:instrText></w:r>"
        '<w:r><w:fldChar w:fldCharType="separate"/></w:r>'
        f"<w:r><w:t>{result}</w:t></w:r>"
        '<w:r><w:fldChar w:fldCharType="end"/></w:r>'
    )


DDEAUTO_RUNS = field_runs('DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc.exe"')


def word2003(body: str, extra: str = "", pi: bool = True) -> str:
    return (
        (WORD_PI if pi else '<?xml version="1.0"?>\n')
        + f'<w:wordDocument xmlns:w="{W03}" xmlns:aml="http://schemas.microsoft.com/aml/2001/core" '
        'xmlns:v="urn:schemas-microsoft-com:vml" xml:space="preserve">'
        f"{extra}<w:body>{body}</w:body></w:wordDocument>"
    )


def scan_text(text: str, name: str = "doc.xml", encoding: str = "utf-8") -> ScanReport:
    return scan_bytes(text.encode(encoding), name)


def only_finding(report: ScanReport) -> Finding:
    assert not report.problems, report.problems
    assert len(report.findings) == 1, report.findings
    return report.findings[0]


# Identification.


def test_identifies_each_root_by_content_whatever_the_name() -> None:
    word = word2003("<w:p/>").encode()
    flat = b'<pkg:package xmlns:pkg="http://schemas.microsoft.com/office/2006/xmlPackage"/>'
    sheet = b'<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet"/>'
    for handler, data, kind in (
        (WordXml2003Format(), word, FileFormat.WORDML2003),
        (FlatOpcFormat(), flat, FileFormat.FLATOPC),
        (SpreadsheetXml2003Format(), sheet, FileFormat.SPREADSHEETML2003),
    ):
        assert handler.identify(data, "invoice.doc") is Confidence.YES
        assert scan_bytes(data, "invoice.doc").format is kind
        handlers = (WordXml2003Format(), FlatOpcFormat(), SpreadsheetXml2003Format())
        claims = [type(h) for h in handlers if h.identify(data, "x") is Confidence.YES]
        assert claims == [type(handler)]


def test_root_namespace_decides_not_the_prefix_or_the_local_name() -> None:
    other_ns = b'<w:wordDocument xmlns:w="http://example.invalid/not-word"/>'
    assert WordXml2003Format().identify(other_ns, "x.xml") is Confidence.NO
    default_ns = f'<wordDocument xmlns="{W03}"/>'.encode()
    assert WordXml2003Format().identify(default_ns, "x.xml") is Confidence.YES
    assert SpreadsheetXml2003Format().identify(b"<Workbook/>", "x.xml") is Confidence.NO
    assert FlatOpcFormat().identify(b"<html><body>pkg:package</body></html>", "x") is Confidence.NO


def test_prolog_is_skipped_comments_pi_whitespace_and_bom() -> None:
    data = (
        codecs.BOM_UTF8
        + b"\n  <?xml version='1.0'?><!-- a comment <w:x> --><?other pi?>\r\n"
        + f"<w:wordDocument xmlns:w='{W03}'></w:wordDocument>".encode()
    )
    head = sniff_xml(data)
    assert head is not None
    assert (head.namespace, head.name, head.progid) == (W03, "wordDocument", "")
    assert xml_kind(head) is FileFormat.WORDML2003


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_with_and_without_bom_is_identified_and_scanned(encoding: str) -> None:
    text = word2003(f"<w:p>{DDEAUTO_RUNS}</w:p>").replace('encoding="UTF-8"', 'encoding="UTF-16"')
    data = text.encode(encoding)
    head = sniff_xml(data)
    assert head is not None and head.progid == "Word.Document"
    report = scan_bytes(data, "doc.xml")
    assert report.format is FileFormat.WORDML2003
    assert only_finding(report).process.command_line == CMD_LINE


def test_progid_without_known_root_is_an_unsupported_result() -> None:
    data = (WORD_PI + "<document><p>DDEAUTO</p></document>").encode()
    assert WordXml2003Format().identify(data, "x.xml") is Confidence.UNSURE
    report = scan_bytes(data, "x.xml")
    assert report.format is FileFormat.WORDML2003
    assert [p.kind for p in report.problems] == [ProblemKind.UNSUPPORTED]
    assert not report.findings
    data = (EXCEL_PI + "<Book/>").encode()
    report = scan_bytes(data, "x.xml")
    assert report.format is FileFormat.SPREADSHEETML2003
    assert [p.kind for p in report.problems] == [ProblemKind.UNSUPPORTED]


def test_non_xml_is_not_claimed() -> None:
    for data in (b"", b"PK\x03\x04", b"{\\rtf1}", b"a,b,c\n", b"<html><body>x</body></html>"):
        for handler in (WordXml2003Format(), FlatOpcFormat(), SpreadsheetXml2003Format()):
            assert handler.identify(data, "x.xml") is Confidence.NO


@given(st.binary(max_size=512))
@settings(max_examples=200, deadline=None)
def test_sniff_never_raises(data: bytes) -> None:
    head = sniff_xml(data)
    if head is not None:
        xml_kind(head)
    for prefix in (b"<?xml version='1.0'?><w:wordDocument ", b"\xff\xfe<\x00", b"<!DOCTYPE "):
        sniff_xml(prefix + data)


# Word 2003 XML.


def test_word2003_ddeauto_field() -> None:
    report = scan_text(word2003(f"<w:p>{DDEAUTO_RUNS}</w:p>"), "invoice.doc")
    finding = only_finding(report)
    assert report.verdict is Verdict.MALICIOUS
    assert finding.technique is Technique.DDE_FIELD
    assert finding.location.containers == ("invoice.doc",)
    assert finding.location.detail == "field 1"
    assert finding.process.parent == "WINWORD.EXE"
    assert finding.process.image == "cmd.exe"
    assert finding.process.command_line == CMD_LINE
    assert finding.dde is not None and finding.dde.automatic


def test_word2003_simple_field_and_quote_obfuscation() -> None:
    simple = '<w:fldSimple w:instr=" DDE notepad.exe x "><w:r><w:t>r</w:t></w:r></w:fldSimple>'
    nested = (
        '<w:r><w:fldChar w:fldCharType="begin"/></w:r>'
        + field_runs("QUOTE 68 68 69 65 85 84 79")
        + '<w:r><w:instrText> calc.exe x</w:instrText></w:r><w:r><w:fldChar w:fldCharType="end"/></w:r>'
    )
    report = scan_text(word2003(f"<w:p>{simple}</w:p><w:p>{nested}</w:p>"))
    assert not report.problems
    commands = sorted((f.dde.keyword, f.process.command_line) for f in report.findings if f.dde)
    assert commands == [("DDE", "notepad.exe x"), ("DDEAUTO", "calc.exe x")]


def test_word2003_inline_stories_are_separate() -> None:
    # A footnote anchored inside a field's instruction is a story of its own: its field does
    # not become part of the outer instruction, and the outer field still reads "DDEAUTO...".
    footnote = f"<w:r><w:footnote><w:p>{field_runs('DDE notepad.exe x')}</w:p></w:footnote></w:r>"
    body = (
        '<w:p><w:r><w:fldChar w:fldCharType="begin"/></w:r>'
        "<w:r><w:instrText>DDEAUTO calc.exe </w:instrText></w:r>"
        + footnote
        + '<w:r><w:instrText>y</w:instrText></w:r><w:r><w:fldChar w:fldCharType="end"/></w:r></w:p>'
        + f"<w:sectPr><w:hdr w:type='odd'><w:p>{field_runs('DDE cmd.exe &quot;/c whoami&quot;')}</w:p></w:hdr></w:sectPr>"
    )
    report = scan_text(word2003(body))
    assert not report.problems
    found = sorted((f.location.display(), f.process.command_line) for f in report.findings)
    assert found == [
        ("doc.xml (field 1)", "calc.exe y"),
        ("doc.xml > w:footnote 1 (field 1)", "notepad.exe x"),
        ("doc.xml > w:hdr 1 (field 1)", "cmd.exe /c whoami"),
    ]


def test_word2003_comment_story_and_deleted_field() -> None:
    comment = (
        '<aml:annotation aml:id="1" w:type="Word.Comment"><aml:content>'
        f"<w:p>{field_runs('DDE notepad.exe c')}</w:p></aml:content></aml:annotation>"
    )
    deleted = (
        '<aml:annotation aml:id="2" w:type="Word.Deletion"><aml:content>'
        # Even an instrText (not w:delInstrText) inside a tracked deletion is not read.
        "<w:r><w:fldChar w:fldCharType='begin'/></w:r><w:r><w:instrText>DDEAUTO calc.exe x"
        "</w:instrText></w:r><w:r><w:fldChar w:fldCharType='end'/></w:r></aml:content></aml:annotation>"
    )
    report = scan_text(word2003(f"<w:p><w:r>{comment}</w:r>{deleted}</w:p>"))
    assert not report.problems
    assert [(f.location.display(), f.process.command_line) for f in report.findings] == [
        ("doc.xml > comment 1 (field 1)", "notepad.exe c")
    ]


def test_word2003_clean_fields_give_nothing() -> None:
    body = f"<w:p>{field_runs('PAGE', 'DDEAUTO cmd')}<w:r><w:t>DDEAUTO cmd.exe /c calc</w:t></w:r></w:p>"
    report = scan_text(word2003(body))
    assert report.verdict is Verdict.CLEAN
    assert not report.findings and not report.problems


def test_word2003_bindata_is_scanned_as_embedded_document() -> None:
    encoded = base64.encodebytes(RTF_DDE).decode()
    pict = f'<w:r><w:pict><w:binData w:name="wordml://obj.rtf">{encoded}</w:binData></w:pict></w:r>'
    report = scan_text(word2003(f"<w:p>{pict}</w:p>"))
    finding = only_finding(report)
    assert finding.location.containers == ("doc.xml", "wordml://obj.rtf")
    assert finding.process.command_line == CMD_LINE


def test_word2003_doctype_is_refused() -> None:
    text = word2003("<w:p/>").replace(
        "<w:wordDocument", '<!DOCTYPE w:wordDocument [<!ENTITY e "DDEAUTO calc">]>\n<w:wordDocument'
    )
    report = scan_text(text)
    assert report.format is FileFormat.WORDML2003
    assert report.verdict is Verdict.ERROR
    assert [p.kind for p in report.problems] == [ProblemKind.MALFORMED]
    assert "DOCTYPE" in report.problems[0].message


def test_word2003_malformed_is_an_error_result() -> None:
    report = scan_text(word2003(f"<w:p>{DDEAUTO_RUNS}")[:-30])
    assert report.verdict is Verdict.ERROR
    assert [p.kind for p in report.problems] == [ProblemKind.MALFORMED]


# Flat OPC.

PKG = "http://schemas.microsoft.com/office/2006/xmlPackage"
W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
WORD_MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
RELS = "application/vnd.openxmlformats-package.relationships+xml"
REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
OFFICE_DOC = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"
AF_CHUNK = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/aFChunk"


def xml_part(name: str, content_type: str, xml: str) -> str:
    return (
        f'<pkg:part pkg:name="{name}" pkg:contentType="{content_type}">'
        f"<pkg:xmlData>{xml}</pkg:xmlData></pkg:part>"
    )


def binary_part(name: str, content_type: str, data: bytes) -> str:
    encoded = base64.encodebytes(data).decode()
    return (
        f'<pkg:part pkg:name="{name}" pkg:contentType="{content_type}" pkg:compression="store">'
        f"<pkg:binaryData>{encoded}</pkg:binaryData></pkg:part>"
    )


def word_xml(runs: str, root: str = "document") -> str:
    return f'<w:{root} xmlns:w="{W}"><w:body><w:p>{runs}</w:p></w:body></w:{root}>'


def rels(*relationships: tuple[str, str, str]) -> str:
    inner = "".join(
        f'<Relationship Id="{i}" Type="{t}" Target="{target}"/>' for i, t, target in relationships
    )
    return f'<Relationships xmlns="{REL_NS}">{inner}</Relationships>'


def flat(*parts: str) -> str:
    return WORD_PI + f'<pkg:package xmlns:pkg="{PKG}">' + "".join(parts) + "</pkg:package>"


PACKAGE_RELS = xml_part("/_rels/.rels", RELS, rels(("rId1", OFFICE_DOC, "word/document.xml")))


def test_flat_opc_document_and_header_fields() -> None:
    text = flat(
        PACKAGE_RELS,
        xml_part("/word/document.xml", WORD_MAIN, word_xml(DDEAUTO_RUNS)),
        xml_part(
            "/word/header1.xml",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.header+xml",
            word_xml(field_runs("DDE notepad.exe x"), root="hdr"),
        ),
    )
    report = scan_text(text, "report.xml")
    assert report.format is FileFormat.FLATOPC
    assert not report.problems
    found = [
        (f.location.containers, f.location.detail, f.process.parent, f.process.command_line)
        for f in report.findings
    ]
    assert found == [
        (("report.xml", "/word/document.xml"), "field 1", "WINWORD.EXE", CMD_LINE),
        (("report.xml", "/word/header1.xml"), "field 1", "WINWORD.EXE", "notepad.exe x"),
    ]


def test_flat_opc_update_fields_on_open_makes_dde_automatic() -> None:
    settings_xml = f'<w:settings xmlns:w="{W}"><w:updateFields w:val="true"/></w:settings>'
    parts = [
        PACKAGE_RELS,
        xml_part("/word/document.xml", WORD_MAIN, word_xml(field_runs("DDE calc.exe x"))),
    ]
    report = scan_text(flat(*parts))
    assert only_finding(report).dde is not None
    assert not report.findings[0].dde.automatic  # type: ignore[union-attr]
    settings_part = xml_part(
        "/word/settings.xml",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.settings+xml",
        settings_xml,
    )
    report = scan_text(flat(*parts, settings_part))
    assert report.findings[0].dde is not None and report.findings[0].dde.automatic


def test_flat_opc_binary_parts_are_embedded_documents() -> None:
    doc_rels = xml_part(
        "/word/_rels/document.xml.rels", RELS, rels(("rId9", AF_CHUNK, "chunk.rtf"))
    )
    text = flat(
        PACKAGE_RELS,
        doc_rels,
        xml_part("/word/document.xml", WORD_MAIN, word_xml("<w:r><w:t>hello</w:t></w:r>")),
        binary_part("/word/chunk.rtf", "application/rtf", RTF_DDE),
        binary_part(
            "/word/embeddings/oleObject1.bin",
            "application/vnd.openxmlformats-officedocument.oleObject",
            b"\x00" * 64,
        ),
        '<pkg:part pkg:name="/word/media/broken.bin" pkg:contentType="image/png">'
        "<pkg:binaryData>QUJDR</pkg:binaryData></pkg:part>",
    )
    report = scan_text(text)
    assert [(f.location.containers, f.process.parent) for f in report.findings] == [
        (("doc.xml", "/word/chunk.rtf"), "WINWORD.EXE")
    ]
    assert [(p.kind, p.location.containers) for p in report.problems] == [
        (ProblemKind.MALFORMED, ("doc.xml", "/word/media/broken.bin"))
    ]


def test_flat_opc_spreadsheet_parts_give_formula_and_link_findings() -> None:
    sheet = (
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
        '<row r="2"><c r="B2"><f>cmd|\'/c calc.exe\'!A0</f></c><c r="C2"><f>SUM(A1:A2)</f></c></row>'
        "</sheetData></worksheet>"
    )
    link = (
        '<externalLink xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        '<ddeLink ddeService="cmd" ddeTopic="/c notepad.exe"><ddeItems><ddeItem name="A0" advise="1"/>'
        "</ddeItems></ddeLink></externalLink>"
    )
    text = flat(
        xml_part(
            "/xl/worksheets/sheet1.xml",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml",
            sheet,
        ),
        xml_part(
            "/xl/externalLinks/externalLink1.xml",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.externalLink+xml",
            link,
        ),
    )
    report = scan_text(text)
    assert not report.problems
    found = sorted(
        (f.technique.value, f.location.display(), f.process.parent, f.process.command_line)
        for f in report.findings
    )
    assert found == [
        (
            "dde-formula",
            "doc.xml > /xl/worksheets/sheet1.xml (cell B2)",
            "EXCEL.EXE",
            "cmd /c calc.exe",
        ),
        (
            "dde-link",
            "doc.xml > /xl/externalLinks/externalLink1.xml (ddeLink)",
            "EXCEL.EXE",
            "cmd /c notepad.exe",
        ),
    ]


def test_flat_opc_clean_and_malformed() -> None:
    clean = flat(
        PACKAGE_RELS,
        xml_part("/word/document.xml", WORD_MAIN, word_xml(field_runs("PAGE", "1"))),
    )
    report = scan_text(clean)
    assert report.verdict is Verdict.CLEAN and not report.findings and not report.problems
    report = scan_text(clean[:-20])
    assert report.format is FileFormat.FLATOPC
    assert [p.kind for p in report.problems] == [ProblemKind.MALFORMED]


# SpreadsheetML 2003.

SS = "urn:schemas-microsoft-com:office:spreadsheet"
X = "urn:schemas-microsoft-com:office:excel"


def workbook(inner: str) -> str:
    return EXCEL_PI + f'<Workbook xmlns="{SS}" xmlns:ss="{SS}" xmlns:x="{X}">{inner}</Workbook>'


def test_spreadsheet2003_cell_positions_follow_index_merge_and_span() -> None:
    table = (
        "<Table>"
        '<Row ss:Span="1"><Cell><Data ss:Type="String">a</Data></Cell></Row>'  # rows 1-2
        "<Row/>"  # row 3
        '<Row><Cell ss:MergeAcross="2"/><Cell ss:Formula="=cmd|\'/c calc.exe\'!R1C1"/></Row>'  # D4
        '<Row ss:Index="10"><Cell ss:Index="28" ss:Formula="=DDE(&quot;cmd&quot;,&quot;/c notepad.exe&quot;,&quot;x&quot;)"/></Row>'
        '<Row><Cell ss:Formula="=SUM(R1C1:R2C1)"/><Cell ss:Formula="=A|\'b\'!c"/></Row>'  # B11
        "</Table>"
    )
    report = scan_text(workbook(f'<Worksheet ss:Name="Data">{table}</Worksheet>'), "book.xls")
    assert report.format is FileFormat.SPREADSHEETML2003
    assert not report.problems
    found = [
        (f.location.display(), f.process.parent, f.process.command_line, f.evidence.deobfuscated)
        for f in report.findings
    ]
    assert found == [
        ("book.xls (Data!AB10)", "EXCEL.EXE", "cmd /c notepad.exe", "cmd|'/c notepad.exe'!x"),
        ("book.xls (Data!B11)", "EXCEL.EXE", "A b", "A|'b'!c"),
        ("book.xls (Data!D4)", "EXCEL.EXE", "cmd /c calc.exe", "cmd|'/c calc.exe'!R1C1"),
    ]


def test_spreadsheet2003_hidden_sheet_names_and_supbook() -> None:
    inner = (
        '<Names><NamedRange ss:Name="Auto_Open" ss:RefersTo="=cmd|\'/c calc.exe\'!R1C1" ss:Hidden="1"/></Names>'
        '<ExcelWorkbook xmlns="urn:schemas-microsoft-com:office:excel"><SupBook>'
        "<Path>cmd|/c notepad.exe</Path><ExternName><Name>A1</Name><WantAdvise/></ExternName>"
        "</SupBook><SupBook><Path>C:\\data\\book.xls</Path><SheetName>S</SheetName></SupBook></ExcelWorkbook>"
        '<Worksheet ss:Name="Secret"><Table><Row><Cell ss:Formula="=cmd|\'/c calc.exe\'!A0"/></Row></Table>'
        '<WorksheetOptions xmlns="urn:schemas-microsoft-com:office:excel"><Visible>SheetVeryHidden</Visible>'
        "</WorksheetOptions></Worksheet>"
    )
    report = scan_text(workbook(inner))
    assert not report.problems
    by_place = {f.location.detail: f for f in report.findings}
    assert sorted(by_place) == [
        "Secret!A1",
        'defined name "Auto_Open" (hidden)',
        "external link [1]",
    ]
    assert "sheet 'Secret' is veryHidden" in by_place["Secret!A1"].evidence.steps
    link = by_place["external link [1]"]
    assert link.technique is Technique.DDE_LINK
    assert link.process.command_line == "cmd /c notepad.exe"
    assert link.dde is not None and link.dde.automatic and link.dde.item == "A1"
    assert link.evidence.raw == "<SupBook><Path>cmd|/c notepad.exe</Path></SupBook> items: A1"


def test_spreadsheet2003_clean_and_malformed() -> None:
    clean = workbook(
        '<Worksheet ss:Name="S"><Table><Row><Cell ss:Formula="=SUM(R1C1:R3C1)"/>'
        "<Cell><Data ss:Type=\"String\">cmd|'/c calc'!A0</Data></Cell></Row></Table></Worksheet>"
    )
    report = scan_text(clean)
    assert report.verdict is Verdict.CLEAN and not report.findings and not report.problems
    report = scan_text(clean.replace("</Row>", ""))
    assert report.verdict is Verdict.ERROR
    assert [p.kind for p in report.problems] == [ProblemKind.MALFORMED]
    report = scan_text(clean.replace("<Workbook", '<!DOCTYPE Workbook [<!ENTITY x "y">]><Workbook'))
    assert [p.kind for p in report.problems] == [ProblemKind.MALFORMED]


def test_spreadsheet2003_utf16_is_read_past_the_byte_prefilter() -> None:
    text = workbook(
        '<Worksheet ss:Name="S"><Table><Row><Cell ss:Formula="=cmd|\'/c calc.exe\'!R1C1"/>'
        "</Row></Table></Worksheet>"
    ).replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>')
    report = scan_bytes(text.encode("utf-16"), "u.xml")
    assert [(f.location.detail, f.process.command_line) for f in report.findings] == [
        ("S!A1", "cmd /c calc.exe")
    ]


def test_word2003_bindata_count_is_bounded_and_findings_are_kept() -> None:
    pict = "".join(
        f'<w:r><w:pict><w:binData w:name="wordml://{n}.png">AAAA</w:binData></w:pict></w:r>'
        for n in range(3)
    )
    config = ScanConfig(limits=ScanLimits(max_members=2))
    report = scan_bytes(word2003(f"<w:p>{DDEAUTO_RUNS}{pict}</w:p>").encode(), "b.xml", config)
    assert [f.process.command_line for f in report.findings] == [CMD_LINE]
    assert [(p.kind, p.location.containers) for p in report.problems] == [
        (ProblemKind.LIMIT, ("b.xml",))
    ]


def test_column_letters() -> None:
    assert [column_letters(n) for n in (1, 26, 27, 52, 702, 703, 16384)] == [
        "A", "Z", "AA", "AZ", "ZZ", "AAA", "XFD",
    ]  # fmt: skip


@given(st.binary(max_size=300), st.sampled_from([0, 1, 2]))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_scanning_garbage_behind_a_known_root_never_crashes(tail: bytes, which: int) -> None:
    heads = (
        word2003("<w:p>").encode()[:-22],
        flat(PACKAGE_RELS).encode()[:-14],
        workbook('<Worksheet ss:Name="S"><Table><Row>').encode()[:-11],
    )
    report = scan_bytes(heads[which] + tail, "x.xml")
    assert not [p for p in report.problems if p.kind is ProblemKind.INTERNAL], report.problems


# oletools' public samples.

PEERS = [
    ("msodde/dde-in-word2003.xml", FileFormat.WORDML2003, 1),
    ("msodde/dde-in-word2007.xml", FileFormat.FLATOPC, 1),
    ("msodde/dde-in-excel2003.xml", FileFormat.SPREADSHEETML2003, 2),
    ("msodde/harmless-clean-2003.xml", FileFormat.WORDML2003, 0),
    ("msodde/harmless-clean.xml", FileFormat.FLATOPC, 0),
    ("oleobj/embedded-simple-2007.xml", FileFormat.FLATOPC, 0),
    ("oleobj/embedded-simple-2007-as2003.xml", FileFormat.WORDML2003, 0),
]


@pytest.mark.parametrize(("path", "kind", "count"), PEERS, ids=[p[0] for p in PEERS])
def test_oletools_samples(path: str, kind: FileFormat, count: int) -> None:
    if not (OLETOOLS / path).is_file():
        pytest.skip("shared/peers/oletools is not present")
    report = scan_path(OLETOOLS / path)
    assert report.format is kind
    # An embedded object's own format may be one ddescan does not read (an OLE Package):
    # that is said, but it is not an error of this file.
    assert all(p.kind is ProblemKind.UNSUPPORTED for p in report.problems), report.problems
    assert all(len(p.location.containers) == 2 for p in report.problems), report.problems
    assert len(report.findings) == count
    for finding in report.findings:
        command = finding.process.command_line.casefold()
        assert "cmd" in command and "calc" in command
    assert report.verdict is (Verdict.MALICIOUS if count else Verdict.CLEAN)


def test_oletools_excel2003_findings_are_exact() -> None:
    path = OLETOOLS / "msodde/dde-in-excel2003.xml"
    if not path.is_file():
        pytest.skip("shared/peers/oletools is not present")
    report = scan_path(path)
    found = [(f.technique, f.location.detail, f.process.command_line) for f in report.findings]
    assert found == [
        (Technique.DDE_FORMULA, "Tabelle1!A2", "cmd /c calc.exe"),
        (Technique.DDE_LINK, "external link [1]", "cmd /c calc.exe"),
    ]
