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
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial

from lxml import etree

from scanner.analysis import dde_finding
from scanner.errors import MalformedInput, ScanError
from scanner.formats.base import PartScan, ScanContext, ScanItem, raising
from scanner.formats.officexml import byte_patterns_apply
from scanner.formats.package import Package, Relationship, safe_iterparse
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
# DDE formula needs: a bar, a link index bracket, a DDE/INITIATE call, or a character
# reference that could stand for one of those.
_ELEMENT = re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?(?:f|formula[12]?|ddeLink)[\s/>]")
_HINT = re.compile(rb"[|\[]|&#|(?i:dde|initiate)")
_RID_NAMESPACES = (
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
    "http://purl.oclc.org/ooxml/officeDocument/relationships",
)


def _local(tag: object) -> str:
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _rid(element: etree._Element) -> str:
    for namespace in _RID_NAMESPACES:
        value = element.get(f"{{{namespace}}}id")
        if value:
            return value
    return ""


def _worth_parsing(data: bytes) -> bool:
    """False only when the part cannot hold a formula or DDE link that ddescan would report."""
    if not byte_patterns_apply(data):
        return True
    return _ELEMENT.search(data) is not None and _HINT.search(data) is not None


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


def _iter_xml(
    data: bytes,
    what: str,
    tags: tuple[str, ...],
    ctx: ScanContext,
    keep: frozenset[str] = frozenset(),
) -> Iterator[tuple[str, etree._Element]]:
    """(local name, element) at the end of each element named in `tags` (any namespace).

    Each element is pruned once the caller has handled it, except those named in `keep`,
    which their parent's pruning frees (a row frees its cells); every _CHECK_EVERY events
    the whole path to the root is pruned, so elements no event names cannot pile up.
    Same safety as package.parse_xml: no entity expansion, no network, no DTD (refused).
    """
    _refuse_dtd(data, what)
    events = safe_iterparse(data, [f"{{*}}{tag}" for tag in tags])
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
        for tag, element in _iter_xml(data, part, _SHEET_TAGS, self.ctx, _KEEP):
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
            detail, steps = placed
            formula = Formula(element.text or "", location.at(detail), (*base_steps, *steps))
            yield from self.formula_findings(formula)


def _formula_place(
    element: etree._Element, label: str, counter: int
) -> tuple[str, tuple[str, ...]] | None:
    """Where a formula element sits, and what its attributes mean; None when it has no text."""
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
            return f"{label}!{node.get('r', '?')}", tuple(steps)
        if name == "cfRule":
            outer = node.getparent()
            sqref = outer.get("sqref", "") if outer is not None else ""
            return f"{label} conditional formatting {sqref}".rstrip(), tuple(steps)
        if name == "dataValidation":
            return f"{label} data validation {node.get('sqref', '')}".rstrip(), tuple(steps)
        node = node.getparent()
    return f"{label} formula {counter}", tuple(steps)


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
            if _worth_parsing(data):
                yield from state.scan_sheet_part(part, data)

        yield PartScan(state.location(part), sheet_part)
