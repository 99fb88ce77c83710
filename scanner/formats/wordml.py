"""WordprocessingML (ECMA-376 Part 1, 17): rebuild every field of every story part.

Complex fields are a run-level state machine (17.16.18 fldChar): a `begin` mark opens a
field, `w:instrText` runs carry its instruction, `separate` switches to the cached result
and `end` closes it. The marks may sit in runs at any depth (inside w:ins, w:sdt,
w:hyperlink, w:smartTag, w:customXml, w:moveTo...), so the walk follows document order over
all descendants instead of direct children. Simple fields (17.16.19 fldSimple) carry their
instruction in an attribute.

extract_fields over a parsed tree is the reference. Story parts of FAST_READER_MIN_BYTES or
more are first given to fast_extract_fields, which reads the same fields from the bytes
without building a tree and hands back (None) whatever it cannot be sure of.
"""

from __future__ import annotations

import posixpath
import re
from bisect import bisect_left
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import cast

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

_MARKERS = ("instrText", "fldSimple", "fldChar")
# ECMA-376 Part 2, 8.1.4: an XML part may also be UTF-16, where those names are other bytes.
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


_FIELD_TAGS = tuple(
    namespace + name
    for namespace in (W, W_STRICT, W_2003)
    for name in ("fldChar", "instrText", "t", "fldSimple")
)


def _local(tag: object) -> str:
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


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
        # Open fields already in their result: while there is none, result text is dropped,
        # which lets the byte-level reader skip w:t runs outside fields.
        self.results_open = 0

    def begin(self, dirty: bool) -> None:
        self.count += 1
        self.stack.append(_OpenField(dirty=dirty, ordinal=self.count))

    def instruction(self, text: str) -> None:
        if self.stack and not self.stack[-1].in_result:
            self.stack[-1].pieces.append(text)

    def separate(self) -> None:
        if self.stack and not self.stack[-1].in_result:
            self.stack[-1].in_result = True
            self.results_open += 1

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
        if closing.in_result:
            self.results_open -= 1
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
    # lxml filters by tag in C; document order is the same as a walk over every element.
    for element in root.iter(*_FIELD_TAGS):
        name = _local(element.tag)
        if name == "fldChar":
            kind = _w_attr(element, "fldCharType")
            if kind == "begin":
                builder.begin(_truthy(_w_attr(element, "dirty")))
            elif kind == "separate":
                builder.separate()
            elif kind == "end":
                builder.end()
        elif name == "instrText":
            builder.instruction(element.text or "")
        elif name == "t":
            builder.text(element.text or "")
        elif name == "fldSimple":
            texts = element.iter(W + "t", W_STRICT + "t", W_2003 + "t")
            result = "".join(t.text or "" for t in texts)
            builder.simple(
                _w_attr(element, "instr") or "", result, _truthy(_w_attr(element, "dirty"))
            )
    return builder.finish()


def _truthy(value: str | None) -> bool:
    return value in ("1", "true", "on")


# The byte-level reader: the same fields as extract_fields(parse_xml(data)), read straight from
# the part's bytes once libxml2 has checked that they are well-formed (no tree is built).
#
# Once a part is known well-formed (XML 1.0, 2.1) and holds no comment, CDATA section,
# processing instruction or DTD, every "<" in it opens a start or end tag, so a field mark is
# found by searching for "<" + qualified name. The qualified names are built from the part's
# namespace declarations; when a prefix that matters could mean two things, or the part is in
# another encoding, or anything else is unusual, the reader gives up and the caller parses.

_W_URIS = (W[1:-1], W_STRICT[1:-1], W_2003[1:-1])
# _w_attr's preference when one element carries an attribute in several of those namespaces.
_W_RANK = {uri: rank for rank, uri in enumerate(_W_URIS)}
# extract_fields removes w:del of the transitional and strict namespaces only.
_DEL_URIS = frozenset(_W_URIS[:2])
_MC_URI = MC[1:-1]
# Below this size a part is parsed: the byte-level reader's fixed cost (checking the part,
# reading its namespace declarations) is about that of parsing a few kilobytes, and the tree
# of a small part costs little memory.
FAST_READER_MIN_BYTES = 16 * 1024
_MAX_FAST_PREFIXES = 8
# Word writes two or three; each costs a regular expression over its own name.
_MAX_BRANCHES = 64
# Search hits are kept as position << _SLOT_BITS | literal index: room for the literals of
# _MAX_FAST_PREFIXES prefixes (four each).
_SLOT_BITS = 6
_SLOT_MASK = (1 << _SLOT_BITS) - 1

# XML 1.0, 3.1: the attributes and end of a start tag. In a well-formed part this matches the
# tag exactly: a quoted value may hold ">" but never "<" nor its own quote.
_NAME = rb"""[^\s=/>"'<]+"""
_ATTRIBUTE_LIST = rb"""(?:\s+""" + _NAME + rb"""\s*=\s*(?:"[^"]*"|'[^']*'))*"""
_ATTRIBUTES = b"(" + _ATTRIBUTE_LIST + rb")\s*(/?)>"
_ATTRIBUTES_RE = re.compile(_ATTRIBUTES)
_ATTRIBUTE_RE = re.compile(b"(" + _NAME + rb""")\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_START_TAG_RE = re.compile(rb"<([^\s/>]+)" + _ATTRIBUTES)
# Anything that looks like a namespace declaration, wherever it is (text included): a superset
# of the real declarations, which can only make the reader give up more often.
_NAMESPACE_RE = re.compile(rb"""xmlns(?::([^\s=/>"']*))?\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_ENCODING_RE = re.compile(rb"""encoding\s*=\s*["']([^"']*)["']""")
_VERSION_RE = re.compile(rb"""version\s*=\s*["']1\.0["']""")
# XML 1.0, 4.1 and 4.6: character references and the predefined entities (any other entity
# reference is an error without a DTD, and a DTD sends the part to the parser).
_REFERENCE_RE = re.compile(r"&(?:#x([0-9A-Fa-f]+)|#([0-9]+)|(lt|gt|amp|quot|apos));")
_PREDEFINED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}
_NAME_END = frozenset(b" \t\r\n/>")
_END_TAG_NAME_END = frozenset(b" \t\r\n>")

_FLD_CHAR, _SIMPLE, _SIMPLE_END, _DELETED, _ALTERNATE = range(5)
_MARK_BEGIN, _MARK_SEPARATE, _MARK_END, _MARK_OTHER = range(1, 5)
_MARKS = {"begin": _MARK_BEGIN, "separate": _MARK_SEPARATE, "end": _MARK_END}
_OP_BEGIN, _OP_SEPARATE, _OP_END, _OP_INSTRUCTION, _OP_TEXT, _OP_SIMPLE = range(6)


class _Unsure(Exception):
    """The byte-level reader met something it cannot read exactly as lxml would."""


class _NullTarget:
    """A parser target with no callbacks: libxml2 checks the part without building a tree."""

    def close(self) -> None:
        return None


def _reference(match: re.Match[str]) -> str:
    hexadecimal, decimal, name = match.groups()
    if name is not None:
        return _PREDEFINED[name]
    digits = (hexadecimal or decimal).lstrip("0") or "0"
    if len(digits) > 8:
        raise _Unsure("character reference out of range")
    code = int(digits, 16 if hexadecimal is not None else 10)
    if code > 0x10FFFF:
        raise _Unsure("character reference out of range")
    return chr(code)


def _xml_text(raw: bytes) -> str:
    """Character data as lxml reports it (XML 1.0, 2.11 line ends, then references)."""
    text = raw.decode("utf-8")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "&" in text:
        text = _REFERENCE_RE.sub(_reference, text)
    return text


def _xml_texts(raws: list[bytes]) -> str:
    """ "".join of _xml_text over `raws`; one decode when no line end or reference could
    read differently across two of them."""
    joined = b"".join(raws)
    if b"&" in joined or b"\r" in joined:
        return "".join([_xml_text(raw) for raw in raws])
    return joined.decode("utf-8")


def _xml_attribute(raw: bytes) -> str:
    """An attribute value as lxml reports it: XML 1.0, 2.11 line ends, then 3.3.3 white
    space read as a space (no DTD, so nothing more), then references."""
    text = raw.decode("utf-8")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\t" in text or "\n" in text:
        text = text.replace("\t", " ").replace("\n", " ")
    if "&" in text:
        text = _REFERENCE_RE.sub(_reference, text)
    return text


def _attribute_value(match: re.Match[bytes]) -> str:
    double, single = match.group(2), match.group(3)
    return _xml_attribute(double if double is not None else single)


def _w_attributes(attributes: bytes, names: dict[bytes | None, str]) -> dict[str, str]:
    """The WordprocessingML attributes of a start tag by local name, as _w_attr reads them."""
    found: dict[str, tuple[int, str]] = {}
    for match in _ATTRIBUTE_RE.finditer(attributes):
        prefix, colon, local = match.group(1).partition(b":")
        uri = names.get(prefix) if colon else None
        rank = _W_RANK.get(uri) if uri is not None else None
        if rank is None:
            continue
        key = local.decode("utf-8")
        if key not in found or rank < found[key][0]:
            found[key] = (rank, _attribute_value(match))
    return {key: value for key, (_, value) in found.items()}


def _prefixes(data: bytes, root_attributes: bytes, root_end: int) -> dict[bytes | None, str]:
    """The prefixes (None: the default namespace) bound to a namespace the reader looks at.

    Each must have one meaning throughout the part. The default namespace must moreover be
    declared on the root element, since outside any declaration an unprefixed name has none.
    """
    interesting = {*_W_URIS, _MC_URI}
    bound: dict[bytes | None, set[str]] = {}
    on_root: set[str] = set()
    for match in _ATTRIBUTE_RE.finditer(root_attributes):
        prefix, colon, local = match.group(1).partition(b":")
        if prefix == b"xmlns":
            bound.setdefault(local if colon else None, set()).add(_attribute_value(match))
            if not colon:
                on_root.add(_attribute_value(match))
    below = data.find(b"xmlns", root_end)
    if below >= 0:
        for match in _NAMESPACE_RE.finditer(data, below):
            bound.setdefault(match.group(1), set()).add(_attribute_value(match))
    names: dict[bytes | None, str] = {}
    for prefix, uris in bound.items():
        if not uris & interesting:
            continue
        if len(uris) != 1 or prefix == b"":
            raise _Unsure("a namespace prefix with several meanings")
        (uri,) = uris
        if prefix is None and uri not in on_root:
            raise _Unsure("a default namespace declared below the root")
        names[prefix] = uri
    if len(names) > _MAX_FAST_PREFIXES:
        raise _Unsure("too many WordprocessingML prefixes")
    return names


def _element_end(data: bytes, qname: bytes, position: int) -> tuple[int, int]:
    """Where the element whose start tag ends at `position` ends (end tag start and end).

    Elements of one qualified name nest properly in well-formed XML, so only they are counted.
    """
    tags = re.compile(b"<(/?)" + re.escape(qname) + rb"(?=[\s/>])")
    depth = 1
    while True:
        match = tags.search(data, position)
        if match is None:
            raise _Unsure("unbalanced element")
        if match.group(1):
            close = data.find(b">", match.end())
            if close < 0:
                raise _Unsure("unterminated end tag")
            depth -= 1
            if depth == 0:
                return match.start(), close + 1
            position = close + 1
        else:
            tag = _ATTRIBUTES_RE.match(data, match.end())
            if tag is None:
                raise _Unsure("unreadable start tag")
            if not tag.group(2):
                depth += 1
            position = tag.end()


def _alternate_content(
    data: bytes, position: int, names: dict[bytes | None, str]
) -> tuple[tuple[int, int] | None, int]:
    """The content span of the branch _resolve_alternate_content keeps (None: no branch) and
    the end of the mc:AlternateContent whose start tag ends at `position`."""
    chosen: tuple[int, int] | None = None
    for _ in range(_MAX_BRANCHES):
        opening = data.find(b"<", position)
        if opening < 0:
            raise _Unsure("unterminated mc:AlternateContent")
        if data[opening + 1 : opening + 2] == b"/":
            close = data.find(b">", opening)
            if close < 0:
                raise _Unsure("unterminated end tag")
            return chosen, close + 1
        child = _START_TAG_RE.match(data, opening)
        if child is None:
            raise _Unsure("unreadable start tag")
        if child.group(3):
            content = (child.end(), child.end())
            position = child.end()
        else:
            close_start, position = _element_end(data, child.group(1), child.end())
            content = (child.end(), close_start)
        if chosen is not None:
            continue
        prefix, colon, local = child.group(1).rpartition(b":")
        if names.get(prefix if colon else None) != _MC_URI:
            continue
        if local == b"Choice":
            required = ""
            for attribute in _ATTRIBUTE_RE.finditer(child.group(2)):
                if attribute.group(1) == b"Requires":
                    required = _attribute_value(attribute)
            if all(p in _UNDERSTOOD_PREFIXES for p in required.split()):
                chosen = content
        elif local == b"Fallback":
            chosen = content
    raise _Unsure("too many mc:AlternateContent branches")


def _replay(
    builder: _StoryBuilder, operations: list[tuple[int, str, bool]], results: list[str]
) -> None:
    pending = iter(results)
    for operation, text, flag in operations:
        if operation == _OP_BEGIN:
            builder.begin(flag)
        elif operation == _OP_SEPARATE:
            builder.separate()
        elif operation == _OP_END:
            builder.end()
        elif operation == _OP_INSTRUCTION:
            builder.instruction(text)
        elif operation == _OP_TEXT:
            builder.text(text)
        else:
            builder.simple(text, next(pending), flag)


def _has_markup_declaration(data: bytes, body: int) -> bool:
    """Whether a comment, CDATA section, DTD or processing instruction follows `body`.

    "!" and "?" are rare in XML, so they are looked up on their own (memchr) and checked
    for a "<" before them; plenty of them in the text falls back to the two-byte search.
    """
    for needle in (b"<!", b"<?"):
        mark = needle[1:]
        position = data.find(mark, body + 1)
        for _ in range(1024):
            if position < 0:
                break
            if data[position - 1] == 0x3C:
                return True
            position = data.find(mark, position + 1)
        else:
            if data.find(needle, position - 1) >= 0:
                return True
    return False


def _xml_start(data: bytes) -> int:
    """Where the content of a UTF-8 XML part starts (after the XML declaration)."""
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    if data.startswith(b"<?xml", start) and data[start + 5 : start + 6].isspace():
        declaration_end = data.find(b"?>", start)
        if declaration_end < 0:
            raise _Unsure("unterminated XML declaration")
        encoding = _ENCODING_RE.search(data, start, declaration_end)
        if encoding is not None and encoding.group(1).lower() != b"utf-8":
            raise _Unsure("not UTF-8")
        # XML 1.1 reads more line ends (NEL, LS) than the reader knows.
        if _VERSION_RE.search(data, start, declaration_end) is None:
            raise _Unsure("not XML 1.0")
        return declaration_end + 2
    # No declaration: libxml2 reads UTF-8 when the part starts with "<" and a name.
    if data[start : start + 1] == b"<" and data[start + 1 : start + 2].isalpha():
        return start
    raise _Unsure("no UTF-8 XML start")


def _check_well_formed(data: bytes) -> None:
    parser = etree.XMLParser(
        # ParserTarget is a typing protocol only: a target with no callback but close().
        target=cast("etree.ParserTarget[None]", _NullTarget()),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=True,
    )
    try:
        etree.fromstring(data, parser)
    except etree.XMLSyntaxError as error:
        raise _Unsure("not well-formed") from error
    if len(parser.error_log):
        # Namespace errors only reach the log with a target parser; parse_xml raises on them.
        raise _Unsure("namespace error or warning")


def _fast_fields(
    data: bytes, update_on_open: bool, check_time: Callable[[], None] | None
) -> tuple[FieldNode, ...]:
    body = _xml_start(data)
    if _has_markup_declaration(data, body):
        raise _Unsure("comment, CDATA, DTD or processing instruction")
    _check_well_formed(data)
    root_start = data.find(b"<", body)
    root = _START_TAG_RE.match(data, root_start)
    if root is None:
        raise _Unsure("unreadable root tag")
    names = _prefixes(data, root.group(2), root.end())

    literals: list[tuple[bytes, int, int]] = []
    qualifiers: list[bytes] = []
    for prefix, uri in names.items():
        qualifier = b"" if prefix is None else prefix + b":"
        marks = [(b"<" + qualifier + b"AlternateContent", _ALTERNATE)]
        if uri in _W_RANK:
            qualifiers.append(re.escape(qualifier))
            marks = [
                (b"<" + qualifier + b"fldChar", _FLD_CHAR),
                (b"<" + qualifier + b"fldSimple", _SIMPLE),
                (b"</" + qualifier + b"fldSimple", _SIMPLE_END),
            ]
            if uri in _DEL_URIS:
                marks.append((b"<" + qualifier + b"del", _DELETED))
        literals.extend((literal, kind, len(literal)) for literal, kind in marks)
    if not qualifiers:
        return ()
    # w:t / w:instrText start tags and their text (lxml's .text: up to the next tag).
    prefix_group = b"<(?:" + b"|".join(qualifiers) + b")"
    tail = _ATTRIBUTE_LIST + rb"\s*(?:/>|>([^<]*))"
    runs = re.compile(prefix_group + b"(t|instrText)" + tail)
    instruction_runs = re.compile(prefix_group + b"instrText" + tail)
    text_runs = re.compile(prefix_group + b"t" + tail)
    # fldChar and w:del are looked
    # up with their prefix; fldSimple (start and end tags) and AlternateContent are rare, so
    # each is looked up once by local name and its prefix read before the hit: one pass over
    # the part each rather than one per prefix and tag.
    codes: list[int] = []
    leads: dict[bytes, list[tuple[bytes, int]]] = {b"fldSimple": [], b"AlternateContent": []}
    for index, (literal, kind, _) in enumerate(literals):
        if kind in (_FLD_CHAR, _DELETED):
            hits = re.finditer(re.escape(literal), data)
            codes.extend([m.start() << _SLOT_BITS | index for m in hits])
        else:
            local = b"AlternateContent" if kind == _ALTERNATE else b"fldSimple"
            leads[local].append((literal[: -len(local)], index))
    for local, before in leads.items():
        if not before:
            continue
        for match in re.finditer(local, data):
            hit = match.start()
            for lead, index in before:
                start = hit - len(lead)
                if start >= 0 and data[start:hit] == lead:
                    codes.append(start << _SLOT_BITS | index)
                    break
    codes.sort()
    count = len(codes)
    size = len(data)

    builder = _StoryBuilder(update_on_open)
    fields = builder.fields
    # While a w:fldSimple is open its result (every w:t inside it) is not known yet, and
    # extract_fields adds it when it meets the start tag: what happens inside is kept in
    # `operations` and replayed into the builder once the outermost one closes.
    operations: list[tuple[int, str, bool]] = []
    results: list[str] = []
    texts: list[str] = []
    open_simple: list[tuple[int, int]] = []
    # fldChar tags seen, by their bytes from the end of the name to the first ">" (Word
    # writes a handful of distinct ones): mark * 2 + dirty, mark 0 when the name goes on.
    fld_chars: dict[bytes, int] = {}
    # fldSimple tags seen, by their attributes: (instr, dirty).
    simple_tags: dict[bytes, tuple[str, bool]] = {}

    def fld_char(after: int, close: int) -> tuple[int, int]:
        """(mark * 2 + dirty, end of tag) of the fldChar tag whose name ends at `after` and
        whose first ">" is at `close`."""
        if data[after] not in _NAME_END:
            read, tag_end = 0, close + 1  # a longer name (w:fldCharX)
        else:
            tag = _ATTRIBUTES_RE.match(data, after)
            if tag is None:
                raise _Unsure("unreadable start tag")
            values = _w_attributes(tag.group(1), names)
            mark = _MARKS.get(values.get("fldCharType") or "", _MARK_OTHER)
            read, tag_end = mark * 2 + _truthy(values.get("dirty")), tag.end()
            if tag_end != close + 1:
                return read, tag_end  # a ">" inside a value: not known by its first bytes
        if len(fld_chars) < 512 and close - after < 256:
            fld_chars[data[after:close]] = read
        return read, tag_end

    def runs_between(begin: int, finish: int) -> None:
        if open_simple:
            for local, raw in runs.findall(data, begin, finish):
                text = _xml_text(raw)
                if local == b"t":
                    texts.append(text)
                    operations.append((_OP_TEXT, text, False))
                else:
                    operations.append((_OP_INSTRUCTION, text, False))
            return
        want_instruction = not builder.stack[-1].in_result
        want_text = builder.results_open > 0
        for local, raw in runs.findall(data, begin, finish):
            if local == b"t":
                if want_text:
                    builder.text(_xml_text(raw))
            elif want_instruction:
                builder.instruction(_xml_text(raw))

    def mark_at(index: int, end: int) -> tuple[int, int, int] | None:
        """The w:fldChar that is mark `index`, when it starts before `end`: (its start, its
        reading as fld_char gives it, just past its tag); None otherwise."""
        if index >= count:
            return None
        code = codes[index]
        start = code >> _SLOT_BITS
        _, kind, length = literals[code & _SLOT_MASK]
        if start >= end or kind != _FLD_CHAR:
            return None
        after = start + length
        close = data.find(b">", after)
        read = fld_chars.get(data[after:close], -1)
        if read < 0:
            read, tag_end = fld_char(after, close)
            return start, read, tag_end
        return start, read, close + 1

    def flat_field(index: int, end: int, begin_end: int, dirty: bool) -> tuple[int, int] | None:
        """A field whose separate and end marks are the next marks of the part, met with no
        field open: built whole, as the builder would. (next index, position) or None."""
        second_mark = mark_at(index, end)
        if second_mark is None:
            return None
        second, read, tag_end = second_mark
        result = ""
        if read >> 1 == _MARK_SEPARATE:
            third_mark = mark_at(index + 1, end)
            if third_mark is None:
                return None
            third, closing, position = third_mark
            if closing >> 1 != _MARK_END:
                return None
            result = _xml_texts(text_runs.findall(data, tag_end, third))
            index += 2
        elif read >> 1 == _MARK_END:
            index, position = index + 1, tag_end
        else:
            return None
        found = instruction_runs.findall(data, begin_end, second)
        builder.count += 1
        fields.append(
            FieldNode(
                instruction=tuple([_xml_text(raw) for raw in found]),
                result=result,
                detail=f"field {builder.count}",
                dirty=dirty or update_on_open,
            )
        )
        return index, position

    def simple_end(index: int, end: int) -> int | None:
        """Where the end tag of a w:fldSimple starts when it is the next mark of the part."""
        if index >= count:
            return None
        code = codes[index]
        closing = code >> _SLOT_BITS
        _, kind, length = literals[code & _SLOT_MASK]
        if kind != _SIMPLE_END or closing >= end or closing + length >= size:
            return None
        return closing if data[closing + length] in _END_TAG_NAME_END else None

    # _element_end may rescan the content of nested mc:AlternateContent: bounded in all.
    budget = 4 * size + (1 << 16)
    handled = 0
    frames = [(0, size)]
    while frames:
        position, end = frames.pop()
        index = bisect_left(codes, position << _SLOT_BITS)
        while index < count:
            code = codes[index]
            here = code >> _SLOT_BITS
            if here >= end:
                break
            index += 1
            literal, kind, length = literals[code & _SLOT_MASK]
            handled += 1
            if check_time is not None and not handled & 0xFFF:
                check_time()
            if kind == _FLD_CHAR:
                after = here + length
                close = data.find(b">", after)
                if close < 0:
                    raise _Unsure("unterminated tag")
                read = fld_chars.get(data[after:close], -1)
                tag_end = close + 1
                if read < 0:
                    read, tag_end = fld_char(after, close)
                mark = read >> 1
                if not mark:
                    continue  # a longer name
                if builder.stack or open_simple:
                    runs_between(position, here)
                position = tag_end
                dirty = bool(read & 1)
                if mark == _MARK_BEGIN:
                    if not builder.stack and not open_simple:
                        flat = flat_field(index, end, position, dirty)
                        if flat is not None:
                            index, position = flat
                            continue
                    if open_simple:
                        operations.append((_OP_BEGIN, "", dirty))
                    else:
                        builder.begin(dirty)
                elif mark == _MARK_SEPARATE:
                    if open_simple:
                        operations.append((_OP_SEPARATE, "", False))
                    else:
                        builder.separate()
                elif mark == _MARK_END:
                    if open_simple:
                        operations.append((_OP_END, "", False))
                    else:
                        builder.end()
                continue
            after = here + length
            if after >= size or data[after] not in (
                _END_TAG_NAME_END if kind == _SIMPLE_END else _NAME_END
            ):
                continue  # a longer name (w:delText, w:fldSimpleX)
            if builder.stack or open_simple:
                runs_between(position, here)
            if kind == _SIMPLE_END:
                position = data.find(b">", after) + 1
                if not open_simple:
                    raise _Unsure("unbalanced w:fldSimple")
                result_index, first = open_simple.pop()
                results[result_index] = "".join(texts[first:])
                if not open_simple:
                    _replay(builder, operations, results)
                    operations.clear()
                    results.clear()
                    texts.clear()
                continue
            tag = _ATTRIBUTES_RE.match(data, after)
            if tag is None:
                raise _Unsure("unreadable start tag")
            position = tag.end()
            if kind == _SIMPLE:
                attributes = tag.group(1)
                known_simple = simple_tags.get(attributes)
                if known_simple is None:
                    values = _w_attributes(attributes, names)
                    known_simple = (values.get("instr") or "", _truthy(values.get("dirty")))
                    if len(simple_tags) < 512 and len(attributes) < 256:
                        simple_tags[attributes] = known_simple
                instruction, dirty = known_simple
                closing = None
                if not tag.group(2) and not builder.stack and not open_simple:
                    closing = simple_end(index, end)
                if tag.group(2) and not open_simple:
                    builder.simple(instruction, "", dirty)
                elif closing is not None:
                    # Nothing but runs up to its end tag, and no field open around it: its
                    # result is their w:t text, and nothing else takes any of it.
                    result = _xml_texts(text_runs.findall(data, position, closing))
                    builder.simple(instruction, result, dirty)
                    position = data.find(b">", closing) + 1
                    index += 1
                else:
                    results.append("")
                    operations.append((_OP_SIMPLE, instruction, dirty))
                    if not tag.group(2):
                        open_simple.append((len(results) - 1, len(texts)))
            elif kind == _DELETED:
                # extract_fields cannot remove the root element, so a w:del root stays.
                if tag.group(2) or here == root_start:
                    continue
                _, position = _element_end(data, literal[1:], position)
                budget -= position - tag.end()
                if budget < 0:
                    raise _Unsure("scan budget spent")
                index = bisect_left(codes, position << _SLOT_BITS)
            elif not tag.group(2):
                chosen, block_end = _alternate_content(data, position, names)
                budget -= block_end - position
                if budget < 0:
                    raise _Unsure("scan budget spent")
                frames.append((block_end, end))
                if chosen is not None:
                    frames.append(chosen)
                position = end
                break
        if position < end and (builder.stack or open_simple):
            runs_between(position, end)
    if open_simple:
        raise _Unsure("unbalanced w:fldSimple")
    return builder.finish()


def fast_extract_fields(
    data: bytes,
    update_on_open: bool = False,
    check_time: Callable[[], None] | None = None,
) -> tuple[FieldNode, ...] | None:
    """The fields of one story part read from its bytes, exactly as
    extract_fields(parse_xml(data, ...)) would return them; None when the reader cannot be
    sure (the caller then parses). Raises nothing but ScanTimeout (from `check_time`)."""
    try:
        return _fast_fields(data, update_on_open, check_time)
    except (_Unsure, UnicodeDecodeError):
        return None


def _holds_name(data: bytes, names: tuple[str, ...]) -> bool:
    """Whether an XML part may hold an element named one of `names` (names are never written
    with character references, so one is always its bytes in the part's encoding; ECMA-376
    Part 2, 8.1.4 allows UTF-8 and UTF-16)."""
    if any(name.encode("ascii") in data for name in names):
        return True
    head = data[:4]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in head:
        return any(
            name.encode(codec) in data for name in names for codec in ("utf-16-le", "utf-16-be")
        )
    return False


def _update_fields_on_open(package: Package, main_part: str) -> bool:
    """settings.xml w:updateFields (17.15.1.90): Word offers to update every field on open."""
    for relationship in package.relationships(main_part):
        if relationship.type.endswith("/settings") and not relationship.external:
            if not package.has(relationship.target):
                return False
            data = package.read(relationship.target)
            if not _holds_name(data, ("updateFields",)):
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
            if name == main_part or _holds_name(data, _MARKERS) or b"<!DOCTYPE" in data[:4096]:
                fields = None
                if len(data) >= FAST_READER_MIN_BYTES:
                    fields = fast_extract_fields(data, collected.update_on_open, ctx.check_time)
                if fields is None:
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
