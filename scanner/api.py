"""The pure entry points: bytes or a path in, a ScanReport out. No printing, no writing."""

from __future__ import annotations

import os
from pathlib import Path

from scanner.model import (
    FileFormat,
    Location,
    Problem,
    ProblemKind,
    ScanConfig,
    ScanReport,
    Verdict,
)
from scanner.walker import scan


def scan_bytes(data: bytes, name: str = "<bytes>", config: ScanConfig | None = None) -> ScanReport:
    """Scan one document held in memory."""
    return scan(bytes(data), name, config or ScanConfig())


def scan_path(path: str | os.PathLike[str], config: ScanConfig | None = None) -> ScanReport:
    """Scan one file. An unreadable or oversized file gets an error report, never an exception."""
    config = config or ScanConfig()
    name = os.fspath(path)
    try:
        size = Path(name).stat().st_size
        if size > config.limits.max_input_bytes:
            return _error_report(
                name,
                size,
                ProblemKind.LIMIT,
                f"file of {size} bytes is over the limit of {config.limits.max_input_bytes} "
                "bytes; not inspected",
            )
        with open(name, "rb") as handle:
            data = handle.read(config.limits.max_input_bytes + 1)
    except OSError as error:
        return _error_report(
            name, 0, ProblemKind.MALFORMED, f"cannot read file: {error.strerror or error}"
        )
    return scan(data, name, config)


def _error_report(name: str, size: int, kind: ProblemKind, message: str) -> ScanReport:
    return ScanReport(
        path=name,
        size=size,
        sha256="",
        md5="",
        format=FileFormat.UNSUPPORTED,
        verdict=Verdict.ERROR,
        severity=None,
        findings=(),
        problems=(Problem(kind, message, Location((name,))),),
    )
