"""The ordered registry of formats. identify() runs in this order; the first YES wins.

Adding a format is one module in scanner/formats/ and one line here. Order matters only
between formats that may both claim the same bytes: specific signatures first, the
permissive text formats (CSV) last.
"""

from __future__ import annotations

from scanner.formats.archive import GzipFormat, ZipFormat
from scanner.formats.base import FormatHandler
from scanner.formats.biff import ExcelBinaryFormat
from scanner.formats.cfb import OtherCompoundFileFormat
from scanner.formats.csv_text import CsvFormat
from scanner.formats.encrypted import EncryptedOfficeFormat
from scanner.formats.html import HtmlFormat
from scanner.formats.mime import EmlFormat, TnefFormat
from scanner.formats.msg import MsgFormat
from scanner.formats.officexml import FlatOpcFormat, SpreadsheetXml2003Format, WordXml2003Format
from scanner.formats.ooxml import OtherPackageFormat, SpreadsheetFormat, WordprocessingFormat
from scanner.formats.opendocument import OdsFormat, OdtFormat
from scanner.formats.rtf import RtfFormat
from scanner.formats.worddoc import WordBinaryFormat
from scanner.formats.xlsb import XlsbFormat

REGISTRY: tuple[FormatHandler, ...] = (
    WordprocessingFormat(),
    SpreadsheetFormat(),
    XlsbFormat(),
    OtherPackageFormat(),
    OdtFormat(),
    OdsFormat(),
    # Encrypted Office files before every other compound-file format: it hands them the
    # plain document.
    EncryptedOfficeFormat(),
    WordBinaryFormat(),
    ExcelBinaryFormat(),
    # Outlook messages: compound files with MAPI property streams at the root.
    MsgFormat(),
    TnefFormat(),
    OtherCompoundFileFormat(),
    RtfFormat(),
    # Office XML before HTML: an XML document is not HTML.
    WordXml2003Format(),
    FlatOpcFormat(),
    SpreadsheetXml2003Format(),
    HtmlFormat(),
    # Plain ZIP after every Office package format: an OOXML package is a ZIP too.
    ZipFormat(),
    GzipFormat(),
    # Mail is text with header lines: before CSV, the permissive last resort.
    EmlFormat(),
    CsvFormat(),
)
