"""Open Packaging Conventions (ECMA-376 Part 2) reading with hard bounds, and safe XML.

Office packages are ZIP files; every part is read through `Package.read`, which enforces
the per-part size, the compression ratio and the shared decompressed-bytes budget while
inflating (never trusting the sizes the ZIP directory declares).
"""

from __future__ import annotations

import io
import lzma
import posixpath
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote

from lxml import etree

from scanner.errors import LimitExceeded, MalformedInput
from scanner.formats.base import ScanContext

if TYPE_CHECKING:
    # Only the type stubs name the class lxml returns for a parser with a target.
    from lxml.etree._parser import CustomTargetParser

CONTENT_TYPES_PART = "[Content_Types].xml"
REL_OFFICE_DOCUMENT = (
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument",
    "http://purl.oclc.org/ooxml/officeDocument/relationships/officeDocument",
)
_CT_NS = "{http://schemas.openxmlformats.org/package/2006/content-types}"
_REL_NS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_CHUNK = 64 * 1024


def _safe_parser() -> etree.XMLParser:
    # Entities are never expanded and nothing is fetched; DOCTYPEs are refused outright in
    # parse_xml (ECMA-376 Part 2, 8.1.4: package XML shall not contain a DTD).
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=True,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )


_PARSER = _safe_parser()


def safe_iterparse(data: bytes, tags: Sequence[str]) -> etree.iterparse[tuple[str, etree._Element]]:
    """Streaming parse of the elements named `tags`, with the settings of parse_xml (no
    entity expansion, no network, no DTD loading). The caller refuses a DOCTYPE when it
    sees the first element (docinfo.doctype), as parse_xml does."""
    return etree.iterparse(
        io.BytesIO(data),
        events=("end",),
        tag=list(tags),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=True,
        remove_comments=True,
        remove_pis=True,
    )


def safe_target_parser(target: etree.ParserTarget[None]) -> CustomTargetParser[None]:
    """A parser that hands events to `target` and builds no tree, with safe_iterparse's
    settings."""
    return etree.XMLParser(
        target=target,
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=True,
        remove_comments=True,
        remove_pis=True,
    )


def safe_pull_parser(tags: Sequence[str]) -> etree.XMLPullParser:
    """A pull parser of the end events of `tags`, with safe_iterparse's settings (iterparse
    itself feeds one), for callers that feed the bytes in pieces."""
    return etree.XMLPullParser(
        events=("end",),
        tag=list(tags),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=True,
        remove_comments=True,
        remove_pis=True,
    )


def parse_xml(data: bytes, what: str) -> etree._Element:
    """Parse one XML part safely. Raises MalformedInput for bad XML or any DTD."""
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if b"<!DOCTYPE" in head.upper() or b"<!ENTITY" in data[:65536].upper():
        raise MalformedInput(f"{what}: XML with a DOCTYPE/entity declaration is refused")
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as error:
        raise MalformedInput(f"{what}: not well-formed XML ({error})") from error
    if root is None:
        raise MalformedInput(f"{what}: empty XML document")
    if root.getroottree().docinfo.doctype:
        raise MalformedInput(f"{what}: XML with a DOCTYPE declaration is refused")
    return root


@dataclass(frozen=True)
class Relationship:
    id: str
    type: str
    target: str
    external: bool


def is_zip(data: bytes) -> bool:
    return data[:4] == b"PK\x03\x04" or (data[:4] == b"PK\x05\x06" and len(data) >= 22)


class Package:
    """A bounded, read-only view of an OPC package held in memory."""

    def __init__(self, data: bytes, ctx: ScanContext) -> None:
        self._ctx = ctx
        try:
            self._zip = zipfile.ZipFile(io.BytesIO(data))
            infos = self._zip.infolist()
        except (
            zipfile.BadZipFile,
            zipfile.LargeZipFile,
            NotImplementedError,  # "zip file version 12.8": a damaged version-needed field
            OSError,
            ValueError,
            EOFError,
        ) as error:
            raise MalformedInput(f"not a readable ZIP package: {error}") from error
        limit = ctx.config.limits.max_members
        if len(infos) > limit:
            raise LimitExceeded(f"package has {len(infos)} members, over the limit of {limit}")
        self._infos: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            name = info.filename.replace("\\", "/").lstrip("/")
            # OPC part names compare case-insensitively (ECMA-376 Part 2, 9.1.1.1.2).
            self._infos.setdefault(name.casefold(), info)
        self.names: tuple[str, ...] = tuple(
            sorted(info.filename.replace("\\", "/").lstrip("/") for info in self._infos.values())
        )
        self._content_types: tuple[dict[str, str], dict[str, str]] | None = None
        self._relationships: dict[str, tuple[Relationship, ...]] = {}

    def has(self, name: str) -> bool:
        return name.lstrip("/").casefold() in self._infos

    def read(self, name: str) -> bytes:
        """Inflate one part within the size, ratio and total-bytes limits."""
        info = self._infos.get(name.lstrip("/").casefold())
        if info is None:
            raise MalformedInput(f"missing part {name}")
        if info.flag_bits & 0x1:
            raise MalformedInput(f"part {name} is encrypted at ZIP level")
        limits = self._ctx.config.limits
        cap = limits.max_part_bytes
        ratio_cap = max(info.compress_size, 1) * limits.max_ratio + 1024 * 1024
        out = io.BytesIO()
        try:
            with self._zip.open(info) as stream:
                while True:
                    self._ctx.check_time()
                    chunk = stream.read(_CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    size = out.tell()
                    if size > cap:
                        raise LimitExceeded(
                            f"part {name} inflates past the part size limit of {cap} bytes"
                        )
                    if size > ratio_cap:
                        raise LimitExceeded(
                            f"part {name} inflates more than {limits.max_ratio}:1 "
                            "(compression bomb)"
                        )
        except (
            zipfile.BadZipFile,
            zlib.error,
            lzma.LZMAError,  # a ZIP member may be LZMA-compressed (APPNOTE method 14)
            EOFError,
            OSError,
            NotImplementedError,
            ValueError,
        ) as error:
            raise MalformedInput(f"part {name} cannot be inflated: {error}") from error
        data = out.getvalue()
        self._ctx.budget.spend(len(data), name)
        return data

    def _load_content_types(self) -> tuple[dict[str, str], dict[str, str]]:
        if self._content_types is None:
            defaults: dict[str, str] = {}
            overrides: dict[str, str] = {}
            if self.has(CONTENT_TYPES_PART):
                root = parse_xml(self.read(CONTENT_TYPES_PART), CONTENT_TYPES_PART)
                for node in root:
                    tag = node.tag if isinstance(node.tag, str) else ""
                    if tag == _CT_NS + "Default":
                        defaults[node.get("Extension", "").casefold()] = node.get("ContentType", "")
                    elif tag == _CT_NS + "Override":
                        overrides[node.get("PartName", "").lstrip("/").casefold()] = node.get(
                            "ContentType", ""
                        )
            self._content_types = (defaults, overrides)
        return self._content_types

    def content_type(self, name: str) -> str:
        defaults, overrides = self._load_content_types()
        key = name.lstrip("/").casefold()
        if key in overrides:
            return overrides[key]
        return defaults.get(posixpath.splitext(key)[1].lstrip("."), "")

    def relationships(self, source: str) -> tuple[Relationship, ...]:
        """Relationships of a part ("" for the package itself), targets resolved to part names."""
        source = source.lstrip("/")
        key = source.casefold()
        if key not in self._relationships:
            self._relationships[key] = self._read_relationships(source)
        return self._relationships[key]

    def _read_relationships(self, source: str) -> tuple[Relationship, ...]:
        folder, base = posixpath.split(source)
        rels_name = posixpath.join(folder, "_rels", base + ".rels")
        if not self.has(rels_name):
            return ()
        root = parse_xml(self.read(rels_name), rels_name)
        found: list[Relationship] = []
        for node in root:
            if node.tag != _REL_NS + "Relationship":
                continue
            target = node.get("Target", "")
            external = node.get("TargetMode", "") == "External"
            if not external:
                target = unquote(target)
                if target.startswith("/"):
                    target = posixpath.normpath(target.lstrip("/"))
                else:
                    target = posixpath.normpath(posixpath.join(folder, target))
                target = target.lstrip("/")
            found.append(Relationship(node.get("Id", ""), node.get("Type", ""), target, external))
        return tuple(found)

    def main_part(self) -> str | None:
        """The officeDocument target of the package relationships, if any."""
        for relationship in self.relationships(""):
            if relationship.type in REL_OFFICE_DOCUMENT and not relationship.external:
                return relationship.target
        return None
