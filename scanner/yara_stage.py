"""The YARA stage: rules run over what Office sees, not only over the stored bytes.

After the walk of one input, every collected stream (scanner.streams: the raw file,
decompressed parts, decoded objects, embedded documents) and every finding's evidence (raw
and de-obfuscated, labelled by technique) is matched against the compiled rules, with the
stream's label in the `stream_label` external. A hit then either

- names the rule on a parser finding: when the rule matched that finding's own evidence,
  or matched a stream that holds a finding of the rule's technique (the parser already read
  that evidence, the rule saw it from the stored side); or
- becomes a finding of its own (scanner.analysis.rule_finding) when no parser finding of
  its technique sits in the stream. A rule that matched in a stream and again in a stream
  inside it gives one finding, at the inner one; or
- becomes a note of the report when the stream lies in or around an input that a parser
  could not read (a problem of the walk): that input is already reported as not inspected,
  and a rule alone cannot say what a damaged, locked or unsupported file would do.

Shipped rules live in yara/ at the top of the source tree, one topic per file; every rule
carries the metadata that RuleInfo reads (technique, attack_id, severity, description,
reference, sample_positive, sample_negative). User folders (ScanConfig.rule_dirs) are added
to them; their rules may lack that metadata (an existing signature collection), in which
case the technique is inferred from the stream and the severity is medium.
"""

from __future__ import annotations

import math
import os
import re
import sysconfig
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yara

from scanner.analysis import rule_finding
from scanner.config import ConfigError
from scanner.model import (
    ATTACK_SUBTECHNIQUE_ID,
    Evidence,
    FileFormat,
    Finding,
    Location,
    Problem,
    ProblemKind,
    ScanConfig,
    Severity,
    Technique,
)
from scanner.streams import EVIDENCE_LABELS, DecodedStream, StreamLabel


def _shipped_rules_dir() -> Path:
    """The shipped rules: yara/ beside the scanner package in a source tree or an editable
    install; a wheel installs the same files under <prefix>/share/ddescan/yara
    (pyproject.toml, tool.setuptools.data-files)."""
    source_tree = Path(__file__).resolve().parent.parent / "yara"
    # A marker file, not just a folder: in site-packages, "yara" may be another package's.
    if (source_tree / "dde_fields.yar").is_file():
        return source_tree
    return Path(sysconfig.get_path("data")) / "share" / "ddescan" / "yara"


SHIPPED_RULES_DIR = _shipped_rules_dir()
RULE_SUFFIXES = (".yar", ".yara")
# A folder that holds more rule files than this is refused rather than half read.
MAX_RULE_FILES = 5_000

# Externals every rule may use. `stream_label` is ddescan's; filename, filepath, extension,
# filetype and owner are the ones published signature collections expect (declared so that
# such rules compile; filename/filepath/extension describe the stream's innermost container).
EXTERNALS: dict[str, str] = {
    "stream_label": "",
    "filename": "",
    "filepath": "",
    "extension": "",
    "filetype": "",
    "owner": "",
}

REQUIRED_META = (
    "technique",
    "attack_id",
    "severity",
    "description",
    "reference",
    "sample_positive",
    "sample_negative",
)
_ATTACK_ID = re.compile(r"^T\d{4}(?:\.\d{3})?$")
_SPLIT = re.compile(r"[\s,]+")
_ERROR_PLACE = re.compile(r"^(?P<file>.*?)\((?P<line>\d+)\): (?P<message>.*)$", re.DOTALL)
_SEVERITIES = {severity.label: severity for severity in Severity}
_TECHNIQUES = {technique.value: technique for technique in Technique}

# When a user rule names no technique: the one of the stream's kind, else of the input's.
_LABEL_TECHNIQUES = {
    **{label: technique for technique, label in EVIDENCE_LABELS.items()},
    StreamLabel.RTF_OBJECT: Technique.EQUATION_EDITOR,
    StreamLabel.OLE_STREAM: Technique.EQUATION_EDITOR,
    StreamLabel.EQUATION_NATIVE: Technique.EQUATION_EDITOR,
}
_SPREADSHEET_FORMATS = frozenset(
    {
        FileFormat.XLSX,
        FileFormat.XLS,
        FileFormat.XLSB,
        FileFormat.CSV,
        FileFormat.ODS,
        FileFormat.SPREADSHEETML2003,
    }
)
_EVIDENCE_CHARS = 200


class RuleError(ConfigError):
    """A rule file that cannot be used: it does not compile, or it cannot be read.

    `path` and `line` name the place (line 0 when unknown); the message says both.
    """

    def __init__(self, path: str, line: int, message: str) -> None:
        self.path = path
        self.line = line
        self.reason = message
        where = f"{path}, line {line}" if line else path
        super().__init__(f"YARA rule error in {where}: {message}")


@dataclass(frozen=True)
class RuleInfo:
    """One compiled rule and what its metadata says (problems: what is missing or wrong)."""

    name: str
    namespace: str
    path: str
    shipped: bool
    techniques: tuple[Technique, ...]
    severity: Severity | None
    attack_ids: tuple[str, ...]
    description: str
    reference: str
    sample_positive: str
    sample_negative: str
    missing: tuple[str, ...]
    invalid: tuple[str, ...]


@dataclass(frozen=True)
class RuleSet:
    """Compiled rules. `compiled` is a yara.Rules (the module is untyped), or None when
    there is no rule file; each rule file is its own namespace, named by its path."""

    compiled: Any
    files: tuple[str, ...]
    shipped_files: frozenset[str]
    warnings: tuple[str, ...]
    # RuleInfo by (namespace, rule name), filled as rules first match: a rule's metadata is
    # fixed once compiled, and reading it again for every match of every scan is wasted work.
    _infos: dict[tuple[str, str], RuleInfo] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def info(self, match: Any) -> RuleInfo:
        """The metadata of the rule of one yara.Match."""
        namespace = str(match.namespace)
        key = (namespace, str(match.rule))
        known = self._infos.get(key)
        if known is None:
            meta = match.meta if isinstance(match.meta, dict) else {}
            known = rule_info(key[1], meta, namespace, namespace in self.shipped_files)
            self._infos[key] = known
        return known


@dataclass(frozen=True)
class StageResult:
    findings: tuple[Finding, ...]
    problems: tuple[Problem, ...]
    notes: tuple[str, ...] = ()


def rule_files(directory: str | os.PathLike[str]) -> list[Path]:
    """The rule files of a folder and its subfolders, sorted. RuleError if unreadable."""
    root = Path(directory)
    if not root.is_dir():
        raise RuleError(str(root), 0, "not a folder of YARA rules")
    found: list[Path] = []
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(folder.iterdir())
        except OSError as error:
            raise RuleError(str(folder), 0, f"cannot list: {error.strerror or error}") from error
        for entry in entries:
            if entry.is_dir() and not entry.is_symlink():
                stack.append(entry)
            elif entry.suffix.lower() in RULE_SUFFIXES and entry.is_file():
                found.append(entry)
                if len(found) > MAX_RULE_FILES:
                    raise RuleError(str(root), 0, f"more than {MAX_RULE_FILES} rule files")
    return sorted(found)


def _text(meta: dict[str, object], key: str) -> str:
    value = meta.get(key)
    return value.strip() if isinstance(value, str) else ""


def rule_info(name: str, meta: dict[str, object], path: str, shipped: bool) -> RuleInfo:
    """What a rule's metadata says, with what is missing or invalid in it."""
    missing = tuple(key for key in REQUIRED_META if not _text(meta, key))
    invalid: list[str] = []
    techniques: list[Technique] = []
    for word in _SPLIT.split(_text(meta, "technique")):
        if not word:
            continue
        technique = _TECHNIQUES.get(word.lower())
        if technique is None:
            invalid.append(f"technique {word!r} is not one of {', '.join(sorted(_TECHNIQUES))}")
        elif technique not in techniques:
            techniques.append(technique)
    severity_text = _text(meta, "severity").lower()
    severity = _SEVERITIES.get(severity_text)
    if severity_text and severity is None:
        invalid.append(f"severity {severity_text!r} is not one of {', '.join(_SEVERITIES)}")
    attack_ids: list[str] = []
    for word in _SPLIT.split(_text(meta, "attack_id")):
        if not word:
            continue
        if _ATTACK_ID.match(word.upper()):
            attack_ids.append(word.upper())
        else:
            invalid.append(f"attack_id {word!r} is not an ATT&CK id such as T1559.002")
    return RuleInfo(
        name=name,
        namespace=path,
        path=path,
        shipped=shipped,
        techniques=tuple(techniques),
        severity=severity,
        attack_ids=tuple(attack_ids),
        description=_text(meta, "description"),
        reference=_text(meta, "reference"),
        sample_positive=_text(meta, "sample_positive"),
        sample_negative=_text(meta, "sample_negative"),
        missing=missing,
        invalid=tuple(invalid),
    )


def _compile_error(error: BaseException, fallback: str) -> RuleError:
    text = str(error).strip()
    place = _ERROR_PLACE.match(text)
    if place is not None:
        return RuleError(place["file"], int(place["line"]), place["message"])
    return RuleError(fallback, 0, text or type(error).__name__)


def compile_rules(rule_dirs: Sequence[str], include_shipped: bool = True) -> RuleSet:
    """Compile the shipped rules and every rule file in `rule_dirs` (no caching).

    Each file is its own namespace, so two collections may reuse a rule name. Raises
    RuleError naming the file and line of the first rule that does not compile.
    """
    sources: list[tuple[Path, bool]] = []
    if include_shipped:
        sources.extend((path, True) for path in rule_files(SHIPPED_RULES_DIR))
    for directory in rule_dirs:
        sources.extend((path, False) for path in rule_files(directory))
    filepaths: dict[str, str] = {}
    shipped_files: set[str] = set()
    for path, shipped in sources:
        name = str(path)
        filepaths.setdefault(name, name)
        if shipped:
            shipped_files.add(name)
    if not filepaths:
        return RuleSet(None, (), frozenset(), ())
    try:
        compiled = yara.compile(filepaths=filepaths, externals=EXTERNALS)
    except yara.Error as error:  # yara.SyntaxError included: "path(line): message"
        raise _compile_error(error, next(iter(filepaths))) from None
    warnings = tuple(str(warning) for warning in getattr(compiled, "warnings", ()) or ())
    return RuleSet(compiled, tuple(filepaths), frozenset(shipped_files), warnings)


def describe_rules(ruleset: RuleSet) -> tuple[RuleInfo, ...]:
    """Every rule of the set with its file and metadata, file by file in name order.

    yara.Rules does not tell which namespace an iterated rule came from, so each file is
    compiled again on its own here; this is for listing and checking, never on the scan path.
    """
    infos: list[RuleInfo] = []
    for path in ruleset.files:
        try:
            compiled = yara.compile(filepath=path, externals=EXTERNALS)
        except yara.Error as error:
            raise _compile_error(error, path) from None
        for rule in compiled:
            meta = rule.meta if isinstance(rule.meta, dict) else {}
            infos.append(rule_info(str(rule.identifier), meta, path, path in ruleset.shipped_files))
    return tuple(infos)


# Compiled rule sets of this process, keyed by the resolved rule folders. Compiling costs
# milliseconds for the shipped rules and seconds for a large signature collection, while a
# scan runs once per input: the rules are compiled once per process and reused. A yara.Rules
# is read-only once compiled; the only state a match changes is the externals, and every
# match sets all of them, so sharing it between the (sequential) scans of one process is
# safe. Worker processes compile their own. Bounded, so a long-lived process that keeps
# changing configurations cannot grow it without end.
_CACHE: dict[tuple[bool, tuple[str, ...]], RuleSet] = {}
_CACHE_SIZE = 8


def load_rules(rule_dirs: Sequence[str] = (), include_shipped: bool = True) -> RuleSet:
    """The compiled rules for these folders (plus the shipped ones), from the cache."""
    key = (include_shipped, tuple(str(Path(d).resolve()) for d in rule_dirs))
    cached = _CACHE.get(key)
    if cached is None:
        cached = compile_rules(key[1], include_shipped)
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = cached
    return cached


def _printable(data: bytes) -> str:
    return "".join(chr(b) if 0x20 <= b < 0x7F else f"\\x{b:02x}" for b in data)


def _within(inner: Location, outer: Location) -> bool:
    """Is `inner` at or below `outer` (same containers prefix; same detail prefix)?"""
    count = len(outer.containers)
    if inner.containers[:count] != outer.containers:
        return False
    if not outer.detail:
        return True
    return len(inner.containers) == count and inner.detail.startswith(outer.detail)


def _externals(stream: DecodedStream) -> dict[str, str]:
    container = stream.location.containers[-1] if stream.location.containers else ""
    filename = container.replace("\\", "/").rsplit("/", 1)[-1]
    extension = os.path.splitext(filename)[1].lower()
    return {
        **EXTERNALS,
        "stream_label": stream.label.value,
        "filename": filename,
        "filepath": stream.location.display(),
        "extension": extension,
    }


@dataclass(frozen=True)
class _Hit:
    stream: DecodedStream
    info: RuleInfo
    offset: int
    evidence: str
    strings: tuple[str, ...]


def _hit(stream: DecodedStream, match: Any, info: RuleInfo) -> _Hit:
    offset = -1
    pieces: list[str] = []
    names: list[str] = []
    for string in match.strings:
        for instance in string.instances:
            if offset < 0 or instance.offset < offset:
                offset = int(instance.offset)
            if len(pieces) < 3:
                pieces.append(_printable(bytes(instance.matched_data)))
                names.append(str(string.identifier))
    text = " | ".join(pieces)
    if len(text) > _EVIDENCE_CHARS:
        text = text[:_EVIDENCE_CHARS] + "..."
    return _Hit(stream, info, offset, text, tuple(dict.fromkeys(names)))


class _Stage:
    def __init__(
        self, ruleset: RuleSet, deadline: float, timeout_seconds: float, top_format: FileFormat
    ) -> None:
        self.ruleset = ruleset
        self.deadline = deadline
        self.timeout_seconds = timeout_seconds
        self.top_format = top_format
        self.problems: list[Problem] = []
        self.stopped = False

    def match(self, stream: DecodedStream) -> list[tuple[Any, RuleInfo]]:
        if self.stopped:
            return []
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            self.timeout(stream.location)
            return []
        try:
            matches = self.ruleset.compiled.match(
                data=stream.data,
                externals=_externals(stream),
                timeout=max(1, math.ceil(min(remaining, self.timeout_seconds))),
            )
        except yara.TimeoutError:
            self.timeout(stream.location)
            return []
        except yara.Error as error:
            # YARA gave up on this stream (out of memory, or a user rule's module failing on
            # hostile data); the other streams and the parsers' findings still stand.
            self.problems.append(
                Problem(
                    ProblemKind.LIMIT,
                    f"YARA stage: {stream.label.value} stream not fully matched ({error})",
                    stream.location,
                )
            )
            return []
        return [(match, self.ruleset.info(match)) for match in matches]

    def timeout(self, location: Location) -> None:
        self.stopped = True
        self.problems.append(
            Problem(
                ProblemKind.TIMEOUT,
                f"time limit of {self.timeout_seconds:g} s per file reached in the YARA stage",
                location,
            )
        )

    def technique_of(self, info: RuleInfo, stream: DecodedStream) -> Technique:
        if info.techniques:
            return info.techniques[0]
        by_label = _LABEL_TECHNIQUES.get(stream.label)
        if by_label is not None:
            return by_label
        if self.top_format in _SPREADSHEET_FORMATS:
            return Technique.DDE_FORMULA
        return Technique.DDE_FIELD


def _evidence_streams(finding: Finding) -> list[DecodedStream]:
    label = EVIDENCE_LABELS[finding.technique]
    texts = [finding.evidence.raw]
    if finding.evidence.deobfuscated != finding.evidence.raw:
        texts.append(finding.evidence.deobfuscated)
    return [
        DecodedStream(label, text.encode("utf-8", "replace"), finding.location)
        for text in texts
        if text
    ]


def _rule_only(stage: _Stage, hit: _Hit) -> Finding:
    info = hit.info
    stream = hit.stream
    where = f"{stream.label.value} stream" + (f", byte {hit.offset}" if hit.offset >= 0 else "")
    detail = f"{stream.location.detail} > {where}" if stream.location.detail else where
    steps = [f"rule {info.name} from {info.path}"]
    if hit.strings:
        steps.append(f"matched {', '.join(hit.strings)} in the {stream.label.value} stream")
    else:
        steps.append(f"matched the {stream.label.value} stream by its condition")
    evidence = Evidence(
        raw=hit.evidence or f"({stream.label.value} stream)",
        deobfuscated=hit.evidence or f"({stream.label.value} stream)",
        steps=tuple(steps),
    )
    return rule_finding(
        rule=info.name,
        technique=stage.technique_of(info, stream),
        severity=info.severity if info.severity is not None else Severity.MEDIUM,
        description=info.description or f"the user rule {info.name} matched",
        attack_ids=info.attack_ids or (ATTACK_SUBTECHNIQUE_ID,),
        evidence=evidence,
        location=Location(stream.location.containers, detail),
    )


def _innermost(hits: Sequence[_Hit]) -> list[_Hit]:
    """Per rule, the hits whose stream holds no other hit of the same rule (one per place)."""
    below: set[tuple[str, str, tuple[str, ...]]] = set()
    by_place: dict[tuple[str, str, tuple[str, ...]], list[str]] = {}
    for hit in hits:
        location = hit.stream.location
        key = (hit.info.namespace, hit.info.name)
        for count in range(len(location.containers)):
            below.add((*key, location.containers[:count]))
        if location.detail:
            below.add((*key, location.containers))
        by_place.setdefault((*key, location.containers), []).append(location.detail)
    kept: list[_Hit] = []
    seen: set[tuple[str, str, Location]] = set()
    for hit in hits:
        location = hit.stream.location
        key = (hit.info.namespace, hit.info.name)
        place = (*key, location.containers)
        if location.detail:
            outer = any(
                detail != location.detail and detail.startswith(location.detail)
                for detail in by_place[place]
            )
        else:
            outer = place in below
        if not outer and (*key, location) not in seen:
            seen.add((*key, location))
            kept.append(hit)
    return kept


class _Findings:
    """The parser findings, indexed by every container path that holds them."""

    def __init__(self, findings: Sequence[Finding]) -> None:
        self.findings = findings
        self.under: dict[tuple[str, ...], list[int]] = {}
        for index, finding in enumerate(findings):
            containers = finding.location.containers
            for count in range(len(containers) + 1):
                self.under.setdefault(containers[:count], []).append(index)

    def inside(self, location: Location) -> list[int]:
        return [
            index
            for index in self.under.get(location.containers, [])
            if _within(self.findings[index].location, location)
        ]


def _unread(location: Location, problems: Sequence[Problem]) -> Problem | None:
    """A problem that says the input around (or inside) `location` could not be read."""
    for problem in problems:
        if _within(location, problem.location) or _within(problem.location, location):
            return problem
    return None


def _note(hit: _Hit, problem: Problem) -> str:
    stream = hit.stream
    place = f" at byte {hit.offset}" if hit.offset >= 0 else ""
    seen = f": {hit.evidence}" if hit.evidence else ""
    return (
        f"YARA rule {hit.info.name} matched the {stream.label.value} stream of "
        f"{stream.location.display()}{place}{seen}. It is not rated as a finding because "
        f"that input could not be read ({problem.kind.value}: {problem.message})."
    )


def run_stage(
    ruleset: RuleSet,
    streams: Sequence[DecodedStream],
    findings: Sequence[Finding],
    deadline: float,
    config: ScanConfig,
    top: Location,
    top_format: FileFormat = FileFormat.UNSUPPORTED,
    problems: Sequence[Problem] = (),
) -> StageResult:
    """Match `ruleset` on the streams and on the findings' evidence; merge the hits.

    Returns the findings with the rules that matched them, a finding per hit that no parser
    finding covers, and the problems met (a time limit, a stream YARA could not finish).
    A hit in or around an input that a parser could not read (one of `problems`, the
    walk's) becomes a note instead of a finding: the problem already reports that input as
    not inspected, and a rule alone cannot say what a damaged, locked or unsupported file
    would do; the note tells the analyst what the rule saw there.
    """
    stage = _Stage(ruleset, deadline, config.limits.timeout_seconds, top_format)
    if ruleset.compiled is None:
        return StageResult(tuple(findings), (), ())
    named: list[set[str]] = [set() for _ in findings]
    for index, finding in enumerate(findings):
        for stream in _evidence_streams(finding):
            for _, info in stage.match(stream):
                named[index].add(info.name)
    placed = _Findings(findings)
    uncovered: list[_Hit] = []
    for stream in streams:
        found = stage.match(stream)
        if not found:
            continue
        inside = placed.inside(stream.location)
        for match, info in found:
            if any(info.name in named[i] for i in inside):
                continue
            techniques = info.techniques or tuple(findings[i].technique for i in inside)
            same = [i for i in inside if findings[i].technique in techniques]
            if same:
                for i in same:
                    named[i].add(info.name)
            else:
                uncovered.append(_hit(stream, match, info))
    merged = [
        replace(finding, rules=tuple(sorted(set(finding.rules) | named[i])))
        if named[i]
        else finding
        for i, finding in enumerate(findings)
    ]
    extra: list[Finding] = []
    notes: list[str] = []
    for hit in _innermost(uncovered):
        problem = _unread(hit.stream.location, problems)
        if problem is not None:
            notes.append(_note(hit, problem))
        else:
            extra.append(_rule_only(stage, hit))
    room = max(config.limits.max_findings - len(merged), 0)
    if len(extra) > room:
        stage.problems.append(
            Problem(
                ProblemKind.LIMIT,
                f"finding limit of {config.limits.max_findings} reached in the YARA stage",
                top,
            )
        )
        extra = extra[:room]
    return StageResult(tuple(merged + extra), tuple(stage.problems), tuple(notes))


def yara_stage(
    streams: Sequence[DecodedStream],
    findings: Sequence[Finding],
    config: ScanConfig,
    deadline: float,
    top: Location,
    top_format: FileFormat = FileFormat.UNSUPPORTED,
    problems: Sequence[Problem] = (),
) -> StageResult:
    """The walker's entry point: the configured rules (cached), then run_stage."""
    ruleset = load_rules(config.rule_dirs)
    return run_stage(ruleset, streams, findings, deadline, config, top, top_format, problems)
