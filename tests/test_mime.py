"""Internet mail (RFC 5322 / MIME) and winmail.dat (TNEF): parts, names, passwords, limits."""

from __future__ import annotations

import base64
import binascii
import email.policy
import quopri
import struct
import time
from email.message import EmailMessage

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_archive import (
    CSV_DDE,
    EXCEL_CMD,
    WORD_CMD,
    commands,
    config,
    encrypted_zip,
    header_docx,
    make_zip,
    problems,
)

from scanner.api import scan_bytes
from scanner.formats.mime import EmlFormat, password_candidates, uudecode_blocks
from scanner.model import Confidence, FileFormat, ProblemKind, ScanConfig, Verdict

WORD_HTML = (
    "<html><head><meta http-equiv=Content-Type content='text/html; charset=utf-8'></head>"
    "<body><p><!--[if supportFields]><span style='mso-element:field-begin'></span>DDEAUTO "
    "c:\\\\windows\\\\system32\\\\cmd.exe &quot;/k calc.exe&quot; <span "
    "style='mso-element:field-separator'></span><![endif]-->x<!--[if supportFields]><span "
    "style='mso-element:field-end'></span><![endif]--></p></body></html>"
)
RTF_DDE = (
    b"{\\rtf1\\ansi\\deff0{\\fonttbl{\\f0 Arial;}}\\pard Invoice\\par "
    b'{\\field{\\*\\fldinst DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc.exe"}'
    b"{\\fldrslt x}}\\par }"
)
OUTLOOK_CMD = ("OUTLOOK.EXE", WORD_CMD[1])
HEAD = (
    b"From: Billing <billing@example.invalid>\r\n"
    b"To: victim@example.invalid\r\n"
    b"Subject: Invoice 2017-1142\r\n"
    b"Date: Mon, 16 Oct 2017 09:00:00 +0000\r\n"
    b"MIME-Version: 1.0\r\n"
)


def mail(
    body: str = "Hello,\nplease find the invoice attached.\n",
    attachments: tuple[tuple[str, bytes], ...] = (),
    html: str | None = None,
    subject: str = "Invoice 2017-1142",
) -> bytes:
    message = EmailMessage()
    message["From"] = "Billing <billing@example.invalid>"
    message["To"] = "victim@example.invalid"
    message["Subject"] = subject
    message["Date"] = "Mon, 16 Oct 2017 09:00:00 +0000"
    message.set_content(body)
    if html is not None:
        message.add_alternative(html, subtype="html")
    for name, data in attachments:
        message.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return message.as_bytes(policy=email.policy.SMTP)


def multipart(*parts: bytes, boundary: bytes = b"b1", kind: bytes = b"mixed") -> bytes:
    out = b"Content-Type: multipart/" + kind + b'; boundary="' + boundary + b'"\r\n\r\npreamble\r\n'
    for part in parts:
        out += b"--" + boundary + b"\r\n" + part + b"\r\n"
    return out + b"--" + boundary + b"--\r\nepilogue\r\n"


def part(headers: bytes, body: bytes) -> bytes:
    return headers + b"\r\n" + body


def b64(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def attachment(name_params: bytes, data: bytes, kind: bytes = b"application/octet-stream") -> bytes:
    return part(
        b"Content-Type: " + kind + b"\r\nContent-Transfer-Encoding: base64\r\n"
        b"Content-Disposition: attachment; " + name_params + b"\r\n",
        b64(data),
    )


def test_identify_by_header_lines() -> None:
    handler = EmlFormat()
    assert handler.identify(mail(), "x") is Confidence.YES
    assert handler.identify(b"From sender@example.invalid Mon Oct 16\n" + HEAD + b"\r\nx", "x") is (
        Confidence.YES
    )
    assert handler.identify(b"Subject: hi\r\n\r\nbody", "x") is Confidence.NO
    assert handler.identify(b"Name,Amount\r\nFrom:,To:\r\n", "x") is Confidence.NO
    assert handler.identify(CSV_DDE, "x.eml") is Confidence.NO
    assert scan_bytes(mail(), "mail.eml").format is FileFormat.EML


def test_eml_zip_docx_three_levels_deep() -> None:
    data = mail(attachments=(("invoice.zip", make_zip([("invoice.docx", header_docx())])),))
    report = scan_bytes(data, "mail.eml")
    assert report.verdict is Verdict.MALICIOUS
    assert commands(report) == [
        (("mail.eml", "invoice.zip", "invoice.docx", "word/header2.xml"), *WORD_CMD)
    ]
    assert report.problems == ()


def test_password_in_body_opens_the_attached_zip() -> None:
    locked = encrypted_zip("orders.csv", CSV_DDE, b"infected")
    body = "The archive is protected.\nPassword: infected\nRegards\n"
    report = scan_bytes(mail(body, (("orders.zip", locked),)), "mail.eml")
    assert commands(report) == [(("mail.eml", "orders.zip", "orders.csv"), *EXCEL_CMD)]
    assert report.problems == ()


def test_password_in_html_body_or_subject() -> None:
    locked = encrypted_zip("orders.csv", CSV_DDE, b"Inv-2017")
    html = "<html><body><p>Archive password is <b>Inv-2017</b>.</p></body></html>"
    via_html = scan_bytes(mail(attachments=(("o.zip", locked),), html=html), "m.eml")
    assert commands(via_html) == [(("m.eml", "o.zip", "orders.csv"), *EXCEL_CMD)]
    via_subject = scan_bytes(
        mail(attachments=(("o.zip", locked),), subject="Invoice (pwd: Inv-2017)"), "m.eml"
    )
    assert commands(via_subject) == [(("m.eml", "o.zip", "orders.csv"), *EXCEL_CMD)]


def test_password_passes_into_a_forwarded_message_and_a_nested_zip() -> None:
    inner_zip = make_zip([("deeper.zip", encrypted_zip("orders.csv", CSV_DDE, b"s3cret"))])
    inner = mail("see attachment", (("outer.zip", inner_zip),))
    outer = HEAD + multipart(
        part(b"Content-Type: text/plain\r\n", b'The password is "s3cret".\r\n'),
        part(b"Content-Type: message/rfc822\r\n", inner),
    )
    report = scan_bytes(outer, "fwd.eml")
    assert commands(report) == [
        (
            ("fwd.eml", "part 2 (message/rfc822)", "outer.zip", "deeper.zip", "orders.csv"),
            *EXCEL_CMD,
        )
    ]


def test_zip_locked_without_a_password_in_the_mail() -> None:
    locked = encrypted_zip("orders.csv", CSV_DDE, b"infected")
    report = scan_bytes(mail(attachments=(("orders.zip", locked),)), "mail.eml")
    assert problems(report) == [(ProblemKind.LOCKED, ("mail.eml", "orders.zip", "orders.csv"))]
    # A locked member is suspicious by default (ScanConfig.locked_verdict).
    assert report.verdict is Verdict.SUSPICIOUS


def test_password_candidates() -> None:
    text = (
        "Password: infected\nPW = 1234.\npassword is 'two words'\nKennwort: Geheim!\n"
        "Passwort ist abc123\nno pass here"
    )
    assert password_candidates(text) == (
        "infected",
        "1234",
        "two words",
        "Geheim",
        "abc123",
        "here",
    )
    assert password_candidates("compass: north, bypass=x") == ()


def test_rfc2231_and_rfc2047_names() -> None:
    data = HEAD + multipart(
        part(b"Content-Type: text/plain\r\n", b"hi"),
        attachment(b"filename*=utf-8''%C3%84rger%20Rechnung.csv", CSV_DDE, b"text/csv"),
        attachment(b"filename*0*=utf-8''Fa%C3%A7tura%20; filename*1=2017.csv", CSV_DDE),
        attachment(b'filename="=?utf-8?B?0YHRh9C10YIuY3N2?="', CSV_DDE),
        attachment(b'name="ignored"', CSV_DDE, b'application/octet-stream; name="by-type.csv"'),
    )
    report = scan_bytes(data, "mail.eml")
    assert sorted(f.location.containers for f in report.findings) == [
        ("mail.eml", "Façtura 2017.csv"),
        ("mail.eml", "by-type.csv"),
        ("mail.eml", "Ärger Rechnung.csv"),
        ("mail.eml", "счет.csv"),
    ]


def test_html_body_renders_in_outlook_and_parts_are_numbered() -> None:
    alternative = scan_bytes(mail(html=WORD_HTML), "mail.eml")
    assert commands(alternative) == [(("mail.eml", "part 2 (text/html)"), *OUTLOOK_CMD)]
    mixed = scan_bytes(mail(html=WORD_HTML, attachments=(("a.txt", b"x"),)), "mail.eml")
    assert commands(mixed) == [(("mail.eml", "part 1.2 (text/html)"), *OUTLOOK_CMD)]


def test_rtf_body_is_outlook_but_rtf_attachment_is_word() -> None:
    data = HEAD + multipart(
        part(b"Content-Type: text/rtf\r\n", RTF_DDE),
        attachment(b'filename="invoice.rtf"', RTF_DDE, b"application/rtf"),
    )
    report = scan_bytes(data, "mail.eml")
    assert commands(report) == [
        (("mail.eml", "invoice.rtf"), *WORD_CMD),
        (("mail.eml", "part 1 (text/rtf)"), *OUTLOOK_CMD),
    ]


def test_web_archive_without_mail_headers_is_word() -> None:
    mht = b"MIME-Version: 1.0\r\n" + multipart(
        part(b"Content-Type: text/html; charset=utf-8\r\n", WORD_HTML.encode()),
        kind=b"related",
    )
    report = scan_bytes(mht, "page.doc")
    assert report.format is FileFormat.EML
    assert commands(report) == [(("page.doc", "part 1 (text/html)"), *WORD_CMD)]


def test_plain_text_body_is_not_a_spreadsheet() -> None:
    body = "Try this in Excel: =cmd|'/c calc.exe'!A0\n"
    report = scan_bytes(mail(body), "mail.eml")
    assert report.findings == () and report.problems == ()
    assert report.verdict is Verdict.CLEAN


def test_transfer_encodings() -> None:
    uu = b"begin 644 orders.csv\r\n" + binascii.b2a_uu(CSV_DDE) + b"`\r\nend\r\n"
    noisy = b"!!" + base64.b64encode(CSV_DDE).rstrip(b"=") + b"\r\n"
    data = HEAD + multipart(
        part(b"Content-Type: text/plain\r\n", b"see below\r\n" + uu + b"bye\r\n"),
        part(
            b'Content-Type: text/csv; name="qp.csv"\r\nContent-Transfer-Encoding: quoted-printable\r\n',
            quopri.encodestring(CSV_DDE),
        ),
        part(
            b'Content-Type: text/csv; name="b64.csv"\r\nContent-Transfer-Encoding: base64\r\n',
            noisy,
        ),
        part(
            b'Content-Type: application/octet-stream; name="u.csv"\r\n'
            b"Content-Transfer-Encoding: x-uuencode\r\n",
            uu,
        ),
    )
    report = scan_bytes(data, "mail.eml")
    assert sorted(f.location.containers for f in report.findings) == [
        ("mail.eml", "b64.csv"),
        ("mail.eml", "part 1 (text/plain)", "orders.csv"),
        ("mail.eml", "qp.csv"),
        ("mail.eml", "u.csv"),
    ]
    assert report.problems == ()


def test_uudecode_blocks() -> None:
    text = b"x\nbegin 600 a.bin\n" + binascii.b2a_uu(b"hello") + b"end\nbegin 644 b.bin\n"
    assert uudecode_blocks(text) == [("a.bin", b"hello"), ("b.bin", b"")]


def test_unterminated_multipart_and_junk_header_lines() -> None:
    data = (
        HEAD
        + b"this line is not a header\r\n"
        + b'Content-Type: multipart/mixed; boundary="zz"\r\n\r\n'
        + b"--zz\r\n"
        + attachment(b'filename="a.csv"', CSV_DDE)
    )
    report = scan_bytes(data, "mail.eml")
    assert commands(report) == [(("mail.eml", "a.csv"), *EXCEL_CMD)]


def test_message_loop_stops_at_max_depth() -> None:
    data = mail(attachments=(("a.csv", CSV_DDE),))
    for level in range(40):
        data = HEAD + multipart(
            part(b"Content-Type: message/rfc822\r\n", data), boundary=b"l%d" % level
        )
    started = time.monotonic()
    report = scan_bytes(data, "loop.eml")
    assert time.monotonic() - started < 2.0
    assert problems(report) == [
        (ProblemKind.LIMIT, ("loop.eml", *("part 1 (message/rfc822)",) * 9))
    ]
    assert "nesting depth limit of 8" in report.problems[0].message


def test_multipart_nesting_limit_costs_only_the_deep_branch() -> None:
    deep = attachment(b'filename="deep.csv"', CSV_DDE)
    for level in range(80):
        deep = multipart(deep, boundary=b"n%d" % level)
    data = HEAD + multipart(attachment(b'filename="top.csv"', CSV_DDE), deep, boundary=b"top")
    started = time.monotonic()
    report = scan_bytes(data, "nest.eml")
    assert time.monotonic() - started < 2.0
    assert commands(report) == [(("nest.eml", "top.csv"), *EXCEL_CMD)]
    ((kind, where),) = problems(report)
    assert kind is ProblemKind.LIMIT
    assert where == ("nest.eml", "part " + ".".join(["2"] + ["1"] * 49) + " (multipart/mixed)")


def test_part_count_limit() -> None:
    parts = [attachment(b'filename="first.csv"', CSV_DDE)] + [
        part(b"Content-Type: text/plain\r\n", b"x") for _ in range(100)
    ]
    report = scan_bytes(HEAD + multipart(*parts), "many.eml", config(max_members=50))
    assert commands(report) == [(("many.eml", "first.csv"), *EXCEL_CMD)]
    assert problems(report) == [(ProblemKind.LIMIT, ("many.eml",))]
    assert "more than 50 parts" in report.problems[0].message


def test_ten_thousand_parts_within_limits() -> None:
    parts = [part(b"Content-Type: text/plain\r\n", b"x")] * 9_999 + [
        attachment(b'filename="last.csv"', CSV_DDE)
    ]
    started = time.monotonic()
    report = scan_bytes(HEAD + multipart(*parts), "big.eml")
    assert time.monotonic() - started < 8.0
    assert commands(report) == [(("big.eml", "last.csv"), *EXCEL_CMD)]
    assert report.problems == ()


def test_oversized_header_block_is_reported_and_read_in_part() -> None:
    data = (
        HEAD
        + b"X-Padding: "
        + b"a" * 300_000
        + b"\r\n"
        + b"Content-Type: text/csv\r\n\r\n"
        + CSV_DDE
    )
    report = scan_bytes(data, "pad.eml")
    assert problems(report) == [(ProblemKind.LIMIT, ("pad.eml", "part 1 (text/plain)"))]


def test_bad_base64_in_one_part_costs_that_part() -> None:
    data = HEAD + multipart(
        attachment(b'filename="a.csv"', CSV_DDE),
        part(
            b'Content-Type: text/csv; name="b.csv"\r\nContent-Transfer-Encoding: base64\r\n', b"Q"
        ),
    )
    report = scan_bytes(data, "mail.eml")
    assert commands(report) == [(("mail.eml", "a.csv"), *EXCEL_CMD)]
    assert report.problems == ()


def test_total_bytes_budget_covers_decoded_parts() -> None:
    big = attachment(b'filename="big.bin"', b"\x00" * 200_000)
    data = HEAD + multipart(big, attachment(b'filename="a.csv"', CSV_DDE))
    report = scan_bytes(data, "mail.eml", config(max_total_bytes=100_000))
    assert [kind for kind, _ in problems(report)] == [ProblemKind.LIMIT, ProblemKind.LIMIT]


_SEED_MAIL = HEAD + multipart(
    part(b"Content-Type: text/plain\r\n", b"Password: x\r\n"),
    attachment(b"filename*=utf-8''a%20b.csv", CSV_DDE),
    part(b"Content-Type: message/rfc822\r\n", HEAD + b"\r\nbody"),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_damaged_messages_give_only_typed_problems(data: st.DataObject) -> None:
    blob = bytearray(_SEED_MAIL)
    for _ in range(data.draw(st.integers(1, 12))):
        position = data.draw(st.integers(0, len(blob) - 1))
        blob[position] = data.draw(st.sampled_from(b"\r\n-;=\"'*%:\x00\xff abz"))
    report = scan_bytes(bytes(blob), "fuzz.eml")
    assert ProblemKind.INTERNAL not in {p.kind for p in report.problems}, report.problems


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_after_mail_headers(tail: bytes) -> None:
    report = scan_bytes(HEAD + b'Content-Type: multipart/mixed; boundary="b1"\r\n' + tail, "f.eml")
    assert ProblemKind.INTERNAL not in {p.kind for p in report.problems}, report.problems


def test_configured_passwords_also_apply_inside_mail() -> None:
    locked = encrypted_zip("orders.csv", CSV_DDE, b"fromcli")
    report = scan_bytes(
        mail(attachments=(("o.zip", locked),)), "m.eml", ScanConfig(passwords=("fromcli",))
    )
    assert commands(report) == [(("m.eml", "o.zip", "orders.csv"), *EXCEL_CMD)]


def tnef_attribute(level: int, attribute: int, data: bytes) -> bytes:
    checksum = sum(data) & 0xFFFF
    return struct.pack("<BII", level, attribute, len(data)) + data + struct.pack("<H", checksum)


def mapi_properties(*values: tuple[int, int, bytes]) -> bytes:
    """A [MS-OXTNEF] 2.1.3.4 property list of single values (id, type, bytes)."""
    out = struct.pack("<I", len(values))
    for prop, kind, data in values:
        out += struct.pack("<I", kind | prop << 16)
        if kind in (0x001E, 0x001F, 0x0102, 0x000D):
            out += struct.pack("<II", 1, len(data)) + data + b"\x00" * (-len(data) % 4)
        else:
            out += data
    return out


def tnef(
    rtf: bytes | None = None,
    body: bytes = b"",
    attachments: tuple[tuple[str, bytes], ...] = (),
    messages: tuple[tuple[str, bytes], ...] = (),
) -> bytes:
    out = b"\x78\x9f\x3e\x22" + struct.pack("<H", 0x1234)
    out += tnef_attribute(1, 0x00089006, struct.pack("<I", 0x00010000))
    out += tnef_attribute(1, 0x00018004, b"Invoice\x00")
    if body:
        out += tnef_attribute(1, 0x0002800C, body)
    props = [(0x0E07, 0x0003, struct.pack("<I", 1))]
    if rtf is not None:
        props.append((0x1009, 0x0102, rtf))
    out += tnef_attribute(1, 0x00069003, mapi_properties(*props))
    for name, data in attachments:
        out += tnef_attribute(2, 0x00069002, b"\x01\x00" + b"\xff" * 12)
        out += tnef_attribute(2, 0x00018010, name[:8].encode() + b"\x00")
        out += tnef_attribute(2, 0x0006800F, data)
        out += tnef_attribute(
            2, 0x00069005, mapi_properties((0x3707, 0x001F, (name + "\x00").encode("utf-16-le")))
        )
    for subject, stream in messages:
        out += tnef_attribute(2, 0x00069002, b"\x01\x00" + b"\xff" * 12)
        iid = bytes.fromhex("0703020000000000c000000000000046")
        out += tnef_attribute(
            2,
            0x00069005,
            mapi_properties(
                (0x3001, 0x001E, subject.encode() + b"\x00"),
                (0x3705, 0x0003, struct.pack("<I", 5)),
                (0x3701, 0x000D, iid + stream),
            ),
        )
    return out


def test_winmail_dat_rtf_body_and_attachments() -> None:
    from test_msg import compress_rtf

    winmail = tnef(
        rtf=compress_rtf(RTF_DDE),
        attachments=(("Rechnung-Oktober.docx", header_docx()), ("orders.csv", CSV_DDE)),
    )
    data = HEAD + multipart(
        part(b"Content-Type: text/plain\r\n", b"see attached"),
        attachment(b'filename="winmail.dat"', winmail, b"application/ms-tnef"),
    )
    report = scan_bytes(data, "mail.eml")
    assert commands(report) == [
        (("mail.eml", "winmail.dat", "RTF body"), *OUTLOOK_CMD),
        (("mail.eml", "winmail.dat", "Rechnung-Oktober.docx", "word/header2.xml"), *WORD_CMD),
        (("mail.eml", "winmail.dat", "orders.csv"), *EXCEL_CMD),
    ]
    assert report.problems == ()
    assert scan_bytes(winmail, "winmail.dat").format is FileFormat.TNEF


def test_winmail_dat_attached_message_and_password_in_body() -> None:
    inner = tnef(attachments=(("o.zip", encrypted_zip("orders.csv", CSV_DDE, b"letmein")),))
    outer = tnef(body=b"Password: letmein\r\n", messages=(("Fwd: orders", inner),))
    report = scan_bytes(outer, "winmail.dat")
    assert commands(report) == [(("winmail.dat", "Fwd: orders", "o.zip", "orders.csv"), *EXCEL_CMD)]


def test_truncated_winmail_dat_keeps_what_was_read() -> None:
    full = tnef(attachments=(("orders.csv", CSV_DDE), ("b.docx", header_docx())))
    report = scan_bytes(full[:-200], "winmail.dat")
    assert commands(report) == [(("winmail.dat", "orders.csv"), *EXCEL_CMD)]
    assert problems(report) == [(ProblemKind.MALFORMED, ("winmail.dat",))]


_SEED_TNEF = tnef(rtf=b"\x00" * 20, body=b"pw: a", attachments=(("a.csv", CSV_DDE),))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_damaged_tnef_gives_only_typed_problems(data: st.DataObject) -> None:
    blob = bytearray(_SEED_TNEF)
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(4, len(blob) - 1))
        blob[position] = data.draw(st.integers(0, 255))
    report = scan_bytes(bytes(blob), "winmail.dat")
    assert ProblemKind.INTERNAL not in {p.kind for p in report.problems}, report.problems
