"""Text that Excel opens as a sheet: CSV/TSV and other delimited text, and SYLK.

Excel evaluates a field of a delimited text file as a formula when it starts with `=`, `+`,
`-` or `@` (a leading `'` makes it text), so `=cmd|'/c calc.exe'!A0` in a .csv file is a
DDE formula like any other. Which character separates the fields depends on the reader's
locale (the list separator) unless the file starts with a `sep=X` line, so every usual
separator is tried and the hits are merged, one per cell.

SYLK (the Symbolic Link format, first record `ID;`) stores a cell's formula in the `E`
field of its `C` record (`C;Y3;X2;ECMD|'/c calc'!A0`), with `;;` standing for `;`.

Rows in locations are lines of the file (1-based, counting a `sep=` line), which is the
sheet row unless a quoted field spans lines earlier in the file; columns are fields of the
row (1-based).

The file is read a chunk at a time (scan_chunked), so that memory does not grow with it:
plain substring searches over each chunk find the few records that could hold a DDE
formula (a bar, DDE or INITIATE), and only those are split into fields; where records
start is known from the count of quotes, since a record spans lines only where a quoted
field does. scan_whole, which splits the whole decoded text at once, is the reference the
chunked reader is tested against.
"""

from __future__ import annotations

import codecs
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass

from scanner.formats.base import ScanContext, ScanItem
from scanner.formulas import (
    findings_for_formula,
    may_hold_remote_reference,
    may_refer_to_dde,
    normalise_width,
)
from scanner.model import (
    Confidence,
    FileFormat,
    Finding,
    Formula,
    HostApplication,
)

_IDENTIFY_SAMPLE = 64 * 1024
_CHECK_EVERY = 4096
# A quoted field may hold line breaks; a record is joined across lines until its quotes
# balance, within these bounds (a stray quote must not swallow the rest of the file).
_MAX_JOINED_LINES = 10_000
_MAX_RECORD_CHARS = 1 << 20

_DELIMITERS = (",", ";", "\t", "|")
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "bar"}
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_SEP_LINE = re.compile(r"sep=(.)[ \t]*", re.IGNORECASE | re.DOTALL)
_SEP_START = re.compile(r"sep=.", re.IGNORECASE | re.DOTALL)
# Characters that start a formula once folded with NFKC: = + - @ and their full-width,
# small and superscript/subscript forms.
_STARTERS = "=+\\-@\uff1d\ufe66\u207c\u208c\uff0b\ufe62\u207a\u208a\ufb29\uff0d\ufe63\uff20\ufe6b"
# A record is only split if it could hold a DDE formula: a bar (or its full-width form) or
# a DDE/INITIATE call (or their full-width spelling), and a formula-starting character.
_RELEVANT = re.compile(
    "[|\uff5c]|[DdＤｄ][DdＤｄ][EeＥｅ]|[IiＩｉ][NnＮｎ][IiＩｉ][TtＴｔ][IiＩｉ][AaＡａ][TtＴｔ][EeＥｅ]"
)
_STARTER = re.compile(f"[{_STARTERS}]")
# Bytes that are not text: C0 controls other than tab, line breaks, form feed and the DOS
# end-of-file mark, and DEL.
_CONTROL_BYTES = bytes([*range(0, 9), 0x0B, *range(0x0E, 0x1A), *range(0x1B, 0x20), 0x7F])
_CONTROL_CHARS = re.compile("[\x00-\x08\x0b\x0e-\x19\x1b-\x1f\x7f]")


@dataclass(frozen=True)
class _Splitter:
    """How one delimiter splits a record.

    `field` matches one field: quoted (with `""` escapes, any tail up to the delimiter
    kept, as Excel keeps it), quoted and never closed, or plain; unrolled loops keep it
    linear. `formula` finds, in a record without quotes, just the fields that could start
    a formula, so that long runs of ordinary fields cost no Python work.
    """

    delimiter: str
    name: str
    field: re.Pattern[str]
    formula: re.Pattern[str]


def _splitter(delimiter: str) -> _Splitter:
    d = re.escape(delimiter)
    return _Splitter(
        delimiter=delimiter,
        name=_DELIMITER_NAMES.get(delimiter, repr(delimiter)),
        field=re.compile(
            rf'[ \t]*"(?P<inner>[^"]*(?:""[^"]*)*)"(?P<tail>[^{d}\n]*)'
            rf'|[ \t]*"(?P<open>[^"]*(?:""[^"]*)*)\Z'
            rf"|[^{d}\n]*"
        ),
        formula=re.compile(rf"(?:^|(?<={d}))[ \t\u3000\uff02]*[{_STARTERS}][^{d}\n]*"),
    )


_SYLK_FIELD = re.compile(r"[^;]*(?:;;[^;]*)*")
_SPLITTERS = {delimiter: _splitter(delimiter) for delimiter in _DELIMITERS}


@dataclass(frozen=True)
class _Decoded:
    text: str
    step: str


def _utf16_without_bom(data: bytes) -> str | None:
    """The UTF-16 codec whose NUL pattern the bytes show (mostly-ASCII text), or None."""
    sample = data[: _IDENTIFY_SAMPLE & ~1]
    if len(sample) < 4:
        return None
    even, odd = sample[0::2], sample[1::2]
    even_nuls, odd_nuls = even.count(0), odd.count(0)
    if odd_nuls >= 0.9 * len(odd) and even_nuls <= 0.1 * len(even):
        return "utf-16-le"
    if even_nuls >= 0.9 * len(even) and odd_nuls <= 0.1 * len(odd):
        return "utf-16-be"
    return None


def _decode(data: bytes) -> _Decoded:
    """Decode as Excel would read the file (BOM first), recording which decoding was used."""
    if data.startswith(b"\xef\xbb\xbf"):
        return _Decoded(data[3:].decode("utf-8", errors="replace"), "decoded as UTF-8 (BOM)")
    if data.startswith(b"\xff\xfe"):
        return _Decoded(
            data[2:].decode("utf-16-le", errors="replace"), "decoded as UTF-16 LE (BOM)"
        )
    if data.startswith(b"\xfe\xff"):
        return _Decoded(
            data[2:].decode("utf-16-be", errors="replace"), "decoded as UTF-16 BE (BOM)"
        )
    guess = _utf16_without_bom(data)
    if guess is not None:
        label = "LE" if guess.endswith("le") else "BE"
        return _Decoded(
            data.decode(guess, errors="replace"),
            f"decoded as UTF-16 {label} (no BOM; every other byte is NUL)",
        )
    try:
        return _Decoded(data.decode("utf-8"), "decoded as UTF-8")
    except UnicodeDecodeError:
        return _Decoded(data.decode("cp1252", errors="replace"), "decoded as Windows-1252")


def _is_text(data: bytes) -> bool:
    sample = data[:_IDENTIFY_SAMPLE]
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")) or _utf16_without_bom(sample):
        text = _decode(sample).text
        return len(_CONTROL_CHARS.findall(text)) * 100 <= len(text)
    if b"\x00" in sample:
        return False
    controls = len(sample) - len(sample.translate(None, _CONTROL_BYTES))
    return controls * 100 <= len(sample)


class _Cells:
    """Turns cell text into findings, once per cell and reference."""

    def __init__(self, ctx: ScanContext, base_steps: tuple[str, ...]) -> None:
        self.ctx = ctx
        self.host = ctx.host or HostApplication.EXCEL
        self.base_steps = base_steps
        self.seen: set[tuple[str, str]] = set()

    def findings(
        self, value: str, detail: str, steps: tuple[str, ...], need_starter: bool
    ) -> Iterator[Finding]:
        folded, fold_steps = normalise_width(value)
        more = list(fold_steps)
        text = folded
        if need_starter:
            text = folded.lstrip(' \t"')
            if not text or text[0] not in "=+-@":
                return
            if text != folded:
                more.append("leading spaces, tabs and quotes before the formula skipped")
        if not may_refer_to_dde(text):
            return
        formula = Formula(text, self.ctx.location.at(detail), (*self.base_steps, *steps, *more))
        raw = value if value != text else None
        for finding in findings_for_formula(formula, self.host, self.ctx.config, raw=raw):
            key = (detail, finding.evidence.deobfuscated)
            if key not in self.seen:
                self.seen.add(key)
                yield finding


def _records(lines: list[str], start: int, ctx: ScanContext) -> Iterator[tuple[int, str]]:
    """(index of first line, record): lines joined while a quoted field is left open."""
    index = start
    while index < len(lines):
        if (index - start) % _CHECK_EVERY == 0:
            ctx.check_time()
        first = index
        line = lines[index]
        index += 1
        if line.count('"') % 2 == 1:
            parts = [line]
            size = len(line)
            while index < len(lines) and len(parts) < _MAX_JOINED_LINES:
                if size >= _MAX_RECORD_CHARS:
                    break
                following = lines[index]
                index += 1
                parts.append(following)
                size += len(following) + 1
                if following.count('"') % 2 == 1:
                    break
            line = "\n".join(parts)
        yield first, line


def _fields(record: str, splitter: _Splitter, ctx: ScanContext) -> Iterator[tuple[int, int, str]]:
    """(line offset, column, value) of each field of a record, CSV quoting undone."""
    position = 0
    column = 1
    line_offset = 0
    counted = 0
    visited = 0
    while True:
        visited += 1
        if visited % _CHECK_EVERY == 0:
            ctx.check_time()
        match = splitter.field.match(record, position)
        if match is None:  # cannot happen: the plain alternative matches the empty string
            return
        line_offset += record.count("\n", counted, position)
        counted = position
        if match.group("inner") is not None:
            value = match.group("inner").replace('""', '"') + (match.group("tail") or "")
        elif match.group("open") is not None:
            value = match.group("open").replace('""', '"')
        else:
            value = match.group()
        yield line_offset, column, value
        end = match.end()
        if end >= len(record):
            return
        if record[end] == splitter.delimiter:
            column += 1
        else:  # a line break outside quotes: the next sheet row
            column = 1
        position = end + 1


def _formula_fields(
    record: str, splitter: _Splitter, ctx: ScanContext
) -> Iterator[tuple[int, int, str]]:
    """The fields of a record that could hold a formula, as (line offset, column, value)."""
    if '"' in record:
        for line_offset, column, value in _fields(record, splitter, ctx):
            if value and _STARTER.search(value):
                yield line_offset, column, value
        return
    # No quotes: the record is one line and every delimiter separates fields.
    column = 1
    counted = 0
    for visited, match in enumerate(splitter.formula.finditer(record), start=1):
        if visited % _CHECK_EVERY == 0:
            ctx.check_time()
        column += record.count(splitter.delimiter, counted, match.start())
        counted = match.start()
        yield 0, column, match.group()


@dataclass(frozen=True)
class _Layout:
    """The splitters a file is read with, each with the step it records."""

    splitters: tuple[tuple[_Splitter, tuple[str, ...]], ...]
    sep_line: bool


def _layout(first_line: str) -> _Layout:
    sep = _SEP_LINE.fullmatch(first_line)
    if sep is None:
        return _Layout(
            tuple((_SPLITTERS[d], (f"fields split on {_SPLITTERS[d].name}",)) for d in _DELIMITERS),
            sep_line=False,
        )
    splitter = _SPLITTERS.get(sep.group(1)) or _splitter(sep.group(1))
    steps = (f"first line sep={splitter.delimiter}: fields split on {splitter.name}",)
    return _Layout(((splitter, steps),), sep_line=True)


def _record_findings(
    first: int, record: str, layout: _Layout, cells: _Cells, ctx: ScanContext
) -> Iterator[ScanItem]:
    """Findings of one record whose first line is line `first` (0-based) of the file."""
    if _RELEVANT.search(record) is None:
        return
    yield from _relevant_record_findings(first, record, layout, cells, ctx)


def _relevant_record_findings(
    first: int, record: str, layout: _Layout, cells: _Cells, ctx: ScanContext
) -> Iterator[ScanItem]:
    """_record_findings of a record known to hold a match of _RELEVANT."""
    if _STARTER.search(record) is None:
        return
    if record.isascii() and '"' not in record and not may_hold_remote_reference(record):
        # Its fields are plain substrings that need no folding: none can hold a
        # reference if the whole record cannot.
        return
    # Splitters that cut a record the same way (one without any of their delimiters)
    # give the same field: it is read once.
    read: set[tuple[int, int, str]] = set()
    for splitter, steps in layout.splitters:
        for line_offset, column, value in _formula_fields(record, splitter, ctx):
            if (line_offset, column, value) in read:
                continue
            read.add((line_offset, column, value))
            detail = f"row {first + line_offset + 1}, column {column}"
            yield from cells.findings(value, detail, steps, True)


def _scan_delimited(text: str, cells: _Cells, ctx: ScanContext) -> Iterator[ScanItem]:
    """The reference reader: the whole text split into lines at once (see scan_chunked)."""
    lines = _LINE_BREAK.split(text)
    layout = _layout(lines[0])
    for first, record in _records(lines, 1 if layout.sep_line else 0, ctx):
        yield from _record_findings(first, record, layout, cells, ctx)


def _sylk_fields(record: str) -> list[str]:
    """Fields of a SYLK record: `;` separates, `;;` stands for a literal `;`."""
    fields: list[str] = []
    position = 0
    while True:
        match = _SYLK_FIELD.match(record, position)
        if match is None:  # cannot happen: the pattern matches the empty string
            return fields
        fields.append(match.group().replace(";;", ";"))
        if match.end() >= len(record):
            return fields
        position = match.end() + 1


def _sylk_position(fields: list[str]) -> tuple[int | None, int | None]:
    """The column (X) and row (Y) a C or F record moves to, when it sets them."""
    column: int | None = None
    row: int | None = None
    if fields[0] not in ("C", "F"):
        return None, None
    for field in fields[1:]:
        code, value = field[:1], field[1:]
        # isdigit() alone also accepts digits int() refuses (superscript two, "²"); a
        # row or column number has at most 7 digits, and int() refuses past 4300.
        if code in ("X", "Y") and value.isascii() and value.isdigit() and len(value) <= 9:
            if code == "X":
                column = int(value)
            else:
                row = int(value)
    return column, row


class _SylkCursor:
    """The cell a SYLK file is at: C and F records move it, later records use it."""

    def __init__(self) -> None:
        self.row = 0
        self.column = 0

    def read(self, record: str) -> tuple[str, str] | None:
        """Moves the cursor as the record says; returns (expression, detail) if it has one."""
        if not record.startswith(("C;", "F;", "NN;")):
            return None
        fields = _sylk_fields(record)
        kind = fields[0]
        column, row = _sylk_position(fields)
        if column is not None:
            self.column = column
        if row is not None:
            self.row = row
        expression: str | None = None
        name = ""
        for field in fields[1:]:
            code, value = field[:1], field[1:]
            if kind in ("C", "NN") and code == "E":
                expression = value
            elif kind == "NN" and code == "N":
                name = value
        if expression is None:
            return None
        detail = f'name "{name}"' if kind == "NN" else f"R{self.row}C{self.column}"
        return expression, detail


def _scan_sylk(text: str, cells: _Cells, ctx: ScanContext) -> Iterator[ScanItem]:
    """The reference reader: the whole text split into lines at once (see scan_chunked)."""
    cursor = _SylkCursor()
    for number, record in enumerate(_LINE_BREAK.split(text)):
        if number % _CHECK_EVERY == 0:
            ctx.check_time()
        found = cursor.read(record)
        if found is not None:
            yield from cells.findings(found[0], found[1], ("SYLK",), False)


# Bytes decoded at a time by the chunked reader: memory stays flat in the file's size (the
# text of a record that spans chunks is carried over, bounded by the record limits above).
_CHUNK_BYTES = 1 << 19
# When hits come on average at least once every _DENSE_LINES lines (after _DENSE_HITS of
# them), or records had to be walked one at a time more than _WALK_LIMIT times, the rest of
# a block is read line by line as _records reads it: cheaper then than finding records.
_DENSE_HITS = 16
_DENSE_LINES = 16
_WALK_LIMIT = 64
_LINE_BREAK_KEPT = re.compile(r"(\r\n|\r|\n)")
_BREAK = re.compile(r"[\r\n]")
# From the start of a record, every run of text without quotes and every pair of quotes
# closed on its own line: it stops at the first quote whose line ends before the next quote,
# on the first line with an odd number of quotes (the one that opens a record spanning
# lines, see _records). Possessive, so linear.
_OPENER = re.compile(r'(?:[^"]++|"[^"\r\n]*+")*+')
# The same matches as _RELEVANT, written to start with one character class so that the
# regular expression engine skips ahead without trying the alternatives at each character.
_RELEVANT_SCAN = re.compile(
    "[|\uff5cDdＤｄIiＩｉ](?:(?<=[|\uff5c])|(?<=[DdＤｄ])[DdＤｄ][EeＥｅ]"
    "|(?<=[IiＩｉ])[NnＮｎ][IiＩｉ][TtＴｔ][IiＩｉ][AaＡａ][TtＴｔ][EeＥｅ])"
)
# What _RELEVANT matches looks, in lower case, like one of these (or holds a full-width
# letter from _FULL_WIDTH_LETTERS).
_RELEVANT_NEEDLES = ("|", "\uff5c", "dde", "initiate")
_FULL_WIDTH_LETTERS = "ａｄｅｉｎｔ"
# str.lower() keeps every character one character long except U+0130 (capital I with dot
# above), which it turns into two; that character is in no pattern here.
_LONGER_IN_LOWER_CASE = "\u0130"
# A SYLK expression yields a finding only if, folded with NFKC, it holds a bar or an opening
# parenthesis (see formulas._HINT); these are the characters that fold to text holding one
# (tests/test_csv_fast.py checks the list against unicodedata). Lower-case ASCII text can
# hold a reference only where it reads "|", "dde" or "initiate".
_SYLK_RELEVANT = re.compile(
    "[(|\u207d\u208d\u2474-\u2487\u249c-\u24b5\u3200-\u321e\u3220-\u3243"
    "\ufe35\ufe59\uff08\uff5c\U0001f110-\U0001f129]"
)
_SYLK_ASCII_NEEDLES = ("|", "dde", "initiate")


@dataclass(frozen=True)
class _Encoding:
    """How _decode reads a file, as parameters for decoding it a chunk at a time."""

    codec: str
    errors: str
    skip: int
    step: str


def _is_utf8(data: bytes, chunk: int, ctx: ScanContext) -> bool:
    if data.isascii():
        return True
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    try:
        for offset in range(0, len(data), chunk):
            ctx.check_time()
            decoder.decode(data[offset : offset + chunk])
        decoder.decode(b"", True)
    except UnicodeDecodeError:
        return False
    return True


def _encoding(data: bytes, chunk: int, ctx: ScanContext) -> _Encoding:
    """The decoding _decode chooses, without decoding the whole file at once."""
    if data.startswith(b"\xef\xbb\xbf"):
        return _Encoding("utf-8", "replace", 3, "decoded as UTF-8 (BOM)")
    if data.startswith(b"\xff\xfe"):
        return _Encoding("utf-16-le", "replace", 2, "decoded as UTF-16 LE (BOM)")
    if data.startswith(b"\xfe\xff"):
        return _Encoding("utf-16-be", "replace", 2, "decoded as UTF-16 BE (BOM)")
    guess = _utf16_without_bom(data)
    if guess is not None:
        label = "LE" if guess.endswith("le") else "BE"
        return _Encoding(
            guess, "replace", 0, f"decoded as UTF-16 {label} (no BOM; every other byte is NUL)"
        )
    if _is_utf8(data, chunk, ctx):
        return _Encoding("utf-8", "strict", 0, "decoded as UTF-8")
    return _Encoding("cp1252", "replace", 0, "decoded as Windows-1252")


def _pieces(data: bytes, encoding: _Encoding, chunk: int) -> Iterator[tuple[str, bool]]:
    """The decoded text in order, as (piece, is the last piece); an incremental decoder
    keeps characters cut by a chunk boundary whole, so the pieces join to _decode's text."""
    decoder = codecs.getincrementaldecoder(encoding.codec)(encoding.errors)
    offset = encoding.skip
    while len(data) - offset > chunk:
        yield decoder.decode(data[offset : offset + chunk]), False
        offset += chunk
    yield decoder.decode(data[offset:], True), True


def _complete_end(text: str) -> int:
    """Where the text's last complete line break ends (0 when it has none): a carriage
    return at the very end may be the first half of a CR LF pair cut by a chunk boundary."""
    end = len(text) - 1 if text.endswith("\r") else len(text)
    last = max(text.rfind("\n", 0, end), text.rfind("\r", 0, end))
    return last + 1


class _Lines:
    """Joins decoded pieces into blocks of whole lines, carrying what is left over.

    Text carried over (a long line, a record open at the end of a block) is read again
    only once at least as much new text has come, so that each character is read a
    bounded number of times however the records and the chunks fall.
    """

    def __init__(self) -> None:
        self.pending: list[str] = []
        self.carried = 0
        self.fresh = 0
        self.complete = False

    def block(self, piece: str, final: bool) -> tuple[str, int] | None:
        """(text, end of its last complete line) once a line is complete, or at the end."""
        if piece:
            self.complete = (
                self.complete
                or "\n" in piece
                or "\r" in piece
                or bool(self.pending and self.pending[-1][-1:] == "\r")
            )
            self.pending.append(piece)
            self.fresh += len(piece)
        if not final and not (self.complete and self.fresh >= self.carried):
            return None
        text = "".join(self.pending)
        self.pending = []
        limit = len(text) if final else _complete_end(text)
        if limit == 0 and not final:
            self.carry(text, 0)
            return None
        return text, limit

    def carry(self, text: str, rest: int) -> None:
        """Keeps text[rest:] to be read again, in front of the next piece."""
        self.pending = [text[rest:]] if rest < len(text) else []
        self.carried = len(text) - rest
        self.fresh = 0
        self.complete = False


class _Finder:
    """First occurrence of a string (or a pattern) at or after a position, remembered so
    that increasing positions cost one pass over the text in all."""

    def __init__(self, text: str, needle: str | re.Pattern[str], limit: int) -> None:
        self.text = text
        self.needle = needle
        self.limit = limit
        self.searched_from = limit + 1
        self.found = -1

    def at_or_after(self, position: int) -> int:
        """Its first position in [position, limit), or -1."""
        if not (self.searched_from <= position and (self.found < 0 or self.found >= position)):
            self.searched_from = position
            if isinstance(self.needle, str):
                self.found = self.text.find(self.needle, position, self.limit)
            else:
                match = self.needle.search(self.text, position, self.limit)
                self.found = match.start() if match is not None else -1
        return self.found


def _first(finders: list[_Finder], position: int) -> int:
    """The first position at or after `position` that any of the finders finds, or -1."""
    first = -1
    for finder in finders:
        at = finder.found
        if not (finder.searched_from <= position and (at < 0 or at >= position)):
            at = finder.at_or_after(position)
        if at >= 0 and (first < 0 or at < first):
            first = at
    return first


def _hit_finders(text: str, limit: int) -> list[_Finder]:
    """Finders for every place _RELEVANT can match in text[:limit] (and a few more).

    Lower-casing the text lets plain substring searches (much faster than the regular
    expression engine) stand for the case-insensitive pattern; when the text holds a
    full-width letter the needles do not cover, the pattern itself is used.
    """
    if text.isascii():
        folded = text.lower()
        return [_Finder(folded, needle, limit) for needle in _RELEVANT_NEEDLES if needle.isascii()]
    folded = text.lower()
    if len(folded) != len(text):
        folded = text.replace(_LONGER_IN_LOWER_CASE, " ").lower()
    if any(letter in folded for letter in _FULL_WIDTH_LETTERS):
        return [_Finder(text, _RELEVANT_SCAN, limit)]
    return [_Finder(folded, needle, limit) for needle in _RELEVANT_NEEDLES]


@dataclass(frozen=True)
class _Record:
    """A record of the block: text[start:end], its line breaks read as line feeds if
    `joined`; the next record starts at `following`."""

    start: int
    end: int
    following: int
    joined: bool


@dataclass(frozen=True)
class _Resume:
    """Where to go on reading from (a record start): the next block, where a record that
    goes on past this one starts; or, if `dense`, the rest of this block line by line."""

    position: int
    dense: bool


class _Block:
    """Whole lines of delimited text from a record start: finds the records that hold a hit
    of _RELEVANT and reads them as _records would, without splitting the others.

    A line opens a record spanning lines when it has an odd number of quotes, so the
    records are known from the quotes alone: where there are none, or an even number with
    no room for a record to reach the bounds of _records, the next hit's line starts a
    record; otherwise _OPENER walks the records from the last known start.
    """

    def __init__(
        self, text: str, start: int, limit: int, final: bool, line: int, ctx: ScanContext
    ) -> None:
        self.text = text
        self.start = start
        self.limit = limit
        self.final = final
        self.ctx = ctx
        self.has_cr = text.find("\r", start, limit) >= 0
        self.counted = start
        self.counted_line = line
        self.newlines = _Finder(text, "\n", limit)
        self.returns = _Finder(text, "\r", limit)
        self.hits = _hit_finders(text, limit)
        # Where the next block must start reading (a record start): set by records().
        self.rest = limit
        # Records walked one at a time (_OPENER steps and lines of cut records).
        self.walked = 0

    def line_at(self, position: int) -> int:
        """The file's line index at a line start (0-based)."""
        if position >= self.counted:
            self.counted_line += self._breaks(self.counted, position)
        else:
            self.counted_line -= self._breaks(position, self.counted)
        self.counted = position
        return self.counted_line

    def _breaks(self, start: int, end: int) -> int:
        count = self.text.count("\n", start, end)
        if self.has_cr:
            count += self.text.count("\r", start, end) - self.text.count("\r\n", start, end)
        return count

    def line_start(self, low: int, position: int) -> int:
        """Start of the line holding `position`, given that a line starts at `low`."""
        last = self.text.rfind("\n", low, position)
        if self.has_cr:
            last = max(last, self.text.rfind("\r", low, position))
        return last + 1 if last >= 0 else low

    def line_end(self, position: int) -> int:
        """Where the line holding `position` ends (its line break, or the limit)."""
        end = self.newlines.at_or_after(position)
        if self.has_cr:
            at = self.returns.at_or_after(position)
            if at >= 0 and (end < 0 or at < end):
                end = at
        return end if end >= 0 else self.limit

    def after(self, end: int) -> int:
        """Start of the line after the line break at `end` (`end` itself at the end)."""
        if end >= len(self.text):
            return end
        return end + 2 if self.text.startswith("\r\n", end) else end + 1

    def opener(self, position: int, end: int) -> int:
        """The first quote left open on its line in [position, end), or `end`."""
        match = _OPENER.match(self.text, position, end)
        return match.end() if match is not None else position

    def within_bounds(self, start: int, following: int) -> bool:
        """Whether _records goes on to the line at `following` in a record from `start`."""
        first = self.line_at(start)  # before `following`: the count moves forward
        lines = self.line_at(following) - first
        crlf = self.text.count("\r\n", start, following) if self.has_cr else 0
        size = following - start - crlf - 1
        return lines < _MAX_JOINED_LINES and size < _MAX_RECORD_CHARS

    def settle(self, start: int, end: int) -> int:
        """The furthest line start up to `end` known to start a record, given that one
        starts at `start`, from the count of quotes alone.

        With no quote in between, `end` starts a record. Otherwise the text is taken in
        spans too short for _records to cut a record at its bounds there (fewer characters
        than either bound): a record starts after each span with an even number of quotes,
        the pairing being all that decides records within it.
        """
        text = self.text
        if text.find('"', start, end) < 0:
            return end
        span = min(_MAX_JOINED_LINES - 1, _MAX_RECORD_CHARS)
        position = start
        while position < end:
            stop = end
            if position + span < end:
                stop = position + span
                if text.startswith("\r\n", stop - 1):
                    stop -= 1  # a line start, not the middle of a line break
                stop = self.line_start(position, stop)
                if stop == position:  # a line longer than the span
                    stop = min(end, self.after(self.line_end(position)))
            quotes = text.count('"', position, stop)
            if quotes and (quotes % 2 == 1 or stop - position > span):
                return position
            position = stop
        return end

    def records(self) -> Iterator[tuple[int, str]]:
        """(line index, text) of each record holding a match of _RELEVANT, as _records
        gives it."""
        position = self.start
        first_line = self.line_at(position)
        hits = 0
        while True:
            if self.walked > _WALK_LIMIT or (
                hits >= _DENSE_HITS and self.line_at(position) - first_line < hits * _DENSE_LINES
            ):
                yield from self.dense(position)
                return
            hit = _first(self.hits, position)
            if hit < 0:
                break
            hits += 1
            if hits % _CHECK_EVERY == 0:
                self.ctx.check_time()
            record = self.record_at(position, hit)
            if isinstance(record, _Resume):
                if record.dense:
                    yield from self.dense(record.position)
                else:
                    self.rest = record.position
                return
            text = self.text[record.start : record.end]
            if record.joined:
                text = _LINE_BREAK.sub("\n", text)
            if _RELEVANT.search(text) is not None:
                yield self.line_at(record.start), text
            position = record.following
        rest, walked_out = self.end(position)
        if walked_out:
            yield from self.dense(rest)
        else:
            self.rest = rest

    def dense(self, position: int) -> Iterator[tuple[int, str]]:
        """Every record holding a hit from `position` (a record start) to the end of the
        block, the lines split at once and joined as _records joins them."""
        parts = _LINE_BREAK_KEPT.split(self.text[position : self.limit])
        lines = parts[0::2]
        if not self.final:
            lines.pop()  # the empty text after the last complete line break
        base = self.line_at(position)
        count = len(lines)
        index = 0
        while index < count:
            if index % _CHECK_EVERY == 0:
                self.ctx.check_time()
            first = index
            line = lines[index]
            index += 1
            if line.count('"') % 2 == 1:
                joined = [line]
                size = len(line)
                while len(joined) < _MAX_JOINED_LINES:
                    if index >= count:
                        if not self.final and size < _MAX_RECORD_CHARS:
                            # Its next line is in the next block: read it again from there.
                            self.rest = position + sum(map(len, parts[: 2 * first]))
                            return
                        break
                    if size >= _MAX_RECORD_CHARS:
                        break
                    following = lines[index]
                    index += 1
                    joined.append(following)
                    size += len(following) + 1
                    if following.count('"') % 2 == 1:
                        break
                line = "\n".join(joined)
            if _RELEVANT.search(line) is not None:
                yield base + first, line
        self.rest = self.limit

    def record_at(self, position: int, hit: int) -> _Record | _Resume:
        """The record holding `hit`, given that one starts at `position`; or where to go on
        reading from."""
        start = self.line_start(position, hit)
        end = self.line_end(hit)
        while True:
            position = self.settle(position, start)
            if position == start:
                record = self.record_from(start, end)
                break
            if self.walked > _WALK_LIMIT:
                return _Resume(position, dense=True)
            self.walked += 1
            quote = self.opener(position, end)
            if quote >= end:
                record = self.record_from(start, end)
                break
            opening = self.line_start(position, quote)
            if opening == start:
                record = self.joined(start, end)
                break
            record = self.joined(opening, self.line_end(quote))
            if isinstance(record, int) or record.following > hit:
                break
            position = record.following
        return _Resume(record, dense=False) if isinstance(record, int) else record

    def record_from(self, start: int, end: int) -> _Record | int:
        """The record that starts with the line text[start:end]."""
        if self.text.count('"', start, end) % 2 == 0:
            return _Record(start, end, self.after(end), joined=False)
        return self.joined(start, end)

    def joined(self, start: int, end: int) -> _Record | int:
        """The record opened by the line text[start:end] (an odd number of quotes): up to
        the next line with an odd number, within the bounds of _records."""
        if end >= len(self.text):
            return _Record(start, end, end, joined=False)
        following = self.after(end)
        quote = self.opener(following, self.limit)
        if quote < self.limit:
            closing = self.line_start(following, quote)
            closing_end = self.line_end(quote)
        elif self.final:
            closing = self.line_start(following, self.limit)
            closing_end = self.limit
        elif self.within_bounds(start, self.limit):
            return start
        else:
            return self.cut(start)
        if self.within_bounds(start, closing):
            return _Record(start, closing_end, self.after(closing_end), joined=True)
        return self.cut(start)

    def cut(self, start: int) -> _Record | int:
        """A record that _records cuts at its bounds, found line by line as it does."""
        end = self.line_end(start)
        lines = 1
        size = end - start
        following = self.after(end) if end < len(self.text) else -1
        while lines < _MAX_JOINED_LINES and following >= 0:
            if size >= _MAX_RECORD_CHARS:
                break
            if following >= self.limit and not self.final:
                return start
            if lines % _CHECK_EVERY == 0:
                self.ctx.check_time()
            line_end = self.line_end(following)
            lines += 1
            size += line_end - following + 1
            end = line_end
            odd = self.text.count('"', following, line_end) % 2 == 1
            following = self.after(line_end) if line_end < len(self.text) else -1
            if odd:
                break
        self.walked += lines
        return _Record(start, end, following if following >= 0 else end, joined=lines > 1)

    def end(self, position: int) -> tuple[int, bool]:
        """Where the next block starts: the start of a record still open at the limit, or
        the limit; or (with True) a record start from which to read the rest line by line,
        once walking records one at a time has gone on too long."""
        if self.final:
            return self.limit, False
        while True:
            position = self.settle(position, self.limit)
            if position == self.limit:
                return self.limit, False
            if self.walked > _WALK_LIMIT:
                return position, True
            self.walked += 1
            quote = self.opener(position, self.limit)
            if quote >= self.limit:
                return self.limit, False
            record = self.joined(self.line_start(position, quote), self.line_end(quote))
            if isinstance(record, int):
                return record, False
            position = record.following


def _chunked_delimited(
    pieces: Iterator[tuple[str, bool]], cells: _Cells, ctx: ScanContext
) -> Iterator[ScanItem]:
    lines = _Lines()
    layout: _Layout | None = None
    line = 0
    for piece, final in pieces:
        ctx.check_time()
        got = lines.block(piece, final)
        if got is None:
            continue
        text, limit = got
        start = 0
        if layout is None:
            # The first line is looked for only if it can be a sep= line (it may be long).
            first_end = _line_end(text, 0, len(text)) if _SEP_START.match(text) else 0
            layout = _layout(text[:first_end])
            if layout.sep_line:
                if first_end >= len(text):
                    return
                start = first_end + 2 if text.startswith("\r\n", first_end) else first_end + 1
                line = 1
        block = _Block(text, start, limit, final, line, ctx)
        for first, record in block.records():
            yield from _relevant_record_findings(first, record, layout, cells, ctx)
        line = block.line_at(block.rest)
        lines.carry(text, block.rest)


def _sylk_line_end(text: str, position: int, limit: int) -> int:
    """Where the line holding `position` ends, searching no further than that."""
    match = _BREAK.search(text, position, limit)
    return match.start() if match is not None else limit


def _sylk_line_start(text: str, low: int, position: int) -> int:
    last = max(text.rfind("\n", low, position), text.rfind("\r", low, position))
    return last + 1 if last >= 0 else low


def _line_end(text: str, position: int, limit: int) -> int:
    """Where the line holding `position` ends: its line break, or `limit`. For one look-up
    (_Block.line_end is the one for many): each search may run to `limit`."""
    ends = (text.find("\n", position, limit), text.find("\r", position, limit))
    found = [at for at in ends if at >= 0]
    return min(found) if found else limit


class _LastFinder:
    """Last occurrence of a character before a position, remembered so that decreasing
    positions cost one pass over the text in all."""

    def __init__(self, text: str, char: str, low: int) -> None:
        self.text = text
        self.char = char
        self.low = low
        self.searched_to = -1
        self.found = -1

    def before(self, position: int) -> int:
        """Its last position in [low, position), or -1."""
        if not (self.found < position <= self.searched_to):
            self.searched_to = position
            self.found = self.text.rfind(self.char, self.low, position)
        return self.found


def _sylk_last_move(text: str, start: int, end: int, code: str) -> int | None:
    """The last column (code "X") or row ("Y") that a record in text[start:end] moves to;
    -1 when too many records seem to move it but do not (then read them all instead).

    A record moves there only in a field starting with the code, that is right after a
    `;`: searching back for `;X` skips the records that cannot.
    """
    marker = ";" + code
    index = 1 if code == "Y" else 0
    newlines = _LastFinder(text, "\n", start)
    returns = _LastFinder(text, "\r", start)
    for _ in range(_WALK_LIMIT):
        at = text.rfind(marker, start, end)
        if at < 0:
            return None
        line_start = max(start, newlines.before(at) + 1, returns.before(at) + 1)
        record = text[line_start : _sylk_line_end(text, at, end)]
        if record.startswith(("C;", "F;")):
            moved = _sylk_position(_sylk_fields(record))[index]
            if moved is not None:
                return moved
        end = line_start
    return -1


def _sylk_skip(text: str, start: int, end: int, cursor: _SylkCursor, ctx: ScanContext) -> None:
    """Moves the cursor as the records in text[start:end] (whole lines, none holding an
    expression that can refer to DDE) would, reading only the last records that move it."""
    column = _sylk_last_move(text, start, end, "X")
    row = _sylk_last_move(text, start, end, "Y")
    if column == -1 or row == -1:
        for number, record in enumerate(_LINE_BREAK.split(text[start:end])):
            if number % _CHECK_EVERY == 0:
                ctx.check_time()
            cursor.read(record)
        return
    if column is not None:
        cursor.column = column
    if row is not None:
        cursor.row = row


def _chunked_sylk(
    pieces: Iterator[tuple[str, bool]], cells: _Cells, ctx: ScanContext
) -> Iterator[ScanItem]:
    """SYLK a block of lines at a time: only the lines that could hold a DDE expression are
    read whole; the cursor over the others is found by searching back for its last move."""
    lines = _Lines()
    cursor = _SylkCursor()
    for piece, final in pieces:
        ctx.check_time()
        got = lines.block(piece, final)
        if got is None:
            continue
        text, limit = got
        if text.isascii():
            folded = text.lower()
            hits = [_Finder(folded, needle, limit) for needle in _SYLK_ASCII_NEEDLES]
        else:
            hits = [_Finder(text, _SYLK_RELEVANT, limit)]
        position = 0
        visited = 0
        while True:
            hit = _first(hits, position)
            if hit < 0:
                break
            visited += 1
            if visited % _CHECK_EVERY == 0:
                ctx.check_time()
            start = _sylk_line_start(text, position, hit)
            end = _sylk_line_end(text, hit, limit)
            _sylk_skip(text, position, start, cursor, ctx)
            found = cursor.read(text[start:end])
            if found is not None:
                yield from cells.findings(found[0], found[1], ("SYLK",), False)
            position = end + 2 if text.startswith("\r\n", end) else end + 1
        if position < limit:
            _sylk_skip(text, position, limit, cursor, ctx)
        lines.carry(text, limit)


def _text_start(pieces: Iterator[tuple[str, bool]]) -> tuple[str, Iterator[tuple[str, bool]]]:
    """The first three characters of the text, and the pieces again from the start."""
    taken: list[tuple[str, bool]] = []
    head = ""
    for piece, final in pieces:
        taken.append((piece, final))
        head += piece[:3]
        if len(head) >= 3 or final:
            break
    return head[:3], itertools.chain(taken, pieces)


def scan_whole(data: bytes, ctx: ScanContext) -> Iterator[ScanItem]:
    """The reference reader: decodes and splits the whole file at once. Kept to check
    scan_chunked against (tests/test_csv_fast.py); its memory grows with the file."""
    decoded = _decode(data)
    cells = _Cells(ctx, (decoded.step,))
    if decoded.text.startswith("ID;"):
        yield from _scan_sylk(decoded.text, cells, ctx)
    else:
        yield from _scan_delimited(decoded.text, cells, ctx)


def scan_chunked(
    data: bytes, ctx: ScanContext, chunk_bytes: int = _CHUNK_BYTES
) -> Iterator[ScanItem]:
    """What scan_whole finds, reading `chunk_bytes` of the file at a time."""
    if len(data) <= chunk_bytes:
        # One chunk: decoded at once, as scan_whole decodes it.
        decoded = _decode(data)
        step = decoded.step
        head, pieces = decoded.text[:3], iter([(decoded.text, True)])
    else:
        encoding = _encoding(data, chunk_bytes, ctx)
        step = encoding.step
        head, pieces = _text_start(_pieces(data, encoding, chunk_bytes))
    cells = _Cells(ctx, (step,))
    if head == "ID;":
        yield from _chunked_sylk(pieces, cells, ctx)
    else:
        yield from _chunked_delimited(pieces, cells, ctx)


class CsvFormat:
    """Delimited text and SYLK: the permissive last resort of the registry."""

    format = FileFormat.CSV

    def identify(self, data: bytes, name: str) -> Confidence:
        return Confidence.UNSURE if data and _is_text(data) else Confidence.NO

    def scan(self, data: bytes, ctx: ScanContext) -> Iterator[ScanItem]:
        return scan_chunked(data, ctx)
