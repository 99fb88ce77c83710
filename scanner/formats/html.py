"""HTML that Word opens: an altChunk import, or a "Web Page" saved as .doc.

Word writes fields into HTML as spans styled `mso-element:field-begin`, `field-separator` and
`field-end`, usually inside `<!--[if supportFields]> ... <![endif]-->` conditional comments that
browsers ignore but Word reads ([MS-OI29500]; Office HTML and XML Reference, "Fields"). The
text between begin and separator is the field code, HTML entities decoded.
"""

from __future__ import annotations

import codecs
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from scanner.fields import findings_for_stories
from scanner.formats.base import ScanContext, ScanItem
from scanner.model import Confidence, FieldNode, FieldStory, FileFormat, HostApplication

_HTML_START = re.compile(
    rb"^\s*(?:<!--.{0,1024}?-->\s*)*<(?:!doctype\s+html|html|head|body|meta)\b", re.I | re.S
)
_CONDITIONAL = re.compile(r"<!--\[if\s+supportFields\]>|<!\[endif\]-->", re.I)
# Bounded repetitions: an unclosed comment or tag must not make every later `<` rescan the
# rest of the file.
_TOKEN = re.compile(r"<!--.{0,65536}?-->|<(/?)([A-Za-z][\w:-]{0,64})([^>]{0,16384})>|([^<]+)", re.S)
_FIELD_MARK = re.compile(r"mso-element\s*:\s*field-(begin|separator|end)", re.I)
_CHARSET = re.compile(rb"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]{1,40})", re.I)
_SKIPPED = frozenset({"script", "style", "title", "xml"})
_BREAKS = frozenset({"br", "p", "div", "td", "tr", "li"})


def decode_html(data: bytes) -> str:
    if data.startswith(codecs.BOM_UTF8):
        return data[3:].decode("utf-8", "replace")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", "replace")
    match = _CHARSET.search(data[:4096])
    if match:
        try:
            return data.decode(match.group(1).decode("ascii"), "replace")
        except LookupError:
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


@dataclass
class _Open:
    pieces: list[str | FieldNode] = field(default_factory=list)
    result: list[str] = field(default_factory=list)
    in_result: bool = False
    ordinal: int = 0


def extract_fields(text: str) -> tuple[FieldNode, ...]:
    """Word fields written as mso-element spans, in document order, nested ones in place."""
    text = _CONDITIONAL.sub("", text)
    stack: list[_Open] = []
    fields: list[FieldNode] = []
    count = 0
    skipping: str | None = None

    def close(done: _Open) -> None:
        node = FieldNode(tuple(done.pieces), "".join(done.result), f"field {done.ordinal}")
        if stack and not stack[-1].in_result:
            stack[-1].pieces.append(node)
        else:
            fields.append(node)
            if stack:
                stack[-1].result.append(node.result)

    for match in _TOKEN.finditer(text):
        closing, tag, attributes, chars = match.groups()
        if tag is not None:
            name = tag.lower()
            if skipping:
                if closing and name == skipping:
                    skipping = None
                continue
            if not closing and name in _SKIPPED:
                skipping = name
                continue
            mark = _FIELD_MARK.search(attributes or "")
            if mark is None:
                if name in _BREAKS and stack and stack[-1].in_result:
                    stack[-1].result.append(" ")
                continue
            kind = mark.group(1).lower()
            if kind == "begin":
                count += 1
                stack.append(_Open(ordinal=count))
            elif kind == "separator" and stack:
                stack[-1].in_result = True
            elif kind == "end" and stack:
                close(stack.pop())
        elif chars is not None and stack and not skipping:
            decoded = html.unescape(chars).replace("\r", " ").replace("\n", " ")
            if stack[-1].in_result:
                stack[-1].result.append(decoded)
            else:
                stack[-1].pieces.append(decoded)
    while stack:
        close(stack.pop())
    return tuple(fields)


class HtmlFormat:
    format = FileFormat.HTML

    def identify(self, data: bytes, name: str) -> Confidence:
        head = data[:2048]
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            head = head.decode("utf-16", "replace").encode("utf-8", "replace")
        elif head.startswith(codecs.BOM_UTF8):
            head = head[3:]
        return Confidence.YES if _HTML_START.match(head) else Confidence.NO

    def scan(self, data: bytes, ctx: ScanContext) -> Iterator[ScanItem]:
        if b"field-begin" not in data and b"f\x00i\x00e\x00l\x00d\x00-\x00b" not in data:
            return
        fields = extract_fields(decode_html(data))
        if fields:
            host = ctx.host or HostApplication.WORD
            yield from findings_for_stories([FieldStory(ctx.location, fields)], host, ctx.config)
