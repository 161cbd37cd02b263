"""One GAN-unlearning trial as a plain function: config -> original GAN -> unlearning ->
evaluation. Nothing here knows about Ray, MLflow or Parquet; l2l/experiment.py dispatches here
for `family: gan`.

    from l2l.gan.config import GanTrialConfig
    from l2l.gan.trial import run_gan_trial
    res = run_gan_trial(GanTrialConfig.from_dict({"family": "gan", "method": "cascade",
                                                  "forget_set": {"classes": [5]}}))
    res.rows()  # tidy rows of the result schema
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

from l2l.cache import cache_info, default_cache_dir
from l2l.classifier import get_classifier
from l2l.gan.config import GanTrialConfig
from l2l.gan.data import dataset_key, load, make_splits, training_pool
from l2l.gan.evaluate import GanMetric, evaluate
from l2l.gan.methods import METHODS, GanContext
from l2l.gan.pretrain import get_gan
from l2l.training import peak_memory_mb, reset_peak_memory, resolve_device

log = logging.getLogger("l2l.gan.trial")
# Result-schema columns of the image-to-image family; null in GAN rows.
I2I_COLUMNS = ("alpha", "noise", "task", "mask_ratio", "retain_fraction", "proxy_source",
               "proxy_size")


@dataclass
class GanTrialResult:
    config: GanTrialConfig
    metrics: list[GanMetric]
    pretrain_seconds: float
    unlearn_seconds: float
    eval_seconds: float
    device: str
    peak_memory_mb: float
    caches: dict[str, dict[str, Any]] = field(default_factory=dict)  # kind -> hit, key, path
    artifacts: dict[str, str] = field(default_factory=dict)  # name -> path

    @property
    def pretrain_cache_hit(self) -> bool:
        """Whether the original GAN was read from the cache."""
        return self.caches.get("generator", {}).get("hit", False)

    def rows(self) -> list[dict[str, Any]]:
        """Tidy rows: one per metric value, with the config columns of the result schema."""
        base = {**config_columns(self.config), "pretrain_seconds": self.pretrain_seconds,
                "unlearn_seconds": self.unlearn_seconds, "eval_seconds": self.eval_seconds,
                "device": self.device, "peak_memory_mb": self.peak_memory_mb,
                "pretrain_cache_hit": self.pretrain_cache_hit}
        return [{**base, "split": m.split, "metric": m.metric, "value": m.value, "n": m.n,
                 "higher_is_better": m.higher_is_better} for m in self.metrics]


def config_columns(c: GanTrialConfig) -> dict[str, Any]:
    """The columns of the result schema that describe the trial's config."""
    if c.setting == "class":
        forget_set, retain_set = json.dumps(list(c.forget_classes)), \
            json.dumps(list(c.retain_classes))
    else:
        forget_set = json.dumps(c.forget_set.to_dict(), sort_keys=True)
        retain_set = json.dumps(list(range(c.n_classes)))  # every class stays
    return {
        "family": "gan", "generator": c.generator.name, "generator_size": c.generator.size,
        "method": c.method, "dataset": c.dataset, "setting": c.setting,
        "forget_k": c.forget_k, "forget_set": forget_set, "retain_set": retain_set,
        "retain_mode": "full", "params": c.params_json(), "seed": c.seed,
        "pretrain_seed": c.pretrain.seed, "config_hash": c.config_hash,
        **{k: None for k in I2I_COLUMNS},
    }


def run_gan_trial(cfg: GanTrialConfig, artifact_dir: Path | None = None) -> GanTrialResult:
    device = resolve_device(cfg.device)
    reset_peak_memory(device)
    cache_dir = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir()
    train = load(cfg, "train", cache_dir / "data")
    test = load(cfg, "test", cache_dir / "data")
    classifier, clf_hit = get_classifier(cfg.classifier, dataset_key(cfg), train, test, device,
                                         cache_dir)
    pool = training_pool(cfg, train)
    t0 = time.perf_counter()
    original, gen_hit = get_gan(cfg, pool, device, cache_dir)
    pretrain_seconds = time.perf_counter() - t0
    log.info("original dcgan/%s: %s %s (%.1f s)", cfg.generator.size,
             "loaded from cache" if gen_hit.hit else "trained and cached", gen_hit.path,
             pretrain_seconds)

    splits = make_splits(cfg, pool, test)
    torch.manual_seed(cfg.seed)
    ctx = GanContext(cfg, splits, classifier, device, torch.Generator().manual_seed(cfg.seed),
                     cache_dir)
    private = copy.deepcopy(original)  # copying is not unlearning: outside the timer
    t0 = time.perf_counter()
    gan = METHODS.get(cfg.method)(private, ctx)
    unlearn_seconds = time.perf_counter() - t0
    if "retrain" in ctx.caches:  # a cached retrain costs its training time, not the read
        unlearn_seconds = float(ctx.caches["retrain"].meta["train_seconds"])
    elif cfg.method == "original":  # nothing unlearned (the schema's 0)
        unlearn_seconds = 0.0
    epochs = ctx.epochs if ctx.epochs is not None else ctx.samples_seen / len(splits.retain)

    t0 = time.perf_counter()
    metrics, samples = evaluate(gan, classifier, cfg, splits, device, epochs, ctx.samples_seen)
    eval_seconds = time.perf_counter() - t0
    artifacts = {}
    if artifact_dir is not None:
        from torchvision.utils import save_image

        artifact_dir = Path(artifact_dir)
        artifact_dir.mkdir(parents=True, exist_ok=True)
        save_image(samples[:64], artifact_dir / "samples.png", nrow=8)
        artifacts["samples.png"] = str(artifact_dir / "samples.png")
    caches = {"classifier": cache_info(clf_hit), "generator": cache_info(gen_hit),
              **{k: cache_info(v) for k, v in ctx.caches.items()}}
    return GanTrialResult(cfg, metrics, pretrain_seconds, unlearn_seconds, eval_seconds,
                          str(device), peak_memory_mb(device), caches, artifacts)
