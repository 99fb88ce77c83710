"""RTF \\object / \\objdata extraction: Word's hex decoding and its tolerances."""

from __future__ import annotations

import equationwriter as ew
import pytest
from conftest import OLETOOLS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanner.api import scan_bytes
from scanner.formats.rtfobjects import MAX_OBJECTS, RtfObject, extract_objects
from scanner.model import ProblemKind, Severity, Technique, Verdict

PAYLOAD = bytes(range(256))
PAYLOAD_HEX = PAYLOAD.hex()


def doc(objdata: str | bytes, head: bytes = rb"{\rtf1\ansi ", extra: bytes = b"") -> bytes:
    body = objdata.encode("latin-1") if isinstance(objdata, str) else objdata
    return (
        head
        + rb"{\object\objemb\objupdate{\*\objclass Equation.3}\objw10\objh10{\*\objdata "
        + body
        + b"}"
        + extra
        + b"}}"
    )


def only(data: bytes) -> RtfObject:
    found = extract_objects(data)
    assert not found.truncated
    assert len(found.objects) == 1
    return found.objects[0]


def test_plain_hex_object_with_class_and_update_flag() -> None:
    data = doc(PAYLOAD_HEX)
    obj = only(data)
    assert obj.data == PAYLOAD
    assert obj.index == 1
    assert obj.offset == data.index(rb"\objdata")
    assert obj.objclass == "Equation.3"
    assert obj.auto_update is True
    assert obj.in_object_group is True
    assert obj.steps == ()


def test_whitespace_and_mixed_case_between_digits() -> None:
    spaced = " ".join(PAYLOAD_HEX[i : i + 3] for i in range(0, len(PAYLOAD_HEX), 3))
    mixed = "".join(c.upper() if i % 2 else c for i, c in enumerate(spaced))
    obj = only(doc(mixed.replace(" ", " \r\n\t")))
    assert obj.data == PAYLOAD
    assert obj.steps == ()


def test_control_words_and_symbols_between_digits_are_ignored() -> None:
    junk = r"01\par 02\fnil 0\~3\pard 04"
    obj = only(doc(junk))
    assert obj.data == bytes([1, 2, 3, 4])
    assert obj.steps == ("4 control word(s) inside the hex data ignored, as Word does",)


def test_ignorable_destination_group_is_skipped_whole() -> None:
    obj = only(doc(r"0102{\*\keycode abc}0304"))
    assert obj.data == bytes([1, 2, 3, 4])
    assert obj.steps == ("1 junk group(s) inside the hex data skipped ({\\*\\keycode})",)


def test_destination_word_inside_nested_group_cuts_the_rest_of_it() -> None:
    # issue_251.rtf's trick: "abc" goes to \staticval, "0a" before it is object data.
    obj = only(doc(r"0102{0a\proptype\staticval abc}0304"))
    assert obj.data == bytes([1, 2, 0x0A, 3, 4])
    assert obj.steps == (
        "1 control word(s) inside the hex data ignored, as Word does",
        "1 nested group(s) cut at a destination control word (their text is not object data)",
    )


def test_plain_nested_group_text_is_object_data() -> None:
    assert only(doc(r"01{02{03}}04")).data == bytes([1, 2, 3, 4])


def test_destination_word_at_objdata_level_ends_the_data() -> None:
    obj = only(doc(r"0102\footnote 0304"))
    assert obj.data == bytes([1, 2])
    assert obj.steps[-1] == "the object data ends at the destination word \\footnote"


def test_bin_run_inserts_raw_bytes() -> None:
    raw = b"{}\\\x00\xff"
    obj = only(doc(b"0102\\bin5 " + raw + b"0304"))
    assert obj.data == b"\x01\x02" + raw + b"\x03\x04"
    assert obj.steps == ("1 \\bin run(s) inside the hex data: 5 raw byte(s) taken as object data",)


def test_bin_without_or_with_negative_length_inserts_nothing() -> None:
    assert only(doc(r"0102\bin 0304")).data == bytes([1, 2, 3, 4])
    assert only(doc(r"0102\bin-5 0304")).data == bytes([1, 2, 3, 4])


def test_odd_digit_before_hex_escape_is_dropped() -> None:
    # "0102" + "5" is odd: Word drops the "5" before \'41; the escape itself is ignored.
    obj = only(doc(r"01025\'410304"))
    assert obj.data == bytes([1, 2, 3, 4])
    assert obj.steps == (
        "\\'hh inside the hex data: Word's reader dropped an odd hex digit before it (1 time(s))",
    )


def test_even_digits_before_hex_escape_are_kept() -> None:
    assert only(doc(r"0102\'410304")).data == bytes([1, 2, 3, 4])


def test_trailing_odd_digit_is_dropped() -> None:
    obj = only(doc("010203047"))
    assert obj.data == bytes([1, 2, 3, 4])
    assert obj.steps == ("odd number of hex digits: the last digit dropped, as Word does",)


def test_non_hex_characters_are_ignored() -> None:
    obj = only(doc("01;02-zz03,04"))
    assert obj.data == bytes([1, 2, 3, 4])
    assert obj.steps == ("characters that are not hex digits ignored inside the hex data",)


def test_objdata_not_first_in_its_group() -> None:
    data = rb"{\rtf1{\object{\*\footerr{x}\. \objdata 0102}}}"
    obj = only(data)
    assert obj.data == bytes([1, 2])
    assert obj.steps[0] == "\\objdata is not the first word of its group"


def test_objdata_outside_object_group_and_missing_objclass() -> None:
    obj = only(rb"{\rtf1 {\*\objdata 0102}}")
    assert obj.in_object_group is False
    assert obj.objclass == ""
    assert obj.auto_update is False


def test_objclass_with_hex_escape() -> None:
    obj = only(rb"{\rtf1{\object{\*\objclass Equ\'61tion.3}{\*\objdata 00}}}")
    assert obj.objclass == "Equation.3"


def test_unclosed_objdata_group_reads_to_end_of_input() -> None:
    obj = only(rb"{\rtf1{\object{\*\objdata 0102")
    assert obj.data == bytes([1, 2])
    assert obj.steps[-1] == "the document ends before the object data's group"


def test_objdata_text_inside_bin_payload_is_not_an_object() -> None:
    data = rb"{\rtf1 {\pict\bin20 {\*\objdata 0102}xxxx}}"
    assert extract_objects(data).objects == ()


def test_escaped_word_is_not_objdata() -> None:
    assert extract_objects(rb"{\rtf1 \\objdata 0102}").objects == ()


def test_several_objects_in_document_order() -> None:
    data = rb"{\rtf1" + doc("0a")[6:] + doc("0b")[6:] + b"}"
    found = extract_objects(data)
    assert [(o.index, o.data) for o in found.objects] == [(1, b"\x0a"), (2, b"\x0b")]


def test_object_limit_is_reported() -> None:
    data = rb"{\rtf1" + rb"{\*\objdata 00}" * (MAX_OBJECTS + 1) + b"}"
    found = extract_objects(data)
    assert found.truncated is True
    assert len(found.objects) == MAX_OBJECTS
    report = scan_bytes(data, "many.rtf")
    assert [p.kind for p in report.problems] == [ProblemKind.LIMIT]


def test_equation_object_found_in_rtf_without_fields() -> None:
    storage = ew.equation_storage(ew.cve_2017_11882_mtef())
    data = doc(ew.hex_lines(ew.ole1_object("Equation.3", storage)))
    assert b"fldinst" not in data
    report = scan_bytes(data, "eq.rtf")
    assert report.verdict is Verdict.MALICIOUS
    (finding,) = report.findings
    assert finding.technique is Technique.EQUATION_EDITOR
    assert finding.severity is Severity.CRITICAL
    assert finding.process.parent == "EQNEDT32.EXE"
    assert finding.process.image == "cmd.exe"
    assert finding.process.command_line == "cmd.exe /c calc.exe"
    assert finding.location.containers == ("eq.rtf",)
    offset = data.index(rb"\objdata")
    assert finding.location.detail == f"object 1 (\\objdata at byte {offset}) > Equation Native"


def test_equation_object_and_dde_field_in_one_document() -> None:
    storage = ew.equation_storage(ew.benign_mtef())
    field = rb'{\field{\*\fldinst DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc.exe"}}'
    data = doc(ew.hex_lines(ew.ole1_object("Equation.3", storage)), extra=field)
    report = scan_bytes(data, "both.rtf")
    techniques = sorted(f.technique.value for f in report.findings)
    assert techniques == ["dde-field", "equation-editor"]


@pytest.mark.skipif(not (OLETOOLS / "rtfobj").is_dir(), reason="oletools test files absent")
def test_oletools_issue_251_truncated_equation_stub() -> None:
    obj = only((OLETOOLS / "rtfobj" / "issue_251.rtf").read_bytes())
    assert obj.objclass == "Equation.3"
    assert obj.auto_update is True
    assert obj.data[4:12] == b"\x02\x00\x00\x00\x0b\x00\x00\x00"
    assert obj.data[12:23] == b"equation.3\x00"
    assert obj.data.endswith(bytes.fromhex("d0cf11e0a1b11ae1"))


@pytest.mark.skipif(not (OLETOOLS / "rtfobj").is_dir(), reason="oletools test files absent")
def test_oletools_issue_185_one_malformed_object() -> None:
    obj = only((OLETOOLS / "rtfobj" / "issue_185.rtf").read_bytes())
    assert obj.objclass == "w"
    assert obj.data[:1] == b"\x32"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    extract_objects(rb"{\rtf1{\object{\*\objdata " + data)
    extract_objects(data)


_TOKENS = st.sampled_from(
    ["0", "1", "a", "F", " ", "\n", "{", "}", "\\*", "\\bin3 ", "\\bin", "\\'4", "\\'41", "\\par ",
     "\\objdata ", "\\object", "\\staticval ", "{\\*\\keycode ", "\\\\", "\\{", "z"]
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(st.lists(_TOKENS, max_size=120))
def test_token_soup_never_raises_and_yields_hex_decodable_data(tokens: list[str]) -> None:
    data = doc("".join(tokens))
    found = extract_objects(data)
    assert len(found.objects) >= 1
    report = scan_bytes(data, "soup.rtf")
    assert all(p.kind is not ProblemKind.INTERNAL for p in report.problems)
