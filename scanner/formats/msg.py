"""Outlook messages (.msg, [MS-OXMSG]): a compound file of MAPI properties.

Each property of a message is a stream `__substg1.0_IIIITTTT` (property id, then type) in
the message's storage; each attachment is a storage `__attach_version1.0_#N`
([MS-OXMSG] 2.2.2), whose data is the stream PidTagAttachDataBinary (0x3701, binary) or,
for an attached message, the storage PidTagAttachDataObject (0x3701, object) holding a
message of its own ([MS-OXMSG] 2.2.2.1).

The RTF body (PidTagRtfCompressed 0x1009, [MS-OXRTFCP]) and the HTML body (PidTagHtml
0x1013) are what Outlook renders, so fields in them are reported with OUTLOOK.EXE as the
parent; attachments are scanned as documents of their own, by content. Attached messages
are walked here with an explicit stack, each counting as one level of nesting against
ScanLimits.max_depth. The plain-text body (0x1000) is not rendered as a document; it and
the subject are searched for quoted archive passwords.

olefile was chosen over extract-msg: extract-msg is built on olefile and adds decoding we do
not need (recipients, named properties, dates), pulls in several dependencies that are not
installed here, and raises its own broad set of exceptions on damaged files; reading the few
properties above through scanner.formats.cfb keeps one error boundary and one size check
for every stream.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

import olefile

from scanner.equation import scan_compound_objects
from scanner.errors import LimitExceeded, MalformedInput
from scanner.formats.base import PartScan, ScanContext, ScanItem, raising
from scanner.formats.cfb import is_cfb, open_cfb, read_stream, stream_names
from scanner.formats.cfbwrite import write_cfb
from scanner.formats.embedded import embedded_documents
from scanner.formats.mime import password_candidates, visible_text
from scanner.formats.rtfcompressed import decompress_rtf
from scanner.model import Confidence, EmbeddedDocument, FileFormat, HostApplication, Location

_SUBSTG = "__substg1.0_"
_PROPERTIES = "__properties_version1.0"
_ATTACH = "__attach_version1.0_#"
_ATTACH_DATA_OBJECT = _SUBSTG + "3701000D"
_MARKERS = (_SUBSTG.encode("utf-16-le"), _PROPERTIES.encode("utf-16-le"))

# [MS-OXPROPS] property ids, with the string (0x001F UTF-16LE, 0x001E 8-bit) or binary
# (0x0102) type they are stored in.
_SUBJECT = "0037"
_BODY = "1000"
_RTF_COMPRESSED = "10090102"
_HTML = "1013"
_ATTACH_DATA_BINARY = "37010102"
_ATTACH_LONG_FILENAME = "3707"
_ATTACH_FILENAME = "3704"
_DISPLAY_NAME = "3001"

_OLE_OBJECT_STREAM = _ATTACH_DATA_OBJECT.upper() + "/"
_MAX_MESSAGES = 256
_MAX_NAME = 255
_TEXT_CAP = 1024 * 1024
_ATTACH_INDEX = re.compile(r"#([0-9A-Fa-f]{1,8})$")


@dataclass(frozen=True)
class _Message:
    storage: tuple[str, ...]
    location: Location
    level: int


class _Tree:
    """The stream paths of a compound file, indexed by storage (names compared upper-case)."""

    def __init__(self, ole: olefile.OleFileIO) -> None:
        self.ole = ole
        self.streams: dict[tuple[str, ...], dict[str, str]] = {}
        self.storages: dict[tuple[str, ...], dict[str, str]] = {}
        for path in stream_names(ole):
            parts = tuple(path.split("/"))
            self.streams.setdefault(parts[:-1], {})[parts[-1].upper()] = parts[-1]
            for index in range(len(parts) - 1):
                self.storages.setdefault(parts[:index], {})[parts[index].upper()] = parts[index]

    def stream(self, storage: tuple[str, ...], name: str) -> str | None:
        real = self.streams.get(storage, {}).get(name.upper())
        return "/".join((*storage, real)) if real is not None else None

    def has_storage(self, storage: tuple[str, ...], name: str) -> tuple[str, ...] | None:
        real = self.storages.get(storage, {}).get(name.upper())
        return (*storage, real) if real is not None else None

    def attachments(self, storage: tuple[str, ...]) -> list[tuple[str, ...]]:
        names = [
            real
            for upper, real in self.storages.get(storage, {}).items()
            if upper.startswith(_ATTACH.upper())
        ]

        def order(name: str) -> tuple[int, str]:
            match = _ATTACH_INDEX.search(name)
            return (int(match.group(1), 16) if match else 1 << 32, name)

        return [(*storage, name) for name in sorted(names, key=order)]


def _read(tree: _Tree, path: str, ctx: ScanContext) -> bytes:
    data = read_stream(tree.ole, path, ctx.config.limits.max_part_bytes)
    ctx.budget.spend(len(data), path)
    return data


def _string(tree: _Tree, storage: tuple[str, ...], prop: str, ctx: ScanContext) -> str:
    """A string property: the UTF-16LE form (001F) if present, else the 8-bit one (001E)."""
    path = tree.stream(storage, _SUBSTG + prop + "001F")
    if path is not None:
        return _read(tree, path, ctx)[:_TEXT_CAP].decode("utf-16-le", "replace").rstrip("\x00")
    path = tree.stream(storage, _SUBSTG + prop + "001E")
    if path is not None:
        return _read(tree, path, ctx)[:_TEXT_CAP].decode("cp1252", "replace").rstrip("\x00")
    return ""


def _name(text: str) -> str:
    return "".join(ch for ch in text if ch.isprintable()).strip()[:_MAX_NAME]


def _html(tree: _Tree, storage: tuple[str, ...]) -> str | None:
    for kind in ("0102", "001F", "001E"):
        path = tree.stream(storage, _SUBSTG + _HTML + kind)
        if path is not None:
            return path
    return None


def _html_body(tree: _Tree, path: str, location: Location, ctx: ScanContext) -> Iterator[ScanItem]:
    data = _read(tree, path, ctx)
    if path.upper().endswith("001F"):
        data = data.decode("utf-16-le", "replace").encode("utf-8")
    if data:
        yield EmbeddedDocument(data, location, HostApplication.OUTLOOK)


def _rtf_body(tree: _Tree, path: str, location: Location, ctx: ScanContext) -> Iterator[ScanItem]:
    rtf = decompress_rtf(_read(tree, path, ctx), ctx.config.limits.max_part_bytes, ctx.check_time)
    ctx.budget.spend(len(rtf), path)
    if rtf:
        yield EmbeddedDocument(rtf, location, HostApplication.OUTLOOK)


def _attachment_data(
    tree: _Tree, path: str, location: Location, passwords: tuple[str, ...], ctx: ScanContext
) -> Iterator[ScanItem]:
    data = _read(tree, path, ctx)
    if data:
        yield EmbeddedDocument(data, location, None, passwords)


def _passwords(tree: _Tree, message: _Message, subject: str, ctx: ScanContext) -> tuple[str, ...]:
    texts = [subject, _string(tree, message.storage, _BODY, ctx)]
    path = _html(tree, message.storage)
    if path is not None:
        raw = _read(tree, path, ctx)[:_TEXT_CAP]
        encoding = "utf-16-le" if path.upper().endswith("001F") else "cp1252"
        texts.append(visible_text(raw.decode(encoding, "replace")))
    found: dict[str, None] = {}
    for text in texts:
        for candidate in password_candidates(text):
            found.setdefault(candidate, None)
    return tuple(found)


def _message_items(tree: _Tree, message: _Message, ctx: ScanContext) -> Iterator[ScanItem]:
    storage = message.storage
    subject = _name(_string(tree, storage, _SUBJECT, ctx))
    passwords = _passwords(tree, message, subject, ctx)
    rtf = tree.stream(storage, _SUBSTG + _RTF_COMPRESSED)
    if rtf is not None:
        location = message.location.child("RTF body")
        yield PartScan(location, partial(_rtf_body, tree, rtf, location, ctx))
    html = _html(tree, storage)
    if html is not None:
        location = message.location.child("HTML body")
        yield PartScan(location, partial(_html_body, tree, html, location, ctx))
    for number, attachment in enumerate(tree.attachments(storage), start=1):
        ctx.check_time()
        fallback = f"attachment {number}"
        data = tree.stream(attachment, _SUBSTG + _ATTACH_DATA_BINARY)
        inner = tree.has_storage(attachment, _ATTACH_DATA_OBJECT)
        if data is not None:
            name = (
                _name(_string(tree, attachment, _ATTACH_LONG_FILENAME, ctx))
                or _name(_string(tree, attachment, _ATTACH_FILENAME, ctx))
                or _name(_string(tree, attachment, _DISPLAY_NAME, ctx))
                or fallback
            )
            location = message.location.child(name)
            yield PartScan(
                location, partial(_attachment_data, tree, data, location, passwords, ctx)
            )
        elif inner is not None and tree.stream(inner, _PROPERTIES) is None:
            location = message.location.child(
                _name(_string(tree, attachment, _DISPLAY_NAME, ctx)) or fallback
            )
            # An embedded OLE object (ATTACH_OLE): its Equation Editor objects are found with
            # the rest of the file (scan_msg); the document it holds is re-packed as a compound
            # file of its own and scanned as an embedded object.
            yield PartScan(location, partial(_ole_attachment, tree, inner, location, ctx))


# write_cfb keeps the whole FAT in the header DIFAT: about 7 MB of streams at most.
_MAX_REPACKED_BYTES = 6 * 1024 * 1024


def _ole_attachment(
    tree: _Tree, storage: tuple[str, ...], location: Location, ctx: ScanContext
) -> Iterator[ScanItem]:
    prefix = "/".join(storage) + "/"
    streams: dict[str, bytes] = {}
    total = 0
    for path in stream_names(tree.ole):
        if not path.startswith(prefix):
            continue
        data = _read(tree, path, ctx)
        total += len(data)
        if total > _MAX_REPACKED_BYTES:
            raise LimitExceeded(
                f"OLE object attachment over {_MAX_REPACKED_BYTES} bytes; its document "
                "content is not inspected"
            )
        streams[path[len(prefix) :]] = data
    if streams:
        yield from embedded_documents(write_cfb(streams), location, ctx)


def _attached_messages(tree: _Tree, message: _Message, ctx: ScanContext) -> list[_Message]:
    """Messages attached to `message` (PidTagAttachDataObject storages that hold a message)."""
    found: list[_Message] = []
    for number, attachment in enumerate(tree.attachments(message.storage), start=1):
        if tree.stream(attachment, _SUBSTG + _ATTACH_DATA_BINARY) is not None:
            continue
        inner = tree.has_storage(attachment, _ATTACH_DATA_OBJECT)
        if inner is None or tree.stream(inner, _PROPERTIES) is None:
            continue
        try:
            name = _name(_string(tree, inner, _SUBJECT, ctx))
        except (MalformedInput, LimitExceeded):
            name = ""  # the message's own PartScan reports the damage
        found.append(
            _Message(
                inner, message.location.child(name or f"attachment {number}"), message.level + 1
            )
        )
    return found


def scan_msg(data: bytes, ctx: ScanContext) -> Iterator[ScanItem]:
    """Bodies and attachments of an Outlook message and of the messages attached to it."""
    tree = _Tree(open_cfb(data))
    if any(_OLE_OBJECT_STREAM in path.upper() for path in stream_names(tree.ole)):
        yield PartScan(ctx.location, partial(scan_compound_objects, tree.ole, ctx))
    stack = [_Message((), ctx.location, 0)]
    seen = 0
    while stack:
        ctx.check_time()
        message = stack.pop()
        seen += 1
        if seen > _MAX_MESSAGES:
            raise LimitExceeded(f"more than {_MAX_MESSAGES} attached messages; the rest not read")
        limit = ctx.config.limits.max_depth
        if ctx.depth + message.level > limit:
            error = LimitExceeded(f"nesting depth limit of {limit} reached; not inspected")
            yield PartScan(message.location, partial(raising, error))
            continue
        yield PartScan(message.location, partial(_message_items, tree, message, ctx))
        stack.extend(reversed(_attached_messages(tree, message, ctx)))


def is_msg(data: bytes) -> bool:
    """A compound file whose root holds MAPI property streams ([MS-OXMSG] 2.1)."""
    if not is_cfb(data) or not any(marker in data for marker in _MARKERS):
        return False
    try:
        names = stream_names(open_cfb(data))
    except MalformedInput:
        return False
    return any("/" not in n and (n == _PROPERTIES or n.startswith(_SUBSTG)) for n in names)


class MsgFormat:
    format = FileFormat.MSG

    def identify(self, data: bytes, name: str) -> Confidence:
        return Confidence.YES if is_msg(data) else Confidence.NO

    def scan(self, data: bytes, ctx: ScanContext) -> Iterator[ScanItem]:
        yield from scan_msg(data, ctx)
