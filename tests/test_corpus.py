"""The sample corpus: generated deterministically, described by its manifest, and scanned as
the manifest says (corpus/README.md explains the groups and the expectation fields)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from scanner.api import scan_path
from scanner.model import Finding, Location, ScanConfig, ScanReport

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpus"
SAMPLES = CORPUS / "samples"
MANIFEST_FILE = CORPUS / "manifest.json"
GOLDEN = Path(__file__).resolve().parent / "golden"
MANIFEST: dict[str, Any] = json.loads(MANIFEST_FILE.read_text(encoding="utf-8"))
ENTRIES: list[dict[str, Any]] = MANIFEST["samples"]
ALLOWED_ENTRIES = [entry for entry in ENTRIES if "allowed_services" in entry]


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ddescan_corpus_generate", CORPUS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses resolve their module through sys.modules while the class is created.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def _differences(left: Mapping[str, bytes], right: Mapping[str, bytes]) -> list[str]:
    return sorted(name for name in set(left) | set(right) if left.get(name) != right.get(name))


def test_generator_is_deterministic_and_matches_committed_corpus(tmp_path: Path) -> None:
    in_process = tmp_path / "in-process"
    _generator().write_corpus(in_process, tmp_path / "in-process.json")
    # A second run in a fresh interpreter (other hash seed) must give the same bytes.
    subprocess_out = tmp_path / "subprocess"
    subprocess.run(
        [
            sys.executable,
            str(CORPUS / "generate.py"),
            "--out",
            str(subprocess_out),
            "--manifest",
            str(tmp_path / "subprocess.json"),
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    )
    first, second = _tree(in_process), _tree(subprocess_out)
    assert _differences(first, second) == []
    assert (tmp_path / "in-process.json").read_bytes() == (
        tmp_path / "subprocess.json"
    ).read_bytes()

    changed = _differences(first, _tree(SAMPLES))
    assert changed == [], f"corpus/samples is stale, run python corpus/generate.py: {changed}"
    assert (tmp_path / "in-process.json").read_bytes() == MANIFEST_FILE.read_bytes(), (
        "corpus/manifest.json is stale, run python corpus/generate.py"
    )


def test_manifest_and_samples_agree() -> None:
    listed = [entry["path"] for entry in ENTRIES]
    assert len(listed) == len(set(listed)), "a sample is listed twice"
    on_disk = set(_tree(SAMPLES))
    assert sorted(set(listed) - on_disk) == [], "manifest entries without a sample file"
    assert sorted(on_disk - set(listed)) == [], "sample files without a manifest entry"


def test_manifest_entries_are_complete() -> None:
    for entry in ENTRIES:
        assert entry["description"] and entry["technique_tested"], entry["path"]
        expect = entry["expect"]
        assert expect["verdict"] in {"clean", "suspicious", "malicious", "error"}
        if expect["verdict"] in {"suspicious", "malicious"}:
            # A locked sample is suspicious with no finding: nothing could be read inside it.
            assert expect["findings"] or "locked" in expect["problems"], (
                f"{entry['path']}: a detection needs expected findings"
            )
        if expect["verdict"] == "error":
            assert expect["problems"], f"{entry['path']}: bad input needs a problem kind"


def _where(finding: Finding) -> str:
    """The location below the scanned file itself (its own path would match anything)."""
    return Location(finding.location.containers[1:], finding.location.detail).display()


def _summary(finding: Finding) -> str:
    return (
        f"{finding.technique.value} {finding.process.parent} -> {finding.process.image!r} "
        f"cmd={finding.process.command_line!r} at {_where(finding)!r} "
        f"office_spawn={finding.kql.is_office_spawn} args={finding.kql.suspicious_args} "
        f"allowed={finding.allowed} verdict={finding.verdict.value}"
    )


def _matches(finding: Finding, hit: Mapping[str, Any]) -> bool:
    process = finding.process
    checks = [
        finding.technique.value == hit["technique"],
        process.image.casefold() == hit["image"],
        hit["command_line_contains"] in process.command_line,
        process.parent == hit["parent"],
        hit.get("location_contains", "") in _where(finding),
    ]
    if "command_line" in hit:
        checks.append(process.command_line == hit["command_line"])
    kql = hit.get("kql", {})
    if "is_office_spawn" in kql:
        checks.append(finding.kql.is_office_spawn is kql["is_office_spawn"])
    if "suspicious_args" in kql:
        checks.append(finding.kql.suspicious_args is kql["suspicious_args"])
    if "allowed" in hit:
        checks.append(finding.allowed is hit["allowed"])
    return all(checks)


def _check(report: ScanReport, expect: Mapping[str, Any], what: str) -> None:
    found = "\n".join(_summary(finding) for finding in report.findings) or "(no findings)"
    problems = [(problem.kind.value, problem.message) for problem in report.problems]
    context = f"{what}\nfindings:\n{found}\nproblems: {problems}"
    assert report.verdict.value == expect["verdict"], context
    if "finding_count" in expect:
        assert len(report.findings) == expect["finding_count"], context
    unused = list(report.findings)
    for hit in expect["findings"]:
        match = next((finding for finding in unused if _matches(finding, hit)), None)
        assert match is not None, f"no finding matches {hit}\n{context}"
        unused.remove(match)
    assert sorted(kind for kind, _ in problems) == sorted(expect["problems"]), context
    for kind, message in problems:
        assert message and "Traceback" not in message, context
        assert kind != "internal", context


@pytest.mark.parametrize("entry", ENTRIES, ids=[entry["path"] for entry in ENTRIES])
def test_sample_meets_manifest(entry: Mapping[str, Any]) -> None:
    report = scan_path(SAMPLES / entry["path"])
    _check(report, entry["expect"], entry["path"])


@pytest.mark.parametrize("entry", ALLOWED_ENTRIES, ids=[entry["path"] for entry in ALLOWED_ENTRIES])
def test_sample_with_allowed_services(entry: Mapping[str, Any]) -> None:
    allowed = entry["allowed_services"]
    config = ScanConfig(allowed_dde_services=frozenset(allowed["services"]))
    report = scan_path(SAMPLES / entry["path"], config)
    _check(report, allowed["expect"], f"{entry['path']} with {allowed['services']} allowed")


def test_allowed_services_do_not_hide_other_dde() -> None:
    # Allowing a data service must not whitelist a command: cmd stays malicious.
    config = ScanConfig(allowed_dde_services=frozenset({"BLP"}))
    report = scan_path(SAMPLES / "csv" / "formula-cmd.csv", config)
    assert report.verdict.value == "malicious"
    assert [finding.allowed for finding in report.findings] == [False]


GOLDEN_SAMPLES = ("word/ddeauto-cmd.docx", "csv/whoami-scenario.csv", "clean/ordinary-fields.docx")
# Keys whose value changes from run to run (timings); dropped at any depth before comparing.
VOLATILE_KEYS = frozenset({"duration_ms", "duration"})


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _stable(item) for key, item in value.items() if key not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [_stable(item) for item in value]
    return value


@pytest.mark.parametrize("sample", GOLDEN_SAMPLES)
def test_golden_json_report(sample: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from scanner.render.json_report import report_to_dict

    # Scanning from inside the samples folder keeps the reported path checkout-independent.
    monkeypatch.chdir(SAMPLES)
    actual = _stable(report_to_dict(scan_path(Path(sample))))
    golden = GOLDEN / (sample.replace("/", "__") + ".json")
    if os.environ.get("DDESCAN_UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(
            json.dumps(actual, indent=2, sort_keys=True, ensure_ascii=True) + "\n",
            encoding="utf-8",
        )
    assert golden.is_file(), f"no golden report {golden}; rerun with DDESCAN_UPDATE_GOLDEN=1"
    assert actual == json.loads(golden.read_text(encoding="utf-8"))
