"""Plain archives: ZIP (PKWARE APPNOTE 6.3) and gzip (RFC 1952), opened to scan their members.

Every member is scanned by content as a document of its own, named by its path in the
archive. Reading follows scanner.formats.package: members are inflated chunk by chunk under
the per-part size, the compression ratio and the shared decompressed-bytes budget, never
trusting the sizes the archive declares. Each member is its own PartScan, so a member that
is damaged, locked or over a limit costs that member only.

Encrypted ZIP members (traditional PKWARE "ZipCrypto") are tried with the configured
passwords and with those found around the archive (a "password: infected" line in the mail
that carries it, ScanContext.passwords). WinZip AES members (method 99, scanner.formats.zipaes) are
tried with the same candidates; PKWARE strong encryption is reported locked.
"""

from __future__ import annotations

import io
import lzma
import struct
import zipfile
import zlib
from collections.abc import Iterator
from functools import partial

from scanner.errors import EncryptedInput, LimitExceeded, MalformedInput, UnsupportedInput
from scanner.formats.base import PartScan, ScanContext, ScanItem
from scanner.formats.package import is_zip
from scanner.formats.zipaes import aes_parameters, decrypt, raw_member_data
from scanner.model import Confidence, EmbeddedDocument, FileFormat, Location

_CHUNK = 64 * 1024
# Slack on top of the ratio bound so that small, highly compressible members (a page of
# spaces) are not mistaken for bombs.
_RATIO_SLACK = 1024 * 1024
# Bytes of central directory allowed per member the limits let through: about 460 bytes of
# name and extra field per entry on average. A directory larger than that is refused before
# zipfile turns every entry into a Python object.
_DIRECTORY_BYTES_PER_MEMBER = 512
_EOCD = b"PK\x05\x06"
_EOCD64_LOCATOR = b"PK\x06\x07"
_EOCD_SEARCH = 22 + 0xFFFF
# APPNOTE 4.4.4 general purpose bits and 4.4.5 methods.
_FLAG_ENCRYPTED = 0x1
_FLAG_STRONG_ENCRYPTION = 0x40
_METHOD_AES = 99
# Password text is turned into bytes the way the common tools do: UTF-8 (7-Zip, WinRAR,
# Info-ZIP on modern systems), then the OEM and ANSI code pages of older Windows tools.
_PASSWORD_ENCODINGS = ("utf-8", "cp437", "cp1252")
_MAX_PASSWORD_TRIES = 64

_GZIP_MAGIC = b"\x1f\x8b\x08"
_GZIP_FEXTRA = 0x04
_GZIP_FNAME = 0x08
_GZIP_FCOMMENT = 0x10
_GZIP_FHCRC = 0x02
_GZIP_MAX_MEMBERS = 1024


def _directory_size(data: bytes) -> int | None:
    """Central directory bytes from the end records (APPNOTE 4.3.16, 4.3.14), if any."""
    start = data.rfind(_EOCD, max(0, len(data) - _EOCD_SEARCH))
    if start < 0 or start + 22 > len(data):
        return None
    (size,) = struct.unpack_from("<I", data, start + 12)
    locator = start - 20
    if size == 0xFFFFFFFF and locator >= 0 and data[locator : locator + 4] == _EOCD64_LOCATOR:
        (offset,) = struct.unpack_from("<Q", data, locator + 8)
        if offset + 56 <= len(data) and data[offset : offset + 4] == b"PK\x06\x06":
            (size,) = struct.unpack_from("<Q", data, offset + 40)
    return int(size)


def _open_zip(data: bytes, ctx: ScanContext) -> zipfile.ZipFile:
    limits = ctx.config.limits
    size = _directory_size(data)
    if size is not None:
        cap = limits.max_members * _DIRECTORY_BYTES_PER_MEMBER
        if size > cap:
            raise LimitExceeded(
                f"ZIP central directory of {size} bytes is over the {cap} bytes allowed for "
                f"{limits.max_members} members; archive not inspected"
            )
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        OSError,
        ValueError,
        EOFError,
        struct.error,
        UnicodeDecodeError,
        NotImplementedError,
    ) as error:
        raise MalformedInput(f"not a readable ZIP archive: {error}") from error


def _candidates(ctx: ScanContext) -> tuple[bytes, ...]:
    seen: dict[bytes, None] = {}
    for text in (*ctx.config.passwords, *ctx.passwords):
        for encoding in _PASSWORD_ENCODINGS:
            try:
                seen.setdefault(text.encode(encoding), None)
            except UnicodeEncodeError:
                continue
    return tuple(seen)[:_MAX_PASSWORD_TRIES]


def _inflate(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    password: bytes | None,
    ctx: ScanContext,
) -> bytes:
    """One member, inflated within the part-size and ratio limits (budget not yet spent)."""
    limits = ctx.config.limits
    cap = limits.max_part_bytes
    ratio_cap = max(info.compress_size, 1) * limits.max_ratio + _RATIO_SLACK
    out = io.BytesIO()
    with archive.open(info, pwd=password) as stream:
        while True:
            ctx.check_time()
            chunk = stream.read(_CHUNK)
            if not chunk:
                break
            out.write(chunk)
            size = out.tell()
            if size > cap:
                raise LimitExceeded(f"member inflates past the part size limit of {cap} bytes")
            if size > ratio_cap:
                raise LimitExceeded(
                    f"member inflates more than {limits.max_ratio}:1 (compression bomb)"
                )
    return out.getvalue()


_INFLATE_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    ValueError,
    struct.error,
    LookupError,
    lzma.LZMAError,
)


def _bounded_inflate(stored: bytes, method: int, ctx: ScanContext) -> bytes:
    """Stored or raw-deflate bytes (APPNOTE 4.4.5 methods 0 and 8) within the limits."""
    limits = ctx.config.limits
    cap = min(limits.max_part_bytes, max(len(stored), 1) * limits.max_ratio + _RATIO_SLACK)
    if method == 0:
        return stored
    if method != 8:
        raise UnsupportedInput(f"AES member compressed with method {method}")
    inflater = zlib.decompressobj(-15)
    out = io.BytesIO()
    pending = stored
    while pending:
        ctx.check_time()
        out.write(inflater.decompress(pending, _CHUNK))
        pending = inflater.unconsumed_tail
        if out.tell() > cap:
            raise LimitExceeded("AES member inflates past the part size or ratio limit")
    out.write(inflater.flush())
    if out.tell() > cap:
        raise LimitExceeded("AES member inflates past the part size or ratio limit")
    return out.getvalue()


def _read_aes(archive_bytes: bytes, info: zipfile.ZipInfo, ctx: ScanContext) -> bytes:
    parameters = aes_parameters(info)
    if parameters is None:
        raise MalformedInput("member uses method 99 (WinZip AES) but has no 0x9901 extra field")
    raw = raw_member_data(archive_bytes, info)
    candidates = _candidates(ctx)
    for password in candidates:
        ctx.check_time()
        stored = decrypt(raw, parameters, password)
        if stored is not None:
            return _bounded_inflate(stored, parameters.method, ctx)
    if not candidates:
        raise EncryptedInput("member is AES-encrypted and no password was given or found")
    raise EncryptedInput(
        f"member is AES-encrypted and none of the {len(candidates)} candidate passwords opens it"
    )


def _read_encrypted(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, ctx: ScanContext, archive_bytes: bytes
) -> bytes:
    if info.compress_type == _METHOD_AES:
        return _read_aes(archive_bytes, info, ctx)
    if info.flag_bits & _FLAG_STRONG_ENCRYPTION:
        raise EncryptedInput("member uses PKWARE strong encryption (locked)")
    candidates = _candidates(ctx)
    for password in candidates:
        try:
            return _inflate(archive, info, password, ctx)
        except RuntimeError:
            # zipfile's answer when the password check byte does not match.
            continue
        except _INFLATE_ERRORS:
            # The check byte matches one wrong password in 256: the data then fails to
            # inflate or its CRC-32 does not match.
            continue
    if not candidates:
        raise EncryptedInput("member is encrypted and no password was given or found")
    raise EncryptedInput(
        f"member is encrypted and none of the {len(candidates)} candidate passwords opens it"
    )


def read_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, ctx: ScanContext, archive_bytes: bytes = b""
) -> bytes:
    """Inflate one member within the limits, decrypting it if a candidate password fits."""
    try:
        if info.flag_bits & _FLAG_ENCRYPTED:
            data = _read_encrypted(archive, info, ctx, archive_bytes)
        else:
            data = _inflate(archive, info, None, ctx)
    except NotImplementedError as error:
        raise UnsupportedInput(
            f"member compressed with method {info.compress_type}, which ddescan cannot inflate"
        ) from error
    except RuntimeError as error:
        raise EncryptedInput(f"member cannot be opened: {error}") from error
    except _INFLATE_ERRORS as error:
        raise MalformedInput(f"member cannot be inflated: {error}") from error
    ctx.budget.spend(len(data), info.filename)
    return data


def _member(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    location: Location,
    ctx: ScanContext,
    archive_bytes: bytes,
) -> Iterator[ScanItem]:
    data = read_member(archive, info, ctx, archive_bytes)
    if data:
        yield EmbeddedDocument(data, location)


def _is_directory(info: zipfile.ZipInfo) -> bool:
    return info.filename.endswith(("/", "\\")) and info.file_size == 0


def scan_zip(data: bytes, ctx: ScanContext) -> Iterator[ScanItem]:
    """Every file member of a ZIP archive as an embedded document, one PartScan each."""
    archive = _open_zip(data, ctx)
    limit = ctx.config.limits.max_members
    members = [info for info in archive.infolist() if not _is_directory(info)]
    for info in members[:limit]:
        ctx.check_time()
        location = ctx.location.child(info.filename)
        yield PartScan(location, partial(_member, archive, info, location, ctx, data))
    if len(members) > limit:
        raise LimitExceeded(
            f"archive has {len(members)} members; the {len(members) - limit} past the member "
            f"limit of {limit} were not inspected"
        )


class ZipFormat:
    """Any ZIP archive that no Office package format claimed first (registry order)."""

    format = FileFormat.ZIP

    def identify(self, data: bytes, name: str) -> Confidence:
        # A split-archive marker (APPNOTE 8.5.3) may precede the first local header.
        if is_zip(data) or data[:8] == b"PK\x07\x08PK\x03\x04":
            return Confidence.YES
        return Confidence.NO

    def scan(self, data: bytes, ctx: ScanContext) -> Iterator[ScanItem]:
        yield from scan_zip(data, ctx)


def _gzip_header_end(data: bytes) -> tuple[int, str]:
    """Offset of the deflate stream and the stored file name (RFC 1952, 2.3.1)."""
    if len(data) < 10 or data[:3] != _GZIP_MAGIC:
        raise MalformedInput("not a gzip stream")
    flags = data[3]
    offset = 10
    if flags & _GZIP_FEXTRA:
        if offset + 2 > len(data):
            raise MalformedInput("gzip header truncated in its extra field")
        (extra,) = struct.unpack_from("<H", data, offset)
        offset += 2 + extra
    name = ""
    for flag in (_GZIP_FNAME, _GZIP_FCOMMENT):
        if flags & flag:
            end = data.find(b"\x00", offset)
            if end < 0:
                raise MalformedInput("gzip header truncated in its name or comment")
            if flag == _GZIP_FNAME:
                name = data[offset:end][:255].decode("latin-1")
            offset = end + 1
    if flags & _GZIP_FHCRC:
        offset += 2
    if offset > len(data):
        raise MalformedInput("gzip header truncated")
    return offset, name


def _gzip_name(ctx: ScanContext, stored: str) -> str:
    cleaned = "".join(ch for ch in stored if ch.isprintable()).replace("\\", "/")
    cleaned = cleaned.rsplit("/", 1)[-1]
    if cleaned:
        return cleaned
    outer = ctx.location.containers[-1].replace("\\", "/").rsplit("/", 1)[-1]
    for suffix in (".gz", ".gzip", ".tgz"):
        if outer.lower().endswith(suffix) and len(outer) > len(suffix):
            return outer[: -len(suffix)] + (".tar" if suffix == ".tgz" else "")
    return "gzip content"


def gunzip(data: bytes, ctx: ScanContext) -> tuple[bytes, str, bool]:
    """The inflated content of every gzip member, the first stored name, and whether the
    stream ended cleanly (False when it was cut short: the part read so far is returned)."""
    limits = ctx.config.limits
    cap = limits.max_part_bytes
    ratio_cap = max(len(data), 1) * limits.max_ratio + _RATIO_SLACK
    out = io.BytesIO()
    offset, name = _gzip_header_end(data)
    complete = False
    for _ in range(_GZIP_MAX_MEMBERS):
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        pending = data[offset:]
        try:
            while pending and not inflater.eof:
                ctx.check_time()
                out.write(inflater.decompress(pending, _CHUNK))
                pending = inflater.unconsumed_tail
                if out.tell() > cap:
                    raise LimitExceeded(f"gzip content inflates past the part size limit of {cap}")
                if out.tell() > ratio_cap:
                    raise LimitExceeded(
                        f"gzip content inflates more than {limits.max_ratio}:1 (compression bomb)"
                    )
        except zlib.error as error:
            raise MalformedInput(f"gzip stream cannot be inflated: {error}") from error
        if not inflater.eof:
            break
        # 8-byte trailer (CRC-32, size), then possibly another member (RFC 1952, 2.2).
        rest = inflater.unused_data[8:]
        if rest[:3] != _GZIP_MAGIC:
            complete = True
            break
        offset = len(data) - len(rest)
        offset += _gzip_header_end(rest)[0]
    else:
        raise LimitExceeded(f"gzip stream has more than {_GZIP_MAX_MEMBERS} members")
    content = out.getvalue()
    ctx.budget.spend(len(content), "gzip content")
    return content, name, complete


class GzipFormat:
    format = FileFormat.GZIP

    def identify(self, data: bytes, name: str) -> Confidence:
        return Confidence.YES if data[:3] == _GZIP_MAGIC and len(data) >= 18 else Confidence.NO

    def scan(self, data: bytes, ctx: ScanContext) -> Iterator[ScanItem]:
        content, stored, complete = gunzip(data, ctx)
        if content:
            yield EmbeddedDocument(content, ctx.location.child(_gzip_name(ctx, stored)))
        if not complete:
            raise MalformedInput("gzip stream is truncated; only the part before the cut was read")
