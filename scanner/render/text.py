"""The analyst's view: plain words per file and per finding.

Every piece of document text (paths, evidence, command lines, messages) goes through
`escape.visible` before it is placed in a rich `Text` with `append`, which never parses
markup: a payload holding `[red]` or ESC [2J shows up as those characters and does nothing.
The same `Text` renders plain (`.plain`) or styled; the words never differ, and nothing in
them depends on time or the machine, so the output is deterministic.
"""

from __future__ import annotations

from typing import TextIO

from rich.console import Console
from rich.text import Text

from scanner.model import Finding, Problem, ProblemKind, ScanReport, Technique, Verdict
from scanner.render import RunSummary
from scanner.render.escape import visible

_VERDICT_STYLE = {
    Verdict.MALICIOUS: "bold red",
    Verdict.SUSPICIOUS: "bold yellow",
    Verdict.CLEAN: "green",
    Verdict.ERROR: "bold magenta",
}

_WHAT = {
    Technique.DDE_FIELD: "a DDE field: a field code that makes Word start a DDE conversation",
    Technique.DDE_FORMULA: "a DDE formula: a cell that makes Excel start a DDE conversation",
    Technique.DDE_LINK: "a DDE link: an external link that makes Excel start a DDE conversation",
    Technique.EQUATION_EDITOR: "an Equation Editor object (EQNEDT32.EXE, CVE-2017-11882)",
}

_LABEL = "bold"
_INDENT = "    "


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _line(text: Text, indent: str, label: str, value: str, style: str = "") -> None:
    text.append(indent)
    text.append(f"{label}: ", style=_LABEL)
    text.append(visible(value), style=style)
    text.append("\n")


def _finding(text: Text, number: int, count: int, finding: Finding) -> None:
    status = "allowed" if finding.allowed else finding.verdict.value
    text.append(f"  [{number}/{count}] ", style=_LABEL)
    text.append(visible(finding.title), style=_LABEL)
    text.append(" (")
    text.append(status, style="green" if finding.allowed else _VERDICT_STYLE[finding.verdict])
    text.append(f", severity {finding.severity.label})\n")
    _line(text, _INDENT, "What", f"{_WHAT[finding.technique]} [{finding.technique.value}]")
    _line(text, _INDENT, "Where", finding.location.display())
    _line(text, _INDENT, "Evidence as stored", finding.evidence.raw)
    _line(text, _INDENT, "Evidence as Office reads it", finding.evidence.deobfuscated)
    for step in finding.evidence.steps:
        _line(text, _INDENT + "  ", "step", step)
    process = finding.process
    text.append(_INDENT)
    text.append("Opening it would run: ", style=_LABEL)
    text.append(visible(process.parent))
    text.append(" -> ")
    text.append(visible(process.image or "(unknown program)"), style="bold")
    text.append(" with command line: ")
    text.append(visible(process.command_line))
    text.append("\n")
    if process.image_path:
        _line(text, _INDENT, "Program path", process.image_path)
    for step in process.steps:
        _line(text, _INDENT + "  ", "step", step)
    kql = finding.kql
    flags = (
        f"IsOfficeSpawn={_flag(kql.is_office_spawn)} "
        f"IsDDE_EquationEditor={_flag(kql.is_dde_equation_editor)} "
        f"SuspiciousArgs={_flag(kql.suspicious_args)}"
    )
    if kql.matched_arg_terms:
        flags += f" (argument terms: {', '.join(kql.matched_arg_terms)})"
    _line(text, _INDENT, "KQL flags", flags)
    if kql.would_alert:
        _line(text, _INDENT, "Runtime rule", "would alert on this process event", "bold")
    else:
        gap = kql.gap.removeprefix("the runtime rule ") or "would stay silent"
        _line(text, _INDENT, "Runtime rule", gap + " (coverage gap)", "bold yellow")
    _line(text, _INDENT, "Why it matters", finding.explanation)
    if finding.rules:
        _line(text, _INDENT, "YARA rules", ", ".join(finding.rules))


def _problem(text: Text, label: str, problem: Problem) -> None:
    _line(
        text,
        "  ",
        f"{label} ({problem.kind.value})",
        f"{problem.message} [at {problem.location.display()}]",
    )


def report_text(report: ScanReport) -> Text:
    """The analyst's account of one file, ending with a newline."""
    text = Text()
    text.append(visible(report.path), style="bold")
    text.append(": ")
    text.append(report.verdict.value.upper(), style=_VERDICT_STYLE[report.verdict])
    if report.severity is not None:
        text.append(f" (severity {report.severity.label})")
    allowed = sum(1 for finding in report.findings if finding.allowed)
    details = [report.format.value, _plural(len(report.findings), "finding")]
    if allowed:
        details.append(f"{allowed} allowed")
    text.append(f" - {', '.join(details)}\n")
    if report.sha256:
        _line(text, "  ", "sha256", report.sha256)
    count = len(report.findings)
    for number, finding in enumerate(report.findings, start=1):
        _finding(text, number, count, finding)
    for problem in report.errors:
        label = "Not inspected" if problem.kind is ProblemKind.UNSUPPORTED else "Error"
        _problem(text, label, problem)
    for problem in report.limits_hit:
        _problem(text, "Not fully inspected", problem)
    for note in report.notes:
        _line(text, "  ", "Note", note)
    return text


def render_report(report: ScanReport) -> str:
    """Plain-text form of `report_text`."""
    return report_text(report).plain


def summary_text(summary: RunSummary) -> Text:
    text = Text()
    text.append(f"Scanned {_plural(summary.files, 'file')}: ", style=_LABEL)
    parts = [
        (f"{summary.malicious} malicious", _VERDICT_STYLE[Verdict.MALICIOUS]),
        (f"{summary.suspicious} suspicious", _VERDICT_STYLE[Verdict.SUSPICIOUS]),
        (f"{summary.clean} clean", _VERDICT_STYLE[Verdict.CLEAN]),
        (_plural(summary.errors, "error"), _VERDICT_STYLE[Verdict.ERROR]),
    ]
    for index, (words, style) in enumerate(parts):
        if index:
            text.append(", ")
        text.append(words, style=style if words[0] != "0" else "")
    text.append(f"; {_plural(summary.findings, 'finding')}")
    if summary.allowed_findings:
        text.append(f" ({summary.allowed_findings} allowed)")
    text.append(".\n")
    return text


def make_console(stream: TextIO, color: bool) -> Console:
    """A console that writes `Text` to `stream`, styled only when `color` is true.

    Markup, emoji codes and automatic highlighting are off: only the styles this module
    sets are applied. Soft wrapping keeps rich from inserting line breaks of its own.
    """
    return Console(
        file=stream,
        force_terminal=color,
        no_color=not color,
        color_system="standard" if color else None,
        markup=False,
        emoji=False,
        highlight=False,
        soft_wrap=True,
    )


def write_text(console: Console, text: Text) -> None:
    console.print(text, end="")
