"""Harmless Equation Editor objects, written from the formats' own rules.

Used by the corpus generator and the tests. Nothing here is copied from malware: the exploit
samples only reproduce the *shape* of the records that CVE-2017-11882, CVE-2018-0802 and
CVE-2018-0798 abuse (an over-long FONT name, a MATRIX with impossible row and column
counts), with a harmless `cmd.exe /c calc.exe` command, filler bytes and the placeholder
return address 0x41414141. There is no machine code.

- MTEF v3 records (Design Science, "MTEF version 3"): a 5-byte header (version 3, platform 1
  = Windows, product 1 = Equation Editor, version 3.10), then records whose tag's low nibble
  is the type (1 LINE, 2 CHAR, 3 TMPL, 5 MATRIX, 8 FONT, 10 FULL, 0 END).
- Equation Native stream: a 28-byte EQNOLEFILEHDR (cbHdr 0x1C, version 0x00020000, clipboard
  format, cbObject, 16 reserved bytes) then the MTEF.
- The object's OLE2 storage: `\\x01CompObj` ([MS-OLEDS] 2.3.8), `\\x01Ole` (2.3.7),
  `Equation Native`, and the storage CLSID 0002CE02-0000-0000-C000-000000000046.
- The OLE 1.0 wrapper RTF needs ([MS-OLEDS] 2.2.4/2.2.5): OLEVersion 0x00000501, FormatID 2,
  class name, empty topic and item names, NativeDataSize, the storage.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Mapping

from cfbwriter import SECTOR, write_cfb

CLSID_EQUATION3 = "0002CE02-0000-0000-C000-000000000046"
CLSID_MATHTYPE = "0002CE03-0000-0000-C000-000000000046"
HARMLESS_COMMAND = b"cmd.exe /c calc.exe"
PLACEHOLDER_ADDRESS = 0x41414141

END, LINE, CHAR, TMPL, MATRIX, FONT, FULL = 0x00, 0x01, 0x02, 0x03, 0x05, 0x08, 0x0A


def mtef_header(version: int = 3, product: int = 1) -> bytes:
    return bytes([version, 1, product, 3, 10])


def font(name: bytes, typeface: int = 0x83, style: int = 0x01) -> bytes:
    return bytes([FONT, typeface, style]) + name + b"\x00"


def char(text: str, typeface: int = 0x83) -> bytes:
    return b"".join(bytes([CHAR, typeface]) + struct.pack("<H", ord(c)) for c in text)


def line(*records: bytes) -> bytes:
    return bytes([LINE]) + b"".join(records) + bytes([END])


def fraction(numerator: bytes, denominator: bytes) -> bytes:
    """A fraction template (selector 14): two slot lines, then the template's END."""
    return bytes([TMPL, 14, 0, 0]) + line(numerator) + line(denominator) + bytes([END])


def benign_mtef() -> bytes:
    """x = (a + 1) / b, with the fonts Equation Editor names: an ordinary equation."""
    return (
        mtef_header()
        + bytes([FULL])
        + font(b"Times New Roman", 0x83, 0x01)
        + font(b"Symbol", 0x86, 0x00)
        + line(char("x") + char("=", 0x86) + fraction(char("a+1"), char("b")))
        + bytes([END])
    )


def cve_2017_11882_mtef(
    command: bytes = HARMLESS_COMMAND, address: int = PLACEHOLDER_ADDRESS
) -> bytes:
    """The FONT record shape of CVE-2017-11882: a 48-byte name whose first 0x2C bytes are a
    command (padded with spaces) and whose bytes 0x2C-0x2F stand where the return address
    is overwritten (here a placeholder)."""
    name = command.ljust(0x2C, b" ") + address.to_bytes(4, "little")
    return mtef_header() + bytes([FULL, LINE]) + font(name, 0x5A, 0x5A) + bytes([END, END])


def cve_2018_0802_mtef(url: bytes = b"http://example.invalid/payload.exe") -> bytes:
    """The FONT record shape of CVE-2018-0802: a name of 0x94 bytes (filler, then two bytes
    that would land on a return address's low half); a harmless URL follows the equation."""
    name = b"A" * 0x92 + b"\x41\x41"
    return mtef_header() + bytes([FULL, LINE]) + font(name, 0x5A, 0x5A) + bytes([END, END]) + url


def cve_2018_0798_mtef() -> bytes:
    """The MATRIX record shape of CVE-2018-0798: 0x44 rows and 0x60 columns, so 18 + 25
    partition bytes (0x60/0x61 filler and two placeholder bytes) follow the counts."""
    rows, cols = 0x44, 0x60
    size = (2 * (rows + 1) + 7) // 8 + (2 * (cols + 1) + 7) // 8
    partitions = (b"\x60" * 8 + b"\x61" * 14 + b"\x41\x41").ljust(size, b"\x61")
    matrix = bytes([MATRIX, 0, 0, 0, rows, cols]) + partitions
    return mtef_header() + bytes([FULL, LINE]) + matrix + bytes([END, END, END])


def mathtype_mtef() -> bytes:
    """The start of a MathType 6 equation: MTEF v5, product 0, application key."""
    return bytes([5, 1, 0, 6, 9]) + b"DSMT6\x00" + b"\x01\x13\x00" + b"\x00" * 8


def equation_native(mtef: bytes) -> bytes:
    return struct.pack("<HIHI16s", 0x1C, 0x00020000, 0xC1C2, len(mtef), b"") + mtef


def compobj(clsid: str, user_type: str, progid: str) -> bytes:
    def ansi(text: str) -> bytes:
        raw = text.encode("ascii") + b"\x00"
        return struct.pack("<I", len(raw)) + raw

    header = struct.pack("<I", 0xFFFE0001) + struct.pack("<I", 0x00000A03)
    header += b"\xff\xff\xff\xff" + uuid.UUID(clsid).bytes_le
    # AnsiUserType, AnsiClipboardFormat (a string here), Reserved1 (the ProgID), then the
    # Unicode marker and empty Unicode strings.
    return (
        header
        + ansi(user_type)
        + ansi("DS Equation" if "Equation 3" in user_type else "MathType EF")
        + ansi(progid)
        + struct.pack("<I", 0x71B239F4)
        + b"\x00" * 12
    )


OLE_STREAM = struct.pack("<IIII", 0x02000001, 0, 0, 0) + b"\x00" * 4


def set_clsid(cfb: bytes, entry: str, clsid: str) -> bytes:
    """Set the CLSID of a directory entry of a cfbwriter file (its directory is contiguous)."""
    out = bytearray(cfb)
    (first,) = struct.unpack_from("<I", out, 0x30)
    name = entry.encode("utf-16-le") + b"\x00\x00"
    pos = (first + 1) * SECTOR
    while pos + 128 <= len(out):
        (length,) = struct.unpack_from("<H", out, pos + 64)
        if length == len(name) and out[pos : pos + length] == name:
            out[pos + 0x50 : pos + 0x60] = uuid.UUID(clsid).bytes_le
            return bytes(out)
        pos += 128
    raise ValueError(f"no directory entry {entry!r}")


def equation_streams(
    mtef: bytes,
    *,
    clsid: str = CLSID_EQUATION3,
    progid: str = "Equation.3",
    user_type: str = "Microsoft Equation 3.0",
    stream: str = "Equation Native",
    prefix: str = "",
) -> dict[str, bytes]:
    """The streams of one equation object's storage, named `prefix` + stream name: a
    storage of their own, or one inside a host file (a .doc's ObjectPool/_NNN/, an .xls's
    MBDxxxxxxxx/)."""
    native = equation_native(mtef)
    if stream == "\x01Ole10Native":
        native = struct.pack("<I", len(native)) + native
    return {
        prefix + "\x01CompObj": compobj(clsid, user_type, progid),
        prefix + "\x01Ole": OLE_STREAM,
        prefix + stream: native,
    }


def equation_storage(
    mtef: bytes,
    *,
    clsid: str = CLSID_EQUATION3,
    progid: str = "Equation.3",
    user_type: str = "Microsoft Equation 3.0",
    stream: str = "Equation Native",
) -> bytes:
    """The OLE2 storage of one equation object (what word/embeddings/oleObject1.bin holds)."""
    streams: Mapping[str, bytes] = equation_streams(
        mtef, clsid=clsid, progid=progid, user_type=user_type, stream=stream
    )
    return set_clsid(write_cfb(streams), "Root Entry", clsid)


def ole1_object(class_name: str, native: bytes) -> bytes:
    """An embedded OLE 1.0 object: what an RTF \\objdata holds."""

    def ansi(text: str) -> bytes:
        if not text:
            return struct.pack("<I", 0)
        raw = text.encode("ascii") + b"\x00"
        return struct.pack("<I", len(raw)) + raw

    return (
        struct.pack("<II", 0x00000501, 2)
        + ansi(class_name)
        + ansi("")
        + ansi("")
        + struct.pack("<I", len(native))
        + native
    )


def hex_lines(data: bytes, width: int = 64) -> str:
    text = data.hex()
    return "\n".join(text[i : i + width] for i in range(0, len(text), width))
