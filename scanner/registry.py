"""The ordered registry of formats. identify() runs in this order; the first YES wins.

Adding a format is one module in scanner/formats/ and one line here. Order matters only
between formats that may both claim the same bytes: specific signatures first, the
permissive text formats (CSV) last.
"""

from __future__ import annotations

from scanner.formats.base import FormatHandler
from scanner.formats.html import HtmlFormat
from scanner.formats.ooxml import OtherPackageFormat, SpreadsheetFormat, WordprocessingFormat
from scanner.formats.rtf import RtfFormat

REGISTRY: tuple[FormatHandler, ...] = (
    WordprocessingFormat(),
    SpreadsheetFormat(),
    OtherPackageFormat(),
    RtfFormat(),
    HtmlFormat(),
)
