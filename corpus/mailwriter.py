"""Harmless e-mail containers for the corpus, written from the formats' own rules.

- RFC 5322 headers and RFC 2046 multipart/mixed bodies with a fixed boundary, base64
  attachments (RFC 2045 6.8);
- a ZIP member under traditional PKWARE encryption (APPNOTE 6.3.3, 6.1), which zipfile
  cannot write;
- compressed RTF ([MS-OXRTFCP] 2.1.3.1), literals only;
- an Outlook message ([MS-OXMSG] 2.1) on top of corpus/cfbwriter.py;
- a TNEF stream (winmail.dat, [MS-OXTNEF] 2.1.3).

Everything is deterministic: fixed dates, boundaries and encryption header bytes.
"""

from __future__ import annotations

import base64
import struct
import zlib

from cfbwriter import write_cfb

MAIL_HEADERS = (
    "From: Accounts <accounts@example.invalid>\r\n"
    "To: victim@example.invalid\r\n"
    "Date: Mon, 16 Oct 2017 09:00:00 +0000\r\n"
    "MIME-Version: 1.0\r\n"
)


def mime_part(headers: str, body: bytes) -> bytes:
    return headers.encode("ascii") + b"\r\n" + body


def mime_text(text: str) -> bytes:
    return mime_part(
        'Content-Type: text/plain; charset="us-ascii"\r\nContent-Transfer-Encoding: 7bit\r\n',
        text.replace("\n", "\r\n").encode("ascii"),
    )


def mime_attachment(filename: str, content_type: str, data: bytes) -> bytes:
    return mime_part(
        f'Content-Type: {content_type}; name="{filename}"\r\n'
        "Content-Transfer-Encoding: base64\r\n"
        f'Content-Disposition: attachment; filename="{filename}"\r\n',
        base64.encodebytes(data).replace(b"\n", b"\r\n"),
    )


def mime_message(subject: str, *parts: bytes, boundary: str = "=_ddescan_corpus_1") -> bytes:
    """RFC 5322 headers and a multipart/mixed body (RFC 2046 5.1) with a fixed boundary."""
    out = (
        MAIL_HEADERS + f"Subject: {subject}\r\n"
        f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
        "This is a multi-part message in MIME format.\r\n"
    ).encode("ascii")
    for part in parts:
        out += f"--{boundary}\r\n".encode("ascii") + part + b"\r\n"
    return out + f"--{boundary}--\r\n".encode("ascii")


def _crc32_table() -> list[int]:
    table = []
    for index in range(256):
        value = index
        for _ in range(8):
            value = (value >> 1) ^ 0xEDB88320 if value & 1 else value >> 1
        table.append(value)
    return table


CRC32_TABLE = _crc32_table()


def zipcrypto_zip(name: str, data: bytes, password: bytes) -> bytes:
    """One deflated member under traditional PKWARE encryption (APPNOTE 6.3.3, 6.1), written
    by hand: zipfile cannot encrypt. The 11 random header bytes are fixed for determinism."""
    keys = [0x12345678, 0x23456789, 0x34567890]

    def update(byte: int) -> None:
        keys[0] = (keys[0] >> 8) ^ CRC32_TABLE[(keys[0] ^ byte) & 0xFF]
        keys[1] = ((keys[1] + (keys[0] & 0xFF)) * 134775813 + 1) & 0xFFFFFFFF
        keys[2] = (keys[2] >> 8) ^ CRC32_TABLE[(keys[2] ^ (keys[1] >> 24)) & 0xFF]

    for byte in password:
        update(byte)
    crc = zlib.crc32(data)
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    plain = bytes(range(1, 12)) + bytes([crc >> 24]) + packer.compress(data) + packer.flush()
    stored = bytearray()
    for byte in plain:
        temp = (keys[2] | 2) & 0xFFFF
        stored.append(byte ^ (((temp * (temp ^ 1)) >> 8) & 0xFF))
        update(byte)
    encoded = name.encode("ascii")
    fixed = struct.pack(
        "<HHHHHIIIHH", 20, 0x1, 8, 0, 0x21, crc, len(stored), len(data), len(encoded), 0
    )
    local = b"PK\x03\x04" + fixed + encoded + bytes(stored)
    central = b"PK\x01\x02" + struct.pack("<H", 20) + fixed + struct.pack("<HHHII", 0, 0, 0, 0, 0)
    central += encoded
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 1, 1, len(central), len(local), 0)
    return local + central + end


def compressed_rtf(text: bytes) -> bytes:
    """[MS-OXRTFCP] 2.1.3.1 compressed RTF using literals only, ended by the reference whose
    offset equals the dictionary write position (207 + length, modulo 4096)."""
    tokens = [bytes([byte]) for byte in text]
    tokens.append(struct.pack(">H", ((207 + len(text)) % 4096) << 4))
    body = bytearray()
    for start in range(0, len(tokens), 8):
        group = tokens[start : start + 8]
        body.append(sum(1 << bit for bit, token in enumerate(group) if len(token) == 2))
        for token in group:
            body += token
    crc = 0
    for byte in body:
        crc = CRC32_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return struct.pack("<IIII", len(body) + 12, len(text), 0x75465A4C, crc) + bytes(body)


def outlook_msg(subject: str, body: str, rtf: bytes) -> bytes:
    """An Outlook message ([MS-OXMSG] 2.1): the top-level property stream, subject, plain
    body and compressed RTF body as __substg1.0_ streams (PidTagSubject 0x0037,
    PidTagBody 0x1000, PidTagRtfCompressed 0x1009)."""
    return write_cfb(
        {
            "__nameid_version1.0/__substg1.0_00020102": b"",
            "__properties_version1.0": b"\x00" * 32,
            "__substg1.0_001A001F": "IPM.Note".encode("utf-16-le"),
            "__substg1.0_0037001F": subject.encode("utf-16-le"),
            "__substg1.0_1000001F": body.encode("utf-16-le"),
            "__substg1.0_10090102": compressed_rtf(rtf),
        }
    )


def tnef_attribute(level: int, attribute: int, data: bytes) -> bytes:
    """[MS-OXTNEF] 2.1.3.1 attribute: level, id, length, data, 16-bit sum of the data bytes."""
    return (
        struct.pack("<BII", level, attribute, len(data))
        + data
        + struct.pack("<H", sum(data) & 0xFFFF)
    )


def winmail_dat(subject: str, rtf: bytes) -> bytes:
    """A TNEF stream ([MS-OXTNEF]) whose attMsgProps carry PidTagRtfCompressed."""
    rtf_value = compressed_rtf(rtf)
    properties = struct.pack("<I", 1) + struct.pack(
        "<III", 0x0102 | 0x1009 << 16, 1, len(rtf_value)
    )
    properties += rtf_value + b"\x00" * (-len(rtf_value) % 4)
    return (
        b"\x78\x9f\x3e\x22"
        + struct.pack("<H", 0x0001)
        + tnef_attribute(1, 0x00089006, struct.pack("<I", 0x00010000))
        + tnef_attribute(1, 0x00078008, b"IPM.Microsoft Mail.Note\x00")
        + tnef_attribute(1, 0x00018004, subject.encode("ascii") + b"\x00")
        + tnef_attribute(1, 0x00069003, properties)
    )
