"""oletools' public test files (shared/peers/oletools, MANIFEST.tsv) as a real-world check.

Read in place, never copied into the repository; skipped when the folder is absent.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import OLETOOLS

from scanner import scan_path
from scanner.model import ProblemKind, Verdict

# Formats this release reads; files of other formats are held only to "never crash".
IN_SCOPE_SUFFIXES = frozenset(
    {".docx", ".docm", ".dotx", ".dotm", ".xlsx", ".xlsm", ".csv", ".rtf"}
)


@dataclass(frozen=True)
class PeerCase:
    path: str
    label: str
    expected_command: str


def _cases() -> list[PeerCase]:
    manifest = OLETOOLS / "MANIFEST.tsv"
    if not manifest.exists():
        return []
    with manifest.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return [
        PeerCase(row["path"], row["label"], row["expected_dde_command(stated by tests)"] or "")
        for row in rows
        if (OLETOOLS / row["path"]).is_file()
    ]


CASES = _cases()
pytestmark = pytest.mark.skipif(not CASES, reason="shared/peers/oletools is not present")


def _normalise(text: str) -> str:
    return " ".join(text.replace("'", " ").replace('"', " ").split()).casefold()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.path)
def test_never_crashes(case: PeerCase) -> None:
    report = scan_path(OLETOOLS / case.path)
    assert not [p for p in report.problems if p.kind is ProblemKind.INTERNAL], report.problems


IN_SCOPE = [c for c in CASES if Path(c.path).suffix.lower() in IN_SCOPE_SUFFIXES]


@pytest.mark.parametrize("case", IN_SCOPE, ids=lambda c: c.path)
def test_in_scope_expectations(case: PeerCase) -> None:
    report = scan_path(OLETOOLS / case.path)
    if case.label == "dde":
        assert report.verdict is Verdict.MALICIOUS, report
        commands = [_normalise(f.process.command_line) for f in report.findings]
        expected = case.expected_command
        if expected.startswith("1 link containing"):
            assert any("cmd" in c and "calc" in c for c in commands), commands
        elif expected:
            assert _normalise(expected) in commands, commands
    elif case.label == "clean":
        assert report.verdict is Verdict.CLEAN and not report.findings, report
    else:
        assert report.verdict is not Verdict.ERROR or report.problems
