"""The recursion walker: identifies each byte string, runs its format, recurses into what it
contains, and is the only place where parser errors are caught and turned into problems."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable

from scanner.errors import LimitExceeded, MalformedInput, ScanError, ScanTimeout, UnsupportedInput
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


def identify(data: bytes, name: str) -> FormatHandler | None:
    """First format that says YES; else the first that said UNSURE; else None."""
    unsure: FormatHandler | None = None
    for handler in REGISTRY:
        answer = handler.identify(data, name)
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

    def problem(self, kind: ProblemKind, message: str, location: Location) -> None:
        self.problems.append(Problem(kind, message, location))

    def document(
        self, data: bytes, location: Location, host: HostApplication | None, depth: int
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
        handler = identify(data, location.containers[-1])
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
        )
        self.run(lambda: handler.scan(data, ctx), location, depth, host)

    def run(
        self,
        produce: Callable[[], Iterable[ScanItem]],
        location: Location,
        depth: int,
        host: HostApplication | None,
    ) -> None:
        self.parts += 1
        try:
            items: Iterable[ScanItem] = produce()
            for item in items:
                self.item(item, depth, host)
        except LimitExceeded as error:
            self.problem(ProblemKind.LIMIT, str(error), location)
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

    def item(self, item: ScanItem, depth: int, host: HostApplication | None) -> None:
        if isinstance(item, Finding):
            if len(self.findings) >= self.config.limits.max_findings:
                raise LimitExceeded(f"finding limit of {self.config.limits.max_findings} reached")
            self.findings.append(item)
        elif isinstance(item, EmbeddedDocument):
            self.document(item.data, item.location, item.host or host, depth + 1)
        elif isinstance(item, PartScan):
            self.run(item.run, item.location, depth, host)
        else:
            raise TypeError(f"unexpected scan item {item!r}")


_ERROR_KINDS = frozenset(
    {ProblemKind.MALFORMED, ProblemKind.TIMEOUT, ProblemKind.INTERNAL, ProblemKind.LIMIT}
)


def verdict_for(findings: Iterable[Finding], problems: Iterable[Problem]) -> Verdict:
    verdicts = {finding.verdict for finding in findings}
    if Verdict.MALICIOUS in verdicts:
        return Verdict.MALICIOUS
    if Verdict.SUSPICIOUS in verdicts:
        return Verdict.SUSPICIOUS
    if any(problem.kind in _ERROR_KINDS for problem in problems):
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
    problems = tuple(walk.problems)
    relevant = [f.severity for f in findings if not f.allowed]
    severity: Severity | None = max(relevant) if relevant else None
    return ScanReport(
        path=name,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        md5=hashlib.md5(data, usedforsecurity=False).hexdigest(),
        format=walk.top_format,
        verdict=verdict_for(findings, problems),
        severity=severity,
        findings=findings,
        problems=problems,
        duration_ms=round((time.monotonic() - started) * 1000, 3),
        scanned_parts=walk.parts,
    )
