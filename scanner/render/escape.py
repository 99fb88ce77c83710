"""Make hostile payload text safe for the place it is written to.

Everything a document holds is attacker-chosen: a DDE command line can carry terminal
escape sequences (ESC [2J clears the analyst's screen, OSC 52 writes the clipboard), bidi
overrides that make `exe.txt` read as `txt.exe` (Trojan Source, CVE-2021-42574), or
newlines that forge extra result lines for a mail filter parsing clamscan-style output.
Each function here turns such text into something that shows what is there without letting
it act.

Backslashes are deliberately left alone in `visible`: DDE payloads are full of Windows
paths, and doubling every backslash would make the evidence unreadable. An analyst can
tell a real escape from a literal `\\x1b` in a path by the JSON output, which is exact.
"""

from __future__ import annotations

import unicodedata

# Unicode general categories that never belong on a terminal raw: controls (C0, DEL, C1),
# format characters (bidi embeddings/overrides/isolates U+202A-E, U+2066-9, LRM/RLM,
# zero-width characters, BOM, tag characters), line/paragraph separators, and lone
# surrogates (undecodable bytes carried as surrogateescape).
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})

_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def is_unsafe(char: str) -> bool:
    """Would this character act on (rather than show on) a terminal or a log line?"""
    return unicodedata.category(char) in _UNSAFE_CATEGORIES


def _escape_char(char: str) -> str:
    short = _SHORT_ESCAPES.get(char)
    if short is not None:
        return short
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def visible(text: str) -> str:
    """The text with every control, format and separator character shown as an escape.

    ESC becomes `\\x1b`, a C1 CSI `\\x9b`, RIGHT-TO-LEFT OVERRIDE `\\u202e`, a newline
    `\\n`: the result is one line and carries no byte that a terminal would act on.
    """
    if all(not is_unsafe(char) for char in text):
        return text
    return "".join(_escape_char(char) if is_unsafe(char) else char for char in text)


def escape_mail_header(text: str, max_length: int = 200) -> str:
    """A header field body that is printable ASCII only, one line, at most `max_length` long.

    Non-ASCII characters are written as `\\uXXXX` escapes rather than RFC 2047 encoded
    words: the value is for filters and analysts to read, and an encoded word could be
    decoded back into the hostile characters by the mail client. Truncation never splits
    an escape and ends in "..." so a cut value is recognisable.
    """
    if max_length < 4:
        raise ValueError("max_length must be at least 4")
    pieces: list[str] = []
    length = 0
    ellipsis = "..."
    for char in text:
        if " " <= char <= "~":
            piece = char
        elif char in _SHORT_ESCAPES:
            piece = _SHORT_ESCAPES[char]
        else:
            piece = _escape_char(char)
        if length + len(piece) > max_length:
            while pieces and length + len(ellipsis) > max_length:
                length -= len(pieces.pop())
            return "".join(pieces) + ellipsis
        pieces.append(piece)
        length += len(piece)
    return "".join(pieces)


_KQL_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def kql_string_literal(text: str) -> str:
    """A double-quoted Kusto string literal whose value is exactly `text`.

    Kusto Query Language, "The string data type" (learn.microsoft.com/kusto/query/
    scalar-data-types/string): in a quoted literal the backslash escapes the enclosing
    quote, tab (\\t), newline (\\n) and itself (\\\\), and newline and return must not
    appear raw. Every other control or format character (bidi overrides, zero-width
    characters) is written as a `\\uXXXX` escape, which the Kusto lexer decodes
    (Kusto.Language KustoFacts.DecodeEscapes), so the pasted query shows what it matches.
    """
    parts = ['"']
    for char in text:
        escape = _KQL_ESCAPES.get(char)
        if escape is not None:
            parts.append(escape)
        elif is_unsafe(char):
            code = ord(char)
            if code > 0xFFFF:
                # Outside the BMP: write the UTF-16 surrogate pair, as C#-style \u does.
                code -= 0x10000
                parts.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
            else:
                parts.append(f"\\u{code:04x}")
        else:
            parts.append(char)
    parts.append('"')
    return "".join(parts)


# Spreadsheet programs treat a cell that starts with one of these as a formula (OWASP,
# "CSV Injection"); tab and CR are stripped by some importers and expose the next
# character. The full-width forms are included because some locales' Excel accepts them.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def csv_cell(text: str) -> str:
    """A CSV cell value that a spreadsheet will show as text, never evaluate.

    A leading formula character gets a `'` in front, which Excel and LibreOffice read as
    "this cell is text". Quoting the cell for the CSV syntax is left to the csv module.
    """
    if text.startswith(_FORMULA_PREFIXES):
        return "'" + text
    return text
