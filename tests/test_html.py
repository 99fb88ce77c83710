"""Word field markup in HTML (altChunk imports, web pages saved as .doc)."""

from __future__ import annotations

from docx_builder import complex_field, document, package

from scanner import scan_bytes
from scanner.formats.html import extract_fields
from scanner.model import FileFormat, Verdict

WORD_HTML = (
    "<html xmlns:w='urn:schemas-microsoft-com:office:word'><head>"
    "<meta http-equiv=Content-Type content='text/html; charset=windows-1252'></head><body>"
    "<p class=MsoNormal><!--[if supportFields]><span lang=EN-US><span "
    "style='mso-element:field-begin'></span>DDE<span>AUTO</span> c:\\\\windows\\\\system32\\\\"
    "cmd.exe &quot;/k calc.exe&quot; <span style='mso-element:field-separator'></span></span>"
    "<![endif]--><span lang=EN-US>result</span><!--[if supportFields]><span lang=EN-US><span "
    "style='mso-element:field-end'></span></span><![endif]--></p></body></html>"
)


def test_field_markup_in_conditional_comments() -> None:
    report = scan_bytes(WORD_HTML.encode("cp1252"), "page.doc")
    assert report.format is FileFormat.HTML
    (finding,) = report.findings
    assert finding.process.parent == "WINWORD.EXE"
    assert finding.process.command_line == "c:\\windows\\system32\\cmd.exe /k calc.exe"


def test_nested_quote_field_in_html() -> None:
    text = (
        "<html><body><span style='mso-element:field-begin'></span>DDEAUTO "
        "<span style='mso-element:field-begin'></span>QUOTE 99 109 100"
        "<span style='mso-element:field-end'></span> \"/c calc.exe\""
        "<span style='mso-element:field-end'></span></body></html>"
    )
    (field,) = extract_fields(text)
    assert field.instruction[0] == "DDEAUTO "
    report = scan_bytes(text.encode(), "x.html")
    assert [f.process.command_line for f in report.findings] == ["cmd /c calc.exe"]


def test_html_text_about_dde_is_clean() -> None:
    text = b"<!DOCTYPE html><html><body><p>DDEAUTO cmd /c calc is an attack</p></body></html>"
    report = scan_bytes(text, "article.html")
    assert report.verdict is Verdict.CLEAN and not report.findings


def test_unclosed_markup_does_not_hang() -> None:
    text = ("<html><body>" + "<!--" * 20000 + "<a " * 20000).encode()
    assert scan_bytes(text, "x.html").verdict is Verdict.CLEAN


def test_html_alt_chunk_is_imported_into_the_word_document() -> None:
    rels = (
        '<Relationship Id="rId7" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/aFChunk" Target="chunk.htm"/>'
    )
    data = package(
        {
            "word/document.xml": document(complex_field("PAGE") + '<w:altChunk r:id="rId7"/>'),
            "word/chunk.htm": WORD_HTML,
        },
        document_rels=rels,
    )
    report = scan_bytes(data, "import.docx")
    (finding,) = report.findings
    assert finding.location.containers == ("import.docx", "word/chunk.htm")
    assert finding.process.image == "cmd.exe"
