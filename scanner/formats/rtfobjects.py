"""Embedded OLE objects of RTF documents: `\\object` groups and their `\\objdata` (RTF 1.9.1,
"Objects").

An object's data is hex text: each pair of hex digits is one byte of an OLE 1.0 object
([MS-OLEDS] 2.2.4 ObjectHeader, then its native data). Word's reader is far more tolerant
than the specification, and malicious documents use every tolerance to hide the object from
scanners that follow the specification. The behaviour reproduced here is what oletools'
rtfobj documents from testing Word (decalage2/oletools, oletools/rtfobj.py, comments on its
RtfParser and RtfObjParser):

* whitespace, any control word or control symbol, and upper or lower case are accepted
  between the hex digits; characters that are not hex digits are ignored;
* a nested group whose text belongs to another destination is not object data: a group
  opened with `\\*` (`{\\*\\keycode ...}`) is skipped whole; a destination control word
  anywhere in a nested group sends the rest of that group elsewhere (issue_251.rtf's
  `{\\proptype\\staticval abc}` hides the hex-looking `abc` that way), and one at the level
  of `\\objdata` itself ends the object data;
* `\\objdata` is honoured anywhere in a group, not only right after its `{`;
* `\\binN` inserts N raw bytes into the data (a missing or negative N inserts none);
* a `\\'hh` inside the data is ignored, but Word first drops the last hex digit read if an
  odd number of digits has been read so far;
* an odd number of hex digits at the end: the last digit is dropped.

`\\objclass` only describes the object; Word trusts the class name inside the data, so a
missing or lying `\\objclass` changes nothing. `\\objupdate` asks Word to refresh the object
when the document opens, which starts the object's server with no click.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial

from scanner.equation import ObjectContext, scan_object_bytes
from scanner.errors import LimitExceeded
from scanner.formats.base import PartScan, ScanContext, ScanItem
from scanner.formats.embedded import embedded_documents
from scanner.formats.rtf_tokens import (
    MAX_WORD_LETTERS,
    TokenKind,
    find_group_end,
    find_group_end_reference,
    iter_tokens,
    may_hold_word,
    parse_param,
)
from scanner.model import Location

# Bounds against crafted files.
MAX_OBJECTS = 256
MAX_CLASS_CHARS = 256
MAX_OBJECT_GROUPS = 4096
_CHECK_EVERY = 4096

# Only what changes nesting or matters for objects: escaped braces and backslashes, \bin (its
# payload may hold anything) and braces, and the object control words.
_STRUCTURE = re.compile(
    rb"\\[\\{}]"
    rb"|\\bin(?![A-Za-z])(-?[0-9]+)? ?"
    rb"|\\(objdata|objclass|objupdate|object)(?![A-Za-z])(?:-?[0-9]+)? ?"
    rb"|([{}])"
)

# The tokens of iter_tokens, but a text run takes in line breaks (hex data is written in
# lines): a run of nothing but line breaks is no token at all, as for iter_tokens.
_DATA_TOKENS = re.compile(
    rb"([^\\{}]+)"  # 1: text and line breaks
    rb"|\\([A-Za-z]+)(-?[0-9]+)? ?"  # 2, 3: control word, parameter
    rb"|\\'([0-9A-Fa-f]{1,2})"  # 4: \'hh
    rb"|\\([^A-Za-z])"  # 5: control symbol
    rb"|(\{)"  # 6
    rb"|(\})"  # 7
    rb"|\\"  # a backslash as the last byte
)

_HEX_DIGITS = b"0123456789abcdefABCDEF"
_NOT_HEX = bytes(byte for byte in range(256) if byte not in _HEX_DIGITS)
_HEX_AND_SPACE = _HEX_DIGITS + b" \t\r\n\f\v"

# Destination control words (RTF 1.9.1, "Destinations" in its index of control words): text
# after one of them goes to that destination, not to the object data around it.
DESTINATION_WORDS: frozenset[str] = frozenset(
    {
        "aftncn", "aftnsep", "aftnsepc", "annotation", "atnauthor", "atndate", "atnid",
        "atnparent", "atnref", "atrfend", "atrfstart", "author", "background", "bkmkend",
        "bkmkstart", "blipuid", "buptim", "category", "colorschememapping", "colortbl",
        "comment", "company", "creatim", "datafield", "datastore", "defchp", "defpap", "do",
        "doccomm", "docvar", "dptxbxtext", "ebcend", "ebcstart", "factoidname", "falt",
        "fchars", "ffdeftext", "ffentrymcr", "ffexitmcr", "ffformat", "ffhelptext", "ffl",
        "ffname", "ffstattext", "field", "file", "filetbl", "fldinst", "fldrslt", "fldtype",
        "fontemb", "fonttbl", "footer", "footerf", "footerl", "footerr", "footnote",
        "formfield", "ftncn", "ftnsep", "ftnsepc", "g", "generator", "gridtbl", "header",
        "headerf", "headerl", "headerr", "hl", "hlfr", "hlinkbase", "hlloc", "hlsrc", "hsv",
        "info", "keywords", "latentstyles", "lchars", "levelnumbers", "leveltext",
        "lfolevel", "linkval", "list", "listlevel", "listname", "listoverride",
        "listoverridetable", "listpicture", "liststylename", "listtable", "listtext",
        "lsdlockedexcept", "mailmerge", "manager", "mmath", "mmathPict", "mmathPr",
        "mmconnectstr", "mmdatasource", "mmheadersource", "mmodso", "mmquery",
        "nesttableprops", "nonesttables", "objalias", "objclass", "object", "objname",
        "objsect", "oldcprops", "oldpprops", "oldsprops", "oldtprops", "oleclsid", "operator",
        "panose", "password", "passwordhash", "pgp", "pgptbl", "picprop", "pict", "pn",
        "pnseclvl", "pntext", "pntxta", "pntxtb", "printim", "propname", "protend",
        "protstart", "protusertbl", "result", "revtbl", "revtim", "rxe", "shp", "shpgrp",
        "shpinst", "shppict", "shprslt", "shptxt", "sn", "sp", "staticval", "stylesheet",
        "subject", "sv", "svb", "tc", "template", "themedata", "title", "txe", "ud", "upr",
        "userprops", "wgrffmtfilter", "windowcaption", "writereservation",
        "writereservhash", "xe", "xform", "xmlattrname", "xmlattrvalue", "xmlclose",
        "xmlname", "xmlnstbl", "xmlopen",
    }
)  # fmt: skip


@dataclass(frozen=True)
class RtfObject:
    """The data of one `\\objdata` as Word decodes it, with what the document says about it.

    `offset` is the byte offset of the `\\objdata` control word; `objclass` the declared
    `\\objclass` ("" when absent); `auto_update` whether the enclosing `\\object` carries
    `\\objupdate`; `steps` the decoding tricks met on the way, in plain words.
    """

    index: int
    offset: int
    data: bytes
    objclass: str = ""
    auto_update: bool = False
    in_object_group: bool = False
    steps: tuple[str, ...] = ()


@dataclass(frozen=True)
class RtfObjects:
    objects: tuple[RtfObject, ...]
    truncated: bool  # more than MAX_OBJECTS objects: the rest were not read


@dataclass
class _ObjectGroup:
    depth: int
    objclass: list[str] = field(default_factory=list)
    update: bool = False


@dataclass
class _Found:
    offset: int
    data: bytes
    group: _ObjectGroup | None
    steps: tuple[str, ...]


class _Decoder:
    """Decodes the rest of one `\\objdata` group, `data[start:end]`, the way Word does."""

    def __init__(
        self,
        data: bytes,
        start: int,
        end: int,
        check: Callable[[], None] | None,
        group_end: Callable[[bytes, int], tuple[int, bool]] = find_group_end,
    ):
        self.data = data
        self.group_end = group_end
        self.start = start
        self.end = end
        self.check = check
        self.digits = bytearray()
        self.words = 0
        self.symbols = 0
        self.skipped_groups: list[str] = []
        self.redirected_groups = 0
        self.binaries = 0
        self.binary_bytes = 0
        self.dropped_before_escape = 0
        self.non_hex = False
        self.ended_by: str = ""

    def _hex_escape(self) -> None:
        if len(self.digits) % 2:
            del self.digits[-1]
            self.dropped_before_escape += 1

    def run(self) -> None:
        """`run_reference`, with hex text taken a whole run at a time (line breaks and all)
        rather than token by token."""
        data, end = self.data, self.end
        check = self.check
        pos = self.start
        level = 0  # nesting inside the \objdata group
        fresh = False  # the previous token opened a group
        group_start = pos
        count = 0
        while pos < end:
            restart = False
            for match in _DATA_TOKENS.finditer(data, pos, end):
                index = match.lastindex
                if index == 1:
                    run = match.group(1)
                    if not run.strip(b"\r\n"):
                        continue  # line breaks only: no token
                    fresh = False
                    self.digits += run.translate(None, _NOT_HEX)
                    if not self.non_hex and run.translate(None, _HEX_AND_SPACE):
                        self.non_hex = True
                    continue
                if index is None:
                    continue
                count += 1
                if check is not None and count % _CHECK_EVERY == 0:
                    check()
                if index == 6:
                    level += 1
                    fresh = True
                    group_start = match.end()
                    continue
                opened, fresh = fresh, False
                if index == 7:
                    level = max(level - 1, 0)
                elif index == 4:
                    self._hex_escape()
                elif index == 5:
                    symbol = match.group(5)
                    if symbol == b"'":
                        self._hex_escape()
                    elif symbol == b"*" and opened and level > 0:
                        # {\*\keycode ...}: an ignorable destination, skipped whole.
                        pos, _ = self.group_end(data, group_start)
                        pos = min(pos, end)
                        self.skipped_groups.append(self._label(group_start))
                        level -= 1
                        restart = True
                        break
                    else:
                        self.symbols += 1
                else:
                    name = match.group(2)[:MAX_WORD_LETTERS].decode("ascii")
                    if name == "bin":
                        raw = match.group(3)
                        length = max(parse_param(raw), 0) if raw is not None else 0
                        pos = min(match.end() + length, end)
                        self.binaries += 1
                        self.binary_bytes += pos - match.end()
                        self.digits += data[match.end() : pos].hex().encode("ascii")
                        restart = True
                        break
                    if name in DESTINATION_WORDS:
                        if level == 0:
                            # A new destination at the level of \objdata ends the data.
                            self.ended_by = name
                            return
                        pos, _ = self.group_end(data, match.end())
                        pos = min(pos, end)
                        if opened:
                            self.skipped_groups.append(self._label(group_start))
                        else:
                            self.redirected_groups += 1
                        level -= 1
                        restart = True
                        break
                    self.words += 1
            if not restart:
                return

    def run_reference(self) -> None:
        """The decoding, token by token: the reference `run` is tested against."""
        data, end = self.data, self.end
        pos = self.start
        level = 0  # nesting inside the \objdata group
        fresh = False  # the previous token opened a group
        group_start = pos
        count = 0
        while pos < end:
            restart = False
            for token in iter_tokens(data, pos, end):
                count += 1
                if self.check is not None and count % _CHECK_EVERY == 0:
                    self.check()
                kind = token.kind
                if kind is TokenKind.GROUP_START:
                    level += 1
                    fresh = True
                    group_start = token.end
                    continue
                opened, fresh = fresh, False
                if kind is TokenKind.TEXT:
                    self.digits += token.data.translate(None, _NOT_HEX)
                    if token.data.translate(None, _HEX_AND_SPACE):
                        self.non_hex = True
                elif kind is TokenKind.GROUP_END:
                    level = max(level - 1, 0)
                elif kind is TokenKind.BINARY:
                    self.binaries += 1
                    self.binary_bytes += len(token.data)
                    self.digits += token.data.hex().encode("ascii")
                elif kind is TokenKind.HEX:
                    self._hex_escape()
                elif kind is TokenKind.SYMBOL:
                    if token.name == "'":
                        self._hex_escape()
                    elif token.name == "*" and opened and level > 0:
                        # {\*\keycode ...}: an ignorable destination, skipped whole.
                        pos, _ = self.group_end(data, group_start)
                        pos = min(pos, end)
                        self.skipped_groups.append(self._label(group_start))
                        level -= 1
                        restart = True
                        break
                    else:
                        self.symbols += 1
                elif kind is TokenKind.WORD:
                    if token.name in DESTINATION_WORDS:
                        if level == 0:
                            # A new destination at the level of \objdata ends the data.
                            self.ended_by = token.name
                            return
                        pos, _ = self.group_end(data, token.end)
                        pos = min(pos, end)
                        if opened:
                            self.skipped_groups.append(self._label(group_start))
                        else:
                            self.redirected_groups += 1
                        level -= 1
                        restart = True
                        break
                    self.words += 1
            if not restart:
                return

    def _label(self, group_start: int) -> str:
        head = self.data[group_start : group_start + 24]
        match = re.match(rb"[\r\n]*(\\\*)?[\r\n]*\\([A-Za-z]{1,32})", head)
        if match is None:
            return "{...}"
        star = "\\*" if match.group(1) else ""
        return "{" + star + "\\" + match.group(2).decode("ascii") + "}"

    def result(self) -> tuple[bytes, tuple[str, ...]]:
        steps: list[str] = []
        if self.words or self.symbols:
            steps.append(
                f"{self.words + self.symbols} control word(s) inside the hex data ignored, "
                "as Word does"
            )
        if self.skipped_groups:
            names = ", ".join(sorted(set(self.skipped_groups)))
            steps.append(
                f"{len(self.skipped_groups)} junk group(s) inside the hex data skipped ({names})"
            )
        if self.redirected_groups:
            steps.append(
                f"{self.redirected_groups} nested group(s) cut at a destination control word "
                "(their text is not object data)"
            )
        if self.binaries:
            steps.append(
                f"{self.binaries} \\bin run(s) inside the hex data: {self.binary_bytes} raw "
                "byte(s) taken as object data"
            )
        if self.dropped_before_escape:
            steps.append(
                f"\\'hh inside the hex data: Word's reader dropped an odd hex digit before it "
                f"({self.dropped_before_escape} time(s))"
            )
        if self.non_hex:
            steps.append("characters that are not hex digits ignored inside the hex data")
        if self.ended_by:
            steps.append(f"the object data ends at the destination word \\{self.ended_by}")
        if len(self.digits) % 2:
            del self.digits[-1]
            steps.append("odd number of hex digits: the last digit dropped, as Word does")
        return bytes.fromhex(self.digits.decode("ascii")), tuple(steps)


def _class_text(data: bytes, start: int, end: int) -> str:
    """The text of an `\\objclass` destination: plain text and \\'hh bytes, words ignored."""
    pieces: list[str] = []
    size = 0
    for token in iter_tokens(data, start, end):
        if token.kind is not TokenKind.TEXT and token.kind is not TokenKind.HEX:
            continue
        piece = token.data.decode("cp1252", "replace")
        pieces.append(piece)
        size += len(piece)
        if size >= MAX_CLASS_CHARS:
            break
    return "".join(pieces)[:MAX_CLASS_CHARS].strip()


def extract_objects(
    data: bytes, check: Callable[[], None] | None = None, *, fast: bool = True
) -> RtfObjects:
    """Every `\\objdata` of an RTF document, decoded as Word decodes it, in document order.

    `fast`: first ask `may_hold_word` whether the document holds a `\\objdata` control word
    at all (a text that only mentions it, like the RTF specification, is not read); False
    reads every document the long way, token by token (the reference the fast paths are
    tested against).
    """
    if fast and not may_hold_word(data, "objdata", check):
        return RtfObjects((), False)
    group_end = find_group_end if fast else find_group_end_reference
    found: list[_Found] = []
    groups: list[_ObjectGroup] = []
    depth = 0
    pos = 0
    size = len(data)
    count = 0
    truncated = False
    while pos < size:
        restart = False
        for match in _STRUCTURE.finditer(data, pos):
            count += 1
            if check is not None and count % _CHECK_EVERY == 0:
                check()
            brace = match.group(3)
            if brace == b"{":
                depth += 1
                continue
            if brace == b"}":
                depth = max(depth - 1, 0)
                while groups and groups[-1].depth > depth:
                    groups.pop()
                continue
            word = match.group(2)
            if word is None:
                if match.group(0).startswith(b"\\bin"):
                    raw = match.group(1)
                    length = max(parse_param(raw), 0) if raw is not None else 0
                    pos = min(match.end() + length, size)
                    restart = True
                    break
                continue  # an escaped brace or backslash
            if word == b"object":
                if len(groups) < MAX_OBJECT_GROUPS:
                    groups.append(_ObjectGroup(depth))
            elif word == b"objupdate":
                if groups:
                    groups[-1].update = True
            elif word in (b"objclass", b"objdata"):
                end, closed = group_end(data, match.end())
                content_end = end - 1 if closed else end
                group = groups[-1] if groups else None
                if word == b"objclass":
                    if group is not None:
                        group.objclass.append(_class_text(data, match.end(), content_end))
                elif len(found) >= MAX_OBJECTS:
                    truncated = True
                else:
                    decoder = _Decoder(data, match.end(), content_end, check, group_end)
                    if fast:
                        decoder.run()
                    else:
                        decoder.run_reference()
                    decoded, steps = decoder.result()
                    if not _at_group_start(data, match.start()):
                        steps = ("\\objdata is not the first word of its group", *steps)
                    if not closed:
                        steps = (*steps, "the document ends before the object data's group")
                    found.append(_Found(match.start(), decoded, group, steps))
                pos = end
                if closed:
                    depth = max(depth - 1, 0)
                    while groups and groups[-1].depth > depth:
                        groups.pop()
                restart = True
                break
        if not restart:
            break
    objects = tuple(
        RtfObject(
            index=number,
            offset=item.offset,
            data=item.data,
            objclass=" ".join(text for text in item.group.objclass if text)
            if item.group is not None
            else "",
            auto_update=item.group.update if item.group is not None else False,
            in_object_group=item.group is not None,
            steps=item.steps,
        )
        for number, item in enumerate(found, start=1)
    )
    return RtfObjects(objects, truncated)


def _at_group_start(data: bytes, offset: int) -> bool:
    """Is the control word at `offset` the first of its group (after an optional \\*)?"""
    head = data[max(0, offset - 8) : offset]
    return re.search(rb"\{[\r\n]*(?:\\\*[\r\n ]*)?$", head) is not None


def _trigger(obj: RtfObject) -> str:
    if obj.auto_update:
        return (
            "as soon as Word opens the document, because the object asks to be refreshed "
            "on open (\\objupdate)"
        )
    return "when the user activates the object or Word refreshes it"


def _scan_one(obj: RtfObject, ctx: ScanContext, location: Location) -> Iterator[ScanItem]:
    steps = list(obj.steps)
    if not obj.in_object_group:
        steps.insert(0, "\\objdata outside any \\object group")
    context = ObjectContext(
        trigger=_trigger(obj),
        declared_class=obj.objclass,
        declared_what="\\objclass",
        steps=tuple(steps),
        ole1=True,
    )
    # Two parts: a damaged storage that defeats one reader must not hide the other.
    yield PartScan(location, partial(scan_object_bytes, obj.data, ctx, location, context))
    yield PartScan(
        location,
        partial(embedded_documents, obj.data, location.child(f"object {obj.index}"), ctx, True),
    )


def rtf_object_scans(data: bytes, ctx: ScanContext) -> Iterator[ScanItem]:
    """The embedded objects of an RTF document, each in a PartScan of its own.

    Objects are read whether or not the document has fields; a document with no
    `\\objdata` control word costs a few substring searches.
    """

    def run() -> Iterator[ScanItem]:
        found = extract_objects(data, ctx.check_time)
        for obj in found.objects:
            location = ctx.location.at(f"object {obj.index} (\\objdata at byte {obj.offset})")
            yield PartScan(location, partial(_scan_one, obj, ctx, location))
        if found.truncated:
            raise LimitExceeded(
                f"more than {MAX_OBJECTS} embedded objects in one RTF document; "
                "the rest not inspected"
            )

    yield PartScan(ctx.location, run)
