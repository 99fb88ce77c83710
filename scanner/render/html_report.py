"""ScanReport -> a static HTML page (`--format html`) for analysts and ticket attachments.

Every piece of document text (paths, evidence, command lines, messages) is attacker-chosen:
it goes through `escape.visible` (control and bidi characters shown as escapes, so a
right-to-left override cannot make `exe.txt` read as `txt.exe`) and then `html.escape`
with quotes, and is only ever placed in element content or a quoted attribute. The page has
no script, no external resource and no link built from a payload; a Content-Security-Policy
that forbids everything but the inline style sheet is a second line of defence should any
of that ever slip.

The page is streamed: `page_start`, one `report_section` per file as it finishes, then
`page_end` with the summary.
"""

from __future__ import annotations

import html
from collections.abc import Iterable

from scanner.model import Finding, Problem, ScanReport
from scanner.render import RunSummary
from scanner.render.escape import visible

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #1b1b1b; }
h1 { font-size: 1.4em; }
section { border-top: 1px solid #ccc; padding: 0.5em 0; }
h2 { font-size: 1.1em; word-break: break-all; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.5em; text-align: left;
  vertical-align: top; }
code { white-space: pre-wrap; word-break: break-all; }
.malicious { color: #b00020; font-weight: bold; }
.suspicious { color: #8a5a00; font-weight: bold; }
.clean { color: #1e6b1e; }
.error { color: #7b1fa2; font-weight: bold; }
"""

_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


def text(value: str) -> str:
    """Document text made safe for HTML element content and quoted attribute values."""
    return html.escape(visible(value), quote=True)


def _code(value: str) -> str:
    return f"<code>{text(value)}</code>"


def page_start(version: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f"<title>ddescan {text(version)} report</title>\n"
        f"<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"<h1>ddescan {text(version)} report</h1>\n"
    )


def _finding_rows(finding: Finding) -> str:
    process = finding.process
    kql = finding.kql
    status = "allowed" if finding.allowed else finding.verdict.value
    rows = [
        ("Technique", text(finding.technique.value)),
        ("Verdict", f'<span class="{status}">{text(status)}</span>'),
        ("Severity", text(finding.severity.label)),
        ("Where", _code(finding.location.display())),
        ("Evidence as stored", _code(finding.evidence.raw)),
        ("Evidence as Office reads it", _code(finding.evidence.deobfuscated)),
        ("Process", f"{_code(process.parent)} &rarr; {_code(process.image or '(unknown)')}"),
        ("Command line", _code(process.command_line)),
        ("Runtime rule", text("would alert" if kql.would_alert else kql.gap or "silent")),
        ("Why it matters", text(finding.explanation)),
    ]
    if finding.cves:
        rows.append(("CVEs", text(", ".join(finding.cves))))
    if finding.rules:
        rows.append(("YARA rules", text(", ".join(finding.rules))))
    body = "".join(f"<tr><th>{label}</th><td>{value}</td></tr>\n" for label, value in rows)
    return f"<h3>{text(finding.title)}</h3>\n<table>\n{body}</table>\n"


def _problem_item(problem: Problem) -> str:
    return (
        f"<li>{text(problem.kind.value)}: {text(problem.message)} "
        f"(at {_code(problem.location.display())})</li>\n"
    )


def report_section(report: ScanReport) -> str:
    """One file: verdict, hashes, each finding, each problem."""
    verdict = report.verdict.value
    severity = f", severity {text(report.severity.label)}" if report.severity is not None else ""
    parts = [
        "<section>\n",
        f'<h2>{text(report.path)}: <span class="{verdict}">{text(verdict)}</span>{severity}</h2>\n',
        f"<p>format {text(report.format.value)}, {report.size} bytes, "
        f"{len(report.findings)} finding(s)",
    ]
    if report.sha256:
        parts.append(f", sha256 {_code(report.sha256)}")
    parts.append("</p>\n")
    parts.extend(_finding_rows(finding) for finding in report.findings)
    if report.problems:
        parts.append("<p>Not (fully) inspected:</p>\n<ul>\n")
        parts.extend(_problem_item(problem) for problem in report.problems)
        parts.append("</ul>\n")
    parts.append("</section>\n")
    return "".join(parts)


def page_end(summary: RunSummary) -> str:
    rows = (
        ("files", summary.files),
        ("malicious", summary.malicious),
        ("suspicious", summary.suspicious),
        ("clean", summary.clean),
        ("errors", summary.errors),
        ("findings", summary.findings),
        ("exit code", int(summary.exit_code)),
    )
    body = "".join(f"<tr><th>{label}</th><td>{value}</td></tr>\n" for label, value in rows)
    return f"<h2>Summary</h2>\n<table>\n{body}</table>\n</body>\n</html>\n"


def render_html(reports: Iterable[ScanReport], summary: RunSummary, version: str) -> str:
    """The whole page at once (the CLI streams the same pieces)."""
    return page_start(version) + "".join(map(report_section, reports)) + page_end(summary)
