"""Peak resident memory of one scan, in a fresh interpreter (run by run.py, not by hand).

tracemalloc sees only Python's allocator; lxml trees, zlib buffers and YARA's scratch space
live outside it. This probe reports the kernel's peak resident set size (VmHWM) of a process
that imports the tool, notes its resident size, then scans one file: the growth is what the
scan itself needed, the input bytes included for both tools. (Not ru_maxrss: Linux carries
it over from the parent across exec, so it would report the benchmark runner's own peak.)

    python benchmarks/rss_probe.py ddescan|oletools PATH   ->  prints one JSON line
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def status_kb(field: str) -> int:
    """A size from /proc/self/status (VmRSS: now, VmHWM: peak), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def main() -> int:
    tool, path = sys.argv[1], Path(sys.argv[2])
    logging.disable(logging.CRITICAL)
    if tool == "ddescan":
        from scanner.api import scan_bytes

        scan_bytes(b"{\\rtf1 warm-up}", "warm.rtf")  # rules and lazy modules loaded first

        def call() -> None:
            scan_bytes(path.read_bytes(), path.name)

    else:
        from oletools import msodde, rtfobj

        msodde.logger.setLevel(logging.CRITICAL + 1)

        def call() -> None:
            sink = io.StringIO()
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                with contextlib.suppress(Exception):
                    msodde.process_maybe_encrypted(
                        str(path), field_filter_mode=msodde.FIELD_FILTER_BLACKLIST
                    )
                if path.suffix.lower() == ".rtf":
                    with contextlib.suppress(Exception):
                        rtfobj.RtfObjParser(path.read_bytes()).parse()

    before = status_kb("VmRSS")
    call()
    peak = status_kb("VmHWM")
    print(
        json.dumps(
            {
                "tool": tool,
                "file": path.name,
                "peak_rss_growth_mb": round(max(peak - before, 0) / 1024, 1),
                "peak_rss_mb": round(peak / 1024, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
