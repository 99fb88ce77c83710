"""Word 97-2003 binary documents: the compound-file helpers (scanner.formats.cfb), the FIB and
piece table reader and the field-character state machine (scanner.formats.worddoc).

Fixtures are written by corpus/docwriter.py (FIB + one Clx with a piece table, from
[MS-DOC]) on top of corpus/cfbwriter.py ([MS-CFB]); neither writes PlcFld tables, so every
test here also shows that fields are found from the marks in the text alone.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import docwriter
import olefile
import pytest
from cfbwriter import write_cfb
from conftest import OLETOOLS
from docwriter import Stories, doc_file, field, word_streams
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanner.api import scan_bytes, scan_path
from scanner.errors import LimitExceeded, MalformedInput, ScanError, UnsupportedInput
from scanner.formats import worddoc
from scanner.formats.base import ByteBudget, ScanContext
from scanner.formats.cfb import has_stream, is_cfb, open_cfb, read_stream, stream_names
from scanner.formats.worddoc import (
    MAX_FIELD_NESTING,
    TRAILING_STORY,
    WordBinaryFormat,
    parse_fib,
    read_stories,
)
from scanner.model import (
    Confidence,
    FieldNode,
    FileFormat,
    Finding,
    Location,
    ProblemKind,
    ScanConfig,
    ScanLimits,
    ScanReport,
    Technique,
    Verdict,
)

CMD_CODE = 'DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc.exe" '
CMD_LINE = "c:\\windows\\system32\\cmd.exe /k calc.exe"
CMD_FIELD = field(CMD_CODE, "")
QUOTE_FIELD = field("DDEAUTO " + field("QUOTE 99 109 100") + ' "/c calc.exe" ', "Loading")
LURE = "Invoice 2017-1142. Please update the links.\r"


def main_doc(body: str, **options: object) -> bytes:
    return doc_file(Stories(LURE + body + "\r"), **options)


def locations(report: ScanReport) -> list[tuple[tuple[str, ...], str]]:
    return [(f.location.containers, f.location.detail) for f in report.findings]


def only_finding(report: ScanReport) -> Finding:
    assert report.problems == (), report.problems
    assert len(report.findings) == 1, report.findings
    return report.findings[0]


def problem_kinds(report: ScanReport) -> list[ProblemKind]:
    return [p.kind for p in report.problems]


def patched(streams: dict[str, bytes], name: str, offset: int, fmt: str, *values: int) -> bytes:
    data = bytearray(streams[name])
    struct.pack_into(fmt, data, offset, *values)
    return write_cfb({**streams, name: bytes(data)})


def clx_offset(streams: dict[str, bytes]) -> int:
    return int(struct.unpack_from("<I", streams["WordDocument"], docwriter.FC_CLX_OFFSET)[0])


# --- scanner.formats.cfb ------------------------------------------------------------------


def test_cfb_helpers_read_streams_and_names() -> None:
    data = write_cfb(
        {"WordDocument": b"W" * 5000, "1Table": b"T" * 100, "ObjectPool/_1/Contents": b"abc"}
    )
    assert is_cfb(data) and not is_cfb(b"PK\x03\x04" + data[4:])
    ole = open_cfb(data)
    assert stream_names(ole) == ["1Table", "ObjectPool/_1/Contents", "WordDocument"]
    assert has_stream(ole, "WordDocument") and not has_stream(ole, "ObjectPool")
    assert not has_stream(ole, "0Table")
    assert read_stream(ole, "WordDocument", 5000) == b"W" * 5000
    assert read_stream(ole, "ObjectPool/_1/Contents", 10) == b"abc"
    with pytest.raises(LimitExceeded, match=r"WordDocument.*4999"):
        read_stream(ole, "WordDocument", 4999)
    with pytest.raises(MalformedInput, match="no stream"):
        read_stream(ole, "ObjectPool", 100)


def test_cfb_refuses_a_stream_that_claims_more_than_the_file() -> None:
    data = bytearray(write_cfb({"WordDocument": b"W" * 5000}))
    entry = data.find("WordDocument".encode("utf-16-le"))
    struct.pack_into("<Q", data, entry + 120, 2 * 1024**3)
    ole = open_cfb(bytes(data))
    with pytest.raises(MalformedInput, match="more than the whole file"):
        read_stream(ole, "WordDocument", 128 * 1024 * 1024)


@pytest.mark.parametrize(
    "data",
    [
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\xff" * 600,
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 2000,
        b"not a compound file at all",
    ],
    ids=["magic-only", "short-garbage", "zero-header", "no-magic"],
)
def test_open_cfb_turns_every_failure_into_malformed_input(data: bytes) -> None:
    # A short byte string must never be taken for a file name by olefile either.
    with pytest.raises(MalformedInput):
        open_cfb(data)


def test_cfb_writer_output_is_strictly_valid_for_olefile() -> None:
    data = main_doc(CMD_FIELD)
    ole = olefile.OleFileIO(io.BytesIO(data), raise_defects=olefile.DEFECT_INCORRECT)
    assert sorted(ole.listdir()) == [["1Table"], ["WordDocument"]]
    assert data == main_doc(CMD_FIELD), "the writer must be deterministic"


# --- identify -----------------------------------------------------------------------------


def test_identify_claims_only_unencrypted_word_compound_files() -> None:
    handler = WordBinaryFormat()
    assert handler.identify(main_doc(CMD_FIELD), "x.bin") is Confidence.YES
    encrypted = main_doc(CMD_FIELD, extra_flags=docwriter.F_ENCRYPTED)
    assert handler.identify(encrypted, "x.doc") is Confidence.NO
    workbook = write_cfb({"Workbook": b"\x09\x08" + b"\x00" * 5000})
    assert handler.identify(workbook, "x.doc") is Confidence.NO
    assert handler.identify(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "x.doc") is (
        Confidence.NO
    )
    assert handler.identify(b"{\\rtf1 DDEAUTO}", "x.doc") is Confidence.NO


def test_encrypted_document_is_not_read_as_plain_text() -> None:
    data = main_doc(CMD_FIELD, extra_flags=docwriter.F_ENCRYPTED)
    ctx = ScanContext(
        ScanConfig(), Location(("x.doc",)), None, 0, float("inf"), ByteBudget(1 << 30)
    )
    with pytest.raises(UnsupportedInput, match="encrypted"):
        list(WordBinaryFormat().scan(data, ctx))
    report = scan_bytes(data, "x.doc")
    assert report.format is not FileFormat.DOC
    # Whatever opens encrypted files may report the lock; the ciphertext is never read as text.
    assert not [f for f in report.findings if f.technique is Technique.DDE_FIELD]


# --- text and fields ----------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["cp1252", "utf-16", "mixed"])
@pytest.mark.parametrize("piece_chars", [0, 1, 7])
def test_ddeauto_in_main_text(encoding: str, piece_chars: int) -> None:
    report = scan_bytes(main_doc(CMD_FIELD, encoding=encoding, piece_chars=piece_chars), "x.doc")
    assert report.format is FileFormat.DOC
    assert report.verdict is Verdict.MALICIOUS
    finding = only_finding(report)
    assert finding.technique is Technique.DDE_FIELD
    assert finding.location.containers == ("x.doc", "WordDocument", "main text")
    assert finding.location.detail == "field 1"
    assert finding.process.parent == "WINWORD.EXE"
    assert finding.process.image == "cmd.exe"
    assert finding.process.command_line == CMD_LINE
    assert finding.dde is not None and finding.dde.keyword == "DDEAUTO"
    assert finding.dde.automatic
    assert finding.evidence.raw == CMD_CODE.strip()


def test_compressed_text_uses_the_fccompressed_exceptions() -> None:
    # Bytes 0x93/0x94 are U+201C/U+201D in compressed text ([MS-DOC] 2.9.73), and Word
    # accepts curly quotes around a field argument.
    code = "DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe \u201c/k calc.exe\u201d"
    streams = word_streams(Stories(LURE + field(code) + "\r"))
    assert b"\x93/k calc.exe\x94" in streams["WordDocument"]
    finding = only_finding(scan_bytes(write_cfb(streams), "x.doc"))
    assert finding.process.command_line == CMD_LINE


def test_korean_utf16_text_around_the_field() -> None:
    body = "\uc548\ub155\ud558\uc138\uc694 " + CMD_FIELD + " \U0001f600"
    finding = only_finding(scan_bytes(main_doc(body, encoding="utf-16"), "x.doc"))
    assert finding.process.command_line == CMD_LINE


def test_nested_quote_field_is_evaluated() -> None:
    finding = only_finding(scan_bytes(main_doc(QUOTE_FIELD), "x.doc"))
    assert finding.process.image == "cmd.exe"
    assert finding.process.command_line == "cmd /c calc.exe"
    assert finding.evidence.raw == 'DDEAUTO { QUOTE 99 109 100 } "/c calc.exe"'
    assert finding.location.detail == "field 1"


@pytest.mark.parametrize(
    ("story", "name"),
    [
        ("footnotes", "footnotes"),
        ("headers", "headers and footers"),
        ("comments", "comments"),
        ("endnotes", "endnotes"),
        ("text_boxes", "text boxes"),
        ("header_text_boxes", "header text boxes"),
    ],
)
def test_field_in_each_sub_document(story: str, name: str) -> None:
    stories = Stories(LURE, **{story: "Note " + CMD_FIELD + "\r"})
    report = scan_bytes(doc_file(stories, encoding="mixed", piece_chars=5), "x.doc")
    finding = only_finding(report)
    assert finding.location.containers == ("x.doc", "WordDocument", name)
    assert finding.location.detail == "field 1"
    assert finding.process.command_line == CMD_LINE


def test_header_field_with_a_clean_body_and_fields_everywhere() -> None:
    stories = Stories(
        LURE + field("PAGE", "1") + "\r",
        headers="Head " + QUOTE_FIELD + "\r",
        footnotes=CMD_FIELD + "\r",
    )
    report = scan_bytes(doc_file(stories), "x.doc")
    assert report.problems == ()
    assert sorted(locations(report)) == [
        (("x.doc", "WordDocument", "footnotes"), "field 1"),
        (("x.doc", "WordDocument", "headers and footers"), "field 1"),
    ]


def test_field_inside_a_result_is_a_field_of_its_own() -> None:
    body = field("REF invoice", "Total: " + CMD_FIELD)
    finding = only_finding(scan_bytes(main_doc(body), "x.doc"))
    assert finding.location.detail == "field 2"
    assert finding.process.command_line == CMD_LINE


def test_result_text_is_never_taken_for_an_instruction() -> None:
    body = field("PAGE", 'DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc.exe"')
    report = scan_bytes(main_doc(body), "x.doc")
    assert report.verdict is Verdict.CLEAN and report.findings == ()


def test_unterminated_field_is_closed_at_the_end_of_its_sub_document() -> None:
    stories = Stories(
        LURE + "\x13DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe ",
        footnotes='"/k calc.exe"\x15\r',
    )
    finding = only_finding(scan_bytes(doc_file(stories), "x.doc"))
    assert finding.location.containers[-1] == "main text"
    # The footnote's text is not part of the main text's field.
    assert finding.process.command_line == "c:\\windows\\system32\\cmd.exe"


def test_stray_separators_and_ends_are_ignored() -> None:
    body = "\x14\x15 text \x15" + CMD_FIELD + "\x14\x15"
    finding = only_finding(scan_bytes(main_doc(body), "x.doc"))
    assert finding.process.command_line == CMD_LINE


def test_fields_nested_past_the_walk_depth_are_still_reported() -> None:
    depth = MAX_FIELD_NESTING + 20
    body = "\x13IF 1 = 1 " * depth + CMD_FIELD + "\x15" * depth
    report = scan_bytes(main_doc(body), "x.doc")
    commands = [f.process.command_line for f in report.findings]
    assert CMD_LINE in commands
    assert report.problems == ()


def test_text_past_the_declared_sub_documents_is_scanned() -> None:
    streams = word_streams(Stories(LURE + CMD_FIELD + "\r"))
    report = scan_bytes(
        patched(streams, "WordDocument", docwriter.CCP_OFFSETS["main"], "<i", len(LURE)),
        "x.doc",
    )
    finding = only_finding(report)
    assert finding.location.containers == ("x.doc", "WordDocument", TRAILING_STORY)


def test_sub_document_counts_past_the_text_are_clipped() -> None:
    streams = word_streams(Stories(LURE + CMD_FIELD + "\r"))
    data = patched(streams, "WordDocument", docwriter.CCP_OFFSETS["footnotes"], "<i", 10**6)
    finding = only_finding(scan_bytes(data, "x.doc"))
    assert finding.location.containers[-1] == "main text"


def test_zero_table_stream_is_chosen_by_fwhichtblstm() -> None:
    data = main_doc(CMD_FIELD, table_stream="0Table")
    assert only_finding(scan_bytes(data, "x.doc")).process.command_line == CMD_LINE


def test_prc_entries_before_the_piece_table_are_skipped() -> None:
    streams = word_streams(Stories(LURE + CMD_FIELD + "\r"))
    prc = b"\x01" + struct.pack("<h", 3) + b"\x00\x00\x00"
    streams["1Table"] = prc + streams["1Table"]
    data = patched(streams, "WordDocument", docwriter.LCB_CLX_OFFSET, "<I", len(streams["1Table"]))
    assert only_finding(scan_bytes(data, "x.doc")).process.command_line == CMD_LINE


def test_word97_layout_with_a_lower_nfib_is_still_read() -> None:
    data = main_doc(CMD_FIELD, n_fib=0x00C0)
    assert only_finding(scan_bytes(data, "x.doc")).process.command_line == CMD_LINE


def test_field_limit_keeps_the_findings_before_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worddoc, "MAX_FIELDS", 3)
    report = scan_bytes(main_doc(CMD_FIELD * 5), "x.doc")
    assert problem_kinds(report) == [ProblemKind.LIMIT]
    assert [f.location.detail for f in report.findings] == ["field 1", "field 2", "field 3"]


def test_stream_over_the_part_limit_is_a_limit_problem() -> None:
    config = ScanConfig(limits=ScanLimits(max_part_bytes=1024))
    report = scan_bytes(main_doc(CMD_FIELD + "x" * 5000), "x.doc", config)
    assert problem_kinds(report) == [ProblemKind.LIMIT]
    assert report.verdict is Verdict.ERROR


# --- malformed and unsupported documents ----------------------------------------------------


def _bad(streams: dict[str, bytes]) -> bytes:
    return write_cfb(streams)


def _base() -> dict[str, bytes]:
    return word_streams(Stories(LURE + CMD_FIELD + "\r"))


def _variants() -> list[tuple[str, bytes, str]]:
    base = _base()
    clx_at = clx_offset(base)
    plc_at = clx_at + 5
    return [
        ("truncated-fib", _bad({**base, "WordDocument": base["WordDocument"][:24]}), "too short"),
        (
            "fib-pairs-cut",
            _bad({**base, "WordDocument": base["WordDocument"][:0x120]}),
            "FIB is truncated",
        ),
        (
            "not-a-fib",
            patched(base, "WordDocument", 0, "<H", 0x1234),
            "wIdent 0x1234",
        ),
        (
            "clx-past-end",
            patched(base, "WordDocument", docwriter.FC_CLX_OFFSET, "<I", 10_000),
            "past its end",
        ),
        ("no-clx", patched(base, "WordDocument", docwriter.LCB_CLX_OFFSET, "<I", 0), "lcbClx"),
        (
            "absurd-plcpcd-size",
            patched(base, "1Table", clx_at + 1, "<I", 0x7FFFFFF0),
            "claims 2147483632 bytes",
        ),
        (
            "absurd-cp-count",
            patched(base, "1Table", plc_at + 4, "<i", 1_000_000_000),
            "more than a",
        ),
        ("cps-backwards", patched(base, "1Table", plc_at, "<i", 5), "starts at CP 5"),
        (
            "piece-outside-stream",
            patched(base, "1Table", plc_at + 8 + 2, "<I", 0x40000000 | 0x3FFFFFF0),
            "points past the end",
        ),
        ("no-pcdt", patched(base, "1Table", clx_at, "<B", 0x07), "no Pcdt"),
        (
            "negative-ccp",
            patched(base, "WordDocument", docwriter.CCP_OFFSETS["main"], "<i", -5),
            "negative length",
        ),
        (
            "missing-table-stream",
            _bad({"WordDocument": base["WordDocument"]}),
            "no such stream",
        ),
        (
            "few-lw-longs",
            patched(base, "WordDocument", 0x3E, "<H", 4),
            "fewer than the 11",
        ),
    ]


VARIANTS = _variants()


@pytest.mark.parametrize(("name", "data", "message"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_corrupt_documents_give_a_clear_malformed_error(
    name: str, data: bytes, message: str
) -> None:
    report = scan_bytes(data, "bad.doc")
    assert report.format is FileFormat.DOC
    assert report.verdict is Verdict.ERROR
    assert problem_kinds(report) == [ProblemKind.MALFORMED], report.problems
    assert message in report.problems[0].message, report.problems[0].message
    assert report.problems[0].location.containers == ("bad.doc",)


def test_word6_document_is_unsupported() -> None:
    streams = _base()
    word = bytearray(streams["WordDocument"])
    struct.pack_into("<HH", word, 0, 0xA5EC, 0x0065)
    struct.pack_into("<I", word, 0x20, 0x1234)  # Word 6: fcMac etc., not csw/cslw
    report = scan_bytes(write_cfb({**streams, "WordDocument": bytes(word)}), "old.doc")
    assert problem_kinds(report) == [ProblemKind.UNSUPPORTED]
    assert "Word 6.0/95" in report.problems[0].message
    assert report.findings == ()


def _location() -> Location:
    return Location(("x.doc", "WordDocument"))


def _no_check() -> None:
    return None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_streams_raise_only_typed_errors(data: st.DataObject) -> None:
    streams = word_streams(
        Stories(LURE + QUOTE_FIELD + "\r", headers=CMD_FIELD + "\r"),
        encoding="mixed",
        piece_chars=9,
    )
    name = data.draw(st.sampled_from(["WordDocument", "1Table"]))
    stream = bytearray(streams[name])
    for _ in range(data.draw(st.integers(1, 8))):
        offset = data.draw(st.integers(0, len(stream) - 1))
        stream[offset] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        stream = stream[: data.draw(st.integers(0, len(stream)))]
    streams[name] = bytes(stream)
    try:
        fib = parse_fib(streams["WordDocument"])
        table = streams.get(fib.table_stream, b"")
        result = read_stories(streams["WordDocument"], table, fib, _location(), _no_check)
    except ScanError:
        return
    for story in result.stories:
        assert all(isinstance(node, FieldNode) for node in story.fields)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=3000))
def test_arbitrary_compound_file_bytes_never_crash(tail: bytes) -> None:
    data = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + tail
    report = scan_bytes(data, "fuzz.doc")
    assert ProblemKind.INTERNAL not in problem_kinds(report)


FUZZ_BASE = doc_file(
    Stories(LURE + CMD_FIELD + "\r", headers=QUOTE_FIELD + "\r"), encoding="mixed", piece_chars=9
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(0, len(FUZZ_BASE) - 1), st.integers(0, 255)), min_size=1, max_size=6
    ),
    st.integers(0, len(FUZZ_BASE)),
)
def test_mutated_compound_files_never_crash(changes: list[tuple[int, int]], keep: int) -> None:
    # Header, FAT, directory, FIB and piece table bytes all get hit: olefile's own failures
    # must come out as malformed input, never as an internal error.
    data = bytearray(FUZZ_BASE)
    for offset, value in changes:
        data[offset] = value
    report = scan_bytes(bytes(data[: max(keep, 8)]), "fuzz.doc")
    assert ProblemKind.INTERNAL not in problem_kinds(report), report.problems


# --- oletools' public test files ------------------------------------------------------------

MSODDE = OLETOOLS / "msodde"
needs_oletools = pytest.mark.skipif(not MSODDE.is_dir(), reason="shared/peers/oletools absent")


@needs_oletools
@pytest.mark.parametrize(
    "name",
    [
        "dde-test-from-office2003.doc",
        "dde-test-from-office2016.doc",
        "dde-test-from-office2013-utf_16le-korean.doc",
    ],
)
def test_oletools_dde_documents(name: str) -> None:
    report = scan_path(MSODDE / name)
    assert report.format is FileFormat.DOC
    assert report.problems == ()
    assert report.verdict is Verdict.MALICIOUS
    ddeauto = [
        f
        for f in report.findings
        if f.dde is not None
        and f.dde.keyword == "DDEAUTO"
        and f.process.image == "cmd.exe"
        and f.process.command_line == CMD_LINE
    ]
    assert len(ddeauto) == 1, report.findings
    assert ddeauto[0].location.containers[1:] == ("WordDocument", "main text")
    assert ddeauto[0].location.detail == "field 1"


@needs_oletools
def test_oletools_dde_document_lists_every_dde_field() -> None:
    report = scan_path(MSODDE / "dde-test-from-office2003.doc")
    assert sorted(
        (f.dde.keyword if f.dde else "", f.process.command_line) for f in report.findings
    ) == [
        ("DDE", CMD_LINE),
        ("DDEAUTO", CMD_LINE),
        ("DDEAUTO", "\u00fcnic\u00f6de-test"),
    ]


@needs_oletools
def test_oletools_clean_document() -> None:
    report = scan_path(MSODDE / "harmless-clean.doc")
    assert report.format is FileFormat.DOC
    assert report.verdict is Verdict.CLEAN
    assert report.findings == () and report.problems == ()


OLETOOLS_DOCS = (
    sorted(p for p in OLETOOLS.rglob("*") if p.suffix.lower() in {".doc", ".dot"})
    if OLETOOLS.is_dir()
    else []
)


@pytest.mark.skipif(not OLETOOLS_DOCS, reason="shared/peers/oletools absent")
@pytest.mark.parametrize("path", OLETOOLS_DOCS, ids=lambda p: p.relative_to(OLETOOLS).as_posix())
def test_oletools_word_files_scan_without_internal_errors(path: Path) -> None:
    report = scan_path(path)
    assert ProblemKind.INTERNAL not in problem_kinds(report), report.problems
    if report.format is FileFormat.DOC:
        assert report.problems == (), report.problems
