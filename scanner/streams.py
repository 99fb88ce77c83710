"""Labelled byte streams: what the parsers decoded, handed to the YARA stage.

Public DDE signatures scan a file's stored bytes, so they miss everything Office only sees
after decoding: deflated OOXML parts, field codes split over runs or escaped in RTF, hex
encoded RTF objects. Format modules therefore yield a `DecodedStream` (a ScanItem) for what
they decode cheaply, the walker collects the streams of one top-level input within bounds,
and scanner.yara_stage runs the rules over each one with its label, so a rule can target
one kind of stream (`stream_label == "field-instruction"`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from scanner.model import FieldNode, FieldStory, Location, ScanLimits, Technique


class StreamLabel(enum.Enum):
    """What a stream holds; the value is what rules see in the `stream_label` external."""

    # The scanned input's bytes as stored.
    RAW_FILE = "raw-file"
    # A document found inside another (archive member, mail attachment, altChunk), decoded.
    EMBEDDED_FILE = "embedded-file"
    # One decompressed part of a package (OPC / ZIP).
    XML_PART = "xml-part"
    # A field code rebuilt from its runs / groups (nested fields shown in braces).
    FIELD_INSTRUCTION = "field-instruction"
    # A spreadsheet formula as the parser read it.
    FORMULA = "formula"
    # An external DDE link (ddeLink, dde-source, SupBook) as the parser read it.
    DDE_LINK = "dde-link"
    # The parser's account of an Equation Editor object (exploit-shaped record, command).
    EQUATION_OBJECT = "equation-object"
    # An RTF \objdata object after hex decoding (an OLE 1.0 object).
    RTF_OBJECT = "rtf-object"
    # An embedded OLE object or compound-file stream (OOXML embeddings, ObjectPool).
    OLE_STREAM = "ole-stream"
    # The Equation Native stream of an equation object.
    EQUATION_NATIVE = "equation-native"
    # A decoded mail body.
    MAIL_BODY = "mail-body"


# Labels of the streams derived from a finding's evidence, by the finding's technique.
EVIDENCE_LABELS: dict[Technique, StreamLabel] = {
    Technique.DDE_FIELD: StreamLabel.FIELD_INSTRUCTION,
    Technique.DDE_FORMULA: StreamLabel.FORMULA,
    Technique.DDE_LINK: StreamLabel.DDE_LINK,
    Technique.EQUATION_EDITOR: StreamLabel.EQUATION_OBJECT,
}


@dataclass(frozen=True)
class DecodedStream:
    """Bytes a parser decoded, with what they are and where they come from."""

    label: StreamLabel
    data: bytes
    location: Location


def instruction_text(node: FieldNode) -> str:
    """A field's instruction as stored, nested fields in braces (explicit stack, bounded by
    the tree the parser already built)."""
    texts = [item for item in node.instruction if isinstance(item, str)]
    if len(texts) == len(node.instruction):
        return "".join(texts)
    out: list[str] = []
    stack: list[str | FieldNode | None] = [node]
    while stack:
        item = stack.pop()
        if item is None:
            out.append(" }")
        elif isinstance(item, str):
            out.append(item)
        else:
            if item is not node:
                out.append("{ ")
                stack.append(None)
            stack.extend(reversed(item.instruction))
    return "".join(out)


def field_streams(stories: Iterable[FieldStory]) -> Iterator[DecodedStream]:
    """One FIELD_INSTRUCTION stream per top-level field of each story, located at the
    story (rules then see every field code, not only those the parser judged DDE). A code
    repeated in one story (a PAGE field in every paragraph) is one stream: same bytes, same
    place, same hits."""
    for story in stories:
        seen: set[str] = set()
        for node in story.fields:
            text = instruction_text(node)
            if text in seen or not text.strip():
                continue
            seen.add(text)
            yield DecodedStream(
                StreamLabel.FIELD_INSTRUCTION, text.encode("utf-8", "replace"), story.location
            )


# Streams up to this size are checked for exact repeats; larger ones (whole parts, files)
# are almost never repeated and hashing them would cost more than it saves.
_DEDUPE_MAX_BYTES = 64 * 1024


class StreamCollector:
    """The streams of one top-level input, within ScanLimits.max_streams and
    max_stream_bytes. The raw input itself is always kept (it is already bounded by
    max_input_bytes) but counts against both bounds.

    A stream equal to one already kept (same label, location and bytes) is not kept again:
    rules see the same bytes with the same externals, so it could only repeat the same
    hits at the same place. A document with thousands of identical PAGE fields in one
    story then costs one match, not thousands."""

    def __init__(self, limits: ScanLimits) -> None:
        self.max_count = limits.max_streams
        self.max_bytes = limits.max_stream_bytes
        self.streams: list[DecodedStream] = []
        self.total_bytes = 0
        self.dropped = 0
        self.dropped_bytes = 0
        self.repeats = 0
        self._seen: set[DecodedStream] = set()

    def add(self, stream: DecodedStream) -> bool:
        """Keep `stream` if it fits; False when it was dropped. A repeat of a kept stream
        counts as kept (True) and costs nothing."""
        size = len(stream.data)
        small = size <= _DEDUPE_MAX_BYTES
        if small and stream in self._seen:
            self.repeats += 1
            return True
        always = stream.label is StreamLabel.RAW_FILE and not self.streams
        if not always and (
            len(self.streams) >= self.max_count or self.total_bytes + size > self.max_bytes
        ):
            self.dropped += 1
            self.dropped_bytes += size
            return False
        self.streams.append(stream)
        self.total_bytes += size
        if small:
            self._seen.add(stream)
        return True

    def limit_message(self) -> str:
        """Why streams were dropped ("" when none was)."""
        if not self.dropped:
            return ""
        return (
            f"YARA stage: {self.dropped} decoded stream(s) of {self.dropped_bytes} bytes not "
            f"scanned by rules (limits: {self.max_count} streams, {self.max_bytes} bytes per "
            "input)"
        )
