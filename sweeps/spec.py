"""Sweep specs: YAML -> a validated list of trial configs, before Ray starts.

A spec holds the fields of one trial (l2l's TrialConfig) at the top level and a `grid` whose
axes list values for any of those fields; the sweep is their cross product. `variants`, a list
of field overrides (merged into the top-level fields, mappings key by key), is one more axis:
it names table rows that differ in several fields at once, such as "l2l with a proxy retain
set". `by_generator` maps a generator name to field overrides that its trials get (each
generator's own pretraining budget, say), merged before the variant and the grid point. Every
problem is reported as `SpecError("<field path>: <what is allowed>")`, e.g.
`grid.alpha[1]: expected a number` or `variants[6].retain.mode: unknown value`.
"""
from __future__ import annotations

import copy
import itertools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping


from contract import metrics as metric_registry
from contract.identity import IDENTITY_VERSION
from contract.inputs import InputError, read_yaml
from l2l import experiment
from l2l.errors import ConfigError

SPEC_KEYS = {"name", "description", "grid", "variants", "by_generator", "resources",
             "max_concurrent_trials", "max_failures", "search"}
# Trial fields of either family (l2l/experiment.py), less the runtime ones given on the CLI.
TRIAL_KEYS = set(experiment.TRIAL_KEYS) - {"data_root", "cache_dir"}
GENERATORS = experiment.GENERATORS
RESOURCE_KEYS = {"cpu", "gpu"}
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
IDENT_RE = re.compile(r"^[a-z][a-z0-9_]*$")
# Trials a spec may expand to unless `l2l-sweep run --max-trials` allows more: far above any
# ablation here (the largest, gan_speedup_*_gpu.yaml, is 432), far below what would take the
# validation itself minutes or the memory of a laptop (each trial is checked as it is built).
MAX_TRIALS = 10_000
SEARCH_KEYS = {"algorithm", "num_samples", "max_concurrent", "metric", "mode", "space", "asha",
               "seed"}
DISTRIBUTIONS = ("loguniform", "uniform", "randint", "choice")
ASHA_KEYS = {"grace_period", "reduction_factor"}
# Trial fields a search may not sample: seeds are their own axis (grid.seed), the rest are
# runtime fields that do not change results.
NOT_SEARCHABLE = {"seed", "family", "device", "data_root", "cache_dir"}


class SpecError(ValueError):
    """A spec is malformed; the message names the field and what is allowed."""


@dataclass(frozen=True)
class Trial:
    """A grid point of the spec: its trial id and its l2l config."""
    trial_id: str  # t<index>-<hash prefix>: stable for the same grid point of the same spec
    config: Any = field(repr=False)  # the l2l config (frozen, typed, picklable)


@dataclass(frozen=True)
class Param:
    """One dimension of a search space: a dotted trial field and its distribution."""
    name: str  # e.g. "alpha", "unlearn.lr"
    kind: str  # loguniform | uniform | randint (both ends included) | choice
    args: tuple  # (low, high) or the choices

    def describe(self) -> str:
        if self.kind == "choice":
            return f"{self.name} ~ choice{list(self.args)}"
        return f"{self.name} ~ {self.kind}({self.args[0]:g}, {self.args[1]:g})"


@dataclass(frozen=True)
class SearchSpec:
    """An Optuna search: `num_samples` points of `space`, each run once per seed."""
    base: dict[str, Any]  # the trial fields every point shares (no seed)
    space: tuple[Param, ...]
    seeds: tuple[int, ...]
    objective: dict[tuple[str, str], float]  # (split, metric) -> weight
    mode: str  # max | min (of the weighted sum), or pareto: each term its own objective
    num_samples: int
    max_concurrent: int
    asha: dict[str, float] | None  # grace_period, reduction_factor; rungs are seeds
    sampler_seed: int = 0
    algorithm: str = "optuna"
    family: str = "i2i"  # of every point (the metric registry gives the metrics' directions)

    def target(self, split: str, metric: str) -> float | None:
        """The value a target metric is best at (contract/metrics.py), else None: such a
        metric enters the objective as its distance to the target, |value - target|."""
        d = metric_registry.direction(self.family, split, metric)
        return d.target if d is not None and d.kind == "target" else None

    def objective_text(self) -> str:
        def term(sp, m):
            t = self.target(sp, m)
            return f"{sp}_{m}" if t is None else f"|{sp}_{m} - {t:g}|"

        if self.mode == "pareto":
            terms = ", ".join(f"{'maximise' if w > 0 else 'minimise'} {sp}_{m}"
                              for (sp, m), w in self.objective.items())
            return f"Pareto front: {terms}, averaged over seeds"
        terms = " ".join(f"{'-' if w < 0 else '+'} {abs(w):g} x {term(sp, m)}"
                         for (sp, m), w in self.objective.items()).lstrip("+ ")
        return f"{self.mode}imise {terms}, averaged over seeds"

    def pareto_metrics(self) -> tuple[list[str], list[str]]:
        """Tune's metric names and modes of a Pareto search: a point's mean of each term,
        maximised where its weight is positive."""
        return ([f"mean_{sp}_{m}" for sp, m in self.objective],
                ["max" if w > 0 else "min" for w in self.objective.values()])


@dataclass(frozen=True)
class SweepSpec:
    name: str
    trials: list[Trial]  # grid: every trial; search: the configs at the space's low ends
    resources: dict[str, dict[str, float]]  # generator name (or "default") -> {cpu, gpu}
    max_concurrent_trials: int | None = None
    description: str = ""
    source: dict[str, Any] = field(default_factory=dict)  # the spec as written
    max_failures: int = 0  # retries of a failed trial (Tune's FailureConfig)
    search: SearchSpec | None = None

    @property
    def kind(self) -> str:
        return "search" if self.search else "grid"

    def resources_for(self, generator: str) -> dict[str, float]:
        return self.resources.get(generator, self.resources["default"])


def load_spec(path: str | Path, runtime: Mapping[str, Any] | None = None,
              identity_version: int = IDENTITY_VERSION,
              max_trials: int | None = MAX_TRIALS) -> SweepSpec:
    """Reads and validates a spec file. `runtime` adds fields that do not change results
    (device, data_root, cache_dir) to every trial. Trial ids are made with identity
    `identity_version` (contract/identity.py; a sweep started before version 2 keeps 1).
    A spec of more than `max_trials` trials (None: no cap) is refused before it is expanded."""
    try:
        raw = read_yaml(path, "spec")
    except InputError as e:
        raise SpecError(str(e)) from None
    return parse_spec(raw, runtime, identity_version, max_trials)


def parse_spec(raw: Any, runtime: Mapping[str, Any] | None = None,
               identity_version: int = IDENTITY_VERSION,
               max_trials: int | None = MAX_TRIALS) -> SweepSpec:
    if not isinstance(raw, Mapping):
        raise SpecError("spec: expected a mapping of fields at the top level")
    for k in raw:
        if k not in SPEC_KEYS | TRIAL_KEYS:
            allowed = ", ".join(sorted(SPEC_KEYS | TRIAL_KEYS))
            name = str(k) if len(str(k)) <= 60 else f"{str(k)[:60]}..."
            raise SpecError(f"{name}: unknown field (allowed: {allowed})")
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise SpecError("name: required; letters, digits, '_', '.', '-' (at most 64), "
                        f"got {name!r}")
    resources = _resources(raw.get("resources"))
    max_failures = _max_failures(raw.get("max_failures"))
    if "search" in raw:
        if "by_generator" in raw:
            raise SpecError("by_generator: only for grid specs; a search runs one generator, "
                            "give its fields at the top level")
        return _search_spec(raw, name, resources, max_failures, runtime, max_trials)
    grid = _grid(raw.get("grid", {}))
    variants = _variants(raw.get("variants", [{}]), grid)
    _cap("grid", math.prod(len(v) for v in grid.values()) * len(variants),
         "variants x the grid's axes", max_trials)
    by_generator = _by_generator(raw.get("by_generator"), grid)
    base = {k: v for k, v in raw.items() if k in TRIAL_KEYS}
    for axis in grid:
        if _has_path(base, axis):
            raise SpecError(f"grid.{axis}: also given at the top level; give it in one place")
    base.update(runtime or {})

    trials, seen = [], set()
    axes = [list(enumerate(v)) for v in grid.values()]
    for (vi, variant), combo in itertools.product(enumerate(variants), itertools.product(*axes)):
        point = {axis: v for axis, (_, v) in zip(grid, combo)}
        # a bad value is named by its place in the spec: grid.<axis>[<i>] or variants[<i>]
        where = {axis: f"grid.{axis}[{i}]" for axis, (i, _) in zip(grid, combo)}
        where.update({k: f"variants[{vi}].{k}" for k in variant})
        d = _with_point(_merge(base, variant), point)
        cfg = _check(d, where, {**variant, **point})
        own = by_generator.get(cfg.generator.name)  # the name with its default applied
        if own:  # the generator's fields first, so that the variant and the point win
            d = _with_point(_merge(_merge(base, own), variant), point)
            where.update({k: f"by_generator.{cfg.generator.name}.{k}" for k in own
                          if k not in where})
            cfg = _check(d, where, {**variant, **point})
        key = cfg.identity_hash(identity_version)
        if key in seen:  # e.g. `original` under several alphas: one trial is enough
            continue
        seen.add(key)
        trials.append(Trial(f"t{len(trials):03d}-{key[:8]}", cfg))

    return SweepSpec(name=name, trials=trials, resources=resources,
                     max_concurrent_trials=_max_concurrent(raw.get("max_concurrent_trials")),
                     description=str(raw.get("description", "")), source=dict(raw),
                     max_failures=max_failures)


def _with_point(d: dict[str, Any], point: Mapping[str, Any]) -> dict[str, Any]:
    for axis in sorted(point):  # sorted: a parent field before its children
        d = set_path(d, axis, point[axis])
    return d


def _by_generator(raw: Any, grid: dict[str, list[Any]]) -> dict[str, dict[str, Any]]:
    """`by_generator: {vqgan: {pretrain: {epochs: 24}}}`: field overrides per generator name."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or not raw:
        raise SpecError("by_generator: expected a mapping of generator name -> trial fields, "
                        "e.g. {vqgan: {pretrain: {epochs: 24}}}")
    fixed = ("generator", "method", "family")
    for name, over in raw.items():
        if name not in GENERATORS:
            raise SpecError(f"by_generator.{name}: unknown generator "
                            f"(allowed: {', '.join(GENERATORS)})")
        if not isinstance(over, Mapping) or not over:
            raise SpecError(f"by_generator.{name}: expected a mapping of trial fields")
        for k in over:
            if k not in TRIAL_KEYS or k in fixed:
                raise SpecError(f"by_generator.{name}.{k}: not a field a generator can set "
                                f"(allowed: {', '.join(sorted(TRIAL_KEYS - set(fixed)))})")
            for axis in grid:
                if k == axis.split(".")[0] and (axis == k or _has_path(over, axis)):
                    raise SpecError(f"by_generator.{name}.{axis}: also a grid axis; give it "
                                    "in one place")
    return {str(k): dict(v) for k, v in raw.items()}


def _has_path(d: Mapping[str, Any], dotted: str) -> bool:
    """Whether the trial dict `d` sets the dotted field (`pretrain.seed`: d["pretrain"]["seed"])."""
    node: Any = d
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def _grid(grid: Any) -> dict[str, list[Any]]:
    """Axes are trial fields, whole (`seed`, `generator`) or dotted (`pretrain.seed`: one
    field of a section, the rest of the section as given elsewhere)."""
    if not isinstance(grid, Mapping):
        raise SpecError("grid: expected a mapping of field -> list of values")
    for axis, values in grid.items():
        parts = str(axis).split(".")
        if parts[0] not in TRIAL_KEYS or not all(parts):
            raise SpecError(f"grid.{axis}: unknown axis (allowed: {', '.join(sorted(TRIAL_KEYS))}"
                            ", or a dotted field of one of them such as pretrain.seed)")
        clash = [a for a in grid if a != axis and str(a).startswith(f"{axis}.")]
        if clash:
            raise SpecError(f"grid.{clash[0]}: also inside grid.{axis}; give it in one place")
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
            for axis in grid:
                head = axis.split(".")[0]
                if k == head and (axis == k or _has_path(v, axis)):
                    raise SpecError(f"variants[{i}].{axis}: also a grid axis; give it in one "
                                    "place")
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
        # the longest field the error's path starts with: pretrain.seed before pretrain
        heads = [k for k in prefix if e.path == k or e.path.startswith((f"{k}.", f"{k}["))]
        if heads:
            head = max(heads, key=len)
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


def _max_failures(v: Any) -> int:
    if v is None:
        return 0
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise SpecError(f"max_failures: expected an integer >= 0 (retries of a failed trial), "
                        f"got {v!r}")
    return v


# ----------------------------------------------------------------------------------------------
# Searches


def set_path(d: Mapping[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A copy of the trial dict `d` with a dotted field set (`unlearn.lr`: d["unlearn"]["lr"])."""
    out = copy.deepcopy(dict(d))
    *parents, leaf = dotted.split(".")
    node = out
    for p in parents:
        child = node.get(p)
        node[p] = dict(child) if isinstance(child, Mapping) else {}
        node = node[p]
    node[leaf] = value
    return out


def point_config(base: Mapping[str, Any], point: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """The trial dict of one sampled point and one seed."""
    d = dict(base)
    for k in sorted(point):  # sorted: a parent field before its children
        d = set_path(d, k, point[k])
    return {**d, "seed": seed}


def _cap(field: str, n: int, what: str, max_trials: int | None) -> None:
    """Refuses a sweep of more than `max_trials` trials, counted before any is built."""
    if max_trials is not None and n > max_trials:
        count = f"{n:,}" if n < 10**12 else f"about 10^{len(str(n)) - 1}"
        raise SpecError(f"{field}: {count} trials ({what}); at most {max_trials:,} unless "
                        f"--max-trials allows more")


def _search_spec(raw: Mapping[str, Any], name: str, resources, max_failures: int,
                 runtime: Mapping[str, Any] | None, max_trials: int | None) -> SweepSpec:
    s = raw["search"]
    if not isinstance(s, Mapping):
        raise SpecError("search: expected a mapping with num_samples, metric and space")
    for k in s:
        if k not in SEARCH_KEYS:
            raise SpecError(f"search.{k}: unknown field "
                            f"(allowed: {', '.join(sorted(SEARCH_KEYS))})")
    if "variants" in raw:
        raise SpecError("variants: not allowed with search; a search samples search.space "
                        "(run the variants as a grid spec)")
    if "max_concurrent_trials" in raw:
        raise SpecError("max_concurrent_trials: not used by a search; use search.max_concurrent")
    algorithm = s.get("algorithm", "optuna")
    if algorithm != "optuna":
        raise SpecError(f"search.algorithm: unknown value {algorithm!r} (allowed: optuna)")
    grid = _grid(raw.get("grid", {}))
    for axis in grid:
        if axis != "seed":
            raise SpecError(f"grid.{axis}: a search takes only seed on its grid; give fixed "
                            "fields at the top level and sampled ones in search.space")
    base = {k: v for k, v in raw.items() if k in TRIAL_KEYS}
    if "seed" in grid and "seed" in base:
        raise SpecError("grid.seed: also given at the top level; give it in one place")
    seeds = grid.get("seed", [base.pop("seed", 0)])
    base.pop("seed", None)
    for i, sd in enumerate(seeds):
        if isinstance(sd, bool) or not isinstance(sd, int) or not 0 <= sd < 2**31:
            raise SpecError(f"grid.seed[{i}]: expected an integer in 0..2147483647, got {sd!r}")
    if len(set(seeds)) != len(seeds):
        raise SpecError(f"grid.seed: repeated seed in {seeds}")
    base.update(runtime or {})

    num_samples = _pos_int(s.get("num_samples"), "search.num_samples", "the number of points "
                           "to sample")
    _cap("search.num_samples", num_samples * len(seeds), "points x seeds", max_trials)
    max_concurrent = _pos_int(s.get("max_concurrent", 2), "search.max_concurrent",
                              "points evaluated at the same time")
    sampler_seed = s.get("seed", 0)
    if isinstance(sampler_seed, bool) or not isinstance(sampler_seed, int) or sampler_seed < 0:
        raise SpecError(f"search.seed: expected an integer >= 0 (the sampler's seed), "
                        f"got {sampler_seed!r}")
    mode = s.get("mode", "max")
    if mode not in ("max", "min", "pareto"):
        raise SpecError(f"search.mode: unknown value {mode!r} (allowed: max, min, pareto)")
    objective = _objective(s.get("metric"))
    space = _space(s.get("space"))
    asha = _asha(s.get("asha"), len(seeds))
    if mode == "pareto":
        if len(objective) < 2:
            raise SpecError("search.metric: a Pareto search needs two or more metrics (each "
                            "its own objective; the sign of its weight says max or min)")
        if asha:
            raise SpecError("search.asha: not with mode pareto (ASHA stops points on one "
                            "number; a Pareto search has several)")
    base = _on_validation(base, space)

    # Every value a point can take must make a valid trial: check both ends of each range
    # (and every choice) with the other parameters at their low ends.
    low = {p.name: p.args[0] for p in space}
    example = _check_point(base, low, seeds[0], "search.space")
    for p in space:
        hashes = set()
        for v in (p.args if p.kind == "choice" else p.args[:2]):
            cfg = _check_point(base, {**low, p.name: v}, seeds[0], f"search.space.{p.name}",
                               single=p.name)
            hashes.add(cfg.config_hash)
        if len(hashes) == 1:
            raise SpecError(f"search.space.{p.name}: changes nothing in this trial (method "
                            f"{example.method!r} ignores it); sample a field the trial uses")
    trials = [Trial(f"p-low-{i}", _check_point(base, low, sd, "grid.seed"))
              for i, sd in enumerate(seeds)]
    _check_objective_names(objective, example.family)
    if mode == "pareto":
        for split, metric in objective:
            d = metric_registry.direction(example.family, split, metric)
            if d is not None and d.kind == "target":
                raise SpecError(f"search.metric.{split}.{metric}: best at a target value, "
                                "which a Pareto objective cannot maximise or minimise")
    search = SearchSpec(base=base, space=space, seeds=tuple(seeds), objective=objective,
                        mode=mode, num_samples=num_samples, max_concurrent=max_concurrent,
                        asha=asha, sampler_seed=sampler_seed, algorithm=algorithm,
                        family=example.family)
    return SweepSpec(name=name, trials=trials, resources=resources,
                     description=str(raw.get("description", "")), source=dict(raw),
                     max_failures=max_failures, search=search)


def _on_validation(base: dict[str, Any], space: tuple[Param, ...]) -> dict[str, Any]:
    """A search (and ASHA, which stops points on the same numbers) chooses settings on
    validation images; test images are for the final tables. Where the family has a field that
    picks the evaluation images (its config's `selection_split`, e.g. i2i's eval.split), the
    search sets it when the spec leaves it out and refuses any other value; families without
    one (gan) are left as they are."""
    try:
        family = experiment.family_of(base)
    except ConfigError as e:
        raise SpecError(f"{e.path}: {e.message}") from None
    if family.config.selection_split is None:
        return base
    path, value = family.config.selection_split
    why = "a search chooses on validation images; test images are for the final tables"
    if any(p.name == path for p in space):
        raise SpecError(f"search.space.{path}: {why} (set by the search, not sampled)")
    node: Any = base
    for part in path.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    if node is None:
        return set_path(base, path, value)
    if node != value:
        raise SpecError(f"{path}: {why} (allowed here: {value})")
    return base


def _pos_int(v: Any, path: str, what: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise SpecError(f"{path}: expected an integer >= 1 ({what}), got {v!r}")
    return v


def _objective(m: Any) -> dict[tuple[str, str], float]:
    """`{split: {metric: weight}}`, e.g. `{forget: {fid: 1.0}, retain: {fid: -1.0}}`."""
    hint = "expected {split: {metric: weight}}, e.g. {forget: {fid: 1.0}, retain: {fid: -1.0}}"
    if not isinstance(m, Mapping) or not m:
        raise SpecError(f"search.metric: {hint}")
    out = {}
    for split, metrics in m.items():
        if not isinstance(split, str) or not IDENT_RE.match(split):
            raise SpecError(f"search.metric.{split}: a split name such as forget or retain")
        if not isinstance(metrics, Mapping) or not metrics:
            raise SpecError(f"search.metric.{split}: {hint}")
        for metric, w in metrics.items():
            path = f"search.metric.{split}.{metric}"
            if not isinstance(metric, str) or not IDENT_RE.match(metric):
                raise SpecError(f"{path}: a metric name such as fid, is, cosine (lower case)")
            if isinstance(w, bool) or not isinstance(w, (int, float)) or w == 0:
                raise SpecError(f"{path}: expected a non-zero number (the metric's weight), "
                                f"got {w!r}")
            out[(split, metric)] = float(w)
    return out


def _check_objective_names(objective: Mapping[tuple[str, str], float], family: str) -> None:
    """A misspelt metric would otherwise surface only after each point's first trial ran."""
    known = metric_registry.names(family)
    for split, metric in objective:
        if split not in known:
            raise SpecError(f"search.metric.{split}: unknown split for {family} trials "
                            f"(allowed: {', '.join(sorted(known))})")
        if metric not in known[split]:
            raise SpecError(f"search.metric.{split}.{metric}: unknown metric for {family} "
                            f"trials (allowed: {', '.join(known[split])})")


def _space(sp: Any) -> tuple[Param, ...]:
    hint = ("expected {field: {loguniform: [low, high]}}; distributions: "
            f"{', '.join(DISTRIBUTIONS)}")
    if not isinstance(sp, Mapping) or not sp:
        raise SpecError(f"search.space: {hint}")
    out = []
    for name, dist in sp.items():
        path = f"search.space.{name}"
        head = str(name).split(".")[0]
        if head not in TRIAL_KEYS or head in NOT_SEARCHABLE:
            allowed = ", ".join(sorted(TRIAL_KEYS - NOT_SEARCHABLE))
            extra = " (seeds are grid.seed)" if head == "seed" else ""
            raise SpecError(f"{path}: not a searchable trial field{extra} (allowed: {allowed}, "
                            "and their sub-fields such as unlearn.lr)")
        if not isinstance(dist, Mapping) or len(dist) != 1:
            raise SpecError(f"{path}: {hint}")
        (kind, args), = dist.items()
        if kind not in DISTRIBUTIONS:
            raise SpecError(f"{path}.{kind}: unknown distribution (allowed: "
                            f"{', '.join(DISTRIBUTIONS)})")
        if kind == "choice":
            if not isinstance(args, list) or len(args) < 2:
                raise SpecError(f"{path}.choice: expected a list of at least 2 values")
            if not all(isinstance(a, (str, int, float, bool)) for a in args):
                # Optuna's categorical values are scalars; sample a sub-field instead
                raise SpecError(f"{path}.choice: expected numbers or strings (for a mapping, "
                                "sample one of its fields, e.g. generator.name)")
            out.append(Param(name, kind, tuple(args)))
            continue
        num = int if kind == "randint" else (int, float)
        if (not isinstance(args, list) or len(args) != 2
                or any(isinstance(a, bool) or not isinstance(a, num) for a in args)):
            what = "integers" if kind == "randint" else "numbers"
            raise SpecError(f"{path}.{kind}: expected [low, high], two {what}")
        lo, hi = args
        if not lo < hi:
            raise SpecError(f"{path}.{kind}: low must be below high, got [{lo}, {hi}]")
        if kind == "loguniform" and lo <= 0:
            raise SpecError(f"{path}.loguniform: low must be > 0, got {lo}")
        out.append(Param(name, kind, (lo, hi) if kind == "randint" else (float(lo), float(hi))))
    return tuple(out)


def _asha(a: Any, n_seeds: int) -> dict[str, float] | None:
    if a is None:
        return None
    if not isinstance(a, Mapping):
        raise SpecError("search.asha: expected a mapping (grace_period, reduction_factor) or "
                        "leave it out")
    for k in a:
        if k not in ASHA_KEYS:
            raise SpecError(f"search.asha.{k}: unknown field (allowed: "
                            f"{', '.join(sorted(ASHA_KEYS))})")
    if n_seeds < 2:
        raise SpecError("search.asha: needs at least 2 seeds on grid.seed (its rungs are "
                        "seeds: a poor point stops before its later seeds)")
    grace = a.get("grace_period", 1)
    if isinstance(grace, bool) or not isinstance(grace, int) or not 1 <= grace < n_seeds:
        raise SpecError(f"search.asha.grace_period: expected an integer in 1..{n_seeds - 1} "
                        f"(seeds before the first stop), got {grace!r}")
    rf = a.get("reduction_factor", 2)
    if isinstance(rf, bool) or not isinstance(rf, (int, float)) or rf <= 1:
        raise SpecError(f"search.asha.reduction_factor: expected a number > 1, got {rf!r}")
    return {"grace_period": grace, "reduction_factor": float(rf)}


def _check_point(base: Mapping[str, Any], point: Mapping[str, Any], seed: int, where: str,
                 single: str | None = None):
    try:
        return experiment.parse_config(point_config(base, point, seed))
    except ConfigError as e:
        if single and (e.path == single or e.path.startswith(single + ".")):
            raise SpecError(f"search.space.{e.path}: {e.message} (a value the space allows)") \
                from None
        at = f" (at {single} = {point[single]!r})" if single else f" (at {dict(point)})"
        raise SpecError(f"{where}: {e.path}: {e.message}{at}") from None
