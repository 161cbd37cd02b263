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

from l2l.cache import CacheHit, cache_info, default_cache_dir
from l2l.classifier import get_classifier
from l2l.config import TrialConfig
from l2l.data import dataset_key, load_split, make_splits, sample
from l2l.features import get_extractor
from l2l.methods import METHODS, UnlearnContext
from l2l.metrics import Evaluator, MetricValue, RetrainReference, evaluate, membership_sets
from l2l.pretrain import get_original
from l2l.tasks import task_mask
from l2l.training import peak_memory_mb, reset_peak_memory, resolve_device

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
    artifacts: dict[str, str] = field(default_factory=dict)  # name -> path (with artifact_dir)
    peak_memory_mb: float = 0.0  # CUDA: max allocated; CPU: the process's peak RSS

    @property
    def pretrain_cache_hit(self) -> bool:
        """Whether the original model was read from the cache."""
        return self.caches.get("generator", {}).get("hit", False)

    def rows(self) -> list[dict[str, Any]]:
        """Tidy rows: one per metric value, with the config columns of the result schema."""
        base = {**config_columns(self.config), "pretrain_seconds": self.pretrain_seconds,
                "unlearn_seconds": self.unlearn_seconds, "eval_seconds": self.eval_seconds,
                "device": self.device, "peak_memory_mb": self.peak_memory_mb,
                "pretrain_cache_hit": self.pretrain_cache_hit}
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


def run_trial(cfg: TrialConfig, artifact_dir: Path | None = None) -> TrialResult:
    device = resolve_device(cfg.device)
    reset_peak_memory(device)
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
    private = copy.deepcopy(original)  # copying is not unlearning: outside the timer
    t0 = time.perf_counter()
    model = METHODS.get(cfg.method)(private, ctx)
    unlearn_seconds = 0.0 if cfg.method == "original" else time.perf_counter() - t0
    if "retrain" in ctx.caches:  # a cached retrain costs its training time, not the read
        unlearn_seconds = float(ctx.caches["retrain"].meta.get("train_seconds", unlearn_seconds))

    caches = {"classifier": cache_info(clf_hit), "generator": cache_info(gen_hit),
              **{k: cache_info(v) for k, v in ctx.caches.items()}}
    t0 = time.perf_counter()
    reference, reference_seconds = None, 0.0
    if cfg.eval.retrain_reference:
        if "retrain" in ctx.caches:  # this trial's model is the retrain model
            reference = RetrainReference(model, _reference_key(cfg, ctx.caches["retrain"]), True)
        else:
            t1 = time.perf_counter()
            retrained, ref_hit = get_original(cfg, pool, device, cache_dir,
                                              exclude_classes=cfg.forget_classes)
            reference_seconds = time.perf_counter() - t1
            log.info("retrain reference: %s %s (%.1f s)", "loaded from cache" if ref_hit.hit
                     else "trained and cached", ref_hit.path, reference_seconds)
            reference = RetrainReference(retrained, _reference_key(cfg, ref_hit))
            caches["retrain_reference"] = cache_info(ref_hit)
    ev = _evaluator(cfg, classifier, clf_hit, original.patch, mask, device, cache_dir)
    results = {}
    for i, (split, data) in enumerate((("forget", splits.eval_forget),
                                       ("retain", splits.eval_retain))):
        membership = None
        if cfg.eval.mia:
            # Members: the images unlearning was told to forget (forget split), the original
            # model's training images of the retain classes (retain split).
            candidates = splits.forget if split == "forget" else pool.subset(torch.nonzero(
                torch.isin(pool.y, torch.tensor(cfg.retain_classes))).flatten())
            membership = membership_sets(candidates, data, seed=cfg.seed * 2 + i + 7919)
        results[split] = evaluate(model, data, split, ev, membership, reference)
    metrics = [m for r in results.values() for m in r.metrics]
    artifacts = {}
    if artifact_dir is not None:
        from l2l.artifacts import write_trial_artifacts

        artifacts = write_trial_artifacts(Path(artifact_dir), results, ev.pmask,
                                          cfg.eval.grid_images)
    # Getting the retrain reference (training it, the first time) is not evaluation work.
    eval_seconds = time.perf_counter() - t0 - reference_seconds
    for kind in ("features", "cosine_features", "retrain_outputs"):
        found = [r.cache_hits[kind] for r in results.values() if kind in r.cache_hits]
        if found:
            caches[kind] = {"hit": all(found)}
    return TrialResult(cfg, metrics, pretrain_seconds, unlearn_seconds, eval_seconds, str(device),
                       caches, artifacts, peak_memory_mb(device))


def _reference_key(cfg: TrialConfig, hit: CacheHit) -> str:
    """The retrain model's identity for cached outputs: its weights and how it samples."""
    return f"{hit.key}:steps={cfg.generator.sampling_steps}"


def _evaluator(cfg: TrialConfig, classifier, clf_hit: CacheHit, patch: int, mask, device,
               cache_dir: Path) -> Evaluator:
    e = cfg.eval

    def extractor(name):
        return get_extractor(name, weights=getattr(e, f"{name}_weights", None),
                             classifier=classifier, classifier_key=clf_hit.key,
                             clip_model=e.clip_model, device=device)

    clf = extractor("classifier")
    features = clf if e.features == "classifier" else extractor(e.features)
    cosine = features if e.cosine_features in (None, e.features) else \
        clf if e.cosine_features == "classifier" else extractor(e.cosine_features)
    return Evaluator(mask, patch, device, features, cosine, clf, tuple(cfg.forget_classes),
                     e.batch_size, cfg.seed, e.kid_subsets, e.kid_subset_size, cache_dir,
                     dataset_key(cfg))
