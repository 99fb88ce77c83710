"""OpenDocument text and spreadsheets (ODF 1.2/1.3, OASIS): DDE connections, links and formulas.

An ODF package is a ZIP whose first member, `mimetype`, is stored uncompressed and names the
document type (ODF 1.2 Part 3, 3.3 MIME Media Type); the document itself is `content.xml`
and `styles.xml`, and embedded objects sit in sub-folders ("Object 1/content.xml") or as
binary members (an OLE object is a compound file named "Object 1"). The same content can be
written as a single XML file, `office:document` with an `office:mimetype` attribute (flat
ODF: .fodt, .fods).

Three places hold a DDE conversation:

* `text:dde-connection-decl` (ODF 1.2 Part 1, DDE connections): a named DDE connection
  that `text:dde-connection` fields of a text document show, with `office:dde-application`,
  `office:dde-topic`, `office:dde-item` and `office:automatic-update`;
* `office:dde-source`: the source of a DDE-linked table (`table:dde-link`) or section
  (`text:section`), with the same attributes;
* a formula (`table:formula`, `table:expression`, `table:condition`) calling
  `DDE(application; topic; item)` (OpenFormula, ODF 1.2 Part 2, the DDE function), written
  with a namespace prefix (`of:=`, `oooc:=`) that says which formula syntax follows.

LibreOffice opens them as soffice.bin, which the runtime KQL rule does not watch.
"""

from __future__ import annotations

import io
import lzma
import posixpath
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from lxml import etree

from scanner.analysis import dde_finding
from scanner.errors import EncryptedInput, MalformedInput, UnsupportedInput
from scanner.formats.base import PartScan, ScanContext, ScanItem
from scanner.formats.officexml import (
    ODF_OFFICE,
    column_letters,
    formula_may_call_dde,
    iter_end_elements,
    sniff_xml,
)
from scanner.formats.package import Package, is_zip
from scanner.formulas import canonical_reference, findings_for_formula
from scanner.model import (
    Confidence,
    DdeCall,
    EmbeddedDocument,
    Evidence,
    FileFormat,
    Finding,
    Formula,
    HostApplication,
    Location,
    Technique,
)

TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
TABLE = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"

_MIME_PREFIX = "application/vnd.oasis.opendocument."
_KINDS = {
    "text": FileFormat.ODT,
    "text-template": FileFormat.ODT,
    "text-master": FileFormat.ODT,
    "text-master-template": FileFormat.ODT,
    "text-web": FileFormat.ODT,
    "spreadsheet": FileFormat.ODS,
    "spreadsheet-template": FileFormat.ODS,
}
_MIMETYPE_CAP = 256
_MANIFEST_PART = "META-INF/manifest.xml"
_MANIFEST_CAP = 1024 * 1024
_MANIFEST_ROOT = re.compile(
    rb"""full-path\s*=\s*["']/["'][^>]{0,512}?media-type\s*=\s*["']([^"']{1,100})["']"""
    rb"""|media-type\s*=\s*["']([^"']{1,100})["'][^>]{0,512}?full-path\s*=\s*["']/["']"""
)

_O = "{" + ODF_OFFICE + "}"
_T = "{" + TEXT + "}"
_TB = "{" + TABLE + "}"
_TAGS = (
    _T + "dde-connection-decl",
    _O + "dde-source",
    _TB + "table",
    _TB + "table-row",
    _TB + "table-cell",
    _TB + "covered-table-cell",
    _TB + "named-expression",
    _TB + "content-validation",
)
# Formulas start with the prefix of the namespace of their syntax (ODF 1.2 Part 1, the
# table:formula attribute): of: OpenFormula, oooc: the older OpenOffice.org syntax, msoxl:
# Excel's.
_FORMULA_PREFIX = re.compile(r"^\s*([A-Za-z_][\w.\-]{0,31}):(?=\s*=|[A-Za-z_])")
_REPEAT = re.compile(r"\s*\d{1,9}\s*")
# The spreadsheet grid LibreOffice keeps (16,384 columns, 1,048,576 rows); repeat counts past
# it are where the grid ends, not more cells.
_MAX_ROW = 1_048_576
_MAX_COLUMN = 16_384
_MAX_TABLE_ANCESTORS = 8
# Members that never hold a document: the package's own metadata, and rendered previews.
_NOT_EMBEDDED = ("mimetype", "meta-inf/", "thumbnails/", "configurations2/")


def _kind_of(mimetype: str) -> FileFormat | None:
    mimetype = mimetype.strip().lower()
    if not mimetype.startswith(_MIME_PREFIX):
        return None
    return _KINDS.get(mimetype[len(_MIME_PREFIX) :])


def _zip_kind(data: bytes) -> FileFormat | None:
    # The fast path: `mimetype` first and stored, as ODF requires, so its text sits right
    # after the 30-byte local header and the 8-byte name.
    if data[:4] == b"PK\x03\x04" and data[30:38] == b"mimetype":
        kind = _kind_of(data[38:138].split(b"PK", 1)[0].decode("ascii", "replace"))
        if kind is not None:
            return kind
    if not is_zip(data) or (b"mimetype" not in data and b"META-INF/manifest.xml" not in data):
        return None
    # LibreOffice also reads packages whose mimetype is not first, or only in the manifest.
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            if "mimetype" in names:
                with archive.open("mimetype") as stream:
                    kind = _kind_of(stream.read(_MIMETYPE_CAP).decode("ascii", "replace"))
                if kind is not None:
                    return kind
            if "META-INF/manifest.xml" in names:
                with archive.open("META-INF/manifest.xml") as stream:
                    found = _MANIFEST_ROOT.search(stream.read(_MANIFEST_CAP))
                if found:
                    value = found.group(1) or found.group(2)
                    return _kind_of(value.decode("ascii", "replace"))
    except (
        zipfile.BadZipFile,
        zlib.error,
        lzma.LZMAError,
        KeyError,
        OSError,
        ValueError,
        EOFError,
        NotImplementedError,
    ):
        return None
    return None


def _flat_kind(data: bytes) -> FileFormat | None:
    head = sniff_xml(data)
    if head is None or (head.namespace, head.name) != (ODF_OFFICE, "document"):
        return None
    return _kind_of(head.attribute(ODF_OFFICE, "mimetype") or "")


def odf_kind(data: bytes) -> FileFormat | None:
    """FileFormat.ODT or ODS for an ODF package or flat ODF document, else None."""
    if data[:2] == b"PK":
        return _zip_kind(data)
    return _flat_kind(data)


def _repeat(value: str | None, limit: int) -> int:
    if value is None or not _REPEAT.fullmatch(value):
        return 1
    return max(1, min(int(value), limit))


@dataclass
class _Table:
    name: str
    row: int = 0
    row_element: etree._Element | None = None
    column: int = 0


class _Content:
    """State of one streaming pass over an ODF XML part (content.xml, styles.xml, flat)."""

    def __init__(self, location: Location, ctx: ScanContext) -> None:
        self.location = location
        self.ctx = ctx
        self.host = ctx.host or HostApplication.LIBREOFFICE
        self.tables: dict[etree._Element, _Table] = {}
        self.table_count = 0

    def table_of(self, cell: etree._Element) -> _Table | None:
        node = cell.getparent()
        for _ in range(_MAX_TABLE_ANCESTORS):
            if node is None:
                return None
            if node.tag == _TB + "table":
                state = self.tables.get(node)
                if state is None:
                    self.table_count += 1
                    name = node.get(_TB + "name", "") or f"table {self.table_count}"
                    parent = node.getparent()
                    if parent is not None and parent.tag == _TB + "dde-link":
                        name += " (DDE link cache)"
                    state = _Table(name)
                    self.tables[node] = state
                return state
            node = node.getparent()
        return None

    def cell(self, element: etree._Element) -> tuple[str, str] | None:
        """Advance the grid position past a cell; (formula, place) if it has a formula."""
        table = self.table_of(element)
        if table is None:
            return None
        row = element.getparent()
        if row is not table.row_element:
            table.row_element = row
            table.row += 1
            table.column = 0
        column = table.column + 1
        table.column = min(
            table.column + _repeat(element.get(_TB + "number-columns-repeated"), _MAX_COLUMN),
            _MAX_COLUMN + 1,
        )
        text = element.get(_TB + "formula")
        if text is None or not formula_may_call_dde(text):
            return None
        if column <= _MAX_COLUMN and table.row <= _MAX_ROW:
            reference = f"{column_letters(column)}{table.row}"
        else:
            reference = f"R{table.row}C{column}"
        return text, f"{table.name}!{reference}"

    def end_row(self, element: etree._Element) -> None:
        table = self.table_of(element)
        if table is None:
            return
        if element is not table.row_element:
            table.row += 1
        repeated = _repeat(element.get(_TB + "number-rows-repeated"), _MAX_ROW)
        table.row = min(table.row + repeated - 1, _MAX_ROW + 1)
        table.row_element = None

    def formula(self, text: str, detail: str) -> Iterator[Finding]:
        if not formula_may_call_dde(text):
            return
        steps: tuple[str, ...] = ()
        readable = text
        prefix = _FORMULA_PREFIX.match(text)
        if prefix:
            readable = text[prefix.end() :]
            steps = (f"formula syntax prefix '{prefix.group(1)}:' dropped",)
        formula = Formula(readable, self.location.at(detail), steps)
        yield from findings_for_formula(formula, self.host, self.ctx.config, raw=text)

    def dde(self, element: etree._Element, keyword: str, detail: str) -> Iterator[Finding]:
        application = element.get(_O + "dde-application", "")
        if not application.strip():
            return
        topic = element.get(_O + "dde-topic", "")
        item = element.get(_O + "dde-item", "")
        automatic_value = element.get(_O + "automatic-update")
        automatic = (automatic_value or "").strip().lower() == "true"
        call = DdeCall(
            application=application,
            topic=topic,
            item=item,
            keyword=keyword,
            automatic=automatic,
        )
        attributes = [
            ("office:name", element.get(_O + "name")),
            ("office:dde-application", application),
            ("office:dde-topic", topic),
            ("office:dde-item", item),
            ("office:automatic-update", automatic_value),
        ]
        raw = (
            f"<{keyword} "
            + " ".join(f'{name}="{value}"' for name, value in attributes if value is not None)
            + "/>"
        )
        steps = (
            ("office:automatic-update is true: the link is updated when the document opens",)
            if automatic
            else ()
        )
        evidence = Evidence(
            raw=raw, deobfuscated=canonical_reference(application, topic, item), steps=steps
        )
        yield dde_finding(
            call, Technique.DDE_LINK, evidence, self.location.at(detail), self.host, self.ctx.config
        )

    def dde_source(self, element: etree._Element) -> Iterator[Finding]:
        parent = element.getparent()
        name = element.get(_O + "name", "")
        if parent is not None and parent.tag == _TB + "dde-link":
            detail = f'table:dde-link "{name}"' if name else "table:dde-link"
        elif parent is not None and parent.tag == _T + "section":
            section = parent.get(_T + "name", "")
            detail = f'text:section "{section}" DDE source'
        else:
            detail = f'office:dde-source "{name}"' if name else "office:dde-source"
        yield from self.dde(element, "office:dde-source", detail)


def scan_content(data: bytes, location: Location, ctx: ScanContext) -> Iterator[Finding]:
    """DDE connections, DDE sources and DDE formulas of one ODF XML document."""
    state = _Content(location, ctx)
    what = location.containers[-1]
    for element in iter_end_elements(data, what, _TAGS, ctx):
        tag = element.tag
        if tag == _TB + "table-cell" or tag == _TB + "covered-table-cell":
            placed = state.cell(element)
            if placed is not None:
                yield from state.formula(*placed)
        elif tag == _TB + "table-row":
            state.end_row(element)
        elif tag == _TB + "table":
            state.tables.pop(element, None)
        elif tag == _T + "dde-connection-decl":
            name = element.get(_O + "name", "")
            yield from state.dde(
                element, "text:dde-connection-decl", f'text:dde-connection-decl "{name}"'
            )
        elif tag == _O + "dde-source":
            yield from state.dde_source(element)
        elif tag == _TB + "named-expression":
            name = element.get(_TB + "name", "")
            yield from state.formula(
                element.get(_TB + "expression", ""), f'named expression "{name}"'
            )
        elif tag == _TB + "content-validation":
            name = element.get(_TB + "name", "")
            yield from state.formula(
                element.get(_TB + "condition", ""), f'content validation "{name}"'
            )


def _is_document_xml(name: str) -> bool:
    return posixpath.basename(name).casefold() in ("content.xml", "styles.xml")


def _is_embedded_candidate(name: str) -> bool:
    folded = name.casefold()
    if folded.endswith((".xml", ".rdf", "/")):
        return False
    return not any(folded == p or folded.startswith(p) for p in _NOT_EMBEDDED)


def _scan_package(data: bytes, ctx: ScanContext) -> Iterator[ScanItem]:
    package = Package(data, ctx)
    if package.has(_MANIFEST_PART) and b"encryption-data" in package.read(_MANIFEST_PART):
        # ODF 1.2 Part 3, 3.4: the manifest lists how each encrypted member was encrypted.
        raise EncryptedInput(
            "OpenDocument package is password-encrypted: its content cannot be inspected"
        )
    documents = [name for name in package.names if _is_document_xml(name)]
    if not any(name.casefold() == "content.xml" for name in documents):
        raise MalformedInput("OpenDocument package without content.xml")
    # The document's own parts first, then embedded objects' ("Object 1/content.xml").
    documents.sort(key=lambda name: ("/" in name, name.casefold() != "content.xml", name))

    def read(name: str, location: Location) -> Callable[[], Iterator[ScanItem]]:
        def run() -> Iterator[ScanItem]:
            yield from scan_content(package.read(name), location, ctx)

        return run

    def embedded(name: str, location: Location) -> Callable[[], Iterator[ScanItem]]:
        def run() -> Iterator[ScanItem]:
            # OLE objects and other embedded files are opened by their own application.
            member = package.read(name)
            if member:
                yield EmbeddedDocument(member, location)

        return run

    for name in documents:
        location = ctx.location.child(name)
        yield PartScan(location, read(name, location))
    for name in package.names:
        if _is_embedded_candidate(name):
            location = ctx.location.child(name)
            yield PartScan(location, embedded(name, location))


class _OpenDocumentFormat:
    format: FileFormat

    def identify(self, data: bytes, name: str) -> Confidence:
        return Confidence.YES if odf_kind(data) is self.format else Confidence.NO

    def scan(self, data: bytes, ctx: ScanContext) -> Iterator[ScanItem]:
        if data[:2] == b"PK":
            yield from _scan_package(data, ctx)
        elif _flat_kind(data) is not None:
            yield from scan_content(data, ctx.location, ctx)
        else:
            raise UnsupportedInput("not an OpenDocument package or flat OpenDocument file")


class OdtFormat(_OpenDocumentFormat):
    """OpenDocument text (.odt, .ott, .fodt)."""

    format = FileFormat.ODT


class OdsFormat(_OpenDocumentFormat):
    """OpenDocument spreadsheet (.ods, .ots, .fods)."""

    format = FileFormat.ODS
