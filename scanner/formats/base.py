"""What a container or document format module provides, and what it may use while scanning."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from scanner.errors import LimitExceeded, ScanError, ScanTimeout
from scanner.model import (
    Confidence,
    EmbeddedDocument,
    FileFormat,
    Finding,
    HostApplication,
    Location,
    ScanConfig,
)
from scanner.streams import DecodedStream


@dataclass(frozen=True)
class PartScan:
    """A piece of work inside a document that may fail on its own.

    A package yields one per part so that one malformed part costs only that part: the
    walker runs `run` inside its error handling and records a problem at `location` if
    it raises, then carries on with the rest.
    """

    location: Location
    run: Callable[[], Iterable[ScanItem]]


ScanItem = Finding | EmbeddedDocument | PartScan | DecodedStream


def raising(error: ScanError) -> Iterator[ScanItem]:
    """A PartScan's run for a part already known to be damaged: it raises `error` when the
    walker runs it, so the problem is recorded at the part's location."""
    raise error
    yield  # pragma: no cover


class ByteBudget:
    """Decompressed bytes spent for one top-level input, shared by every nested layer."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.spent = 0

    def spend(self, amount: int, what: str) -> None:
        self.spent += amount
        if self.spent > self.limit:
            raise LimitExceeded(
                f"total decompressed size limit of {self.limit} bytes reached at {what}"
            )


@dataclass(frozen=True)
class ScanContext:
    """Read-only facts a format module needs while scanning one document."""

    config: ScanConfig
    location: Location
    host: HostApplication | None
    depth: int
    deadline: float
    budget: ByteBudget
    # Candidate passwords found around this document (see EmbeddedDocument.passwords), to be
    # tried after ScanConfig.passwords.
    passwords: tuple[str, ...] = ()

    def check_time(self) -> None:
        """Cooperative deadline check; raises ScanTimeout (not catchable as Exception)."""
        if time.monotonic() > self.deadline:
            raise ScanTimeout(
                f"time limit of {self.config.limits.timeout_seconds:g} s per file reached"
            )


class FormatHandler(Protocol):
    """One document or container format.

    `identify` looks at content only (the name is a tie-breaker hint, never proof) and
    must be cheap: it runs for every input against every format in registry order.
    `scan` yields findings, embedded documents for the walker to recurse into, and
    PartScans; it raises scanner.errors types for input it cannot read.
    """

    format: FileFormat

    def identify(self, data: bytes, name: str) -> Confidence: ...

    def scan(self, data: bytes, ctx: ScanContext) -> Iterator[ScanItem]: ...
