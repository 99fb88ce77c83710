"""Word 97-2003 binary documents (.doc, .dot; [MS-DOC]): every field of every sub-document.

A .doc is a compound file whose `WordDocument` stream starts with the File Information Block
(FIB, [MS-DOC] 2.5.1). The FIB says which table stream holds the document's tables
(fWhichTblStm: `1Table` or `0Table`), where the piece table (Clx, 2.9.38) sits in it, and
how many characters (CPs) each sub-document has (FibRgLw97, 2.5.4). The piece table maps
character positions to the stored text, piece by piece either as UTF-16LE or "compressed"
8-bit text (FcCompressed, 2.9.73). The sub-documents follow one another in CP order: main
text, footnotes, headers, comments, endnotes, text boxes, header text boxes (2.4.1).

Fields are delimited in the text itself by the field characters 0x13 (begin), 0x14
(separator) and 0x15 (end) (2.8.25 PlcFld): the instruction lies between begin and separator,
the cached result between separator and end. The marks are what Word acts on, so they are
read from the text rather than from the PlcFld tables, which an attacker can strip. The
field-code layer (QUOTE/SET/REF, DDE arguments, process mapping) is scanner.fields' job,
exactly as for .docx and RTF.
"""

from __future__ import annotations

import bisect
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from scanner.errors import LimitExceeded, MalformedInput, UnsupportedInput
from scanner.fields import findings_for_stories
from scanner.formats.base import ScanContext, ScanItem
from scanner.formats.cfb import has_stream, is_cfb, open_cfb, read_stream
from scanner.formats.objectpool import object_pool_scans
from scanner.model import (
    Confidence,
    FieldNode,
    FieldStory,
    FileFormat,
    HostApplication,
    Location,
    ScanLimits,
)

WORD_STREAM = "WordDocument"

# [MS-DOC] 2.5.2 FibBase.
FIB_BASE_SIZE = 32
W_IDENT = 0xA5EC
NFIB_WORD97 = 0x00C1
# FibBase flag bits (2.5.2): fEncrypted, fWhichTblStm, fObfuscated.
F_ENCRYPTED = 0x0100
F_WHICH_TBL_STM = 0x0200
F_OBFUSCATED = 0x8000
# The Word 97 FIB layout (2.5.1): csw 0x000E shorts of FibRgW97, cslw 0x0016 longs of
# FibRgLw97. Word 6/95 FIBs have other data at these offsets.
CSW_WORD97 = 0x000E
CSLW_WORD97 = 0x0016

# FibRgLw97 (2.5.4) indexes of the CP counts, in the CP order of the sub-documents (2.4.1).
# reserved3 (index 6, once the Word 6 macro sub-document) MUST be 0 and is ignored.
SUB_DOCUMENTS: tuple[tuple[str, int], ...] = (
    ("main text", 3),  # ccpText
    ("footnotes", 4),  # ccpFtn
    ("headers and footers", 5),  # ccpHdd
    ("comments", 7),  # ccpAtn
    ("endnotes", 8),  # ccpEdn
    ("text boxes", 9),  # ccpTxbx
    ("header text boxes", 10),  # ccpHdrTxbx
)
TRAILING_STORY = "text after the sub-documents"
_LW_NEEDED = 11

# FibRgFcLcb97 (2.5.6): fcClx/lcbClx is the 34th fc/lcb pair.
CLX_PAIR = 33
_PAIRS_NEEDED = CLX_PAIR + 1

# Clx (2.9.38): any number of Prc (clxt 0x01) then one Pcdt (clxt 0x02, 2.9.178).
CLXT_PRC = 0x01
CLXT_PCDT = 0x02
PCD_SIZE = 8
_FC_MASK = 0x3FFFFFFF
_FC_COMPRESSED = 0x40000000

# FcCompressed (2.9.73): 8-bit text is Unicode U+0000-U+00FF except these bytes.
_COMPRESSED_EXCEPTIONS = {
    0x82: 0x201A, 0x83: 0x0192, 0x84: 0x201E, 0x85: 0x2026, 0x86: 0x2020, 0x87: 0x2021,
    0x88: 0x02C6, 0x89: 0x2030, 0x8A: 0x0160, 0x8B: 0x2039, 0x8C: 0x0152, 0x91: 0x2018,
    0x92: 0x2019, 0x93: 0x201C, 0x94: 0x201D, 0x95: 0x2022, 0x96: 0x2013, 0x97: 0x2014,
    0x98: 0x02DC, 0x99: 0x2122, 0x9A: 0x0161, 0x9B: 0x203A, 0x9C: 0x0153, 0x9F: 0x0178,
}  # fmt: skip

FIELD_BEGIN = "\x13"
FIELD_SEPARATOR = "\x14"
FIELD_END = "\x15"
_FIELD_MARK = re.compile("[\x13\x14\x15]")

# Fields nested deeper than this in one another's instructions are listed as fields of their
# own (still evaluated, never dropped): scanner.fields walks nested instructions only so deep.
MAX_FIELD_NESTING = 48
MAX_FIELDS = 100_000
_CHECK_EVERY = 4096


@dataclass(frozen=True)
class Fib:
    """What ddescan needs from the File Information Block."""

    n_fib: int
    encrypted: bool
    obfuscated: bool
    table_stream: str
    ccp: tuple[int, ...]
    fc_clx: int
    lcb_clx: int


@dataclass(frozen=True)
class Piece:
    """One piece of the piece table: CPs [cp_start, cp_end) stored at byte `offset`."""

    cp_start: int
    cp_end: int
    offset: int
    compressed: bool


@dataclass(frozen=True)
class SubDocument:
    name: str
    cp_start: int
    cp_end: int


def _u16(data: bytes, offset: int) -> int:
    value: int = struct.unpack_from("<H", data, offset)[0]
    return value


def _u32(data: bytes, offset: int) -> int:
    value: int = struct.unpack_from("<I", data, offset)[0]
    return value


def _i32(data: bytes, offset: int) -> int:
    value: int = struct.unpack_from("<i", data, offset)[0]
    return value


def read_fib_base(word: bytes) -> tuple[int, int, int]:
    """(wIdent, nFib, flags) of FibBase; MalformedInput if the stream is too short."""
    if len(word) < FIB_BASE_SIZE:
        raise MalformedInput(
            f"WordDocument stream of {len(word)} bytes is too short for a FIB "
            f"(FibBase alone is {FIB_BASE_SIZE} bytes)"
        )
    return _u16(word, 0), _u16(word, 2), _u16(word, 0x0A)


def _has_word97_layout(word: bytes) -> bool:
    if len(word) < 0x22:
        return False
    csw = _u16(word, 0x20)
    cslw_at = 0x22 + 2 * csw
    return csw == CSW_WORD97 and cslw_at + 2 <= len(word) and _u16(word, cslw_at) == CSLW_WORD97


def parse_fib(word: bytes) -> Fib:
    """The FIB at offset 0 of the WordDocument stream ([MS-DOC] 2.5.1), bounds-checked."""
    w_ident, n_fib, flags = read_fib_base(word)
    if w_ident != W_IDENT:
        raise MalformedInput(
            f"WordDocument stream does not start with a Word FIB (wIdent 0x{w_ident:04X}, "
            f"expected 0x{W_IDENT:04X})"
        )
    # Word 6.0 (nFib 0x0065) and Word 95 (0x0068) use another FIB and text layout. A lower
    # nFib on a FIB that has the Word 97 layout is still read as Word 97: a crafted version
    # number must not buy an unscanned file.
    if n_fib < NFIB_WORD97 and not _has_word97_layout(word):
        raise UnsupportedInput(
            f"Word 6.0/95 or older binary document (nFib 0x{n_fib:04X}); only Word 97-2003 "
            f"documents (nFib 0x{NFIB_WORD97:04X} or later) are read"
        )
    position = FIB_BASE_SIZE
    csw = _count(word, position, "csw")
    position += 2 + 2 * csw
    cslw = _count(word, position, "cslw")
    if cslw < _LW_NEEDED:
        raise MalformedInput(f"FIB has {cslw} FibRgLw longs, fewer than the {_LW_NEEDED} needed")
    lw_at = position + 2
    position = lw_at + 4 * cslw
    cb_rg_fc_lcb = _count(word, position, "cbRgFcLcb")
    if cb_rg_fc_lcb < _PAIRS_NEEDED:
        raise MalformedInput(
            f"FIB has {cb_rg_fc_lcb} fc/lcb pairs, fewer than the {_PAIRS_NEEDED} that reach fcClx"
        )
    fc_lcb_at = position + 2
    blob_end = fc_lcb_at + 8 * cb_rg_fc_lcb
    if blob_end > len(word):
        raise MalformedInput(
            f"FIB is truncated: its fc/lcb pairs end at byte {blob_end} of a "
            f"{len(word)}-byte WordDocument stream"
        )
    # 2.5.14: when cswNew is not 0, FibRgCswNew.nFibNew is the real version.
    if blob_end + 4 <= len(word) and _u16(word, blob_end) > 0:
        n_fib = max(n_fib, _u16(word, blob_end + 2))
    ccp = []
    for name, index in SUB_DOCUMENTS:
        value = _i32(word, lw_at + 4 * index)
        if value < 0:
            raise MalformedInput(f"FIB gives the {name} a negative length ({value} characters)")
        ccp.append(value)
    clx_at = fc_lcb_at + 8 * CLX_PAIR
    return Fib(
        n_fib=n_fib,
        encrypted=bool(flags & F_ENCRYPTED),
        obfuscated=bool(flags & F_OBFUSCATED),
        table_stream="1Table" if flags & F_WHICH_TBL_STM else "0Table",
        ccp=tuple(ccp),
        fc_clx=_u32(word, clx_at),
        lcb_clx=_u32(word, clx_at + 4),
    )


def _count(word: bytes, offset: int, name: str) -> int:
    if offset + 2 > len(word):
        raise MalformedInput(
            f"FIB is truncated: {name} at byte {offset} lies past the end of a "
            f"{len(word)}-byte WordDocument stream"
        )
    return _u16(word, offset)


def parse_piece_table(
    table: bytes, fib: Fib, word_size: int, check: Callable[[], None] | None = None
) -> tuple[Piece, ...]:
    """The PlcPcd of the Clx ([MS-DOC] 2.9.38, 2.9.177, 2.9.178), every piece bounds-checked.

    Word writes every character once, so the pieces together cannot hold more characters
    than the WordDocument stream has bytes: a larger total is a crafted table.
    """
    name = fib.table_stream
    if fib.lcb_clx == 0:
        raise MalformedInput("FIB has no piece table (lcbClx is 0)")
    end = fib.fc_clx + fib.lcb_clx
    if end > len(table):
        raise MalformedInput(
            f"FIB puts the piece table (Clx) at bytes {fib.fc_clx}-{end} of the {name} "
            f"stream, past its end ({len(table)} bytes)"
        )
    clx = table[fib.fc_clx : end]
    position = 0
    while position < len(clx) and clx[position] == CLXT_PRC:
        if position + 3 > len(clx):
            raise MalformedInput("Clx is truncated inside a Prc")
        size = struct.unpack_from("<h", clx, position + 1)[0]
        if size < 0:
            raise MalformedInput(f"Clx has a Prc with a negative size ({size})")
        position += 3 + size
    if position + 5 > len(clx) or clx[position] != CLXT_PCDT:
        raise MalformedInput("Clx has no Pcdt (piece table) after its Prc entries")
    lcb = _u32(clx, position + 1)
    plc_at = position + 5
    if plc_at + lcb > len(clx):
        raise MalformedInput(
            f"piece table (PlcPcd) claims {lcb} bytes, more than the {len(clx) - plc_at} left "
            "in the Clx"
        )
    if lcb < 4 + 4 + PCD_SIZE or (lcb - 4) % (4 + PCD_SIZE):
        raise MalformedInput(f"piece table (PlcPcd) of {lcb} bytes is not 4*(n+1) + 8*n bytes")
    count = (lcb - 4) // (4 + PCD_SIZE)
    if count > word_size:
        raise MalformedInput(
            f"piece table has {count} pieces, more than a {word_size}-byte WordDocument "
            "stream can hold"
        )
    cps = struct.unpack_from(f"<{count + 1}i", clx, plc_at)
    if cps[0] != 0:
        raise MalformedInput(f"piece table starts at CP {cps[0]}, not 0")
    if cps[-1] > word_size:
        raise MalformedInput(
            f"piece table describes {cps[-1]} characters, more than a {word_size}-byte "
            "WordDocument stream can hold"
        )
    pcd_at = plc_at + 4 * (count + 1)
    pieces: list[Piece] = []
    for index in range(count):
        if check is not None and index % _CHECK_EVERY == 0:
            check()
        start, stop = cps[index], cps[index + 1]
        if stop < start:
            raise MalformedInput(f"piece table CPs go backwards at piece {index} ({start}>{stop})")
        fc = _u32(clx, pcd_at + PCD_SIZE * index + 2)
        compressed = bool(fc & _FC_COMPRESSED)
        offset = (fc & _FC_MASK) // 2 if compressed else fc & _FC_MASK
        length = (stop - start) * (1 if compressed else 2)
        if offset + length > word_size:
            raise MalformedInput(
                f"piece {index} (CPs {start}-{stop}) points past the end of the "
                f"{word_size}-byte WordDocument stream"
            )
        if stop > start:
            pieces.append(Piece(start, stop, offset, compressed))
    return tuple(pieces)


def sub_documents(fib: Fib, text_end: int) -> tuple[SubDocument, ...]:
    """The sub-documents in CP order (2.4.1), clipped to the text the pieces hold.

    Whatever lies past the last declared sub-document (normally only the final paragraph
    mark) is a story of its own: a field hidden there costs nothing to report.
    """
    stories: list[SubDocument] = []
    position = 0
    for (name, _), length in zip(SUB_DOCUMENTS, fib.ccp, strict=True):
        start = min(position, text_end)
        position += length
        end = min(position, text_end)
        if end > start:
            stories.append(SubDocument(name, start, end))
    if position < text_end:
        stories.append(SubDocument(TRAILING_STORY, position, text_end))
    return tuple(stories)


_COMPRESSED_TABLE = {byte: chr(code) for byte, code in _COMPRESSED_EXCEPTIONS.items()}


def text_between(word: bytes, pieces: tuple[Piece, ...], start: int, end: int) -> str:
    """The characters of CPs [start, end), decoded piece by piece."""
    parts: list[str] = []
    index = max(bisect.bisect_right(pieces, start, key=lambda p: p.cp_start) - 1, 0)
    while index < len(pieces) and pieces[index].cp_start < end:
        piece = pieces[index]
        index += 1
        low, high = max(start, piece.cp_start), min(end, piece.cp_end)
        if high <= low:
            continue
        first = low - piece.cp_start
        count = high - low
        if piece.compressed:
            raw = word[piece.offset + first : piece.offset + first + count]
            parts.append(raw.decode("latin-1").translate(_COMPRESSED_TABLE))
        else:
            raw = word[piece.offset + 2 * first : piece.offset + 2 * (first + count)]
            parts.append(raw.decode("utf-16-le", "replace"))
    return "".join(parts)


@dataclass
class _OpenField:
    ordinal: int
    pieces: list[str | FieldNode] = field(default_factory=list)
    result: list[str] = field(default_factory=list)
    in_result: bool = False


@dataclass
class _Fields:
    """The field-character state machine over the text of one sub-document."""

    stack: list[_OpenField] = field(default_factory=list)
    fields: list[FieldNode] = field(default_factory=list)
    count: int = 0
    stopped: bool = False

    def begin(self) -> None:
        self.count += 1
        self.stack.append(_OpenField(self.count))

    def text(self, text: str) -> None:
        if not self.stack:
            return
        top = self.stack[-1]
        if top.in_result:
            top.result.append(text)
        else:
            top.pieces.append(text)

    def separator(self) -> None:
        if self.stack:
            self.stack[-1].in_result = True

    def end(self) -> None:
        if self.stack:
            self._close(self.stack.pop())

    def _close(self, closing: _OpenField) -> None:
        node = FieldNode(
            instruction=tuple(closing.pieces),
            result="".join(r for r in closing.result if r),
            detail=f"field {closing.ordinal}",
        )
        parent = self.stack[-1] if self.stack else None
        if parent is not None and not parent.in_result and len(self.stack) < MAX_FIELD_NESTING:
            parent.pieces.append(node)
            return
        # Top level, inside another field's result (Word evaluates it on its own), or nested
        # too deep to be walked inside its parent.
        self.fields.append(node)
        if parent is not None and parent.in_result:
            parent.result.append(node.result)

    def finish(self) -> tuple[FieldNode, ...]:
        # An unterminated field ends with its sub-document: Word's tolerance of broken
        # fields is not something to bet on.
        while self.stack:
            self._close(self.stack.pop())
        return tuple(self.fields)


def fields_in(text: str, check: Callable[[], None], budget: int = MAX_FIELDS) -> _Fields:
    """Rebuild the fields of one sub-document's text from its field characters."""
    state = _Fields()
    position = 0
    for marks, match in enumerate(_FIELD_MARK.finditer(text)):
        if marks % _CHECK_EVERY == 0:
            check()
        if match.start() > position:
            state.text(text[position : match.start()])
        position = match.end()
        mark = match.group()
        if mark == FIELD_BEGIN:
            if state.count >= budget:
                state.stopped = True
                break
            state.begin()
        elif mark == FIELD_SEPARATOR:
            state.separator()
        else:
            state.end()
    else:
        if position < len(text):
            state.text(text[position:])
    return state


@dataclass(frozen=True)
class WordStories:
    stories: tuple[FieldStory, ...]
    truncated: bool


def read_stories(
    word: bytes, table: bytes, fib: Fib, location: Location, check: Callable[[], None]
) -> WordStories:
    """One FieldStory per sub-document that holds fields, at `location` > sub-document."""
    pieces = parse_piece_table(table, fib, len(word), check)
    text_end = pieces[-1].cp_end if pieces else 0
    stories: list[FieldStory] = []
    budget = MAX_FIELDS
    truncated = False
    for sub in sub_documents(fib, text_end):
        check()
        text = text_between(word, pieces, sub.cp_start, sub.cp_end)
        if FIELD_BEGIN not in text:
            continue
        state = fields_in(text, check, budget)
        budget -= state.count
        fields = state.finish()
        if fields:
            stories.append(FieldStory(location.child(sub.name), fields))
        if state.stopped:
            truncated = True
            break
    return WordStories(tuple(stories), truncated)


def _word_stream_head(data: bytes) -> bytes | None:
    """The WordDocument stream of a compound file, or None when it is not a Word file."""
    try:
        ole = open_cfb(data)
    except MalformedInput:
        return None
    try:
        if not has_stream(ole, WORD_STREAM):
            return None
        return read_stream(ole, WORD_STREAM, ScanLimits().max_part_bytes)
    except (LimitExceeded, MalformedInput):
        # A WordDocument stream too large or too damaged to read (a size past the end of
        # the file, a broken chain): still Word's, and scan() reports why. Saying "not
        # Word" here would let a damaged header pass as an unread, clean compound file.
        return b""
    finally:
        ole.close()


class WordBinaryFormat:
    """Word 97-2003 .doc / .dot (and any name: Word opens a .doc by its content)."""

    format = FileFormat.DOC

    def identify(self, data: bytes, name: str) -> Confidence:
        if not is_cfb(data):
            return Confidence.NO
        word = _word_stream_head(data)
        if word is None:
            return Confidence.NO
        if len(word) >= FIB_BASE_SIZE and _u16(word, 0x0A) & F_ENCRYPTED:
            # Encrypted or XOR-obfuscated: the encrypted-Office handler's to open.
            return Confidence.NO
        return Confidence.YES

    def scan(self, data: bytes, ctx: ScanContext) -> Iterator[ScanItem]:
        # Embedded objects (ObjectPool storages) first, in a part of their own: an Equation
        # Editor object must be found even when the text stream is too damaged to read.
        yield from object_pool_scans(data, ctx, "ObjectPool/")
        limit = ctx.config.limits.max_part_bytes
        ole = open_cfb(data)
        try:
            word = read_stream(ole, WORD_STREAM, limit)
            ctx.budget.spend(len(word), WORD_STREAM)
            fib = parse_fib(word)
            if fib.encrypted:
                kind = "XOR-obfuscated" if fib.obfuscated else "encrypted"
                raise UnsupportedInput(f"Word document is {kind} (FIB fEncrypted is set)")
            if not has_stream(ole, fib.table_stream):
                raise MalformedInput(
                    f"FIB names the {fib.table_stream} table stream (fWhichTblStm) but the "
                    "file has no such stream"
                )
            table = read_stream(ole, fib.table_stream, limit)
            ctx.budget.spend(len(table), fib.table_stream)
        finally:
            ole.close()
        ctx.check_time()
        found = read_stories(word, table, fib, ctx.location.child(WORD_STREAM), ctx.check_time)
        yield from findings_for_stories(found.stories, ctx.host or HostApplication.WORD, ctx.config)
        if found.truncated:
            raise LimitExceeded(f"field limit of {MAX_FIELDS} per document reached")
