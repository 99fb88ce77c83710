"""Documents carried inside embedded OLE objects, handed back to the walker as documents.

An object embedded in a document ([MS-OLEDS] 2.2 for OLE 1.0 native data, 2.3 for OLE 2.0
storages) is opened by its own application when the user activates it, so a .docx inside an
.rtf, or a .xlsx inside a .docx, is scanned as a document of its own. The carriers:

* OLE 1.0 embedded object (RTF `\\objdata`): class name, topic, item, then the native data,
  which is either an OLE 2.0 compound file or, for the Packager class, a packaged file.
* OLE 2.0 storage: a `Package` stream holds an Office Open XML package as is; a `CONTENTS`
  stream holds the file of some servers (PDF, ...); an `\\x01Ole10Native` stream holds a
  packaged file; a `WordDocument` or `Workbook` stream means the storage itself is a .doc/.xls.
* OOXML `*/embeddings/*` parts: either such a storage (`oleObject1.bin`) or the embedded
  package file itself (`Microsoft_Excel_Worksheet.xlsx`).

The Packager's native layout (not in [MS-OLEDS]; documented by its observed use since Windows
3.1): uint16 signature 2, label, source path (NUL-terminated ANSI), two uint32 fields, a
temporary path, then uint32 size and the file's bytes.
"""

from __future__ import annotations

import posixpath
import struct
from collections.abc import Iterator

from scanner.formats.base import ScanContext
from scanner.formats.cfb import has_stream, is_cfb, open_cfb_or_none, read_stream, stream_names
from scanner.model import EmbeddedDocument, Location

OLE10_NATIVE = "\x01Ole10Native"
_DOCUMENT_STREAMS = ("WordDocument", "Workbook", "Book", "PowerPoint Document")
_PAYLOAD_STREAMS = ("Package", "CONTENTS")
_MAX_PATH = 1024


def _c_string(data: bytes, pos: int) -> tuple[str, int] | None:
    end = data.find(b"\x00", pos, pos + _MAX_PATH)
    if end == -1:
        return None
    return data[pos:end].decode("cp1252", "replace"), end + 1


def packaged_file(native: bytes) -> tuple[str, bytes] | None:
    """(file name, bytes) of Packager native data without its size prefix, or None."""
    if len(native) < 2:
        return None
    label = _c_string(native, 2)
    if label is None:
        return None
    source = _c_string(native, label[1])
    if source is None:
        return None
    pos = source[1] + 8
    temporary = _c_string(native, pos)
    if temporary is None or temporary[1] + 4 > len(native):
        return None
    (size,) = struct.unpack_from("<I", native, temporary[1])
    start = temporary[1] + 4
    if size > len(native) - start:
        return None
    name = _file_name(label[0]) or _file_name(source[0]) or "packaged file"
    return name, native[start : start + size]


def _file_name(path: str) -> str:
    return posixpath.basename(path.replace("\\", "/")).strip()


def _ole1_native(data: bytes) -> tuple[str, bytes] | None:
    """(class name, native data) of an OLE 1.0 embedded object ([MS-OLEDS] 2.2.4)."""
    if len(data) < 12:
        return None
    _version, format_id = struct.unpack_from("<II", data, 0)
    if format_id != 2:
        return None
    pos = 8
    strings: list[str] = []
    for _ in range(3):
        if pos + 4 > len(data):
            return None
        (length,) = struct.unpack_from("<I", data, pos)
        if length > _MAX_PATH or pos + 4 + length > len(data):
            return None
        strings.append(data[pos + 4 : pos + 4 + length].rstrip(b"\x00").decode("cp1252", "replace"))
        pos += 4 + length
    if pos + 4 > len(data):
        return None
    (size,) = struct.unpack_from("<I", data, pos)
    return strings[0], data[pos + 4 : pos + 4 + size]


def _from_storage(
    data: bytes, location: Location, ctx: ScanContext, whole_is_document: bool, prefix: str = ""
) -> Iterator[EmbeddedDocument]:
    limit = ctx.config.limits.max_part_bytes
    ole = open_cfb_or_none(data)
    if ole is None:
        return
    try:
        names = [n for n in stream_names(ole) if n.startswith(prefix)]
        if whole_is_document and any(has_stream(ole, s) for s in _DOCUMENT_STREAMS):
            yield EmbeddedDocument(data, location)
            return
        for name in names:
            base = name.rsplit("/", 1)[-1]
            if base in _PAYLOAD_STREAMS:
                yield EmbeddedDocument(read_stream(ole, name, limit), location.child(name))
            elif base == OLE10_NATIVE:
                stream = read_stream(ole, name, limit)
                packaged = packaged_file(stream[4:])
                if packaged is not None:
                    storage = name.rpartition("/")[0]
                    label = f"{storage}/{packaged[0]}" if storage else packaged[0]
                    yield EmbeddedDocument(packaged[1], location.child(label))
    finally:
        ole.close()


def embedded_documents(
    data: bytes, location: Location, ctx: ScanContext, ole1: bool = False
) -> Iterator[EmbeddedDocument]:
    """Every document an embedded object carries (none for an equation or a picture)."""
    payload = data
    if ole1:
        native = _ole1_native(data)
        if native is None or not native[1]:
            return
        class_name, payload = native
        if class_name.casefold() == "package" and not is_cfb(payload):
            packaged = packaged_file(payload)
            if packaged is not None:
                yield EmbeddedDocument(packaged[1], location.child(packaged[0]))
            return
    if is_cfb(payload):
        yield from _from_storage(payload, location, ctx, whole_is_document=True)
    elif not ole1:
        yield EmbeddedDocument(payload, location)


def object_pool_documents(
    data: bytes, location: Location, ctx: ScanContext, pool: str
) -> Iterator[EmbeddedDocument]:
    """Payload streams in the object storages of a host compound file (a .doc's ObjectPool,
    an .xls's MBD storages), named by their storage path."""
    yield from _from_storage(data, location, ctx, whole_is_document=False, prefix=pool)
