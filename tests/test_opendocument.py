"""OpenDocument text and spreadsheets (scanner.formats.opendocument)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping

import pytest
from conftest import OLETOOLS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanner.api import scan_bytes, scan_path
from scanner.formats.opendocument import OdsFormat, OdtFormat, odf_kind
from scanner.model import (
    Confidence,
    FileFormat,
    Finding,
    ProblemKind,
    ScanReport,
    Technique,
    Verdict,
)

TEXT_MIME = "application/vnd.oasis.opendocument.text"
SHEET_MIME = "application/vnd.oasis.opendocument.spreadsheet"
NAMESPACES = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:of="urn:oasis:names:tc:opendocument:xmlns:of:1.2" '
    'xmlns:oooc="http://openoffice.org/2004/calc"'
)
RTF_DDE = (
    rb'{\rtf1{\field{\*\fldinst DDEAUTO c:\\windows\\system32\\cmd.exe "/k calc.exe"}{\fldrslt x}}}'
)
DDE_CALC = "of:=DDE(&quot;cmd&quot;;&quot;/c calc.exe&quot;;&quot;A1&quot;)"


def content(body: str, root: str = "document-content") -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><office:{root} {NAMESPACES}>'
        f"<office:body>{body}</office:body></office:{root}>"
    )


def manifest(mimetype: str) -> str:
    return (
        '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0">'
        f'<manifest:file-entry manifest:full-path="/" manifest:media-type="{mimetype}"/>'
        "</manifest:manifest>"
    )


def odf(
    mimetype: str | None,
    members: Mapping[str, str | bytes],
    manifest_text: str | None = None,
) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        if mimetype is not None:
            archive.writestr(zipfile.ZipInfo("mimetype"), mimetype, zipfile.ZIP_STORED)
        for name, data in members.items():
            archive.writestr(name, data)
        if manifest_text is not None:
            archive.writestr("META-INF/manifest.xml", manifest_text)
    return buffer.getvalue()


def odt(text_body: str, **members: str | bytes) -> bytes:
    return odf(
        TEXT_MIME, {"content.xml": content(f"<office:text>{text_body}</office:text>"), **members}
    )


def ods(sheet_body: str) -> bytes:
    return odf(
        SHEET_MIME,
        {"content.xml": content(f"<office:spreadsheet>{sheet_body}</office:spreadsheet>")},
    )


def only_finding(report: ScanReport) -> Finding:
    assert not report.problems, report.problems
    assert len(report.findings) == 1, report.findings
    return report.findings[0]


DECL = (
    '<text:dde-connection-decls><text:dde-connection-decl office:name="Link1" '
    'office:dde-application="cmd" office:dde-topic="/c calc.exe" office:dde-item="x" '
    'office:automatic-update="true"/></text:dde-connection-decls>'
    '<text:p><text:dde-connection text:connection-name="Link1">x</text:dde-connection></text:p>'
)


def test_identifies_odt_and_ods_by_mimetype_not_name() -> None:
    text, sheet = odt("<text:p/>"), ods("")
    assert OdtFormat().identify(text, "x.zip") is Confidence.YES
    assert OdsFormat().identify(text, "x.ods") is Confidence.NO
    assert OdsFormat().identify(sheet, "x.odt") is Confidence.YES
    assert scan_bytes(text, "a.bin").format is FileFormat.ODT
    assert scan_bytes(sheet, "a.bin").format is FileFormat.ODS
    presentation = odf("application/vnd.oasis.opendocument.presentation", {"content.xml": "<x/>"})
    assert odf_kind(presentation) is None
    plain = odf(None, {"content.xml": "<x/>"})
    assert odf_kind(plain) is None


def test_mimetype_not_first_or_only_in_manifest() -> None:
    body = {"content.xml": content(f"<office:text>{DECL}</office:text>")}
    late = odf(None, {**body, "mimetype": TEXT_MIME})
    assert odf_kind(late) is FileFormat.ODT
    only_manifest = odf(None, body, manifest(TEXT_MIME))
    assert odf_kind(only_manifest) is FileFormat.ODT
    assert (
        only_finding(scan_bytes(only_manifest, "m.odt")).process.command_line == "cmd /c calc.exe"
    )


def test_odt_dde_connection_decl_is_a_libreoffice_dde_link() -> None:
    report = scan_bytes(odt(DECL), "letter.odt")
    finding = only_finding(report)
    assert report.verdict is Verdict.MALICIOUS
    assert finding.technique is Technique.DDE_LINK
    assert finding.location.containers == ("letter.odt", "content.xml")
    assert finding.location.detail == 'text:dde-connection-decl "Link1"'
    assert finding.process.parent == "soffice.bin"
    assert finding.process.image == "cmd.exe"
    assert finding.process.command_line == "cmd /c calc.exe"
    assert finding.dde is not None and finding.dde.automatic and finding.dde.item == "x"
    assert finding.evidence.deobfuscated == "cmd|'/c calc.exe'!x"
    assert finding.evidence.raw == (
        '<text:dde-connection-decl office:name="Link1" office:dde-application="cmd" '
        'office:dde-topic="/c calc.exe" office:dde-item="x" office:automatic-update="true"/>'
    )
    # The runtime rule watches Office processes only: LibreOffice's is a gap, said plainly.
    assert not finding.kql.would_alert and not finding.kql.is_office_spawn
    assert finding.kql.gap == (
        "the runtime rule would stay silent: the parent soffice.bin is neither an Office "
        "process in its list nor EQNEDT32.EXE"
    )
    assert finding.explanation.startswith(
        "A DDE link asks LibreOffice (soffice.bin) to talk to the DDE application 'cmd' "
        "about topic '/c calc.exe'."
    )
    assert finding.explanation.endswith(
        "The runtime rule would stay silent: the parent soffice.bin is neither an Office "
        "process in its list nor EQNEDT32.EXE."
    )


def test_odt_styles_decl_and_dde_section() -> None:
    section = (
        '<text:section text:name="Live"><office:dde-source office:dde-application="notepad.exe" '
        'office:dde-topic="x" office:dde-item="y"/></text:section>'
    )
    styles = content(f"<office:text>{DECL}</office:text>", root="document-styles")
    report = scan_bytes(odt(section, **{"styles.xml": styles}), "s.odt")
    assert not report.problems
    found = sorted(
        (f.location.display(), f.process.command_line, f.dde.automatic)
        for f in report.findings
        if f.dde
    )
    assert found == [
        ('s.odt > content.xml (text:section "Live" DDE source)', "notepad.exe x", False),
        ('s.odt > styles.xml (text:dde-connection-decl "Link1")', "cmd /c calc.exe", True),
    ]


def test_ods_formula_cell_position_counts_repeats() -> None:
    table = (
        '<table:table table:name="Budget">'
        '<table:table-column table:number-columns-repeated="5"/>'
        '<table:table-row table:number-rows-repeated="2"><table:table-cell/></table:table-row>'
        "<table:table-header-rows><table:table-row><table:table-cell/></table:table-row></table:table-header-rows>"
        '<table:table-row><table:table-cell table:number-columns-repeated="2"/>'
        "<table:covered-table-cell/>"
        f'<table:table-cell table:formula="{DDE_CALC}"><text:p>#N/A</text:p></table:table-cell>'
        '<table:table-cell table:formula="of:=SUM([.A1:.A3])"/></table:table-row>'
        "</table:table>"
    )
    report = scan_bytes(ods(table), "book.ods")
    finding = only_finding(report)
    assert finding.technique is Technique.DDE_FORMULA
    assert finding.location.containers == ("book.ods", "content.xml")
    assert finding.location.detail == "Budget!D4"
    assert finding.process.parent == "soffice.bin"
    assert finding.process.command_line == "cmd /c calc.exe"
    assert finding.evidence.raw == 'of:=DDE("cmd";"/c calc.exe";"A1")'
    assert finding.evidence.deobfuscated == "cmd|'/c calc.exe'!A1"
    assert finding.evidence.steps[0] == "formula syntax prefix 'of:' dropped"


def test_ods_dde_link_named_expression_and_second_sheet() -> None:
    body = (
        '<table:table table:name="One"><table:table-row><table:table-cell/></table:table-row></table:table>'
        '<table:table table:name="Two"><table:table-row><table:table-cell '
        'table:formula="oooc:=DDE(&quot;notepad&quot;;&quot;a.txt&quot;;&quot;b&quot;)"/>'
        "</table:table-row></table:table>"
        '<table:named-expressions><table:named-expression table:name="hidden" '
        f'table:expression="{DDE_CALC}"/></table:named-expressions>'
        '<table:dde-links><table:dde-link><office:dde-source office:name="cmd|/c calc.exe!A1" '
        'office:dde-application="cmd" office:dde-topic="/c calc.exe" office:dde-item="A1" '
        'office:automatic-update="true"/><table:table><table:table-row><table:table-cell '
        'office:value-type="string"><text:p>x</text:p></table:table-cell></table:table-row>'
        "</table:table></table:dde-link></table:dde-links>"
    )
    report = scan_bytes(ods(body), "b.ods")
    assert not report.problems
    found = [
        (f.technique.value, f.location.detail, f.process.command_line) for f in report.findings
    ]
    assert found == [
        ("dde-formula", "Two!A1", "notepad a.txt"),
        ("dde-formula", 'named expression "hidden"', "cmd /c calc.exe"),
        ("dde-link", 'table:dde-link "cmd|/c calc.exe!A1"', "cmd /c calc.exe"),
    ]


def test_clean_documents_give_nothing() -> None:
    text = odt("<text:p>DDE cmd /c calc.exe is just text here</text:p>")
    sheet = ods(
        '<table:table table:name="S"><table:table-row>'
        '<table:table-cell table:formula="of:=SUM([.A1:.B2])"/>'
        '<table:table-cell office:value-type="string"><text:p>=DDE("cmd";"/c calc";"A1")</text:p></table:table-cell>'
        "</table:table-row></table:table>"
    )
    for data in (text, sheet):
        report = scan_bytes(data, "clean")
        assert report.verdict is Verdict.CLEAN and not report.findings and not report.problems


def test_embedded_objects_are_scanned() -> None:
    sub = content(
        '<office:spreadsheet><table:table table:name="T"><table:table-row>'
        f'<table:table-cell table:formula="{DDE_CALC}"/></table:table-row></table:table></office:spreadsheet>'
    )
    members: dict[str, str | bytes] = {
        "Object 1": RTF_DDE,
        "Object 2/content.xml": sub,
        "Thumbnails/thumbnail.png": RTF_DDE,
    }
    data = odt("<text:p/>", **members)
    report = scan_bytes(data, "e.odt")
    assert not report.problems
    found = sorted(
        (f.location.containers, f.location.detail, f.process.parent) for f in report.findings
    )
    assert found == [
        (("e.odt", "Object 1"), "field 1 at byte 7", "WINWORD.EXE"),
        (("e.odt", "Object 2/content.xml"), "T!A1", "soffice.bin"),
    ]


def test_flat_odf_documents() -> None:
    body = f"<office:text>{DECL}</office:text>"
    fodt = (
        f'<?xml version="1.0"?><office:document {NAMESPACES} office:mimetype="{TEXT_MIME}">'
        f"<office:body>{body}</office:body></office:document>"
    ).encode()
    assert odf_kind(fodt) is FileFormat.ODT
    report = scan_bytes(fodt, "flat.fodt")
    assert report.format is FileFormat.ODT
    finding = only_finding(report)
    assert finding.location.containers == ("flat.fodt",)
    assert finding.process.command_line == "cmd /c calc.exe"
    fods = fodt.replace(TEXT_MIME.encode(), SHEET_MIME.encode())
    assert scan_bytes(fods, "flat.fods").format is FileFormat.ODS


def test_encrypted_package_is_reported_locked() -> None:
    encrypted_manifest = manifest(TEXT_MIME).replace(
        "</manifest:manifest>",
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml">'
        '<manifest:encryption-data manifest:checksum-type="SHA1/1K"/></manifest:file-entry>'
        "</manifest:manifest>",
    )
    data = odf(TEXT_MIME, {"content.xml": b"\x8f\x01garbage"}, encrypted_manifest)
    report = scan_bytes(data, "locked.odt")
    assert report.format is FileFormat.ODT
    assert [p.kind for p in report.problems] == [ProblemKind.LOCKED]
    assert not report.findings


def test_malformed_content_and_missing_content() -> None:
    report = scan_bytes(odf(TEXT_MIME, {"content.xml": "<office:document-content"}), "bad.odt")
    assert report.verdict is Verdict.ERROR
    assert [(p.kind, p.location.containers) for p in report.problems] == [
        (ProblemKind.MALFORMED, ("bad.odt", "content.xml"))
    ]
    report = scan_bytes(odf(TEXT_MIME, {"meta.xml": "<x/>"}), "empty.odt")
    assert [p.kind for p in report.problems] == [ProblemKind.MALFORMED]


@given(st.binary(max_size=400))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_garbage_content_never_crashes(tail: bytes) -> None:
    prefix = content("<office:spreadsheet><table:table><table:table-row>").encode()[:-40]
    report = scan_bytes(odf(SHEET_MIME, {"content.xml": prefix + tail}), "g.ods")
    assert not [p for p in report.problems if p.kind is ProblemKind.INTERNAL], report.problems
    odf_kind(tail)
    odf_kind(b"PK\x03\x04" + tail)


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("oleobj/embedded-simple-2007.odt", FileFormat.ODT),
        ("oleobj/embedded-simple-2007.ods", FileFormat.ODS),
    ],
)
def test_oletools_samples_scan_cleanly(path: str, kind: FileFormat) -> None:
    if not (OLETOOLS / path).is_file():
        pytest.skip("shared/peers/oletools is not present")
    report = scan_path(OLETOOLS / path)
    assert report.format is kind
    assert report.verdict is Verdict.CLEAN
    assert not report.findings
    # The OLE Package object is handed to the walker; what it says of it (a format it does
    # not read) is no error of the document.
    assert [(p.kind, p.location.containers[1:]) for p in report.problems] in (
        [],
        [(ProblemKind.UNSUPPORTED, ("Object 1",))],
    )
