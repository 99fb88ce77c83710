"""WordprocessingML field reconstruction, end to end through scan_bytes."""

from __future__ import annotations

import pytest
from docx_builder import complex_field, document, docx, fld, package, run_instr

from scanner import scan_bytes
from scanner.model import FileFormat, ProblemKind, ScanConfig, ScanLimits, Verdict

PAYLOAD = 'DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc.exe"'


def only_finding(data: bytes):  # type: ignore[no-untyped-def]
    report = scan_bytes(data, "t.docx")
    assert report.format is FileFormat.DOCX
    assert len(report.findings) == 1, report
    return report.findings[0]


def test_plain_complex_field() -> None:
    finding = only_finding(docx(complex_field(PAYLOAD)))
    assert finding.process.image == "cmd.exe"
    assert finding.process.command_line == "c:\\windows\\system32\\cmd.exe /k calc.exe"
    assert finding.location.containers == ("t.docx", "word/document.xml")
    assert finding.location.detail == "field 1"


def test_one_character_per_run() -> None:
    finding = only_finding(docx(complex_field(*PAYLOAD)))
    assert finding.process.command_line == "c:\\windows\\system32\\cmd.exe /k calc.exe"


@pytest.mark.parametrize(
    ("open_tag", "close_tag"),
    [
        ('<w:ins w:id="1" w:author="a">', "</w:ins>"),
        ("<w:sdt><w:sdtContent>", "</w:sdtContent></w:sdt>"),
        ('<w:hyperlink w:anchor="x">', "</w:hyperlink>"),
        ('<w:smartTag w:uri="u" w:element="e">', "</w:smartTag>"),
        ('<w:customXml w:element="e">', "</w:customXml>"),
        ('<w:moveTo w:id="2" w:author="a">', "</w:moveTo>"),
        (
            '<w:ins w:id="1" w:author="a"><w:sdt><w:sdtContent><w:hyperlink>',
            "</w:hyperlink></w:sdtContent></w:sdt></w:ins>",
        ),
    ],
)
def test_runs_hidden_in_wrappers(open_tag: str, close_tag: str) -> None:
    body = (
        fld("begin")
        + run_instr("DDE")
        + open_tag
        + run_instr("AUTO c:\\\\windows\\\\system32\\\\cmd.exe ")
        + close_tag
        + run_instr('"/k calc.exe"')
        + fld("end")
    )
    finding = only_finding(docx(body))
    assert finding.dde is not None and finding.dde.keyword == "DDEAUTO"
    assert finding.process.image == "cmd.exe"


def test_deleted_runs_are_not_part_of_the_field() -> None:
    body = (
        fld("begin")
        + run_instr("DDEAUTO cmd ")
        + '<w:del w:id="3" w:author="a"><w:r><w:delInstrText>"/c notepad.exe"</w:delInstrText></w:r></w:del>'
        + run_instr('"/c calc.exe"')
        + fld("end")
    )
    finding = only_finding(docx(body))
    assert finding.process.command_line == "cmd /c calc.exe"


def test_field_simple_and_nested_quote() -> None:
    simple = '<w:fldSimple w:instr=" DDE cmd &quot;/c calc.exe&quot; "><w:r><w:t>x</w:t></w:r></w:fldSimple>'
    finding = only_finding(docx(simple))
    assert finding.dde is not None and finding.dde.keyword == "DDE"
    assert finding.location.detail == "field 1 (fldSimple)"
    nested = (
        fld("begin")
        + run_instr("DDEAUTO ")
        + fld("begin")
        + run_instr("QUOTE 99 10")
        + run_instr("9 100")
        + fld("separate")
        + "<w:r><w:t>ignored</w:t></w:r>"
        + fld("end")
        + run_instr(' "/c calc.exe"')
        + fld("end")
    )
    finding = only_finding(docx(nested))
    assert finding.evidence.deobfuscated == 'DDEAUTO cmd "/c calc.exe"'


def test_alternate_content_takes_the_branch_word_renders() -> None:
    payload = complex_field('DDEAUTO cmd "/c calc.exe"')
    decoy = complex_field("PAGE")
    understood = (
        f'<mc:AlternateContent><mc:Choice Requires="wps">{payload}</mc:Choice>'
        f"<mc:Fallback>{decoy}</mc:Fallback></mc:AlternateContent>"
    )
    assert only_finding(docx(understood)).process.image == "cmd.exe"
    unknown = (
        f'<mc:AlternateContent xmlns:zz="urn:zz"><mc:Choice Requires="zz">{decoy}</mc:Choice>'
        f"<mc:Fallback>{payload}</mc:Fallback></mc:AlternateContent>"
    )
    assert only_finding(docx(unknown)).process.image == "cmd.exe"


def test_header_part_and_orphaned_story() -> None:
    header = document(complex_field('DDEAUTO cmd "/c calc.exe"')).replace("w:document", "w:hdr")
    header_ct = "application/vnd.openxmlformats-officedocument.wordprocessingml.header+xml"
    data = package(
        {"word/document.xml": document("<w:r><w:t>hello</w:t></w:r>"), "word/header2.xml": header},
        overrides={"/word/header2.xml": header_ct},
    )
    report = scan_bytes(data, "mail.docx")
    assert [f.location.containers for f in report.findings] == [("mail.docx", "word/header2.xml")]


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_header_part_is_read(codec: str) -> None:
    # ECMA-376 Part 2, 8.1.4 allows UTF-16 parts; the field names are not ASCII bytes there.
    header = document(complex_field('DDEAUTO cmd "/c calc.exe"')).replace("w:document", "w:hdr")
    header = header.replace('encoding="UTF-8"', 'encoding="UTF-16"')
    if codec != "utf-16":
        header = "\ufeff" + header
    header_ct = "application/vnd.openxmlformats-officedocument.wordprocessingml.header+xml"
    data = package(
        {
            "word/document.xml": document("<w:r><w:t>hello</w:t></w:r>"),
            "word/header2.xml": header.encode(codec),
        },
        overrides={"/word/header2.xml": header_ct},
    )
    (finding,) = scan_bytes(data, "u16.docx").findings
    assert finding.process.command_line == "cmd /c calc.exe"
    assert finding.location.containers == ("u16.docx", "word/header2.xml")


@pytest.mark.parametrize("codec", ["utf-8", "utf-16"])
def test_update_fields_setting_makes_dde_automatic(codec: str) -> None:
    settings = (
        '<w:settings xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        '<w:updateFields w:val="true"/></w:settings>'
    ).encode(codec)
    rels = (
        '<Relationship Id="rId9" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/settings" Target="settings.xml"/>'
    )
    data = package(
        {
            "word/document.xml": document(complex_field('DDE cmd "/c calc.exe"')),
            "word/settings.xml": settings,
        },
        document_rels=rels,
    )
    finding = only_finding(data)
    assert finding.dde is not None and finding.dde.automatic
    assert finding.dde.keyword == "DDE"


def test_unterminated_field_is_still_reported() -> None:
    finding = only_finding(docx(fld("begin") + run_instr('DDEAUTO cmd "/c calc.exe"')))
    assert finding.process.image == "cmd.exe"


def test_clean_document_with_dde_text_in_body() -> None:
    body = "<w:r><w:t>DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe is a known attack</w:t></w:r>"
    body += complex_field('HYPERLINK "https://example.invalid"', result="DDEAUTO cmd")
    report = scan_bytes(docx(body), "clean.docx")
    assert report.verdict is Verdict.CLEAN and not report.findings and not report.problems


def test_content_type_not_extension_decides() -> None:
    report = scan_bytes(docx(complex_field('DDEAUTO cmd "/c calc.exe"')), "renamed.xlsx")
    assert report.format is FileFormat.DOCX and report.findings


def test_macro_enabled_template_content_type() -> None:
    data = docx(
        complex_field('DDEAUTO cmd "/c calc.exe"'),
        main_content_type="application/vnd.ms-word.template.macroEnabledTemplate.main+xml",
    )
    assert only_finding(data).process.image == "cmd.exe"


def test_doctype_part_is_refused_without_expansion() -> None:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 '
        '"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        "<w:body><w:p><w:r><w:instrText>&lol2;</w:instrText></w:r></w:p></w:body></w:document>"
    )
    report = scan_bytes(package({"word/document.xml": bomb}), "bomb.docx")
    assert report.verdict is Verdict.ERROR
    assert [p.kind for p in report.problems] == [ProblemKind.MALFORMED]
    assert "DOCTYPE" in report.problems[0].message


def test_malformed_part_costs_only_itself() -> None:
    header_ct = "application/vnd.openxmlformats-officedocument.wordprocessingml.header+xml"
    data = package(
        {
            "word/document.xml": document(complex_field('DDEAUTO cmd "/c calc.exe"')),
            "word/header1.xml": "<w:hdr><w:instrText>unclosed",
        },
        overrides={"/word/header1.xml": header_ct},
    )
    report = scan_bytes(data, "t.docx")
    assert len(report.findings) == 1 and report.verdict is Verdict.MALICIOUS
    assert report.problems[0].location.containers == ("t.docx", "word/header1.xml")


def test_truncated_zip_is_an_error_result() -> None:
    data = docx(complex_field('DDEAUTO cmd "/c calc.exe"'))
    report = scan_bytes(data[: len(data) // 2], "cut.docx")
    assert report.verdict is Verdict.ERROR and report.problems


def test_compression_bomb_part_hits_the_ratio_limit() -> None:
    big = document(" " * 5_000_000 + complex_field('DDEAUTO cmd "/c calc.exe"'))
    data = package({"word/document.xml": big})
    config = ScanConfig(limits=ScanLimits(max_ratio=50))
    report = scan_bytes(data, "bomb.docx", config)
    assert [p.kind for p in report.problems] == [ProblemKind.LIMIT]
    assert "compression bomb" in report.problems[0].message


def test_non_story_parts_are_skipped_unless_a_story_relationship_points_at_them() -> None:
    styles_ct = "application/vnd.openxmlformats-officedocument.wordprocessingml.styles+xml"
    payload = document(complex_field('DDEAUTO cmd "/c calc.exe"')).replace("w:document", "w:hdr")
    unreferenced = package(
        {"word/document.xml": document("<w:r><w:t>hi</w:t></w:r>"), "word/styles.xml": payload},
        overrides={"/word/styles.xml": styles_ct},
    )
    assert scan_bytes(unreferenced, "a.docx").findings == ()
    rels = (
        '<Relationship Id="rId5" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/header" Target="styles.xml"/>'
    )
    mislabelled = package(
        {"word/document.xml": document("<w:r><w:t>hi</w:t></w:r>"), "word/styles.xml": payload},
        overrides={"/word/styles.xml": styles_ct},
        document_rels=rels,
    )
    (finding,) = scan_bytes(mislabelled, "b.docx").findings
    assert finding.location.containers == ("b.docx", "word/styles.xml")
