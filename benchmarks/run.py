"""The issue-8 benchmark: ddescan against oletools, side by side in one process, on one corpus.

Run: python benchmarks/run.py [--quick] [--json OUT]

Corpus: the small typical documents of corpus/samples (used in place) and the generated large
files of benchmarks/generate_corpus.py (1, 10 and 100 MB per format; --quick skips 100 MB),
generated into benchmarks/corpus/ when missing. Both tools run in this one process, from a
warm page cache, start-up excluded:

- ddescan: scanner.scan_bytes(data, name) with the default configuration (YARA stage included);
  the file is read into memory before the clock starts.
- oletools: msodde.process_maybe_encrypted(path) with the blacklist field filter (as its command
  line); on RTF files also oletools.rtfobj (RtfObjParser over the file's bytes), the tool that
  finds RTF objects such as Equation Editor ones. Its time on RTF is the sum of the two.

Per format and size class: files/s and MB/s per core (one thread: bytes over the sum of the
per-file median wall times), p50/p99 time per file, peak memory, detection on each file, and
the ddescan/oletools ratio. Peak memory is the tracemalloc peak of Python allocations in one
extra, untimed call per file and tool (--no-memory skips it); ddescan is handed bytes already
in memory, so its figure excludes the input, while msodde reads the file itself, so its figure
includes one copy of it; allocations inside C libraries outside Python's allocator are unseen.
For OOXML, the baseline is the time zipfile takes to inflate every XML part (the parts a
scanner must parse). Also: CLI start-up to first result (python -m scanner scan
--no-isolation --format jsonl SMALL_FILE, wall time to the first output line, median of 5
after one warm-up run) and the in-process time of a small document.

Writes benchmarks/results/run.json and prints a table. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import logging
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import generate_corpus  # noqa: E402
from oletools import msodde, rtfobj  # noqa: E402

from scanner import scan_bytes  # noqa: E402
from scanner.model import Verdict  # noqa: E402

MB = 1024 * 1024
SMALL_DOCUMENT = ROOT / "corpus" / "samples" / "word" / "ddeauto-cmd.docx"
FORMATS = {
    ".docx": "docx", ".docm": "docx", ".dotx": "docx", ".dotm": "docx",
    ".xlsx": "xlsx", ".xlsm": "xlsx", ".xltx": "xlsx", ".xltm": "xlsx",
    ".rtf": "rtf", ".csv": "csv", ".doc": "doc",
}  # fmt: skip
# Budget guard (the full run must stay near 10 minutes): oletools' RTF parsing grows faster
# than linearly (about 5 s at 10 MB here), so the 100 MB file of a format is not run for
# oletools when its 10 MB run took longer than this; the result lists what was skipped.
SKIP_LARGER_AFTER_S = 4.0


@dataclass
class Run:
    seconds: list[float] = field(default_factory=list)
    peak_py: int = 0
    peak_rss_growth_mb: float | None = None
    detected: bool = False
    error: bool = False
    detail: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else math.nan


def traced_peak(call: Callable[[], tuple[bool, bool, str]]) -> int:
    """Peak of Python allocations during one extra, untimed call (tracemalloc slows it)."""
    gc.collect()
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def ddescan_call(data: bytes, name: str) -> Callable[[], tuple[bool, bool, str]]:
    def call() -> tuple[bool, bool, str]:
        report = scan_bytes(data, name)
        found = report.verdict in (Verdict.MALICIOUS, Verdict.SUSPICIOUS)
        return found, report.verdict is Verdict.ERROR, report.verdict.value

    return call


def oletools_call(path: Path, is_rtf: bool) -> Callable[[], tuple[bool, bool, str]]:
    def call() -> tuple[bool, bool, str]:
        sink = io.StringIO()
        text, failed, objects = "", False, 0
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            try:
                text = msodde.process_maybe_encrypted(
                    str(path), field_filter_mode=msodde.FIELD_FILTER_BLACKLIST
                )
            except Exception:  # msodde raises on what it cannot parse: count it, go on
                failed = True
            if is_rtf:
                try:
                    parser = rtfobj.RtfObjParser(path.read_bytes())
                    parser.parse()
                    objects = len(parser.objects)
                except Exception:  # as above, for rtfobj
                    failed = True
        found = bool((text or "").strip())
        return found, failed, f"fields={found} rtf_objects={objects}" if is_rtf else ""

    return call


def run_tool(call: Callable[[], tuple[bool, bool, str]], repeat: int, memory: bool) -> Run:
    run = Run()
    if memory:
        run.peak_py = traced_peak(call)
    for _ in range(repeat):
        started = time.perf_counter()
        found, error, detail = call()
        run.seconds.append(time.perf_counter() - started)
        run.detected, run.error, run.detail = found, error, detail
    return run


def rss_growth(tool: str, path: Path) -> float | None:
    """Peak resident growth of one scan in a fresh interpreter (benchmarks/rss_probe.py)."""
    probe = ROOT / "benchmarks" / "rss_probe.py"
    done = subprocess.run(
        [sys.executable, str(probe), tool, str(path)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0 or not done.stdout.strip():
        return None
    return float(json.loads(done.stdout.splitlines()[-1])["peak_rss_growth_mb"])


def inflate_seconds(data: bytes, repeat: int) -> float:
    def inflate() -> None:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            for info in package.infolist():
                if info.filename.endswith((".xml", ".rels")):
                    package.read(info)

    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        inflate()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


def cli_startup(path: Path, repeat: int = 5) -> dict[str, Any]:
    command = [sys.executable, "-m", "scanner", "scan", "--no-isolation", "--format", "jsonl"]
    first_line: list[float] = []
    whole: list[float] = []
    for index in range(repeat + 1):
        started = time.perf_counter()
        with subprocess.Popen(
            [*command, str(path)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        ) as process:
            assert process.stdout is not None
            process.stdout.readline()
            to_first = time.perf_counter() - started
            process.stdout.read()
            process.wait()
        total = time.perf_counter() - started
        if index:  # the first run warms the page cache and the bytecode cache
            first_line.append(to_first)
            whole.append(total)
    return {
        "command": " ".join([*command[1:], str(path.relative_to(ROOT))]),
        "first_result_ms_median": round(statistics.median(first_line) * 1000, 1),
        "process_ms_median": round(statistics.median(whole) * 1000, 1),
        "runs_ms": [round(t * 1000, 1) for t in first_line],
    }


def small_document(path: Path, repeat: int = 50) -> dict[str, Any]:
    data = path.read_bytes()
    for _ in range(3):
        scan_bytes(data, path.name)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        scan_bytes(data, path.name)
        times.append(time.perf_counter() - started)
    return {
        "file": str(path.relative_to(ROOT)),
        "bytes": len(data),
        "median_ms": round(statistics.median(times) * 1000, 3),
        "p99_ms": round(percentile(times, 0.99) * 1000, 3),
    }


@dataclass
class Row:
    file: str
    format: str
    size_class: str
    bytes: int
    expected: str
    ddescan: Run
    oletools: Run | None
    inflate_s: float | None = None


def collect_small() -> list[tuple[Path, str]]:
    files = []
    for path in sorted((ROOT / "corpus" / "samples").rglob("*")):
        if path.is_file() and path.suffix.lower() != ".zip":
            files.append((path, FORMATS.get(path.suffix.lower(), "other")))
    return files


def summarise(rows: list[Row], tool: str) -> dict[str, Any]:
    runs = [(r, getattr(r, tool)) for r in rows if getattr(r, tool) is not None]
    runs = [(r, run) for r, run in runs if run.seconds]
    if not runs:
        return {}
    seconds = sum(run.median for _, run in runs)
    size = sum(r.bytes for r, _ in runs)
    medians = [run.median for _, run in runs]
    return {
        "files": len(runs),
        "mb": round(size / MB, 3),
        "seconds": round(seconds, 4),
        "files_per_s": round(len(runs) / seconds, 1) if seconds else None,
        "mb_per_s": round(size / MB / seconds, 2) if seconds else None,
        "p50_ms": round(percentile(medians, 0.5) * 1000, 2),
        "p99_ms": round(percentile(medians, 0.99) * 1000, 2),
        "peak_py_mb": round(max(run.peak_py for _, run in runs) / MB, 1),
        "peak_rss_growth_mb": max(
            (run.peak_rss_growth_mb for _, run in runs if run.peak_rss_growth_mb is not None),
            default=None,
        ),
        "detected": sum(run.detected for _, run in runs),
        "errors": sum(run.error for _, run in runs),
    }


def group_table(rows: list[Row]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        groups.setdefault((row.format, row.size_class), []).append(row)
    order = {"small": 0, "1mb": 1, "10mb": 2, "100mb": 3}
    table = []
    keys = sorted(groups, key=lambda g: (g[0], order[g[1]]))
    for fmt, size_class in keys:
        members = groups[(fmt, size_class)]
        ours = summarise(members, "ddescan")
        both = [r for r in members if r.oletools is not None and r.oletools.seconds]
        theirs = summarise(both, "oletools")
        ours_same = summarise(both, "ddescan")
        ratio = (
            round(theirs["seconds"] / ours_same["seconds"], 2)
            if theirs and ours_same.get("seconds")
            else None
        )
        entry: dict[str, Any] = {
            "format": fmt,
            "size_class": size_class,
            "ddescan": ours,
            "oletools": theirs,
            "speedup_ddescan_over_oletools": ratio,
            "skipped_oletools": [r.file for r in members if r not in both],
        }
        inflates = [r for r in members if r.inflate_s]
        if inflates:
            inflate = sum(r.inflate_s or 0.0 for r in inflates)
            scan = sum(r.ddescan.median for r in inflates)
            entry["ooxml_inflate_seconds"] = round(inflate, 4)
            entry["ddescan_over_inflate"] = round(scan / inflate, 2)
        table.append(entry)
    return table


def growth(rows: list[Row]) -> list[dict[str, Any]]:
    """Per format and tool: time and memory at each size, and the exponent of time in size."""
    out = []
    large = [r for r in rows if r.size_class != "small"]
    for fmt in sorted({r.format for r in large}):
        for tool in ("ddescan", "oletools"):
            points = [
                (r.bytes, getattr(r, tool))
                for r in large
                if r.format == fmt and getattr(r, tool) is not None and getattr(r, tool).seconds
            ]
            points.sort(key=lambda p: p[0])
            if not points:
                continue
            entry: dict[str, Any] = {
                "format": fmt,
                "tool": tool,
                "points": [
                    {
                        "mb": round(size / MB, 2),
                        "seconds": round(run.median, 4),
                        "peak_py_mb": round(run.peak_py / MB, 1),
                        "peak_rss_growth_mb": run.peak_rss_growth_mb,
                    }
                    for size, run in points
                ],
            }
            if len(points) > 1:
                (s0, r0), (s1, r1) = points[0], points[-1]
                entry["time_ratio_largest_over_smallest"] = round(r1.median / r0.median, 1)
                entry["size_ratio"] = round(s1 / s0, 1)
                entry["time_exponent"] = round(
                    math.log(r1.median / r0.median) / math.log(s1 / s0), 2
                )
                entry["memory_ratio_largest_over_smallest"] = (
                    round(r1.peak_py / r0.peak_py, 1) if r0.peak_py else None
                )
            out.append(entry)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 100 MB files")
    parser.add_argument("--no-memory", action="store_true", help="skip the tracemalloc runs")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "run.json")
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)
    msodde.logger.setLevel(logging.CRITICAL + 1)
    memory = not args.no_memory
    started_all = time.perf_counter()

    sizes = generate_corpus.QUICK_SIZES_MB if args.quick else generate_corpus.SIZES_MB
    manifest = generate_corpus.generate(generate_corpus.DEFAULT_OUT, sizes)
    scan_bytes(SMALL_DOCUMENT.read_bytes(), SMALL_DOCUMENT.name)  # load rules and modules first

    rows: list[Row] = []
    for path, fmt in collect_small():
        data = path.read_bytes()
        ours = run_tool(ddescan_call(data, path.name), 5, memory)
        theirs = run_tool(oletools_call(path, fmt == "rtf"), 5, memory)
        rows.append(Row(str(path.relative_to(ROOT)), fmt, "small", len(data), "", ours, theirs))
    print(f"small corpus: {len(rows)} files", file=sys.stderr)

    slow: set[tuple[str, str]] = set()  # (format, tool) too slow to run at the next size
    entries = [e for e in manifest["files"] if e["nominal_mb"] in sizes]  # type: ignore[index]
    entries.sort(key=lambda e: (e["nominal_mb"], e["format"]))
    for entry in entries:
        path = generate_corpus.DEFAULT_OUT / entry["file"]
        fmt = entry["format"]
        data = path.read_bytes()
        repeat = 3 if entry["nominal_mb"] == 1 else 1
        ours = run_tool(ddescan_call(data, path.name), repeat, memory)
        theirs = None
        if (fmt, "oletools") not in slow:
            theirs = run_tool(oletools_call(path, fmt == "rtf"), repeat, memory)
            if theirs.median > SKIP_LARGER_AFTER_S:
                slow.add((fmt, "oletools"))
        inflate = inflate_seconds(data, repeat) if fmt in ("docx", "xlsx") else None
        if memory:
            ours.peak_rss_growth_mb = rss_growth("ddescan", path)
            if theirs is not None:
                theirs.peak_rss_growth_mb = rss_growth("oletools", path)
        rows.append(
            Row(
                entry["file"],
                fmt,
                f"{entry['nominal_mb']}mb",
                len(data),
                entry["expected"],
                ours,
                theirs,
                inflate,
            )
        )
        print(
            f"{entry['file']}: ddescan {ours.median:.3f} s"
            + (f", oletools {theirs.median:.3f} s" if theirs else ", oletools skipped"),
            file=sys.stderr,
        )
        del data

    table = group_table(rows)
    small_rows = [r for r in rows if r.size_class == "small"]
    mixed = {
        "small_corpus": {
            "ddescan": summarise(small_rows, "ddescan"),
            "oletools": summarise(small_rows, "oletools"),
        },
        "all_files_run_by_both": {
            "ddescan": summarise([r for r in rows if r.oletools and r.oletools.seconds], "ddescan"),
            "oletools": summarise(rows, "oletools"),
        },
    }
    for scope in mixed.values():
        ours_s, theirs_s = scope["ddescan"]["seconds"], scope["oletools"]["seconds"]
        scope["throughput_ratio_ddescan_over_oletools"] = round(theirs_s / ours_s, 2)
    startup = cli_startup(SMALL_DOCUMENT)
    small_doc = small_document(SMALL_DOCUMENT)
    result = {
        "benchmark": "issue-8",
        "date": time.strftime("%Y-%m-%d"),
        "machine": (
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        ),
        "quick": args.quick,
        "memory_measure": (
            "tracemalloc peak of Python allocations in one extra untimed call per file and "
            "tool; ddescan's excludes its input bytes, msodde's includes its own read of the "
            "file; allocations in C libraries outside Python's allocator are not seen. For "
            "the large files also peak_rss_growth_mb: the kernel's peak resident size of a "
            "fresh interpreter scanning the file once, minus its size before the scan "
            "(benchmarks/rss_probe.py; input bytes included for both tools)"
            if memory
            else "not measured (--no-memory)"
        ),
        "not_reachable": manifest["not_reachable"],
        "mixed": mixed,
        "by_format": table,
        "growth": growth(rows),
        "cli_startup": startup,
        "small_document_in_process": small_doc,
        "files": [
            {
                "file": r.file,
                "format": r.format,
                "size_class": r.size_class,
                "bytes": r.bytes,
                "ddescan": asdict(r.ddescan) | {"median": round(r.ddescan.median, 5)},
                "oletools": (
                    asdict(r.oletools) | {"median": round(r.oletools.median, 5)}
                    if r.oletools
                    else None
                ),
                "inflate_seconds": r.inflate_s,
            }
            for r in rows
        ],
        "total_run_seconds": round(time.perf_counter() - started_all, 1),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    return 0


def print_table(result: dict[str, Any]) -> None:
    head = (
        f"{'format':<6} {'size':<6} {'n':>3}  {'ddescan MB/s':>12} {'oletools MB/s':>13} "
        f"{'speedup':>8}  {'p50/p99 ms (ours)':>18} {'p50/p99 ms (theirs)':>20}  "
        f"{'peak MB ours/theirs':>19}  {'RSS+ MB ours/theirs':>19}  {'found ours/theirs':>17}"
    )
    print(head)
    for e in result["by_format"]:
        ours, theirs = e["ddescan"], e["oletools"] or {}
        speed = e["speedup_ddescan_over_oletools"]
        print(
            f"{e['format']:<6} {e['size_class']:<6} {ours['files']:>3}  {ours['mb_per_s']:>12} "
            f"{theirs.get('mb_per_s', '-')!s:>13} {'-' if speed is None else f'{speed}x':>8}  "
            f"{ours['p50_ms']:>8}/{ours['p99_ms']:<9} "
            f"{theirs.get('p50_ms', '-')!s:>10}/{theirs.get('p99_ms', '-')!s:<9}  "
            f"{ours['peak_py_mb']:>9}/{theirs.get('peak_py_mb', '-')!s:<9}  "
            f"{ours.get('peak_rss_growth_mb') or '-'!s:>9}/"
            f"{theirs.get('peak_rss_growth_mb') or '-'!s:<9}  "
            f"{ours['detected']:>8}/{theirs.get('detected', '-')!s:<8}"
            + (f"  inflate x{e['ddescan_over_inflate']}" if "ddescan_over_inflate" in e else "")
        )
    print()
    for name, scope in result["mixed"].items():
        print(
            f"mixed ({name}): ddescan {scope['ddescan']['files_per_s']} files/s "
            f"{scope['ddescan']['mb_per_s']} MB/s, oletools {scope['oletools']['files_per_s']} "
            f"files/s {scope['oletools']['mb_per_s']} MB/s, throughput ratio "
            f"{scope['throughput_ratio_ddescan_over_oletools']}x; flagged "
            f"{scope['ddescan']['detected']} vs {scope['oletools']['detected']}"
        )
    for g in result["growth"]:
        if "time_exponent" in g:
            print(
                f"growth {g['format']:<5} {g['tool']:<8}: "
                f"time x{g['time_ratio_largest_over_smallest']}"
                f" for size x{g['size_ratio']} (exponent {g['time_exponent']}), memory x"
                f"{g['memory_ratio_largest_over_smallest']}"
            )
    print(f"CLI start-up to first result: {result['cli_startup']['first_result_ms_median']} ms")
    print(f"small document in-process: {result['small_document_in_process']['median_ms']} ms")
    print(f"total run: {result['total_run_seconds']} s")


if __name__ == "__main__":
    raise SystemExit(main())
