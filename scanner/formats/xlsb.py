"""Excel binary workbooks (.xlsb; [MS-XLSB]): DDE links and the formulas that use them.

An .xlsb is an OPC package (ECMA-376 Part 2) whose parts are sequences of binary records
(2.1.4: a record type of one or two bytes and a size of one to four bytes, seven bits in
each byte and the high bit set while more follow). The workbook part lists the sheets
(BrtBundleSh) and the supporting links (2.2.7.3: BrtSupSelf, BrtSupSame, BrtSupAddin and
BrtSupBookSrc, which names an external link part), then the Xti array that formulas index
(BrtExternSheet). An external link part (2.1.7.25) starts with BrtBeginSupBook, whose sbt
0x0001 makes it a DDE data source with its service and topic strings; its items are
BrtSupNameStart records, each followed by BrtSupNameBits with the advise and OLE flags.

`=cmd|'/c calc.exe'!A0` is saved as such an external link and a cell formula (BrtFmla*)
whose PtgNameX names an Xti that points at it. Formulas are decompiled with the BIFF8
decompiler of scanner.formats.biff, in its XLSB dialect.
"""

from __future__ import annotations

import enum
import posixpath
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

from scanner.analysis import dde_finding
from scanner.errors import MalformedInput, ScanError, UnsupportedInput
from scanner.formats.base import PartScan, ScanContext, ScanItem, raising
from scanner.formats.biff import (
    MAX_LISTED_ITEMS,
    XLSB_PTGS,
    DdeTarget,
    DefinedName,
    Resolved,
    SheetKind,
    SheetState,
    cell_name,
    defined_name_text,
    findings_for_rgce,
    items_text,
    own_sheets_prefix,
    sheet_label,
    sheet_steps,
    show,
    xti_link,
)
from scanner.formats.ooxml import EXCEL_BINARY_MAIN, package_kind
from scanner.formats.package import Package
from scanner.formulas import canonical_reference
from scanner.model import (
    Confidence,
    DdeCall,
    Evidence,
    FileFormat,
    Finding,
    HostApplication,
    Location,
    Technique,
)

# Record types ([MS-XLSB] 2.3 record enumeration).
BRT_FMLA_STRING = 0x0008
BRT_FMLA_NUM = 0x0009
BRT_FMLA_BOOL = 0x000A
BRT_FMLA_ERROR = 0x000B
BRT_ROW_HDR = 0x0000
BRT_NAME = 0x0027
BRT_BUNDLE_SH = 0x009C
BRT_SUP_BOOK_SRC = 0x0163
BRT_SUP_SELF = 0x0165
BRT_SUP_SAME = 0x0166
BRT_BEGIN_SUP_BOOK = 0x0168
BRT_EXTERN_SHEET = 0x016A
BRT_ARR_FMLA = 0x01AA
BRT_SHR_FMLA = 0x01AB
BRT_SUP_NAME_START = 0x0241
BRT_SUP_NAME_BITS = 0x024A
BRT_SUP_ADDIN = 0x029B

# BrtBeginSupBook.sbt: the kind of external link.
SBT_WORKBOOK = 0x0000
SBT_DDE = 0x0001
SBT_OLE = 0x0002
SBT_NAMES = {SBT_WORKBOOK: "external workbook", SBT_DDE: "DDE", SBT_OLE: "OLE"}

# SupNameBits flags of a DDE item (the same bits as a BIFF8 ExternName).
ITEM_ADVISE = 0x0002
ITEM_OLE = 0x0008
# Excel writes an item name that reads as a cell reference behind this prefix.
ESCAPED_NAME_PREFIX = "_xlbgnm."

CT_EXTERNAL_LINK = "application/vnd.ms-excel.externallink"
SHEET_CONTENT_TYPES = {
    "application/vnd.ms-excel.worksheet": SheetKind.WORKSHEET,
    "application/vnd.ms-excel.macrosheet": SheetKind.MACRO_SHEET,
    "application/vnd.ms-excel.intlmacrosheet": SheetKind.MACRO_SHEET,
    "application/vnd.ms-excel.dialogsheet": SheetKind.DIALOG_SHEET,
}
MACRO_SHEET_RELATIONSHIPS = ("/xlmacrosheet", "/xlintlmacrosheet")
_CHECK_EVERY = 4096
_FORMULA_CELLS = (BRT_FMLA_STRING, BRT_FMLA_NUM, BRT_FMLA_BOOL, BRT_FMLA_ERROR)
_RANGE_FORMULAS = (BRT_SHR_FMLA, BRT_ARR_FMLA)


def records(
    data: bytes, what: str, check_time: Callable[[], None]
) -> Iterator[tuple[int, int, bytes]]:
    """(offset, type, body) of each record of a part ([MS-XLSB] 2.1.4)."""
    offset = 0
    end = len(data)
    count = 0
    while offset < end:
        count += 1
        if count % _CHECK_EVERY == 0:
            check_time()
        at = offset
        record_type = data[offset]
        offset += 1
        if record_type & 0x80:
            if offset >= end:
                raise MalformedInput(f"{what}: record type at offset {at} is cut off")
            high = data[offset]
            offset += 1
            if high & 0x80:
                raise MalformedInput(f"{what}: record type at offset {at} is over two bytes")
            record_type = (record_type & 0x7F) | (high << 7)
        size = 0
        for shift in range(0, 28, 7):
            if offset >= end:
                raise MalformedInput(f"{what}: record size at offset {at} is cut off")
            byte = data[offset]
            offset += 1
            size |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
        else:
            raise MalformedInput(f"{what}: record size at offset {at} is over four bytes")
        if offset + size > end:
            raise MalformedInput(
                f"{what}: record 0x{record_type:04X} at offset {at} declares {size} bytes but "
                f"only {end - offset} remain"
            )
        yield at, record_type, data[offset : offset + size]
        offset += size


class _Body:
    """A bounded cursor over one record body."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.pos = 0
        self.what = what

    def take(self, size: int) -> bytes:
        if size < 0 or self.pos + size > len(self.data):
            raise MalformedInput(
                f"{self.what}: {size} bytes wanted but only {len(self.data) - self.pos} left"
            )
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def u16(self) -> int:
        value: int = struct.unpack("<H", self.take(2))[0]
        return value

    def u32(self) -> int:
        value: int = struct.unpack("<I", self.take(4))[0]
        return value

    def i32(self) -> int:
        value: int = struct.unpack("<i", self.take(4))[0]
        return value

    def wide_string(self) -> str:
        """XLWideString (2.5.169): a 4-byte character count, then UTF-16LE characters."""
        count = self.u32()
        if count > (len(self.data) - self.pos) // 2:
            raise MalformedInput(
                f"{self.what}: a string of {count} characters runs past the end of the record"
            )
        return self.take(2 * count).decode("utf-16-le", "replace")

    def nullable_wide_string(self) -> str | None:
        """XLNullableWideString: 0xFFFFFFFF for none."""
        if self.pos + 4 <= len(self.data) and self.data[self.pos : self.pos + 4] == b"\xff" * 4:
            self.pos += 4
            return None
        return self.wide_string()

    def formula(self) -> bytes:
        """The rgce of a CellParsedFormula/NameParsedFormula/...: a 4-byte cce, the tokens."""
        return self.take(self.u32())


@dataclass(frozen=True)
class _Sheet:
    name: str
    state: SheetState
    rel_id: str

    @property
    def label(self) -> str:
        return sheet_label(self.name, self.state)


class _LinkRecord(enum.Enum):
    """The supporting link record types of a workbook part (2.2.7.3)."""

    SELF = "BrtSupSelf"
    SAME_SHEET = "BrtSupSame"
    ADD_IN = "BrtSupAddin"
    SOURCE = "BrtSupBookSrc"


@dataclass(frozen=True)
class _Link:
    """A supporting link record; `number` counts the BrtSupBookSrc records from 1."""

    kind: _LinkRecord
    rel_id: str = ""
    number: int = 0


@dataclass(frozen=True)
class _Workbook:
    sheets: tuple[_Sheet, ...]
    links: tuple[_Link, ...]
    xti: tuple[tuple[int, int, int], ...]
    names: tuple[DefinedName, ...]


@dataclass(frozen=True)
class _Item:
    stored: str
    flags: int

    @property
    def name(self) -> str:
        if self.stored.startswith(ESCAPED_NAME_PREFIX):
            return self.stored[len(ESCAPED_NAME_PREFIX) :]
        return self.stored

    @property
    def described(self) -> str:
        words = [w for bit, w in ((ITEM_ADVISE, "advise"), (ITEM_OLE, "ole")) if self.flags & bit]
        return show(self.stored) + (f" ({', '.join(words)})" if words else "")


@dataclass(frozen=True)
class _ExternalLink:
    """An external link part: its BrtBeginSupBook and its items."""

    part: str
    sbt: int
    service: str
    topic: str
    items: tuple[_Item, ...]

    @property
    def is_dde(self) -> bool:
        return self.sbt == SBT_DDE and bool(self.service.strip())

    def item(self, iname: int) -> _Item | None:
        return self.items[iname - 1] if 1 <= iname <= len(self.items) else None


def _damage(errors: list[MalformedInput]) -> MalformedInput | None:
    """One error for the damaged records of a part: the first, and how many more."""
    if not errors:
        return None
    more = f"; and {len(errors) - 1} more damaged records" if len(errors) > 1 else ""
    return MalformedInput(f"{errors[0]}{more}")


def _read_workbook(
    data: bytes, part: str, ctx: ScanContext
) -> tuple[_Workbook, MalformedInput | None]:
    """What the workbook part says, as far as it can be read, and what was damaged."""
    sheets: list[_Sheet] = []
    links: list[_Link] = []
    xti: list[tuple[int, int, int]] = []
    raw_names: list[tuple[str, bytes, bool, int]] = []
    errors: list[MalformedInput] = []
    sources = 0
    try:
        for at, record_type, body in records(data, part, ctx.check_time):
            what = f"{part}: record 0x{record_type:04X} at offset {at}"
            try:
                if record_type == BRT_BUNDLE_SH:
                    reader = _Body(body, what)
                    state = SheetState.of(reader.u32())
                    reader.u32()  # iTabID
                    rel_id = reader.nullable_wide_string() or ""
                    sheets.append(_Sheet(reader.wide_string(), state, rel_id))
                elif record_type == BRT_SUP_BOOK_SRC:
                    sources += 1
                    rel_id = _Body(body, what).nullable_wide_string() or ""
                    links.append(_Link(_LinkRecord.SOURCE, rel_id, sources))
                elif record_type == BRT_SUP_SELF:
                    links.append(_Link(_LinkRecord.SELF))
                elif record_type == BRT_SUP_SAME:
                    links.append(_Link(_LinkRecord.SAME_SHEET))
                elif record_type == BRT_SUP_ADDIN:
                    links.append(_Link(_LinkRecord.ADD_IN))
                elif record_type == BRT_EXTERN_SHEET:
                    reader = _Body(body, what)
                    count = reader.u32()
                    room = (len(body) - 4) // 12
                    if count > room:
                        errors.append(
                            MalformedInput(
                                f"{what}: BrtExternSheet declares {count} entries but holds {room}"
                            )
                        )
                        count = room
                    xti.extend((reader.u32(), reader.i32(), reader.i32()) for _ in range(count))
                elif record_type == BRT_NAME:
                    reader = _Body(body, what)
                    flags = reader.u32()
                    reader.take(1)  # chKey
                    itab = reader.u32()
                    name = reader.wide_string()
                    raw_names.append((name, reader.formula(), bool(flags & 0x01), itab))
            except MalformedInput as error:
                errors.append(error)
    except MalformedInput as error:
        errors.append(error)
    names = tuple(
        DefinedName(
            name,
            rgce,
            hidden,
            "" if itab == 0xFFFFFFFF else sheets[itab].name if itab < len(sheets) else str(itab),
        )
        for name, rgce, hidden, itab in raw_names
    )
    return _Workbook(tuple(sheets), tuple(links), tuple(xti), names), _damage(errors)


def _read_external_link(
    data: bytes, part: str, ctx: ScanContext
) -> tuple[_ExternalLink, MalformedInput | None]:
    """An external link part's BrtBeginSupBook and items, as far as they can be read."""
    sbt = -1
    service = topic = ""
    items: list[_Item] = []
    pending: str | None = None
    errors: list[MalformedInput] = []
    try:
        for at, record_type, body in records(data, part, ctx.check_time):
            what = f"{part}: record 0x{record_type:04X} at offset {at}"
            try:
                if record_type == BRT_BEGIN_SUP_BOOK and sbt < 0:
                    reader = _Body(body, what)
                    kind = reader.u16()
                    if kind == SBT_DDE:
                        service = reader.wide_string()
                        topic = reader.wide_string()
                    sbt = kind
                elif record_type == BRT_SUP_NAME_START:
                    if pending is not None:
                        items.append(_Item(pending, 0))
                    pending = _Body(body, what).wide_string()
                elif record_type == BRT_SUP_NAME_BITS and pending is not None:
                    flags = struct.unpack_from("<H", body, 0)[0] if len(body) >= 2 else 0
                    items.append(_Item(pending, flags))
                    pending = None
            except MalformedInput as error:
                errors.append(error)
    except MalformedInput as error:
        errors.append(error)
    if pending is not None:
        items.append(_Item(pending, 0))
    return _ExternalLink(part, sbt, service, topic, tuple(items)), _damage(errors)


class _XlsbLinks:
    """LinkResolver over an .xlsb workbook's supporting links, Xti array and names."""

    def __init__(self, book: _Workbook, external: dict[int, _ExternalLink]) -> None:
        self.book = book
        self.external = external

    def _link(self, ixti: int) -> tuple[tuple[int, int, int], _Link] | None:
        return xti_link(self.book.xti, self.book.links, ixti)

    def _steps(self, token: str, ixti: int, link: _Link, external: _ExternalLink) -> list[str]:
        return [
            f"{token}: BrtExternSheet entry {ixti} points to external link [{link.number}] "
            f"({external.part}), a DDE source (BrtBeginSupBook sbt 1) with service "
            f"{external.service!r} and topic {external.topic!r}"
        ]

    def external_name(self, ixti: int, iname: int) -> Resolved:
        found = self._link(ixti)
        if found is None:
            return Resolved(f"#REF!{iname}")
        _entry, link = found
        if link.kind is _LinkRecord.SOURCE:
            external = self.external.get(link.number)
            item = external.item(iname) if external is not None else None
            if external is not None and external.is_dde:
                steps = self._steps("PtgNameX", ixti, link, external)
                name: str | None = None
                if item is None:
                    steps.append(f"it has no item {iname}: the item is unknown")
                else:
                    name = item.name
                    steps.append(f"BrtSupNameStart {iname} of it is the item {item.stored!r}")
                    if item.stored != item.name:
                        steps.append(
                            f"item {item.stored!r} read as {item.name!r} (Excel's "
                            f"{ESCAPED_NAME_PREFIX} escape for a name that reads as a cell)"
                        )
                return Resolved(
                    canonical_reference(external.service, external.topic, name),
                    DdeTarget(external.service, external.topic, name, tuple(steps)),
                )
            return Resolved(f"[{link.number}]!{item.name if item else f'#NAME{iname}'}")
        if link.kind is _LinkRecord.SELF:
            return Resolved(self.defined_name(iname))
        return Resolved(f"#NAME{iname}")

    def sheet_prefix(self, ixti: int) -> Resolved:
        found = self._link(ixti)
        if found is None:
            return Resolved("#REF!")
        (_book, first, last), link = found
        if link.kind is _LinkRecord.SOURCE:
            external = self.external.get(link.number)
            if external is not None and external.is_dde:
                steps = self._steps("3-D reference", ixti, link, external)
                return Resolved("", DdeTarget(external.service, external.topic, None, tuple(steps)))
            return Resolved(f"[{link.number}]!")
        if link.kind is _LinkRecord.SAME_SHEET:
            return Resolved("!")
        if link.kind is _LinkRecord.SELF:
            return own_sheets_prefix(self.book.sheets, first, last)
        return Resolved("#REF!")

    def defined_name(self, index: int) -> str:
        return defined_name_text(self.book.names, index)


class _Scan:
    """State shared by the part scans of one binary workbook."""

    def __init__(self, package: Package, main_part: str, ctx: ScanContext) -> None:
        self.package = package
        self.main_part = main_part
        self.ctx = ctx
        self.host = ctx.host or HostApplication.EXCEL
        self.display = {name.casefold(): name for name in package.names}
        self.book = _Workbook((), (), (), ())
        self.external: dict[int, _ExternalLink] = {}
        self.resolver = _XlsbLinks(self.book, self.external)

    def location(self, part: str) -> Location:
        return self.ctx.location.child(self.display.get(part.casefold(), part))

    @property
    def has_dde(self) -> bool:
        return any(link.is_dde for link in self.external.values())

    def formula_findings(
        self, rgce: bytes, location: Location, steps: tuple[str, ...]
    ) -> list[Finding]:
        return findings_for_rgce(
            rgce,
            XLSB_PTGS,
            self.resolver,
            self.has_dde,
            location,
            steps,
            self.host,
            self.ctx.config,
        )

    def scan_names(self, damage: ScanError | None) -> Iterator[ScanItem]:
        location = self.location(self.main_part)
        for name in self.book.names:
            yield from self.formula_findings(name.rgce, location.at(name.detail), ())
        if damage is not None:
            raise damage

    def link_finding(self, link: _ExternalLink, number: int | None) -> Finding:
        call = DdeCall(
            application=link.service,
            topic=link.topic,
            item=items_text(link.items),
            keyword="SupBook",
            automatic=any(item.flags & ITEM_ADVISE for item in link.items),
        )
        items = "; ".join(item.described for item in link.items[:MAX_LISTED_ITEMS])
        raw = (
            f"BrtBeginSupBook sbt=1 (DDE) service='{show(link.service)}' "
            f"topic='{show(link.topic)}'" + (f"; items: {items}" if items else "; no items")
        )
        steps: list[str] = []
        if number is None:
            steps.append("external link part not listed by the workbook's BrtSupBookSrc records")
        else:
            steps.append(f"external link [{number}] of the workbook (BrtSupBookSrc)")
        if any(item.flags & ITEM_ADVISE for item in link.items):
            steps.append("an item asks for automatic updates (advise)")
        detail = f"external link [{number}]" if number is not None else "BrtBeginSupBook"
        evidence = Evidence(
            raw=raw,
            deobfuscated=canonical_reference(link.service, link.topic),
            steps=tuple(steps),
        )
        location = self.location(link.part).at(detail)
        return dde_finding(call, Technique.DDE_LINK, evidence, location, self.host, self.ctx.config)

    def scan_link(
        self, link: _ExternalLink, number: int | None, damage: MalformedInput | None
    ) -> Iterator[ScanItem]:
        if link.is_dde:
            yield self.link_finding(link, number)
        if damage is not None:
            raise damage

    def scan_sheet(self, part: str, label: str, steps: tuple[str, ...]) -> Iterator[ScanItem]:
        data = self.package.read(part)
        location = self.location(part)
        row = 0
        errors: list[MalformedInput] = []
        try:
            for at, record_type, body in records(data, part, self.ctx.check_time):
                if record_type == BRT_ROW_HDR:
                    if len(body) >= 4:
                        row = struct.unpack_from("<I", body, 0)[0]
                    continue
                if record_type not in _FORMULA_CELLS and record_type not in _RANGE_FORMULAS:
                    continue
                what = f"{part}: record 0x{record_type:04X} at offset {at}"
                try:
                    where, rgce, extra = _formula_record(record_type, body, row, what)
                except MalformedInput as error:
                    errors.append(error)
                    continue
                yield from self.formula_findings(
                    rgce, location.at(f"{label}!{where}"), (*steps, *extra)
                )
        except MalformedInput as error:
            errors.append(error)
        damage = _damage(errors)
        if damage is not None:
            raise damage


def _formula_record(
    record_type: int, body: bytes, row: int, what: str
) -> tuple[str, bytes, tuple[str, ...]]:
    """(cell or range, rgce, steps) of a BrtFmla*, BrtShrFmla or BrtArrFmla record."""
    reader = _Body(body, what)
    if record_type in _FORMULA_CELLS:
        col = reader.u32()
        reader.take(4)  # iStyleRef and flags
        if record_type == BRT_FMLA_STRING:
            reader.wide_string()
        else:
            reader.take(8 if record_type == BRT_FMLA_NUM else 1)
        reader.take(2)  # grbitFlags
        return cell_name(row, col), reader.formula(), ()
    first_row, last_row, first_col, last_col = (reader.u32() for _ in range(4))
    if record_type == BRT_ARR_FMLA:
        reader.take(1)
    rgce = reader.formula()
    where = f"{cell_name(first_row, first_col)}:{cell_name(last_row, last_col)}"
    kind = "shared" if record_type == BRT_SHR_FMLA else "array"
    return where, rgce, (f"{kind} formula over {where}",)


def scan_binary_workbook(package: Package, main_part: str, ctx: ScanContext) -> Iterator[ScanItem]:
    """DDE links, and formulas that use them or call INITIATE, of an .xlsb package; one
    PartScan per part, so a damaged part costs only itself (and a damaged record in a part
    only what it held)."""
    state = _Scan(package, main_part, ctx)
    damage: ScanError | None
    try:
        state.book, damage = _read_workbook(package.read(main_part), main_part, ctx)
    except ScanError as error:
        damage = error
    relationships = {rel.id: rel for rel in package.relationships(main_part)}
    link_parts: dict[str, int | None] = {}
    for link in state.book.links:
        rel = relationships.get(link.rel_id) if link.kind is _LinkRecord.SOURCE else None
        if rel is not None and not rel.external and package.has(rel.target):
            link_parts.setdefault(rel.target.casefold(), link.number)
    for name in package.names:
        if package.content_type(name).lower() == CT_EXTERNAL_LINK:
            link_parts.setdefault(name.casefold(), None)
    for folded, number in link_parts.items():
        part = state.display.get(folded, folded)
        try:
            external, link_damage = _read_external_link(package.read(part), part, ctx)
        except ScanError as error:
            yield PartScan(state.location(part), partial(raising, error))
            continue
        if number is not None:
            state.external[number] = external
        yield PartScan(
            state.location(part), partial(state.scan_link, external, number, link_damage)
        )
    state.resolver = _XlsbLinks(state.book, state.external)
    yield PartScan(state.location(main_part), partial(state.scan_names, damage))

    scanned: set[str] = set()
    for sheet in state.book.sheets:
        rel = relationships.get(sheet.rel_id)
        if rel is None or rel.external or not package.has(rel.target):
            continue
        if rel.target.casefold() in scanned:
            continue
        scanned.add(rel.target.casefold())
        kind = SHEET_CONTENT_TYPES.get(package.content_type(rel.target).lower(), SheetKind.OTHER)
        if rel.type.lower().endswith(MACRO_SHEET_RELATIONSHIPS):
            kind = SheetKind.MACRO_SHEET
        steps = sheet_steps(sheet.name, sheet.state, kind)
        run = partial(state.scan_sheet, rel.target, sheet.label, steps)
        yield PartScan(state.location(rel.target), run)
    for name in package.names:
        folded = name.casefold()
        if folded in scanned or package.content_type(name).lower() not in SHEET_CONTENT_TYPES:
            continue
        scanned.add(folded)
        # An orphaned sheet: Excel never loads it, but its formulas are still shown.
        steps = ("part is not one of the sheets the workbook lists",)
        run = partial(state.scan_sheet, name, "(not a workbook sheet)", steps)
        yield PartScan(state.location(name), run)


def _main_part(package: Package) -> str:
    main = package.main_part()
    if main and package.has(main) and package.content_type(main).lower() in EXCEL_BINARY_MAIN:
        return main
    for name in package.names:
        if (
            posixpath.basename(name).casefold() == "workbook.bin"
            and package.content_type(name).lower() in EXCEL_BINARY_MAIN
        ):
            return name
    raise UnsupportedInput("binary workbook package has no workbook part")


class XlsbFormat:
    """Excel binary workbooks (.xlsb), recognised by their main part's content type."""

    format = FileFormat.XLSB

    def identify(self, data: bytes, name: str) -> Confidence:
        return Confidence.YES if package_kind(data) is FileFormat.XLSB else Confidence.NO

    def scan(self, data: bytes, ctx: ScanContext) -> Iterator[ScanItem]:
        package = Package(data, ctx)
        yield from scan_binary_workbook(package, _main_part(package), ctx)
