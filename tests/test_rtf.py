"""RTF: the tokenizer / group walker (scanner.formats.rtf_tokens) and field extraction
(scanner.formats.rtf), down to the findings Word's DDE fields produce."""

from __future__ import annotations

import contextlib
import time

import pytest
from conftest import OLETOOLS
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from scanner.api import scan_bytes
from scanner.errors import LimitExceeded, ScanError
from scanner.formats.rtf import MAX_FIELD_NESTING, RtfFormat, _extract, extract_field_stories
from scanner.formats.rtf_tokens import (
    MAX_TRACKED_DEPTH,
    Event,
    EventKind,
    Focus,
    RtfReader,
    Token,
    TokenKind,
    find_group_end,
    iter_tokens,
    parse_param,
)
from scanner.model import (
    Confidence,
    FieldNode,
    FileFormat,
    Location,
    ProblemKind,
    ScanConfig,
    ScanLimits,
    Technique,
    Verdict,
)

LOC = Location(("doc.rtf",))
CMD = rb"c:\\\\windows\\\\system32\\\\cmd.exe"
CMD_FIELD_CODE = "c:\\\\windows\\\\system32\\\\cmd.exe"
CMD_LINE = "c:\\windows\\system32\\cmd.exe /k calc.exe"


def text_of(rtf: bytes) -> str:
    """The decoded text of a document, font table left out."""
    reader = RtfReader(rtf)
    texts: list[str] = []
    for event in reader.events():
        if event.name == "fonttbl":
            reader.skip_group()
        elif event.kind is EventKind.TEXT:
            texts.append(event.text)
    return "".join(texts)


def at(data: bytes, needle: bytes = b"\\field", occurrence: int = 1) -> int:
    """Byte offset of the n-th occurrence of `needle` in `data`."""
    offset = -1
    for _ in range(occurrence):
        offset = data.index(needle, offset + 1)
    return offset


def fields_of(rtf: bytes) -> tuple[FieldNode, ...]:
    stories = extract_field_stories(rtf, LOC)
    assert len(stories) == 1
    assert stories[0].location == LOC
    return stories[0].fields


def only_field(rtf: bytes) -> FieldNode:
    fields = fields_of(rtf)
    assert len(fields) == 1, fields
    return fields[0]


def field_rtf(instruction: bytes, result: bytes = b"x", flags: bytes = b"") -> bytes:
    return (
        rb"{\rtf1\ansi\deff0{\fonttbl{\f0\fswiss Arial;}}\pard "
        rb"{\field" + flags + rb"{\*\fldinst " + instruction + rb"}{\fldrslt " + result + rb"}}"
        rb"\par}"
    )


# Lexer


def test_lexer_tokens_with_offsets() -> None:
    data = rb"{\b1 x\'41\~\bin2 {}\u-3913?}"
    assert list(iter_tokens(data)) == [
        Token(TokenKind.GROUP_START, 0, 1),
        Token(TokenKind.WORD, 1, 5, "b", 1),
        Token(TokenKind.TEXT, 5, 6, data=b"x"),
        Token(TokenKind.HEX, 6, 10, data=b"A"),
        Token(TokenKind.SYMBOL, 10, 12, "~"),
        Token(TokenKind.BINARY, 12, 20, "bin", 2, b"{}"),
        Token(TokenKind.WORD, 20, 27, "u", -3913),
        Token(TokenKind.TEXT, 27, 28, data=b"?"),
        Token(TokenKind.GROUP_END, 28, 29),
    ]


def test_control_word_delimiters() -> None:
    tokens = list(iter_tokens(rb"\b  x\i0y\fs-24z\ul-w\par"))
    assert [(t.kind, t.name, t.param, t.data) for t in tokens] == [
        (TokenKind.WORD, "b", None, b""),  # one space is the delimiter, the second is text
        (TokenKind.TEXT, "", None, b" x"),
        (TokenKind.WORD, "i", 0, b""),
        (TokenKind.TEXT, "", None, b"y"),
        (TokenKind.WORD, "fs", -24, b""),
        (TokenKind.TEXT, "", None, b"z"),
        (TokenKind.WORD, "ul", None, b""),  # a hyphen not followed by a digit is text
        (TokenKind.TEXT, "", None, b"-w"),
        (TokenKind.WORD, "par", None, b""),
    ]


def test_overlong_names_and_parameters_are_consumed_whole_and_truncated() -> None:
    name = b"a" * 40
    (token,) = iter_tokens(b"\\" + name + b"0000000000000012345678901234 ")
    assert token.name == "a" * 32
    assert token.param == 1234567890
    assert token.end == 40 + 1 + 28 + 1
    assert parse_param(b"-" + b"9" * 5000) == -9999999999
    assert parse_param(b"000") == 0


def test_line_breaks_are_ignored_and_backslash_newline_is_par() -> None:
    assert text_of(b"{\\rtf1 DD\r\nE\nAUTO\\\r\nx}") == "DDEAUTO\nx"


def test_trailing_backslash_and_empty_input() -> None:
    assert list(iter_tokens(b"")) == []
    assert [t.kind for t in iter_tokens(b"ab\\")] == [TokenKind.TEXT]


# Reader: escapes and characters


def test_control_symbols() -> None:
    assert text_of(rb"{\rtf1 a\\b\{c\}d\~e\-f\_g\:h\|i}") == "a\\b{c}d\u00a0e\u00adf\u2011g:hi"


def test_character_words() -> None:
    data = rb"{\rtf1 \lquote a\rquote \ldblquote b\rdblquote \emdash\endash\tab x\par y\line z}"
    assert text_of(data) == "\u2018a\u2019\u201cb\u201d\u2014\u2013\tx\ny\vz"


def test_hex_escape_default_code_page_is_cp1252() -> None:
    assert text_of(rb"{\rtf1 \'44\'44\'45\'80\'e9}") == "DDE\u20ac\u00e9"


def test_hex_escape_uses_ansicpg() -> None:
    assert text_of(rb"{\rtf1\ansi\ansicpg1251 \'e0\'c1}") == "\u0430\u0411"


def test_hex_escape_uses_mac_code_page() -> None:
    assert text_of(rb"{\rtf1\mac \'8e}") == "\u00e9"


def test_hex_escape_double_byte_code_page() -> None:
    # cp932 (Shift-JIS): the two bytes 0x82 0xa0 are one character.
    assert text_of(rb"{\rtf1\ansi\ansicpg932 \'82\'a0}") == "\u3042"


def test_font_charset_selects_code_page() -> None:
    data = (
        rb"{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0\fswiss Arial;}{\f1\fcharset204 X;}"
        rb"{\f2\fcharset0\cpg1253 Y;}}\'e0 {\f1 \'e0}{\f2 \'e1}\'e0}"
    )
    assert text_of(data) == "\u00e0 \u0430\u03b1\u00e0"


def test_unicode_escapes() -> None:
    assert text_of(rb"{\rtf1 \u68?\u-3913?\u65604?}") == "D\uf0b7D"


def test_unicode_surrogate_pair_is_joined() -> None:
    assert text_of(rb"{\rtf1\uc1 \u-10179?\u-8704?}") == "\U0001f600"


def test_uc0_skips_nothing() -> None:
    assert text_of(rb"{\rtf1\uc0 \u68 DEAUTO}") == "DDEAUTO"


def test_uc1_default_skips_one_character() -> None:
    assert text_of(rb"{\rtf1 \u68 XDEAUTO}") == "DDEAUTO"


def test_uc2_skips_hex_and_control_words_as_one_character_each() -> None:
    assert text_of(rb"{\rtf1\uc2 \u68\'3f\'3fD\u69\b ?AUTO}") == "DDEAUTO"


def test_uc_fallback_never_crosses_a_group_end_or_start() -> None:
    assert text_of(rb"{\rtf1\uc3 {\u68 ?}EAUTO}") == "DEAUTO"
    assert text_of(rb"{\rtf1\uc3 \u68{DE}AUTO}") == "DDEAUTO"


def test_uc_is_scoped_to_its_group() -> None:
    assert text_of(rb"{\rtf1 {\uc0 \u68}\u68?EAUTO}") == "DDEAUTO"


def test_bin_payload_is_skipped_and_reported() -> None:
    events = list(RtfReader(rb"{\rtf1 a\bin4 }{\\b}").events())
    assert [e.kind for e in events] == [
        EventKind.GROUP_START,
        EventKind.CONTROL,
        EventKind.TEXT,
        EventKind.BINARY,
        EventKind.TEXT,
        EventKind.GROUP_END,
    ]
    assert events[3].data == b"}{\\\\"
    assert events[4].text == "b"


def test_bin_counts_as_one_fallback_character() -> None:
    assert text_of(rb"{\rtf1\uc1 \u68\bin2 ??DEAUTO}") == "DDEAUTO"


def test_bin_longer_than_input_is_bounded() -> None:
    events = list(RtfReader(rb"{\rtf1 \bin999999 abc").events())
    assert events[-2] == Event(EventKind.BINARY, 7, 1, name="bin", param=999999, data=b"abc")
    assert events[-1].kind is EventKind.GROUP_END


def test_ignorable_destination_marker() -> None:
    controls = [
        (e.name, e.leading, e.ignorable)
        for e in RtfReader(rb"{\rtf1{\*\foo\b x}{\b\bar}}").events()
        if e.kind is EventKind.CONTROL
    ]
    assert controls == [
        ("rtf", True, False),
        ("foo", True, True),
        ("b", False, False),
        ("b", True, False),
        ("bar", False, False),
    ]


def test_missing_group_ends_are_closed_at_end_of_input() -> None:
    events = list(RtfReader(rb"{\rtf1{\b{x").events())
    assert [(e.kind, e.depth) for e in events if e.kind is EventKind.GROUP_END] == [
        (EventKind.GROUP_END, 3),
        (EventKind.GROUP_END, 2),
        (EventKind.GROUP_END, 1),
    ]


def test_extra_group_ends_are_ignored() -> None:
    events = list(RtfReader(rb"}}{\rtf1 a}}}b").events())
    assert [(e.kind, e.depth) for e in events] == [
        (EventKind.GROUP_START, 1),
        (EventKind.CONTROL, 1),
        (EventKind.TEXT, 1),
        (EventKind.GROUP_END, 1),
        (EventKind.TEXT, 0),
    ]


def test_huge_nesting_depth_does_not_recurse() -> None:
    depth = 50_000
    data = b"{" * depth + rb"\uc0 \u68 x" + b"}" * depth + b"y"
    events = list(RtfReader(data).events())
    assert max(e.depth for e in events) == depth
    assert depth > MAX_TRACKED_DEPTH
    assert "".join(e.text for e in events if e.kind is EventKind.TEXT) == "Dxy"
    assert sum(e.kind is EventKind.GROUP_END for e in events) == depth


def test_skip_group_jumps_to_the_matching_brace() -> None:
    data = rb"{\rtf1{\*\pict {a}\{\bin3 }}} b}after}"
    reader = RtfReader(data)
    seen: list[tuple[EventKind, str]] = []
    for event in reader.events():
        seen.append((event.kind, event.text or event.name))
        if event.name == "pict":
            reader.skip_group()
    assert seen == [
        (EventKind.GROUP_START, ""),
        (EventKind.CONTROL, "rtf"),
        (EventKind.GROUP_START, ""),
        (EventKind.CONTROL, "pict"),
        (EventKind.GROUP_END, ""),
        (EventKind.TEXT, "after"),
        (EventKind.GROUP_END, ""),
    ]


def test_skipped_font_table_is_still_read_for_code_pages() -> None:
    reader = RtfReader(rb"{\rtf1{\fonttbl{\f1\fcharset204 X;}}\f1 \'e0}")
    texts = []
    for event in reader.events():
        if event.name == "fonttbl":
            reader.skip_group()
        if event.kind is EventKind.TEXT:
            texts.append(event.text)
    assert texts == ["\u0430"]


def test_find_group_end() -> None:
    data = rb"{a\}{b}\bin2 }}c}d"
    assert find_group_end(data, 1) == (data.index(b"c") + 2, True)
    assert find_group_end(b"{abc{", 1) == (5, False)


# Field extraction


def test_plain_ddeauto_field() -> None:
    data = field_rtf(b"DDEAUTO " + CMD + b' "/k calc.exe"')
    field = only_field(data)
    assert field.instruction == (f'DDEAUTO {CMD_FIELD_CODE} "/k calc.exe"',)
    assert field.result == "x"
    assert field.dirty is False
    assert field.detail == f"field 1 at byte {at(data)}"
    assert at(data) == 53


def test_fldinst_without_star() -> None:
    data = rb"{\rtf1{\field{\fldinst DDE a b}{\fldrslt r}}}"
    assert only_field(data).instruction == ("DDE a b",)


def test_keyword_split_across_groups_and_formatting_words() -> None:
    data = field_rtf(
        rb"{\rtlch\fcs1 \af0 DD}{\b E}\i0\cf1\lang1033 AUTO\insrsid123  " + CMD + b" x"
    )
    assert only_field(data).instruction == (f"DDEAUTO {CMD_FIELD_CODE} x",)


def test_keyword_spelled_with_hex_and_unicode_escapes() -> None:
    # "\u79 " takes its space as delimiter: the second space is the text's.
    data = field_rtf(rb"\'44\'44\'45\u65?\u85 U\uc0\u84\u79  " + CMD + b" x")
    assert only_field(data).instruction == (f"DDEAUTO {CMD_FIELD_CODE} x",)


def test_keyword_spelled_with_unicode_escapes_and_fallbacks() -> None:
    data = field_rtf(rb"\u68?\u68?\u69?AUTO " + CMD + b" x")
    assert only_field(data).instruction == (f"DDEAUTO {CMD_FIELD_CODE} x",)


def test_ignorable_and_skipped_destinations_do_not_join_the_instruction() -> None:
    data = field_rtf(rb"DDE{\*\bkmkstart b}{\*\unknown junk}{\*\bkmkend b}AUTO a b")
    assert only_field(data).instruction == ("DDEAUTO a b",)


def test_unicode_alternative_upr_reads_the_ud_part_only() -> None:
    data = field_rtf(rb"{\upr{DDE ansi}{\*\ud{DDEAUTO}}} a b")
    assert only_field(data).instruction == ("DDEAUTO a b",)


def test_nested_quote_fields_in_a_ddeauto_instruction() -> None:
    data = field_rtf(
        rb"DDEAUTO {\field{\*\fldinst {QUOTE 99 58 92 92}}{\fldrslt c:\\\\}}windows"
        rb"{\field{\*\fldinst QUOTE {\b 92 92}}}system32\\\\cmd.exe x"
    )
    field = only_field(data)
    assert field.instruction == (
        "DDEAUTO ",
        FieldNode(
            ("QUOTE 99 58 92 92",),
            result="c:\\\\",
            detail=f"field 2 at byte {at(data, occurrence=2)}",
        ),
        "windows",
        FieldNode(("QUOTE 92 92",), detail=f"field 3 at byte {at(data, occurrence=3)}"),
        "system32\\\\cmd.exe x",
    )


def test_fields_in_headers_footers_notes_comments_and_text_boxes() -> None:
    data = (
        rb"{\rtf1{\header\pard {\field{\*\fldinst DDE h t}}}"
        rb"{\footerf\pard {\field{\*\fldinst DDE o t}}}"
        rb"body{\footnote\pard {\field{\*\fldinst DDE f t}}}"
        rb"{\*\atnid x}{\*\atnauthor y}\chatn {\*\annotation {\field{\*\fldinst DDE a t}}}"
        rb"{\*\shpinst{\sp{\sn x}{\sv y}}{\shptxt {\field{\*\fldinst DDE s t}}}}}"
    )
    fields = fields_of(data)
    assert [(f.instruction, f.detail) for f in fields] == [
        (("DDE h t",), f"field 1 in header at byte {at(data)}"),
        (("DDE o t",), f"field 2 in footer at byte {at(data, occurrence=2)}"),
        (("DDE f t",), f"field 3 in footnote at byte {at(data, occurrence=3)}"),
        (("DDE a t",), f"field 4 in comment at byte {at(data, occurrence=4)}"),
        (("DDE s t",), f"field 5 in text box at byte {at(data, occurrence=5)}"),
    ]


def test_field_inside_another_fields_result_is_listed_on_its_own() -> None:
    data = rb"{\rtf1{\field{\*\fldinst PAGE}{\fldrslt a{\field{\*\fldinst DDE x y}{\fldrslt r}}b}}}"
    fields = fields_of(data)
    assert [(f.instruction, f.result) for f in fields] == [
        (("PAGE",), "ab"),
        (("DDE x y",), "r"),
    ]


def test_flddirty() -> None:
    field = only_field(field_rtf(b"DDE a b", flags=rb"\flddirty"))
    assert field.dirty is True


def test_field_in_unknown_ignorable_destination_is_still_found() -> None:
    data = rb"{\rtf1{\*\madeup text{\field{\*\fldinst DDE a b}}}}"
    assert only_field(data).instruction == ("DDE a b",)


def test_fields_in_skipped_destinations_are_not_read() -> None:
    data = rb"{\rtf1{\info{\title {\field{\*\fldinst DDE a b}}}}{\*\datastore {\field{\*\fldinst DDE c d}}}}"
    assert fields_of(data) == ()


def test_body_text_about_ddeauto_is_not_a_field() -> None:
    data = (
        rb"{\rtf1\ansi Beware of DDEAUTO " + CMD + rb" /k calc.exe in documents.\par "
        rb"{\field{\*\fldinst PAGE}{\fldrslt 1}}}"
    )
    assert fields_of(data) == (
        FieldNode(("PAGE",), result="1", detail=f"field 1 at byte {at(data)}"),
    )


def test_unbalanced_field_group_is_closed() -> None:
    assert only_field(rb"{\rtf1{\field{\*\fldinst DDEAUTO a b").instruction == ("DDEAUTO a b",)


def test_deeply_nested_fields_are_flattened_past_the_nesting_bound() -> None:
    depth = 1_000
    data = rb"{\rtf1" + rb"{\field{\*\fldinst QUOTE " * depth + b"}}" * depth + b"}"
    fields = fields_of(data)
    # Every 49th field starts a new top-level chain of at most MAX_FIELD_NESTING + 1.
    assert len(fields) == -(-depth // (MAX_FIELD_NESTING + 1))
    chain, node = 0, fields[0]
    while True:
        chain += 1
        nested = [p for p in node.instruction if isinstance(p, FieldNode)]
        if not nested:
            break
        node = nested[0]
    assert chain == MAX_FIELD_NESTING + 1


def test_fields_nested_past_every_bound_report_a_limit() -> None:
    depth = 2_100  # two frames per field: past MAX_FRAMES (4096)
    data = (
        rb"{\rtf1{\field{\*\fldinst DDEAUTO "
        + CMD
        + rb" calc}}"
        + rb"{\field{\*\fldinst QUOTE " * depth
        + b"}}" * depth
        + b"}"
    )
    with pytest.raises(LimitExceeded):
        extract_field_stories(data, LOC)
    report = scan_bytes(data, "deep.rtf")
    assert [p.kind for p in report.problems] == [ProblemKind.LIMIT]
    # What was read before the limit is still reported.
    assert [f.process.command_line for f in report.findings] == [
        "c:\\windows\\system32\\cmd.exe calc"
    ]
    assert report.verdict is Verdict.MALICIOUS


# Format handler and end-to-end


def test_time_limit_is_checked_while_reading() -> None:
    data = rb"{\rtf1" + rb"{\field{\*\fldinst PAGE}{\fldrslt 1}}" * 20_000 + b"}"
    config = ScanConfig(limits=ScanLimits(timeout_seconds=1e-9))
    report = scan_bytes(data, "slow.rtf", config)
    assert [p.kind for p in report.problems] == [ProblemKind.TIMEOUT]
    assert report.verdict is Verdict.ERROR


def test_identify() -> None:
    fmt = RtfFormat()
    assert fmt.format is FileFormat.RTF
    assert fmt.identify(b"{\\rtf1\\ansi}", "a.doc") is Confidence.YES
    assert fmt.identify(b"{\\rt", "x") is Confidence.YES
    assert fmt.identify(b"\xef\xbb\xbf \r\n\t{\\rtx", "x") is Confidence.YES
    assert fmt.identify(b"{\\r", "a.rtf") is Confidence.NO
    assert fmt.identify(b"PK\x03\x04", "a.rtf") is Confidence.NO
    assert fmt.identify(b"x{\\rtf1", "a.rtf") is Confidence.NO


def _single_finding_command(data: bytes, name: str = "doc.rtf") -> tuple[str, str, str]:
    report = scan_bytes(data, name)
    assert report.format is FileFormat.RTF
    assert report.problems == ()
    (finding,) = report.findings
    assert finding.technique is Technique.DDE_FIELD
    assert finding.process.parent == "WINWORD.EXE"
    return finding.process.image, finding.process.command_line, finding.location.display()


def test_end_to_end_plain_ddeauto() -> None:
    data = field_rtf(b"DDEAUTO " + CMD + b' "/k calc.exe"')
    assert _single_finding_command(data) == (
        "cmd.exe",
        CMD_LINE,
        f"doc.rtf (field 1 at byte {at(data)})",
    )
    assert scan_bytes(data, "doc.rtf").verdict is Verdict.MALICIOUS


def test_end_to_end_rt_header_with_escapes_and_nested_quotes() -> None:
    data = (
        rb"{\rt{\field{\*\fldinst {\rtlch \'44D}{\b\u69?}AUTO "
        rb"{\field{\*\fldinst QUOTE 99 58 92 92}}windows\\\\system32\\\\cmd.exe "
        b'"/k calc.exe"'
        rb"}}}"
    )
    assert _single_finding_command(data, "x.txt") == (
        "cmd.exe",
        CMD_LINE,
        "x.txt (field 1 at byte 5)",
    )


def test_end_to_end_header_field() -> None:
    data = rb"{\rtf1{\headerr {\field{\*\fldinst DDEAUTO " + CMD + rb" /c\\ calc}}}body}"
    image, _, where = _single_finding_command(data)
    assert image == "cmd.exe"
    assert where == f"doc.rtf (field 1 in header at byte {at(data)})"


def test_end_to_end_hyperlink_is_not_dde() -> None:
    data = field_rtf(b'HYPERLINK "http://example.invalid/"', b"link")
    assert only_field(data).instruction == ('HYPERLINK "http://example.invalid/"',)
    report = scan_bytes(data, "doc.rtf")
    assert report.findings == ()
    assert report.verdict is Verdict.CLEAN


def test_end_to_end_clean_text_only() -> None:
    report = scan_bytes(rb"{\rtf1 DDEAUTO " + CMD + rb" calc\par}", "doc.rtf")
    assert report.format is FileFormat.RTF
    assert report.findings == ()
    assert report.problems == ()
    assert report.verdict is Verdict.CLEAN


# Properties


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_raise_untyped_errors(tail: bytes) -> None:
    data = b"{\\rtf1" + tail
    with contextlib.suppress(ScanError):
        extract_field_stories(data, LOC)
    report = scan_bytes(data + b"\\fldinst", "fuzz.rtf")
    assert report.format is FileFormat.RTF
    assert all(p.kind.value != "internal" for p in report.problems), report.problems


_PIECES = st.sampled_from(
    [
        b"{",
        b"}",
        b"\\field",
        b"{\\*\\fldinst ",
        b"{\\fldrslt ",
        b"\\flddirty",
        b"{\\*\\pict ",
        b"{\\header ",
        b"{\\upr",
        b"{\\*\\ud",
        b"\\u68",
        b"\\uc2",
        b"\\uc0",
        b"\\'44",
        b"\\bin3 ",
        b"\\\\",
        b"\\{",
        b"DDE",
        b"AUTO ",
        b" ",
        b"?",
        b"\r\n",
        b"\\b0",
    ]
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_PIECES, max_size=60))
def test_rtf_shaped_input_never_raises(pieces: list[bytes]) -> None:
    data = b"{\\rtf1" + b"".join(pieces)
    stories = extract_field_stories(data, LOC)
    assert len(stories) == 1
    report = scan_bytes(data, "fuzz.rtf")
    assert all(p.kind.value != "internal" for p in report.problems), report.problems


_MORE_PIECES = st.sampled_from(
    [
        b"\\f1 ",
        b"\\ansicpg1251",
        b"\\'e0",
        b"\\*",
        b"{\\*\\foo ",
        b"{\\rtlch\\fcs1 ",
        b"\\par ",
        b"\\~",
        b"\n",
        b"{\r\n\\*\r\n\\fldinst ",
        b"{\\fonttbl{\\f1\\fcharset204 x;}}",
        b"\\u-3913",
        b"\\bin",
        b"\\fieldx",
        b"{x\\fldinst ",
        b"{\r\n\\*\r\n\\foo ",
        b"{\\~\\field",
        b"\\\\field",
        b"\\",
    ]
)
_FOCUS_FOR_TEST = Focus(
    words=frozenset({"field", "fldinst", "flddirty"}),
    destinations=frozenset({"fldinst", "pict", "header", "fonttbl"}),
)


def _focused_walk(data: bytes, sparse: bool) -> list[Event]:
    """A consumer like the field extractor: text only inside \\fldinst groups."""
    reader = RtfReader(data)
    reader.allow_sparse = sparse
    reader.focus = _FOCUS_FOR_TEST
    reader.want_text = False
    open_at: list[int] = []
    seen: list[Event] = []
    for event in reader.events():
        seen.append(event)
        if event.kind is EventKind.CONTROL and event.leading:
            if event.name in ("pict", "fonttbl"):
                reader.skip_group()
            elif event.name == "fldinst":
                open_at.append(event.depth)
        elif event.kind is EventKind.GROUP_END and open_at and open_at[-1] == event.depth:
            open_at.pop()
        reader.want_text = bool(open_at)
    return seen


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(_PIECES, _MORE_PIECES), max_size=80))
@example([b"{", b"x", b"\\field"])
@example([b"{", b"\\~", b"\\fldinst "])
@example([b"{", b"\r\n", b"\\*", b"\\field"])
@example([b"{", b"\\uc2", b"\\u68", b"\\b0", b"\\'44", b"\\field"])
@example([b"{\\*\\fldinst ", b"\\u68", b"}", b"{", b"\\field"])
@example([b"{", b"\\u68", b"?", b"\\field"])
@example([b"{\\header ", b"x", b"}"])
@example([b"{\r\n\\*\r\n\\foo ", b"x", b"}"])
@example([b"{", b"\\b0", b"\\ansicpg1251", b"}", b"{\\*\\fldinst ", b"\\'e0"])
@example(
    [b"{", b"\\b0", b"{\\fonttbl{\\f1\\fcharset204 x;}}", b"\\f1 ", b"{\\*\\fldinst ", b"\\'e0"]
)
def test_structure_only_walk_reports_exactly_what_the_full_walk_does(
    pieces: list[bytes],
) -> None:
    data = b"{\\rtf1" + b"".join(pieces)
    assert _focused_walk(data, sparse=True) == _focused_walk(data, sparse=False)
    assert _extract(data, None, sparse=True) == _extract(data, None, sparse=False)


# oletools' public test file: a 2 MB clean RTF (the RTF 1.7 specification) full of fields.

SPEC = OLETOOLS / "msodde" / "RTF-Spec-1.7.rtf"


@pytest.mark.skipif(not SPEC.is_file(), reason="shared/peers/oletools is not present")
def test_rtf_spec_document_is_clean_and_quick() -> None:
    data = SPEC.read_bytes()
    started = time.monotonic()
    fields = fields_of(data)
    assert time.monotonic() - started < 5.0
    keywords = [
        "".join(p for p in f.instruction if isinstance(p, str)).split()[0].upper() for f in fields
    ]
    assert keywords.count("HYPERLINK") == 1413
    assert len(fields) == 1502
    assert _extract(data, None, sparse=False).fields == fields
    report = scan_bytes(data, "RTF-Spec-1.7.rtf")
    assert report.findings == ()
    assert report.problems == ()
    assert report.verdict is Verdict.CLEAN
