"""RTF documents (Rich Text Format Specification 1.9.1): Word fields, DDE included.

Word opens RTF and evaluates its fields like those of any other document, so a
`{\\field{\\*\\fldinst DDEAUTO ...}}` in an .rtf runs a program just as in a .docx. Attackers
hide the keyword and the command with RTF escapes (`\\'44`, `\\u68?`), split them across nested
groups and formatting words, or nest QUOTE fields in the instruction; the reader in
rtf_tokens undoes the RTF layer and this module rebuilds the field tree (RTF 1.9.1,
"Fields"): instruction text pieces with nested fields in place, result text, dirty flag. The
field-code layer (QUOTE/SET/REF, field escapes, DDE arguments) is scanner.fields' job.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterator
from typing import NamedTuple

from scanner.errors import LimitExceeded
from scanner.fields import findings_for_stories
from scanner.formats.base import ScanContext, ScanItem
from scanner.formats.rtf_tokens import EventKind, Focus, RtfReader
from scanner.formats.rtfobjects import rtf_object_scans
from scanner.model import (
    Confidence,
    FieldNode,
    FieldStory,
    FileFormat,
    HostApplication,
    Location,
)
from scanner.streams import field_streams

# Word reads a file as RTF when it starts with "{\rt" (the "f1" is not checked); leading
# whitespace and a UTF-8 byte-order mark are passed over.
_HEADER = re.compile(rb"(?:\xef\xbb\xbf|[ \t\r\n\f\v])*\{\\rt")

# Bounds against crafted files. Fields nested deeper than MAX_FIELD_NESTING in one another's
# instructions are listed as fields of their own (still evaluated, never dropped); past
# MAX_FIELDS the scan stops collecting and reports the limit.
MAX_FIELD_NESTING = 48
MAX_FIELDS = 100_000
MAX_FRAMES = 4096
_TRUNCATED = (
    f"RTF document with more than {MAX_FIELDS} fields or with fields nested more than "
    f"{MAX_FRAMES // 2} deep; the rest was not inspected"
)

# Destinations that cannot hold a live field: skipped unread (RTF 1.9.1 header tables,
# document information, pictures and object data, bookmarks, form-field data, list
# numbering text, shape property names and values, and Word 2007+ binary blobs).
_SKIPPED: frozenset[str] = frozenset(
    {
        "fonttbl",
        "colortbl",
        "stylesheet",
        "info",
        "pict",
        "nonshppict",
        "objdata",
        "datastore",
        "themedata",
        "colorschememapping",
        "latentstyles",
        "lsdlockedexcept",
        "listtable",
        "listoverridetable",
        "listpicture",
        "listtext",
        "pntext",
        "pntxta",
        "pntxtb",
        "rsidtbl",
        "generator",
        "xmlnstbl",
        "bkmkstart",
        "bkmkend",
        "filetbl",
        "revtbl",
        "pgdsctbl",
        "panose",
        "falt",
        "fontemb",
        "fontfile",
        "blipuid",
        "docvar",
        "wgrffmtfilter",
        "passwordhash",
        "protusertbl",
        "mmathPr",
        "defchp",
        "defpap",
        "pgptbl",
        "userprops",
        "oleclsid",
        "datafield",
        "fldtype",
        "ffname",
        "ffdeftext",
        "ffformat",
        "ffhelptext",
        "ffstattext",
        "ffentrymcr",
        "ffexitmcr",
        "ffl",
        "atnid",
        "atnauthor",
        "atndate",
        "atnref",
        "atnparent",
        "atrfstart",
        "atrfend",
        "sn",
        "sv",
        "factoidname",
        "xmlattrname",
        "xmlattrvalue",
        "xmlname",
        "fchars",
        "lchars",
        "template",
        "keycode",
        "objclass",
        "objname",
        "objalias",
        "objsect",
        "objtime",
        "bookmark",
    }
)

# Destinations whose text is a story of its own: fields in them are found and labelled.
_STORIES: dict[str, str] = {
    "header": "header",
    "headerl": "header",
    "headerr": "header",
    "headerf": "header",
    "footer": "footer",
    "footerl": "footer",
    "footerr": "footer",
    "footerf": "footer",
    "footnote": "footnote",
    "annotation": "comment",
    "shptxt": "text box",
    "dptxbxtext": "text box",
    "ftnsep": "note separator",
    "ftnsepc": "note separator",
    "ftncn": "note separator",
    "aftnsep": "note separator",
    "aftnsepc": "note separator",
    "aftncn": "note separator",
    "background": "background",
}

# Other destinations (RTF 1.9.1): their text goes somewhere else, never into the text of
# the group around them, but they are scanned for fields.
_OTHER_DESTINATIONS: frozenset[str] = frozenset(
    {
        "object",
        "result",
        "shp",
        "shpgrp",
        "shpinst",
        "shprslt",
        "shppict",
        "sp",
        "do",
        "formfield",
        "xe",
        "tc",
        "txe",
        "rxe",
        "bxe",
        "pxe",
        "comment",
        "mailmerge",
        "mmconnectstr",
        "mmquery",
        "mmdatasource",
        "mmheadersource",
        "mmodso",
        "mmodsofilter",
        "mmodsofldmpdata",
        "mmodsoname",
        "mmodsorecipdata",
        "mmodsosort",
        "mmodsoudl",
        "mmodsomappedname",
        "mmmailsubject",
        "mmaddfieldname",
        "atnicn",
        "atntime",
        "gridtbl",
        "nesttableprops",
        "nonesttables",
        "listname",
        "liststylename",
        "leveltext",
        "levelnumbers",
        "hlinkbase",
        "hl",
        "hlfr",
        "hlloc",
        "hlsrc",
        "linkval",
        "pn",
        "pnseclvl",
        "private",
        "svb",
        "upr",
        "ud",
        "xform",
        "ebcstart",
        "ebcend",
        "g",
        "mmath",
        "oldcprops",
        "oldpprops",
        "oldsprops",
        "oldtprops",
        "picprop",
        "bkmkpub",
    }
)

_FIELD_WORDS = frozenset({"field", "fldinst", "fldrslt"})
_FOCUS = Focus(
    words=frozenset({*_FIELD_WORDS, "flddirty"}),
    destinations=frozenset(
        {*_SKIPPED, *_STORIES, *_OTHER_DESTINATIONS, *_FIELD_WORDS, "upr", "ud"}
    ),
)


class _Role(enum.Enum):
    BODY = "body"  # text that is not part of any field (ignored)
    FIELD = "field"  # inside a \field group, outside its instruction and result
    INSTRUCTION = "instruction"
    RESULT = "result"
    ELSEWHERE = "elsewhere"  # a destination whose text does not reach the enclosing field
    # \upr: its plain text is the ANSI copy of its \ud part, which alone is read (as the
    # text of the group around the \upr).
    UPR = "upr"


class _Builder:
    """A field being read; turned into a frozen FieldNode when its group closes."""

    __slots__ = ("dirty", "index", "level", "offset", "parent", "pieces", "result", "story")

    def __init__(
        self, index: int, offset: int, story: str, parent: _Builder | None, level: int
    ) -> None:
        self.index = index
        self.offset = offset
        self.story = story
        self.parent = parent
        self.level = level
        self.dirty = False
        self.pieces: list[str | FieldNode] = []
        self.result: list[str] = []

    def node(self) -> FieldNode:
        instruction: list[str | FieldNode] = []
        text: list[str] = []
        for piece in self.pieces:
            if isinstance(piece, str):
                text.append(piece)
                continue
            if text:
                instruction.append("".join(text))
                text.clear()
            instruction.append(piece)
        if text:
            instruction.append("".join(text))
        where = f" in {self.story}" if self.story else ""
        return FieldNode(
            instruction=tuple(instruction),
            result="".join(self.result),
            detail=f"field {self.index}{where} at byte {self.offset}",
            dirty=self.dirty,
        )


class _Frame(NamedTuple):
    """A group that changed where text goes. Plain formatting groups push no frame."""

    depth: int
    role: _Role
    builder: _Builder | None
    story: str
    owns_builder: bool = False  # the builder's field ends when this group ends
    outer: _Frame | None = None  # UPR: the frame its \ud part writes to


class _Extraction(NamedTuple):
    fields: tuple[FieldNode, ...]
    truncated: bool


def _extract(data: bytes, check: Callable[[], None] | None, *, sparse: bool = True) -> _Extraction:
    reader = RtfReader(data, check)
    reader.allow_sparse = sparse
    frames: list[_Frame] = [_Frame(0, _Role.BODY, None, "")]
    top_level: list[tuple[int, FieldNode]] = []
    count = 0
    truncated = False
    # Outside instructions and results only the structure matters: no text is decoded and
    # only the words that start or flag a field are reported besides destinations.
    reader.want_text = False
    reader.focus = _FOCUS
    # Outside every instruction and result, a destination only matters for the fields
    # inside it, so a group with no field word may be passed over whole. Not inside one:
    # there, the \ud part of a \upr group sends its text back to the instruction or result.
    reader.inert_groups = True
    text_frames = 0  # instruction and result frames on the stack

    def push(frame: _Frame) -> None:
        nonlocal truncated, text_frames
        if len(frames) < MAX_FRAMES:
            frames.append(frame)
            role = frame.role
            if role is _Role.INSTRUCTION or role is _Role.RESULT:
                reader.want_text = True
                text_frames += 1
                reader.inert_groups = False
            else:
                reader.want_text = False
        elif frame.owns_builder:
            truncated = True  # a field nested past every bound: say so rather than drop it

    def pop() -> _Frame:
        nonlocal text_frames
        frame = frames.pop()
        role = frames[-1].role
        reader.want_text = role is _Role.INSTRUCTION or role is _Role.RESULT
        role = frame.role
        if role is _Role.INSTRUCTION or role is _Role.RESULT:
            text_frames -= 1
            reader.inert_groups = text_frames == 0
        return frame

    def start_field(offset: int, depth: int, as_instruction: bool) -> None:
        nonlocal count, truncated
        top = frames[-1]
        if count >= MAX_FIELDS:
            truncated = True
            push(_Frame(depth, _Role.ELSEWHERE, None, top.story))
            return
        count += 1
        parent = top.builder if top.role is _Role.INSTRUCTION else None
        level = parent.level + 1 if parent is not None else 0
        if level > MAX_FIELD_NESTING:
            parent, level = None, 0
        builder = _Builder(count, offset, top.story, parent, level)
        role = _Role.INSTRUCTION if as_instruction else _Role.FIELD
        push(_Frame(depth, role, builder, top.story, owns_builder=True))

    for event in reader.events():
        kind = event.kind
        if kind is EventKind.TEXT:
            top = frames[-1]
            if top.builder is not None:
                if top.role is _Role.INSTRUCTION:
                    top.builder.pieces.append(event.text)
                elif top.role is _Role.RESULT:
                    top.builder.result.append(event.text)
        elif kind is EventKind.GROUP_END:
            top = frames[-1]
            if top.depth == event.depth and len(frames) > 1:
                pop()
                if top.owns_builder and top.builder is not None:
                    builder = top.builder
                    node = builder.node()
                    if builder.parent is not None:
                        builder.parent.pieces.append(node)
                    else:
                        top_level.append((builder.index, node))
        elif kind is EventKind.CONTROL:
            name = event.name
            top = frames[-1]
            own = top.depth == event.depth
            if name in _FIELD_WORDS:
                # Word-written RTF puts these first in their group; they are honoured
                # anywhere in a group that has no role yet (over-reporting beats missing).
                if name == "field":
                    if not own:
                        start_field(event.offset, event.depth, as_instruction=False)
                elif own and top.role is _Role.FIELD:
                    role = _Role.INSTRUCTION if name == "fldinst" else _Role.RESULT
                    frames.pop()
                    push(top._replace(role=role))
                elif own:
                    pass
                elif top.role is _Role.FIELD:
                    role = _Role.INSTRUCTION if name == "fldinst" else _Role.RESULT
                    push(_Frame(event.depth, role, top.builder, top.story))
                elif name == "fldinst":
                    # An instruction with no \field around it: read as a field of its own.
                    start_field(event.offset, event.depth, as_instruction=True)
                else:
                    push(_Frame(event.depth, _Role.ELSEWHERE, None, top.story))
            elif name == "flddirty":
                if own and top.owns_builder and top.builder is not None:
                    top.builder.dirty = True
            elif not event.leading or own:
                continue
            elif name in _SKIPPED:
                reader.skip_group()
            elif name in _STORIES:
                push(_Frame(event.depth, _Role.ELSEWHERE, None, _STORIES[name]))
            elif name == "upr":
                push(_Frame(event.depth, _Role.UPR, None, top.story, outer=top))
            elif name == "ud" and top.role is _Role.UPR and top.outer is not None:
                outer = top.outer
                push(_Frame(event.depth, outer.role, outer.builder, outer.story))
            elif event.ignorable or name in _OTHER_DESTINATIONS:
                # Includes unknown \* destinations: Word drops their text, but a field in
                # one is still reported.
                push(_Frame(event.depth, _Role.ELSEWHERE, None, top.story))

    top_level.sort(key=lambda item: item[0])
    return _Extraction(tuple(node for _, node in top_level), truncated)


def extract_field_stories(
    data: bytes, location: Location, check: Callable[[], None] | None = None
) -> tuple[FieldStory, ...]:
    """The fields of an RTF document as one story at `location`, in document order.

    Fields in headers, footers, notes, comments and text boxes are included (their detail
    names the story), and so are fields inside another field's result. Raises LimitExceeded
    when the document holds more than MAX_FIELDS fields or nests them past every bound.
    """
    extraction = _extract(data, check)
    if extraction.truncated:
        raise LimitExceeded(_TRUNCATED)
    return (FieldStory(location=location, fields=extraction.fields),)


class RtfFormat:
    format = FileFormat.RTF

    def identify(self, data: bytes, name: str) -> Confidence:
        return Confidence.YES if _HEADER.match(data) else Confidence.NO

    def scan(self, data: bytes, ctx: ScanContext) -> Iterator[ScanItem]:
        yield from rtf_object_scans(data, ctx)  # embedded objects, with or without fields
        if b"fldinst" not in data:
            return
        extraction = _extract(data, ctx.check_time)
        story = FieldStory(location=ctx.location, fields=extraction.fields)
        host = ctx.host or HostApplication.WORD
        yield from findings_for_stories((story,), host, ctx.config)
        yield from field_streams((story,))
        if extraction.truncated:
            # Raised after the findings so that what was read is still reported.
            raise LimitExceeded(_TRUNCATED)
