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
    timeout_seconds = 60
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Iterable
from pathlib import Path

from scanner.model import ScanConfig, ScanLimits


class ConfigError(ValueError):
    """The configuration file or an override is not valid."""


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
    unknown = set(document) - {"dde", "limits"}
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
    return dataclasses.replace(config, limits=limits, allowed_dde_services=services)


def with_overrides(
    config: ScanConfig,
    allowed_services: Iterable[str] = (),
    passwords: Iterable[str] = (),
    limits: dict[str, float] | None = None,
) -> ScanConfig:
    """Apply command-line overrides on top of a loaded configuration."""
    new_limits = _limits_from(dict(limits), config.limits) if limits else config.limits
    return dataclasses.replace(
        config,
        limits=new_limits,
        allowed_dde_services=config.allowed_dde_services | frozenset(allowed_services),
        passwords=(*config.passwords, *passwords),
    )
