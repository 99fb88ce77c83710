"""Documents inside embedded objects are scanned as documents of their own."""

from __future__ import annotations

import struct

from cfbwriter import write_cfb
from docx_builder import complex_field, document, docx, package
from olewriter import ole1_embedded, packager_native, rtf_objdata_rows

from scanner import scan_bytes
from scanner.formats.embedded import packaged_file

DDE_DOCX = docx(complex_field('DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc.exe"'))
COMMAND = "c:\\windows\\system32\\cmd.exe /k calc.exe"


def rtf_with_object(objdata: bytes, objclass: str) -> bytes:
    lines = rtf_objdata_rows(objdata)
    return (
        "{\\rtf1\\ansi{\\object\\objemb{\\*\\objclass " + objclass + "}"
        "{\\*\\objdata\n" + lines + "\n}}}"
    ).encode()


def commands(report):  # type: ignore[no-untyped-def]
    return [(f.location.containers, f.process.command_line) for f in report.findings]


def test_packaged_file_layout() -> None:
    assert packaged_file(packager_native("a.docx", b"PKDATA")) == ("a.docx", b"PKDATA")
    assert packaged_file(b"\x02\x00abc") is None
    assert packaged_file(packager_native("a.docx", b"PK")[:-1]) is None


def test_rtf_ole1_package_carrying_a_docx() -> None:
    data = rtf_with_object(
        ole1_embedded("Package", packager_native("invoice.docx", DDE_DOCX)), "Package"
    )
    report = scan_bytes(data, "mail.rtf")
    assert commands(report) == [
        (("mail.rtf", "object 1", "invoice.docx", "word/document.xml"), COMMAND)
    ]


def test_rtf_ole2_word_document_with_package_stream() -> None:
    storage = write_cfb({"Package": DDE_DOCX})
    data = rtf_with_object(ole1_embedded("Word.Document.12", storage), "Word.Document.12")
    report = scan_bytes(data, "mail.rtf")
    assert commands(report) == [(("mail.rtf", "object 1", "Package", "word/document.xml"), COMMAND)]


def test_docx_embedding_an_ole_package_and_a_direct_package() -> None:
    storage = write_cfb(
        {"\x01Ole10Native": struct.pack("<I", 0) + packager_native("x.docx", DDE_DOCX)}
    )
    data = package(
        {
            "word/document.xml": document("<w:r><w:t>see attachment</w:t></w:r>"),
            "word/embeddings/oleObject1.bin": storage,
            "word/embeddings/Microsoft_Word_Document.docx": DDE_DOCX,
        }
    )
    report = scan_bytes(data, "outer.docx")
    assert sorted(commands(report)) == [
        (
            ("outer.docx", "word/embeddings/Microsoft_Word_Document.docx", "word/document.xml"),
            COMMAND,
        ),
        (("outer.docx", "word/embeddings/oleObject1.bin", "x.docx", "word/document.xml"), COMMAND),
    ]


def test_doc_object_pool_package() -> None:
    from docwriter import Stories, word_streams  # type: ignore[import-not-found]

    streams = word_streams(Stories(main="Please see the attached invoice.\r"))
    streams["ObjectPool/_1234/\x01Ole10Native"] = struct.pack("<I", 0) + packager_native(
        "invoice.docx", DDE_DOCX
    )
    report = scan_bytes(write_cfb(streams), "letter.doc")
    assert commands(report) == [
        (
            ("letter.doc", "ObjectPool/_1234/invoice.docx", "word/document.xml"),
            COMMAND,
        )
    ]
