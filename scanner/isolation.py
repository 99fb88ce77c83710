"""Hard limits around the pure core: each input is scanned in a worker process.

The scan itself stops cooperatively (`ScanContext.check_time`), but a parser stuck inside
C code (a catastrophic regular expression, a decompressor, lxml) never returns to Python
to check its deadline, and a memory hog can take the whole host down. This adapter runs
`scanner.api.scan_path` / `scan_bytes` in a pool of worker processes and enforces what the
core cannot:

- a hard wall-clock limit per input (`ScanLimits.timeout_seconds`): a worker still busy at
  the limit is killed, the input gets a report with a `timeout` problem (verdict error) and
  a fresh worker takes the next input. The cooperative deadline handed to the scan is a bit
  shorter (`cooperative_timeout`), so that most slow inputs still end with partial results
  before the kill;
- a memory cap per worker (`ScanLimits.max_memory_bytes`, RLIMIT_AS set when the worker
  starts): an allocation past it raises MemoryError, which the walker reports as a `limit`
  problem; a worker that dies (killed by the kernel or by a crash in C code) gives its input
  a `limit` problem;
- exactly one report per input, in input order, whatever happens to the workers. An input
  that never reached a worker (the worker died before taking it) is handed to another one;
  an input that a worker took is never scanned twice.

Workers are started with the `forkserver` method where the platform has it: the fork server
imports the scanner once and every worker is a fork of it, which costs milliseconds, where
`spawn` starts a fresh interpreter and imports everything again (a few hundred milliseconds
per worker). The pool recycles a worker after `max_tasks_per_worker` inputs, so that
anything a parser leaks (memory fragmentation, caches) does not pile up.

The core stays pure: nothing here is imported by scanner.api or the parsers; the CLI (and a
mail gateway or batch runner) choose between `IsolatedScanner` and `InProcessScanner`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import multiprocessing
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.context import ForkContext, ForkServerContext, SpawnContext
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import Protocol

from scanner.api import scan_bytes, scan_path
from scanner.model import (
    FileFormat,
    Location,
    Problem,
    ProblemKind,
    ScanConfig,
    ScanReport,
    Verdict,
)


@dataclass(frozen=True)
class PathJob:
    """Scan the file at `path` (read by the worker, not by the caller)."""

    path: str


@dataclass(frozen=True)
class BytesJob:
    """Scan bytes already in memory (a mail attachment), reported under `name`."""

    data: bytes
    name: str = "<bytes>"


@dataclass(frozen=True)
class Prepared:
    """A report made without scanning (a skipped special file), kept in its place in the
    output order."""

    report: ScanReport


Job = PathJob | BytesJob | Prepared


@dataclass(frozen=True)
class ScanStats:
    """What one input cost: wall-clock seconds in the worker's hands, the worker's peak
    resident memory (bytes; 0 where unknown), and whether the worker had to be killed.

    The peak is the worker's high-water mark since it started, so it is per input only
    with `max_tasks_per_worker=1`; otherwise it bounds every input that worker took.
    """

    seconds: float = 0.0
    peak_rss_bytes: int = 0
    killed: bool = False


class IsolationError(RuntimeError):
    """The worker processes themselves cannot be run (not a problem with any input)."""


class Scanner(Protocol):
    """What the CLI needs from a runner: one report per job, in job order."""

    def scan(self, jobs: Iterable[Job]) -> Iterator[ScanReport]: ...

    def close(self) -> None: ...


def cooperative_timeout(hard: float) -> float:
    """The deadline the scan itself checks, for a hard limit of `hard` seconds.

    Shorter than the hard limit by a fifth, at most five seconds: enough for the walker to
    unwind, run the YARA stage on what it has and send the report back before the kill.
    """
    return max(hard * 0.8, hard - 5.0)


def default_start_method() -> str:
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


def failure_report(
    name: str, size: int, sha256: str, md5: str, kind: ProblemKind, message: str, seconds: float
) -> ScanReport:
    """The report of an input whose scan did not produce one (killed, crashed)."""
    return ScanReport(
        path=name,
        size=size,
        sha256=sha256,
        md5=md5,
        format=FileFormat.UNSUPPORTED,
        verdict=Verdict.ERROR,
        severity=None,
        findings=(),
        problems=(Problem(kind, message, Location((name,))),),
        duration_ms=round(seconds * 1000, 3),
    )


def _run(job: PathJob | BytesJob, config: ScanConfig) -> ScanReport:
    """One scan, in whichever process runs it. scan_path/scan_bytes report every problem
    with the input themselves; what reaches the handlers here is about the process."""
    started = time.monotonic()
    try:
        if isinstance(job, PathJob):
            return scan_path(job.path, config)
        return scan_bytes(job.data, job.name, config)
    except MemoryError:
        kind = ProblemKind.LIMIT
        message = f"memory limit of {config.limits.max_memory_bytes} bytes reached; not inspected"
    except Exception as error:  # a bug outside the walker's reach: still one report
        kind = ProblemKind.INTERNAL
        message = f"internal error ({type(error).__name__}: {error})"
    name, size, sha256, md5 = _hashes_of(job, config.limits.max_input_bytes)
    return failure_report(name, size, sha256, md5, kind, message, time.monotonic() - started)


def limit_memory(cap: int) -> None:
    """Cap this process's address space at `cap` bytes (never above an existing hard cap).

    RLIMIT_AS rather than RLIMIT_DATA: since Linux 4.7 RLIMIT_DATA also counts mmap, but
    RLIMIT_AS is the one every Unix enforces the same way, and it catches the large anonymous
    mappings that malloc uses for big buffers.
    """
    try:
        import resource
    except ImportError:  # not a Unix: the hard time limit still holds
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


_READY = "ready"


def _peak_rss() -> int:
    """This process's peak resident set size in bytes (0 where the platform does not say)."""
    try:
        import resource
    except ImportError:
        return 0
    # Linux reports ru_maxrss in KiB (macOS in bytes; scaled the Linux way here).
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def _peak_rss_of(pid: int | None) -> int:
    """Another process's peak resident set size (Linux /proc), read before killing it."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return 0
    return 0


def _worker_main(
    conn: Connection,
    config: ScanConfig,
    initializer: Callable[[], None] | None,
) -> None:
    # Ctrl-C reaches the whole process group; the parent decides what happens to workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    limit_memory(config.limits.max_memory_bytes)
    if initializer is not None:
        initializer()
    conn.send(_READY)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        index, job = message
        report = _run(job, config)
        try:
            conn.send((index, report, _peak_rss()))
        except MemoryError:
            # The report itself did not fit under the cap (a huge finding list): say so.
            name = report.path
            conn.send(
                (
                    index,
                    failure_report(
                        name,
                        report.size,
                        report.sha256,
                        report.md5,
                        ProblemKind.LIMIT,
                        "memory limit reached while sending the report",
                        report.duration_ms / 1000,
                    ),
                    _peak_rss(),
                )
            )
        except (BrokenPipeError, OSError):
            return


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    ready: bool = False
    tasks: int = 0
    task: tuple[int, PathJob | BytesJob] | None = None
    started: float = 0.0
    born: float = 0.0


def _hashes_of(job: PathJob | BytesJob, limit: int) -> tuple[str, int, str, str]:
    """Name, size and hashes for a failure report, computed here (hashing is safe)."""
    if isinstance(job, BytesJob):
        data = job.data
        return (
            job.name,
            len(data),
            hashlib.sha256(data).hexdigest(),
            hashlib.md5(data, usedforsecurity=False).hexdigest(),
        )
    sha256 = hashlib.sha256()
    md5 = hashlib.md5(usedforsecurity=False)
    try:
        size = os.stat(job.path).st_size
        if size > limit:
            return job.path, size, "", ""
        with open(job.path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                sha256.update(chunk)
                md5.update(chunk)
    except OSError:
        return job.path, 0, "", ""
    return job.path, size, sha256.hexdigest(), md5.hexdigest()


def _signal_name(exitcode: int | None) -> str:
    if exitcode is None:
        return "an unknown status"
    if exitcode < 0:
        try:
            return signal.Signals(-exitcode).name
        except ValueError:
            return f"signal {-exitcode}"
    return f"exit status {exitcode}"


class IsolatedScanner:
    """A pool of `processes` worker processes with a hard time limit and a memory cap.

    Use as a context manager (the workers are ended on exit):

        with IsolatedScanner(config, processes=2) as runner:
            for report in runner.scan(PathJob(p) for p in paths):
                ...

    `initializer` runs in each worker after the memory cap is set and before the first
    input: a top-level function (it is pickled by reference), meant for tests that install
    a format handler inside the workers. `max_tasks_per_worker` recycles workers.
    """

    def __init__(
        self,
        config: ScanConfig | None = None,
        processes: int = 1,
        *,
        max_tasks_per_worker: int = 100,
        start_method: str | None = None,
        initializer: Callable[[], None] | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        if processes < 1:
            raise ValueError("processes must be at least 1")
        if max_tasks_per_worker < 1:
            raise ValueError("max_tasks_per_worker must be at least 1")
        self.config = config or ScanConfig()
        self.processes = processes
        self.max_tasks_per_worker = max_tasks_per_worker
        self.hard_timeout = self.config.limits.timeout_seconds
        limits = dataclasses.replace(
            self.config.limits, timeout_seconds=cooperative_timeout(self.hard_timeout)
        )
        self.worker_config = dataclasses.replace(self.config, limits=limits)
        self.start_method = start_method or default_start_method()
        self.context: ForkServerContext | SpawnContext | ForkContext
        if self.start_method == "forkserver":
            server = multiprocessing.get_context("forkserver")
            # The fork server imports the scanner once; each worker is a cheap fork of it.
            server.set_forkserver_preload(["scanner.isolation"])
            self.context = server
        elif self.start_method == "spawn":
            self.context = multiprocessing.get_context("spawn")
        elif self.start_method == "fork":
            # Only for callers that know the parent holds no threads or locks.
            self.context = multiprocessing.get_context("fork")
        else:
            raise ValueError(f"unknown start method {self.start_method!r}")
        self.initializer = initializer
        self.startup_timeout = startup_timeout
        self.workers: list[_Worker] = []
        # Figures for the caller (a batch runner's log, the adversarial corpus test).
        self.workers_started = 0
        self.workers_killed = 0

    def __enter__(self) -> IsolatedScanner:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """End every worker: idle ones are asked to stop, busy or starting ones are killed."""
        for worker in self.workers:
            if worker.task is None and worker.ready:
                try:
                    worker.conn.send(None)
                except OSError:
                    worker.process.kill()
            else:
                worker.process.kill()
        deadline = time.monotonic() + 2.0
        for worker in self.workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(5.0)
            worker.conn.close()
        self.workers = []

    def scan_one(self, job: PathJob | BytesJob) -> ScanReport:
        return next(iter(self.scan([job])))

    def scan(self, jobs: Iterable[Job]) -> Iterator[ScanReport]:
        """One report per job, in the order of `jobs` (see `scan_with_stats`)."""
        for report, _ in self.scan_with_stats(jobs):
            yield report

    def scan_with_stats(self, jobs: Iterable[Job]) -> Iterator[tuple[ScanReport, ScanStats]]:
        """One report per job, in the order of `jobs`, as soon as each one's turn comes.

        Jobs are read ahead only a few per worker, so a long (or endless) iterable of jobs
        and a slow input at its head keep memory bounded.
        """
        source = enumerate(jobs)
        window = self.processes * 4
        queue: deque[tuple[int, PathJob | BytesJob]] = deque()
        done: dict[int, tuple[ScanReport, ScanStats]] = {}
        taken = 0
        emitted = 0
        exhausted = False
        try:
            while True:
                while not exhausted and taken < emitted + window:
                    item = next(source, None)
                    if item is None:
                        exhausted = True
                        break
                    index, job = item
                    taken = index + 1
                    if isinstance(job, Prepared):
                        done[index] = (job.report, ScanStats())
                    else:
                        queue.append((index, job))
                while emitted in done:
                    yield done.pop(emitted)
                    emitted += 1
                if queue or self._busy():
                    self._dispatch(queue)
                    self._collect(done)
                elif exhausted:
                    return
                # Otherwise everything taken so far is out: the window has room again.
        finally:
            # Abandoned part-way (the consumer stopped, an exception): inputs still in a
            # worker's hands have no one to report to, and must not be mistaken for the
            # next run's.
            for worker in [w for w in self.workers if w.task is not None]:
                self._retire(worker, kill=True)

    def _start_worker(self) -> None:
        parent_end, child_end = self.context.Pipe(duplex=True)
        process = self.context.Process(
            target=_worker_main,
            args=(child_end, self.worker_config, self.initializer),
            name="ddescan-worker",
            daemon=True,
        )
        process.start()
        child_end.close()
        self.workers_started += 1
        self.workers.append(_Worker(process, parent_end, born=time.monotonic()))

    def _retire(self, worker: _Worker, kill: bool) -> None:
        if kill:
            worker.process.kill()
            self.workers_killed += 1
        else:
            with contextlib.suppress(OSError):
                worker.conn.send(None)
        worker.process.join(5.0)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join(5.0)
        worker.conn.close()
        self.workers.remove(worker)

    def _dispatch(self, queue: deque[tuple[int, PathJob | BytesJob]]) -> None:
        while len(self.workers) < min(self.processes, len(queue) + self._busy()):
            self._start_worker()
        for worker in list(self.workers):
            if not queue:
                return
            if not worker.ready or worker.task is not None:
                continue
            task = queue.popleft()
            try:
                worker.conn.send(task)
            except OSError:
                # The worker died while idle: the input never reached it, so another may
                # take it without scanning anything twice.
                queue.appendleft(task)
                self._retire(worker, kill=True)
                continue
            worker.task = task
            worker.started = time.monotonic()

    def _busy(self) -> int:
        return sum(1 for worker in self.workers if worker.task is not None)

    def _wait_timeout(self) -> float:
        now = time.monotonic()
        waits = [worker.started + self.hard_timeout - now for worker in self.workers if worker.task]
        waits += [
            worker.born + self.startup_timeout - now for worker in self.workers if not worker.ready
        ]
        return max(0.0, min(waits)) if waits else self.startup_timeout

    def _collect(self, done: dict[int, tuple[ScanReport, ScanStats]]) -> None:
        if not self.workers:
            return
        handles: list[Connection | int] = [worker.conn for worker in self.workers]
        handles += [worker.process.sentinel for worker in self.workers]
        wait(handles, self._wait_timeout())
        for worker in list(self.workers):
            if worker.conn.poll():
                self._receive(worker, done)
            elif not worker.process.is_alive():
                self._lost(worker, done)
        now = time.monotonic()
        for worker in list(self.workers):
            if worker.task is not None and now - worker.started >= self.hard_timeout:
                index, job = worker.task
                peak = _peak_rss_of(worker.process.pid)
                self._retire(worker, kill=True)
                report = self._failure(
                    job,
                    ProblemKind.TIMEOUT,
                    f"hard time limit of {self.hard_timeout:g} s per file reached; the scan "
                    "was stopped and the file is not fully inspected",
                    now - worker.started,
                )
                done[index] = (report, ScanStats(now - worker.started, peak, killed=True))
            elif not worker.ready and now - worker.born >= self.startup_timeout:
                self._retire(worker, kill=True)
                raise IsolationError(
                    f"a worker process did not start within {self.startup_timeout:g} s"
                )

    def _receive(self, worker: _Worker, done: dict[int, tuple[ScanReport, ScanStats]]) -> None:
        try:
            message = worker.conn.recv()
        except (EOFError, OSError):
            self._lost(worker, done)
            return
        if message == _READY:
            worker.ready = True
            return
        index, report, peak = message
        if worker.task is None or worker.task[0] != index:
            self._retire(worker, kill=True)
            raise IsolationError(f"a worker answered for input {index} it was not given")
        done[index] = (report, ScanStats(time.monotonic() - worker.started, peak))
        worker.task = None
        worker.tasks += 1
        if worker.tasks >= self.max_tasks_per_worker:
            self._retire(worker, kill=False)

    def _lost(self, worker: _Worker, done: dict[int, tuple[ScanReport, ScanStats]]) -> None:
        """The worker process ended without answering."""
        worker.process.join(5.0)
        status = _signal_name(worker.process.exitcode)
        task, ready = worker.task, worker.ready
        self._retire(worker, kill=False)
        if task is not None:
            index, job = task
            seconds = time.monotonic() - worker.started
            report = self._failure(
                job,
                ProblemKind.LIMIT,
                f"the scan process ended abruptly ({status}) while reading this file: the "
                f"memory limit of {self.config.limits.max_memory_bytes} bytes or a crash in "
                "a parser; not inspected",
                seconds,
            )
            done[index] = (report, ScanStats(seconds, 0, killed=True))
        elif not ready:
            raise IsolationError(f"a worker process failed to start ({status})")

    def _failure(
        self, job: PathJob | BytesJob, kind: ProblemKind, message: str, seconds: float
    ) -> ScanReport:
        name, size, sha256, md5 = _hashes_of(job, self.config.limits.max_input_bytes)
        return failure_report(name, size, sha256, md5, kind, message, seconds)


class InProcessScanner:
    """The same interface without processes: no hard limits (for debugging, and for hosts
    where a parser bug must show as a traceback in a debugger)."""

    def __init__(
        self,
        config: ScanConfig | None = None,
        scan_file: Callable[[str, ScanConfig], ScanReport] | None = None,
    ) -> None:
        self.config = config or ScanConfig()
        self.scan_file = scan_file

    def __enter__(self) -> InProcessScanner:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def scan(self, jobs: Iterable[Job]) -> Iterator[ScanReport]:
        for job in jobs:
            if isinstance(job, Prepared):
                yield job.report
            elif isinstance(job, PathJob) and self.scan_file is not None:
                yield self.scan_file(job.path, self.config)
            else:
                yield _run(job, self.config)

    def close(self) -> None:
        pass
