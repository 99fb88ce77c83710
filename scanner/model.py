"""The one typed vocabulary of ddescan.

Parsers, the walker and the renderers speak only these types. Everything here is frozen:
a report, once built, cannot drift between the renderer that prints it and the one that
serialises it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

REPORT_SCHEMA_VERSION = "1.1.0"

ATTACK_TECHNIQUE_ID = "T1559"
ATTACK_TECHNIQUE_NAME = "Inter-Process Communication"
ATTACK_SUBTECHNIQUE_ID = "T1559.002"
ATTACK_SUBTECHNIQUE_NAME = "Dynamic Data Exchange"


class Technique(enum.Enum):
    """How the document asks Office to run something."""

    DDE_FIELD = "dde-field"
    DDE_FORMULA = "dde-formula"
    DDE_LINK = "dde-link"
    EQUATION_EDITOR = "equation-editor"


class Severity(enum.IntEnum):
    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        return self.name.lower()


class Verdict(enum.Enum):
    CLEAN = "clean"
    SUSPICIOUS = "suspicious"
    MALICIOUS = "malicious"
    ERROR = "error"


class FileFormat(enum.Enum):
    """What a byte string was identified as, by content."""

    DOCX = "docx"
    XLSX = "xlsx"
    OOXML = "ooxml"
    RTF = "rtf"
    HTML = "html"
    CSV = "csv"
    OLE = "ole"
    DOC = "doc"
    XLS = "xls"
    XLSB = "xlsb"
    ZIP = "zip"
    GZIP = "gzip"
    EML = "eml"
    MSG = "msg"
    TNEF = "tnef"
    WORDML2003 = "wordml2003"
    FLATOPC = "flatopc"
    SPREADSHEETML2003 = "spreadsheetml2003"
    ODT = "odt"
    ODS = "ods"
    ENCRYPTED = "encrypted"
    EMPTY = "empty"
    UNSUPPORTED = "unsupported"


class HostApplication(enum.Enum):
    """The program that opens the document and would start the DDE conversation.

    The value is the process image name as Windows reports it in FileName /
    InitiatingProcessFileName.
    """

    WORD = "WINWORD.EXE"
    EXCEL = "EXCEL.EXE"
    OUTLOOK = "OUTLOOK.EXE"
    EQUATION_EDITOR = "EQNEDT32.EXE"
    LIBREOFFICE = "soffice.bin"


class ProblemKind(enum.Enum):
    """Why part of an input could not be inspected."""

    MALFORMED = "malformed"
    LIMIT = "limit"
    TIMEOUT = "timeout"
    UNSUPPORTED = "unsupported"
    INTERNAL = "internal"
    LOCKED = "locked"


class Confidence(enum.Enum):
    """Answer of a format's identify(): is this byte string mine?"""

    YES = "yes"
    UNSURE = "unsure"
    NO = "no"


@dataclass(frozen=True)
class Location:
    """The exact path from the scanned input down to the evidence.

    `containers` names each layer: the input itself first, then archive members, parts or
    streams, e.g. ("invoice.docx", "word/header2.xml"). `detail` pins the place inside the
    last layer (a field number, a cell reference, a line).
    """

    containers: tuple[str, ...]
    detail: str = ""

    def child(self, name: str) -> Location:
        return Location((*self.containers, name))

    def at(self, detail: str) -> Location:
        return Location(self.containers, detail)

    def display(self) -> str:
        text = " > ".join(self.containers)
        return f"{text} ({self.detail})" if self.detail else text


@dataclass(frozen=True)
class Evidence:
    """What the document holds, as stored and as Office would read it.

    `raw` is the text as found (nested fields shown in braces, escapes undone only as far
    as needed to be text); `deobfuscated` is what Office would act on; `steps` lists each
    transformation applied, in order, so an analyst can replay it.
    """

    raw: str
    deobfuscated: str
    steps: tuple[str, ...] = ()


@dataclass(frozen=True)
class DdeCall:
    """A DDE conversation the document would start: application|topic!item."""

    application: str
    topic: str
    item: str = ""
    keyword: str = ""
    automatic: bool = False
    switches: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProcessPrediction:
    """The process-creation event that opening the document would cause.

    `parent` and `image` are file names as in DeviceProcessEvents.InitiatingProcessFileName
    and FileName; `image_path` is the full path when the document names one;
    `command_line` is what Windows would record as ProcessCommandLine.
    """

    parent: str
    image: str
    command_line: str
    image_path: str = ""
    path_traversal: bool = False
    steps: tuple[str, ...] = ()


@dataclass(frozen=True)
class KqlAssessment:
    """How the runtime KQL rule would treat the predicted process event."""

    is_office_spawn: bool
    is_dde_equation_editor: bool
    suspicious_args: bool
    would_alert: bool
    matched_child_terms: tuple[str, ...] = ()
    matched_arg_terms: tuple[str, ...] = ()
    gap: str = ""


@dataclass(frozen=True)
class Finding:
    technique: Technique
    severity: Severity
    verdict: Verdict
    location: Location
    evidence: Evidence
    process: ProcessPrediction
    kql: KqlAssessment
    title: str
    explanation: str
    dde: DdeCall | None = None
    allowed: bool = False
    attack_ids: tuple[str, ...] = (ATTACK_SUBTECHNIQUE_ID,)
    cves: tuple[str, ...] = ()
    # Names of the YARA rules that matched this finding's evidence (scanner.yara_stage).
    rules: tuple[str, ...] = ()

    def sort_key(self) -> tuple[tuple[str, ...], str, str, str]:
        return (
            self.location.containers,
            self.location.detail,
            self.technique.value,
            self.evidence.deobfuscated,
        )


@dataclass(frozen=True)
class Problem:
    """Something that kept ddescan from inspecting (part of) an input."""

    kind: ProblemKind
    message: str
    location: Location


@dataclass(frozen=True)
class ScanReport:
    """Everything ddescan concluded about one input. Renderers read only this."""

    path: str
    size: int
    sha256: str
    md5: str
    format: FileFormat
    verdict: Verdict
    severity: Severity | None
    findings: tuple[Finding, ...]
    problems: tuple[Problem, ...]
    notes: tuple[str, ...] = ()
    duration_ms: float = 0.0
    scanned_parts: int = 0

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.kind is not ProblemKind.LIMIT)

    @property
    def limits_hit(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.kind is ProblemKind.LIMIT)


@dataclass(frozen=True)
class EmbeddedDocument:
    """A byte string found inside a container that must be scanned as a document of its own.

    `host` overrides the application that would open it (an altChunk inside a Word document
    is opened by Word whatever it looks like on its own). `passwords` are candidates found
    next to it (a "password: infected" line in the message body that carries an archive);
    the walker hands them, with those of every enclosing layer, to the scan of this document
    and of everything inside it.
    """

    data: bytes
    location: Location
    host: HostApplication | None = None
    passwords: tuple[str, ...] = ()


@dataclass(frozen=True)
class FieldNode:
    """A Word field as stored, before evaluation (ECMA-376 Part 1, 17.16; RTF 1.9.1 \\field).

    `instruction` holds the field-code text pieces and nested fields in document order;
    `result` is the cached result text Word shows (never trusted as the instruction);
    `dirty` is true when the file asks Word to update the field on open (w:dirty,
    \\flddirty).
    """

    instruction: tuple[str | FieldNode, ...]
    result: str = ""
    detail: str = ""
    dirty: bool = False
    simple: bool = False


@dataclass(frozen=True)
class FieldStory:
    """The fields of one story (a part or a destination), top level only, in document order.

    Fields that sit inside another field's result are also listed here, because Word
    evaluates them as fields of their own.
    """

    location: Location
    fields: tuple[FieldNode, ...]


@dataclass(frozen=True)
class Formula:
    """A spreadsheet formula as stored, with where it sits (cell, defined name, rule)."""

    text: str
    location: Location
    steps: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScanLimits:
    max_depth: int = 8
    max_input_bytes: int = 256 * 1024 * 1024
    max_part_bytes: int = 128 * 1024 * 1024
    max_total_bytes: int = 512 * 1024 * 1024
    max_ratio: int = 200
    max_members: int = 10_000
    max_findings: int = 1_000
    timeout_seconds: float = 60.0
    # Decoded streams kept per input for the YARA stage (scanner.streams).
    max_streams: int = 100_000
    max_stream_bytes: int = 128 * 1024 * 1024
    # Encrypted Office files (scanner.formats.encrypted): candidate passwords checked per file,
    # and the key-derivation hash rounds those checks may cost in all (an Agile-encrypted
    # file asks for its spinCount rounds per password, up to 10,000,000).
    max_password_tries: int = 24
    max_key_derivation_rounds: int = 2_500_000
    # Address space of one worker process (scanner.isolation, RLIMIT_AS): 1 GiB keeps two
    # workers and the rest of a 2-core, 4 GiB host safe. It counts the interpreter and its
    # libraries too (about 200 MB), so it is not all for the input. In-process scans
    # (--no-isolation, scan_bytes) have no memory cap.
    max_memory_bytes: int = 1024 * 1024 * 1024


@dataclass(frozen=True)
class ScanConfig:
    """Everything that tunes a scan. Plain data: safe to pass to worker processes."""

    limits: ScanLimits = field(default_factory=ScanLimits)
    allowed_dde_services: frozenset[str] = frozenset()
    passwords: tuple[str, ...] = ()
    # The verdict of a report whose only trouble is something that stayed locked (an
    # encrypted document or archive member no candidate password opened).
    locked_verdict: Verdict = Verdict.SUSPICIOUS
    # The YARA stage: shipped rules (yara/) plus the rule folders named here.
    yara_enabled: bool = True
    rule_dirs: tuple[str, ...] = ()
