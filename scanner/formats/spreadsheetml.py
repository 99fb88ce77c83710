"""SpreadsheetML workbooks (ECMA-376 Part 1, 18; [MS-XLSX]): formulas, names and DDE links.

Three places hold a DDE conversation in an Excel package:

* a formula with a remote reference (`cmd|'/c calc'!A0`) in a cell (18.3.1.40 f), in a
  conditional-formatting rule (18.3.1.43 formula) or in a data validation (18.3.1.32/33
  formula1/formula2), or in a defined name of the workbook (18.2.5 definedName);
* a DDE link part (18.14.4 ddeLink) among the workbook's external links, which Excel asks
  to update when the workbook opens;
* a formula that refers to such a link by its index in the workbook's externalReferences
  (`[1]!item`, 18.2.9), which is how Excel itself saves `=cmd|'/c calc'!A0`.

Worksheets can be very large, so parts are streamed with lxml's iterparse (with the same
safety settings as package.parse_xml) and pruned behind the cursor, and a part that holds
no formula element or no character a DDE formula needs is skipped without parsing.

A large sheet is mostly rows that cannot matter: no byte of a bar, a bracket, a character
reference or a DDE/INITIATE name. Such rows are cut out before the tree is built (see
_plan_cuts): libxml2 first checks the whole part, with each cut range wrapped in an element
of its own, which proves the part well-formed and every cut a run of whole elements; then
only what is left is parsed, with an empty element where each cut was. Whenever that
cannot give exactly what the full parse gives, the full parse runs instead.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import cast

from lxml import etree

from scanner.analysis import dde_finding
from scanner.errors import MalformedInput, ScanError
from scanner.formats.base import PartScan, ScanContext, ScanItem, raising
from scanner.formats.officexml import byte_patterns_apply
from scanner.formats.package import (
    Package,
    Relationship,
    safe_iterparse,
    safe_pull_parser,
    safe_target_parser,
)
from scanner.formulas import (
    canonical_reference,
    external_link_references,
    findings_for_formula,
    may_refer_to_dde,
)
from scanner.model import (
    DdeCall,
    Evidence,
    Finding,
    Formula,
    HostApplication,
    Location,
    Technique,
)
from scanner.streams import DecodedStream, StreamLabel

_FORMULA_TAGS = ("f", "formula", "formula1", "formula2")
# Rows and cells are listed only for pruning: an ended row frees its cells, and cells give
# the periodic deep prune its chance inside a row that never seems to end.
_SHEET_TAGS = (*_FORMULA_TAGS, "c", "row", "ddeItem", "ddeLink")
_KEEP = frozenset({*_FORMULA_TAGS, "c"})
_LINK_TAGS = ("ddeItem", "ddeLink")
_WORKBOOK_TAGS = ("sheet", "externalReference", "definedName")
_STATES = {"hidden": "hidden", "veryhidden": "veryHidden"}
_CHECK_EVERY = 1024
# Ancestors examined for a formula's context, and pruned behind the cursor. Real sheets
# nest formulas four or five levels deep (worksheet/extLst/ext/conditionalFormatting/...).
_MAX_ANCESTORS = 12
_MAX_LISTED_ITEMS = 32

# A part is only worth parsing if it has a formula or DDE element and a character that a
# DDE formula needs (formulas.may_refer_to_dde): a bar, a link index bracket, a DDE/INITIATE
# call (any case), or a character reference that could stand for one of those. A comment or
# a processing instruction is one too: the parser drops it and joins the text either side,
# so `DD<!---->E(` reads as `DDE(`. ddeItem/ddeLink element names hold "dde" themselves.
_ELEMENT = re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?(?:f|formula[12]?|ddeLink)[\s/>]")
_ELEMENT_NEEDLES = (b"<f", b":f", b"ddeLink")
_PREFIX_REACH = 4096
_BYTE_TRIGGERS = (b"|", b"[")
_WORD_TRIGGERS = (b"dde", b"initiate")
_WORD_OVERLAP = max(len(word) for word in _WORD_TRIGGERS) - 1
_WINDOW = 1 << 18
# After this many false hits on a pair's rarer second byte, search for the pair itself.
_PAIR_PROBES = 64
_RID_NAMESPACES = (
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
    "http://purl.oclc.org/ooxml/officeDocument/relationships",
)

# The element the fast path wraps each cut range in, and leaves in its place. Its name holds
# "dde", so no cut range (which holds no trigger) can contain a tag of that name.
_WRAP_OPEN = b"<dde.cut>"
_WRAP_CLOSE = b"</dde.cut>"
_MARKER = b"<dde.cut/>"
_PULL_PIECE = 1 << 16
_ROW_TAG = re.compile(rb"<((?:[A-Za-z_][\w.\-]*:)?row)[\s/>]")
_ROW_SEARCH = 1 << 20
_NAME_END = frozenset(b" \t\r\n/>")
_LEADING_SPACE = re.compile(rb"[ \t\r\n]*")


@dataclass(frozen=True)
class _FastPath:
    """When the fast path is tried. Parts under `min_part` bytes parse in milliseconds; a cut
    under `min_cut` bytes saves less than it costs; cuts must cover `min_share` of the part;
    more triggers than `base_triggers` plus one per `bytes_per_trigger` bytes of the part
    leave too little to cut."""

    min_part: int = 32 * 1024
    min_cut: int = 4 * 1024
    min_share: float = 0.25
    base_triggers: int = 4096
    bytes_per_trigger: int = 1024


_TUNING = _FastPath()


class _Inexact(Exception):
    """The fast path cannot give exactly what the full parse gives: run the full parse."""


def _local(tag: object) -> str:
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _rid(element: etree._Element) -> str:
    for namespace in _RID_NAMESPACES:
        value = element.get(f"{{{namespace}}}id")
        if value:
            return value
    return ""


def _find_pair(data: bytes, pair: bytes, start: int, end: int) -> int:
    """Offset of the first two-byte `pair` that starts in [start, end), or -1.

    The pair's second byte is usually the rarer: a memchr for it and a look at the byte
    before it, or a search for the pair itself once that byte turns out to be common.
    """
    first = pair[0]
    index = data.find(pair[1:], start + 1, end + 1)
    probes = 0
    while index != -1:
        if data[index - 1] == first:
            return index - 1
        probes += 1
        if probes > _PAIR_PROBES:
            return data.find(pair, index, end + 1)
        index = data.find(pair[1:], index + 1, end + 1)
    return -1


@dataclass(frozen=True)
class _Survey:
    """One pass over the bytes of an ASCII-compatible XML part.

    `triggers`: sorted offsets where a trigger starts (`|`, `[`, `&#`, DDE or INITIATE in any
    case), or None when there are more than the fast path can use. `markup`: a `<!` (comment,
    CDATA section, DOCTYPE); `comment`: a `<!--`; `instruction`: a `<?` other than one at the
    very start (the XML declaration).
    """

    triggers: tuple[int, ...] | None
    markup: bool
    comment: bool
    instruction: bool

    @property
    def hinted(self) -> bool:
        return self.triggers is None or bool(self.triggers) or self.comment or self.instruction


def _survey(data: bytes, ctx: ScanContext) -> _Survey:
    size = len(data)
    limit = _TUNING.base_triggers + size // _TUNING.bytes_per_trigger
    found: list[int] = []
    for start in range(0, size, _WINDOW):
        ctx.check_time()
        end = min(size, start + _WINDOW)
        for byte in _BYTE_TRIGGERS:
            index = data.find(byte, start, end)
            while index != -1 and len(found) <= limit:
                found.append(index)
                index = data.find(byte, index + 1, end)
        index = _find_pair(data, b"&#", start, end)
        while index != -1 and len(found) <= limit:
            found.append(index)
            index = _find_pair(data, b"&#", index + 1, end)
        # Windows overlap by a word's length, so a word across the seam is found once.
        lowered = data[start : end + _WORD_OVERLAP].lower()
        for word in _WORD_TRIGGERS:
            stop = end - start + len(word) - 1
            index = lowered.find(word, 0, stop)
            while index != -1 and len(found) <= limit:
                found.append(start + index)
                index = lowered.find(word, index + 1, stop)
        if len(found) > limit:
            # The rest is not looked at: markup and instructions are taken to be there.
            return _Survey(None, True, True, True)
    markup = _find_pair(data, b"<!", 0, size) != -1
    lead = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    instruction = _find_pair(data, b"<?", 0, size)
    if instruction == lead:
        instruction = _find_pair(data, b"<?", lead + 2, size)
    return _Survey(
        tuple(sorted(found)),
        markup,
        markup and data.find(b"<!--") != -1,
        instruction != -1,
    )


def _has_element(data: bytes) -> bool:
    """Whether _ELEMENT matches anywhere in `data`, without trying it at every "<".

    Every match holds "<f" (unprefixed f, formula...), ":f" (prefixed) or "ddeLink"; the
    pattern is tried only where those are, from the "<" before them. When that "<" is far
    off, or there are many misses (a styles part full of <font>), the plain search decides.
    """
    for needle in _ELEMENT_NEEDLES:
        index = data.find(needle)
        probes = 0
        while index != -1:
            if needle == b"<f":
                start = index
            else:
                start = data.rfind(b"<", max(0, index - _PREFIX_REACH), index)
                if start == -1:
                    return _ELEMENT.search(data) is not None
            if _ELEMENT.match(data, start):
                return True
            probes += 1
            if probes > _PAIR_PROBES:
                return _ELEMENT.search(data) is not None
            index = data.find(needle, index + 1)
    return False


def _refuse_dtd(data: bytes, what: str) -> None:
    head = data[:8192]
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        text = head.decode("utf-16", errors="ignore")
    elif len(head) > 1 and head[0] == 0:
        text = head.decode("utf-16-be", errors="ignore")
    elif len(head) > 1 and head[1] == 0:
        text = head.decode("utf-16-le", errors="ignore")
    else:
        text = head.decode("latin-1")
    upper = text.upper()
    if "<!DOCTYPE" in upper or "<!ENTITY" in upper:
        raise MalformedInput(f"{what}: XML with a DOCTYPE/entity declaration is refused")


def _prune(element: etree._Element, deep: bool) -> None:
    """Free what the cursor has passed: the element's content and its earlier siblings, and
    when `deep`, the earlier siblings of its ancestors too (elements no event names)."""
    element.clear(keep_tail=False)
    node = element
    for _ in range(_MAX_ANCESTORS if deep else 1):
        parent = node.getparent()
        if parent is None:
            break
        while node.getprevious() is not None:
            del parent[0]
        node = parent


def _walk(
    events: Iterable[tuple[str, etree._Element]],
    what: str,
    ctx: ScanContext,
    keep: frozenset[str],
) -> Iterator[tuple[str, etree._Element]]:
    """(local name, element) for each end event, pruning behind the cursor.

    Each element is pruned once the caller has handled it, except those named in `keep`,
    which their parent's pruning frees (a row frees its cells); every _CHECK_EVERY events
    the whole path to the root is pruned, so elements no event names cannot pile up.
    """
    count = 0
    try:
        for _event, element in events:
            if count == 0 and element.getroottree().docinfo.doctype:
                raise MalformedInput(f"{what}: XML with a DOCTYPE declaration is refused")
            count += 1
            tag = element.tag
            local = tag[tag.rfind("}") + 1 :] if isinstance(tag, str) else ""
            yield local, element
            if count % _CHECK_EVERY == 0:
                ctx.check_time()
                _prune(element, deep=True)
            elif local not in keep:
                _prune(element, deep=False)
    except etree.XMLSyntaxError as error:
        raise MalformedInput(f"{what}: not well-formed XML ({error})") from error


def _iter_xml(
    data: bytes,
    what: str,
    tags: tuple[str, ...],
    ctx: ScanContext,
    keep: frozenset[str] = frozenset(),
) -> Iterator[tuple[str, etree._Element]]:
    """(local name, element) at the end of each element named in `tags` (any namespace),
    pruned as _walk says. Same safety as package.parse_xml: no entity expansion, no network,
    no DTD (refused)."""
    _refuse_dtd(data, what)
    yield from _walk(safe_iterparse(data, [f"{{*}}{tag}" for tag in tags]), what, ctx, keep)


def _root_start(data: bytes) -> int:
    """Offset of the root element's start tag, when only an XML declaration and white space
    come before it; -1 otherwise."""
    position = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    if data.startswith(b"<?xml", position):
        close = data.find(b"?>", position, position + 1024)
        if close == -1:
            return -1
        position = close + 2
    space = _LEADING_SPACE.match(data, position)
    position = space.end() if space is not None else position
    head = data[position : position + 2]
    if len(head) < 2 or head[:1] != b"<" or head[1:] in b"!?/":
        return -1
    return position


def _row_start(data: bytes, opening: bytes, start: int, stop: int) -> int:
    index = data.find(opening, start, stop)
    while index != -1:
        after = index + len(opening)
        if after < len(data) and data[after] in _NAME_END:
            return index
        index = data.find(opening, index + 1, stop)
    return -1


def _plan_cuts(data: bytes, survey: _Survey, ctx: ScanContext) -> tuple[tuple[int, int], ...]:
    """Byte ranges of whole rows that the parse can leave out; () when there are none.

    A range starts at a row's start tag, ends after a row's end tag, and holds no trigger
    byte, so no formula in it can be reported and it holds no ddeItem/ddeLink element. The
    part must have no comment, CDATA section, DOCTYPE or processing instruction (so that a
    range cannot sit inside one), and the whole part, with each range wrapped in an element
    of its own, must pass libxml2 (_validates): that proves the part well-formed, exactly as
    the full parse would find it, and each range a run of whole elements.
    """
    triggers = survey.triggers
    size = len(data)
    if triggers is None or survey.markup or survey.instruction or size < _TUNING.min_part:
        return ()
    root = _root_start(data)
    if root == -1:
        return ()
    match = _ROW_TAG.search(data, root + 1, root + _ROW_SEARCH)
    if match is None:
        return ()
    opening = b"<" + match.group(1)
    closing = b"</" + match.group(1) + b">"
    cuts: list[tuple[int, int]] = []
    total = 0
    # Cuts start after the root's start tag: a wrapper around the root and elements beside
    # it would hide the "extra content" the full parse refuses. (_validates could not pass
    # such a cut in a part worth parsing anyway; this keeps it out by construction.)
    position = root + 1
    for trigger in (*triggers, size):
        if trigger < position:
            continue
        start = _row_start(data, opening, position, trigger)
        if start != -1:
            end = data.rfind(closing, start, trigger)
            if end != -1 and end + len(closing) - start >= _TUNING.min_cut:
                cuts.append((start, end + len(closing)))
                total += end + len(closing) - start
        if trigger >= size:
            break
        # The row holding the trigger is kept: the next cut starts after it ends.
        end = data.find(closing, trigger)
        if end == -1:
            break
        position = end + len(closing)
    if not cuts or total < size * _TUNING.min_share:
        return ()
    if not _validates(data, cuts, ctx):
        return ()
    return tuple(cuts)


def _slices(data: bytes, start: int, end: int, size: int, ctx: ScanContext) -> Iterator[bytes]:
    for offset in range(start, end, size):
        ctx.check_time()
        yield data[offset : min(end, offset + size)]


def _pieces(
    data: bytes, cuts: Iterable[tuple[int, int]], wrap: bool, size: int, ctx: ScanContext
) -> Iterator[bytes]:
    """The part with each cut between _WRAP_OPEN and _WRAP_CLOSE (`wrap`), or replaced by
    _MARKER, in slices of at most `size` bytes."""
    position = 0
    for start, end in cuts:
        yield from _slices(data, position, start, size, ctx)
        if wrap:
            yield _WRAP_OPEN
            yield from _slices(data, start, end, size, ctx)
            yield _WRAP_CLOSE
        else:
            yield _MARKER
        position = end
    yield from _slices(data, position, len(data), size, ctx)


class _Prolog:
    """Parser target of _validates: it builds nothing and hears only of a DOCTYPE."""

    def __init__(self) -> None:
        self.doctype_seen = False

    def doctype(self, name: str | None, pubid: str | None, system: str | None) -> None:
        self.doctype_seen = True

    def close(self) -> None:
        return None


def _validates(data: bytes, cuts: list[tuple[int, int]], ctx: ScanContext) -> bool:
    """Whether the part, each cut wrapped in a dde.cut element, is well-formed and namespace
    well-formed XML without a DOCTYPE, to the same libxml2 settings as safe_iterparse.

    If it is, the part itself is (unwrapping a run of whole elements inside the root keeps
    it so), and so is each cut: no tag in a cut can close the wrapper or open an element of
    its name, so the wrapper's end tag can only match if the cut closes all it opens and
    nothing it did not open. A parser with a target builds no tree; it does not fail on
    namespace errors, which it only logs, so the log is read too. xml:id values are checked
    (an NCName, unique) as the tree is built, which it is not: a part with one is refused.
    """
    if data.find(b"xml:id") != -1:
        return False
    target = _Prolog()
    # The stubs' ParserTarget protocol lists every callback; lxml calls only those the
    # target has, and each one it has costs a Python call per node.
    parser = safe_target_parser(cast("etree.ParserTarget[None]", target))
    try:
        for piece in _pieces(data, cuts, True, _WINDOW, ctx):
            parser.feed(piece)
        parser.close()
    except etree.XMLSyntaxError:
        return False
    if target.doctype_seen:
        return False
    return all(entry.level < etree.ErrorLevels.ERROR for entry in parser.feed_error_log)


def _reduced_events(
    data: bytes, cuts: tuple[tuple[int, int], ...], tags: tuple[str, ...], ctx: ScanContext
) -> Iterator[tuple[str, etree._Element]]:
    """End events of the part with each cut replaced by an empty element, from a pull
    parser with safe_iterparse's settings (iterparse itself feeds one)."""
    parser = safe_pull_parser([f"{{*}}{tag}" for tag in tags])
    for piece in _pieces(data, cuts, False, _PULL_PIECE, ctx):
        parser.feed(piece)
        yield from _element_events(parser)
    parser.close()
    yield from _element_events(parser)


def _element_events(parser: etree.XMLPullParser) -> Iterator[tuple[str, etree._Element]]:
    for event, element in parser.read_events():
        if isinstance(element, etree._Element):
            yield event, element


@dataclass(frozen=True)
class _Sheet:
    name: str
    state: str

    @property
    def label(self) -> str:
        return f"{self.name} ({self.state})" if self.state != "visible" else self.name


@dataclass(frozen=True)
class _DefinedName:
    name: str
    text: str
    sheet: str
    hidden: bool


@dataclass(frozen=True)
class _Workbook:
    """What the workbook part says about the rest of the package."""

    sheets: tuple[tuple[str, _Sheet], ...]
    links: tuple[str, ...]
    names: tuple[_DefinedName, ...]
    relationships: tuple[Relationship, ...]


@dataclass(frozen=True)
class _DdeItem:
    name: str
    advise: bool


@dataclass(frozen=True)
class _DdeLink:
    service: str
    topic: str
    items: tuple[_DdeItem, ...]

    @property
    def item_text(self) -> str:
        names = [item.name for item in self.items[:_MAX_LISTED_ITEMS]]
        more = len(self.items) - len(names)
        return ", ".join(names) + (f" (and {more} more)" if more > 0 else "")

    @property
    def raw(self) -> str:
        text = f'<ddeLink ddeService="{self.service}" ddeTopic="{self.topic}">'
        return text + (f" items: {self.item_text}" if self.items else " (no items)")


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "on")


def _read_workbook(package: Package, main_part: str, ctx: ScanContext) -> _Workbook:
    relationships = package.relationships(main_part)
    by_id = {rel.id: rel for rel in relationships}
    sheets: list[tuple[str, _Sheet]] = []
    sheet_names: list[str] = []
    links: list[str] = []
    raw_names: list[tuple[str, str, str | None, bool]] = []
    for tag, element in _iter_xml(package.read(main_part), main_part, _WORKBOOK_TAGS, ctx):
        if tag == "sheet":
            name = element.get("name", "")
            state = _STATES.get(element.get("state", "").strip().lower(), "visible")
            sheet_names.append(name)
            rel = by_id.get(_rid(element))
            if rel is not None and not rel.external:
                sheets.append((rel.target, _Sheet(name, state)))
        elif tag == "externalReference":
            rel = by_id.get(_rid(element))
            links.append(rel.target if rel is not None and not rel.external else "")
        elif tag == "definedName":
            raw_names.append(
                (
                    element.get("name", ""),
                    element.text or "",
                    element.get("localSheetId"),
                    _true(element.get("hidden")),
                )
            )
    names: list[_DefinedName] = []
    for name, text, local_sheet, hidden in raw_names:
        sheet = ""
        index = (local_sheet or "").strip()
        # ASCII digits only (isdigit() also accepts "²", which int() refuses), and few of
        # them (an xsd:unsignedInt; int() refuses more than 4300 digits).
        if index.isascii() and index.isdigit() and len(index) <= 10:
            position = int(index)
            sheet = sheet_names[position] if position < len(sheet_names) else index
        names.append(_DefinedName(name, text, sheet, hidden))
    return _Workbook(tuple(sheets), tuple(links), tuple(names), relationships)


def _read_dde_links(data: bytes, part: str, ctx: ScanContext) -> Iterator[_DdeLink]:
    items: list[_DdeItem] = []
    for tag, element in _iter_xml(data, part, _LINK_TAGS, ctx):
        if tag == "ddeItem":
            items.append(_DdeItem(element.get("name", ""), _true(element.get("advise"))))
            continue
        link = _DdeLink(element.get("ddeService", ""), element.get("ddeTopic", ""), tuple(items))
        items = []
        if link.service.strip():
            yield link


class _Scan:
    """State shared by the part scans of one workbook."""

    def __init__(self, package: Package, main_part: str, ctx: ScanContext) -> None:
        self.package = package
        self.main_part = main_part
        self.ctx = ctx
        self.host = ctx.host or HostApplication.EXCEL
        self.display = {name.casefold(): name for name in package.names}
        self.workbook = _Workbook((), (), (), ())
        self.sheet_by_part: dict[str, _Sheet] = {}
        self.link_position: dict[str, int] = {}
        self.links: dict[str, tuple[_DdeLink, ...]] = {}

    def use_workbook(self, workbook: _Workbook) -> None:
        self.workbook = workbook
        for part, sheet in workbook.sheets:
            self.sheet_by_part.setdefault(part.casefold(), sheet)
        for position, part in enumerate(workbook.links, start=1):
            if part:
                self.link_position.setdefault(part.casefold(), position)

    def location(self, part: str) -> Location:
        return self.ctx.location.child(self.display.get(part.casefold(), part))

    def link_finding(self, link: _DdeLink, location: Location, steps: tuple[str, ...]) -> Finding:
        call = DdeCall(
            application=link.service,
            topic=link.topic,
            item=link.item_text,
            keyword="ddeLink",
            automatic=any(item.advise for item in link.items),
        )
        evidence = Evidence(
            raw=link.raw,
            deobfuscated=canonical_reference(link.service, link.topic),
            steps=steps,
        )
        return dde_finding(call, Technique.DDE_LINK, evidence, location, self.host, self.ctx.config)

    def formula_findings(self, formula: Formula) -> list[Finding]:
        findings = findings_for_formula(formula, self.host, self.ctx.config)
        for reference in external_link_references(formula.text):
            if reference.index > len(self.workbook.links):
                continue
            part = self.workbook.links[reference.index - 1]
            for link in self.links.get(part.casefold(), ()):
                canonical = canonical_reference(link.service, link.topic, reference.item)
                call = DdeCall(
                    application=link.service,
                    topic=link.topic,
                    item=reference.item,
                    keyword="remote reference",
                    automatic=True,
                )
                step = (
                    f"{reference.raw}: external link [{reference.index}] of the workbook is "
                    f"{self.display.get(part.casefold(), part)}, a DDE link: read as {canonical}"
                )
                evidence = Evidence(
                    raw=formula.text, deobfuscated=canonical, steps=(*formula.steps, step)
                )
                findings.append(
                    dde_finding(
                        call,
                        Technique.DDE_FORMULA,
                        evidence,
                        formula.location,
                        self.host,
                        self.ctx.config,
                    )
                )
        return findings

    def scan_workbook_part(self) -> Iterator[ScanItem]:
        location = self.location(self.main_part)
        for name in self.workbook.names:
            detail = f'defined name "{name.name}"'
            if name.sheet:
                detail += f" (sheet {name.sheet})"
            if name.hidden:
                detail += " (hidden)"
            yield from self.formula_findings(Formula(name.text, location.at(detail)))

    def scan_link_part(self, part: str) -> Iterator[ScanItem]:
        index = self.link_position.get(part.casefold(), 0)
        if index:
            detail = f"external link [{index}]"
            steps: tuple[str, ...] = (
                f"external link [{index}] of the workbook's externalReferences",
            )
        else:
            detail = "ddeLink"
            steps = ("not listed in the workbook's externalReferences",)
        location = self.location(part).at(detail)
        for link in self.links.get(part.casefold(), ()):
            yield self.link_finding(link, location, steps)

    def scan_sheet_part(self, part: str, data: bytes) -> Iterator[ScanItem]:
        """The formulas and DDE links of a sheet (or any other part of the workbook folder)."""
        if byte_patterns_apply(data):
            # Only a part with a formula or DDE element and a trigger can hold anything to
            # report; it is parsed in full, or with its trigger-free rows cut out.
            if not _has_element(data):
                return
            survey = _survey(data, self.ctx)
            if not survey.hinted:
                return
            cuts = _plan_cuts(data, survey, self.ctx)
            if cuts:
                events = _walk(
                    _reduced_events(data, cuts, _SHEET_TAGS, self.ctx), part, self.ctx, _KEEP
                )
                # Collected before anything is yielded, so that the full parse can still
                # take over with nothing given twice.
                try:
                    found = list(self.sheet_items(part, events, exact=False))
                except (_Inexact, MalformedInput):
                    pass
                else:
                    yield from found
                    return
        yield from self.sheet_items(
            part, _iter_xml(data, part, _SHEET_TAGS, self.ctx, _KEEP), exact=True
        )

    def sheet_items(
        self, part: str, events: Iterable[tuple[str, etree._Element]], exact: bool
    ) -> Iterator[ScanItem]:
        """Findings from a sheet's end events. Without `exact`, formula elements may be
        missing from the events (none that could be reported), so a finding that would be
        located by counting formula elements raises _Inexact."""
        sheet = self.sheet_by_part.get(part.casefold())
        if sheet is not None:
            label = sheet.label
            base_steps: tuple[str, ...] = ()
            if sheet.state != "visible":
                base_steps = (f"sheet '{sheet.name}' is {sheet.state}",)
        else:
            # An orphaned sheet (Excel never loads it) or another part with formulas, such
            # as a chart's series references.
            label = "(not a workbook sheet)"
            base_steps = ("part is not one of the sheets the workbook lists",)
        location = self.location(part)
        items: list[_DdeItem] = []
        counter = 0
        for tag, element in events:
            if tag == "c" or tag == "row":
                continue
            if tag == "ddeItem":
                items.append(_DdeItem(element.get("name", ""), _true(element.get("advise"))))
                continue
            if tag == "ddeLink":
                link = _DdeLink(
                    element.get("ddeService", ""), element.get("ddeTopic", ""), tuple(items)
                )
                items = []
                if link.service.strip():
                    yield self.link_finding(
                        link, location.at(f"{label} ddeLink"), (*base_steps, "ddeLink in a sheet")
                    )
                continue
            counter += 1
            if not may_refer_to_dde(element.text or ""):
                continue
            placed = _formula_place(element, label, counter)
            if placed is None:
                continue
            detail, steps, counted = placed
            formula = Formula(element.text or "", location.at(detail), (*base_steps, *steps))
            findings = self.formula_findings(formula)
            if findings and counted and not exact:
                raise _Inexact(f"{part}: formula {counter} is located by its position")
            yield from findings


def _formula_place(
    element: etree._Element, label: str, counter: int
) -> tuple[str, tuple[str, ...], bool] | None:
    """Where a formula element sits, what its attributes mean, and whether that place is
    given by `counter` alone; None when it has no text."""
    if not (element.text or "").strip():
        # Shared-formula followers carry no text (the master does), and data-table
        # formulas (t="dataTable") have none: nothing of their own to read.
        return None
    tag = _local(element.tag)
    kind = (element.get("t") or "normal").strip()
    if tag == "f" and kind == "dataTable":
        return None
    steps: list[str] = []
    if tag == "f" and kind == "shared":
        shared = element.get("si", "?")
        steps.append(f"shared formula {shared}: master cell, used by {element.get('ref', '')}")
    elif tag == "f" and kind == "array":
        steps.append(f"array formula over {element.get('ref', '')}")
    node = element.getparent()
    for _ in range(_MAX_ANCESTORS):
        if node is None:
            break
        name = _local(node.tag)
        if name == "c" and tag == "f":
            return f"{label}!{node.get('r', '?')}", tuple(steps), False
        if name == "cfRule":
            outer = node.getparent()
            sqref = outer.get("sqref", "") if outer is not None else ""
            return f"{label} conditional formatting {sqref}".rstrip(), tuple(steps), False
        if name == "dataValidation":
            detail = f"{label} data validation {node.get('sqref', '')}".rstrip()
            return detail, tuple(steps), False
        node = node.getparent()
    return f"{label} formula {counter}", tuple(steps), True


def _link_parts(package: Package, workbook: _Workbook) -> list[str]:
    found: list[str] = []
    seen: set[str] = set()

    def add(name: str) -> None:
        if name and name.casefold() not in seen and package.has(name):
            seen.add(name.casefold())
            found.append(name)

    for target in workbook.links:
        add(target)
    for rel in workbook.relationships:
        if not rel.external and rel.type.endswith("/externalLink"):
            add(rel.target)
    for name in package.names:
        folded = name.casefold()
        if (
            folded.startswith("xl/externallinks/")
            and folded.endswith(".xml")
            and "/_rels/" not in folded
        ):
            add(name)
    return found


def _sheet_parts(
    package: Package, main_part: str, workbook: _Workbook, exclude: Iterable[str]
) -> list[str]:
    """Sheets in workbook order, then every other XML part of the workbook folder."""
    skip = {name.casefold() for name in exclude} | {main_part.casefold()}
    found: list[str] = []

    def add(name: str) -> None:
        folded = name.casefold()
        if folded not in skip and package.has(name):
            skip.add(folded)
            found.append(name)

    for target, _sheet in workbook.sheets:
        add(target)
    for rel in workbook.relationships:
        if not rel.external and rel.target.casefold().endswith(".xml"):
            add(rel.target)
    folder = posixpath.dirname(main_part).casefold()
    roots = {"xl/", folder + "/"} if folder else {"xl/"}
    for name in package.names:
        folded = name.casefold()
        if (
            any(folded.startswith(root) for root in roots)
            and folded.endswith(".xml")
            and "/_rels/" not in folded
        ):
            add(name)
    return found


def scan_workbook(package: Package, main_part: str, ctx: ScanContext) -> Iterator[ScanItem]:
    """Formulas, defined names and DDE links of an Excel package, one PartScan per part.

    The workbook part and the external-link parts are read first, because the sheets need
    them: sheet names and states label the cells, and externalReferences give `[n]!item`
    formulas their DDE link. A part that cannot be read is not an error of the whole
    package: its error is held and raised from its own PartScan, so the walker records it
    at that part, and the other parts are scanned without what it would have told.
    """
    state = _Scan(package, main_part, ctx)
    try:
        state.use_workbook(_read_workbook(package, main_part, ctx))
    except ScanError as error:
        yield PartScan(state.location(main_part), partial(raising, error))
    else:
        yield PartScan(state.location(main_part), state.scan_workbook_part)

    link_parts = _link_parts(package, state.workbook)
    for part in link_parts:
        try:
            state.links[part.casefold()] = tuple(_read_dde_links(package.read(part), part, ctx))
        except ScanError as error:
            yield PartScan(state.location(part), partial(raising, error))
        else:
            yield PartScan(state.location(part), partial(state.scan_link_part, part))

    for part in _sheet_parts(package, main_part, state.workbook, link_parts):

        def sheet_part(part: str = part) -> Iterator[ScanItem]:
            data = package.read(part)
            yield DecodedStream(StreamLabel.XML_PART, data, state.location(part))
            yield from state.scan_sheet_part(part, data)

        yield PartScan(state.location(part), sheet_part)
