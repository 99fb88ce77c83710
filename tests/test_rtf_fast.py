"""The fast paths of RTF reading against the token-by-token reference they stand in for.

* `find_group_end` (bytes.find from brace to brace) against `find_group_end_reference`;
* `open_groups` and `may_hold_word` against what `iter_tokens` lexes;
* field extraction with the structure and text lexers and inert groups (`_extract(...,
  sparse=True)`) against the full lexer (`sparse=False`);
* object extraction with its pre-filter and whole-run hex decoding (`extract_objects(...,
  fast=True)`) against the token-by-token decoding (`fast=False`).

The documents are the corpus's RTF samples, oletools' RTF test files, documents built here
(fields, objects, pictures, `\\bin`, escapes at awkward places) and Hypothesis-generated ones.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import OLETOOLS
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from scanner.api import scan_bytes
from scanner.formats.rtf import _extract
from scanner.formats.rtf_tokens import (
    Event,
    EventKind,
    Focus,
    RtfReader,
    TokenKind,
    find_group_end,
    find_group_end_reference,
    iter_tokens,
    may_hold_word,
    open_groups,
)
from scanner.formats.rtfobjects import extract_objects
from scanner.model import FieldNode, Technique

ROOT = Path(__file__).resolve().parents[1]
CORPUS_RTF = sorted(
    path
    for folder in ("samples", "adversarial")
    for path in (ROOT / "corpus" / folder).rglob("*.rtf")
)
PEER_RTF = sorted(
    path
    for folder in ("msodde", "rtfobj")
    if (OLETOOLS / folder).is_dir()
    for path in (OLETOOLS / folder).glob("*.rtf")
)

# Pieces of RTF that meet at awkward places when concatenated at random: escapes next to
# braces and backslashes, \bin payloads that swallow structure, words that look like field
# or object words, destinations, code pages, \uN fallbacks, line breaks before leading words.
PIECES = [
    b"{", b"}", b"{", b"}", b"\\", b"\\\\", b"\\{", b"\\}", b"\\\\{", b"\\\\}", b"\\\\\\",
    b"\\field", b"\\field ", b"\\fieldx", b"\\\\field", b"{\\*\\fldinst ", b"{\\fldinst ",
    b"{x\\fldinst ", b"{\\fldrslt ", b"\\fldrslt", b"\\flddirty", b"\\field\\fldedit",
    b"{\\*\\pict ", b"{\\pict\\pngblip ", b"0a1b2c\r\n3d4e", b"{\\header ", b"{\\footer ",
    b"{\\upr", b"{\\*\\ud", b"{\\ud ", b"\\u68", b"\\u-3913", b"\\u8232?", b"\\uc2", b"\\uc0",
    b"\\uc1 ", b"\\'44", b"\\'e0", b"\\'", b"\\'4", b"\\bin3 ", b"\\bin1", b"\\bin", b"\\bin0 ",
    b"\\bin-2", b"\\binx", b"\\bin0002 ", b"\\bin2 }{", b"\\bin2 {\\", b"\\bin1 \\",
    b"DDE", b"AUTO ", b" ", b"?", b"\r\n", b"\n", b"\r", b"\r\n\r\n\r\n", b"\\b0", b"\\b ",
    b"\\f1 ", b"\\f2", b"\\plain ", b"\\par ", b"\\tab", b"\\ldblquote ", b"\\~", b"\\-", b"\\:",
    b"\\|", b"\\\r\n", b"\\*", b"{\\*}", b"{\\*\\|}", b"{\\*\\foo ", b"{\r\n\\*\r\n\\foo ",
    b"{\r\n", b"{\n\\*\n", b"{\\rtlch\\fcs1 ", b"{\\b x}", b"{\\~\\field", b"{{{", b"}}}",
    b"\\ansicpg1251", b"\\ansi", b"\\mac", b"\\deff1", b"\\fonttbl", b"\\fcharset161",
    b"\\cpg1250", b"{\\fonttbl{\\f1\\fcharset204 x;}}", b"{\\fonttbl{\\f2\\cpg1253 y;}{\\f1 z;}}",
    b"{\\b\\fonttbl{\\f1 A;}{\\fcharset204 x}}", b"{\\*\\bkmkstart a}", b"{\\info{\\title t}}",
    b"{\\*\\datafield 0a0b}", b"{\\listtext x}", b"{\\stylesheet{\\s1 a;}}", b"{\\*\\xmlopen x}",
    b"{\\shp{\\*\\shpinst{\\sp{\\sn a}{\\sv b}}", b"{\\*\\pn\\pnlvlblt{\\pntxtb x}}",
    b"{\\object\\objemb{\\*\\objclass Equation.3}", b"\\objupdate", b"{\\*\\objdata ",
    b"\\objdata ", b"\\objdata", b"\\\\objdata", b"\\objdatax", b"01050000", b"02000000",
    b"\\object", b"{\\result ", b"{\\*\\keycode ab}", b"{\\proptype\\staticval abc}",
]  # fmt: skip

DOCUMENTS = st.builds(
    lambda head, pieces: head + b"".join(pieces),
    st.sampled_from([b"{\\rtf1", b"{\\rtf1\\ansi\\deff0 ", b""]),
    st.lists(st.one_of(st.sampled_from(PIECES), st.binary(max_size=3)), max_size=70),
)

FAST_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def assert_fields_agree(data: bytes) -> None:
    assert _extract(data, None, sparse=True) == _extract(data, None, sparse=False)


def assert_objects_agree(data: bytes) -> None:
    assert extract_objects(data, fast=True) == extract_objects(data, fast=False)


def tokens_open_at(
    data: bytes, start: int, reached: int, first_only: bool
) -> tuple[list[int], int]:
    """What `open_groups` should say, from the lexer: the group starts still open when the
    lexer reaches `reached` (or, with `first_only`, where the first group closes)."""
    opened: list[int] = []
    for token in iter_tokens(data, start):
        if token.start >= reached:
            break
        if token.kind is TokenKind.GROUP_START:
            opened.append(token.start)
        elif token.kind is TokenKind.GROUP_END and opened:
            opened.pop()
            if first_only and not opened:
                return [], token.end
    return opened, reached


# find_group_end


@pytest.mark.parametrize(
    ("data", "pos", "expected"),
    [
        (rb"{a\}{b}\bin2 }}c}d", 1, (17, True)),
        (rb"{\\}x", 1, (4, True)),  # an escaped backslash, then a real "}"
        (rb"{\\\}x}", 1, (7, True)),  # an escaped backslash, then an escaped "}"
        (rb"{\bin3 }}}}", 1, (11, True)),  # the payload holds three of the braces
        (rb"{\bin0003 }}}}", 1, (14, True)),  # a zero-padded length
        (rb"{\bin-3 }}", 1, (9, True)),  # a negative length carries no payload
        (rb"{\binx }}", 1, (8, True)),  # not \bin
        (rb"{\\bin2 }}", 1, (9, True)),  # text "bin2 ": the first "}" closes
        (rb"{\bin99 }", 1, (9, False)),  # the payload runs past the end
        (b"{abc{", 1, (5, False)),
        (b"", 0, (0, False)),
        (b"}", -5, (1, True)),
        (b"}", 7, (1, False)),
    ],
)
def test_find_group_end_cases(data: bytes, pos: int, expected: tuple[int, bool]) -> None:
    assert find_group_end(data, pos) == expected
    assert find_group_end_reference(data, pos) == expected


@FAST_SETTINGS
@given(DOCUMENTS, st.integers(min_value=-2, max_value=400))
@example(b"{\\\\\\}}", 1)
@example(b"\\bin1 \\}}", 0)
def test_find_group_end_agrees_with_the_reference(data: bytes, pos: int) -> None:
    assert find_group_end(data, pos) == find_group_end_reference(data, pos)


# open_groups


def test_open_groups_lists_the_groups_open_at_the_stop() -> None:
    data = rb"{a{b}{c\{{d}\bin2 {{{e"
    stop = data.index(b"e")
    assert open_groups(data, 0, stop, 100) == ([0, 5, 20], stop)
    # The first group closes at once; the walk stops past its "}".
    assert open_groups(data, 2, stop, 100, first_only=True) == ([], 5)
    # Past max_open groups open, the walk stops at the "{" that would be one too many.
    assert open_groups(data, 0, stop, 2) == ([0, 5], 9)
    # A \bin payload across the stop carries the walk to its end.
    assert open_groups(rb"{\bin4 }}}}{", 0, 8, 10) == ([0], 11)


@FAST_SETTINGS
@given(DOCUMENTS, st.integers(min_value=0, max_value=30), st.integers(0, 500), st.booleans())
def test_open_groups_agrees_with_the_lexer(
    data: bytes, which: int, stop: int, first_only: bool
) -> None:
    starts = [t.start for t in iter_tokens(data) if t.kind is TokenKind.GROUP_START]
    if not starts:
        return
    start = starts[which % len(starts)]
    opened, reached = open_groups(data, start, stop, 1 << 20, first_only=first_only)
    assert reached >= min(stop, len(data)) or (not opened and first_only)
    assert (opened, reached) == tokens_open_at(data, start, reached, first_only)


# may_hold_word


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (rb"{\rtf1 no object here}", False),
        (rb"{\rtf1 {\*\objdata 0105}}", True),
        (rb"{\rtf1 the word \\objdata in text}", False),  # an escaped backslash
        (rb"{\rtf1 \\\objdata}", True),  # an escaped backslash, then the word
        (rb"{\rtf1 \objdatax \objdata2x}", True),  # \objdata2 is the word with a parameter
        (rb"{\rtf1 \objdatax}", False),
        (rb"{\rtf1 \bin1 \\objdata}", True),  # the payload takes one backslash
        (rb"{\rtf1 \\bin1 \\objdata}", False),  # no \bin: text
        (rb"\objdata", True),
    ],
)
def test_may_hold_word_cases(data: bytes, expected: bool) -> None:
    assert may_hold_word(data, "objdata") is expected
    words = [t.name for t in iter_tokens(data) if t.kind is TokenKind.WORD]
    if not expected:
        assert "objdata" not in words


@FAST_SETTINGS
@given(DOCUMENTS)
@example(b"{\\rtf1 \\bin1 \\\\objdata 0105}")
def test_may_hold_word_is_never_wrong_when_it_says_no(data: bytes) -> None:
    for word in ("objdata", "object", "bin", "field"):
        if not may_hold_word(data, word):
            names = [t.name for t in iter_tokens(data) if t.kind is not TokenKind.TEXT]
            assert word not in names
    if not may_hold_word(data, "objdata"):
        assert extract_objects(data, fast=False).objects == ()


def test_a_document_that_only_mentions_objdata_is_not_read_for_objects() -> None:
    # Like the RTF specification: the word written out, with an escaped backslash.
    data = rb"{\rtf1{\b \\objdata}{\lang1036 \\objdata}\par " + rb"{\b x}" * 1000 + b"}"
    assert not may_hold_word(data, "objdata")
    assert extract_objects(data).objects == ()
    assert extract_objects(data, fast=False).objects == ()


# Field extraction: fast against full


@FAST_SETTINGS
@given(DOCUMENTS)
@example(b"{\\rtf1{\\field{\\*\\fldinst DDE x}{\\*\\|{\\fldrslt RES}}}}")
@example(b"{\\rtf1{\\b\\fonttbl{\\f1 A;}{\\fcharset204 x}}{\\field{\\*\\fldinst \\f1 \\'e0}}}")
@example(b"{\\rtf1{\\field{\\*\\fldinst A{\\upr{B}{\\*\\ud C}}D}}}")
@example(b"{\\rtf1{\\upr{x}{\\*\\ud{\\field{\\*\\fldinst DDE}}}}}")
@example(b"{\\rtf1{{\\*\\bkmkstart a}{\\ansicpg1251}}{\\field{\\*\\fldinst \\'e0}}}")
@example(b"{\\rtf1{{\\b x}\\bin3 {}}{\\field{\\*\\fldinst X}}}")
@example(b"{\\rtf1{\r\n\r\n\r\n\\*\\foo{\\field{\\*\\fldinst X}}}}")
@example(b"{\\rtf1{\\field{\\*\\fldinst \\u68\\b0 x}}}")
def test_field_extraction_agrees_with_the_full_lexer(data: bytes) -> None:
    assert_fields_agree(data)


def test_symbol_opening_an_ignorable_destination_is_not_passed_over() -> None:
    # {\*\|...} is an unknown ignorable destination: the result inside it is not the field's.
    data = rb"{\rtf1{\field{\*\fldinst DDE x}{\*\|{\fldrslt RES}}}}"
    (field,) = _extract(data, None).fields
    assert field == FieldNode(instruction=("DDE x",), result="", detail="field 1 at byte 7")
    assert_fields_agree(data)


def test_groups_in_a_font_table_are_read_for_the_font_a_code_page_describes() -> None:
    # \f1 in its own group, then \fcharset204 in another: font 1 is Cyrillic (cp1251).
    data = rb"{\rtf1{\b\fonttbl{\f1 A;}{\fcharset204 x}}{\field{\*\fldinst \f1 \'e0}}}"
    (field,) = _extract(data, None).fields
    assert field.instruction == ("\u0430",)
    assert_fields_agree(data)


def test_no_character_is_made_across_a_group_boundary() -> None:
    # Text pieces that only unreported group boundaries separate come as one TEXT event,
    # but a double-byte lead byte or a high surrogate still ends with its group.
    data = rb"{\rtf1\ansicpg932{\field{\*\fldinst A\'81{\'40}\u-10179?{\u-8704?}B}}}"
    (field,) = _extract(data, None).fields
    assert field.instruction == ("A\ufffd@\ufffd\ufffdB",)
    assert_fields_agree(data)


def test_a_unicode_alternative_inside_an_instruction_keeps_its_text() -> None:
    data = rb"{\rtf1{\field{\*\fldinst DDE{\upr{x}{\*\ud AUTO}} calc}}}"
    (field,) = _extract(data, None).fields
    assert field.instruction == ("DDEAUTO calc",)
    assert_fields_agree(data)


def test_a_field_in_a_group_that_looks_inert_is_found() -> None:
    data = rb"{\rtf1{{\*\bkmkstart a}{\header{\b{\field{\*\fldinst DDEAUTO calc}}}}}}"
    (field,) = _extract(data, None).fields
    offset = data.index(rb"\field")
    assert field == FieldNode(
        instruction=("DDEAUTO calc",), result="", detail=f"field 1 in header at byte {offset}"
    )
    assert_fields_agree(data)


def benchmark_shaped(paragraphs: int) -> bytes:
    """Text, pictures as wrapped hex, and one DDE field at the very end."""
    parts = [rb"{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0\fswiss Arial;}}{\info{\title T}}\pard "]
    for index in range(paragraphs):
        if index % 8 == 7:
            hexdata = bytes(range(256)).hex().encode() * 4
            lines = b"\n".join(hexdata[i : i + 128] for i in range(0, len(hexdata), 128))
            parts.append(rb"{\pict\pngblip\picw64\pich48" + b"\n" + lines + rb"}\par" + b"\n")
        else:
            parts.append(rb"{\b ledger%d} audit \i net\i0 .\par" % index + b"\n")
    parts.append(
        rb'{\field{\*\fldinst DDEAUTO c:\\windows\\system32\\cmd.exe "/k calc.exe"}'
        rb"{\fldrslt benchmark}}\par" + b"\n}"
    )
    return b"".join(parts)


def test_benchmark_shaped_document() -> None:
    data = benchmark_shaped(400)
    offset = data.index(rb"\field")
    extraction = _extract(data, None)
    assert extraction.fields == (
        FieldNode(
            instruction=('DDEAUTO c:\\windows\\system32\\cmd.exe "/k calc.exe"',),
            result="benchmark",
            detail=f"field 1 at byte {offset}",
        ),
    )
    assert extraction == _extract(data, None, sparse=False)
    (finding,) = scan_bytes(data, "bench.rtf").findings
    assert finding.technique is Technique.DDE_FIELD
    assert finding.process.image == "cmd.exe"
    assert finding.process.command_line == "c:\\windows\\system32\\cmd.exe /k calc.exe"


def test_field_dense_document() -> None:
    # Fields everywhere, as in Word's own documents: hyperlinks with \datafield blobs,
    # bookmarks, formatting groups, results in nested groups.
    field = (
        rb"{\field\fldedit{\*\fldinst { HYPERLINK  \\l " + b'"A%d"' + rb" }{{\*\datafield "
        rb"08d0c9ea79f9bace118c8200aa004ba90b02000000}}}{\fldrslt {\cs110\ul\cf2 Part %d}}}"
    )
    body = b"".join(
        rb"\pard\plain \s3\sb240\f1\fs20 {{\*\bkmkstart _T%d}Text %d.{\*\bkmkend _T%d}\par }"
        % (n, n, n)
        + rb"{see }"
        + field % (n, n)
        + rb"{\lang1046 '\{' }{\b \\objdata}"
        for n in range(300)
    )
    data = (
        rb"{\rtf1\mac\ansicpg10000\uc1\deff1{\fonttbl{\f1\fnil\fcharset256 Arial;}}" + body + b"}"
    )
    fields = _extract(data, None).fields
    assert len(fields) == 300
    assert fields[7].instruction == (' HYPERLINK  \\l "A7" ',)
    assert fields[7].result == "Part 7"
    assert_fields_agree(data)
    assert not may_hold_word(data, "objdata")
    assert_objects_agree(data)


# The generic reader: events with text wanted in some destinations, fast against full.

_FOCUS = Focus(
    words=frozenset({"field", "fldinst", "flddirty"}),
    destinations=frozenset({"fldinst", "pict", "header", "fonttbl", "upr", "ud"}),
)


def focused_walk(data: bytes, sparse: bool, inert: bool = False) -> list[Event]:
    """Text only inside \\fldinst and \\header groups; pictures and font tables skipped."""
    reader = RtfReader(data)
    reader.allow_sparse = sparse
    reader.focus = _FOCUS
    reader.want_text = False
    reader.inert_groups = inert
    open_at: list[int] = []
    seen: list[Event] = []
    for event in reader.events():
        seen.append(event)
        if event.kind is EventKind.CONTROL and event.leading:
            if event.name in ("pict", "fonttbl"):
                reader.skip_group()
            elif event.name in ("fldinst", "header"):
                open_at.append(event.depth)
        elif event.kind is EventKind.GROUP_END and open_at and open_at[-1] == event.depth:
            open_at.pop()
        reader.want_text = bool(open_at)
        reader.inert_groups = inert and not open_at
    return seen


@FAST_SETTINGS
@given(DOCUMENTS)
@example(b"{\\rtf1{\\header a{\\b b}\\u68?{\\i c}\\|d}}")
def test_reader_events_agree_with_the_full_lexer(data: bytes) -> None:
    assert focused_walk(data, sparse=True) == focused_walk(data, sparse=False)


def test_text_split_only_by_unreported_groups_is_one_event() -> None:
    data = rb"{\rtf1{\header a{\b b}\u68?{\i c}\|d\'e9}}"
    texts = [e for e in focused_walk(data, sparse=True) if e.kind is EventKind.TEXT]
    assert texts == [Event(EventKind.TEXT, data.index(b"a{"), 2, text="abDcd\u00e9")]


def test_inert_groups_are_passed_over_unreported() -> None:
    data = rb"{\rtf1{{\*\foo x}{\header y}}{{\header{\field}}}}"
    events = [(e.kind, e.name, e.offset) for e in focused_walk(data, sparse=True, inert=True)]
    header = data.index(rb"\header{")
    field = data.index(rb"\field")
    assert events == [
        (EventKind.CONTROL, "header", header),
        (EventKind.CONTROL, "field", field),
        (EventKind.GROUP_END, "", field + 6),
        (EventKind.GROUP_END, "", field + 7),
    ]


# Object extraction: fast against full


def object_doc(body: bytes) -> bytes:
    return (
        rb"{\rtf1\ansi {\object\objemb\objupdate{\*\objclass Equation.3}\objw10\objh10"
        rb"{\*\objdata " + body + rb"}{\result x}}}"
    )


OBJECT_PIECES = st.sampled_from(
    [
        b"01", b"05", b"0a", b"FF", b"fe", b"\r\n", b"\n", b" ", b"z", b"{", b"}", b"\\*",
        b"{\\*\\keycode ab}", b"{\\proptype\\staticval abc}", b"\\bin3 ", b"\\bin2 {}", b"\\bin",
        b"\\'4", b"\\'41", b"\\'", b"\\par ", b"\\objdata ", b"\\object", b"\\staticval ",
        b"\\\\", b"\\{", b"\\}", b"\\", b"{\r\n\\*\\keycode x}", b"{\\b 12}", b"\\objclass",
    ]
)  # fmt: skip


@FAST_SETTINGS
@given(st.lists(OBJECT_PIECES, max_size=90))
@example([b"{", b"\r\n", b"\\*", b"01", b"}", b"02"])
@example([b"0", b"\\'41", b"1\r\n2"])
def test_object_decoding_agrees_with_the_token_by_token_decoding(pieces: list[bytes]) -> None:
    assert_objects_agree(object_doc(b"".join(pieces)))


@FAST_SETTINGS
@given(DOCUMENTS)
def test_object_extraction_agrees_on_any_document(data: bytes) -> None:
    assert_objects_agree(data)


def test_large_object_in_hex_lines() -> None:
    payload = bytes(range(256)) * 400
    hexdata = payload.hex().encode()
    lines = b"\r\n".join(hexdata[i : i + 64] for i in range(0, len(hexdata), 64))
    data = object_doc(lines)
    (obj,) = extract_objects(data).objects
    assert obj.data == payload
    assert obj.objclass == "Equation.3"
    assert obj.auto_update
    assert obj.steps == ()
    assert_objects_agree(data)


# Whole files


@pytest.mark.parametrize("path", CORPUS_RTF, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_corpus_rtf_fast_equals_full(path: Path) -> None:
    data = path.read_bytes()
    assert_fields_agree(data)
    assert_objects_agree(data)


@pytest.mark.skipif(not PEER_RTF, reason="shared/peers/oletools is not present")
@pytest.mark.parametrize("path", PEER_RTF, ids=lambda p: p.name)
def test_oletools_rtf_fast_equals_full(path: Path) -> None:
    data = path.read_bytes()
    assert_fields_agree(data)
    assert_objects_agree(data)


def test_corpus_has_rtf_samples() -> None:
    names = {path.name for path in CORPUS_RTF}
    assert {"ddeauto-cmd.rtf", "nested-100k.rtf", "hex-bin-run.rtf"} <= names
