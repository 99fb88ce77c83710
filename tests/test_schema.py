"""scanner/schema/report.schema.json: valid, strict, in step with the model, and satisfied
by every rendered report (hand-built and real CLI output)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from scanner import cli
from scanner.analysis import dde_finding
from scanner.model import (
    REPORT_SCHEMA_VERSION,
    DdeCall,
    Evidence,
    FileFormat,
    Finding,
    HostApplication,
    Location,
    Problem,
    ProblemKind,
    ScanConfig,
    ScanReport,
    Severity,
    Technique,
    Verdict,
)
from scanner.render import json_report, summarize
from scanner.walker import verdict_for

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "scanner" / "schema" / "report.schema.json"
SCHEMA: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def validator_for(definition: str | None) -> Draft202012Validator:
    if definition is None:
        return Draft202012Validator(SCHEMA)
    return Draft202012Validator(
        {
            "$schema": SCHEMA["$schema"],
            "$defs": SCHEMA["$defs"],
            "$ref": f"#/$defs/{definition}",
        }
    )


REPORT = validator_for("report")
DOCUMENT = validator_for("document")
ANY = validator_for(None)


def finding(
    technique: Technique = Technique.DDE_FORMULA,
    application: str = "cmd",
    topic: str = "/c calc.exe",
    config: ScanConfig | None = None,
) -> Finding:
    raw = f"={application}|'{topic}'!A0"
    return dde_finding(
        DdeCall(application, topic, "A0", keyword="DDEAUTO", automatic=True),
        technique,
        Evidence(raw, raw, ("step one",)),
        Location(("book.csv",), "A1"),
        HostApplication.EXCEL,
        config or ScanConfig(),
    )


def report(
    findings: tuple[Finding, ...] = (),
    problems: tuple[Problem, ...] = (),
    path: str = "book.csv",
    sha256: str = "0" * 64,
) -> ScanReport:
    relevant = [f.severity for f in findings if not f.allowed]
    return ScanReport(
        path=path,
        size=10,
        sha256=sha256,
        md5="0" * 32 if sha256 else "",
        format=FileFormat.CSV if sha256 else FileFormat.UNSUPPORTED,
        verdict=verdict_for(findings, problems),
        severity=max(relevant) if relevant else None,
        findings=findings,
        problems=problems,
        notes=("a note",),
        duration_ms=0.25,
    )


def sample_reports() -> list[ScanReport]:
    here = Location(("book.csv",))
    return [
        report(),
        report((finding(),)),
        report(tuple(finding(technique) for technique in Technique)),
        report((finding(application="SAPDDE", topic="System"),)),
        report(
            (
                finding(
                    application="SAPDDE",
                    config=ScanConfig(allowed_dde_services=frozenset({"SAPDDE"})),
                ),
            ),
        ),
        report(
            (),
            (
                Problem(ProblemKind.MALFORMED, "bad", here),
                Problem(ProblemKind.LIMIT, "depth", here.child("x").at("y")),
                Problem(ProblemKind.UNSUPPORTED, "enc", here),
                Problem(ProblemKind.TIMEOUT, "slow", here),
                Problem(ProblemKind.INTERNAL, "bug", here),
            ),
        ),
        report((), (Problem(ProblemKind.MALFORMED, "cannot read", here),), "/gone", sha256=""),
        report((finding(topic="/c calc\x1b[2J\u202e\n"),), path="b\udcff.csv"),
    ]


def test_schema_ships_with_the_package() -> None:
    assert json_report.load_schema() == SCHEMA


def test_schema_is_valid_draft_2020_12() -> None:
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(SCHEMA)


def test_enums_match_the_model() -> None:
    """A new enum member in scanner/model.py needs the same value in the schema's $defs."""
    defs = SCHEMA["$defs"]
    assert defs["verdict"]["enum"] == [v.value for v in Verdict]
    assert defs["technique"]["enum"] == [t.value for t in Technique]
    assert defs["format"]["enum"] == [f.value for f in FileFormat]
    assert defs["severity"]["enum"] == [s.label for s in Severity]
    assert defs["problemKind"]["enum"] == [k.value for k in ProblemKind]
    assert defs["report"]["properties"]["schema_version"]["const"] == REPORT_SCHEMA_VERSION


def test_every_object_is_strict() -> None:
    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object":
                assert node.get("additionalProperties") is False, where
                assert set(node["required"]) == set(node["properties"]), where
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}/{index}")

    walk(SCHEMA, "#")


@pytest.mark.parametrize("index", range(len(sample_reports())))
def test_rendered_reports_validate(index: int) -> None:
    data = json_report.report_to_dict(sample_reports()[index])
    REPORT.validate(data)
    ANY.validate(data)
    # What goes over the wire (JSON text) validates too, not only the Python dict.
    REPORT.validate(json.loads(json_report.to_json_line(sample_reports()[index])))


def test_document_validates() -> None:
    reports = sample_reports()
    document = json_report.document_to_dict(reports, summarize(reports), "0.1.0")
    DOCUMENT.validate(document)
    ANY.validate(json.loads(json_report.to_json_document(document)))


@pytest.mark.parametrize(
    ("mutate", "why"),
    [
        (lambda d: d.update(extra=1), "unknown top-level key"),
        (lambda d: d.update(verdict="dangerous"), "verdict outside the enum"),
        (lambda d: d.update(format="pdf"), "format outside the enum"),
        (lambda d: d.pop("sha256"), "required key missing"),
        (lambda d: d["findings"][0].update(technique="macro"), "technique outside the enum"),
        (lambda d: d["findings"][0].update(severity="urgent"), "severity outside the enum"),
        (lambda d: d["findings"][0]["kql"].pop("would_alert"), "kql flag missing"),
        (lambda d: d["findings"][0]["process"].update(pid=4), "unknown process key"),
        (lambda d: d["findings"][0]["threat"].update(framework="other"), "framework"),
        (lambda d: d["file"]["hash"].update(sha256="xyz"), "hash pattern"),
        (lambda d: d["event"].update(duration=-1), "negative duration"),
    ],
)
def test_schema_rejects_drift(mutate: Any, why: str) -> None:
    data = copy.deepcopy(json_report.report_to_dict(report((finding(),))))
    REPORT.validate(data)
    mutate(data)
    with pytest.raises(ValidationError):
        REPORT.validate(data)


def test_limit_problems_need_their_prefix() -> None:
    data = json_report.report_to_dict(
        report((), (Problem(ProblemKind.LIMIT, "depth", Location(("a",))),))
    )
    data["limits_hit"][0]["message"] = "depth"
    with pytest.raises(ValidationError):
        REPORT.validate(data)


def test_cli_jsonl_and_json_output_validate(tmp_path: Path) -> None:
    (tmp_path / "empty.docx").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("hello\n", encoding="utf-8")
    (tmp_path / "big.bin").write_bytes(b"x" * 100)
    missing = str(tmp_path / "missing.rtf")
    runner = CliRunner()
    args = [str(tmp_path), missing, "--max-file-size", "50"]
    jsonl = runner.invoke(cli.main, ["scan", "--format", "jsonl", *args])
    assert jsonl.exit_code == 2, jsonl.output
    lines = jsonl.stdout.splitlines()
    assert len(lines) == 4
    for line in lines:
        REPORT.validate(json.loads(line))
    whole = runner.invoke(cli.main, ["scan", "--format", "json", *args])
    assert whole.exit_code == 2
    document = json.loads(whole.stdout)
    DOCUMENT.validate(document)
    assert [r["verdict"] for r in document["reports"]] == ["error", "clean", "clean", "error"]
    assert document["reports"][0]["limits_hit"][0]["message"].startswith(
        "not fully inspected: file of 100 bytes is over the limit of 50 bytes"
    )


def test_cli_output_of_a_real_detection_validates(tmp_path: Path) -> None:
    sample = tmp_path / "invoice.csv"
    sample.write_text("=cmd|'/c calc.exe'!A0\n", encoding="utf-8")
    result = CliRunner().invoke(cli.main, ["scan", "--format", "jsonl", str(sample)])
    data = json.loads(result.stdout)
    REPORT.validate(data)
    assert data["verdict"] == "malicious", "CSV DDE formula not detected"
    assert data["findings"][0]["technique"] == "dde-formula"
    assert result.exit_code == 1
