"""The adversarial corpus (corpus/adversarial/, written by corpus/adversarial.py) through the
isolated runner: every sample gives exactly its expected verdict and problem kinds, within
the hard time limit and the memory cap, and the fuzzers' regression samples still meet
their harness property.

The figures (seconds and peak resident memory per sample) are printed with `pytest -s`;
corpus/adversarial/README.md records them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from scanner.isolation import BytesJob, IsolatedScanner, ScanStats
from scanner.model import ScanConfig, ScanReport
from scanner.render.json_report import to_json_line

REPO = Path(__file__).resolve().parents[1]
ADVERSARIAL = REPO / "corpus" / "adversarial"
sys.path.insert(0, str(REPO / "corpus"))

import adversarial  # noqa: E402
from fuzz_targets import BY_NAME  # noqa: E402

MANIFEST: dict[str, Any] = json.loads((ADVERSARIAL / "manifest.json").read_text("utf-8"))
REGRESSIONS: dict[str, Any] = json.loads((ADVERSARIAL / "regressions.json").read_text("utf-8"))
SAMPLES = {sample.path: sample for sample in adversarial.SAMPLES}


def test_committed_files_are_what_the_generator_writes() -> None:
    assert json.loads(json.dumps(adversarial.manifest())) == MANIFEST
    committed = {
        str(path.relative_to(ADVERSARIAL))
        for group in adversarial.GROUPS
        for path in (ADVERSARIAL / group).rglob("*")
        if path.is_file()
    }
    assert committed == {s.path for s in adversarial.SAMPLES if not s.large}
    for sample in adversarial.SAMPLES:
        if not sample.large:
            assert (ADVERSARIAL / sample.path).read_bytes() == sample.build(), sample.path


@pytest.fixture(scope="module")
def results() -> dict[str, tuple[ScanReport, ScanStats]]:
    """Every sample, scanned once with the default configuration by two workers that are
    replaced after each file (so each peak-memory figure belongs to one file)."""
    config = ScanConfig()
    entries = MANIFEST["samples"]
    jobs = []
    for entry in entries:
        path = entry["path"]
        data = SAMPLES[path].build() if entry["generated_at_test_time"] else None
        if data is None:
            data = (ADVERSARIAL / path).read_bytes()
        jobs.append(BytesJob(data, path.rsplit("/", 1)[-1]))
    with IsolatedScanner(config, processes=2, max_tasks_per_worker=1) as pool:
        scanned = list(pool.scan_with_stats(jobs))
    assert len(scanned) == len(entries)
    out = {entry["path"]: result for entry, result in zip(entries, scanned, strict=True)}
    print("\nadversarial corpus: seconds, peak RSS (MiB), verdict, problems")
    for path, (report, stats) in out.items():
        kinds = ",".join(sorted({p.kind.value for p in report.problems}))
        print(
            f"  {path:42} {stats.seconds:7.2f} {stats.peak_rss_bytes / 2**20:7.0f}  "
            f"{report.verdict.value:10} {kinds}"
        )
    worst = max(out.items(), key=lambda item: item[1][1].seconds)
    peak = max(out.items(), key=lambda item: item[1][1].peak_rss_bytes)
    print(f"  worst time {worst[1][1].seconds:.2f} s ({worst[0]})")
    print(f"  peak memory {peak[1][1].peak_rss_bytes / 2**20:.0f} MiB ({peak[0]})")
    return out


@pytest.mark.parametrize("entry", MANIFEST["samples"], ids=lambda e: e["path"])
def test_sample_meets_its_expectation(
    entry: dict[str, Any], results: dict[str, tuple[ScanReport, ScanStats]]
) -> None:
    report, stats = results[entry["path"]]
    expected = entry["expect"]
    kinds = sorted({problem.kind.value for problem in report.problems})
    assert (report.verdict.value, kinds) == (expected["verdict"], sorted(expected["problems"]))
    config = ScanConfig()
    assert not stats.killed
    assert stats.seconds < config.limits.timeout_seconds
    assert stats.peak_rss_bytes < config.limits.max_memory_bytes


def test_external_entities_are_never_resolved(
    results: dict[str, tuple[ScanReport, ScanStats]],
) -> None:
    for path in ("xml/xxe-file.docx", "xml/xxe-flat-opc.xml"):
        report, _ = results[path]
        text = to_json_line(report)
        assert "root:" not in text and "/bin/" not in text


@pytest.mark.parametrize("entry", REGRESSIONS["regressions"], ids=lambda e: e["file"])
def test_fuzzer_regression_still_meets_the_property(entry: dict[str, Any]) -> None:
    if "open" in entry:
        pytest.xfail(entry["open"])
    data = (ADVERSARIAL / entry["file"]).read_bytes()
    BY_NAME[entry["harness"]].run(data)
