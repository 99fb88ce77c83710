"""ScanReport -> JSON-compatible dicts, with a stable key order.

The per-file object carries short top-level keys (`path`, `sha256`, `verdict`, ...) for
people and scripts, and the same facts again under Elastic Common Schema names (`file.*`,
`event.*`, `threat.*`) so that a SIEM can ingest a line without a mapping. It is described
by scanner/schema/report.schema.json (`$defs/report`); the whole `--format json` document
by `$defs/document`. Any change to the shape bumps REPORT_SCHEMA_VERSION.

Output is plain JSON data (str, int, float, bool, None, list, dict); `to_json_line` and
`to_json_document` serialise with `ensure_ascii=True`, so every non-ASCII or control
character in a payload reaches the reader as a `\\uXXXX` escape, never raw.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterable
from importlib import resources
from typing import Any

from scanner.model import (
    ATTACK_SUBTECHNIQUE_ID,
    ATTACK_SUBTECHNIQUE_NAME,
    ATTACK_TECHNIQUE_ID,
    ATTACK_TECHNIQUE_NAME,
    REPORT_SCHEMA_VERSION,
    DdeCall,
    Finding,
    Location,
    Problem,
    ScanReport,
    Verdict,
)
from scanner.render import RunSummary

TOOL_NAME = "ddescan"

JsonDict = dict[str, Any]

# MITRE ATT&CK: T1559.002 sits under the Execution tactic (TA0002).
_ATTACK_TACTIC_ID = "TA0002"
_ATTACK_TACTIC_NAME = "Execution"
_ATTACK_BASE = "https://attack.mitre.org"

LIMIT_PREFIX = "not fully inspected: "


def _location(location: Location) -> JsonDict:
    return {
        "path": list(location.containers),
        "display": location.display(),
        "detail": location.detail,
    }


def _dde(call: DdeCall | None) -> JsonDict | None:
    if call is None:
        return None
    return {
        "application": call.application,
        "topic": call.topic,
        "item": call.item,
        "keyword": call.keyword,
        "automatic": call.automatic,
        "switches": list(call.switches),
    }


def _threat() -> JsonDict:
    """ECS threat.* for T1559.002 (ECS "Threat Fields"; ids as in ATT&CK)."""
    technique_ref = f"{_ATTACK_BASE}/techniques/{ATTACK_TECHNIQUE_ID}/"
    sub_ref = f"{technique_ref}{ATTACK_SUBTECHNIQUE_ID.split('.', 1)[1]}/"
    return {
        "framework": "MITRE ATT&CK",
        "tactic": {
            "id": _ATTACK_TACTIC_ID,
            "name": _ATTACK_TACTIC_NAME,
            "reference": f"{_ATTACK_BASE}/tactics/{_ATTACK_TACTIC_ID}/",
        },
        "technique": {
            "id": ATTACK_TECHNIQUE_ID,
            "name": ATTACK_TECHNIQUE_NAME,
            "reference": technique_ref,
            "subtechnique": {
                "id": ATTACK_SUBTECHNIQUE_ID,
                "name": ATTACK_SUBTECHNIQUE_NAME,
                "reference": sub_ref,
            },
        },
    }


def finding_to_dict(finding: Finding) -> JsonDict:
    process = finding.process
    kql = finding.kql
    return {
        "technique": finding.technique.value,
        "title": finding.title,
        "severity": finding.severity.label,
        "verdict": finding.verdict.value,
        "allowed": finding.allowed,
        "location": _location(finding.location),
        "evidence": {
            "raw": finding.evidence.raw,
            "deobfuscated": finding.evidence.deobfuscated,
            "steps": list(finding.evidence.steps),
        },
        "process": {
            "parent": process.parent,
            "image": process.image,
            "command_line": process.command_line,
            "image_path": process.image_path,
            "path_traversal": process.path_traversal,
            "steps": list(process.steps),
        },
        "kql": {
            "is_office_spawn": kql.is_office_spawn,
            "is_dde_equation_editor": kql.is_dde_equation_editor,
            "suspicious_args": kql.suspicious_args,
            "would_alert": kql.would_alert,
            "matched_child_terms": list(kql.matched_child_terms),
            "matched_arg_terms": list(kql.matched_arg_terms),
            "gap": kql.gap,
        },
        "dde": _dde(finding.dde),
        "explanation": finding.explanation,
        "threat": _threat(),
        "attack_ids": list(finding.attack_ids),
        "cves": list(finding.cves),
        "rules": list(finding.rules),
    }


def _problem(problem: Problem, prefix: str = "") -> JsonDict:
    return {
        "kind": problem.kind.value,
        "message": prefix + problem.message,
        "location": _location(problem.location),
    }


def _event(report: ScanReport) -> JsonDict:
    """ECS event.*: event.duration is in nanoseconds (ECS "Event Fields")."""
    alert = report.verdict in (Verdict.MALICIOUS, Verdict.SUSPICIOUS)
    return {
        "kind": "alert" if alert else "event",
        "category": ["malware", "file"] if alert else ["file"],
        "type": ["indicator"] if alert else ["info"],
        "outcome": "failure" if report.verdict is Verdict.ERROR else "success",
        "severity": int(report.severity) if report.severity is not None else None,
        "duration": round(report.duration_ms * 1_000_000),
    }


def report_to_dict(report: ScanReport) -> JsonDict:
    """One per-file object (`$defs/report` of the schema), keys in a fixed order."""
    hashes: JsonDict = {"sha256": report.sha256, "md5": report.md5}
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "path": report.path,
        "size": report.size,
        "sha256": report.sha256,
        "md5": report.md5,
        "format": report.format.value,
        "verdict": report.verdict.value,
        "severity": report.severity.label if report.severity is not None else None,
        "findings": [finding_to_dict(finding) for finding in report.findings],
        "errors": [_problem(problem) for problem in report.errors],
        "limits_hit": [_problem(problem, LIMIT_PREFIX) for problem in report.limits_hit],
        "notes": list(report.notes),
        "scanned_parts": report.scanned_parts,
        "duration_ms": report.duration_ms,
        "file": {
            "path": report.path,
            "name": posixpath.basename(report.path.replace("\\", "/")),
            "size": report.size,
            "hash": hashes,
        },
        "event": _event(report),
    }


def summary_to_dict(summary: RunSummary) -> JsonDict:
    return {
        "files": summary.files,
        "clean": summary.clean,
        "suspicious": summary.suspicious,
        "malicious": summary.malicious,
        "errors": summary.errors,
        "findings": summary.findings,
        "allowed_findings": summary.allowed_findings,
        "bytes_scanned": summary.bytes_scanned,
        "exit_code": int(summary.exit_code),
    }


def document_to_dict(reports: Iterable[ScanReport], summary: RunSummary, version: str) -> JsonDict:
    """The whole `--format json` document (`$defs/document` of the schema)."""
    return {
        "schema_version": REPORT_SCHEMA_VERSION,
        "tool": {"name": TOOL_NAME, "version": version},
        "reports": [report_to_dict(report) for report in reports],
        "summary": summary_to_dict(summary),
    }


def to_json_line(report: ScanReport) -> str:
    """One report as one line of JSON (the `jsonl` format), without the newline."""
    return json.dumps(report_to_dict(report), ensure_ascii=True, allow_nan=False)


def to_json_document(document: JsonDict) -> str:
    return json.dumps(document, ensure_ascii=True, allow_nan=False, indent=2)


def load_schema() -> JsonDict:
    """The JSON Schema (draft 2020-12) of this output, as shipped in the package."""
    text = resources.files("scanner").joinpath("schema", "report.schema.json").read_text("utf-8")
    schema: JsonDict = json.loads(text)
    return schema
