"""Outlook .msg files ([MS-OXMSG]) and compressed RTF ([MS-OXRTFCP])."""

from __future__ import annotations

import contextlib
import struct
import zlib

import equationwriter
import pytest
from cfbwriter import write_cfb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_archive import (
    CSV_DDE,
    EXCEL_CMD,
    WORD_CMD,
    commands,
    encrypted_zip,
    header_docx,
    problems,
)
from test_mime import RTF_DDE, WORD_HTML, mail

from scanner.api import scan_bytes
from scanner.errors import LimitExceeded, MalformedInput
from scanner.formats.msg import MsgFormat
from scanner.formats.rtfcompressed import decompress_rtf
from scanner.model import Confidence, FileFormat, ProblemKind, Technique, Verdict

OUTLOOK_CMD = ("OUTLOOK.EXE", WORD_CMD[1])
# [MS-OXRTFCP] 3.1.3.1 example: "{\rtf1\ansi\ansicpg1252\pard hello world}" CR LF, compressed.
SPEC_EXAMPLE = bytes.fromhex(
    "2d0000002b0000004c5a4675f1c5c7a703000a007263706731323542320af32068656c09002062770"
    "5b06c647d0a800fa0"
)
INITIAL_LENGTH = 207


def compress_rtf(text: bytes) -> bytes:
    """[MS-OXRTFCP] stream with literals only and the end reference (offset = write position)."""
    tokens: list[bytes] = [bytes([byte]) for byte in text]
    end = (INITIAL_LENGTH + len(text)) % 4096
    tokens.append(struct.pack(">H", end << 4))
    body = bytearray()
    for start in range(0, len(tokens), 8):
        group = tokens[start : start + 8]
        control = sum(1 << bit for bit, token in enumerate(group) if len(token) == 2)
        body.append(control)
        for token in group:
            body += token
    crc = ~zlib.crc32(bytes(body), 0xFFFFFFFF) & 0xFFFFFFFF
    return struct.pack("<IIII", len(body) + 12, len(text), 0x75465A4C, crc) + bytes(body)


def unicode(text: str) -> bytes:
    return text.encode("utf-16-le")


def message_streams(
    prefix: str = "",
    subject: str = "Invoice",
    rtf: bytes | None = None,
    body: str | None = None,
    html: bytes | None = None,
    attachments: tuple[tuple[str, bytes], ...] = (),
    messages: tuple[dict[str, bytes], ...] = (),
    top: bool = True,
) -> dict[str, bytes]:
    """Streams of one message (paths relative to the file), attached messages included."""
    streams = {
        prefix + "__properties_version1.0": b"\x00" * (32 if top else 24),
        prefix + "__substg1.0_0037001F": unicode(subject),
    }
    if rtf is not None:
        streams[prefix + "__substg1.0_10090102"] = rtf
    if body is not None:
        streams[prefix + "__substg1.0_1000001F"] = unicode(body)
    if html is not None:
        streams[prefix + "__substg1.0_10130102"] = html
    number = 0
    for name, data in attachments:
        storage = f"{prefix}__attach_version1.0_#{number:08X}/"
        streams[storage + "__properties_version1.0"] = b"\x00" * 8
        streams[storage + "__substg1.0_3707001F"] = unicode(name)
        streams[storage + "__substg1.0_37010102"] = data
        number += 1
    for inner in messages:
        storage = f"{prefix}__attach_version1.0_#{number:08X}/"
        streams[storage + "__properties_version1.0"] = b"\x00" * 8
        for path, data in inner.items():
            streams[storage + "__substg1.0_3701000D/" + path] = data
        number += 1
    return streams


def msg(**kwargs: object) -> bytes:
    return write_cfb(message_streams(**kwargs))  # type: ignore[arg-type]


def test_identify_only_compound_files_with_root_mapi_streams() -> None:
    handler = MsgFormat()
    assert handler.identify(msg(), "x") is Confidence.YES
    assert handler.identify(write_cfb({"WordDocument": b"\x00" * 600}), "x") is Confidence.NO
    nested = write_cfb({"ObjectPool/_1/__substg1.0_0037001F": unicode("x"), "Other": b"1"})
    assert handler.identify(nested, "x") is Confidence.NO
    assert handler.identify(b"not a compound file", "x") is Confidence.NO
    assert scan_bytes(msg(), "mail.msg").format is FileFormat.MSG


def test_rtf_body_field_runs_under_outlook() -> None:
    report = scan_bytes(msg(rtf=compress_rtf(RTF_DDE)), "mail.msg")
    assert report.verdict is Verdict.MALICIOUS
    assert commands(report) == [(("mail.msg", "RTF body"), *OUTLOOK_CMD)]
    assert report.problems == ()


def test_html_body_field_runs_under_outlook() -> None:
    report = scan_bytes(msg(html=WORD_HTML.encode()), "mail.msg")
    assert commands(report) == [(("mail.msg", "HTML body"), *OUTLOOK_CMD)]


def test_attachment_by_value_named_by_long_filename() -> None:
    report = scan_bytes(msg(attachments=(("invoice.docx", header_docx()),)), "mail.msg")
    assert commands(report) == [(("mail.msg", "invoice.docx", "word/header2.xml"), *WORD_CMD)]


def test_attached_messages_recursively() -> None:
    inner = message_streams(
        subject="Fwd: orders",
        rtf=compress_rtf(RTF_DDE),
        attachments=(("orders.csv", CSV_DDE),),
        top=False,
    )
    anonymous = message_streams(subject="", attachments=(("o.csv", CSV_DDE),), top=False)
    anonymous = {k: v for k, v in anonymous.items() if "0037001F" not in k}
    report = scan_bytes(msg(messages=(inner, anonymous)), "mail.msg")
    assert commands(report) == [
        (("mail.msg", "Fwd: orders", "RTF body"), *OUTLOOK_CMD),
        (("mail.msg", "Fwd: orders", "orders.csv"), *EXCEL_CMD),
        (("mail.msg", "attachment 2", "o.csv"), *EXCEL_CMD),
    ]


def test_password_in_plain_body_opens_the_attached_zip() -> None:
    locked = encrypted_zip("orders.csv", CSV_DDE, b"infected")
    data = msg(body="Password: infected", attachments=(("orders.zip", locked),))
    report = scan_bytes(data, "mail.msg")
    assert commands(report) == [(("mail.msg", "orders.zip", "orders.csv"), *EXCEL_CMD)]
    locked_report = scan_bytes(msg(attachments=(("orders.zip", locked),)), "mail.msg")
    assert problems(locked_report) == [
        (ProblemKind.LOCKED, ("mail.msg", "orders.zip", "orders.csv"))
    ]


def test_attached_messages_nested_past_max_depth() -> None:
    inner = message_streams(attachments=(("a.csv", CSV_DDE),), subject="m", top=False)
    for _ in range(20):
        inner = message_streams(subject="m", messages=(inner,), top=False)
    report = scan_bytes(msg(messages=(inner,)), "deep.msg")
    assert problems(report) == [(ProblemKind.LIMIT, ("deep.msg", *("m",) * 9))]
    assert report.findings == ()


def test_damaged_rtf_body_costs_only_the_body() -> None:
    bad = struct.pack("<IIII", 20, 10, 0x12345678, 0) + b"abcd"
    report = scan_bytes(msg(rtf=bad, attachments=(("a.csv", CSV_DDE),)), "mail.msg")
    assert commands(report) == [(("mail.msg", "a.csv"), *EXCEL_CMD)]
    assert problems(report) == [(ProblemKind.MALFORMED, ("mail.msg", "RTF body"))]


def test_ole_object_attachment_document_is_repacked_and_scanned() -> None:
    streams = msg_streams_with_ole()
    storage = "__attach_version1.0_#00000000/__substg1.0_3701000D/"
    del streams[storage + "WordDocument"]
    streams[storage + "Package"] = header_docx()
    report = scan_bytes(write_cfb(streams), "mail.msg")
    assert commands(report) == [
        (("mail.msg", "Document", "Package", "word/header2.xml"), *WORD_CMD)
    ]
    assert report.problems == ()


def test_ole_object_attachment_with_a_broken_word_document_is_malformed() -> None:
    report = scan_bytes(write_cfb(msg_streams_with_ole()), "mail.msg")
    assert problems(report) == [(ProblemKind.MALFORMED, ("mail.msg", "Document"))]
    assert report.findings == ()


def test_equation_editor_object_attached_to_a_message() -> None:
    streams = msg_streams_with_ole()
    storage = "__attach_version1.0_#00000000/__substg1.0_3701000D/"
    del streams[storage + "WordDocument"]
    streams[storage + "\x01CompObj"] = equationwriter.compobj(
        equationwriter.CLSID_EQUATION3, "Microsoft Equation 3.0", "Equation.3"
    )
    streams[storage + "Equation Native"] = equationwriter.equation_native(
        equationwriter.benign_mtef()
    )
    report = scan_bytes(write_cfb(streams), "mail.msg")
    assert [(f.technique, f.process.parent) for f in report.findings] == [
        (Technique.EQUATION_EDITOR, "EQNEDT32.EXE")
    ]
    assert "__substg1.0_3701000D" in report.findings[0].location.display()


def msg_streams_with_ole() -> dict[str, bytes]:
    streams = message_streams()
    storage = "__attach_version1.0_#00000000/"
    streams[storage + "__properties_version1.0"] = b"\x00" * 8
    streams[storage + "__substg1.0_3001001F"] = unicode("Document")
    streams[storage + "__substg1.0_3701000D/WordDocument"] = b"\x00" * 64
    return streams


def test_truncated_msg_is_malformed() -> None:
    data = msg(attachments=(("invoice.docx", header_docx()),))
    report = scan_bytes(data[:2048], "cut.msg")
    assert report.verdict is Verdict.ERROR
    assert {p.kind for p in report.problems} <= {ProblemKind.MALFORMED}


def test_msg_attached_to_an_eml() -> None:
    data = mail(attachments=(("fwd.msg", msg(rtf=compress_rtf(RTF_DDE))),))
    report = scan_bytes(data, "mail.eml")
    assert commands(report) == [(("mail.eml", "fwd.msg", "RTF body"), *OUTLOOK_CMD)]


def test_decompress_spec_example_and_own_encoder() -> None:
    assert (
        decompress_rtf(SPEC_EXAMPLE, 1000) == b"{\\rtf1\\ansi\\ansicpg1252\\pard hello world}\r\n"
    )
    text = RTF_DDE * 30
    assert decompress_rtf(compress_rtf(text), 1 << 20) == text
    uncompressed = struct.pack("<IIII", len(text) + 12, len(text), 0x414C454D, 0) + text
    assert decompress_rtf(uncompressed, 1 << 20) == text


def test_decompress_limits_and_damage() -> None:
    with pytest.raises(LimitExceeded):
        decompress_rtf(compress_rtf(b"x" * 5000), 1000)
    with pytest.raises(MalformedInput):
        decompress_rtf(b"short", 1000)
    with pytest.raises(MalformedInput):
        decompress_rtf(SPEC_EXAMPLE[:-1], 1000)
    # Every reference copies up to 17 bytes from the dictionary: output is bounded by input.
    repeats = struct.pack("<IIII", 0, 0, 0x75465A4C, 0)
    repeats += (b"\xff" + b"\x00\x0f" * 8) * 1000
    repeats = struct.pack("<I", len(repeats) - 4) + repeats[4:]
    # They stop at the first one whose offset (0) meets the write position: after n copies of
    # 17 bytes with 207 + 17 n = 0 (mod 4096), n = 3361.
    assert len(decompress_rtf(repeats, 1 << 20)) == 17 * 3361


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_decompress_raises_only_typed_errors(tail: bytes) -> None:
    header = struct.pack("<IIII", len(tail) + 12, 100, 0x75465A4C, 0)
    with contextlib.suppress(MalformedInput, LimitExceeded):
        decompress_rtf(header + tail, 4096)


_SEED_MSG = msg(
    rtf=compress_rtf(RTF_DDE),
    body="pw: x",
    attachments=(("a.csv", CSV_DDE),),
    messages=(message_streams(attachments=(("b.csv", CSV_DDE),), top=False),),
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_damaged_msg_gives_only_typed_problems(data: st.DataObject) -> None:
    blob = bytearray(_SEED_MSG)
    for _ in range(data.draw(st.integers(1, 16))):
        position = data.draw(st.integers(0, len(blob) - 1))
        blob[position] = data.draw(st.integers(0, 255))
    report = scan_bytes(bytes(blob), "fuzz.msg")
    assert ProblemKind.INTERNAL not in {p.kind for p in report.problems}, report.problems
