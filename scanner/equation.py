"""Microsoft Equation Editor 3.0 objects (EQNEDT32.EXE): find them in any container, read
their equation data, and tell an exploit from an equation.

Equation Editor 3.0 is an out-of-process OLE server from 2000. Office starts EQNEDT32.EXE to
load an equation object, and three stack overflows in its equation parser were exploited for
years after Microsoft removed it from Office in January 2018:

* CVE-2017-11882 (Embedi, "Skeleton in the closet", November 2017): the font name of an MTEF
  FONT record (tag 8) is copied into a fixed stack buffer with no length check. The return
  address lies 0x2C bytes into the name; public exploits put a command in the first 0x2C
  bytes and the address 0x00430C12, EQNEDT32.EXE's own `call WinExec`, right after it, so
  the start of the name runs as a command line. The layout is pinned down by the public
  rules `rtf_cve2017_11882_ole` (Neo23x0/signature-base, yara/exploit_cve_2017_11882.yar:
  `0a 01 08 5a 5a` = FULL, LINE, FONT tag, typeface, style; then 44 bytes; then
  `12 0c 43 00`) and ReversingLabs' `potential_CVE_2017_11882` (the `12 0C 43 00` address).
* CVE-2018-0802 (Check Point, 0patch, Qihoo 360, Tencent; January 2018): the same font name
  is copied again, into a LOGFONT's 32-byte lfFaceName, by a function the November 2017 fix
  left unchecked. Exploits use a name of about 0x94 bytes whose last byte and terminating
  NUL overwrite the low half of a return address (a partial overwrite that survives ASLR):
  signature-base's `rtf_CVE_2018_0802` matches the MTEF header, about 154 bytes, then
  `25 00`.
* CVE-2018-0798 (the "Royal Road" RTF builder; oletools issue #691; Talos Snort rule 50695,
  "overwrite of the least significant two bytes of the return address"): the row and column
  partition arrays of an MTEF MATRIX record (tag 5), whose size follows from the record's
  row and column counts, are read into a fixed stack buffer. The public rule
  `Detect_RTF_CVE_2018_0798` matches a count of 0x44 followed by 0x60/0x61 filler bytes
  and the two bytes `FB 0B`.

The equation data is the `Equation Native` stream of the object's OLE2 storage: a 28-byte
EQNOLEFILEHDR (cbHdr 0x1C, version 0x00020000, clipboard format, cbObject, 16 reserved
bytes: LibreOffice starmath/source/eqnolefilehdr.hxx) followed by MTEF, the Design Science
equation format. MTEF v3 (Design Science, "MTEF version 3", archived by the rtf2latex2e
project as MTEF3.html) is the format Equation Editor 3.x writes: a 5-byte header (version,
platform, product, product version, subversion), then records whose tag byte carries the
record type in its low nibble and option flags in its high nibble. Record layouts below follow
that document, cross-checked with LibreOffice's reader (starmath/source/mathtype.cxx) and
rtf2latex2e's (src/eqn.c).

An object is an Equation Editor object when its OLE1 class name or CompObj ProgID is an
Equation Editor ProgID, its storage CLSID is one of the Equation Editor CLSIDs, or, with no
label at all, its Equation Native stream holds MTEF v3. MathType objects (ProgID
Equation.DSMT*, CLSID 0002CE03-...) are read by MathType, not EQNEDT32.EXE, and Office's
own equations (OMML, `m:oMath`) are XML: neither is reported. The CLSID table is the one
oletools keeps (decalage2/oletools, oletools/common/clsid.py).
"""

from __future__ import annotations

import enum
import re
import struct
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial

import olefile

from scanner.analysis import DEMO_PROGRAMS, LOLBINS, equation_finding
from scanner.errors import MalformedInput
from scanner.formats.base import PartScan, ScanContext, ScanItem
from scanner.formats.cfb import is_cfb, open_cfb, read_stream
from scanner.formats.embedded import embedded_documents
from scanner.formats.package import Package
from scanner.mapping import EXECUTABLE_EXTENSIONS
from scanner.model import Evidence, Finding, Location
from scanner.streams import DecodedStream, StreamLabel

EQUATION_EDITOR_CLSIDS: dict[str, str] = {
    "0002CE02-0000-0000-C000-000000000046": "Microsoft Equation 3.0",
    "00021700-0000-0000-C000-000000000046": "Microsoft Equation 2.0",
    "0003000B-0000-0000-C000-000000000046": "Microsoft Equation",
    "0004A6B0-0000-0000-C000-000000000046": "Microsoft Equation 2.0",
}
MATHTYPE_CLSIDS: dict[str, str] = {
    "0002CE03-0000-0000-C000-000000000046": "MathType Equation",
}
EQUATION_EDITOR_PROGIDS: frozenset[str] = frozenset({"equation.3", "equation.2", "equation"})
_MATHTYPE_PROGID = re.compile(r"(?i)^(?:equation\.dsmt\w*|mathtype\b.*)$")

EQUATION_NATIVE = "Equation Native"
OLE10_NATIVE = "\x01Ole10Native"
COMPOBJ = "\x01CompObj"

# EQNOLEFILEHDR: cbHdr (u16), version (u32), cf (u16), cbObject (u32), 4 reserved u32.
EQNOLEFILEHDR = struct.Struct("<HIHI16s")
EQNOLEFILEHDR_SIZE = 28
EQNOLEFILEHDR_VERSION = 0x00020000
_HEADER_SIGNATURE = b"\x1c\x00\x00\x00\x02\x00"

# MTEF v3 record types (low nibble of the tag) and option flags (high nibble).
END, LINE, CHAR, TMPL, PILE, MATRIX, EMBELL, RULER, FONT, SIZE = range(10)
_TYPESIZE_RECORDS = range(10, 15)  # FULL, SUB, SUB2, SYM, SUBSYM: no data
XF_LMOVE = 0x8  # a nudge follows the tag
XF_LSPACE = 0x4  # LINE: a line-spacing value follows
XF_RULER = 0x2  # LINE, PILE: a RULER record follows
XF_NULL = 0x1  # LINE: placeholder, no object list
XF_EMBELL = 0x2  # CHAR: an embellishment list follows
_RECORD_NAMES = {
    END: "END",
    LINE: "LINE",
    CHAR: "CHAR",
    TMPL: "TMPL",
    PILE: "PILE",
    MATRIX: "MATRIX",
    EMBELL: "EMBELL",
    RULER: "RULER",
    FONT: "FONT",
    SIZE: "SIZE",
}

# wingdi.h LOGFONT: lfFaceName holds LF_FACESIZE (32) characters including the NUL, so no
# Windows font name is longer than 31 characters.
LF_FACESIZE = 32
# CVE-2017-11882: the return address 0x2C bytes into the copied name (Embedi's proof of
# concept and the signature-base rule above: 44 bytes of name, then the address).
CVE_2017_11882_RETURN_OFFSET = 0x2C
WINEXEC_CALL_ADDRESS = 0x00430C12
# CVE-2018-0802 names are about 0x94 bytes long; CVE-2017-11882 names end a few bytes after
# 0x2C (an address in EQNEDT32.EXE, loaded at 0x00400000, holds a NUL that ends the copy).
# Names of 0x80 bytes or more are put with CVE-2018-0802.
CVE_2018_0802_MIN_NAME = 0x80
# CVE-2018-0798: exploits use counts such as 0x44, whose partition arrays run to 18 bytes
# and more. Matrices larger than this in either dimension (partition arrays of more than 8
# bytes each) are taken as the exploit's shape: a threshold chosen here, far above the
# matrices real equations hold, not a limit any specification documents.
MAX_MATRIX_DIMENSION = 31

MAX_STORAGE_ENTRIES = 10_000
MAX_RECOVERED_HEADERS = 8
MAX_INDICATORS = 8
MAX_CLASS_NAME = 256

CVE_2017_11882 = "CVE-2017-11882"
CVE_2018_0802 = "CVE-2018-0802"
CVE_2018_0798 = "CVE-2018-0798"


class Server(enum.Enum):
    """Which program a label says would load the object."""

    EQUATION_EDITOR = "equation-editor"
    MATHTYPE = "mathtype"
    OTHER = "other"


@dataclass(frozen=True)
class Label:
    """One thing that says what an object is, in plain words, and what it points at."""

    text: str
    server: Server


@dataclass(frozen=True)
class Ole1Object:
    """An OLE 1.0 embedded object ([MS-OLEDS] 2.2.4 ObjectHeader, 2.2.5 EmbeddedObject)."""

    ole_version: int
    format_id: int
    class_name: str
    topic: str
    item: str
    declared_size: int
    native: bytes

    @property
    def truncated(self) -> bool:
        return len(self.native) < self.declared_size


@dataclass(frozen=True)
class EqnHeader:
    cb_hdr: int
    version: int
    clipboard_format: int
    cb_object: int


@dataclass(frozen=True)
class FontRecord:
    offset: int  # of the tag byte, in the equation data
    typeface: int
    style: int
    name: bytes
    terminated: bool


@dataclass(frozen=True)
class MatrixRecord:
    offset: int
    rows: int
    cols: int
    partitions: bytes


@dataclass(frozen=True)
class Mtef:
    """The MTEF header and the records that matter, as far as they could be read."""

    offset: int
    version: int
    platform: int
    product: int
    product_version: int
    product_subversion: int
    records: int = 0
    fonts: tuple[FontRecord, ...] = ()
    matrices: tuple[MatrixRecord, ...] = ()
    problem: str = ""
    end: int = 0

    def describe(self) -> str:
        platform = {0: "Macintosh", 1: "Windows"}.get(self.platform, f"platform {self.platform}")
        product = {0: "MathType", 1: "Equation Editor"}.get(self.product, f"product {self.product}")
        return (
            f"MTEF v{self.version} ({platform}, {product} "
            f"{self.product_version}.{self.product_subversion})"
        )


@dataclass(frozen=True)
class ExploitShape:
    """An equation record shaped like a known exploit."""

    cve: str
    record: str
    offset: int
    summary: str
    raw: str
    command: str = ""


@dataclass(frozen=True)
class EquationData:
    """What the equation data (the Equation Native stream, or its recovered bytes) holds."""

    source: str
    header: EqnHeader | None
    mtef: Mtef | None
    shapes: tuple[ExploitShape, ...]
    indicators: tuple[str, ...]
    anomalies: tuple[str, ...]
    steps: tuple[str, ...]


@dataclass(frozen=True)
class EquationObject:
    """One embedded object that may be an equation, and what was learnt about it.

    `where` is the path inside the scanned bytes ("" for the object itself, else a storage
    or stream path); `problems` say why its equation data could not be (fully) read.
    """

    where: str
    labels: tuple[Label, ...]
    equation: EquationData | None
    problems: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()

    @property
    def server(self) -> Server:
        servers = {label.server for label in self.labels}
        if Server.EQUATION_EDITOR in servers:
            return Server.EQUATION_EDITOR
        if Server.MATHTYPE in servers:
            return Server.MATHTYPE
        equation = self.equation
        if equation is not None and (
            equation.shapes or (equation.mtef is not None and equation.mtef.version <= 3)
        ):
            return Server.EQUATION_EDITOR
        return Server.OTHER


@dataclass(frozen=True)
class ObjectContext:
    """What the container says about an embedded object.

    `trigger` completes "Windows starts EQNEDT32.EXE ..." (when the container makes Office
    load the object); `declared_class` is what the container claims the object is (RTF
    `\\objclass`), named by `declared_what`; `steps` say how the object was reached;
    `ole1` is true when the bytes are an OLE 1.0 object (RTF `\\objdata`).
    """

    trigger: str
    declared_class: str = ""
    declared_what: str = ""
    steps: tuple[str, ...] = ()
    ole1: bool = False


def _printable(data: bytes) -> str:
    """Bytes as text, with anything but printable ASCII written \\xNN."""
    return "".join(chr(b) if 0x20 <= b < 0x7F and b != 0x5C else f"\\x{b:02x}" for b in data)


def _clsid_label(clsid: str, where: str) -> Label | None:
    clsid = clsid.upper()
    if clsid in EQUATION_EDITOR_CLSIDS:
        return Label(
            f"{where} CLSID {clsid} ({EQUATION_EDITOR_CLSIDS[clsid]})", Server.EQUATION_EDITOR
        )
    if clsid in MATHTYPE_CLSIDS:
        return Label(f"{where} CLSID {clsid} ({MATHTYPE_CLSIDS[clsid]})", Server.MATHTYPE)
    return None


def _class_label(name: str, what: str) -> Label:
    clean = name.strip("\x00 \t\r\n")
    key = clean.casefold()
    if key in EQUATION_EDITOR_PROGIDS:
        server = Server.EQUATION_EDITOR
    elif _MATHTYPE_PROGID.match(clean):
        server = Server.MATHTYPE
    else:
        server = Server.OTHER
    return Label(f'{what} "{_printable(clean.encode("latin-1", "replace"))}"', server)


def _ansi_string(data: bytes, pos: int) -> tuple[str, int] | None:
    """A LengthPrefixedAnsiString ([MS-OLEDS] 2.1.4): u32 length (NUL included), then text."""
    if pos + 4 > len(data):
        return None
    (length,) = struct.unpack_from("<I", data, pos)
    if length > MAX_CLASS_NAME or pos + 4 + length > len(data):
        return None
    raw = data[pos + 4 : pos + 4 + length]
    return raw.split(b"\x00", 1)[0].decode("latin-1"), pos + 4 + length


def parse_ole1(data: bytes) -> Ole1Object | None:
    """The OLE 1.0 object at the start of `data`, or None if it does not look like one.

    OLEVersion is not checked (Word ignores it; issue_251.rtf has 0x00000511); FormatID must
    be 1 (linked) or 2 (embedded) and the class name a short printable string.
    """
    if len(data) < 12:
        return None
    ole_version, format_id = struct.unpack_from("<II", data, 0)
    if format_id not in (1, 2):
        return None
    class_name = _ansi_string(data, 8)
    if class_name is None or not class_name[0] or not class_name[0].isprintable():
        return None
    name, pos = class_name
    topic = _ansi_string(data, pos)
    if topic is None:
        return Ole1Object(ole_version, format_id, name, "", "", 0, b"")
    item = _ansi_string(data, topic[1])
    if item is None:
        return Ole1Object(ole_version, format_id, name, topic[0], "", 0, b"")
    pos = item[1]
    if format_id != 2 or pos + 4 > len(data):
        return Ole1Object(ole_version, format_id, name, topic[0], item[0], 0, b"")
    (size,) = struct.unpack_from("<I", data, pos)
    native = data[pos + 4 : pos + 4 + size]
    return Ole1Object(ole_version, format_id, name, topic[0], item[0], size, native)


def parse_compobj(data: bytes) -> tuple[str, str, str]:
    """(CLSID, user type, ProgID) from a CompObj stream ([MS-OLEDS] 2.3.8); "" where absent.

    The 28-byte header ends with 0xFFFFFFFF and the CLSID; then AnsiUserType, the clipboard
    format (a marker with a format number, or a string) and the ProgID follow.
    """
    clsid = ""
    if len(data) >= 28 and data[8:12] == b"\xff\xff\xff\xff":
        clsid = str(uuid.UUID(bytes_le=data[12:28])).upper()
    user = _ansi_string(data, 28)
    if user is None:
        return clsid, "", ""
    pos = user[1]
    if pos + 4 > len(data):
        return clsid, user[0], ""
    (marker,) = struct.unpack_from("<I", data, pos)
    if marker in (0xFFFFFFFF, 0xFFFFFFFE):
        pos += 8
    elif marker == 0:
        pos += 4
    else:
        clipboard = _ansi_string(data, pos)
        if clipboard is None:
            return clsid, user[0], ""
        pos = clipboard[1]
    progid = _ansi_string(data, pos)
    return clsid, user[0], progid[0] if progid is not None else ""


def parse_header(data: bytes, pos: int = 0) -> EqnHeader | None:
    if pos + EQNOLEFILEHDR_SIZE > len(data):
        return None
    cb_hdr, version, cf, cb_object, _ = EQNOLEFILEHDR.unpack_from(data, pos)
    return EqnHeader(cb_hdr, version, cf, cb_object)


class _Cut(Exception):
    """Internal: a record runs past the end of the data (never leaves parse_mtef)."""


def parse_mtef(data: bytes, start: int = 0) -> Mtef | None:
    """The MTEF at `data[start:]`: its header and, for v3 and older, its records.

    Returns None when the bytes do not start like MTEF (version 1-5, platform 0 or 1).
    The walk mirrors EQNEDT32.EXE's: record after record until the END that closes the
    top-level object list; it stops early, saying why in `problem`, at a record type MTEF v3
    does not define or at a record cut short by the end of the data.
    """
    if start + 5 > len(data):
        return None
    version, platform, product, product_version, subversion = data[start : start + 5]
    if not 1 <= version <= 5 or platform > 1:
        return None
    header = Mtef(start, version, platform, product, product_version, subversion, end=start + 5)
    if version > 3:
        return header  # MathType 3.5+ grammar (MTEF v4/v5): not what EQNEDT32.EXE reads
    size = len(data)
    pos = start + 5
    depth = 0
    records = 0
    fonts: list[FontRecord] = []
    matrices: list[MatrixRecord] = []
    problem = ""

    def need(count: int) -> None:
        if pos + count > size:
            raise _Cut

    def nudge(options: int) -> None:
        nonlocal pos
        if options & XF_LMOVE:
            need(2)
            long_form = data[pos] == 128 and data[pos + 1] == 128
            pos += 2
            if long_form:
                need(4)
                pos += 4

    def ruler_body() -> None:
        nonlocal pos
        need(1)
        stops = data[pos]  # then per stop: type (1 byte), offset (2 bytes)
        need(1 + 3 * stops)
        pos += 1 + 3 * stops

    def ruler() -> None:
        nonlocal pos
        need(1)
        if data[pos] & 0x0F == RULER:  # after LINE/PILE the RULER tag may be left out
            pos += 1
        ruler_body()

    record = -1
    here = pos
    closed = False
    try:
        while pos < size:
            here = pos
            tag = data[pos]
            record, options = tag & 0x0F, tag >> 4
            pos += 1
            records += 1
            if record == END:
                if depth == 0:
                    closed = True
                    break
                depth -= 1
            elif record == LINE:
                nudge(options)
                if options & XF_LSPACE:
                    need(2)
                    pos += 2
                if options & XF_RULER:
                    ruler()
                if not options & XF_NULL:
                    depth += 1
            elif record == CHAR:
                nudge(options)
                width = 3 if platform == 1 else 2  # typeface, then a 16-bit (Mac: 8-bit) char
                need(width)
                pos += width
                if options & XF_EMBELL:
                    depth += 1
            elif record == TMPL:
                nudge(options)
                need(3)  # selector, variation, options
                pos += 3
                depth += 1
            elif record == PILE:
                nudge(options)
                need(2)  # halign, valign
                pos += 2
                if options & XF_RULER:
                    ruler()
                depth += 1
            elif record == MATRIX:
                nudge(options)
                need(5)  # valign, h_just, v_just, rows, cols
                rows, cols = data[pos + 3], data[pos + 4]
                pos += 5
                # (rows + 1) and (cols + 1) two-bit partition line types, packed in bytes.
                length = (2 * (rows + 1) + 7) // 8 + (2 * (cols + 1) + 7) // 8
                matrices.append(MatrixRecord(here, rows, cols, data[pos : pos + length]))
                need(length)
                pos += length
                depth += 1
            elif record == EMBELL:
                nudge(options)
                need(1)
                pos += 1
            elif record == RULER:
                ruler_body()
            elif record == FONT:
                need(2)
                typeface, style = data[pos], data[pos + 1]
                pos += 2
                end = data.find(b"\x00", pos)
                terminated = end != -1
                if not terminated:
                    end = size
                fonts.append(FontRecord(here, typeface, style, data[pos:end], terminated))
                pos = min(end + 1, size)
                if not terminated:
                    problem = f"FONT record at offset {here}: font name runs to the end of the data"
                    break
            elif record == SIZE:
                need(1)
                kind = data[pos]
                step = 3 if kind == 101 else 4 if kind == 100 else 2
                need(step)
                pos += step
            elif record in _TYPESIZE_RECORDS:
                pass
            else:
                problem = f"record type {record} at offset {here} is not defined by MTEF v3"
                break
    except _Cut:
        name = _RECORD_NAMES.get(record, str(record))
        problem = f"{name} record at offset {here} is cut short by the end of the data"
        pos = size
    if not closed and not problem:
        problem = "the data ends before the equation's closing END record"
    return Mtef(
        start,
        version,
        platform,
        product,
        product_version,
        subversion,
        records,
        tuple(fonts),
        tuple(matrices),
        problem,
        pos,
    )


def _trim_padding(text: str) -> str:
    text = text.rstrip()
    run = re.search(r"(\S)\1{3,}$", text)
    if run is not None and run.start() > 0:
        text = text[: run.start()]
    return text.rstrip().rstrip("&|;").rstrip()


def _looks_like_command(text: str) -> bool:
    words = text.split()
    if not words:
        return False
    module = words[0].strip("\"'")
    base = re.split(r"[\\/]", module)[-1].casefold()
    if not base:
        return False
    if base.endswith(EXECUTABLE_EXTENSIONS):
        return True
    with_exe = base if "." in base else base + ".exe"
    return with_exe in LOLBINS or with_exe in DEMO_PROGRAMS


def command_in(raw: bytes) -> str:
    """The command line at the start of `raw` (padding trimmed), or "" if none is there."""
    match = re.match(rb"[\x20-\x7e]+", raw)
    if match is None:
        return ""
    text = _trim_padding(match.group(0).decode("ascii"))
    return text if _looks_like_command(text) else ""


def _font_shape(font: FontRecord) -> ExploitShape | None:
    name = font.name
    if len(name) < LF_FACESIZE:
        return None
    raw = (
        f"FONT record at offset {font.offset}: typeface {font.typeface:#04x}, "
        f'style {font.style:#04x}, name ({len(name)} bytes) "{_printable(name)}"'
    )
    if len(name) >= CVE_2018_0802_MIN_NAME:
        tail = name[-2:].hex(" ")
        return ExploitShape(
            CVE_2018_0802,
            "FONT",
            font.offset,
            f"a FONT record's font name is {len(name)} bytes long, far past the 32 bytes of "
            "a Windows font name; names this long reach the return address of the second "
            "font-name copy that the November 2017 fix left unchecked, and its last bytes "
            f"({tail}) with the terminating NUL overwrite that address's low half",
            raw,
            command_in(name),
        )
    summary = (
        f"a FONT record's font name is {len(name)} bytes long, more than any Windows font "
        "name (31 characters); EQNEDT32.EXE copies it into a fixed stack buffer with no "
        "length check"
    )
    if len(name) > CVE_2017_11882_RETURN_OFFSET:
        # The terminating NUL completes an address that ends the name early.
        address_bytes = name[CVE_2017_11882_RETURN_OFFSET : CVE_2017_11882_RETURN_OFFSET + 4]
        address = int.from_bytes(address_bytes.ljust(4, b"\x00"), "little")
        summary += (
            f", and bytes {CVE_2017_11882_RETURN_OFFSET:#x}-"
            f"{CVE_2017_11882_RETURN_OFFSET + 3:#x} of the name overwrite the return address "
            f"with {address:#010x}"
        )
        if address == WINEXEC_CALL_ADDRESS:
            summary += ", EQNEDT32.EXE's own call to WinExec, which runs the name as a command"
        else:
            summary += ", not the WinExec call public exploits use (0x00430c12)"
    return ExploitShape(
        CVE_2017_11882,
        "FONT",
        font.offset,
        summary,
        raw,
        command_in(name[:CVE_2017_11882_RETURN_OFFSET]),
    )


def _matrix_shape(matrix: MatrixRecord) -> ExploitShape | None:
    if max(matrix.rows, matrix.cols) <= MAX_MATRIX_DIMENSION:
        return None
    return ExploitShape(
        CVE_2018_0798,
        "MATRIX",
        matrix.offset,
        f"a MATRIX record claims {matrix.rows} rows and {matrix.cols} columns, far beyond "
        "an ordinary equation's matrix; EQNEDT32.EXE reads the "
        f"{len(matrix.partitions)} partition bytes that follow from those counts into a "
        "fixed stack buffer",
        f"MATRIX record at offset {matrix.offset}: rows {matrix.rows}, cols {matrix.cols}, "
        f'partition bytes "{_printable(matrix.partitions)}"',
    )


def find_shapes(mtef: Mtef | None) -> tuple[ExploitShape, ...]:
    if mtef is None:
        return ()
    shapes = [shape for font in mtef.fonts if (shape := _font_shape(font)) is not None]
    shapes += [shape for m in mtef.matrices if (shape := _matrix_shape(m)) is not None]
    return tuple(sorted(shapes, key=lambda shape: shape.offset))


_INDICATORS = re.compile(
    rb"(?i)(?:https?|ftp)://[\x21-\x7e]{3,200}"
    rb"|\\\\[\w.-]{2,64}\\[\x21-\x7e]{1,200}"
    rb"|[\w\\/:.%~-]{1,200}\.(?:exe|dll|hta|vbs|vbe|js|jse|wsf|ps1|bat|cmd|scr|sct|lnk|jar|msi|cpl)"
    rb"(?![\w])"
)


def find_indicators(data: bytes) -> tuple[str, ...]:
    """URLs, UNC paths and program or script file names written as plain text in the data."""
    found: list[str] = []
    for match in _INDICATORS.finditer(data):
        text = match.group(0).decode("ascii", "replace").rstrip(".,;:'\")")
        if text not in found:
            found.append(text)
        if len(found) >= MAX_INDICATORS:
            break
    return tuple(found)


def analyze_equation_data(data: bytes, source: str) -> EquationData:
    """Read the equation data of one object (an Equation Native stream or its equivalent)."""
    anomalies: list[str] = []
    steps: list[str] = []
    header: EqnHeader | None = None
    start = 0
    body = data
    if data[:2] == b"\x1c\x00" and len(data) >= EQNOLEFILEHDR_SIZE:
        header = parse_header(data)
    if header is not None:
        start = EQNOLEFILEHDR_SIZE
        steps.append(
            f"{source}: {EQNOLEFILEHDR_SIZE}-byte EQNOLEFILEHDR (version {header.version:#x}, "
            f"cbObject {header.cb_object})"
        )
        if header.version != EQNOLEFILEHDR_VERSION:
            anomalies.append(f"its equation header has version {header.version:#x}")
        available = len(data) - EQNOLEFILEHDR_SIZE
        if header.cb_object > available:
            anomalies.append(
                f"its equation header announces {header.cb_object} bytes of MTEF but only "
                f"{available} are there"
            )
        else:
            body = data[: EQNOLEFILEHDR_SIZE + header.cb_object]
    mtef = parse_mtef(body, start)
    if mtef is None:
        anomalies.append(f"{source} does not hold MTEF equation data")
    else:
        steps.append(f"{source}: {mtef.describe()}, {mtef.records} record(s) read")
        if mtef.version > 3:
            anomalies.append(
                f"its equation data is MTEF v{mtef.version}, MathType's format, which "
                "Equation Editor 3.0 does not write"
            )
        elif mtef.problem:
            anomalies.append(f"its MTEF data is malformed ({mtef.problem})")
        elif mtef.version <= 3 and body[mtef.end :].strip(b"\x00"):
            anomalies.append(
                f"{len(body) - mtef.end} byte(s) follow the end of the equation in {source}"
            )
    searched = bytearray(data)
    for record in mtef.fonts if mtef is not None else ():
        # The tag, typeface and style bytes are not text: keep them out of the names found.
        searched[record.offset : record.offset + 3] = b"\x00\x00\x00"
    return EquationData(
        source,
        header,
        mtef,
        find_shapes(mtef),
        find_indicators(bytes(searched)),
        tuple(anomalies),
        tuple(steps),
    )


def _raw_labels(data: bytes) -> tuple[Label, ...]:
    """Identification from raw bytes: CLSIDs, the Equation Native name, ProgIDs."""
    labels: list[Label] = []
    for table, server in (
        (EQUATION_EDITOR_CLSIDS, Server.EQUATION_EDITOR),
        (MATHTYPE_CLSIDS, Server.MATHTYPE),
    ):
        for clsid, name in table.items():
            if uuid.UUID(clsid).bytes_le in data:
                labels.append(Label(f"CLSID {clsid} ({name}) in the raw bytes", server))
    if EQUATION_NATIVE.encode("utf-16-le") in data:
        labels.append(Label(f"a directory entry named '{EQUATION_NATIVE}'", Server.OTHER))
    for match in re.finditer(rb"(?i)\x00(equation\.(?:3|2|dsmt\d*))\x00", data[:1_000_000]):
        found = _class_label(match.group(1).decode("ascii"), "ProgID")
        label = Label(f"{found.text} in the raw bytes", found.server)
        if label not in labels:
            labels.append(label)
    return tuple(labels)


def recover(
    data: bytes, labels: tuple[Label, ...] = (), problems: tuple[str, ...] = ()
) -> tuple[EquationObject, ...]:
    """Equation objects from bytes no parser could open (a damaged or truncated storage):
    every EQNOLEFILEHDR found in the raw bytes, else what the raw bytes say the object is."""
    found_labels = (*labels, *(label for label in _raw_labels(data) if label not in labels))
    objects: list[EquationObject] = []
    start = 0
    while len(objects) < MAX_RECOVERED_HEADERS:
        offset = data.find(_HEADER_SIGNATURE, start)
        if offset == -1:
            break
        start = offset + 1
        if parse_mtef(data, offset + EQNOLEFILEHDR_SIZE) is None:
            continue
        equation = analyze_equation_data(data[offset:], f"equation data found at byte {offset}")
        objects.append(
            EquationObject(
                where=f"equation data recovered at byte {offset}",
                labels=found_labels,
                equation=equation,
                problems=problems,
                steps=(f"equation header (EQNOLEFILEHDR) found in the raw bytes at {offset}",),
            )
        )
    if objects:
        return tuple(objects)
    if any(label.server is not Server.OTHER for label in found_labels):
        return (EquationObject("", found_labels, None, problems),)
    return ()


def _kids(entry: object) -> list[object]:
    kids = getattr(entry, "kids", None)
    return list(kids) if isinstance(kids, list) else []


def _read(ole: olefile.OleFileIO, path: str, limit: int) -> tuple[bytes | None, str]:
    try:
        return read_stream(ole, path, limit), ""
    except MalformedInput as error:
        return None, str(error)


def inspect_storage(
    ole: olefile.OleFileIO,
    limit: int,
    labels: tuple[Label, ...] = (),
    check: Callable[[], None] | None = None,
) -> tuple[EquationObject, ...]:
    """Every equation object in an open compound file: the root storage itself (an embedded
    object's storage) and any storage inside it (ObjectPool/_NNN of a .doc, MBD... of an
    .xls). `labels` describe the root storage (e.g. the OLE1 class name around it)."""
    root = getattr(ole, "root", None)
    if root is None:
        return ()
    objects: list[EquationObject] = []
    pending: list[tuple[object, str]] = [(root, "")]
    seen = 0
    while pending:
        entry, prefix = pending.pop()
        seen += 1
        if seen > MAX_STORAGE_ENTRIES:
            break
        if check is not None and seen % 256 == 0:
            check()
        streams: dict[str, str] = {}
        for kid in _kids(entry):
            name = str(getattr(kid, "name", ""))
            kind = getattr(kid, "entry_type", None)
            if kind == olefile.STGTY_STORAGE:
                pending.append((kid, f"{prefix}{name}/"))
            elif kind == olefile.STGTY_STREAM:
                streams.setdefault(name.casefold(), prefix + name)
        own_labels = labels if not prefix else ()
        found = _inspect_one_storage(ole, entry, prefix, streams, own_labels, limit)
        if found is not None:
            objects.append(found)
    return tuple(sorted(objects, key=lambda obj: obj.where))


def _inspect_one_storage(
    ole: olefile.OleFileIO,
    entry: object,
    prefix: str,
    streams: dict[str, str],
    labels: tuple[Label, ...],
    limit: int,
) -> EquationObject | None:
    where = prefix.rstrip("/")
    own = list(labels)
    clsid = str(getattr(entry, "clsid", "") or "")
    label = _clsid_label(clsid, f"storage '{where}'" if where else "storage") if clsid else None
    if label is not None:
        own.append(label)
    problems: list[str] = []
    compobj_path = streams.get(COMPOBJ.casefold())
    if compobj_path is not None:
        compobj, problem = _read(ole, compobj_path, limit)
        if compobj is not None:
            obj_clsid, user_type, progid = parse_compobj(compobj)
            if progid:
                own.append(_class_label(progid, "CompObj ProgID"))
            compobj_label = _clsid_label(obj_clsid, "CompObj") if obj_clsid else None
            if compobj_label is not None and compobj_label.server not in {
                other.server for other in own
            }:
                own.append(compobj_label)
            if user_type and not progid:
                own.append(
                    Label(
                        f'CompObj user type "{_printable(user_type.encode("latin-1"))}"',
                        Server.OTHER,
                    )
                )
    native_path = streams.get(EQUATION_NATIVE.casefold())
    ole10_path = streams.get(OLE10_NATIVE.casefold())
    interesting = native_path is not None or any(item.server is not Server.OTHER for item in own)
    if not interesting:
        return None
    equation: EquationData | None = None
    steps: list[str] = []
    if native_path is not None:
        data, problem = _read(ole, native_path, limit)
        if data is None:
            problems.append(problem)
        else:
            equation = analyze_equation_data(data, f"stream '{native_path}'")
    elif ole10_path is not None:
        data, problem = _read(ole, ole10_path, limit)
        if data is None:
            problems.append(problem)
        else:
            # [MS-OLEDS] 2.3.6: a u32 size, then the native data (here the equation data).
            shown = _printable(ole10_path.encode("latin-1", "replace"))
            steps.append(f"no '{EQUATION_NATIVE}' stream: the equation data is read from '{shown}'")
            equation = analyze_equation_data(data[4:], f"stream '{shown}'")
    else:
        problems.append(f"the storage has no '{EQUATION_NATIVE}' stream")
    obj = EquationObject(
        where=native_path or _printable((ole10_path or where).encode("latin-1", "replace")),
        labels=tuple(own),
        equation=equation,
        problems=tuple(problems),
        steps=tuple(steps),
    )
    return obj if obj.server is not Server.OTHER or equation is not None else None


def inspect_compound(
    data: bytes,
    limit: int,
    labels: tuple[Label, ...] = (),
    problems: tuple[str, ...] = (),
    check: Callable[[], None] | None = None,
) -> tuple[EquationObject, ...]:
    """Equation objects in compound-file bytes, recovered from the raw bytes when the
    storage is damaged."""
    try:
        ole = open_cfb(data)
    except MalformedInput as error:
        return recover(data, labels, (*problems, f"its OLE2 storage cannot be opened ({error})"))
    try:
        objects = inspect_storage(ole, limit, labels, check)
    except MalformedInput as error:
        return recover(data, labels, (*problems, f"its OLE2 storage is damaged ({error})"))
    finally:
        ole.close()
    if problems:
        objects = tuple(
            EquationObject(o.where, o.labels, o.equation, (*problems, *o.problems), o.steps)
            for o in objects
        )
    if not objects and any(label.server is Server.EQUATION_EDITOR for label in labels):
        return recover(data, labels, (*problems, f"no '{EQUATION_NATIVE}' stream was found"))
    return objects


def inspect_object(
    data: bytes,
    limit: int,
    ole1: bool = False,
    check: Callable[[], None] | None = None,
) -> tuple[EquationObject, ...]:
    """Equation objects in the bytes of one embedded object: an OLE 1.0 object (RTF
    \\objdata), an OLE2 storage (an OOXML embedding), or raw equation data."""
    if not is_cfb(data):
        ole1_object = parse_ole1(data)
        if ole1_object is not None:
            return _inspect_ole1(ole1_object, limit, check)
    if is_cfb(data):
        return inspect_compound(data, limit, check=check)
    problems = ("the object data is not an OLE 1.0 object",) if ole1 else ()
    return recover(data, (), problems)


def _inspect_ole1(
    obj: Ole1Object, limit: int, check: Callable[[], None] | None
) -> tuple[EquationObject, ...]:
    label = _class_label(obj.class_name, "OLE1 class name")
    problems: list[str] = []
    step = (
        f"OLE1 {'linked' if obj.format_id == 1 else 'embedded'} object of class "
        f'"{_printable(obj.class_name.encode("latin-1", "replace"))}" with '
        f"{len(obj.native)} byte(s) of native data"
    )
    if obj.format_id == 1:
        problems.append("it is a linked OLE1 object: its equation data is not in the document")
    elif obj.truncated:
        problems.append(
            f"its native data is truncated ({len(obj.native)} of {obj.declared_size} bytes)"
        )
    if is_cfb(obj.native):
        objects = inspect_compound(obj.native, limit, (label,), tuple(problems), check)
    else:
        objects = recover(obj.native, (label,), tuple(problems))
        if not objects and label.server is not Server.OTHER:
            objects = (EquationObject("", (label,), None, tuple(problems)),)
    return tuple(
        EquationObject(o.where, o.labels, o.equation, o.problems, (step, *o.steps)) for o in objects
    )


def _equation_steps(obj: EquationObject) -> tuple[str, ...]:
    steps = list(obj.steps)
    steps.extend(f"identified by {label.text}" for label in obj.labels)
    if obj.equation is not None:
        steps.extend(obj.equation.steps)
        for shape in obj.equation.shapes:
            steps.append(f"{shape.cve} shape: {shape.raw}")
    return tuple(steps)


def _identity(obj: EquationObject) -> str:
    named = [label.text for label in obj.labels if label.server is Server.EQUATION_EDITOR]
    if not named:
        named = ["MTEF v3 equation data, the format EQNEDT32.EXE reads"]
    return "an Equation Editor 3.0 object (" + "; ".join(named) + ")"


def _lie(obj: EquationObject, context: ObjectContext) -> str:
    """A container claim that the object data contradicts, in plain words ("" if none)."""
    declared = context.declared_class.strip()
    if not declared:
        return ""
    if declared.casefold() in EQUATION_EDITOR_PROGIDS:
        return ""
    return (
        f'the document declares it as "{_printable(declared.encode("latin-1", "replace"))}" '
        f"({context.declared_what or 'declared class'}), but its data is an Equation Editor "
        "object"
    )


def equation_object_finding(
    obj: EquationObject, location: Location, context: ObjectContext
) -> Finding:
    """The Finding for one Equation Editor object (severity decided in scanner.analysis)."""
    equation = obj.equation
    shapes = equation.shapes if equation is not None else ()
    cves = tuple(dict.fromkeys(shape.cve for shape in shapes))
    command = next((shape.command for shape in shapes if shape.command), "")
    indicators = tuple(
        text
        for text in (equation.indicators if equation is not None else ())
        if text not in command
    )
    anomalies = list(obj.problems)
    if equation is not None:
        anomalies.extend(equation.anomalies)
    else:
        anomalies.append("its equation data could not be found")
    lie = _lie(obj, context)
    if lie:
        anomalies.append(lie)
    if shapes:
        raw = " | ".join(shape.raw for shape in shapes)
    elif equation is not None and equation.mtef is not None:
        fonts = ", ".join(f'"{_printable(font.name)}"' for font in equation.mtef.fonts[:4])
        raw = f"{equation.source}: {equation.mtef.describe()}, {equation.mtef.records} record(s)"
        raw += f", fonts {fonts}" if fonts else ""
    else:
        raw = "; ".join(label.text for label in obj.labels) or "equation object"
    evidence = Evidence(
        raw=raw,
        deobfuscated=command or (indicators[0] if indicators else raw),
        steps=(*context.steps, *_equation_steps(obj)),
    )
    detail = " > ".join(part for part in (location.detail, obj.where) if part)
    return equation_finding(
        identity=_identity(obj),
        shapes=tuple(shape.summary for shape in shapes),
        cves=cves,
        command=command,
        indicators=indicators,
        anomalies=tuple(anomalies),
        trigger=context.trigger,
        evidence=evidence,
        location=Location(location.containers, detail),
    )


def equation_findings(
    objects: Iterable[EquationObject], location: Location, context: ObjectContext
) -> Iterator[Finding]:
    for obj in objects:
        if obj.server is Server.EQUATION_EDITOR:
            yield equation_object_finding(obj, location, context)


def scan_object_bytes(
    data: bytes, ctx: ScanContext, location: Location, context: ObjectContext
) -> Iterator[ScanItem]:
    """Findings for the Equation Editor objects in the bytes of one embedded object."""
    ctx.check_time()
    yield DecodedStream(
        StreamLabel.RTF_OBJECT if context.ole1 else StreamLabel.OLE_STREAM, data, location
    )
    objects = inspect_object(data, ctx.config.limits.max_part_bytes, context.ole1, ctx.check_time)
    yield from equation_findings(objects, location, context)


OBJECT_POOL_TRIGGER = "when the user activates the object or the application refreshes it"


def scan_compound_objects(
    ole: olefile.OleFileIO,
    ctx: ScanContext,
    location: Location | None = None,
    context: ObjectContext | None = None,
) -> Iterator[ScanItem]:
    """Findings for the Equation Editor objects stored anywhere in an open compound file.

    For .doc (ObjectPool/_NNN storages) and .xls (MBD... storages) handlers: call it with
    the document's olefile object; each finding's location names the storage path.
    """
    context = context or ObjectContext(trigger=OBJECT_POOL_TRIGGER)
    objects = inspect_storage(ole, ctx.config.limits.max_part_bytes, (), ctx.check_time)
    yield from equation_findings(objects, location or ctx.location, context)


_EMBEDDING = re.compile(r"(?i)(?:^|/)embeddings/[^/]+$")


def embedding_scans(package: Package, ctx: ScanContext) -> Iterator[ScanItem]:
    """A PartScan for every embedded object of an OOXML package (word/embeddings,
    xl/embeddings, ppt/embeddings, ...): OLE2 storages such as oleObject1.bin."""
    context = ObjectContext(trigger=OBJECT_POOL_TRIGGER)
    for name in package.names:
        if not _EMBEDDING.search(name):
            continue
        location = ctx.location.child(name)

        def run(name: str = name, location: Location = location) -> Iterator[ScanItem]:
            data = package.read(name)
            # Two parts: a damaged storage that defeats one reader must not hide the other.
            yield PartScan(location, partial(scan_object_bytes, data, ctx, location, context))
            yield PartScan(location, partial(embedded_documents, data, location, ctx))

        yield PartScan(location, run)
