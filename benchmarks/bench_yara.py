"""Cost of the YARA stage: seconds per MB of matched data, and its share of the scan time.

Run: python benchmarks/bench_yara.py [--repeat N] [--size-mb M] [--json OUT]

Inputs: every corpus sample, and two generated large files (a .docx whose document part
inflates to about M MB with one DDE field at the end, and a CSV of about M MB with one DDE
formula), built in memory. Each input is scanned with the YARA stage on (timing the stage by
wrapping scanner.walker.yara_stage) and off; the report gives, per group, the bytes the stage
matched (collected streams plus finding evidence), its time, its cost per MB and its share of
the total scan time. Not part of the test suite: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import statistics
import sys
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yara  # noqa: E402

from scanner import walker  # noqa: E402
from scanner.model import FileFormat, Finding, Location, Problem, ScanConfig  # noqa: E402
from scanner.streams import DecodedStream  # noqa: E402
from scanner.walker import scan  # noqa: E402
from scanner.yara_stage import StageResult, load_rules  # noqa: E402

MB = 1024 * 1024


@dataclass
class Timing:
    stage_seconds: float = 0.0
    stage_bytes: int = 0


TIMING = Timing()
_REAL_STAGE = walker.yara_stage


def _timed_stage(
    streams: Sequence[DecodedStream],
    findings: Sequence[Finding],
    config: ScanConfig,
    deadline: float,
    top: Location,
    top_format: FileFormat = FileFormat.UNSUPPORTED,
    problems: Sequence[Problem] = (),
) -> StageResult:
    started = time.perf_counter()
    result = _REAL_STAGE(streams, findings, config, deadline, top, top_format, problems)
    TIMING.stage_seconds += time.perf_counter() - started
    evidence = sum(
        len(f.evidence.raw.encode()) + len(f.evidence.deobfuscated.encode()) for f in findings
    )
    TIMING.stage_bytes += sum(len(s.data) for s in streams) + evidence
    return result


def large_docx(size: int) -> bytes:
    # Varied text (a linear congruential sequence), so that the part deflates like prose
    # rather than like a compression bomb.
    words = ("net", "sales", "region", "quarter", "total", "margin", "cost", "forecast")
    paragraphs: list[str] = []
    state, length = 12345, 0
    while length < size:
        state = (state * 1103515245 + 12345) % 2**31
        text = " ".join(f"{words[(state >> s) % 8]}{(state >> s) % 997}" for s in range(0, 24, 3))
        paragraph = f"<w:p><w:r><w:t>{text}.</w:t></w:r></w:p>"
        paragraphs.append(paragraph)
        length += len(paragraph)
    field = (
        '<w:p><w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText xml:space='
        '"preserve"> DDEAUTO c:\\\\windows\\\\system32\\\\cmd.exe "/k calc.exe" </w:instrText>'
        '</w:r><w:r><w:fldChar w:fldCharType="end"/></w:r></w:p>'
    )
    document = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        "<w:body>" + "".join(paragraphs) + field + "</w:body></w:document>"
    )
    content_types = (
        '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
        'package/2006/content-types"><Default Extension="rels" ContentType="application/'
        'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType='
        '"application/xml"/><Override PartName="/word/document.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
    )
    rels = (
        '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
        'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://'
        'schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
        'Target="word/document.xml"/></Relationships>'
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as package:
        package.writestr("[Content_Types].xml", content_types)
        package.writestr("_rels/.rels", rels)
        package.writestr("word/document.xml", document)
    return out.getvalue()


def large_csv(size: int) -> bytes:
    row = "2024-01-31,ACME Ltd,-1250.00,+44 20 7946 0000,@acme,paid\r\n"
    rows = max(1, size // len(row))
    return ("Date,Name,Amount,Phone,Handle,Note\r\n" + row * rows).encode() + (
        b"2024-02-01,x,=cmd|'/c calc.exe'!A0,,,\r\n"
    )


def measure(
    inputs: list[tuple[str, bytes]], repeat: int, on: ScanConfig, off: ScanConfig
) -> dict[str, Any]:
    totals_on: list[float] = []
    totals_off: list[float] = []
    stages: list[float] = []
    stage_bytes = 0
    verdicts = sorted({scan(data, name, on).verdict.value for name, data in inputs})
    for _ in range(repeat):
        TIMING.stage_seconds = 0.0
        TIMING.stage_bytes = 0
        started = time.perf_counter()
        for name, data in inputs:
            scan(data, name, on)
        totals_on.append(time.perf_counter() - started)
        stages.append(TIMING.stage_seconds)
        stage_bytes = TIMING.stage_bytes
        started = time.perf_counter()
        for name, data in inputs:
            scan(data, name, off)
        totals_off.append(time.perf_counter() - started)
    total_on = statistics.median(totals_on)
    stage = statistics.median(stages)
    input_bytes = sum(len(data) for _, data in inputs)
    return {
        "inputs": len(inputs),
        "verdicts": verdicts,
        "input_bytes": input_bytes,
        "stage_bytes": stage_bytes,
        "scan_seconds_with_yara": round(total_on, 4),
        "scan_seconds_without_yara": round(statistics.median(totals_off), 4),
        "stage_seconds": round(stage, 4),
        "stage_ms_per_mb_matched": round(stage * 1000 / max(stage_bytes / MB, 1e-9), 2),
        "stage_ms_per_mb_input": round(stage * 1000 / max(input_bytes / MB, 1e-9), 2),
        "stage_share_of_scan": round(stage / total_on, 3) if total_on else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--size-mb", type=int, default=16)
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "yara.json")
    args = parser.parse_args(argv)
    walker.yara_stage = _timed_stage  # type: ignore[assignment]
    load_rules(())  # compile outside the measurements: once per process, as in a real run
    corpus = [
        (path.relative_to(ROOT).as_posix(), path.read_bytes())
        for path in sorted((ROOT / "corpus" / "samples").rglob("*"))
        if path.is_file()
    ]
    size = args.size_mb * MB
    on, off = ScanConfig(), ScanConfig(yara_enabled=False)
    groups: dict[str, Callable[[], list[tuple[str, bytes]]]] = {
        "corpus": lambda: corpus,
        "large-docx": lambda: [("large.docx", large_docx(size))],
        "large-csv": lambda: [("large.csv", large_csv(size))],
    }
    results = {name: measure(build(), args.repeat, on, off) for name, build in groups.items()}
    document = {
        "benchmark": "yara-stage",
        "python": platform.python_version(),
        "yara": str(yara.__version__),
        "machine": platform.machine(),
        "repeat": args.repeat,
        "groups": results,
    }
    text = json.dumps(document, indent=2)
    print(text)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
