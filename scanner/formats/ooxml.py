"""Office Open XML packages (ECMA-376 Part 2), recognised by their content types.

The main part's content type, not the file extension, says what application opens the
package: a .docx renamed .xlsx is still opened by Word through its content types.
"""

from __future__ import annotations

import io
import lzma
import zipfile
import zlib
from collections.abc import Iterator

from scanner.equation import embedding_scans
from scanner.errors import UnsupportedInput
from scanner.formats.base import ScanContext, ScanItem
from scanner.formats.package import CONTENT_TYPES_PART, Package, is_zip
from scanner.formats.spreadsheetml import scan_workbook
from scanner.formats.wordml import scan_document
from scanner.model import Confidence, FileFormat

# Main-part content types ([MS-OE376] 2.1.2; ECMA-376 Part 1, 11.3.10 and 12.3.23).
_WORD_MAIN = (
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.template.main+xml",
    "application/vnd.ms-word.document.macroenabled.main+xml",
    "application/vnd.ms-word.template.macroenabledtemplate.main+xml",
)
_EXCEL_MAIN = (
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.template.main+xml",
    "application/vnd.ms-excel.sheet.macroenabled.main+xml",
    "application/vnd.ms-excel.template.macroenabled.main+xml",
    "application/vnd.ms-excel.addin.macroenabled.main+xml",
)
# [MS-XLSB] 2.1.7.61: the workbook part of a binary workbook (.xlsb).
EXCEL_BINARY_MAIN = ("application/vnd.ms-excel.sheet.binary.macroenabled.main",)
_CONTENT_TYPES_CAP = 1024 * 1024


def _content_types_text(data: bytes) -> str | None:
    """The lower-cased [Content_Types].xml of a ZIP, or None if it has none (cheap, bounded)."""
    if not is_zip(data) or CONTENT_TYPES_PART.encode() not in data:
        return None
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            info = archive.getinfo(CONTENT_TYPES_PART)
            if info.file_size > _CONTENT_TYPES_CAP:
                return ""
            with archive.open(info) as stream:
                return stream.read(_CONTENT_TYPES_CAP).decode("utf-8", "replace").lower()
    except KeyError:
        # The name appeared in the bytes but not as a member: inside a stored member (a plain
        # ZIP holding an uncompressed .docx). This ZIP is not itself a package.
        return None
    except (
        zipfile.BadZipFile,
        zlib.error,
        lzma.LZMAError,
        OSError,
        ValueError,
        EOFError,
        NotImplementedError,
    ):
        # A damaged directory or a corrupt deflate stream: still a package by its
        # signature; scan() reports the damage.
        return ""


def package_kind(data: bytes) -> FileFormat | None:
    text = _content_types_text(data)
    if text is None:
        return None
    if any(t in text for t in _WORD_MAIN):
        return FileFormat.DOCX
    if any(t in text for t in _EXCEL_MAIN):
        return FileFormat.XLSX
    if any(t in text for t in EXCEL_BINARY_MAIN):
        return FileFormat.XLSB
    return FileFormat.OOXML


def _main_part(package: Package, wanted: tuple[str, ...]) -> str:
    main = package.main_part()
    if main and package.has(main) and package.content_type(main).lower() in wanted:
        return main
    # The package relationship may be missing or bent: fall back to the part whose content
    # type is the main document's, which is what identified the package in the first place.
    for name in package.names:
        if package.content_type(name).lower() in wanted:
            return name
    if main and package.has(main):
        return main
    raise UnsupportedInput("package has no main document part")


class WordprocessingFormat:
    format = FileFormat.DOCX

    def identify(self, data: bytes, name: str) -> Confidence:
        return Confidence.YES if package_kind(data) is FileFormat.DOCX else Confidence.NO

    def scan(self, data: bytes, ctx: ScanContext) -> Iterator[ScanItem]:
        package = Package(data, ctx)
        yield from scan_document(package, _main_part(package, _WORD_MAIN), ctx)
        yield from embedding_scans(package, ctx)


class SpreadsheetFormat:
    format = FileFormat.XLSX

    def identify(self, data: bytes, name: str) -> Confidence:
        return Confidence.YES if package_kind(data) is FileFormat.XLSX else Confidence.NO

    def scan(self, data: bytes, ctx: ScanContext) -> Iterator[ScanItem]:
        package = Package(data, ctx)
        yield from scan_workbook(package, _main_part(package, _EXCEL_MAIN), ctx)
        yield from embedding_scans(package, ctx)


class OtherPackageFormat:
    """Any other OPC package (presentations, binary workbooks): opened, nothing DDE to read.

    Later formats (embedded objects, xlsb) will claim their packages before this one does.
    """

    format = FileFormat.OOXML

    def identify(self, data: bytes, name: str) -> Confidence:
        kind = package_kind(data)
        if kind is FileFormat.OOXML:
            return Confidence.YES
        return Confidence.NO

    def scan(self, data: bytes, ctx: ScanContext) -> Iterator[ScanItem]:
        yield from embedding_scans(Package(data, ctx), ctx)
        raise UnsupportedInput(
            "Office package of a kind that carries no DDE fields or formulas ddescan reads"
        )
        yield  # pragma: no cover
