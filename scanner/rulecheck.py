"""Checks behind `ddescan rules check` and `ddescan rules test`.

`check_rules` reads the rules' metadata (scanner.yara_stage.RuleInfo): every shipped rule
must say what it detects (technique, attack_id, severity, description, reference) and name
a corpus sample it fires on and one it must not fire on, and the shipped rules must compile
without YARA's performance warnings. User rules (an existing signature collection) only have
to compile: what their metadata lacks is reported as a note.

`run_rule_tests` proves the shipped rules on the corpus: each one fires on its positive
sample, not on its negative sample, and on none of the clean look-alikes (corpus manifest
entries whose expected verdict is clean). "Fires" means that the rule's name is on a finding
of the scan, merged onto a parser finding or as a finding of its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from scanner.api import scan_path
from scanner.model import ScanConfig
from scanner.yara_stage import (
    SHIPPED_RULES_DIR,
    RuleInfo,
    RuleSet,
    describe_rules,
    load_rules,
)

CORPUS_DIR = SHIPPED_RULES_DIR.parent / "corpus"


@dataclass(frozen=True)
class RuleCheck:
    """One rule: `failures` make `rules check` fail; `notes` do not."""

    info: RuleInfo
    failures: tuple[str, ...]
    notes: tuple[str, ...]


@dataclass(frozen=True)
class CheckReport:
    rules: tuple[RuleCheck, ...]
    # Problems of the set as a whole (compiler warnings, duplicate names).
    failures: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.failures and not any(rule.failures for rule in self.rules)


@dataclass(frozen=True)
class RuleTest:
    info: RuleInfo
    fired_on: tuple[str, ...]
    failures: tuple[str, ...]


def check_rules(ruleset: RuleSet, corpus_dir: Path = CORPUS_DIR) -> CheckReport:
    samples = corpus_dir / "samples"
    infos = describe_rules(ruleset)
    checks: list[RuleCheck] = []
    for info in infos:
        failures: list[str] = []
        notes: list[str] = []
        problems = [f"metadata {key} is missing" for key in info.missing]
        problems.extend(info.invalid)
        if info.shipped:
            failures.extend(problems)
            for key, sample in (
                ("sample_positive", info.sample_positive),
                ("sample_negative", info.sample_negative),
            ):
                if sample and not (samples / sample).is_file():
                    failures.append(f"{key} {sample} does not exist in {samples}")
            if info.sample_positive and info.sample_positive == info.sample_negative:
                failures.append("sample_positive and sample_negative are the same file")
        elif problems:
            notes.append(
                "user rule without complete ddescan metadata (" + "; ".join(problems) + "): "
                "its technique is taken from the stream and its severity is medium"
            )
        checks.append(RuleCheck(info, tuple(failures), tuple(notes)))
    set_failures = [
        f"compiler warning: {warning}"
        for warning in ruleset.warnings
        if any(warning.startswith(path) for path in ruleset.shipped_files)
    ]
    seen: dict[str, str] = {}
    for info in infos:
        if not info.shipped:
            continue
        if info.name in seen:
            set_failures.append(
                f"rule name {info.name} is used twice ({seen[info.name]} and {info.path})"
            )
        seen[info.name] = info.path
    return CheckReport(tuple(checks), tuple(set_failures))


def _manifest(corpus_dir: Path) -> list[tuple[str, str]]:
    """(path, expected verdict) of every corpus sample."""
    document = json.loads((corpus_dir / "manifest.json").read_text(encoding="utf-8"))
    return [(entry["path"], entry["expect"]["verdict"]) for entry in document["samples"]]


def fired_rules(sample: Path, config: ScanConfig) -> frozenset[str]:
    """The names of the rules on any finding of one scan."""
    report = scan_path(sample, config)
    return frozenset(rule for finding in report.findings for rule in finding.rules)


def run_rule_tests(
    corpus_dir: Path = CORPUS_DIR, config: ScanConfig | None = None
) -> tuple[RuleTest, ...]:
    """Scan the whole corpus once with the shipped rules and judge every shipped rule."""
    config = config or ScanConfig()
    samples = corpus_dir / "samples"
    entries = _manifest(corpus_dir)
    fired = {path: fired_rules(samples / path, config) for path, _ in entries}
    clean = [path for path, verdict in entries if verdict == "clean"]
    results: list[RuleTest] = []
    for info in describe_rules(load_rules(config.rule_dirs)):
        if not info.shipped:
            continue
        failures: list[str] = []
        fired_on = tuple(sorted(path for path, names in fired.items() if info.name in names))
        positive, negative = info.sample_positive, info.sample_negative
        if positive not in fired:
            failures.append(f"its positive sample {positive or '(none)'} is not in the corpus")
        elif positive not in fired_on:
            failures.append(f"does not fire on its positive sample {positive}")
        if negative and negative in fired_on:
            failures.append(f"fires on its negative sample {negative}")
        if not fired_on:
            failures.append("fires on no corpus sample")
        failures.extend(
            f"fires on the clean look-alike {path}" for path in clean if path in fired_on
        )
        results.append(RuleTest(info, fired_on, tuple(failures)))
    return tuple(results)
