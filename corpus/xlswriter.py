"""Minimal writers of Excel 97-2003 workbooks (.xls, BIFF8, [MS-XLS]) and Excel binary
workbooks (.xlsb, [MS-XLSB]) for the corpus and the tests.

Written from the specifications alone, not from any reader:

- BIFF8: records of a 2-byte type, a 2-byte size and a body (2.1.4); a Workbook stream of a
  globals substream (BOF dt 0x0005, BoundSheet8 per sheet with the stream offset of its
  BOF in lbPlyPos, then whatever link and name records the caller gives, EOF) followed by
  one substream per sheet; strings as XLUnicodeString with "compressed" 8-bit characters
  when every character is below U+0100, UTF-16LE otherwise; the stream put in a compound
  file by corpus/cfbwriter.py.
- XLSB: records whose type and size are written seven bits a byte, high bit set while more
  follow (2.1.4); a workbook part with BrtBundleSh per sheet and the supporting links, sheet
  parts with rows and formula cells, and one external link part per DDE link
  (BrtBeginSupBook sbt 1, service and topic, BrtSupNameStart/BrtSupNameBits per item), in a
  ZIP package with fixed timestamps.

Parsed formulas are built from the token helpers (ptg_*), in the BIFF8 or XLSB spelling.
"""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from cfbwriter import write_cfb

MAX_RECORD = 8224
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)

RT_FORMULA = 0x0006
RT_EOF = 0x000A
RT_EXTERNSHEET = 0x0017
RT_LBL = 0x0018
RT_EXTERNNAME = 0x0023
RT_FILEPASS = 0x002F
RT_CONTINUE = 0x003C
RT_CODEPAGE = 0x0042
RT_BOUNDSHEET8 = 0x0085
RT_NUMBER = 0x0203
RT_SUPBOOK = 0x01AE
RT_SHRFMLA = 0x04BC
RT_BOF = 0x0809

DT_GLOBALS = 0x0005
DT_WORKSHEET = 0x0010
DT_MACRO = 0x0040

# ExternName flags ([MS-XLS] ExternName).
WANT_ADVISE = 0x0002
OLE = 0x0008
OLE_LINK = 0x0010

FTAB_CHAR = 0x006F
FTAB_INITIATE = 0x00AF
FTAB_SUM = 0x0004
CETAB_ALERT = 0x0076


def record(record_type: int, body: bytes = b"") -> bytes:
    """One record; a body over 8224 bytes goes on in CONTINUE records."""
    out = bytearray(struct.pack("<HH", record_type, min(len(body), MAX_RECORD)))
    out += body[:MAX_RECORD]
    rest = body[MAX_RECORD:]
    while rest:
        out += struct.pack("<HH", RT_CONTINUE, min(len(rest), MAX_RECORD)) + rest[:MAX_RECORD]
        rest = rest[MAX_RECORD:]
    return bytes(out)


def chars(text: str) -> bytes:
    """XLUnicodeStringNoCch: the flag byte, then 8-bit or UTF-16LE characters."""
    if all(ord(c) < 0x100 for c in text):
        return b"\x00" + text.encode("latin-1")
    return b"\x01" + text.encode("utf-16-le")


def short_string(text: str) -> bytes:
    """ShortXLUnicodeString: a 1-byte character count, then XLUnicodeStringNoCch."""
    return bytes([len(text)]) + chars(text)


def bof(dt: int, version: int = 0x0600) -> bytes:
    # vers, dt, rupBuild, rupYear, then the 8 bytes of flags and lowest BIFF version.
    return record(RT_BOF, struct.pack("<HHHHII", version, dt, 0x0DBB, 0x07CC, 0x000100C1, 0x0606))


def eof() -> bytes:
    return record(RT_EOF)


def codepage() -> bytes:
    return record(RT_CODEPAGE, struct.pack("<H", 1200))


def boundsheet(offset: int, name: str, state: int = 0, kind: int = 0) -> bytes:
    return record(RT_BOUNDSHEET8, struct.pack("<IBB", offset, state, kind) + short_string(name))


def supbook_dde(service: str, topic: str, ctab: int = 0) -> bytes:
    """A SupBook of a DDE data source: virtual path service 0x03 topic ([MS-XLS] 2.5.277)."""
    path = service + "\x03" + topic
    return record(RT_SUPBOOK, struct.pack("<HH", ctab, len(path)) + chars(path))


def supbook_self(sheets: int) -> bytes:
    return record(RT_SUPBOOK, struct.pack("<HH", sheets, 0x0401))


def supbook_external(path: str, sheet_names: Sequence[str]) -> bytes:
    """A SupBook of an external workbook: an encoded path (0x01 start, 0x03 separators)."""
    body = struct.pack("<HH", len(sheet_names), len(path)) + chars(path)
    for name in sheet_names:
        body += struct.pack("<H", len(name)) + chars(name)
    return record(RT_SUPBOOK, body)


def externname(name: str, flags: int = WANT_ADVISE) -> bytes:
    """An ExternName of a DDE item: flags, lStgName 0, the item name ([MS-XLS] 2.5.107)."""
    return record(RT_EXTERNNAME, struct.pack("<HI", flags, 0) + short_string(name))


def externsheet(entries: Sequence[tuple[int, int, int]]) -> bytes:
    body = struct.pack("<H", len(entries))
    body += b"".join(struct.pack("<Hhh", *entry) for entry in entries)
    return record(RT_EXTERNSHEET, body)


def lbl(name: str, rgce: bytes, flags: int = 0, itab: int = 0) -> bytes:
    body = struct.pack("<HBBHHHI", flags, 0, len(name), len(rgce), 0, itab, 0)
    return record(RT_LBL, body + chars(name) + rgce)


def formula(row: int, col: int, rgce: bytes) -> bytes:
    # Cell (rw, col, ixfe), a cached #REF! error (FormulaValue), flags, chn, then the rgce.
    value = bytes([0x02, 0x00, 0x17, 0x00, 0x00, 0x00, 0xFF, 0xFF])
    body = struct.pack("<HHH", row, col, 0x0F) + value + struct.pack("<HI", 0, 0)
    return record(RT_FORMULA, body + struct.pack("<H", len(rgce)) + rgce)


def shrfmla(first_row: int, last_row: int, first_col: int, last_col: int, rgce: bytes) -> bytes:
    body = struct.pack("<HHBBBB", first_row, last_row, first_col, last_col, 0, 1)
    return record(RT_SHRFMLA, body + struct.pack("<H", len(rgce)) + rgce)


def number(row: int, col: int, value: float) -> bytes:
    return record(RT_NUMBER, struct.pack("<HHHd", row, col, 0x0F, value))


def ptg_namex(ixti: int, iname: int) -> bytes:
    """PtgNameX, value class (0x59): an ExternSheet entry and a 1-based ExternName."""
    return struct.pack("<BHI", 0x59, ixti, iname)


def ptg_str(text: str) -> bytes:
    return b"\x17" + short_string(text)


def ptg_int(value: int) -> bytes:
    return struct.pack("<BH", 0x1E, value)


def ptg_ref(row: int, col: int) -> bytes:
    return struct.pack("<BHH", 0x24, row, col | 0xC000)


def ptg_ref3d(ixti: int, row: int, col: int) -> bytes:
    return struct.pack("<BHHH", 0x3A, ixti, row, col | 0xC000)


def ptg_func(iftab: int) -> bytes:
    return struct.pack("<BH", 0x41, iftab)


def ptg_funcvar(argc: int, iftab: int, command: bool = False) -> bytes:
    return struct.pack("<BBH", 0x42, argc, iftab | (0x8000 if command else 0))


PTG_ADD = b"\x03"
PTG_CONCAT = b"\x08"


@dataclass(frozen=True)
class Sheet:
    """One sheet: its name, hsState (0 visible, 1 hidden, 2 very hidden), BoundSheet8.dt
    (0 worksheet, 1 macro sheet) and the records between its BOF and EOF."""

    name: str
    records: Sequence[bytes] = ()
    state: int = 0
    kind: int = 0


def workbook_stream(
    sheets: Sequence[Sheet], links: Iterable[bytes] = (), globals_extra: Iterable[bytes] = ()
) -> bytes:
    """A BIFF8 Workbook stream. `links` are the SupBook/ExternName/ExternSheet/Lbl records
    of the globals, in order; `globals_extra` goes right after the BOF."""
    links = list(links)
    head = bof(DT_GLOBALS) + b"".join(globals_extra) + codepage()
    sizes = [len(boundsheet(0, sheet.name)) for sheet in sheets]
    tail = b"".join(links) + eof()
    offset = len(head) + sum(sizes) + len(tail)
    bodies: list[bytes] = []
    entries: list[bytes] = []
    for sheet in sheets:
        dt = DT_MACRO if sheet.kind == 1 else DT_WORKSHEET
        body = bof(dt) + b"".join(sheet.records) + eof()
        entries.append(boundsheet(offset, sheet.name, sheet.state, sheet.kind))
        bodies.append(body)
        offset += len(body)
    return head + b"".join(entries) + tail + b"".join(bodies)


def xls_file(
    stream: bytes, stream_name: str = "Workbook", storages: Mapping[str, bytes] | None = None
) -> bytes:
    """The workbook stream in a compound file, with `storages` (path -> bytes) beside it:
    the MBDxxxxxxxx/... storages in which Excel keeps embedded OLE objects."""
    return write_cfb({stream_name: stream, **(storages or {})})


def dde_workbook(
    service: str = "cmd",
    topic: str = "/c calc.exe",
    item: str = "A0",
    cells: Sequence[bytes] = (),
    sheet: Sheet | None = None,
) -> bytes:
    """A Workbook stream with one DDE SupBook (XTI 0) and a self SupBook (XTI 1)."""
    target = sheet or Sheet("Sheet1", cells)
    links = [
        supbook_dde(service, topic),
        externname(item),
        externname("StdDocumentName", WANT_ADVISE | OLE),
        supbook_self(1),
        externsheet([(0, -2, -2), (1, 0, 0)]),
    ]
    return workbook_stream([target], links)


def varint(value: int, limit: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            break
    if len(out) > limit:
        raise ValueError("value too large")
    return bytes(out)


def brt(record_type: int, body: bytes = b"") -> bytes:
    """One .xlsb record ([MS-XLSB] 2.1.4)."""
    return varint(record_type, 2) + varint(len(body), 4) + body


def wide(text: str) -> bytes:
    """XLWideString: a 4-byte character count, then UTF-16LE."""
    encoded = text.encode("utf-16-le")
    return struct.pack("<I", len(encoded) // 2) + encoded


def xlsb_ptg_str(text: str) -> bytes:
    encoded = text.encode("utf-16-le")
    return b"\x17" + struct.pack("<H", len(encoded) // 2) + encoded


def xlsb_ptg_ref3d(ixti: int, row: int, col: int) -> bytes:
    return struct.pack("<BHIH", 0x3A, ixti, row, col | 0xC000)


def xlsb_row(row: int) -> bytes:
    # BrtRowHdr: rw, ixfe, miyRw, flags, then one column span.
    return brt(
        0x0000, struct.pack("<IIH", row, 0, 300) + b"\x00\x00\x00" + struct.pack("<III", 1, 0, 16)
    )


def xlsb_formula_cell(col: int, rgce: bytes) -> bytes:
    """BrtFmlaError: Cell (column, style), a cached #REF!, grbitFlags, CellParsedFormula."""
    body = struct.pack("<II", col, 0) + b"\x17" + struct.pack("<H", 0)
    return brt(0x000B, body + struct.pack("<I", len(rgce)) + rgce + struct.pack("<I", 0))


def xlsb_number_cell(col: int, value: float) -> bytes:
    return brt(0x0005, struct.pack("<IId", col, 0, value))


def xlsb_shared_formula(
    first_row: int, last_row: int, first_col: int, last_col: int, rgce: bytes
) -> bytes:
    body = struct.pack("<IIII", first_row, last_row, first_col, last_col)
    return brt(0x01AB, body + struct.pack("<I", len(rgce)) + rgce + struct.pack("<I", 0))


@dataclass(frozen=True)
class XlsbSheet:
    """One sheet: name, hsState, macro sheet or not, and its rows as (row, cell records)."""

    name: str
    rows: Sequence[tuple[int, Sequence[bytes]]] = ()
    state: int = 0
    macro: bool = False
    extra: Sequence[bytes] = ()


@dataclass(frozen=True)
class XlsbLink:
    """An external link part: sbt (1 DDE), service, topic and (item, flags) pairs."""

    service: str
    topic: str
    items: Sequence[tuple[str, int]] = (("A0", WANT_ADVISE),)
    sbt: int = 1


@dataclass(frozen=True)
class XlsbBook:
    sheets: Sequence[XlsbSheet]
    links: Sequence[XlsbLink] = ()
    xti: Sequence[tuple[int, int, int]] | None = None
    names: Sequence[tuple[str, bytes]] = ()
    self_link: bool = True
    overrides: dict[str, bytes] = field(default_factory=dict)


CT_MAIN = "application/vnd.ms-excel.sheet.binary.macroEnabled.main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
MACRO_REL = "http://schemas.microsoft.com/office/2006/relationships/xlMacrosheet"


def sheet_part(sheet: XlsbSheet) -> bytes:
    out = brt(0x0081) + brt(0x0091)
    for row, cells in sheet.rows:
        out += xlsb_row(row) + b"".join(cells)
    return out + brt(0x0092) + b"".join(sheet.extra) + brt(0x0082)


def link_part(link: XlsbLink) -> bytes:
    out = brt(0x0168, struct.pack("<H", link.sbt) + wide(link.service) + wide(link.topic))
    for name, flags in link.items:
        out += brt(0x0241, wide(name)) + brt(0x024A, struct.pack("<H", flags) + b"\x00" * 5)
        out += brt(0x024B)
    return out + brt(0x024C)


def workbook_part(book: XlsbBook) -> bytes:
    out = brt(0x0083) + brt(0x008F)
    for index, sheet in enumerate(book.sheets, start=1):
        out += brt(
            0x009C, struct.pack("<II", sheet.state, index) + wide(f"rId{index}") + wide(sheet.name)
        )
    out += brt(0x0090) + brt(0x0161)
    for index, _link in enumerate(book.links, start=1):
        out += brt(0x0163, wide(f"rId{100 + index}"))
    if book.self_link:
        out += brt(0x0165)
    xti = book.xti
    if xti is None:
        xti = [(i, -2, -2) for i in range(len(book.links))]
        if book.self_link:
            xti.append((len(book.links), 0, 0))
    out += brt(0x016A, struct.pack("<I", len(xti)) + b"".join(struct.pack("<Iii", *e) for e in xti))
    out += brt(0x0162)
    for name, rgce in book.names:
        body = struct.pack("<IBI", 0, 0, 0xFFFFFFFF) + wide(name)
        out += brt(0x0027, body + struct.pack("<I", len(rgce)) + rgce + struct.pack("<I", 0))
    return out + brt(0x0084)


def zip_members(members: Iterable[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 0
            info.external_attr = 0
            archive.writestr(info, data, compresslevel=6)
    return buffer.getvalue()


def xlsb_package(book: XlsbBook) -> bytes:
    """An .xlsb package; `overrides` replaces part bytes by name (for damaged variants)."""
    parts: list[tuple[str, bytes, str]] = [("xl/workbook.bin", workbook_part(book), "")]
    rels: list[tuple[str, str, str]] = []
    for index, sheet in enumerate(book.sheets, start=1):
        folder = "macrosheets" if sheet.macro else "worksheets"
        kind = "macrosheet" if sheet.macro else "worksheet"
        name = f"xl/{folder}/sheet{index}.bin"
        parts.append((name, sheet_part(sheet), f"application/vnd.ms-excel.{kind}"))
        rels.append((f"rId{index}", MACRO_REL if sheet.macro else REL + "worksheet", name[3:]))
    for index, link in enumerate(book.links, start=1):
        name = f"xl/externalLinks/externalLink{index}.bin"
        parts.append((name, link_part(link), "application/vnd.ms-excel.externalLink"))
        rels.append((f"rId{100 + index}", REL + "externalLink", name[3:]))
    overrides = "".join(
        f'<Override PartName="/{name}" ContentType="{ct}"/>' for name, _data, ct in parts if ct
    )
    content_types = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        f'<Default Extension="bin" ContentType="{CT_MAIN}"/>'
        '<Default Extension="rels" ContentType="'
        'application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>' + overrides + "</Types>"
    )
    package_rels = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        f'<Relationship Id="rId1" Type="{REL}officeDocument" Target="xl/workbook.bin"/>'
        "</Relationships>"
    )
    workbook_rels = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        + "".join(f'<Relationship Id="{i}" Type="{t}" Target="{target}"/>' for i, t, target in rels)
        + "</Relationships>"
    )
    members = [
        ("[Content_Types].xml", content_types.encode()),
        ("_rels/.rels", package_rels.encode()),
        ("xl/_rels/workbook.bin.rels", workbook_rels.encode()),
    ]
    members += [(name, book.overrides.get(name, data)) for name, data, _ct in parts]
    return zip_members(members)
