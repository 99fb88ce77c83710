"""WordprocessingML (ECMA-376 Part 1, 17): rebuild every field of every story part.

Complex fields are a run-level state machine (17.16.18 fldChar): a `begin` mark opens a
field, `w:instrText` runs carry its instruction, `separate` switches to the cached result
and `end` closes it. The marks may sit in runs at any depth (inside w:ins, w:sdt,
w:hyperlink, w:smartTag, w:customXml, w:moveTo...), so the walk follows document order over
all descendants instead of direct children. Simple fields (17.16.19 fldSimple) carry their
instruction in an attribute.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from lxml import etree

from scanner.fields import findings_for_stories
from scanner.formats.base import PartScan, ScanContext, ScanItem
from scanner.formats.package import Package, parse_xml
from scanner.model import (
    EmbeddedDocument,
    FieldNode,
    FieldStory,
    HostApplication,
    Location,
)
from scanner.streams import DecodedStream, StreamLabel, field_streams

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
W_STRICT = "{http://purl.oclc.org/ooxml/wordprocessingml/main}"
# WordprocessingML 2003 (Word 2003 XML): same local names for the field markup.
W_2003 = "{http://schemas.microsoft.com/office/word/2003/wordml}"
MC = "{http://schemas.openxmlformats.org/markup-compatibility/2006}"
REL_AF_CHUNK = (
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships/aFChunk",
    "http://purl.oclc.org/ooxml/officeDocument/relationships/aFChunk",
)

# Namespace prefixes Word 2010+ understands in mc:Choice/@Requires ([MS-OE376], [MS-DOCX]
# 2.1): when a Choice requires only these, Word takes it and ignores the Fallback; otherwise
# the Fallback is what Word renders, so that is where a payload would live.
_UNDERSTOOD_PREFIXES = frozenset(
    {
        "w", "wp", "wps", "wpg", "wpc", "wpi", "wp14", "w14", "w15", "w16", "w16se",
        "w16cid", "w16cex", "w16sdtdh", "w16du", "a", "a14", "pic", "v", "o", "m", "mc",
        "wne", "c", "c14", "dgm", "cx", "cx1", "cx2", "aink", "am3d", "w10", "r",
    }
)  # fmt: skip

_MARKERS = (b"instrText", b"fldSimple", b"fldChar")
_STORY_CONTENT_MARKERS = ("wordprocessingml", "ms-word")
# WordprocessingML parts that hold no story (ECMA-376 Part 1, 11.3): Word renders no field
# from them. They are skipped unless a story relationship of the main part points at them
# (a header labelled as styles is still read as a header). Styles alone are often most of a
# small document's XML.
_NON_STORY_CONTENT_TYPES = (
    *(
        "application/vnd.openxmlformats-officedocument.wordprocessingml." + kind + "+xml"
        for kind in ("styles", "fonttable", "settings", "websettings", "numbering")
    ),
    "application/vnd.ms-word.styleswitheffects+xml",
)
_STORY_RELATIONSHIPS = (
    "/header",
    "/footer",
    "/footnotes",
    "/endnotes",
    "/comments",
    "/glossaryDocument",
    "/aFChunk",
)


def _local(tag: object) -> str:
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def _is_w(tag: object, name: str) -> bool:
    return tag == W + name or tag == W_STRICT + name or tag == W_2003 + name


def _w_attr(element: etree._Element, name: str) -> str | None:
    value = element.get(W + name)
    if value is None:
        value = element.get(W_STRICT + name)
    if value is None:
        value = element.get(W_2003 + name)
    return value


def _resolve_alternate_content(root: etree._Element) -> None:
    """Keep only the branch of each mc:AlternateContent that Word would render."""
    for block in list(root.iter(MC + "AlternateContent")):
        chosen: etree._Element | None = None
        for branch in block:
            if branch.tag == MC + "Choice":
                required = (branch.get("Requires") or "").split()
                if chosen is None and all(p in _UNDERSTOOD_PREFIXES for p in required):
                    chosen = branch
            elif branch.tag == MC + "Fallback" and chosen is None:
                chosen = branch
        for branch in list(block):
            if branch is not chosen:
                block.remove(branch)


@dataclass
class _OpenField:
    pieces: list[str | FieldNode] = field(default_factory=list)
    result: list[str] = field(default_factory=list)
    in_result: bool = False
    dirty: bool = False
    ordinal: int = 0


class _StoryBuilder:
    """The fldChar state machine over one story part."""

    def __init__(self, update_on_open: bool) -> None:
        self.update_on_open = update_on_open
        self.stack: list[_OpenField] = []
        self.fields: list[FieldNode] = []
        self.count = 0

    def begin(self, dirty: bool) -> None:
        self.count += 1
        self.stack.append(_OpenField(dirty=dirty, ordinal=self.count))

    def instruction(self, text: str) -> None:
        if self.stack and not self.stack[-1].in_result:
            self.stack[-1].pieces.append(text)

    def separate(self) -> None:
        if self.stack:
            self.stack[-1].in_result = True

    def text(self, text: str) -> None:
        for open_field in reversed(self.stack):
            if open_field.in_result:
                open_field.result.append(text)
                return
            # text runs inside an instruction are not part of the field code

    def end(self) -> None:
        if not self.stack:
            return
        closing = self.stack.pop()
        self._close(closing)

    def _close(self, closing: _OpenField) -> None:
        node = FieldNode(
            instruction=tuple(closing.pieces),
            result="".join(closing.result),
            detail=f"field {closing.ordinal}",
            dirty=closing.dirty or self.update_on_open,
        )
        self.attach(node)

    def attach(self, node: FieldNode) -> None:
        if self.stack and not self.stack[-1].in_result:
            self.stack[-1].pieces.append(node)
        else:
            # Top level, or inside another field's result: Word evaluates it on its own.
            self.fields.append(node)
            if self.stack:
                self.stack[-1].result.append(node.result)

    def simple(self, instruction: str, result: str, dirty: bool) -> None:
        self.count += 1
        self.attach(
            FieldNode(
                instruction=(instruction,),
                result=result,
                detail=f"field {self.count} (fldSimple)",
                dirty=dirty or self.update_on_open,
                simple=True,
            )
        )

    def finish(self) -> tuple[FieldNode, ...]:
        # An unterminated field is still reported: Word's tolerance of broken fields is not
        # something to bet on.
        while self.stack:
            self._close(self.stack.pop())
        return tuple(self.fields)


def extract_fields(root: etree._Element, update_on_open: bool = False) -> tuple[FieldNode, ...]:
    """All fields of one parsed story part, in document order."""
    for deleted in list(root.iter(W + "del", W_STRICT + "del")):
        parent = deleted.getparent()
        if parent is not None:
            parent.remove(deleted)
    _resolve_alternate_content(root)
    builder = _StoryBuilder(update_on_open)
    for element in root.iter():
        name = _local(element.tag)
        if name == "fldChar" and _is_w(element.tag, name):
            kind = _w_attr(element, "fldCharType")
            if kind == "begin":
                builder.begin(_truthy(_w_attr(element, "dirty")))
            elif kind == "separate":
                builder.separate()
            elif kind == "end":
                builder.end()
        elif name == "instrText" and _is_w(element.tag, name):
            builder.instruction(element.text or "")
        elif name == "t" and _is_w(element.tag, name):
            builder.text(element.text or "")
        elif name == "fldSimple" and _is_w(element.tag, name):
            texts = element.iter(W + "t", W_STRICT + "t", W_2003 + "t")
            result = "".join(t.text or "" for t in texts)
            builder.simple(
                _w_attr(element, "instr") or "", result, _truthy(_w_attr(element, "dirty"))
            )
    return builder.finish()


def _truthy(value: str | None) -> bool:
    return value in ("1", "true", "on")


def _update_fields_on_open(package: Package, main_part: str) -> bool:
    """settings.xml w:updateFields (17.15.1.90): Word offers to update every field on open."""
    for relationship in package.relationships(main_part):
        if relationship.type.endswith("/settings") and not relationship.external:
            if not package.has(relationship.target):
                return False
            data = package.read(relationship.target)
            if b"updateFields" not in data:
                return False
            root = parse_xml(data, relationship.target)
            for element in root.iter(W + "updateFields", W_STRICT + "updateFields"):
                return _truthy(_w_attr(element, "val") or "true")
    return False


def _story_parts(package: Package, main_part: str) -> list[str]:
    """Every WordprocessingML part, main document first, then by name.

    All parts are taken, referenced or not: a field in an orphaned part costs nothing to
    report, and relationship targets are trivial for an attacker to bend.
    """
    stories = {
        relationship.target.casefold()
        for relationship in package.relationships(main_part)
        if not relationship.external and relationship.type.endswith(_STORY_RELATIONSHIPS)
    }
    parts = []
    for name in package.names:
        if not name.lower().endswith(".xml") or name == "[Content_Types].xml":
            continue
        if "/_rels/" in "/" + name or name.startswith("_rels/"):
            continue
        content_type = package.content_type(name).lower()
        if name != main_part and not any(m in content_type for m in _STORY_CONTENT_MARKERS):
            continue
        if content_type in _NON_STORY_CONTENT_TYPES and name.casefold() not in stories:
            continue
        parts.append(name)
    parts.sort(key=lambda n: (n != main_part, n))
    return parts


@dataclass
class _Collected:
    """Stories gathered part by part before the document-wide field evaluation."""

    update_on_open: bool = False
    stories: list[FieldStory] = field(default_factory=list)


def scan_document(package: Package, main_part: str, ctx: ScanContext) -> Iterator[ScanItem]:
    """Fields of every story of a WordprocessingML package, and its altChunk documents.

    Each part is read in a PartScan of its own, so a malformed header costs only that header;
    the walker runs each PartScan as soon as it is yielded, so `collected` is complete when
    the fields are evaluated together (SET/REF bookmarks are document-wide).
    """
    host = ctx.host or HostApplication.WORD
    collected = _Collected()
    parts = _story_parts(package, main_part)

    def read_settings() -> Iterator[ScanItem]:
        collected.update_on_open = _update_fields_on_open(package, main_part)
        return iter(())

    def read_story(name: str, location: Location) -> Callable[[], Iterator[ScanItem]]:
        def run() -> Iterator[ScanItem]:
            ctx.check_time()
            data = package.read(name)
            # A DTD is refused even in a part with no field: Word will not open such a
            # package, and entity tricks are a hostile sign worth an error result.
            # The main part is always parsed: Word will not open a package whose document is
            # not XML, which is an error result, not a clean one.
            if (
                name == main_part
                or any(marker in data for marker in _MARKERS)
                or b"<!DOCTYPE" in data[:4096]
            ):
                fields = extract_fields(parse_xml(data, name), collected.update_on_open)
                if fields:
                    collected.stories.append(FieldStory(location, fields))
            return iter((DecodedStream(StreamLabel.XML_PART, data, location),))

        return run

    yield PartScan(ctx.location.child("word/settings.xml"), read_settings)
    for name in parts:
        location = ctx.location.child(name)
        yield PartScan(location, read_story(name, location))
    yield from findings_for_stories(collected.stories, host, ctx.config)
    yield from field_streams(collected.stories)
    for source in parts:
        yield PartScan(ctx.location.child(source), _alt_chunks(package, source, ctx, host))


def _alt_chunks(
    package: Package, source: str, ctx: ScanContext, host: HostApplication
) -> Callable[[], Iterator[ScanItem]]:
    def run() -> Iterator[ScanItem]:
        for relationship in package.relationships(source):
            if relationship.type in REL_AF_CHUNK and not relationship.external:
                # An altChunk is imported into the document when Word opens it (17.17.2.1):
                # its fields become the document's fields, so Word is its host.
                target = posixpath.normpath(relationship.target)
                yield EmbeddedDocument(package.read(target), ctx.location.child(target), host)

    return run
