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
"""

from __future__ import annotations

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


def _scan_delimited(text: str, cells: _Cells, ctx: ScanContext) -> Iterator[ScanItem]:
    lines = _LINE_BREAK.split(text)
    start = 0
    splitters = [_SPLITTERS[delimiter] for delimiter in _DELIMITERS]
    steps_for = {s.delimiter: (f"fields split on {s.name}",) for s in splitters}
    sep = _SEP_LINE.fullmatch(lines[0]) if lines else None
    if sep is not None:
        splitter = _SPLITTERS.get(sep.group(1)) or _splitter(sep.group(1))
        splitters = [splitter]
        start = 1
        steps_for = {
            splitter.delimiter: (
                f"first line sep={splitter.delimiter}: fields split on {splitter.name}",
            )
        }
    for first, record in _records(lines, start, ctx):
        if _RELEVANT.search(record) is None or _STARTER.search(record) is None:
            continue
        if record.isascii() and '"' not in record and not may_hold_remote_reference(record):
            # Its fields are plain substrings that need no folding: none can hold a
            # reference if the whole record cannot.
            continue
        # Splitters that cut a record the same way (one without any of their delimiters)
        # give the same field: it is read once.
        read: set[tuple[int, int, str]] = set()
        for splitter in splitters:
            for line_offset, column, value in _formula_fields(record, splitter, ctx):
                if (line_offset, column, value) in read:
                    continue
                read.add((line_offset, column, value))
                detail = f"row {first + line_offset + 1}, column {column}"
                yield from cells.findings(value, detail, steps_for[splitter.delimiter], True)


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


def _scan_sylk(text: str, cells: _Cells, ctx: ScanContext) -> Iterator[ScanItem]:
    row = column = 0
    for number, record in enumerate(_LINE_BREAK.split(text)):
        if number % _CHECK_EVERY == 0:
            ctx.check_time()
        if not record.startswith(("C;", "F;", "NN;")):
            continue
        fields = _sylk_fields(record)
        kind = fields[0]
        expression: str | None = None
        name = ""
        for field in fields[1:]:
            code, value = field[:1], field[1:]
            # isdigit() alone also accepts digits int() refuses (superscript two, "²"); a
            # row or column number has at most 7 digits, and int() refuses past 4300.
            number_value = value.isascii() and value.isdigit() and len(value) <= 9
            if kind in ("C", "F") and code == "X" and number_value:
                column = int(value)
            elif kind in ("C", "F") and code == "Y" and number_value:
                row = int(value)
            elif kind in ("C", "NN") and code == "E":
                expression = value
            elif kind == "NN" and code == "N":
                name = value
        if expression is None:
            continue
        detail = f'name "{name}"' if kind == "NN" else f"R{row}C{column}"
        yield from cells.findings(expression, detail, ("SYLK",), False)


class CsvFormat:
    """Delimited text and SYLK: the permissive last resort of the registry."""

    format = FileFormat.CSV

    def identify(self, data: bytes, name: str) -> Confidence:
        return Confidence.UNSURE if data and _is_text(data) else Confidence.NO

    def scan(self, data: bytes, ctx: ScanContext) -> Iterator[ScanItem]:
        decoded = _decode(data)
        cells = _Cells(ctx, (decoded.step,))
        if decoded.text.startswith("ID;"):
            yield from _scan_sylk(decoded.text, cells, ctx)
        else:
            yield from _scan_delimited(decoded.text, cells, ctx)
