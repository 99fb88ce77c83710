"""RTF lexing and group walking (Rich Text Format Specification 1.9.1).

Two layers, both general (fields today, \\objdata and other destinations later):

* `iter_tokens` is the lexer: groups, control words, control symbols, `\\'hh` bytes, raw text
  runs and `\\binN` payloads, each with its byte offsets. It keeps no state beyond skipping
  `\\bin` data.
* `RtfReader` walks the token stream the way an RTF reader does: it scopes character state
  to groups with an explicit stack (no recursion, bounded depth), decodes text through the
  document and font code pages, applies `\\uN` with the `\\ucN` fallback skip, maps the
  character control words (`\\tab`, `\\lquote`, ...) to their characters, and marks the
  control word that opens a group (the destination) and whether `\\*` made it ignorable.
  A consumer that does not care about a group calls `skip_group()` and the reader jumps to
  the group's end instead of decoding it.

Everything works on bytes with compiled regexes: one `finditer` alternation yields whole text
runs, so the cost is per token, never per character. A focused walk (see RtfReader) lets the
regex engine pass over the tokens that cannot matter, and skipped groups are crossed with
`bytes.find` from brace to brace (`find_group_end`), so picture and object data is never
lexed; each fast path has a token-by-token reference it is tested against.
"""

from __future__ import annotations

import codecs
import enum
import functools
import re
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple, TypeAlias

# The RTF specification caps a control word at 32 characters and says a reader "must handle
# an arbitrary string of digits as a legal value". Word reads past both (oletools' rtfobj notes
# control words of about 250 characters and zero-padded \bin parameters of up to 250 digits
# being accepted), so the lexer consumes the whole letter run and the whole digit run as one
# control word, never leaving letters or digits behind as text, and truncates what it keeps:
# the name to 32 letters (no real keyword is longer, so an over-long name is an unknown,
# ignored word) and the parameter to its first 10 significant digits (a 32-bit value has no
# more), which also keeps int() clear of Python's limit on huge digit strings. Where exactly
# Word cuts an over-long run has not been checked against Word itself.
MAX_WORD_LETTERS = 32
MAX_PARAM_DIGITS = 10

# Groups deeper than this share the state of the deepest tracked group: the nesting counter
# stays exact (so group ends still match) but the state stack cannot grow without bound.
MAX_TRACKED_DEPTH = 4096

# How many tokens pass between two calls of the reader's time check.
_CHECK_EVERY = 4096

DEFAULT_CODEC = "cp1252"

_TOKEN_PATTERN = (
    rb"([^\\{}\r\n]+)"  # 1: a run of plain text
    rb"|\\([A-Za-z]+)(-?[0-9]+)? ?"  # 2, 3: control word, parameter, one delimiting space
    rb"|\\'([0-9A-Fa-f]{1,2})"  # 4: \'hh
    rb"|\\([^A-Za-z])"  # 5: control symbol (any other byte, line breaks included)
    rb"|(\{)"  # 6
    rb"|(\})"  # 7
    rb"|[\r\n]+"  # bare CR and LF are ignored (RTF 1.9.1, "RTF Syntax")
    rb"|\\"  # a backslash as the last byte of the input
)
_LEXER = re.compile(_TOKEN_PATTERN)

# Only what changes group nesting: escaped braces and backslashes, \bin (its payload may hold
# anything), and the braces themselves. Everything else is passed over inside the regex engine.
_STRUCTURE = re.compile(rb"\\[\\{}]|\\bin(?![A-Za-z])(-?[0-9]+)? ?|([{}])")
_BIN_WORD = re.compile(rb"\\bin(?![A-Za-z])(-?[0-9]+)? ?")


class TokenKind(enum.Enum):
    GROUP_START = "group-start"
    GROUP_END = "group-end"
    WORD = "word"
    SYMBOL = "symbol"
    HEX = "hex"
    TEXT = "text"
    BINARY = "binary"


class Token(NamedTuple):
    """One lexical item. `start`/`end` are byte offsets into the input.

    WORD: `name` (at most MAX_WORD_LETTERS letters) and `param` (None when absent).
    SYMBOL: `name` is the one character after the backslash.
    HEX: `data` is the one byte. TEXT: `data` is the raw run (no CR/LF, braces, backslashes).
    BINARY: `\\binN`; `param` is N as written, `data` the payload (cut at the end of input).
    """

    kind: TokenKind
    start: int
    end: int
    name: str = ""
    param: int | None = None
    data: bytes = b""


def parse_param(raw: bytes) -> int:
    """The value of a control word parameter, leading zeros ignored, MAX_PARAM_DIGITS kept."""
    negative = raw.startswith(b"-")
    digits = (raw[1:] if negative else raw).lstrip(b"0")[:MAX_PARAM_DIGITS]
    value = int(digits) if digits else 0
    return -value if negative else value


def iter_tokens(data: bytes, start: int = 0, end: int | None = None) -> Iterator[Token]:
    """Lex `data[start:end]` into tokens, in order. Never raises on any input."""
    stop = len(data) if end is None else max(0, min(end, len(data)))
    pos = start
    while pos < stop:
        for match in _LEXER.finditer(data, pos, stop):
            index = match.lastindex
            if index == 1:
                yield Token(TokenKind.TEXT, match.start(), match.end(), data=match.group(1))
            elif index == 2 or index == 3:
                name = match.group(2)[:MAX_WORD_LETTERS].decode("ascii")
                raw_param = match.group(3)
                param = None if raw_param is None else parse_param(raw_param)
                if name == "bin":
                    # \binN: N raw bytes follow the delimiter (RTF 1.9.1, "Pictures"/\bin).
                    # A missing or negative N carries no payload.
                    payload_end = min(match.end() + max(param or 0, 0), stop)
                    yield Token(
                        TokenKind.BINARY,
                        match.start(),
                        payload_end,
                        name,
                        param,
                        data[match.end() : payload_end],
                    )
                    pos = payload_end
                    break
                yield Token(TokenKind.WORD, match.start(), match.end(), name, param)
            elif index == 4:
                yield Token(
                    TokenKind.HEX,
                    match.start(),
                    match.end(),
                    data=bytes((int(match.group(4), 16),)),
                )
            elif index == 5:
                yield Token(
                    TokenKind.SYMBOL,
                    match.start(),
                    match.end(),
                    match.group(5).decode("latin-1"),
                )
            elif index == 6:
                yield Token(TokenKind.GROUP_START, match.start(), match.end())
            elif index == 7:
                yield Token(TokenKind.GROUP_END, match.start(), match.end())
            # index None: ignored line breaks or a trailing backslash.
        else:
            return


def find_group_end(data: bytes, pos: int) -> tuple[int, bool]:
    """Where the group open at `pos` ends: (offset just past its `}`, True), or
    (len(data), False) when the input ends first.

    Agrees with `iter_tokens` on what is structure: escaped braces are text and `\\bin`
    payloads are skipped unread, so a crafted payload cannot unbalance the walk. `pos` is
    taken to be where a token starts.

    Only braces and `\\bin` matter, and `bytes.find` jumps to each (picture and object data
    between them is never looked at from Python). Whether a brace or a `\\bin` is escaped
    follows from the run of backslashes just before it: from a token start, such a run lexes
    as `\\\\` pairs, so an odd run escapes what follows it (a `\\bin` written right
    after an odd run is text). `find_group_end_reference` is the token-by-token definition.
    """
    size = len(data)
    find = data.find
    base = max(pos, 0)  # a token start: runs of backslashes are counted back to here
    depth = 1
    # The next "}", and the next "{" and "\\bin" before it (-1: none before it). Each search
    # starts where the last one of its kind stopped, so the whole walk reads the input once.
    close = find(b"}", base)
    if close < 0:
        return size, False
    opening = find(b"{", base, close)
    binary = find(b"\\bin", base, close)
    while True:
        if binary >= 0 and (opening < 0 or binary < opening):
            at = binary
            payload_end = _bin_payload_end(data, at, base)
            if payload_end < 0:
                binary = find(b"\\bin", at + 1, close)
                continue
            base = payload_end
            if close < base:
                close = find(b"}", base)
                if close < 0:
                    return size, False
            opening = find(b"{", base, close)
            binary = find(b"\\bin", base, close)
            continue
        if opening >= 0:
            at = opening
            opening = find(b"{", at + 1, close)
        else:
            at = close
            close = find(b"}", at + 1)
            if close >= 0:
                opening = find(b"{", at + 1, close)
                binary = find(b"\\bin", at + 1, close)
        # \\{ and \\} are text.
        if not (at > base and data[at - 1] == 92 and _escaped(data, at, base)):
            if data[at] == 123:
                depth += 1
            else:
                depth -= 1
                if depth == 0:
                    return at + 1, True
        if close < 0:
            return size, False  # no "}" left: the group cannot close


def _bin_payload_end(data: bytes, at: int, base: int) -> int:
    """Where the payload of the `\\bin` word at `at` ends (it is skipped unread), lexing
    from the token start `base`; -1 when the bytes there are not that control word."""
    match = None if _escaped(data, at, base) else _BIN_WORD.match(data, at)
    if match is None:
        return -1
    raw = match.group(1)
    length = max(parse_param(raw), 0) if raw is not None else 0
    return min(match.end() + length, len(data))


def _escaped(data: bytes, at: int, base: int) -> bool:
    """Is the byte at `at` the second of a control symbol (`\\{`, `\\}`, `\\\\`), lexing
    from the token start `base`? Only when an odd run of backslashes comes right before it."""
    run = at
    while run > base and data[run - 1] == 92:
        run -= 1
    return (at - run) % 2 == 1


def open_groups(
    data: bytes,
    start: int,
    stop: int,
    max_open: int,
    check: Callable[[], None] | None = None,
    *,
    first_only: bool = False,
) -> tuple[list[int], int]:
    """Lex the structure of `data` from the token start `start` towards `stop`, as
    `find_group_end` does: the offsets of the "{" still open where the walk ended (a "}"
    that closes a group opened before `start` is passed over) and that end, `reached`.

    Every group start in [start, reached) is either listed or closed before `reached`.
    `reached` is `stop`, or past it when a `\\bin` payload crosses it, or the "{" that would
    have made more than `max_open` groups open (the walk stops there), or the input's end.
    `first_only`: `start` is a "{"; stop just past its "}" if it comes first (then nothing
    is listed).
    """
    size = len(data)
    find = data.find
    base = max(start, 0)  # a token start: runs of backslashes are counted back to here
    stop = min(stop, size)
    opened: list[int] = []
    countdown = _CHECK_EVERY
    # As in find_group_end: the next "}" (or `stop`), and the next "{" and "\\bin" before it.
    close = find(b"}", base, stop)
    if close < 0:
        close = stop
    opening = find(b"{", base, close)
    binary = find(b"\\bin", base, close)
    while True:
        countdown -= 1
        if countdown == 0:
            countdown = _CHECK_EVERY
            if check is not None:
                check()
        if binary >= 0 and (opening < 0 or binary < opening):
            at = binary
            payload_end = _bin_payload_end(data, at, base)
            if payload_end < 0:
                binary = find(b"\\bin", at + 1, close)
                continue
            base = payload_end
            if base >= stop:
                return opened, base
            if close < base:
                close = find(b"}", base, stop)
                if close < 0:
                    close = stop
            opening = find(b"{", base, close)
            binary = find(b"\\bin", base, close)
            continue
        if opening >= 0:
            at = opening
            opening = find(b"{", at + 1, close)
            if not _escaped(data, at, base):
                if len(opened) >= max_open:
                    return opened, at
                opened.append(at)
            continue
        at = close
        if at >= stop:
            return opened, stop
        close = find(b"}", at + 1, stop)
        if close < 0:
            close = stop
        opening = find(b"{", at + 1, close)
        binary = find(b"\\bin", at + 1, close)
        if opened and not _escaped(data, at, base):
            opened.pop()
            if first_only and not opened:
                return opened, at + 1


def _first_word_at(
    data: bytes, needle: bytes, start: int, stop: int, check: Callable[[], None] | None
) -> int:
    """The first offset in [start, stop) where `needle` (a backslash and a control word's
    letters) lexes as that control word, counting backslash runs from the token start
    `start`; -1 if none. Exact only while no `\\bin` payload lies between `start` and it."""
    find = data.find
    end = len(needle)
    countdown = _CHECK_EVERY
    at = find(needle, start)
    while 0 <= at < stop:
        countdown -= 1
        if countdown == 0:
            countdown = _CHECK_EVERY
            if check is not None:
                check()
        run = at
        while run > start and data[run - 1] == 92:
            run -= 1
        follower = data[at + end : at + end + 1]
        if (at - run) % 2 == 0 and not follower.isalpha():
            return at
        at = find(needle, at + 1)
    return -1


def may_hold_word(data: bytes, name: str, check: Callable[[], None] | None = None) -> bool:
    """Could lexing `data` from its start yield the control word `name`? False only when
    certain, at the cost of a few substring searches: the text "\\\\objdata" (an escaped
    backslash, then letters) or "\\objdatax" is no `\\objdata`.

    Sound because, from a token start, a run of backslashes lexes as `\\\\` pairs: the
    backslash of an occurrence starts a token exactly when an even number of backslashes
    comes right before it. Only a `\\bin` payload can shift that; so when a real `\\bin`
    comes before the last occurrence, the answer is True.
    """
    needle = b"\\" + name.encode("ascii")
    last = data.rfind(needle)
    if last < 0:
        return False
    if _first_word_at(data, needle, 0, len(data), check) >= 0:
        return True
    return _first_word_at(data, b"\\bin", 0, last, check) >= 0


def find_group_end_reference(data: bytes, pos: int) -> tuple[int, bool]:
    """`find_group_end` token by token, with one regex: the reference the fast version is
    tested against."""
    depth = 1
    size = len(data)
    while pos < size:
        for match in _STRUCTURE.finditer(data, pos):
            brace = match.group(2)
            if brace == b"{":
                depth += 1
            elif brace == b"}":
                depth -= 1
                if depth == 0:
                    return match.end(), True
            elif match.group(0).startswith(b"\\bin"):
                raw = match.group(1)
                length = max(parse_param(raw), 0) if raw is not None else 0
                pos = min(match.end() + length, size)
                break
        else:
            return size, False
    return size, False


# Character-set numbers of \fcharsetN (RTF 1.9.1, "Font Table") to Python codecs. Charsets
# with no single code page (1 default, 2 symbol, 3 invalid) fall back to the document's.
_CHARSET_CODECS: dict[int, str] = {
    0: "cp1252",
    77: "mac_roman",
    78: "shift_jis",
    79: "euc_kr",
    80: "gb2312",
    81: "big5",
    84: "mac_arabic",
    85: "mac_greek",
    86: "mac_turkish",
    88: "mac_latin2",
    89: "mac_cyrillic",
    128: "cp932",
    129: "cp949",
    130: "johab",
    134: "gbk",
    136: "cp950",
    161: "cp1253",
    162: "cp1254",
    163: "cp1258",
    177: "cp1255",
    178: "cp1256",
    186: "cp1257",
    204: "cp1251",
    222: "cp874",
    238: "cp1250",
    254: "cp437",
    255: "cp850",
}

# Code pages (\ansicpgN, \cpgN) whose Python codec is not simply "cpN".
_CODEPAGE_CODECS: dict[int, str] = {
    10000: "mac_roman",
    10004: "mac_arabic",
    10006: "mac_greek",
    10007: "mac_cyrillic",
    10029: "mac_latin2",
    10079: "mac_iceland",
    10081: "mac_turkish",
    20127: "ascii",
    20866: "koi8_r",
    21866: "koi8_u",
    28591: "latin_1",
    28592: "iso8859_2",
    28595: "iso8859_5",
    28597: "iso8859_7",
    28599: "iso8859_9",
    65001: "utf-8",
}


def codec_for_codepage(codepage: int) -> str | None:
    """The Python codec for a Windows code page number, or None if Python has none."""
    name = _CODEPAGE_CODECS.get(codepage, f"cp{codepage}")
    try:
        info = codecs.lookup(name)
    except LookupError:
        return None
    # UTF-16/32 cannot appear as RTF bytes; a document claiming them is decoded as default.
    return None if info.name.startswith(("utf-16", "utf-32")) else info.name


def codec_for_charset(charset: int) -> str | None:
    return _CHARSET_CODECS.get(charset)


# Control words that stand for one character (RTF 1.9.1, "Special Characters").
SPECIAL_WORDS: dict[str, str] = {
    "par": "\n",
    "sect": "\n",
    "line": "\v",
    "softline": "\v",
    "page": "\f",
    "column": "\n",
    "tab": "\t",
    "emdash": "\u2014",
    "endash": "\u2013",
    "emspace": "\u2003",
    "enspace": "\u2002",
    "qmspace": "\u2005",
    "bullet": "\u2022",
    "lquote": "\u2018",
    "rquote": "\u2019",
    "ldblquote": "\u201c",
    "rdblquote": "\u201d",
    "zwj": "\u200d",
    "zwnj": "\u200c",
    "zwbo": "\u200b",
    "zwnbo": "\ufeff",
    "ltrmark": "\u200e",
    "rtlmark": "\u200f",
}

# Control symbols that stand for one character. "\\\n" and "\\\r" are \par.
SPECIAL_SYMBOLS: dict[str, str] = {
    "\\": "\\",
    "{": "{",
    "}": "}",
    "~": "\u00a0",
    "-": "\u00ad",
    "_": "\u2011",
    ":": ":",
    "\n": "\n",
    "\r": "\n",
}

_SURROGATE = re.compile("[\ud800-\udfff]")


def _join_surrogates(text: str) -> str:
    """Pair up UTF-16 surrogates written as two \\uN words; lone ones become U+FFFD."""
    if not _SURROGATE.search(text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


_CHARSET_WORDS: dict[str, str] = {
    "ansi": "cp1252",
    "mac": "mac_roman",
    "pc": "cp437",
    "pca": "cp850",
}


class EventKind(enum.Enum):
    GROUP_START = "group-start"
    GROUP_END = "group-end"
    CONTROL = "control"
    TEXT = "text"
    BINARY = "binary"


class Event(NamedTuple):
    """One step of the walk.

    `depth` is the nesting depth of the group the event belongs to (1 for the document group;
    GROUP_START and GROUP_END carry the depth of the group they open or close) and `offset`
    the byte offset of the token (for TEXT, of its first piece).
    CONTROL: a control word (or a control symbol that stands for no character) with `name`
    and `param`; `leading` when it is the first control word of its group, possibly after
    `\\*`: the group's destination (RTF 1.9.1: "destination changes are legal only
    immediately after an opening brace"); `ignorable` when that `\\*` is there.
    TEXT: decoded `text`; the text of one run may arrive in several events.
    BINARY: a `\\binN` payload in `data`, N in `param`.
    """

    kind: EventKind
    offset: int
    depth: int
    name: str = ""
    param: int | None = None
    text: str = ""
    data: bytes = b""
    leading: bool = False
    ignorable: bool = False


class Focus(NamedTuple):
    """What a consumer of RtfReader wants to hear about (see RtfReader.focus).

    `words`: control words reported wherever they appear. `destinations`: control words
    reported when they open a group (every `\\*` destination is reported too).
    """

    words: frozenset[str] = frozenset()
    destinations: frozenset[str] = frozenset()


# The character state a group restores when it ends: (uc, font, fonttbl, watched). A plain
# tuple: one is made per group, and a NamedTuple's constructor is Python code.
_GroupState = tuple[int, int, bool, bool]


# For each lexer group number: the group whose start, less the given count, is where the
# token starts (a control word's name follows "\\", a \\'hh's digits follow "\\'").
_TOKEN_START = ((0, 0), (1, 0), (2, 1), (2, 1), (4, 2), (5, 1), (6, 0), (7, 0))


_Trie: TypeAlias = "dict[int, _Trie]"


def _alternation(names: Iterable[str]) -> bytes:
    """A regex matching exactly the given names, as a trie: the engine tries one branch per
    letter instead of every name in turn (the destination list has some two hundred)."""
    trie: _Trie = {}
    for name in set(names):
        node = trie
        for byte in name.encode("ascii"):
            node = node.setdefault(byte, {})
        node[-1] = {}  # a name ends here

    def emit(node: _Trie) -> bytes:
        branches = [
            re.escape(bytes((byte,))) + emit(child)
            for byte, child in sorted(node.items())
            if byte >= 0
        ]
        if not branches:
            return b""
        body = branches[0] if len(branches) == 1 else b"(?:" + b"|".join(branches) + b")"
        return b"(?:" + body + b")?" if -1 in node else body

    return emit(trie)


# Put after a backslash: the control it starts may be the first of its group, reached with
# nothing but "{", "\\*" and line breaks before it. Such a control must reach the lexer
# proper, which tracks that; one preceded by anything else may be passed over. Fixed-width
# lookbehinds see up to two line breaks; behind more, the control is taken as possibly first
# (it is then lexed, never skipped).
_NOT_FIRST = rb"(?:(?<![{*\r\n]\\)|(?<=[^{*\r\n][\r\n]\\)|(?<=[^{*\r\n][\r\n][\r\n]\\))"

# After a backslash: the control symbols that stand for a character (SPECIAL_SYMBOLS). They
# are never reported as controls.
_CHARACTER_SYMBOL = rb"[\\{}~\-_:\r\n]"

# After a backslash: the rest of a control word, name and parameter.
_WORD_REST = rb"[A-Za-z]++(?:-?[0-9]++)?+ ?+"


def _sparse_lexer(focus: Focus) -> re.Pattern[bytes]:
    return _structure_lexer(focus.words, focus.destinations)


# Compiled once per focus (the readers of a process use one or two): building and compiling
# this pattern costs a few milliseconds, more than lexing a small document.
@functools.lru_cache(maxsize=8)
def _structure_lexer(
    focus_words: frozenset[str], destinations: frozenset[str]
) -> re.Pattern[bytes]:
    """The lexer, preceded by a possessive skip over whole tokens that cannot matter when
    text is not wanted, so that the regex engine, not Python, passes over them:

    * text runs, \\'hh, and control symbols that stand for a character;
    * other control symbols (but \\*) and control words that neither change the reader's
      state nor are focus words, unless they may be the first of their group (see
      `_NOT_FIRST`): a group's leading control always reaches the lexer proper;
    * whole groups with no group inside whose leading word is no focus destination and
      that hold no \\*-destination, \\bin, focus word or document-wide state word: all
      character state is scoped to its group, so such a group changes nothing outside.

    Only whole tokens are skipped, so token boundaries, and every reported event, are
    those of the full lexer. (Groups with groups inside are passed over from Python, see
    RtfReader.inert_groups.)
    """
    words = _alternation({*_STATE_WORDS, "bin", "u", *focus_words})
    blocking = _alternation({*_GLOBAL_WORDS, "bin", *focus_words})
    leading = _alternation({*destinations, *focus_words, "bin", *_GLOBAL_WORDS})
    group = (
        rb"\{(?![\r\n]*\\\*)[\r\n]*(?!\\" + leading + rb"(?![A-Za-z]))"
        rb"(?:[^\\{}]++|\\(?:(?!" + blocking + rb"(?![A-Za-z]))" + _WORD_REST + rb"|[^A-Za-z]))*+"
        rb"\}"
    )
    # The alternatives after a backslash come most frequent first.
    after_backslash = (
        _NOT_FIRST + rb"(?!" + words + rb"(?![A-Za-z]))" + _WORD_REST,
        rb"'[0-9A-Fa-f]{1,2}+",
        _CHARACTER_SYMBOL,
        _NOT_FIRST + rb"[^A-Za-z*]",
    )
    skip = rb"[^\\{}]++|\\(?:" + b"|".join(after_backslash) + rb")|" + group
    # "\Z": when nothing but skippable tokens is left, match them all at once rather than
    # let finditer retry from every later position.
    return re.compile(rb"(?:" + skip + rb")*+(?:" + _TOKEN_PATTERN + rb"|\Z)")


@functools.lru_cache(maxsize=8)
def _blocking_words(focus: Focus) -> re.Pattern[bytes]:
    """What keeps a group from being inert: a focus word or a document-wide state word."""
    return re.compile(rb"\\" + _alternation({*focus.words, *_GLOBAL_WORDS}) + rb"(?![A-Za-z])")


class RtfReader:
    """Walks an RTF byte string group by group; see `events`.

    `check` is called every few thousand tokens (pass ScanContext.check_time).

    By default every group, control word and piece of text is reported. A consumer that
    needs less sets `focus` (then only the control words it names are reported, and
    GROUP_END only for groups in which something was reported; GROUP_START never) and
    `want_text` (False: text is neither decoded nor reported). Both may be changed while
    iterating, e.g. to read text only inside the destinations of interest. When text is not
    wanted and a focus is set, the reader passes over everything else inside the regex
    engine; the reported events are the same as with a full walk (`allow_sparse = False`).
    Pieces of text that only unreported group boundaries separate arrive as one TEXT event.

    `inert_groups` (also changeable while iterating) says that the consumer cares about
    destinations only as the context of focus words: then, when text is not wanted, a group
    that holds no focus word and no document-wide state word at any depth is passed over
    unreported, destinations and all (all character state is scoped to its group, so the
    walk after it is unchanged), by jumping from brace to brace with `bytes.find`.
    """

    def __init__(self, data: bytes, check: Callable[[], None] | None = None) -> None:
        self._data = data
        self._check = check
        self._skip_requested = False
        self._base_codec = DEFAULT_CODEC
        self._ansicpg_codec: str | None = None
        self._default_font = -1
        self._font_codecs: dict[int, str] = {}
        self._focus: Focus | None = None
        self._sparse: re.Pattern[bytes] | None = None
        self.inert_groups = False
        self._inert_until = -1  # groups starting before this are known inert or not
        self._inert_open: frozenset[int] | None = frozenset()  # ... but these (None: all)
        self._blocked_at = -1  # the first blocking word at or after some offset
        self.want_text = True
        self.allow_sparse = True

    @property
    def focus(self) -> Focus | None:
        return self._focus

    @focus.setter
    def focus(self, focus: Focus | None) -> None:
        self._focus = focus
        self._sparse = None if focus is None else _sparse_lexer(focus)
        self._inert_until = -1
        self._blocked_at = -1

    def _inert_group_end(self, start: int) -> int:
        """Where the group opening at `start` ends, if it may be passed over whole (see
        RtfReader.inert_groups); else -1.

        A group is inert when it closes before the next blocking word (a focus word or a
        document-wide state word, found as a substring: an escaped one only costs a missed
        skip). The brace walk that finds a group holding that word goes on to it and keeps
        the groups still open there: they hold it too, and every other group that starts
        before it closes before it. So no walk is repeated but for inert groups, once each
        (the document is walked about twice at most).
        """
        data = self._data
        if start < self._inert_until:
            if self._inert_open is None or start in self._inert_open:
                return -1
            end, closed = find_group_end(data, start + 1)
            return end if closed else -1
        blocked = self._blocked_at
        if blocked < start:
            assert self._focus is not None
            found = _blocking_words(self._focus).search(data, start)
            blocked = self._blocked_at = len(data) if found is None else found.start()
        if data.find(b"}", start, blocked) < 0:
            # No "}" before the blocking word: every group opened up to it holds it.
            self._inert_open = None
            self._inert_until = blocked
            return -1
        opened, reached = open_groups(
            data, start, blocked, MAX_TRACKED_DEPTH, self._check, first_only=True
        )
        if not opened:
            return reached  # closed before the blocking word
        self._inert_open = frozenset(opened)
        self._inert_until = reached
        return -1

    @property
    def codec(self) -> str:
        """The document code page's codec (\\ansicpgN, else \\ansi / \\mac / \\pc / \\pca)."""
        return self._ansicpg_codec or self._base_codec

    def skip_group(self) -> None:
        """Skip the rest of the current group; its GROUP_END event is still delivered.

        Call it while handling a GROUP_START or CONTROL event; the reader then moves past
        the group's closing brace without decoding it (a font table is still read, silently,
        for its code pages).
        """
        self._skip_requested = True

    def _codec_for(self, font: int) -> str:
        if font < 0:
            font = self._default_font
        return self._font_codecs.get(font) or self.codec

    def _sparse_now(
        self, skip: int, suppress_depth: int, fonttbl: bool
    ) -> re.Pattern[bytes] | None:
        """The structure-only lexer, when it may be used from here on: only with a focus and
        no text wanted, and not while \\uN fallback characters are counted, nor in a font
        table (there a `\\fN` in a group sets the font that a later `\\fcharsetN`
        describes, so no group may be passed over)."""
        if self.want_text or skip or suppress_depth or fonttbl or not self.allow_sparse:
            return None
        return self._sparse

    def events(self) -> Iterator[Event]:
        """The walk, in document order. Unclosed groups are closed at the end of input."""
        data = self._data
        size = len(data)
        check = self._check
        special_words = SPECIAL_WORDS
        special_symbols = SPECIAL_SYMBOLS
        hex_bytes = _HEX_BYTES
        token_start = _TOKEN_START
        names: dict[bytes, str] = {}

        stack: list[_GroupState] = []
        depth = 0
        uc = 1
        font = -1
        fonttbl = False
        fonttbl_font = -1
        watched = False  # something was reported in the current group
        skip = 0  # \uN fallback characters still to drop
        fresh = False  # nothing but \* and line breaks since the last "{"
        star = False  # \* seen since the last "{"
        suppress_depth = 0  # > 0: inside a skipped font table, read but do not report
        pending_bytes: list[bytes] = []  # text not yet decoded
        pending_text: list[str] = []  # text decoded, not yet reported
        pending_offset = -1
        sealed: list[str] = []  # finished pieces of text, not yet reported
        sealed_offset = -1
        countdown = _CHECK_EVERY

        def take_text() -> str:
            # Skipped \uN fallback bytes never get here, so what is pending decodes as one
            # run (a double-byte character may span two \'hh).
            nonlocal pending_offset
            if pending_bytes:
                pending_text.append(
                    b"".join(pending_bytes).decode(self._codec_for(font), "replace")
                )
                pending_bytes.clear()
            text = _join_surrogates("".join(pending_text))
            pending_text.clear()
            pending_offset = -1
            return text

        def seal() -> None:
            # What is pending becomes a finished piece of text (decoded, surrogates paired),
            # reported with the next event: group boundaries that are not reported do not
            # split TEXT events, but no character is ever made across them.
            nonlocal sealed_offset
            offset = pending_offset
            text = take_text()
            if text:
                if not sealed:
                    sealed_offset = offset
                sealed.append(text)

        pos = 0
        lexer = self._sparse_now(0, 0, False) or _LEXER
        while pos < size:
            resume = -1
            skipping = False
            for match in lexer.finditer(data, pos):
                if check is not None:
                    countdown -= 1
                    if countdown == 0:
                        countdown = _CHECK_EVERY
                        check()
                index = match.lastindex
                if index is None:
                    continue  # line breaks; a backslash ending the input
                if fresh and lexer is not _LEXER:
                    group, back = token_start[index]
                    passed = data[match.start() : match.start(group) - back]
                    if passed.strip(b"\r\n"):
                        # The sparse lexer passed over something other than line breaks: the
                        # next control word does not open its group.
                        fresh = False
                if index == 1:
                    raw = match.group(1)
                    if skip:
                        # RTF 1.9.1 \ucN: after \uN, the next N characters are its fallback;
                        # a text byte, a \'hh, a control word or symbol, or a whole \bin each
                        # count as one, and a brace ends the fallback early.
                        if len(raw) <= skip:
                            skip -= len(raw)
                            if (
                                not skip
                                and self._sparse_now(0, suppress_depth, fonttbl) is not None
                            ):
                                resume = match.end()
                                break
                            continue
                        raw = raw[skip:]
                        skip = 0
                    fresh = False
                    if self.want_text and not suppress_depth:
                        if pending_offset < 0:
                            pending_offset = match.end() - len(raw)
                        pending_bytes.append(raw)
                    continue

                name = ""
                param: int | None = None
                char: str | None = None
                if index == 2 or index == 3:
                    raw = match.group(2)
                    cached = names.get(raw)
                    if cached is None:
                        cached = raw[:MAX_WORD_LETTERS].decode("ascii")
                        if len(names) < 4096:
                            names[raw] = cached
                    name = cached
                    if index == 3:
                        raw = match.group(3)
                        param = int(raw) if len(raw) < MAX_PARAM_DIGITS else parse_param(raw)
                    if name == "bin":
                        # \binN: N raw bytes follow the delimiter; bounded by the input.
                        resume = min(match.end() + max(param or 0, 0), size)
                        if skip:
                            skip -= 1
                            break
                        fresh = False
                        focus = self._focus
                        if not suppress_depth and (focus is None or "bin" in focus.words):
                            if pending_offset >= 0:
                                seal()
                            if sealed:
                                text = "".join(sealed)
                                sealed.clear()
                                yield Event(EventKind.TEXT, sealed_offset, depth, text=text)
                            yield Event(
                                EventKind.BINARY,
                                match.start(2) - 1,
                                depth,
                                name=name,
                                param=param,
                                data=data[match.end() : resume],
                            )
                        break
                    if skip:
                        skip -= 1
                        if not skip and self._sparse_now(0, suppress_depth, fonttbl) is not None:
                            resume = match.end()
                            break
                        continue
                    char = special_words.get(name)
                    if name == "u" and param is not None:
                        # \uN is a signed 16-bit UTF-16 unit (negative N means N + 65536);
                        # larger values are cut to 16 bits, as a WCHAR assignment would.
                        value = param & 0xFFFF
                        char = chr(value) if value else ""
                elif index == 4 or index == 5:
                    if skip:
                        skip -= 1
                        if not skip and self._sparse_now(0, suppress_depth, fonttbl) is not None:
                            resume = match.end()
                            break
                        continue
                    if index == 4:
                        fresh = False
                        if self.want_text and not suppress_depth:
                            if pending_offset < 0:
                                pending_offset = match.start(4) - 2
                            pending_bytes.append(hex_bytes[match.group(4)])
                        continue
                    name = match.group(5).decode("latin-1")
                    char = special_symbols.get(name)
                    if char is None and name == "*":
                        star = True
                        continue
                elif index == 6:
                    skip = 0
                    star = False
                    fresh = True
                    if pending_offset >= 0:
                        seal()
                    if lexer is self._sparse and self.inert_groups:
                        end = self._inert_group_end(match.start(6))
                        if end >= 0:
                            # Nothing in the group is reported and nothing in it outlives it.
                            fresh = False
                            resume = end
                            break
                    depth += 1
                    if depth <= MAX_TRACKED_DEPTH:
                        stack.append((uc, font, fonttbl, watched))
                    watched = False
                    if not suppress_depth and self._focus is None:
                        if sealed:
                            text = "".join(sealed)
                            sealed.clear()
                            yield Event(EventKind.TEXT, sealed_offset, depth - 1, text=text)
                        self._skip_requested = False
                        yield Event(EventKind.GROUP_START, match.start(6), depth)
                        if self._skip_requested:
                            resume = match.end()
                            skipping = True
                            break
                        if self._sparse_now(skip, suppress_depth, fonttbl) is not (
                            None if lexer is _LEXER else lexer
                        ):
                            resume = match.end()
                            break
                    continue
                else:
                    restarted = skip != 0
                    skip = 0
                    star = False
                    fresh = False
                    if depth == 0:
                        continue  # a "}" with no group open: ignored
                    if pending_offset >= 0:
                        seal()
                    reported = False
                    if not suppress_depth or suppress_depth == depth:
                        reported = suppress_depth != 0
                        suppress_depth = 0
                        if self._focus is None or watched or depth > MAX_TRACKED_DEPTH:
                            reported = True
                            if sealed:
                                text = "".join(sealed)
                                sealed.clear()
                                yield Event(EventKind.TEXT, sealed_offset, depth, text=text)
                            yield Event(EventKind.GROUP_END, match.start(7), depth)
                    if fonttbl:
                        restarted = True  # a font table may end here
                    if depth <= MAX_TRACKED_DEPTH:
                        uc, font, fonttbl, watched = stack.pop()
                    depth -= 1
                    if (reported or restarted) and self._sparse_now(
                        0, suppress_depth, fonttbl
                    ) is not (None if lexer is _LEXER else lexer):
                        resume = match.end()
                        break
                    continue

                if char is not None:
                    fresh = False
                    if name == "u":
                        skip = uc
                    if self.want_text and not suppress_depth:
                        if pending_offset < 0:
                            group, back = token_start[index]
                            pending_offset = match.start(group) - back
                        if pending_bytes:
                            pending_text.append(
                                b"".join(pending_bytes).decode(self._codec_for(font), "replace")
                            )
                            pending_bytes.clear()
                        pending_text.append(char)
                    if skip and lexer is not _LEXER:
                        # The fallback is counted token by token: only the full lexer can.
                        resume = match.end()
                        break
                    continue

                leading = fresh
                ignorable = leading and star
                fresh = False
                if index != 5:
                    if name in _STATE_WORDS:
                        if pending_bytes:
                            # The code page may change: decode what came before first.
                            pending_text.append(
                                b"".join(pending_bytes).decode(self._codec_for(font), "replace")
                            )
                            pending_bytes.clear()
                        if name == "uc":
                            if param is not None and param >= 0:
                                uc = param
                        elif name == "f":
                            if param is not None:
                                if fonttbl:
                                    fonttbl_font = param
                                else:
                                    font = param
                        elif name == "fcharset":
                            if fonttbl and param is not None:
                                charset_codec = codec_for_charset(param)
                                if charset_codec and fonttbl_font not in self._font_codecs:
                                    self._font_codecs[fonttbl_font] = charset_codec
                        elif name == "cpg":
                            if fonttbl and param is not None:
                                page_codec = codec_for_codepage(param)
                                if page_codec:
                                    # \cpgN names the font's code page outright: it wins.
                                    self._font_codecs[fonttbl_font] = page_codec
                        elif name == "fonttbl":
                            fonttbl = True
                            fonttbl_font = -1
                        elif name == "ansicpg":
                            if param is not None:
                                self._ansicpg_codec = codec_for_codepage(param)
                        elif name == "deff":
                            if param is not None:
                                self._default_font = param
                        else:
                            self._base_codec = _CHARSET_WORDS[name]
                    elif name == "u":
                        continue  # \u with no number: neither a character nor reported
                if suppress_depth:
                    continue
                focus = self._focus
                if focus is not None and not (
                    name in focus.words or (leading and (ignorable or name in focus.destinations))
                ):
                    if fonttbl and lexer is not _LEXER:
                        resume = match.end()  # a font table starts: read it token by token
                        break
                    continue
                watched = True
                if pending_offset >= 0:
                    seal()
                if sealed:
                    text = "".join(sealed)
                    sealed.clear()
                    yield Event(EventKind.TEXT, sealed_offset, depth, text=text)
                self._skip_requested = False
                group, back = token_start[index]
                yield Event(
                    EventKind.CONTROL,
                    match.start(group) - back,
                    depth,
                    name=name,
                    param=param,
                    leading=leading,
                    ignorable=ignorable,
                )
                if self._skip_requested and depth > 0:
                    if fonttbl:
                        # Read on, silently: the font table carries the code pages.
                        suppress_depth = depth
                    else:
                        skipping = True
                    resume = match.end()
                    break
                if self._sparse_now(skip, suppress_depth, fonttbl) is not (
                    None if lexer is _LEXER else lexer
                ):
                    resume = match.end()
                    break
            else:
                break  # the input is exhausted

            if skipping:
                # The consumer skipped the current group: jump past its closing brace.
                self._skip_requested = False
                if self.allow_sparse:
                    resume, closed = find_group_end(data, resume)
                else:
                    resume, closed = find_group_end_reference(data, resume)
                yield Event(EventKind.GROUP_END, resume - 1 if closed else resume, depth)
                if depth <= MAX_TRACKED_DEPTH:
                    uc, font, fonttbl, watched = stack.pop()
                depth -= 1
                skip = 0
                fresh = False
            pos = resume
            lexer = self._sparse_now(skip, suppress_depth, fonttbl) or _LEXER

        if pending_offset >= 0:
            seal()
        if sealed and not suppress_depth:
            yield Event(EventKind.TEXT, sealed_offset, depth, text="".join(sealed))
        while depth > 0:
            if not suppress_depth or suppress_depth == depth:
                suppress_depth = 0
                if self._focus is None or watched or depth > MAX_TRACKED_DEPTH:
                    yield Event(EventKind.GROUP_END, size, depth)
            if depth <= MAX_TRACKED_DEPTH and stack:
                watched = stack.pop()[3]
            depth -= 1


# Words that change how text is decoded, handled by the reader itself; the global ones
# outlive their group.
_GLOBAL_WORDS: frozenset[str] = frozenset({"ansicpg", "deff", "fcharset", "cpg", *_CHARSET_WORDS})
_STATE_WORDS: frozenset[str] = frozenset({"uc", "f", "fonttbl", *_GLOBAL_WORDS})

_HEX_BYTES: dict[bytes, bytes] = {
    bytes(f"{high}{low}", "ascii"): bytes((int(high + low, 16),))
    for high in "0123456789abcdefABCDEF"
    for low in ("", *"0123456789abcdefABCDEF")
}
