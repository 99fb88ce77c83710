"""ScanReport -> CSV rows for spreadsheets and SIEM imports (`--format csv`).

One row per finding; a file without findings still gets one row (finding columns empty)
so that every input is accounted for, errors included. Every cell is attacker-influenced
text and goes through `escape.visible` (one line, no control or bidi characters) and then
`escape.csv_cell`, so that a command line such as `=cmd|'/c calc.exe'!A0` is shown as text
by Excel or LibreOffice, never evaluated (OWASP "CSV Injection"). Quoting for the CSV
syntax itself is the csv module's (RFC 4180, CRLF line ends).

This is a flat view for people; the JSON output is the exact, versioned one.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from scanner.model import Finding, ScanReport
from scanner.render.escape import csv_cell, visible

HEADER: tuple[str, ...] = (
    "path",
    "sha256",
    "format",
    "file_verdict",
    "file_severity",
    "technique",
    "verdict",
    "severity",
    "allowed",
    "location",
    "parent",
    "image",
    "command_line",
    "evidence_raw",
    "evidence_deobfuscated",
    "kql_would_alert",
    "cves",
    "rules",
    "problems",
)


def _cells(values: Sequence[str]) -> list[str]:
    return [csv_cell(visible(value)) for value in values]


def _problems(report: ScanReport) -> str:
    return "; ".join(
        f"{problem.kind.value}: {problem.message} [at {problem.location.display()}]"
        for problem in report.problems
    )


def _finding_values(finding: Finding) -> tuple[str, ...]:
    return (
        finding.technique.value,
        finding.verdict.value,
        finding.severity.label,
        "true" if finding.allowed else "false",
        finding.location.display(),
        finding.process.parent,
        finding.process.image,
        finding.process.command_line,
        finding.evidence.raw,
        finding.evidence.deobfuscated,
        "true" if finding.kql.would_alert else "false",
        " ".join(finding.cves),
        " ".join(finding.rules),
    )


def report_rows(report: ScanReport) -> list[list[str]]:
    """The escaped cells of one report's rows (at least one row)."""
    file_values = (
        report.path,
        report.sha256,
        report.format.value,
        report.verdict.value,
        report.severity.label if report.severity is not None else "",
    )
    problems = _problems(report)
    finding_rows = [_finding_values(finding) for finding in report.findings]
    if not finding_rows:
        finding_rows = [("",) * (len(HEADER) - len(file_values) - 1)]
    return [_cells((*file_values, *values, problems)) for values in finding_rows]


def _lines(rows: Iterable[Sequence[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows(rows)
    return buffer.getvalue()


def header_line() -> str:
    return _lines([list(HEADER)])


def report_lines(report: ScanReport) -> str:
    """The CSV text of one report's rows, each ending in CRLF."""
    return _lines(report_rows(report))


def render_csv(reports: Iterable[ScanReport]) -> str:
    """A whole CSV document: the header, then every report's rows in order."""
    return header_line() + "".join(report_lines(report) for report in reports)
