"""Configuration: defaults, a TOML file, and command-line overrides, merged into ScanConfig.

File format (all keys optional):

    [dde]
    allowed_services = ["SAPDDE", "BLP"]   # reported, never malicious

    [limits]
    max_depth = 8
    max_input_bytes = 268435456
    max_part_bytes = 134217728
    max_total_bytes = 536870912
    max_ratio = 200
    max_members = 10000
    max_findings = 1000
    timeout_seconds = 60                    # hard limit per file in worker processes
    max_memory_bytes = 1073741824           # address space of one worker (RLIMIT_AS)
    max_streams = 100000                    # decoded streams kept for the YARA stage
    max_stream_bytes = 134217728
    max_password_tries = 24
    max_key_derivation_rounds = 2500000

    [passwords]
    candidates = ["infected"]        # tried on encrypted documents and archive members
    locked_verdict = "suspicious"    # or "error" or "clean": the verdict of a report whose
                                     # only trouble is something no password opened

    [yara]
    enabled = true                          # run the YARA stage (yara/ rules)
    rule_dirs = ["rules/extra"]             # more rule folders (relative to this file)
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Iterable
from pathlib import Path

from scanner.model import ScanConfig, ScanLimits, Verdict


class ConfigError(ValueError):
    """The configuration file or an override is not valid."""


# The verdicts a locked input may be given (ScanConfig.locked_verdict).
LOCKED_VERDICTS = ("suspicious", "error", "clean")


def locked_verdict(value: object) -> Verdict:
    """The Verdict named by `value`, one of LOCKED_VERDICTS; ConfigError otherwise."""
    if not isinstance(value, str) or value not in LOCKED_VERDICTS:
        raise ConfigError(
            f"locked_verdict must be one of {', '.join(LOCKED_VERDICTS)}, not {value!r}"
        )
    return Verdict(value)


def _passwords_from(table: object, config: ScanConfig) -> ScanConfig:
    if not isinstance(table, dict):
        raise ConfigError("[passwords] must be a table")
    unknown = set(table) - {"candidates", "locked_verdict"}
    if unknown:
        raise ConfigError(f"unknown key(s) in [passwords]: {', '.join(sorted(unknown))}")
    candidates = table.get("candidates", [])
    if not isinstance(candidates, list) or not all(isinstance(c, str) for c in candidates):
        raise ConfigError("passwords.candidates must be a list of strings")
    verdict = config.locked_verdict
    if "locked_verdict" in table:
        verdict = locked_verdict(table["locked_verdict"])
    return dataclasses.replace(
        config, passwords=(*config.passwords, *candidates), locked_verdict=verdict
    )


def _limits_from(table: object, base: ScanLimits) -> ScanLimits:
    if not isinstance(table, dict):
        raise ConfigError("[limits] must be a table")
    known = {f.name: f.type for f in dataclasses.fields(ScanLimits)}
    changes: dict[str, int | float] = {}
    for key, value in table.items():
        if key not in known:
            raise ConfigError(f"unknown limit '{key}' (known: {', '.join(sorted(known))})")
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(f"limit '{key}' must be a positive number, not {value!r}")
        changes[key] = float(value) if key == "timeout_seconds" else int(value)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def load_config(path: str | Path | None = None, base: ScanConfig | None = None) -> ScanConfig:
    """Read a TOML configuration file on top of `base` (the defaults when None)."""
    config = base or ScanConfig()
    if path is None:
        return config
    try:
        document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"cannot read configuration {path}: {error}") from error
    unknown = set(document) - {"dde", "limits", "yara", "passwords"}
    if unknown:
        raise ConfigError(f"unknown section(s) in {path}: {', '.join(sorted(unknown))}")
    limits = config.limits
    if "limits" in document:
        limits = _limits_from(document["limits"], limits)
    services = config.allowed_dde_services
    dde = document.get("dde", {})
    if not isinstance(dde, dict):
        raise ConfigError("[dde] must be a table")
    allowed = dde.get("allowed_services", [])
    if not isinstance(allowed, list) or not all(isinstance(s, str) for s in allowed):
        raise ConfigError("dde.allowed_services must be a list of strings")
    services = services | frozenset(allowed)
    config = _yara_from(document.get("yara", {}), Path(path).parent, config)
    config = _passwords_from(document.get("passwords", {}), config)
    return dataclasses.replace(config, limits=limits, allowed_dde_services=services)


def _yara_from(table: object, base_dir: Path, config: ScanConfig) -> ScanConfig:
    if not isinstance(table, dict):
        raise ConfigError("[yara] must be a table")
    unknown = set(table) - {"enabled", "rule_dirs"}
    if unknown:
        raise ConfigError(f"unknown key(s) in [yara]: {', '.join(sorted(unknown))}")
    enabled = table.get("enabled", config.yara_enabled)
    if not isinstance(enabled, bool):
        raise ConfigError("yara.enabled must be true or false")
    dirs = table.get("rule_dirs", [])
    if not isinstance(dirs, list) or not all(isinstance(d, str) and d for d in dirs):
        raise ConfigError("yara.rule_dirs must be a list of folder names")
    # Relative folders are read from where the configuration file is, not from wherever
    # ddescan happens to be started.
    resolved = tuple(str(base_dir / d) for d in dirs)
    return dataclasses.replace(
        config, yara_enabled=enabled, rule_dirs=(*config.rule_dirs, *resolved)
    )


def with_overrides(
    config: ScanConfig,
    allowed_services: Iterable[str] = (),
    passwords: Iterable[str] = (),
    limits: dict[str, float] | None = None,
    locked: Verdict | None = None,
) -> ScanConfig:
    """Apply command-line overrides on top of a loaded configuration."""
    new_limits = _limits_from(dict(limits), config.limits) if limits else config.limits
    return dataclasses.replace(
        config,
        limits=new_limits,
        allowed_dde_services=config.allowed_dde_services | frozenset(allowed_services),
        passwords=(*config.passwords, *passwords),
        locked_verdict=config.locked_verdict if locked is None else locked,
    )
