"""A minimal Word 97-2003 binary document writer ([MS-DOC]) for the corpus and the tests.

Writes what Word needs to find the text and its fields, from the specification alone:
a Word 97 FIB ([MS-DOC] 2.5.1: FibBase, FibRgW97, FibRgLw97 with the sub-document CP
counts, FibRgFcLcb97 with fcClx/lcbClx) at the start of the WordDocument stream, the text
after it, and in the table stream a Clx (2.9.38) holding only a Pcdt: the piece table
(PlcPcd, 2.9.177) whose pieces point at the text, stored either as UTF-16LE or as
"compressed" 8-bit text (FcCompressed, 2.9.73). Fields are written into the text with the
field characters 0x13 (begin), 0x14 (separator) and 0x15 (end).

The sub-documents follow one another in CP order (2.4.1): main text, footnotes, headers,
comments, endnotes, text boxes, header text boxes; when any but the main text is present,
one more paragraph mark ends the whole text.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from cfbwriter import write_cfb

W_IDENT = 0xA5EC
NFIB_WORD97 = 0x00C1
NFIB_BACK = 0x00BF
LID_EN_US = 0x0409
F_WHICH_TBL_STM = 0x0200
F_ENCRYPTED = 0x0100

# Byte offsets in the Word 97 FIB written here (csw 0x0E, cslw 0x16, cbRgFcLcb 0x5D).
FLAGS_OFFSET = 0x0A
FIB_RG_LW_OFFSET = 0x40
CCP_OFFSETS = {
    "main": FIB_RG_LW_OFFSET + 4 * 3,
    "footnotes": FIB_RG_LW_OFFSET + 4 * 4,
    "headers": FIB_RG_LW_OFFSET + 4 * 5,
    "comments": FIB_RG_LW_OFFSET + 4 * 7,
    "endnotes": FIB_RG_LW_OFFSET + 4 * 8,
    "text_boxes": FIB_RG_LW_OFFSET + 4 * 9,
    "header_text_boxes": FIB_RG_LW_OFFSET + 4 * 10,
}
CB_RG_FC_LCB_OFFSET = 0x98
FC_LCB_OFFSET = 0x9A
PAIRS_97 = 0x5D
FC_CLX_OFFSET = FC_LCB_OFFSET + 8 * 33
LCB_CLX_OFFSET = FC_CLX_OFFSET + 4
FIB_SIZE = FC_LCB_OFFSET + 8 * PAIRS_97 + 2
TEXT_OFFSET = 0x400

# FcCompressed (2.9.73): bytes that stand for other Unicode characters than their value.
COMPRESSED_EXCEPTIONS = {
    0x82: 0x201A, 0x83: 0x0192, 0x84: 0x201E, 0x85: 0x2026, 0x86: 0x2020, 0x87: 0x2021,
    0x88: 0x02C6, 0x89: 0x2030, 0x8A: 0x0160, 0x8B: 0x2039, 0x8C: 0x0152, 0x91: 0x2018,
    0x92: 0x2019, 0x93: 0x201C, 0x94: 0x201D, 0x95: 0x2022, 0x96: 0x2013, 0x97: 0x2014,
    0x98: 0x02DC, 0x99: 0x2122, 0x9A: 0x0161, 0x9B: 0x203A, 0x9C: 0x0153, 0x9F: 0x0178,
}  # fmt: skip
_TO_BYTE = {chr(COMPRESSED_EXCEPTIONS.get(b, b)): b for b in range(256)}

BEGIN = "\x13"
SEPARATOR = "\x14"
END = "\x15"


def field(instruction: str, result: str | None = None) -> str:
    """A field in Word's text: begin mark, instruction, [separator, result], end mark."""
    if result is None:
        return BEGIN + instruction + END
    return BEGIN + instruction + SEPARATOR + result + END


@dataclass(frozen=True)
class Stories:
    """The text of each sub-document, paragraph marks (\\r) included."""

    main: str
    footnotes: str = ""
    headers: str = ""
    comments: str = ""
    endnotes: str = ""
    text_boxes: str = ""
    header_text_boxes: str = ""

    def in_cp_order(self) -> tuple[tuple[str, str], ...]:
        return (
            ("main", self.main),
            ("footnotes", self.footnotes),
            ("headers", self.headers),
            ("comments", self.comments),
            ("endnotes", self.endnotes),
            ("text_boxes", self.text_boxes),
            ("header_text_boxes", self.header_text_boxes),
        )


def can_compress(text: str) -> bool:
    return all(char in _TO_BYTE for char in text)


def compress(text: str) -> bytes:
    """8-bit text as FcCompressed stores it (ValueError for a character it cannot hold)."""
    try:
        return bytes(_TO_BYTE[char] for char in text)
    except KeyError as error:
        raise ValueError(f"{error.args[0]!r} cannot be stored as compressed text") from None


def _chunks(text: str, size: int) -> list[str]:
    if size <= 0 or len(text) <= size:
        return [text]
    return [text[i : i + size] for i in range(0, len(text), size)]


def word_streams(
    stories: Stories,
    *,
    encoding: str = "cp1252",
    piece_chars: int = 0,
    table_stream: str = "1Table",
    n_fib: int = NFIB_WORD97,
    extra_flags: int = 0,
) -> dict[str, bytes]:
    """The WordDocument and table streams of a document holding `stories`.

    `encoding` is "cp1252" (compressed pieces), "utf-16" or "mixed" (pieces alternate,
    starting compressed); `piece_chars` splits the text into pieces of that many characters.
    """
    if encoding not in ("cp1252", "utf-16", "mixed"):
        raise ValueError(f"unknown encoding {encoding!r}")
    parts = stories.in_cp_order()
    text = "".join(t for _, t in parts)
    if any(t for name, t in parts if name != "main"):
        text += "\r"

    stored = bytearray()
    pieces: list[tuple[int, int]] = []  # (cp, FcCompressed value)
    cp = 0
    for index, chunk in enumerate(_chunks(text, piece_chars)):
        compressed = encoding == "cp1252" or (encoding == "mixed" and index % 2 == 0)
        offset = TEXT_OFFSET + len(stored)
        if compressed:
            stored += compress(chunk)
            pieces.append((cp, (offset * 2) | 0x40000000))
        else:
            stored += chunk.encode("utf-16-le")
            pieces.append((cp, offset))
        cp += len(chunk)

    plc = struct.pack(f"<{len(pieces) + 1}i", *[p[0] for p in pieces], cp)
    plc += b"".join(struct.pack("<HIH", 0, fc, 0) for _, fc in pieces)
    clx = b"\x02" + struct.pack("<I", len(plc)) + plc

    word = bytearray(TEXT_OFFSET) + stored
    flags = extra_flags | (F_WHICH_TBL_STM if table_stream == "1Table" else 0)
    struct.pack_into(
        "<HHHHHHHIBB", word, 0, W_IDENT, n_fib, 0, LID_EN_US, 0, flags, NFIB_BACK, 0, 0, 0
    )
    struct.pack_into("<H", word, 0x20, 0x000E)  # csw: FibRgW97 is 14 shorts
    struct.pack_into("<H", word, 0x3E, 0x0016)  # cslw: FibRgLw97 is 22 longs
    struct.pack_into("<I", word, FIB_RG_LW_OFFSET, len(word))  # cbMac
    for name, part in parts:
        struct.pack_into("<i", word, CCP_OFFSETS[name], len(part))
    struct.pack_into("<H", word, CB_RG_FC_LCB_OFFSET, PAIRS_97)
    struct.pack_into("<II", word, FC_CLX_OFFSET, 0, len(clx))
    return {"WordDocument": bytes(word), table_stream: clx}


def doc_file(stories: Stories, **options: Any) -> bytes:
    """A complete .doc: the streams of word_streams() in a compound file."""
    return write_cfb(word_streams(stories, **options))
