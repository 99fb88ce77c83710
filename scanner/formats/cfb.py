"""Compound File Binary files ([MS-CFB]): the OLE container of .doc, .xls, .ppt and .msg.

olefile does the sector and directory work; this module is the one boundary where its many
exception types (it raises OSError, ValueError, struct.error, IndexError, KeyError and more on
hostile input) become scanner.errors types, and where stream sizes are checked against the
configured limits before anything is read: olefile allocates a stream's declared size, so a
directory entry that claims 2 GB must be refused before it is opened.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator

import olefile

from scanner.errors import LimitExceeded, MalformedInput, UnsupportedInput
from scanner.formats.base import ScanContext, ScanItem
from scanner.model import Confidence, FileFormat

# [MS-CFB] 2.2: the header signature of every compound file.
CFB_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

# What olefile raises on damaged or crafted input: its own OleFileError is an OSError; the
# others come from struct unpacking, FAT/directory indexing and the recursive directory walk.
_OLEFILE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    ValueError,
    struct.error,
    IndexError,
    KeyError,
    TypeError,
    AttributeError,
    OverflowError,
    ZeroDivisionError,
    RecursionError,
    AssertionError,
)


def is_cfb(data: bytes) -> bool:
    """True when the bytes start with the compound-file signature ([MS-CFB] 2.2)."""
    return data[:8] == CFB_MAGIC


def open_cfb(data: bytes) -> olefile.OleFileIO:
    """Open a compound file held in memory; MalformedInput if it cannot be read as one.

    The bytes are always wrapped in a file object: olefile takes a short bytes argument
    for a file name.
    """
    if not is_cfb(data):
        raise MalformedInput("not a compound file (no D0 CF 11 E0 A1 B1 1A E1 signature)")
    try:
        return olefile.OleFileIO(io.BytesIO(data))
    except _OLEFILE_ERRORS as error:
        raise MalformedInput(f"damaged compound file: {_describe(error)}") from error


def open_cfb_or_none(data: bytes) -> olefile.OleFileIO | None:
    """Like open_cfb, but None for bytes a strict reader cannot open.

    For readers that only look for optional extras in a storage that another reader (the
    object and Equation Editor recovery) already reports on when it is damaged: the damage
    must be reported once, not once per reader.
    """
    if not is_cfb(data):
        return None
    try:
        return olefile.OleFileIO(io.BytesIO(data))
    except _OLEFILE_ERRORS:
        return None


def stream_names(ole: olefile.OleFileIO) -> list[str]:
    """Every stream of the compound file as a '/'-joined path, in directory order."""
    try:
        entries = ole.listdir(streams=True, storages=False)
        return ["/".join(str(part) for part in entry) for entry in entries]
    except _OLEFILE_ERRORS as error:
        raise MalformedInput(f"damaged compound file directory: {_describe(error)}") from error


def has_stream(ole: olefile.OleFileIO, path: str) -> bool:
    """True when `path` names a stream (not a storage) of the compound file."""
    try:
        return bool(ole.get_type(path) == olefile.STGTY_STREAM)
    except _OLEFILE_ERRORS as error:
        raise MalformedInput(f"damaged compound file directory: {_describe(error)}") from error


def read_stream(ole: olefile.OleFileIO, path: str, limit: int) -> bytes:
    """The bytes of one stream, refusing a declared size over `limit` before reading.

    A stream can never be larger than the file that holds it, so a larger declared size is
    reported as malformed rather than as a limit.
    """
    try:
        if ole.get_type(path) != olefile.STGTY_STREAM:
            raise MalformedInput(f"compound file has no stream {path!r}")
        size = int(ole.get_size(path))
        file_size = getattr(ole, "_filesize", None)
        if isinstance(file_size, int) and size > file_size:
            raise MalformedInput(
                f"stream {path!r} declares {size} bytes, more than the whole file "
                f"({file_size} bytes)"
            )
        if size > limit:
            raise LimitExceeded(
                f"stream {path!r} of {size} bytes is over the part size limit of {limit} bytes"
            )
        with ole.openstream(path) as stream:
            data = stream.read(limit + 1)
    except _OLEFILE_ERRORS as error:
        raise MalformedInput(f"cannot read stream {path!r}: {_describe(error)}") from error
    if not isinstance(data, bytes):
        raise MalformedInput(f"cannot read stream {path!r}")
    return data[:size]


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class OtherCompoundFileFormat:
    """Any compound file no more specific format claimed (PowerPoint, Visio, damaged files).

    It sits after every CFB-based format in the registry. A compound file that olefile
    cannot open is a malformed input, an error result; one that opens but carries none of the
    streams ddescan reads is reported as not inspected.
    """

    format = FileFormat.OLE

    def identify(self, data: bytes, name: str) -> Confidence:
        return Confidence.YES if is_cfb(data) else Confidence.NO

    def scan(self, data: bytes, ctx: ScanContext) -> Iterator[ScanItem]:
        ole = open_cfb(data)
        names = stream_names(ole)
        shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        raise UnsupportedInput(
            f"compound file with no stream ddescan reads for DDE ({shown or 'no streams'})"
        )
        yield  # pragma: no cover
