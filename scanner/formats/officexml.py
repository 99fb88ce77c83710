"""Single-file XML documents that Office opens whatever their extension.

* Word 2003 XML (WordprocessingML 2003, root `w:wordDocument`): the whole document in one
  tree, with the same field markup as ECMA-376 (w:fldChar/@w:fldCharType, w:instrText,
  w:fldSimple/@w:instr) in the 2003 namespace; headers, footers, footnotes, endnotes,
  comments and text boxes sit inline where they are anchored, and are separate stories.
* Flat OPC (root `pkg:package`, namespace http://schemas.microsoft.com/office/2006/xmlPackage):
  an OPC package (ECMA-376 Part 2) written as XML, one `pkg:part` per part, with the part's
  XML in `pkg:xmlData` or its bytes base64-encoded in `pkg:binaryData`.
* SpreadsheetML 2003 (root `Workbook`, namespace urn:schemas-microsoft-com:office:spreadsheet):
  formulas in `ss:Cell/@ss:Formula` (R1C1 notation), names in `ss:NamedRange/@ss:RefersTo`,
  external links (DDE ones too) in `x:SupBook`.

They are recognised by content: the `<?mso-application progid="..."?>` processing instruction
that Windows uses to pick the application, and above all the root element, which is what
the application itself reads. Word and Excel open such files under any name (.doc, .xls).
"""

from __future__ import annotations

import binascii
import codecs
import posixpath
import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass

from lxml import etree

from scanner.analysis import dde_finding
from scanner.errors import LimitExceeded, MalformedInput, UnsupportedInput
from scanner.fields import findings_for_stories
from scanner.formats.base import PartScan, ScanContext, ScanItem
from scanner.formats.package import parse_xml, safe_iterparse
from scanner.formats.wordml import extract_fields
from scanner.formulas import canonical_reference, findings_for_formula, may_refer_to_dde
from scanner.model import (
    Confidence,
    DdeCall,
    EmbeddedDocument,
    Evidence,
    FieldStory,
    FileFormat,
    Finding,
    Formula,
    HostApplication,
    Location,
    Technique,
)

WORDML_2003 = "http://schemas.microsoft.com/office/word/2003/wordml"
AML = "http://schemas.microsoft.com/aml/2001/core"
PKG = "http://schemas.microsoft.com/office/2006/xmlPackage"
SPREADSHEET_2003 = "urn:schemas-microsoft-com:office:spreadsheet"
EXCEL_2003 = "urn:schemas-microsoft-com:office:excel"
ODF_OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
_W_NAMESPACES = (
    "http://schemas.openxmlformats.org/wordprocessingml/2006/main",
    "http://purl.oclc.org/ooxml/wordprocessingml/main",
)
_PACKAGE_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
_REL_OFFICE_DOCUMENT = (
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument",
    "http://purl.oclc.org/ooxml/officeDocument/relationships/officeDocument",
)
_REL_AF_CHUNK = (
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships/aFChunk",
    "http://purl.oclc.org/ooxml/officeDocument/relationships/aFChunk",
)

# The root element must show up early: Office reads the prolog, not the whole file, to
# decide. 64 KiB leaves room for long comments and namespace lists and stays cheap.
_SNIFF_BYTES = 64 * 1024
_MAX_PROLOG_ITEMS = 256
_CHECK_EVERY = 1024
_MAX_LISTED_ITEMS = 32
# Excel 2007+ grid bounds ([MS-XLSX] 2.2.2): indexes past them are not cells Excel keeps.
_MAX_ROW = 1_048_576
_MAX_COLUMN = 16_384

_ROOT_TAG = re.compile(r"<([A-Za-z_][\w.\-]*:)?([A-Za-z_][\w.\-]*)")
_ATTRIBUTE = re.compile(r"""([A-Za-z_][\w.\-]*(?::[A-Za-z_][\w.\-]*)?)\s*=\s*("[^"]*"|'[^']*')""")
_PROGID = re.compile(r"""progid\s*=\s*["']([^"']{0,64})["']""", re.IGNORECASE)
_ELEMENT_START = re.compile(r"<[A-Za-z_]")
_DECLARED_ENCODING = re.compile(rb"""^<\?xml[^>]{0,200}?encoding\s*=\s*["']([A-Za-z0-9._\-]+)""")
_ASCII_COMPATIBLE = frozenset(
    {"utf-8", "utf8", "us-ascii", "ascii", "latin1", "latin-1"}
    | {f"iso-8859-{n}" for n in range(1, 17)}
    | {f"windows-{n}" for n in range(1250, 1259)}
    | {f"cp{n}" for n in range(1250, 1259)}
)
# What a SpreadsheetML 2003 workbook needs to hold anything reportable: a bar (remote
# reference, SupBook path), a DDE/INITIATE call, or a character reference that could stand
# for one of them.
SPREADSHEET_HINT = re.compile(rb"[|]|&#|(?i:dde\s*\(|initiate\s*\()")
_WORD_STORY_TYPES = ("wordprocessingml", "ms-word")


@dataclass(frozen=True)
class XmlHead:
    """What the start of an XML document says: its root element and the mso-application PI.

    `attributes` maps (namespace, local name) of each root attribute to its value, with the
    prefixes the root tag itself declares resolved (unprefixed attributes have namespace "").
    """

    namespace: str
    name: str
    progid: str
    attributes: tuple[tuple[tuple[str, str], str], ...]

    def attribute(self, namespace: str, name: str) -> str | None:
        for key, value in self.attributes:
            if key == (namespace, name):
                return value
        return None


def _decode_head(data: bytes) -> str | None:
    head = data[:_SNIFF_BYTES]
    if head.startswith(codecs.BOM_UTF8):
        return head[3:].decode("utf-8", "replace")
    if head.startswith(codecs.BOM_UTF16_LE):
        return head[2 : len(head) & ~1].decode("utf-16-le", "replace")
    if head.startswith(codecs.BOM_UTF16_BE):
        return head[2 : len(head) & ~1].decode("utf-16-be", "replace")
    # UTF-16 without a byte-order mark (XML 1.0, F.1): the first '<' tells the order.
    stripped = head.lstrip(b" \t\r\n\x00")
    offset = len(head) - len(stripped)
    if stripped[:1] != b"<":
        return None
    if offset % 2 == 1 and head[offset - 1 : offset] == b"\x00":
        return head[offset - 1 : len(head) & ~1].decode("utf-16-be", "replace")
    if head[offset + 1 : offset + 2] == b"\x00":
        return head[offset & ~1 : len(head) & ~1].decode("utf-16-le", "replace")
    return head.decode("utf-8", "replace")


def sniff_xml(data: bytes) -> XmlHead | None:
    """The root element of an XML document from its first bytes, or None if it is not XML.

    Cheap and bounded: only the first 64 KiB are looked at, and the prolog (declaration,
    processing instructions, comments, a DOCTYPE) is skipped without parsing.
    """
    text = _decode_head(data)
    if text is None:
        return None
    position = 0
    progid = ""
    for _ in range(_MAX_PROLOG_ITEMS):
        while position < len(text) and text[position] in " \t\r\n\ufeff":
            position += 1
        if text.startswith("<?", position):
            end = text.find("?>", position)
            if end == -1:
                return None
            instruction = text[position:end]
            if instruction[2:].lstrip().lower().startswith("mso-application"):
                found = _PROGID.search(instruction)
                progid = found.group(1) if found else progid
            position = end + 2
        elif text.startswith("<!--", position):
            end = text.find("-->", position)
            if end == -1:
                return None
            position = end + 3
        elif text.startswith("<!", position):
            # A DOCTYPE: its internal subset holds only `<!` and `<?` markup, so the root is
            # the next element start. parse_xml refuses the DOCTYPE when the file is scanned.
            found = _ELEMENT_START.search(text, position)
            if found is None:
                return None
            position = found.start()
        else:
            break
    match = _ROOT_TAG.match(text, position)
    if match is None:
        return None
    end = text.find(">", match.end())
    tag_text = text[match.end() : end if end != -1 else len(text)]
    raw_attributes = [(name, value[1:-1]) for name, value in _ATTRIBUTE.findall(tag_text)]
    namespaces = {"xml": "http://www.w3.org/XML/1998/namespace"}
    for name, value in raw_attributes:
        if name == "xmlns":
            namespaces[""] = value
        elif name.startswith("xmlns:"):
            namespaces[name[6:]] = value
    prefix = (match.group(1) or "")[:-1]
    attributes: list[tuple[tuple[str, str], str]] = []
    for name, value in raw_attributes:
        if name == "xmlns" or name.startswith("xmlns:"):
            continue
        attr_prefix, _, local = name.rpartition(":")
        namespace = namespaces.get(attr_prefix, "?") if attr_prefix else ""
        attributes.append(((namespace, local), value))
    return XmlHead(
        namespace=namespaces.get(prefix, "?" if prefix else ""),
        name=match.group(2),
        progid=progid,
        attributes=tuple(attributes),
    )


def xml_kind(head: XmlHead) -> FileFormat | None:
    """Which single-file Office XML format a root element is (None: none of them)."""
    root = (head.namespace, head.name)
    if root == (WORDML_2003, "wordDocument"):
        return FileFormat.WORDML2003
    if root == (PKG, "package"):
        return FileFormat.FLATOPC
    if root == (SPREADSHEET_2003, "Workbook"):
        return FileFormat.SPREADSHEETML2003
    return None


def _identify(data: bytes, wanted: FileFormat, progid: str) -> Confidence:
    head = sniff_xml(data)
    if head is None:
        return Confidence.NO
    kind = xml_kind(head)
    if kind is wanted:
        return Confidence.YES
    if kind is None and head.progid.casefold().startswith(progid):
        # The shell would hand it to Word or Excel, which would then refuse the root: an
        # unsupported result is more honest than "not a format ddescan reads".
        return Confidence.UNSURE
    return Confidence.NO


def _refuse_dtd(data: bytes, what: str) -> None:
    text = _decode_head(data[:8192])
    upper = (text or data[:8192].decode("latin-1")).upper()
    if "<!DOCTYPE" in upper or "<!ENTITY" in upper:
        raise MalformedInput(f"{what}: XML with a DOCTYPE/entity declaration is refused")


def _release(element: etree._Element) -> None:
    """Free an element the caller is done with, and its earlier siblings (handled before)."""
    element.clear(keep_tail=False)
    parent = element.getparent()
    if parent is not None:
        while element.getprevious() is not None:
            del parent[0]


def iter_end_elements(
    data: bytes, what: str, tags: Collection[str], ctx: ScanContext
) -> Iterator[etree._Element]:
    """Stream an XML document: each element named in `tags` ("{namespace}local") at its end.

    The tree is built only along the current path: once the caller has handled an element it
    is cleared and its earlier siblings are dropped, so the caller must read what it needs
    from an element when it is yielded (its ancestors' attributes are still there). Same
    safety as package.parse_xml: no entity expansion, no network, no DTD (refused).
    """
    _refuse_dtd(data, what)
    events = safe_iterparse(data, list(tags))
    count = 0
    try:
        for _event, element in events:
            if count == 0 and element.getroottree().docinfo.doctype:
                raise MalformedInput(f"{what}: XML with a DOCTYPE declaration is refused")
            count += 1
            if count % _CHECK_EVERY == 0:
                ctx.check_time()
            yield element
            _release(element)
    except etree.XMLSyntaxError as error:
        raise MalformedInput(f"{what}: not well-formed XML ({error})") from error


def byte_patterns_apply(data: bytes) -> bool:
    """True when `data` is XML in an ASCII-compatible encoding, so that a byte pattern finds
    what its text holds; false for UTF-16, UTF-32, EBCDIC... and for what is not XML."""
    start = data[:4]
    if start[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in start:
        return False
    head = data[:512].removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")
    if not head.startswith(b"<"):
        return False
    declared = _DECLARED_ENCODING.match(head)
    return not (declared and declared.group(1).decode("ascii").lower() not in _ASCII_COMPATIBLE)


def may_hold(data: bytes, hint: re.Pattern[bytes]) -> bool:
    """False only when an ASCII-compatible XML document has no match for `hint` anywhere.

    Lets large documents with nothing DDE-like in them go without a parse; documents in an
    encoding the byte pattern cannot see through (UTF-16, UTF-32, EBCDIC...) are always
    parsed.
    """
    return not byte_patterns_apply(data) or hint.search(data) is not None


def formula_may_call_dde(text: str) -> bool:
    """False when a formula holds neither a bar nor a DDE/INITIATE name: no remote reference.

    Plain substring tests, cheaper than scanner.formulas' own pre-check, for the one formula
    per cell of a large sheet; `[n]!` external-link references do not exist in these formats.
    """
    if "|" in text:
        return True
    folded = text.lower()
    return "dde" in folded or "initiate" in folded


def _truthy(value: str | None, default: bool = False) -> bool:
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "on")


def _decode_base64(text: str, what: str, ctx: ScanContext) -> bytes:
    cleaned = "".join(text.split())
    limit = ctx.config.limits.max_part_bytes
    if len(cleaned) // 4 * 3 > limit:
        raise LimitExceeded(f"{what}: embedded data is over the part size limit of {limit} bytes")
    try:
        data = binascii.a2b_base64(cleaned)
    except (binascii.Error, ValueError) as error:
        raise MalformedInput(f"{what}: embedded data is not valid base64 ({error})") from error
    ctx.budget.spend(len(data), what)
    return data


def _embedded(
    text: str, what: str, location: Location, ctx: ScanContext, host: HostApplication | None
) -> Callable[[], Iterator[ScanItem]]:
    def run() -> Iterator[ScanItem]:
        data = _decode_base64(text, what, ctx)
        if data:
            yield EmbeddedDocument(data, location, host)

    return run


# Word 2003 XML.

_W03 = "{" + WORDML_2003 + "}"
# Story containers anchored inline in WordprocessingML 2003. Word keeps each one as a story
# of its own, so a field in a footnote is never part of a field around the footnote mark.
_STORY_TAGS = {
    _W03 + "hdr": "w:hdr",
    _W03 + "ftr": "w:ftr",
    _W03 + "footnote": "w:footnote",
    _W03 + "endnote": "w:endnote",
    _W03 + "txbxContent": "w:txbxContent",
}
_ANNOTATION = "{" + AML + "}annotation"


def _word2003_stories(
    root: etree._Element, location: Location, ctx: ScanContext
) -> list[tuple[Location, etree._Element]]:
    """The body and each inline story, detached from one another, in document order."""
    for annotation in list(root.iter(_ANNOTATION)):
        # Tracked deletions (aml:annotation w:type="Word.Deletion") are not in the document
        # Word shows, so their field marks do not count; deleted instruction text is already
        # w:delInstrText, which is not read.
        if annotation.get(_W03 + "type") == "Word.Deletion":
            parent = annotation.getparent()
            if parent is not None:
                parent.remove(annotation)
    stories: list[tuple[Location, etree._Element]] = [(location, root)]
    counts: dict[str, int] = {}
    for count, element in enumerate(root.iter(*_STORY_TAGS, _ANNOTATION)):
        if count % _CHECK_EVERY == 0:
            ctx.check_time()
        tag = element.tag if isinstance(element.tag, str) else ""
        if tag == _ANNOTATION:
            if element.get(_W03 + "type") != "Word.Comment":
                continue
            label = "comment"
        else:
            label = _STORY_TAGS[tag]
        counts[label] = counts.get(label, 0) + 1
        stories.append((location.child(f"{label} {counts[label]}"), element))
    # Detach only after the walk: removing elements while iterating would skip some.
    for _, element in stories[1:]:
        parent = element.getparent()
        if parent is not None:
            parent.remove(element)
    return stories


def _scan_word2003(data: bytes, ctx: ScanContext) -> Iterator[ScanItem]:
    root = parse_xml(data, ctx.location.containers[-1])
    if (root.tag if isinstance(root.tag, str) else "") != _W03 + "wordDocument":
        raise UnsupportedInput(
            "mso-application says Word.Document, but the root element is not "
            "w:wordDocument of WordprocessingML 2003"
        )
    host = ctx.host or HostApplication.WORD
    bin_data: list[tuple[str, str]] = []
    limit = ctx.config.limits.max_members
    truncated = False
    for count, element in enumerate(root.iter(_W03 + "binData")):
        if count % _CHECK_EVERY == 0:
            ctx.check_time()
        if count >= limit:
            truncated = True
            break
        bin_data.append(
            (element.get(_W03 + "name", "") or f"binData {count + 1}", element.text or "")
        )
        # Embedded data is text to the field walk; dropping it keeps the walk light.
        element.text = None
    stories: list[FieldStory] = []
    for location, story_root in _word2003_stories(root, ctx.location, ctx):
        ctx.check_time()
        fields = extract_fields(story_root)
        if fields:
            stories.append(FieldStory(location, fields))
    yield from findings_for_stories(stories, host, ctx.config)
    for name, text in bin_data:
        # w:binData holds pictures and, as oledata.mso / editdata.mso, embedded objects and
        # macros; each is handed to the walker, which reads those of a format it knows.
        location = ctx.location.child(name)
        yield PartScan(location, _embedded(text, name, location, ctx, None))
    if truncated:
        raise LimitExceeded(f"more than {limit} w:binData objects; the rest were not inspected")


# Flat OPC.

_PKG = "{" + PKG + "}"


@dataclass(frozen=True)
class _FlatPart:
    name: str
    content_type: str
    xml: etree._Element | None
    binary: str | None

    @property
    def key(self) -> str:
        return _part_key(self.name)


def _part_key(name: str) -> str:
    # OPC part names compare case-insensitively (ECMA-376 Part 2, 9.1.1.1.2).
    return posixpath.normpath("/" + name.replace("\\", "/").lstrip("/")).casefold()


def _flat_parts(root: etree._Element, ctx: ScanContext) -> list[_FlatPart]:
    parts: list[_FlatPart] = []
    seen: set[str] = set()
    limit = ctx.config.limits.max_members
    for count, element in enumerate(root.iterchildren(_PKG + "part")):
        if count >= limit:
            raise LimitExceeded(f"package has more than {limit} parts, over the limit")
        if count % _CHECK_EVERY == 0:
            ctx.check_time()
        name = element.get(_PKG + "name", "")
        content_type = element.get(_PKG + "contentType", "")
        xml: etree._Element | None = None
        binary: str | None = None
        for child in element:
            if child.tag == _PKG + "xmlData" and xml is None:
                xml = next((c for c in child if isinstance(c.tag, str)), None)
            elif child.tag == _PKG + "binaryData" and binary is None:
                binary = child.text or ""
        part = _FlatPart(name, content_type, xml, binary)
        if not name or part.key in seen:
            continue
        seen.add(part.key)
        parts.append(part)
    return parts


def _relationships(part: _FlatPart) -> list[tuple[str, str]]:
    """(type, target part key) of the internal relationships in a .rels part."""
    if part.xml is None:
        return []
    # The source of /word/_rels/document.xml.rels is /word/document.xml: targets are
    # relative to /word (ECMA-376 Part 2, 9.3.3).
    folder = posixpath.dirname(posixpath.dirname("/" + part.name.lstrip("/")))
    found: list[tuple[str, str]] = []
    for node in part.xml.iter("{" + _PACKAGE_RELS + "}Relationship"):
        if node.get("TargetMode", "") == "External":
            continue
        target = node.get("Target", "")
        if not target.startswith("/"):
            target = posixpath.join(folder, target)
        found.append((node.get("Type", ""), _part_key(target)))
    return found


def _update_fields_on_open(settings: _FlatPart | None) -> bool:
    """settings w:updateFields (ECMA-376 Part 1, 17.15.1.90): update every field on open."""
    if settings is None or settings.xml is None:
        return False
    for namespace in _W_NAMESPACES:
        for element in settings.xml.iter("{" + namespace + "}updateFields"):
            return _truthy(element.get("{" + namespace + "}val"), default=True)
    return False


def _scan_flat_opc(data: bytes, ctx: ScanContext) -> Iterator[ScanItem]:
    root = parse_xml(data, ctx.location.containers[-1])
    if (root.tag if isinstance(root.tag, str) else "") != _PKG + "package":
        raise UnsupportedInput("not a Flat OPC package (root element is not pkg:package)")
    parts = _flat_parts(root, ctx)
    by_key = {part.key: part for part in parts}
    main_key = ""
    chunk_keys: set[str] = set()
    for part in parts:
        if not part.key.endswith(".rels"):
            continue
        for rel_type, target in _relationships(part):
            if rel_type in _REL_OFFICE_DOCUMENT and part.key == "/_rels/.rels" and not main_key:
                main_key = target
            elif rel_type in _REL_AF_CHUNK:
                chunk_keys.add(target)
    main = by_key.get(main_key)
    if main is None:
        main = next((p for p in parts if p.content_type.lower().endswith(".main+xml")), None)
    word_host = ctx.host or HostApplication.WORD
    excel_host = ctx.host or HostApplication.EXCEL

    settings = next((p for p in parts if p.content_type.lower().endswith("settings+xml")), None)
    update_on_open = _update_fields_on_open(settings)
    stories: list[FieldStory] = []
    ordered = sorted(parts, key=lambda p: (p is not main, p.key))
    for part in ordered:
        ctx.check_time()
        content_type = part.content_type.lower()
        if part.xml is None or part.key in chunk_keys:
            continue
        is_story = part is main or any(marker in content_type for marker in _WORD_STORY_TYPES)
        if is_story and "spreadsheetml" not in content_type:
            fields = extract_fields(part.xml, update_on_open)
            if fields:
                stories.append(FieldStory(ctx.location.child(part.name), fields))
    yield from findings_for_stories(stories, word_host, ctx.config)

    for part in ordered:
        location = ctx.location.child(part.name)
        if part.xml is not None and "spreadsheetml" in part.content_type.lower():
            yield from _spreadsheet_part_findings(part.xml, location, excel_host, ctx)
        elif part.xml is not None and part.key in chunk_keys:
            # An altChunk is imported into the document when Word opens it (17.17.2.1).
            chunk = etree.tostring(part.xml)
            ctx.budget.spend(len(chunk), part.name)
            yield EmbeddedDocument(chunk, location, word_host)
        elif part.binary is not None:
            host = word_host if part.key in chunk_keys else None
            yield PartScan(location, _embedded(part.binary, part.name, location, ctx, host))


def _spreadsheet_part_findings(
    root: etree._Element, location: Location, host: HostApplication, ctx: ScanContext
) -> Iterator[Finding]:
    """Formulas, defined names and DDE links of one SpreadsheetML part held as XML."""
    counter = 0
    for element in root.iter():
        counter += 1
        if counter % _CHECK_EVERY == 0:
            ctx.check_time()
        tag = element.tag if isinstance(element.tag, str) else ""
        local = tag.rpartition("}")[2]
        if local in ("f", "formula", "formula1", "formula2"):
            text = element.text or ""
            if not may_refer_to_dde(text):
                continue
            parent = element.getparent()
            if local == "f" and parent is not None and parent.get("r"):
                detail = f"cell {parent.get('r')}"
            else:
                detail = f"formula {counter}"
            yield from findings_for_formula(Formula(text, location.at(detail)), host, ctx.config)
        elif local == "definedName":
            text = element.text or ""
            if may_refer_to_dde(text):
                formula = Formula(text, location.at(f'defined name "{element.get("name", "")}"'))
                yield from findings_for_formula(formula, host, ctx.config)
        elif local == "ddeLink":
            service = element.get("ddeService", "")
            topic = element.get("ddeTopic", "")
            if not service.strip():
                continue
            items = [
                (item.get("name", ""), _truthy(item.get("advise")))
                for item in element.iter()
                if isinstance(item.tag, str) and item.tag.rpartition("}")[2] == "ddeItem"
            ]
            raw = f'<ddeLink ddeService="{service}" ddeTopic="{topic}">'
            yield _link_finding(
                service, topic, items, "ddeLink", raw, location.at("ddeLink"), host, ctx
            )


def _link_finding(
    application: str,
    topic: str,
    items: list[tuple[str, bool]],
    keyword: str,
    raw: str,
    location: Location,
    host: HostApplication,
    ctx: ScanContext,
    steps: tuple[str, ...] = (),
) -> Finding:
    names = [name for name, _ in items[:_MAX_LISTED_ITEMS]]
    more = len(items) - len(names)
    item_text = ", ".join(names) + (f" (and {more} more)" if more > 0 else "")
    call = DdeCall(
        application=application,
        topic=topic,
        item=item_text,
        keyword=keyword,
        automatic=any(advise for _, advise in items),
    )
    evidence = Evidence(
        raw=raw + (f" items: {item_text}" if items else " (no items)"),
        deobfuscated=canonical_reference(application, topic),
        steps=steps,
    )
    return dde_finding(call, Technique.DDE_LINK, evidence, location, host, ctx.config)


# SpreadsheetML 2003.

_SS = "{" + SPREADSHEET_2003 + "}"
_X = "{" + EXCEL_2003 + "}"
_SS_TAGS = (
    _SS + "Worksheet",
    _SS + "Table",
    _SS + "Row",
    _SS + "Cell",
    _SS + "NamedRange",
    _X + "SupBook",
    _X + "WorksheetOptions",
    _X + "ConditionalFormatting",
    _X + "DataValidation",
)
_SHEET_STATES = {"sheethidden": "hidden", "sheetveryhidden": "veryHidden"}
_INDEX = re.compile(r"\s*\d{1,9}\s*")


def column_letters(column: int) -> str:
    """1 -> A, 27 -> AA (A1 notation column names)."""
    letters = ""
    while column > 0:
        column, remainder = divmod(column - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters


def _index(value: str | None) -> int | None:
    if value is None or not _INDEX.fullmatch(value):
        return None
    return int(value)


class _Spreadsheet2003:
    """State of one streaming pass over a SpreadsheetML 2003 workbook."""

    def __init__(self, ctx: ScanContext) -> None:
        self.ctx = ctx
        self.host = ctx.host or HostApplication.EXCEL
        self.sheet_count = 0
        self.sheet = ""
        self.state = "visible"
        self.row = 0
        self.row_element: etree._Element | None = None
        self.column = 0
        self.pending: list[Formula] = []
        self.links = 0

    def location(self, detail: str) -> Location:
        return self.ctx.location.at(detail)

    def _sheet_of(self, element: etree._Element) -> str:
        node = element.getparent()
        for _ in range(4):
            if node is None:
                break
            if node.tag == _SS + "Worksheet":
                return node.get(_SS + "Name", "") or f"sheet {self.sheet_count + 1}"
            node = node.getparent()
        return ""

    def enter_sheet(self, element: etree._Element) -> None:
        if not self.sheet:
            self.sheet = self._sheet_of(element)

    def formulas(self, formula: Formula) -> Iterator[Finding]:
        if not formula_may_call_dde(formula.text):
            return
        if self.sheet and len(self.pending) < self.ctx.config.limits.max_findings:
            # The sheet's visibility (x:WorksheetOptions/x:Visible) comes after its cells:
            # hold the few formulas worth reporting until the sheet ends.
            self.pending.append(formula)
            return
        yield from findings_for_formula(formula, self.host, self.ctx.config)

    def cell(self, element: etree._Element) -> Formula | None:
        """Advance the grid position past a cell; its formula, placed, if it has one."""
        row = element.getparent()
        if row is not self.row_element:
            self.row_element = row
            index = _index(row.get(_SS + "Index")) if row is not None else None
            self.row = index if index is not None else self.row + 1
            self.column = 0
        index = _index(element.get(_SS + "Index"))
        self.column = index if index is not None else self.column + 1
        column = self.column
        merge = _index(element.get(_SS + "MergeAcross"))
        if merge:
            self.column = min(self.column + merge, _MAX_COLUMN + 1)
        text = element.get(_SS + "Formula")
        if text is None or not formula_may_call_dde(text):
            return None
        self.enter_sheet(element)
        if 1 <= self.row <= _MAX_ROW and 1 <= column <= _MAX_COLUMN:
            reference = f"{column_letters(column)}{self.row}"
        else:
            reference = f"R{self.row}C{column}"
        return Formula(text, self.location(f"{self.sheet}!{reference}"))

    def end_row(self, element: etree._Element) -> None:
        if element is not self.row_element:
            # A row without cells still takes its place (and ss:Span more).
            index = _index(element.get(_SS + "Index"))
            self.row = index if index is not None else self.row + 1
        span = _index(element.get(_SS + "Span"))
        if span:
            self.row = min(self.row + span, _MAX_ROW + 1)
        self.row_element = None

    def end_sheet(self) -> Iterator[Finding]:
        steps: tuple[str, ...] = ()
        if self.state != "visible":
            steps = (f"sheet '{self.sheet}' is {self.state}",)
        for formula in self.pending:
            placed = Formula(formula.text, formula.location, (*steps, *formula.steps))
            yield from findings_for_formula(placed, self.host, self.ctx.config)
        self.pending = []
        self.sheet = ""
        self.state = "visible"

    def named_range(self, element: etree._Element) -> Iterator[Finding]:
        text = element.get(_SS + "RefersTo")
        if text is None:
            return
        detail = f'defined name "{element.get(_SS + "Name", "")}"'
        sheet = self._sheet_of(element)
        if sheet:
            detail += f" (sheet {sheet})"
        if _truthy(element.get(_SS + "Hidden")):
            detail += " (hidden)"
        formula = Formula(text, self.location(detail))
        yield from findings_for_formula(formula, self.host, self.ctx.config)

    def sup_book(self, element: etree._Element) -> Iterator[Finding]:
        # An external link (x:SupBook). A DDE source is written application|topic, with the
        # items as x:ExternName entries; x:WantAdvise asks Excel to keep the link updated.
        self.links += 1
        path = (element.findtext(_X + "Path") or "").strip()
        application, bar, topic = path.partition("|")
        if not bar or not application.strip():
            return
        items = [
            (name.findtext(_X + "Name") or "", name.find(_X + "WantAdvise") is not None)
            for name in element.iterchildren(_X + "ExternName")
        ]
        raw = f"<SupBook><Path>{path}</Path></SupBook>"
        yield _link_finding(
            application.strip(),
            topic,
            items,
            "SupBook",
            raw,
            self.location(f"external link [{self.links}]"),
            self.host,
            self.ctx,
            (f"external link [{self.links}] of the workbook (x:SupBook)",),
        )

    def conditions(self, element: etree._Element, label: str) -> Iterator[Finding]:
        sheet = self._sheet_of(element)
        where = element.findtext(_X + "Range") or ""
        detail = " ".join(p for p in (sheet, label, where) if p)
        for node in element.iter(
            _X + "Value1", _X + "Value2", _X + "Value", _X + "Min", _X + "Max"
        ):
            yield from self.formulas(Formula(node.text or "", self.location(detail)))


def _scan_spreadsheet2003(data: bytes, ctx: ScanContext) -> Iterator[ScanItem]:
    head = sniff_xml(data)
    if head is None or xml_kind(head) is not FileFormat.SPREADSHEETML2003:
        raise UnsupportedInput(
            "mso-application says Excel.Sheet, but the root element is not the Workbook of "
            "SpreadsheetML 2003"
        )
    if not may_hold(data, SPREADSHEET_HINT):
        # Cell by cell streaming costs microseconds per cell; a workbook without a single
        # bar or DDE call cannot hold a remote reference or a DDE SupBook.
        return
    state = _Spreadsheet2003(ctx)
    what = ctx.location.containers[-1]
    for element in iter_end_elements(data, what, _SS_TAGS, ctx):
        tag = element.tag
        if tag == _SS + "Cell":
            formula = state.cell(element)
            if formula is not None:
                yield from state.formulas(formula)
        elif tag == _SS + "Row":
            state.end_row(element)
        elif tag == _SS + "Table":
            state.row = 0
            state.row_element = None
        elif tag == _SS + "Worksheet":
            state.sheet_count += 1
            state.sheet = element.get(_SS + "Name", "") or f"sheet {state.sheet_count}"
            yield from state.end_sheet()
        elif tag == _SS + "NamedRange":
            yield from state.named_range(element)
        elif tag == _X + "SupBook":
            yield from state.sup_book(element)
        elif tag == _X + "WorksheetOptions":
            visible = (element.findtext(_X + "Visible") or "").strip().lower()
            state.state = _SHEET_STATES.get(visible, state.state)
        elif tag == _X + "ConditionalFormatting":
            state.enter_sheet(element)
            yield from state.conditions(element, "conditional formatting")
        elif tag == _X + "DataValidation":
            state.enter_sheet(element)
            yield from state.conditions(element, "data validation")


class WordXml2003Format:
    """Word 2003 XML (WordprocessingML 2003, `w:wordDocument`)."""

    format = FileFormat.WORDML2003

    def identify(self, data: bytes, name: str) -> Confidence:
        return _identify(data, FileFormat.WORDML2003, "word.")

    def scan(self, data: bytes, ctx: ScanContext) -> Iterator[ScanItem]:
        yield from _scan_word2003(data, ctx)


class FlatOpcFormat:
    """An OPC package written as one XML document (`pkg:package`), as Word saves "Word XML"."""

    format = FileFormat.FLATOPC

    def identify(self, data: bytes, name: str) -> Confidence:
        head = sniff_xml(data)
        if head is not None and xml_kind(head) is FileFormat.FLATOPC:
            return Confidence.YES
        return Confidence.NO

    def scan(self, data: bytes, ctx: ScanContext) -> Iterator[ScanItem]:
        yield from _scan_flat_opc(data, ctx)


class SpreadsheetXml2003Format:
    """Excel 2003 XML Spreadsheet (SpreadsheetML 2003, `ss:Workbook`)."""

    format = FileFormat.SPREADSHEETML2003

    def identify(self, data: bytes, name: str) -> Confidence:
        return _identify(data, FileFormat.SPREADSHEETML2003, "excel.")

    def scan(self, data: bytes, ctx: ScanContext) -> Iterator[ScanItem]:
        yield from _scan_spreadsheet2003(data, ctx)
