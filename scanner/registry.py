"""The ordered registry of formats. identify() runs in this order; the first YES wins.

Adding a format is one module in scanner/formats/ and one line here. Order matters only
between formats that may both claim the same bytes: specific signatures first, the
permissive text formats (CSV) last.

Each entry names its module and class and is imported the first time an input reaches it:
a process that scans only Word packages never compiles the RTF, CSV or BIFF machinery, which
is most of the package's start-up time. tests/test_registry.py checks every entry's
declared format against its class.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from functools import cache

from scanner.formats.base import FormatHandler, ScanContext, ScanItem
from scanner.model import Confidence, FileFormat


@cache
def _load(module: str, name: str) -> FormatHandler:
    handler: FormatHandler = getattr(importlib.import_module(module), name)()
    return handler


class LazyFormat:
    """A registry entry: the handler `module.name`, imported on first use."""

    def __init__(self, module: str, name: str, format: FileFormat) -> None:
        self.module = module
        self.name = name
        self.format = format

    @property
    def handler(self) -> FormatHandler:
        return _load(self.module, self.name)

    def identify(self, data: bytes, name: str) -> Confidence:
        return self.handler.identify(data, name)

    def scan(self, data: bytes, ctx: ScanContext) -> Iterator[ScanItem]:
        return self.handler.scan(data, ctx)


def _entry(module: str, name: str, format: FileFormat) -> LazyFormat:
    return LazyFormat(f"scanner.formats.{module}", name, format)


REGISTRY: tuple[FormatHandler, ...] = (
    _entry("ooxml", "WordprocessingFormat", FileFormat.DOCX),
    _entry("ooxml", "SpreadsheetFormat", FileFormat.XLSX),
    _entry("xlsb", "XlsbFormat", FileFormat.XLSB),
    _entry("ooxml", "OtherPackageFormat", FileFormat.OOXML),
    _entry("opendocument", "OdtFormat", FileFormat.ODT),
    _entry("opendocument", "OdsFormat", FileFormat.ODS),
    # Encrypted Office files before every other compound-file format: it hands them the
    # plain document.
    _entry("encrypted", "EncryptedOfficeFormat", FileFormat.ENCRYPTED),
    _entry("worddoc", "WordBinaryFormat", FileFormat.DOC),
    _entry("biff", "ExcelBinaryFormat", FileFormat.XLS),
    # Outlook messages: compound files with MAPI property streams at the root.
    _entry("msg", "MsgFormat", FileFormat.MSG),
    _entry("mime", "TnefFormat", FileFormat.TNEF),
    _entry("cfb", "OtherCompoundFileFormat", FileFormat.OLE),
    _entry("rtf", "RtfFormat", FileFormat.RTF),
    # Office XML before HTML: an XML document is not HTML.
    _entry("officexml", "WordXml2003Format", FileFormat.WORDML2003),
    _entry("officexml", "FlatOpcFormat", FileFormat.FLATOPC),
    _entry("officexml", "SpreadsheetXml2003Format", FileFormat.SPREADSHEETML2003),
    _entry("html", "HtmlFormat", FileFormat.HTML),
    # Plain ZIP after every Office package format: an OOXML package is a ZIP too.
    _entry("archive", "ZipFormat", FileFormat.ZIP),
    _entry("archive", "GzipFormat", FileFormat.GZIP),
    # Mail is text with header lines: before CSV, the permissive last resort.
    _entry("mime", "EmlFormat", FileFormat.EML),
    _entry("csv_text", "CsvFormat", FileFormat.CSV),
)
