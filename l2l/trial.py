"""One trial, as a plain function: config -> original model -> unlearning -> evaluation.

Nothing here knows about Ray, MLflow or Parquet; `sweeps` wraps `run_trial`, and
`python -m l2l trial CONFIG` runs it alone.
"""
from __future__ import annotations

import copy
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from l2l.cache import CacheHit, default_cache_dir
from l2l.classifier import get_classifier
from l2l.config import TrialConfig
from l2l.data import dataset_key, load_split, make_splits, sample
from l2l.methods import METHODS, UnlearnContext
from l2l.metrics import MetricValue, evaluate
from l2l.pretrain import get_original
from l2l.tasks import task_mask
from l2l.training import resolve_device

log = logging.getLogger("l2l.trial")


@dataclass
class TrialResult:
    config: TrialConfig
    metrics: list[MetricValue]
    pretrain_seconds: float
    unlearn_seconds: float
    eval_seconds: float
    device: str
    caches: dict[str, dict[str, Any]] = field(default_factory=dict)  # kind -> hit, key, seconds

    def rows(self) -> list[dict[str, Any]]:
        """Tidy rows: one per metric value, with the config columns of the result schema."""
        base = {**config_columns(self.config), "pretrain_seconds": self.pretrain_seconds,
                "unlearn_seconds": self.unlearn_seconds, "eval_seconds": self.eval_seconds,
                "device": self.device}
        return [{**base, "split": m.split, "metric": m.metric, "value": m.value, "n": m.n,
                 "higher_is_better": m.higher_is_better} for m in self.metrics]


def config_columns(c: TrialConfig) -> dict[str, Any]:
    """The columns of the result schema that describe the trial's config."""
    return {
        "generator": c.generator.name, "generator_size": c.generator.size,
        "method": c.method, "dataset": c.dataset,
        "forget_set": json.dumps(list(c.forget_classes)),
        "retain_set": json.dumps(list(c.retain_classes)),
        "retain_mode": c.retain.mode,
        "retain_fraction": {"full": 1.0, "fraction": c.retain.fraction}.get(c.retain.mode, 0.0),
        "proxy_source": c.retain.source,
        "proxy_size": c.retain.size,
        "alpha": c.alpha, "noise": c.noise, "task": c.task.kind,
        "mask_ratio": c.task.mask_ratio, "seed": c.seed, "pretrain_seed": c.pretrain.seed,
        "config_hash": c.config_hash,
        "family": "i2i", "setting": "class", "forget_k": len(c.forget_classes), "params": "{}",
    }


def _cache_info(hit: CacheHit) -> dict[str, Any]:
    return {"hit": hit.hit, "key": hit.key, "path": str(hit.path), "seconds": round(hit.seconds, 2)}


def run_trial(cfg: TrialConfig, artifact_dir: Path | None = None) -> TrialResult:
    device = resolve_device(cfg.device)
    cache_dir = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir()
    train = load_split(cfg, "train", cache_dir / "data")
    test = load_split(cfg, "test", cache_dir / "data")

    classifier, clf_hit = get_classifier(cfg.classifier, dataset_key(cfg), train, test, device,
                                         cache_dir)
    log.info("classifier: %s", "loaded from cache" if clf_hit.hit else "trained", )
    pool = sample(train, cfg.pretrain.images, cfg.pretrain.seed)
    t0 = time.perf_counter()
    original, gen_hit = get_original(cfg, pool, device, cache_dir)
    pretrain_seconds = time.perf_counter() - t0
    log.info("original %s: %s %s (%.1f s)", cfg.generator.name,
             "loaded from cache" if gen_hit.hit else "trained and cached", gen_hit.path,
             pretrain_seconds)

    splits = make_splits(pool, test, cfg.forget_classes, cfg.retain,
                         cfg.unlearn.images_per_class, cfg.eval.images_per_class, cfg.seed)
    mask = task_mask(cfg.task.kind, original.grid, cfg.task.mask_ratio).to(device)
    torch.manual_seed(cfg.seed)
    ctx = UnlearnContext(cfg, splits, mask, device, torch.Generator().manual_seed(cfg.seed),
                         pool, cache_dir)
    t0 = time.perf_counter()
    model = METHODS.get(cfg.method)(copy.deepcopy(original), ctx)
    unlearn_seconds = time.perf_counter() - t0
    if "retrain" in ctx.caches:  # a cached retrain costs its training time, not the read
        unlearn_seconds = float(ctx.caches["retrain"].meta.get("train_seconds", unlearn_seconds))

    t0 = time.perf_counter()
    metrics = []
    for split, data in (("forget", splits.eval_forget), ("retain", splits.eval_retain)):
        metrics += evaluate(model, classifier, data.x, mask, split, device, cfg.eval.batch_size,
                            seed=cfg.seed)
    eval_seconds = time.perf_counter() - t0
    caches = {"classifier": _cache_info(clf_hit), "generator": _cache_info(gen_hit),
              **{k: _cache_info(v) for k, v in ctx.caches.items()}}
    return TrialResult(cfg, metrics, pretrain_seconds, unlearn_seconds, eval_seconds, str(device),
                       caches)
