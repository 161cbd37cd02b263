"""Unlearned models kept on request, and evaluated again without unlearning again.

`save(model, ctx, store)` writes the model's weights as safetensors (no pickle: loading one
runs no code) with the trial's config and what its evaluation needs from the unlearning run
(images seen, epochs, the stopping rule's outcome) in the file's metadata. The file is named by
the SHA-256 of its bytes, `<store>/<first two hex digits>/<sha256>.safetensors`, so the same
model is stored once and a damaged file is recognised (`load` checks the hash). `store` is a
path or a URI (contract/storage.py).

`reevaluate(path, overrides)` rebuilds the trial's data, classifier and evaluation from that
config, with `overrides` (other metrics, another task, another mask) applied, loads the weights
into a model of the trial's architecture and evaluates it: the same numbers as the trial's
when nothing is overridden.
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from contract.storage import Location, locate

log = logging.getLogger("l2l.stored_model")
FORMAT = "l2l-model-1"
SUFFIX = ".safetensors"
MAX_BYTES = 4 << 30  # a stored model larger than this is refused when read (4 GiB)
# What evaluation takes from the unlearning run besides the weights
RUN_STATE = ("samples_seen", "epochs", "stopping")
# Config fields of the machine it ran on, not of the trial: not stored (`l2l eval` takes them
# from its own flags and environment)
MACHINE_FIELDS = ("cache_dir", "data_root", "device")


class StoredModelError(ValueError):
    """A stored model that cannot be used; the message says why."""


@dataclass(frozen=True)
class StoredModel:
    config: dict[str, Any]  # the trial's config (TrialConfig / GanTrialConfig .to_dict())
    state: dict[str, torch.Tensor]
    run: dict[str, Any]  # RUN_STATE of the unlearning run
    sha256: str


def save(model: torch.nn.Module, ctx, store) -> str:
    """Stores `model` (with its trial's config and run state, from `ctx`) under `store`;
    returns the file's location (path or URI). Storing the same weights again writes
    nothing."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    config = {k: v for k, v in ctx.cfg.to_dict().items() if k not in MACHINE_FIELDS}
    meta = {"format": FORMAT, "config": json.dumps(config, sort_keys=True),
            "run": json.dumps({k: getattr(ctx, k) for k in RUN_STATE}, sort_keys=True,
                              default=float)}
    data = save_tensors(state, metadata=meta)
    sha = hashlib.sha256(data).hexdigest()
    where = locate(store, "model store") / sha[:2] / f"{sha}{SUFFIX}"
    if not where.is_file():
        where.write_bytes(data)
    log.info("unlearned model stored: %s", where.uri)
    return where.uri


def load(path) -> StoredModel:
    """A stored model, checked: its name's hash against its bytes, its format, its config."""
    loc: Location = locate(path, "model")
    if not loc.is_file():
        raise StoredModelError(f"model: no file at {loc}")
    data = loc.read_bytes(limit=MAX_BYTES)
    sha = hashlib.sha256(data).hexdigest()
    stem = loc.name.removesuffix(SUFFIX)
    if len(stem) == 64 and all(c in "0123456789abcdef" for c in stem) and stem != sha:
        raise StoredModelError(f"model: {loc} is damaged (its SHA-256 is {sha[:12]}..., its "
                               "name says otherwise)")
    try:
        state = load_tensors(data)
        meta = _metadata(data)
    except Exception as e:  # not a safetensors file at all
        raise StoredModelError(f"model: {loc} is not a stored model ({type(e).__name__})") \
            from None
    if meta.get("format") != FORMAT:
        raise StoredModelError(f"model: {loc} has format {meta.get('format')!r}; this version "
                               f"reads {FORMAT}")
    try:
        config, run = json.loads(meta["config"]), json.loads(meta.get("run", "{}"))
    except (KeyError, ValueError):
        raise StoredModelError(f"model: {loc} has no readable config") from None
    return StoredModel(config, state, run, sha)


def _metadata(data: bytes) -> dict[str, str]:
    """The safetensors header's `__metadata__` (the header is 8 bytes of length, then JSON)."""
    n = int.from_bytes(data[:8], "little")
    if n <= 0 or n > len(data) - 8:
        raise ValueError("bad header length")
    return json.loads(data[8:8 + n]).get("__metadata__") or {}


def with_overrides(config: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """`config` with dotted fields replaced (`{"eval.images_per_class": 50}`)."""
    out = copy.deepcopy(config)
    for dotted, value in overrides.items():
        node, *path = dotted.split(".")
        target, key = out, node
        for part in path:
            nxt = target.get(key)
            if not isinstance(nxt, dict):
                nxt = {}
                target[key] = nxt
            target, key = nxt, part
        target[key] = value
    return out


def reevaluate(path, overrides: dict[str, Any] | None = None,
               runtime: dict[str, Any] | None = None, artifact_dir: Path | None = None):
    """Evaluates a stored model again: a TrialResult whose unlearning and pretraining seconds
    are 0 (nothing was trained) and whose metrics are computed now."""
    import time

    from l2l import experiment
    from l2l.cache import open_cache
    from l2l.result import TrialResult
    from l2l.training import peak_memory_mb, reset_peak_memory, resolve_device
    from l2l.trial import prepare

    stored = load(path)
    raw = with_overrides(stored.config, overrides or {})
    raw.update({k: v for k, v in (runtime or {}).items() if v is not None})
    cfg = experiment.parse_config(raw)
    steps = experiment.FAMILIES.get(cfg.family).steps
    device = resolve_device(cfg.device)
    reset_peak_memory(device)
    cache_dir = open_cache(cfg.cache_dir)
    prep = prepare(steps, cfg, device, cache_dir)
    model = steps.build(cfg)
    try:
        model.load_state_dict(stored.state)
    except RuntimeError as e:  # another architecture than the config's
        raise StoredModelError(f"model: the weights do not fit the config's model "
                               f"({str(e).splitlines()[0][:160]})") from None
    model = model.to(device).eval()
    splits = steps.splits(cfg, prep)
    torch.manual_seed(cfg.seed)
    ctx = steps.context(cfg, prep, splits, model, device, cache_dir)
    for k in RUN_STATE:
        if k in stored.run:
            setattr(ctx, k, stored.run[k])
    t0 = time.perf_counter()
    ev = steps.evaluate(cfg, prep, model, ctx, artifact_dir)
    return TrialResult(cfg, ev.metrics, 0.0, 0.0, time.perf_counter() - t0 - ev.excluded_seconds,
                       str(device), peak_memory_mb(device), ev.caches, ev.artifacts)
