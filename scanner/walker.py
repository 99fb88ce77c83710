"""The recursion walker: identifies each byte string, runs its format, recurses into what it
contains, and is the only place where parser errors are caught and turned into problems."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable

from scanner.errors import (
    EncryptedInput,
    LimitExceeded,
    MalformedInput,
    ScanError,
    ScanTimeout,
    UnsupportedInput,
)
from scanner.formats.base import ByteBudget, FormatHandler, PartScan, ScanContext, ScanItem
from scanner.model import (
    Confidence,
    EmbeddedDocument,
    FileFormat,
    Finding,
    HostApplication,
    Location,
    Problem,
    ProblemKind,
    ScanConfig,
    ScanReport,
    Severity,
    Verdict,
)
from scanner.registry import REGISTRY
from scanner.streams import DecodedStream, StreamCollector, StreamLabel
from scanner.yara_stage import yara_stage


def identify(data: bytes, name: str) -> FormatHandler | None:
    """First format that says YES; else the first that said UNSURE; else None."""
    unsure: FormatHandler | None = None
    for handler in REGISTRY:
        try:
            answer = handler.identify(data, name)
        except Exception:  # an identify bug on hostile bytes: that format says no
            answer = Confidence.NO
        if answer is Confidence.YES:
            return handler
        if answer is Confidence.UNSURE and unsure is None:
            unsure = handler
    return unsure


class _Walk:
    def __init__(self, config: ScanConfig, deadline: float) -> None:
        self.config = config
        self.deadline = deadline
        self.budget = ByteBudget(config.limits.max_total_bytes)
        self.findings: list[Finding] = []
        self.problems: list[Problem] = []
        self.parts = 0
        self.top_format = FileFormat.UNSUPPORTED
        # What the YARA stage will match once the walk is over (bounded per input).
        self.streams = StreamCollector(config.limits)

    def problem(self, kind: ProblemKind, message: str, location: Location) -> None:
        self.problems.append(Problem(kind, message, location))

    def document(
        self,
        data: bytes,
        location: Location,
        host: HostApplication | None,
        depth: int,
        passwords: tuple[str, ...] = (),
    ) -> None:
        if depth > self.config.limits.max_depth:
            self.problem(
                ProblemKind.LIMIT,
                f"nesting depth limit of {self.config.limits.max_depth} reached; not inspected",
                location,
            )
            return
        if len(data) == 0:
            if depth == 0:
                self.top_format = FileFormat.EMPTY
            return
        if self.config.yara_enabled:
            label = StreamLabel.RAW_FILE if depth == 0 else StreamLabel.EMBEDDED_FILE
            self.streams.add(DecodedStream(label, data, location))
        try:
            handler = identify(data, location.containers[-1])
        except Exception as error:  # an identify() bug on hostile input: record it, go on
            self.problem(
                ProblemKind.INTERNAL,
                f"internal error while identifying the content ({type(error).__name__}: {error})",
                location,
            )
            return
        if handler is None:
            if depth == 0:
                self.problem(
                    ProblemKind.UNSUPPORTED,
                    "content is not a format ddescan reads (not inspected)",
                    location,
                )
            return
        if depth == 0:
            self.top_format = handler.format
        ctx = ScanContext(
            config=self.config,
            location=location,
            host=host,
            depth=depth,
            deadline=self.deadline,
            budget=self.budget,
            passwords=passwords,
        )
        self.run(lambda: handler.scan(data, ctx), location, depth, host, passwords)

    def run(
        self,
        produce: Callable[[], Iterable[ScanItem]],
        location: Location,
        depth: int,
        host: HostApplication | None,
        passwords: tuple[str, ...] = (),
    ) -> None:
        self.parts += 1
        try:
            items: Iterable[ScanItem] = produce()
            for item in items:
                self.item(item, depth, host, passwords)
        except LimitExceeded as error:
            self.problem(ProblemKind.LIMIT, str(error), location)
        except EncryptedInput as error:
            self.problem(ProblemKind.LOCKED, str(error), location)
        except (MalformedInput, UnsupportedInput) as error:
            kind = (
                ProblemKind.MALFORMED
                if isinstance(error, MalformedInput)
                else ProblemKind.UNSUPPORTED
            )
            self.problem(kind, str(error) or type(error).__name__, location)
        except ScanError as error:
            self.problem(ProblemKind.MALFORMED, str(error), location)
        except ScanTimeout:
            raise
        except RecursionError:
            self.problem(ProblemKind.LIMIT, "structure nested too deeply to parse", location)
        except MemoryError:
            self.problem(ProblemKind.LIMIT, "out of memory while parsing", location)
        except Exception as error:  # a parser bug on hostile input: record it, go on
            self.problem(
                ProblemKind.INTERNAL,
                f"internal error while parsing ({type(error).__name__}: {error})",
                location,
            )

    def item(
        self,
        item: ScanItem,
        depth: int,
        host: HostApplication | None,
        passwords: tuple[str, ...] = (),
    ) -> None:
        if isinstance(item, Finding):
            if len(self.findings) >= self.config.limits.max_findings:
                raise LimitExceeded(f"finding limit of {self.config.limits.max_findings} reached")
            self.findings.append(item)
        elif isinstance(item, EmbeddedDocument):
            # Passwords found at one layer hold for everything inside it (a password quoted in
            # a mail opens a zip in a zip attached to it).
            inherited = tuple(dict.fromkeys((*passwords, *item.passwords)))
            self.document(item.data, item.location, item.host or host, depth + 1, inherited)
        elif isinstance(item, DecodedStream):
            if self.config.yara_enabled:
                self.streams.add(item)
        elif isinstance(item, PartScan):
            self.run(item.run, item.location, depth, host, passwords)
        else:
            raise TypeError(f"unexpected scan item {item!r}")


_ERROR_KINDS = frozenset(
    {
        ProblemKind.MALFORMED,
        ProblemKind.TIMEOUT,
        ProblemKind.INTERNAL,
        ProblemKind.LIMIT,
    }
)


def verdict_for(
    findings: Iterable[Finding],
    problems: Iterable[Problem],
    locked_verdict: Verdict = Verdict.SUSPICIOUS,
) -> Verdict:
    """Findings decide first. Something that stayed locked counts as `locked_verdict`
    (ScanConfig.locked_verdict): as suspicious it ranks like a suspicious finding, above
    errors; as error or clean it counts only when nothing else was found."""
    problems = tuple(problems)
    verdicts = {finding.verdict for finding in findings}
    if any(problem.kind is ProblemKind.LOCKED for problem in problems):
        verdicts.add(locked_verdict)
    if Verdict.MALICIOUS in verdicts:
        return Verdict.MALICIOUS
    if Verdict.SUSPICIOUS in verdicts:
        return Verdict.SUSPICIOUS
    if Verdict.ERROR in verdicts or any(problem.kind in _ERROR_KINDS for problem in problems):
        return Verdict.ERROR
    return Verdict.CLEAN


def _dedupe(findings: list[Finding]) -> tuple[Finding, ...]:
    unique = {(f.sort_key(), f.evidence.raw, f.process.command_line): f for f in findings}
    return tuple(sorted(unique.values(), key=lambda f: (f.sort_key(), f.evidence.raw)))


def scan(
    data: bytes, name: str, config: ScanConfig, host: HostApplication | None = None
) -> ScanReport:
    started = time.monotonic()
    walk = _Walk(config, started + config.limits.timeout_seconds)
    location = Location((name,))
    if len(data) > config.limits.max_input_bytes:
        walk.problem(
            ProblemKind.LIMIT,
            f"input of {len(data)} bytes is over the limit of "
            f"{config.limits.max_input_bytes} bytes; not inspected",
            location,
        )
    else:
        try:
            walk.document(data, location, host, 0)
        except ScanTimeout as error:
            walk.problem(ProblemKind.TIMEOUT, str(error), location)
    findings = _dedupe(walk.findings)
    notes: tuple[str, ...] = ()
    if config.yara_enabled and time.monotonic() < walk.deadline:
        stage = yara_stage(
            walk.streams.streams,
            findings,
            config,
            walk.deadline,
            location,
            walk.top_format,
            tuple(walk.problems),
        )
        findings = _dedupe(list(stage.findings))
        dropped = walk.streams.limit_message()
        if dropped:
            walk.problem(ProblemKind.LIMIT, dropped, location)
        walk.problems.extend(stage.problems)
        notes = stage.notes
    problems = tuple(walk.problems)
    relevant = [f.severity for f in findings if not f.allowed]
    severity: Severity | None = max(relevant) if relevant else None
    return ScanReport(
        path=name,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        md5=hashlib.md5(data, usedforsecurity=False).hexdigest(),
        format=walk.top_format,
        verdict=verdict_for(findings, problems, config.locked_verdict),
        severity=severity,
        findings=findings,
        problems=problems,
        notes=notes,
        duration_ms=round((time.monotonic() - started) * 1000, 3),
        scanned_parts=walk.parts,
    )
