"""scanner.isolation: a real worker pool with hard time limits, a memory cap and exactly one
report per input, in order, whatever the parsers do."""

from __future__ import annotations

import functools
import hashlib
import json
import sys
import time
from pathlib import Path

import isolation_helpers as bad
import pytest
from click.testing import CliRunner

from scanner import cli
from scanner.isolation import (
    BytesJob,
    InProcessScanner,
    IsolatedScanner,
    PathJob,
    Prepared,
    cooperative_timeout,
    failure_report,
)
from scanner.model import ProblemKind, ScanConfig, ScanLimits, Verdict

CSV_DDE = b"=cmd|'/c calc.exe'!A0\n"
REPO = Path(__file__).resolve().parents[1]


def config(timeout: float = 1.0, memory: int = 512 * 1024 * 1024) -> ScanConfig:
    return ScanConfig(limits=ScanLimits(timeout_seconds=timeout, max_memory_bytes=memory))


def runner(timeout: float = 1.0, processes: int = 1, **options: object) -> IsolatedScanner:
    return IsolatedScanner(
        config(timeout),
        processes,
        initializer=bad.install_test_handlers,
        **options,  # type: ignore[arg-type]
    )


def kinds(report: object) -> list[str]:
    return [problem.kind.value for problem in report.problems]  # type: ignore[attr-defined]


def test_cooperative_deadline_is_shorter_than_the_hard_limit() -> None:
    assert cooperative_timeout(60.0) == 55.0
    assert cooperative_timeout(1.0) == pytest.approx(0.8)
    assert cooperative_timeout(10.0) == 8.0


@pytest.mark.parametrize("prefix", [bad.REGEX, bad.C_LOOP], ids=["regex", "c-loop"])
def test_stuck_in_c_code_is_killed_at_the_hard_limit_and_the_run_goes_on(prefix: bytes) -> None:
    jobs = [BytesJob(prefix, "stuck.bin"), BytesJob(CSV_DDE, "next.csv")]
    started = time.monotonic()
    with runner(timeout=0.6) as pool:
        reports = list(pool.scan(jobs))
        killed = pool.workers_killed
    elapsed = time.monotonic() - started
    assert [r.path for r in reports] == ["stuck.bin", "next.csv"]
    stuck, following = reports
    assert stuck.verdict is Verdict.ERROR
    assert kinds(stuck) == ["timeout"]
    assert "hard time limit of 0.6 s" in stuck.problems[0].message
    assert stuck.sha256 == hashlib.sha256(prefix).hexdigest()
    assert stuck.size == len(prefix)
    assert 0.6 <= stuck.duration_ms / 1000 < 3.0
    assert following.verdict is Verdict.MALICIOUS
    assert following.findings[0].process.command_line == "cmd /c calc.exe"
    assert killed == 1
    assert elapsed < 5.0


def test_cooperative_timeout_keeps_partial_results_without_a_kill() -> None:
    with runner(timeout=1.0) as pool:
        report = pool.scan_one(BytesJob(bad.SLOW, "slow.bin"))
        killed = pool.workers_killed
    assert kinds(report) == ["timeout"]
    assert report.verdict is Verdict.MALICIOUS
    assert [f.process.command_line for f in report.findings] == ["cmd /c calc.exe"]
    assert "time limit of 0.8 s" in report.problems[0].message
    assert killed == 0


def test_memory_hog_hits_the_cap_and_is_a_limit_problem() -> None:
    pool = IsolatedScanner(
        config(timeout=20.0, memory=300 * 1024 * 1024),
        initializer=bad.install_test_handlers,
    )
    with pool:
        hog, after = list(pool.scan([BytesJob(bad.HOG, "hog.bin"), BytesJob(CSV_DDE, "a.csv")]))
    assert hog.verdict is Verdict.ERROR
    assert kinds(hog) == ["limit"]
    assert "out of memory" in hog.problems[0].message
    assert after.verdict is Verdict.MALICIOUS


@pytest.mark.parametrize(
    ("prefix", "status"), [(bad.KILL, "SIGKILL"), (bad.EXIT, "exit status 3")], ids=str
)
def test_a_worker_that_dies_gives_a_limit_problem_and_is_replaced(
    prefix: bytes, status: str
) -> None:
    jobs = [BytesJob(CSV_DDE, "1.csv"), BytesJob(prefix, "dies.bin"), BytesJob(CSV_DDE, "3.csv")]
    with runner(timeout=10.0) as pool:
        reports = list(pool.scan(jobs))
        started = pool.workers_started
    assert [r.path for r in reports] == ["1.csv", "dies.bin", "3.csv"]
    assert [r.verdict for r in reports] == [Verdict.MALICIOUS, Verdict.ERROR, Verdict.MALICIOUS]
    assert kinds(reports[1]) == ["limit"]
    assert f"ended abruptly ({status})" in reports[1].problems[0].message
    assert started == 2


def test_reports_keep_input_order_with_a_slow_head_and_two_workers(tmp_path: Path) -> None:
    files = []
    for number in range(12):
        path = tmp_path / f"{number:02}.csv"
        path.write_bytes(CSV_DDE if number % 2 else b"a,b\n1,2\n")
        files.append(str(path))
    skipped = failure_report("fifo", 0, "", "", ProblemKind.UNSUPPORTED, "a named pipe", 0)
    jobs = [
        BytesJob(bad.REGEX, "stuck.bin"),
        *[PathJob(f) for f in files[:6]],
        Prepared(skipped),
        *[PathJob(f) for f in files[6:]],
    ]
    with runner(timeout=0.6, processes=2) as pool:
        reports = list(pool.scan(jobs))
    assert [r.path for r in reports] == ["stuck.bin", *files[:6], "fifo", *files[6:]]
    verdicts = [r.verdict for r in reports if r.path in files]
    assert verdicts == [Verdict.CLEAN, Verdict.MALICIOUS] * 6


def test_workers_are_recycled_after_their_task_count(tmp_path: Path) -> None:
    jobs = [BytesJob(CSV_DDE, f"{n}.csv") for n in range(5)]
    with IsolatedScanner(config(), max_tasks_per_worker=2) as pool:
        reports = list(pool.scan(jobs))
        assert pool.workers_started == 3
        assert pool.workers_killed == 0
    assert [r.verdict for r in reports] == [Verdict.MALICIOUS] * 5


def test_spawn_start_method_works_too() -> None:
    with IsolatedScanner(config(timeout=30.0), start_method="spawn") as pool:
        report = pool.scan_one(BytesJob(CSV_DDE, "a.csv"))
    assert report.verdict is Verdict.MALICIOUS


def test_unreadable_path_is_one_error_report(tmp_path: Path) -> None:
    with IsolatedScanner(config()) as pool:
        report = pool.scan_one(PathJob(str(tmp_path / "missing.docx")))
    assert report.verdict is Verdict.ERROR
    assert kinds(report) == ["malformed"]


def test_in_process_runner_gives_the_same_reports(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(CSV_DDE)
    jobs = [PathJob(str(path)), BytesJob(b"a,b\n", "b.csv")]
    with InProcessScanner(config()) as local, IsolatedScanner(config()) as isolated:
        here = [(r.path, r.verdict, r.findings) for r in local.scan(jobs)]
        there = [(r.path, r.verdict, r.findings) for r in isolated.scan(jobs)]
    assert here == there


@pytest.mark.skipif(sys.platform != "linux", reason="the command forks its workers on Linux")
def test_forked_workers_keep_the_hard_time_limit_and_the_memory_cap() -> None:
    """The command starts its workers with a plain fork (no fork server to start first): a
    worker stuck in C code is still killed at the hard limit, a memory hog still capped."""
    assert cli._worker_start_method() == "fork"
    jobs = [BytesJob(bad.C_LOOP, "stuck.bin"), BytesJob(bad.HOG, "hog.bin")]
    jobs.append(BytesJob(CSV_DDE, "next.csv"))
    pool = IsolatedScanner(
        config(timeout=3.0, memory=300 * 1024 * 1024),
        initializer=bad.install_test_handlers,
        start_method="fork",
    )
    with pool:
        stuck, hog, following = list(pool.scan(jobs))
        killed = pool.workers_killed
    assert kinds(stuck) == ["timeout"]
    assert "hard time limit of 3 s" in stuck.problems[0].message
    assert 3.0 <= stuck.duration_ms / 1000 < 6.0
    assert kinds(hog) == ["limit"]
    assert "out of memory" in hog.problems[0].message
    assert following.verdict is Verdict.MALICIOUS
    assert following.findings[0].process.command_line == "cmd /c calc.exe"
    assert killed == 1


class TestCli:
    def run(self, *args: str) -> tuple[int, list[dict[str, object]]]:
        result = CliRunner().invoke(cli.main, ["scan", "--format", "jsonl", *args])
        return result.exit_code, [json.loads(line) for line in result.stdout.splitlines()]

    def test_jobs_keep_order_and_match_in_process(self) -> None:
        folder = str(REPO / "corpus" / "samples" / "csv")
        code, isolated = self.run("--jobs", "2", folder)
        local_code, local = self.run("--no-isolation", folder)
        assert code == local_code == 1
        strip = [
            {k: v for k, v in r.items() if k not in ("duration_ms", "event")} for r in isolated
        ]
        assert strip == [
            {k: v for k, v in r.items() if k not in ("duration_ms", "event")} for r in local
        ]
        assert len(isolated) == len(list((REPO / "corpus" / "samples" / "csv").iterdir()))

    def test_hard_timeout_is_an_error_exit_unless_something_is_found(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(
            cli,
            "IsolatedScanner",
            functools.partial(IsolatedScanner, initializer=bad.install_test_handlers),
        )
        (tmp_path / "a-stuck.bin").write_bytes(bad.REGEX)
        (tmp_path / "b-clean.csv").write_bytes(b"a,b\n")
        code, reports = self.run("--timeout", "0.6", str(tmp_path))
        assert code == 2
        assert [r["verdict"] for r in reports] == ["error", "clean"]
        assert reports[0]["errors"][0]["kind"] == "timeout"
        (tmp_path / "c-mal.csv").write_bytes(CSV_DDE)
        code, reports = self.run("--timeout", "0.6", "--jobs", "2", str(tmp_path))
        assert code == 1
        assert [r["verdict"] for r in reports] == ["error", "clean", "malicious"]

    def test_jobs_with_no_isolation_is_a_usage_error(self, tmp_path: Path) -> None:
        result = CliRunner().invoke(
            cli.main, ["scan", "--no-isolation", "--jobs", "2", str(tmp_path)]
        )
        assert result.exit_code == 2
        assert "--no-isolation" in result.output


def test_an_abandoned_scan_leaves_nothing_behind_for_the_next() -> None:
    with runner(timeout=30.0, processes=2) as pool:
        reports = pool.scan([BytesJob(CSV_DDE, "1.csv"), BytesJob(bad.REGEX, "stuck.bin")])
        assert next(reports).path == "1.csv"
        started = time.monotonic()
        reports.close()  # the stuck input is still in a worker's hands: killed, not waited for
        report = pool.scan_one(BytesJob(b"a,b\n", "next.csv"))
        assert time.monotonic() - started < 5.0
    assert (report.path, report.verdict) == ("next.csv", Verdict.CLEAN)
