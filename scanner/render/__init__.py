"""Renderers: turn ScanReports into text, JSON or clamscan-style lines. They read only the
ScanReport (scanner.model) and never scan, print or write on their own."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable
from dataclasses import dataclass

from scanner.model import ScanReport, Verdict


class ExitCode(enum.IntEnum):
    """The process exit status of a scan run (the same convention as clamscan's).

    FOUND wins over ERROR: a run where one file is malicious and another could not be
    read exits 1, because the finding is the fact a mail filter must act on.
    """

    CLEAN = 0
    FOUND = 1
    ERROR = 2


@dataclass(frozen=True)
class RunSummary:
    """Counts over the reports of one run, for summary lines and the JSON document."""

    files: int = 0
    clean: int = 0
    suspicious: int = 0
    malicious: int = 0
    errors: int = 0
    findings: int = 0
    allowed_findings: int = 0
    bytes_scanned: int = 0
    directories: int = 0

    @property
    def infected(self) -> int:
        return self.malicious + self.suspicious

    @property
    def exit_code(self) -> ExitCode:
        if self.infected:
            return ExitCode.FOUND
        if self.errors:
            return ExitCode.ERROR
        return ExitCode.CLEAN

    def add(self, report: ScanReport) -> RunSummary:
        """This summary with one more report counted (the CLI folds as files finish)."""
        verdict = report.verdict
        return dataclasses.replace(
            self,
            files=self.files + 1,
            clean=self.clean + (verdict is Verdict.CLEAN),
            suspicious=self.suspicious + (verdict is Verdict.SUSPICIOUS),
            malicious=self.malicious + (verdict is Verdict.MALICIOUS),
            errors=self.errors + (verdict is Verdict.ERROR),
            findings=self.findings + len(report.findings),
            allowed_findings=self.allowed_findings + sum(1 for f in report.findings if f.allowed),
            bytes_scanned=self.bytes_scanned + report.size,
        )

    def with_directory(self) -> RunSummary:
        return dataclasses.replace(self, directories=self.directories + 1)


def summarize(reports: Iterable[ScanReport], directories: int = 0) -> RunSummary:
    summary = RunSummary(directories=directories)
    for report in reports:
        summary = summary.add(report)
    return summary
