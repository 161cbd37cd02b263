"""Sweep specs: YAML -> a validated list of trial configs, before Ray starts.

A spec holds the fields of one trial (l2l's TrialConfig) at the top level and a `grid` whose
axes list values for any of those fields; the sweep is their cross product. `variants`, a list
of field overrides (merged into the top-level fields, mappings key by key), is one more axis:
it names table rows that differ in several fields at once, such as "l2l with a proxy retain
set". Every problem is reported as `SpecError("<field path>: <what is allowed>")`, e.g.
`grid.alpha[1]: expected a number` or `variants[6].retain.mode: unknown value`.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from l2l import experiment
from l2l.errors import ConfigError

SPEC_KEYS = {"name", "description", "grid", "variants", "resources", "max_concurrent_trials"}
# Trial fields of either family (l2l/experiment.py), less the runtime ones given on the CLI.
TRIAL_KEYS = set(experiment.TRIAL_KEYS) - {"data_root", "cache_dir"}
GENERATORS = tuple(g for gens in experiment.GENERATORS.values() for g in gens)
RESOURCE_KEYS = {"cpu", "gpu"}
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class SpecError(ValueError):
    """A spec is malformed; the message names the field and what is allowed."""


@dataclass(frozen=True)
class Trial:
    trial_id: str  # t<index>-<hash prefix>: stable for the same grid point of the same spec
    config: Any  # l2l TrialConfig or GanTrialConfig


@dataclass(frozen=True)
class SweepSpec:
    name: str
    trials: list[Trial]
    resources: dict[str, dict[str, float]]  # generator name (or "default") -> {cpu, gpu}
    max_concurrent_trials: int | None = None
    description: str = ""
    source: dict[str, Any] = field(default_factory=dict)  # the spec as written

    def resources_for(self, generator: str) -> dict[str, float]:
        return self.resources.get(generator, self.resources["default"])


def load_spec(path: str | Path, runtime: Mapping[str, Any] | None = None) -> SweepSpec:
    """Reads and validates a spec file. `runtime` adds fields that do not change results
    (device, data_root, cache_dir) to every trial."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise SpecError(f"spec: file not found: {path}") from None
    except OSError as e:
        raise SpecError(f"spec: cannot read {path}: {e.strerror}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise SpecError(f"spec: YAML syntax error{where}: {problem}") from None
    return parse_spec(raw, runtime)


def parse_spec(raw: Any, runtime: Mapping[str, Any] | None = None) -> SweepSpec:
    if not isinstance(raw, Mapping):
        raise SpecError("spec: expected a mapping of fields at the top level")
    for k in raw:
        if k not in SPEC_KEYS | TRIAL_KEYS:
            raise SpecError(f"{k}: unknown field (allowed: {', '.join(sorted(SPEC_KEYS | TRIAL_KEYS))})")
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise SpecError("name: required; letters, digits, '_', '.', '-' (at most 64), "
                        f"got {name!r}")
    grid = _grid(raw.get("grid", {}))
    variants = _variants(raw.get("variants", [{}]), grid)
    base = {k: v for k, v in raw.items() if k in TRIAL_KEYS}
    both = sorted(set(base) & set(grid))
    if both:
        raise SpecError(f"grid.{both[0]}: also given at the top level; give it in one place")
    base.update(runtime or {})

    trials, seen = [], set()
    axes = [list(enumerate(v)) for v in grid.values()]
    for (vi, variant), combo in itertools.product(enumerate(variants), itertools.product(*axes)):
        point = {axis: v for axis, (_, v) in zip(grid, combo)}
        # a bad value is named by its place in the spec: grid.<axis>[<i>] or variants[<i>]
        where = {axis: f"grid.{axis}[{i}]" for axis, (i, _) in zip(grid, combo)}
        where.update({k: f"variants[{vi}].{k}" for k in variant})
        cfg = _check({**_merge(base, variant), **point}, where, {**variant, **point})
        if cfg.config_hash in seen:  # e.g. `original` under several alphas: one trial is enough
            continue
        seen.add(cfg.config_hash)
        trials.append(Trial(f"t{len(trials):03d}-{cfg.config_hash[:8]}", cfg))

    return SweepSpec(name=name, trials=trials, resources=_resources(raw.get("resources")),
                     max_concurrent_trials=_max_concurrent(raw.get("max_concurrent_trials")),
                     description=str(raw.get("description", "")), source=dict(raw))


def _grid(grid: Any) -> dict[str, list[Any]]:
    if not isinstance(grid, Mapping):
        raise SpecError("grid: expected a mapping of field -> list of values")
    for axis, values in grid.items():
        if axis not in TRIAL_KEYS:
            raise SpecError(f"grid.{axis}: unknown axis (allowed: {', '.join(sorted(TRIAL_KEYS))})")
        if not isinstance(values, list) or not values:
            raise SpecError(f"grid.{axis}: expected a non-empty list of values")
    return dict(grid)


def _variants(raw: Any, grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise SpecError("variants: expected a non-empty list of field overrides")
    for i, v in enumerate(raw):
        if not isinstance(v, Mapping):
            raise SpecError(f"variants[{i}]: expected a mapping of trial fields")
        for k in v:
            if k not in TRIAL_KEYS:
                raise SpecError(f"variants[{i}].{k}: unknown field "
                                f"(allowed: {', '.join(sorted(TRIAL_KEYS))})")
            if k in grid:
                raise SpecError(f"variants[{i}].{k}: also a grid axis; give it in one place")
    return [dict(v) for v in raw]


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Override fields of `base`; mappings merge key by key (retain: {mode: proxy} keeps the
    retain classes given at the top level)."""
    out = dict(base)
    for k, v in override.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) \
            else v
    return out


def _check(d: dict[str, Any], prefix: dict[str, str], point: dict[str, Any]):
    try:
        return experiment.parse_config(d)
    except ConfigError as e:
        head = e.path.split(".")[0].split("[")[0]
        if head in prefix:
            raise SpecError(f"{prefix[head]}{e.path[len(head):]}: {e.message}") from None
        where = f" (in trial {point})" if point else ""
        raise SpecError(f"{e.path or 'spec'}: {e.message}{where}") from None


def _resource_pair(d: Any, path: str) -> dict[str, float]:
    if not isinstance(d, Mapping):
        raise SpecError(f"{path}: expected a mapping with cpu and gpu")
    for k, v in d.items():
        if k not in RESOURCE_KEYS:
            raise SpecError(f"{path}.{k}: unknown resource (allowed: cpu, gpu)")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise SpecError(f"{path}.{k}: expected a number >= 0, got {v!r}")
    cpu, gpu = float(d.get("cpu", 1)), float(d.get("gpu", 0))
    if cpu <= 0 and gpu <= 0:
        raise SpecError(f"{path}: a trial needs some cpu or gpu")
    if gpu > 1 and gpu != int(gpu):
        raise SpecError(f"{path}.gpu: fractions are allowed only below 1, got {gpu}")
    return {"cpu": cpu, "gpu": gpu}


def _resources(raw: Any) -> dict[str, dict[str, float]]:
    """`{cpu, gpu}` for every trial, or per generator: `{mae: {cpu, gpu}, default: {...}}`."""
    if raw is None:
        return {"default": {"cpu": 1.0, "gpu": 0.0}}
    if not isinstance(raw, Mapping):
        raise SpecError("resources: expected {cpu, gpu} or a mapping generator -> {cpu, gpu}")
    if set(raw) <= RESOURCE_KEYS:
        return {"default": _resource_pair(raw, "resources")}
    out = {}
    for k, v in raw.items():
        if k not in set(GENERATORS) | {"default"}:
            raise SpecError(f"resources.{k}: unknown generator (allowed: "
                            f"{', '.join(GENERATORS)}, default, or cpu/gpu directly)")
        out[k] = _resource_pair(v, f"resources.{k}")
    out.setdefault("default", {"cpu": 1.0, "gpu": 0.0})
    return out


def _max_concurrent(v: Any) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise SpecError(f"max_concurrent_trials: expected an integer >= 1, got {v!r}")
    return v
