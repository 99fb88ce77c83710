"""Side-by-side throughput and detection of ddescan and oletools' msodde on the same files.

Run: python benchmarks/bench_vs_msodde.py [--repeat N] [--json OUT] [PATH ...]

Both tools run in this one process, on the same files, from memory-warm page cache; start-up
is excluded. msodde is called the way its own command line calls it
(process_maybe_encrypted with the default blacklist field filter). Files: the bundled corpus
and, when present, oletools' own msodde test files in ../shared/peers/oletools/msodde.
Not part of the test suite: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from oletools import msodde  # noqa: E402

from scanner import scan_bytes  # noqa: E402
from scanner.model import Verdict  # noqa: E402

DEFAULT_PATHS = [
    ROOT / "corpus" / "samples",
    ROOT.parent / "shared" / "peers" / "oletools" / "msodde",
]


def collect(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(p for p in sorted(path.rglob("*")) if p.is_file())
        elif path.is_file():
            files.append(path)
    return [f for f in files if f.suffix.lower() != ".zip"]


def run_msodde(path: Path) -> tuple[float, bool, bool]:
    sink = io.StringIO()
    started = time.perf_counter()
    failed = False
    text = ""
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        try:
            text = msodde.process_maybe_encrypted(
                str(path), field_filter_mode=msodde.FIELD_FILTER_BLACKLIST
            )
        except Exception:  # msodde raises on what it cannot parse; count, do not stop
            failed = True
    elapsed = time.perf_counter() - started
    return elapsed, bool((text or "").strip()), failed


def run_ddescan(data: bytes, name: str) -> tuple[float, bool, bool]:
    started = time.perf_counter()
    report = scan_bytes(data, name)
    elapsed = time.perf_counter() - started
    found = report.verdict in (Verdict.MALICIOUS, Verdict.SUSPICIOUS)
    return elapsed, found, report.verdict is Verdict.ERROR


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--json", type=Path, default=ROOT / "benchmarks" / "results" / "vs_msodde.json"
    )
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)
    msodde.logger.setLevel(logging.CRITICAL + 1)
    files = collect(args.paths or DEFAULT_PATHS)
    rows = []
    totals = {"ddescan": 0.0, "msodde": 0.0}
    total_bytes = 0
    for path in files:
        data = path.read_bytes()
        total_bytes += len(data)
        ours = [run_ddescan(data, path.name) for _ in range(args.repeat)]
        theirs = [run_msodde(path) for _ in range(args.repeat)]
        our_time = statistics.median(t for t, _, _ in ours)
        their_time = statistics.median(t for t, _, _ in theirs)
        totals["ddescan"] += our_time
        totals["msodde"] += their_time
        rows.append(
            {
                "file": str(path.relative_to(path.parents[1])),
                "bytes": len(data),
                "ddescan_ms": round(our_time * 1000, 3),
                "msodde_ms": round(their_time * 1000, 3),
                "ddescan_found": ours[0][1],
                "msodde_found": theirs[0][1],
                "ddescan_error": ours[0][2],
                "msodde_error": theirs[0][2],
            }
        )
    ratio = totals["msodde"] / totals["ddescan"] if totals["ddescan"] else float("nan")
    found_ours = sum(r["ddescan_found"] for r in rows)
    found_theirs = sum(r["msodde_found"] for r in rows)
    only_ours = [r["file"] for r in rows if r["ddescan_found"] and not r["msodde_found"]]
    only_theirs = [r["file"] for r in rows if r["msodde_found"] and not r["ddescan_found"]]
    summary = {
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        ),
        "date": time.strftime("%Y-%m-%d"),
        "files": len(rows),
        "megabytes": round(total_bytes / 1e6, 3),
        "repeat": args.repeat,
        "ddescan_seconds": round(totals["ddescan"], 4),
        "msodde_seconds": round(totals["msodde"], 4),
        "throughput_ratio_ddescan_over_msodde": round(ratio, 2),
        "ddescan_files_per_s": round(len(rows) / totals["ddescan"], 1)
        if totals["ddescan"]
        else None,
        "msodde_files_per_s": round(len(rows) / totals["msodde"], 1) if totals["msodde"] else None,
        "files_flagged_ddescan": found_ours,
        "files_flagged_msodde": found_theirs,
        "flagged_only_by_ddescan": only_ours,
        "flagged_only_by_msodde": only_theirs,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"summary": summary, "files": rows}, indent=2) + "\n")
    width = max((len(r["file"]) for r in rows), default=10)
    print(f"{'file':<{width}}  {'ddescan ms':>10}  {'msodde ms':>10}  ours  theirs")
    for r in rows:
        print(
            f"{r['file']:<{width}}  {r['ddescan_ms']:>10.2f}  {r['msodde_ms']:>10.2f}  "
            f"{'DDE' if r['ddescan_found'] else '-':>4}  {'DDE' if r['msodde_found'] else '-':>6}"
        )
    print()
    for key, value in summary.items():
        print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
