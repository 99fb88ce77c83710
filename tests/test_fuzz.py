"""The short fuzz pass that runs in CI: every harness of tests/fuzz_targets.py, first on its
seeds as they are, then on Hypothesis-chosen mutations of them.

Hypothesis rather than atheris here: it is already a test dependency, runs inside pytest,
is deterministic with `derandomize` (the same inputs every CI run, so a red build is
reproducible and never flaky), and shrinks a failure to a short list of mutation steps.
Coverage-guided search is what finds deep bugs, and that is the long run's job
(`python tools/fuzz.py --minutes 10`, atheris). Scan harnesses run through a real worker
pool, so a hang or crash in C code fails the test instead of hanging CI.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fuzz_targets import FUZZ_CONFIG, HARNESSES, OPS, Harness, mutate
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from scanner.isolation import IsolatedScanner

# Examples per harness; DDESCAN_FUZZ_EXAMPLES raises it for a longer local pass.
EXAMPLES = int(os.environ.get("DDESCAN_FUZZ_EXAMPLES", "100"))

STEP = st.tuples(
    st.integers(min_value=0, max_value=OPS - 1),
    st.integers(min_value=0, max_value=2**32 - 1),
    st.binary(max_size=24),
)


@pytest.fixture(scope="module")
def pool() -> Iterator[IsolatedScanner]:
    with IsolatedScanner(FUZZ_CONFIG, processes=1, max_tasks_per_worker=1000) as runner:
        yield runner


@pytest.mark.parametrize("harness", HARNESSES, ids=[h.name for h in HARNESSES])
def test_seeds_meet_the_property(harness: Harness, pool: IsolatedScanner) -> None:
    seeds = harness.seed_inputs()
    assert seeds
    for seed in seeds:
        harness.run(seed, pool)


@pytest.mark.parametrize("harness", HARNESSES, ids=[h.name for h in HARNESSES])
def test_mutations_meet_the_property(harness: Harness, pool: IsolatedScanner) -> None:
    seeds = harness.seed_inputs()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=(Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
    )
    @given(
        seed=st.integers(min_value=0, max_value=len(seeds) - 1),
        steps=st.lists(STEP, min_size=1, max_size=6),
    )
    def one(seed: int, steps: list[tuple[int, int, bytes]]) -> None:
        harness.run(mutate(seeds[seed], steps, seeds), pool)

    one()


def test_long_run_tool_knows_every_harness() -> None:
    tool = Path(__file__).resolve().parents[1] / "tools" / "fuzz.py"
    listed = subprocess.run(
        [sys.executable, str(tool), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert listed == [harness.name for harness in HARNESSES]
