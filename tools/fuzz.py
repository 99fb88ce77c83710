#!/usr/bin/env python3
"""The long fuzz run for developers: every harness of tests/fuzz_targets.py, for minutes.

    python tools/fuzz.py --minutes 10                 # all harnesses, time shared out
    python tools/fuzz.py --minutes 5 --harness rtf --harness docx --jobs 2
    python tools/fuzz.py --engine random --minutes 1  # without atheris

Engines: `atheris` (the default when it is installed: `pip install -e '.[fuzz]'`) is
libFuzzer driving the instrumented scanner, so inputs that reach new code are kept and
mutated further; its mutator is mixed with the harnesses' own structure-aware one (which
repacks ZIP members, so mutations get past deflate and CRCs into the XML). `random` needs
nothing but runs blind: the harnesses' mutator on the seeds.

Each harness runs in its own process with libFuzzer's per-input timeout and memory limit
(or, for `random`, a per-input alarm). Every input that breaks the property (an exception
other than the typed errors, an `internal` or `timeout` problem, a dead worker) is saved
under corpus/adversarial/regressions/ and listed in corpus/adversarial/regressions.json;
tests/test_adversarial.py replays each one through its harness on every test run, so a
crash found once stays fixed. Runs, crashes and new regressions are printed per harness.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REGRESSIONS = REPO / "corpus" / "adversarial" / "regressions"
REGRESSION_MANIFEST = REPO / "corpus" / "adversarial" / "regressions.json"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

PER_INPUT_TIMEOUT = 20
RSS_LIMIT_MB = 2048


def _have_atheris() -> bool:
    try:
        import atheris  # noqa: F401
    except ImportError:
        return False
    return True


def _child_atheris(name: str, seconds: int, artifacts: Path) -> None:
    import atheris

    with atheris.instrument_imports(include=["scanner"]):
        import fuzz_targets

    harness = fuzz_targets.BY_NAME[name]
    seeds = harness.seed_inputs()
    corpus = Path(tempfile.mkdtemp(prefix=f"ddescan-fuzz-{name}-"))
    for index, seed in enumerate(seeds):
        (corpus / f"seed-{index:04}").write_bytes(seed)

    def test_one(data: bytes) -> None:
        harness.run(data)

    def mutator(data: bytes, max_size: int, seed: int) -> bytes:
        rng = random.Random(seed)
        if rng.random() < 0.5:
            return bytes(atheris.Mutate(data, max_size))
        return fuzz_targets.mutate(data, fuzz_targets.random_steps(rng), seeds)[:max_size]

    argv = [
        sys.argv[0],
        str(corpus),
        f"-max_total_time={seconds}",
        f"-timeout={PER_INPUT_TIMEOUT}",
        f"-rss_limit_mb={RSS_LIMIT_MB}",
        f"-max_len={fuzz_targets.MAX_INPUT}",
        f"-artifact_prefix={artifacts}/",
        "-print_final_stats=1",
    ]
    atheris.Setup(argv, test_one, custom_mutator=mutator)
    atheris.Fuzz()


class _Hang(BaseException):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise _Hang(f"input took longer than {PER_INPUT_TIMEOUT} s")


def _child_random(name: str, seconds: int, artifacts: Path, seed: int) -> None:
    import fuzz_targets

    harness = fuzz_targets.BY_NAME[name]
    seeds = harness.seed_inputs()
    rng = random.Random(seed)
    signal.signal(signal.SIGALRM, _alarm)
    end = time.monotonic() + seconds
    runs = 0
    crashes = 0
    while time.monotonic() < end:
        data = fuzz_targets.mutate(rng.choice(seeds), fuzz_targets.random_steps(rng), seeds)
        signal.alarm(PER_INPUT_TIMEOUT)
        try:
            harness.run(data)
        except (Exception, _Hang) as error:
            crashes += 1
            digest = hashlib.sha1(data).hexdigest()
            (artifacts / f"crash-{digest}").write_bytes(data)
            print(f"crash: {type(error).__name__}: {error}", file=sys.stderr)
        finally:
            signal.alarm(0)
        runs += 1
    print(f"Done {runs} runs in {seconds} second(s)", file=sys.stderr)


_RUNS = re.compile(r"Done (\d+) runs in|stat::number_of_executed_units:\s*(\d+)")
_UNCAUGHT = re.compile(r"=== Uncaught Python exception: ===\n([^\n]*)")
_RANDOM_CRASH = re.compile(r"^crash: (.*)$", re.MULTILINE)


def _runs(log: str) -> int:
    return sum(int(done or units) for done, units in _RUNS.findall(log))


def _reason(log: str) -> str:
    found = _UNCAUGHT.search(log) or _RANDOM_CRASH.search(log)
    if found:
        return found.group(1).strip()
    for marker in ("ERROR: libFuzzer: timeout", "ERROR: libFuzzer: out-of-memory"):
        if marker in log:
            return marker.removeprefix("ERROR: libFuzzer: ")
    return "unknown (see the fuzzer's log)"


def _promote(name: str, crashes: dict[Path, str], engine: str) -> list[str]:
    """Save every crashing input as a regression sample with its expectation."""
    manifest = (
        json.loads(REGRESSION_MANIFEST.read_text("utf-8"))
        if REGRESSION_MANIFEST.exists()
        else {"version": 1, "regressions": []}
    )
    known = {entry["file"] for entry in manifest["regressions"]}
    added: list[str] = []
    for crash, reason in sorted(crashes.items()):
        data = crash.read_bytes()
        file = f"regressions/{name}-{hashlib.sha256(data).hexdigest()[:12]}.bin"
        if file in known:
            continue
        REGRESSIONS.mkdir(parents=True, exist_ok=True)
        (REPO / "corpus" / "adversarial" / file).write_bytes(data)
        manifest["regressions"].append(
            {
                "file": file,
                "harness": name,
                "found_by": engine,
                "failure": reason[:300],
                "expect": "meets the harness property (tests/fuzz_targets.py)",
            }
        )
        known.add(file)
        added.append(file)
    if added:
        manifest["regressions"].sort(key=lambda entry: entry["file"])
        REGRESSION_MANIFEST.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return added


def _run_harness(
    name: str, seconds: int, engine: str, seed: int
) -> tuple[str, int, int, list[str]]:
    artifacts = Path(tempfile.mkdtemp(prefix=f"ddescan-crashes-{name}-"))
    runs = 0
    crashes: dict[Path, str] = {}
    end = time.monotonic() + seconds
    # atheris stops at the first crash: start it again until the harness's time is up.
    while True:
        left = int(end - time.monotonic())
        if left < 2:
            break
        before = set(artifacts.iterdir())
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            name,
            "--seconds",
            str(left),
            "--engine",
            engine,
            "--artifacts",
            str(artifacts),
            "--seed",
            str(seed),
        ]
        # atheris prints the Python exception on stdout, libFuzzer its figures on stderr.
        result = subprocess.run(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            check=False,
            cwd=REPO,
        )
        runs += _runs(result.stdout)
        found = sorted(set(artifacts.iterdir()) - before)
        for crash in found:
            crashes[crash] = _reason(result.stdout)
        if engine == "random" or not found or result.returncode == 0:
            break
        seed += 1
    return name, runs, len(crashes), _promote(name, crashes, engine)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="total time (default 10)")
    parser.add_argument("--harness", action="append", default=[], help="only these (repeat)")
    parser.add_argument("--engine", choices=("atheris", "random"), default=None)
    parser.add_argument("--jobs", type=int, default=1, help="harnesses run at once")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--list", action="store_true", help="list the harnesses and exit")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--artifacts", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    engine = args.engine or ("atheris" if _have_atheris() else "random")
    if args.child:
        if engine == "atheris":
            _child_atheris(args.child, args.seconds, args.artifacts)
        else:
            _child_random(args.child, args.seconds, args.artifacts, args.seed)
        return 0

    import fuzz_targets

    if args.list:
        for harness in fuzz_targets.HARNESSES:
            print(harness.name)
        return 0
    names = args.harness or [harness.name for harness in fuzz_targets.HARNESSES]
    unknown = sorted(set(names) - set(fuzz_targets.BY_NAME))
    if unknown:
        parser.error(f"unknown harness(es): {', '.join(unknown)}")
    if engine == "atheris" and not _have_atheris():
        parser.error("atheris is not installed: pip install -e '.[fuzz]' or use --engine random")
    jobs = max(1, args.jobs)
    seconds = max(5, int(args.minutes * 60 * jobs / len(names)))
    print(f"engine {engine}, {len(names)} harness(es), {seconds} s each, {jobs} at a time")
    from concurrent.futures import ThreadPoolExecutor

    total_crashes = 0
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(_run_harness, n, seconds, engine, args.seed) for n in names]
        for future in futures:
            name, runs, crashes, added = future.result()
            total_crashes += crashes
            print(f"{name:16} {runs:>9} inputs  {crashes} crash(es)", flush=True)
            for file in added:
                print(f"    new regression sample corpus/adversarial/{file}")
    return 1 if total_crashes else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
