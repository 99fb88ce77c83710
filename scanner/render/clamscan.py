"""clamscan-compatible output, so a mail filter that drives clamscan can drive ddescan.

ClamAV's clamscan prints one line per file, `PATH: NAME FOUND`, `PATH: OK` or
`PATH: MESSAGE ERROR` (clamscan/manager.c), then, unless --no-summary, a block that starts
with `----------- SCAN SUMMARY -----------`. amavisd-new's stock av_scanners entry for
clamscan reads the exit status (0 clean, 1 infected, other error) and takes the virus name
with `^.*?: (?!Infected Archive)(.*) FOUND$` per line, so each result must stay on one line
and the name must not contain newlines. Paths and messages go through `visible` so a
newline or an escape sequence in a file name cannot forge or hide a result line, and a
": " inside a path is escaped so that it cannot choose the name a parser reads.
"""

from __future__ import annotations

import re
from datetime import datetime

from scanner.model import Finding, ScanReport, Technique, Verdict
from scanner.render import RunSummary
from scanner.render.escape import visible

SUMMARY_HEADER = "----------- SCAN SUMMARY -----------"

_FAMILY = {
    Technique.DDE_FIELD: "DDE.Field",
    Technique.DDE_FORMULA: "DDE.Formula",
    Technique.DDE_LINK: "DDE.Link",
    Technique.EQUATION_EDITOR: "DDE.EquationEditor",
}

_NOT_NAME_CHAR = re.compile(r"[^A-Za-z0-9_-]+")
_MAX_PART = 32
_EXECUTABLE_SUFFIX = re.compile(r"(?i)\.(?:exe|com|bat|cmd|pif|scr)$")


def _name_part(text: str) -> str:
    """An ASCII-only, dot-free piece of a signature name (payload text is hostile)."""
    return _NOT_NAME_CHAR.sub("", text)[:_MAX_PART]


def _primary(findings: tuple[Finding, ...]) -> Finding | None:
    """The finding that names the file: the most severe one that is not allowed.

    Findings arrive sorted by location (walker._dedupe), so ties go to the first place
    in the document and the name is the same on every run.
    """
    candidates = [f for f in findings if not f.allowed and f.verdict is not Verdict.CLEAN]
    if not candidates:
        return None
    return max(candidates, key=lambda f: f.severity)


def signature_name(finding: Finding) -> str:
    """A stable ASCII name such as `DDE.Field.DDEAUTO.cmd` or `DDE.Formula.powershell`.

    Fields add their keyword (DDE or DDEAUTO, upper-cased); every technique adds the
    program the document would start, without its extension, when one is known.
    """
    parts = [_FAMILY[finding.technique]]
    if finding.technique is Technique.DDE_FIELD:
        keyword = finding.dde.keyword if finding.dde is not None else ""
        parts.append(_name_part(keyword.upper()) or "DDE")
    image = _name_part(_EXECUTABLE_SUFFIX.sub("", finding.process.image).lower())
    if image:
        parts.append(image)
    return ".".join(parts)


def _path(path: str) -> str:
    """The path, one line, with no ": " in it: parsers take the text up to the first ": "
    as the path (amavisd's `^.*?: `), so a file named `x: Eicar FOUND` must not be able to
    choose the name they report. The space is shown as its escape, `:\\x20`."""
    return visible(path).replace(": ", ":\\x20")


LOCKED_SIGNATURE = "DDE.Heuristics.Encrypted"


def result_line(report: ScanReport) -> str:
    """The one line clamscan would print for this file (no newline)."""
    path = _path(report.path)
    primary = _primary(report.findings)
    if primary is not None:
        return f"{path}: {signature_name(primary)} FOUND"
    if report.verdict in (Verdict.MALICIOUS, Verdict.SUSPICIOUS):
        # No finding, yet not clean: content that stayed locked (ScanConfig.locked_verdict).
        # Named like ClamAV's own Heuristics.Encrypted.* so that amavisd-new quarantines it.
        return f"{path}: {LOCKED_SIGNATURE} FOUND"
    if report.verdict is Verdict.ERROR:
        problems = report.errors or report.limits_hit
        message = problems[0].message if problems else "scan failed"
        return f"{path}: {visible(message)} ERROR"
    return f"{path}: OK"


def _duration(seconds: float) -> str:
    whole = int(seconds)
    millis = int((seconds - whole) * 1000)
    return f"{whole}.{millis:03d} sec ({whole // 60} m {whole % 60} s)"


def summary_block(
    summary: RunSummary,
    version: str,
    elapsed_seconds: float,
    started: datetime,
    ended: datetime,
) -> str:
    """clamscan's SCAN SUMMARY block, preceded by its blank line, without a final newline.

    `Known viruses` counts the detection families ddescan names (one per technique).
    "Total errors" appears only when there were errors, as in clamscan.
    """
    megabytes = summary.bytes_scanned / (1024 * 1024)
    lines = [
        "",
        SUMMARY_HEADER,
        f"Known viruses: {len(_FAMILY)}",
        f"Engine version: ddescan {version}",
        f"Scanned directories: {summary.directories}",
        f"Scanned files: {summary.files}",
        f"Infected files: {summary.infected}",
    ]
    if summary.errors:
        lines.append(f"Total errors: {summary.errors}")
    ratio = "1.00" if summary.bytes_scanned else "0.00"
    lines += [
        f"Data scanned: {megabytes:.2f} MB",
        f"Data read: {megabytes:.2f} MB (ratio {ratio}:1)",
        f"Time: {_duration(max(elapsed_seconds, 0.0))}",
        f"Start Date: {started:%Y:%m:%d %H:%M:%S}",
        f"End Date:   {ended:%Y:%m:%d %H:%M:%S}",
    ]
    return "\n".join(lines)
