"""Test-only format handlers that misbehave on purpose, installed inside worker processes.

`install_test_handlers` is passed as `IsolatedScanner(initializer=...)`: the worker imports
this module by name (the tests folder is on sys.path in the workers too, as in the parent)
and puts `MisbehavingFormat` in front of the registry. Each input names its misbehaviour
by a prefix, so one worker can be given a mix of good and bad inputs.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
from collections.abc import Iterator

from scanner import walker
from scanner.analysis import dde_finding
from scanner.formats.base import ScanContext, ScanItem
from scanner.model import Confidence, DdeCall, Evidence, FileFormat, HostApplication, Technique

# Catastrophic backtracking: (a+)+ against a long run of a's that cannot match takes
# 2^n steps inside the C regex engine, which never returns to the interpreter.
_CATASTROPHIC = re.compile(rb"(a+)+b")

REGEX = b"%TEST-REGEX\n"
C_LOOP = b"%TEST-CLOOP\n"
HOG = b"%TEST-HOG\n"
KILL = b"%TEST-KILL\n"
EXIT = b"%TEST-EXIT\n"
SLOW = b"%TEST-SLOW\n"
PREFIXES = (REGEX, C_LOOP, HOG, KILL, EXIT, SLOW)


class MisbehavingFormat:
    format = FileFormat.UNSUPPORTED

    def identify(self, data: bytes, name: str) -> Confidence:
        return Confidence.YES if data.startswith(PREFIXES) else Confidence.NO

    def scan(self, data: bytes, ctx: ScanContext) -> Iterator[ScanItem]:
        if data.startswith(REGEX):
            _CATASTROPHIC.match(b"a" * 64)
        elif data.startswith(C_LOOP):
            # sum() over itertools.repeat runs entirely in C.
            sum(itertools.repeat(1, 10**15))
        elif data.startswith(HOG):
            hoard = []
            while True:
                hoard.append(bytearray(16 * 1024 * 1024))
        elif data.startswith(KILL):
            os.kill(os.getpid(), signal.SIGKILL)
        elif data.startswith(EXIT):
            os._exit(3)
        elif data.startswith(SLOW):
            # A finding first, then a loop that does check the deadline: the cooperative
            # timeout must end it with the finding kept.
            yield dde_finding(
                DdeCall("cmd", "/c calc.exe", "A0"),
                Technique.DDE_FORMULA,
                Evidence("=cmd|'/c calc.exe'!A0", "=cmd|'/c calc.exe'!A0"),
                ctx.location.at("A1"),
                HostApplication.EXCEL,
                ctx.config,
            )
            while True:
                ctx.check_time()


def install_test_handlers() -> None:
    walker.REGISTRY = (MisbehavingFormat(), *walker.REGISTRY)  # type: ignore[assignment]
