"""The image-to-image family's trial steps (l2l/trial.py runs them): Fashion-MNIST or an image
folder, the original generator trained on a sample of it, the task's mask, and evaluation per
split (l2l/metrics.py) with membership inference and the retrained model as references."""
from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import torch

from contract.metrics import I2I_TRIAL_SPLIT
from l2l.cache import CacheHit, CacheRoot, cache_info
from l2l.config import TrialConfig
from l2l.context import TrialContext
from l2l.data import dataset_key, load_split, make_splits, pool_sample, validation_holdout
from l2l.features import get_extractor
from l2l.metrics import Evaluator, RetrainReference, evaluate, membership_sets
from l2l.pretrain import get_original, model_of, pretrain_validation
from l2l.relearn import relearn_i2i
from l2l.result import MetricValue
from l2l.sequence import start_model
from l2l.tasks import TrainingMasks, task_mask
from l2l.trial import Evaluation, Prepared

log = logging.getLogger("l2l.i2i")


class I2ISteps:
    def load(self, cfg: TrialConfig, split: str, download_dir: Path):
        return load_split(cfg, split, download_dir)

    def dataset_key(self, cfg: TrialConfig) -> dict:
        return dataset_key(cfg)

    def training_pool(self, cfg: TrialConfig, train):
        # Never from the validation holdout: eval.split validation evaluates on it.
        return pool_sample(train, cfg.pretrain.images, cfg.pretrain.seed)

    def build(self, cfg: TrialConfig):
        return model_of(cfg)

    def original(self, cfg: TrialConfig, prep: Prepared, device, cache_dir: CacheRoot):
        if cfg.earlier_requests:  # a later deletion request: the model the earlier ones left
            return start_model(cfg, prep, device, cache_dir, model_of)
        # Validation images whose loss is recorded per pretraining epoch (convergence)
        return get_original(cfg, prep.pool, device, cache_dir,
                            val=pretrain_validation(prep.train))

    def splits(self, cfg: TrialConfig, prep: Prepared):
        held_out = prep.test if cfg.eval.split == "test" else validation_holdout(prep.train)

        def splits(forget):
            return make_splits(prep.pool, held_out, forget, cfg.retain,
                               cfg.unlearn.images_per_class, cfg.eval.images_per_class, cfg.seed)
        every = splits(cfg.forget_classes)
        if not cfg.earlier_requests:
            return every
        # a later deletion request unlearns its own classes and is evaluated on all of them
        return dataclasses.replace(splits(cfg.own_request), eval_forget=every.eval_forget,
                                   eval_retain=every.eval_retain)

    def context(self, cfg: TrialConfig, prep: Prepared, splits, original, device,
                cache_dir: CacheRoot) -> TrialContext:
        mask = task_mask(cfg.task.kind, original.grid, cfg.task.mask_ratio).to(device)
        # The step masks have a generator of their own: changing unlearn.random_masks does not
        # change which images the steps draw.
        masks = TrainingMasks(mask, cfg.unlearn.random_masks,
                              torch.Generator().manual_seed(cfg.seed + 104729))
        return TrialContext(cfg, splits, device, torch.Generator().manual_seed(cfg.seed),
                            cache_dir, pool=prep.pool, mask=mask, train_masks=masks,
                            classifier=prep.classifier)

    def relearn(self, cfg: TrialConfig, model, ctx: TrialContext):
        return relearn_i2i(model, ctx, cfg.relearn)

    def curve(self, cfg: TrialConfig, prep: Prepared, model, ctx: TrialContext):
        """The forgetting curve's measurement (l2l/monitor.py): the final evaluation's metrics
        on the same images, less membership inference and the retrain comparison."""
        ev = _evaluator(cfg, prep, model.patch, _eval_mask(cfg, model, ctx), ctx.device,
                        ctx.cache_dir)
        sets = (("forget", ctx.splits.eval_forget), ("retain", ctx.splits.eval_retain))

        def measure(m) -> list[MetricValue]:
            return [v for split, data in sets for v in evaluate(m, data, split, ev).metrics] + \
                [MetricValue(I2I_TRIAL_SPLIT, "samples_seen", float(ctx.samples_seen),
                             int(ctx.samples_seen))]
        return measure

    def evaluate(self, cfg: TrialConfig, prep: Prepared, model, ctx: TrialContext,
                 artifact_dir: Path | None) -> Evaluation:
        caches, reference, reference_seconds = {}, None, 0.0
        if cfg.eval.retrain_reference:
            if "retrain" in ctx.caches:  # this trial's model is the retrain model
                reference = RetrainReference(model, _reference_key(cfg, ctx.caches["retrain"]),
                                             True)
            else:
                t0 = time.perf_counter()
                retrained, hit = get_original(cfg, prep.pool, ctx.device, ctx.cache_dir,
                                              exclude_classes=cfg.forget_classes)
                reference_seconds = time.perf_counter() - t0
                log.info("retrain reference: %s %s (%.1f s)", "loaded from cache" if hit.hit
                         else "trained and cached", hit.path, reference_seconds)
                reference = RetrainReference(retrained, _reference_key(cfg, hit))
                caches["retrain_reference"] = cache_info(hit)
        ev = _evaluator(cfg, prep, model.patch, _eval_mask(cfg, model, ctx), ctx.device,
                        ctx.cache_dir)
        results = {}
        for i, (split, data) in enumerate((("forget", ctx.splits.eval_forget),
                                           ("retain", ctx.splits.eval_retain))):
            membership = None
            if cfg.eval.mia:
                # Members: the images unlearning was told to forget (forget split), the
                # original model's training images of the retain classes (retain split).
                pool = prep.pool
                candidates = ctx.splits.forget if split == "forget" else pool.subset(
                    torch.nonzero(torch.isin(pool.y, torch.tensor(cfg.retain_classes)))
                    .flatten())
                membership = membership_sets(candidates, data, seed=cfg.seed * 2 + i + 7919)
            results[split] = evaluate(model, data, split, ev, membership, reference)
        artifacts = {}
        if artifact_dir is not None:
            from l2l.artifacts import write_trial_artifacts

            artifacts = write_trial_artifacts(artifact_dir, results, ev.pmask,
                                              cfg.eval.grid_images)
        for kind in ("features", "cosine_features", "retrain_outputs"):
            found = [r.cache_hits[kind] for r in results.values() if kind in r.cache_hits]
            if found:
                caches[kind] = {"hit": all(found)}
        metrics = [m for r in results.values() for m in r.metrics]
        # The unlearning budget in images, once a trial: those `ctx.batch` drew (retrain: its
        # training's; original: 0); n is the same count.
        metrics.append(MetricValue(I2I_TRIAL_SPLIT, "samples_seen", float(ctx.samples_seen),
                                   int(ctx.samples_seen)))
        return Evaluation(metrics, artifacts, caches, reference_seconds)


def _eval_mask(cfg: TrialConfig, model, ctx: TrialContext) -> torch.Tensor:
    """The mask evaluation runs under: the trial's task's, or eval.task's (mask transfer)."""
    t = cfg.eval.task
    return ctx.mask if t is None else task_mask(t.kind, model.grid, t.mask_ratio).to(ctx.device)


def _reference_key(cfg: TrialConfig, hit: CacheHit) -> str:
    """The retrain model's identity for cached outputs: its weights and how it samples."""
    return f"{hit.key}:steps={cfg.generator.sampling_steps}"


def _evaluator(cfg: TrialConfig, prep: Prepared, patch: int, mask, device,
               cache_dir: CacheRoot) -> Evaluator:
    e = cfg.eval

    def extractor(name):
        return get_extractor(name, weights=getattr(e, f"{name}_weights", None),
                             classifier=prep.classifier,
                             classifier_key=prep.classifier_hit.key,
                             clip_model=e.clip_model, device=device)

    clf = extractor("classifier")
    features = clf if e.features == "classifier" else extractor(e.features)
    cosine = features if e.cosine_features in (None, e.features) else \
        clf if e.cosine_features == "classifier" else extractor(e.cosine_features)
    return Evaluator(mask, patch, device, features, cosine, clf, tuple(cfg.forget_classes),
                     e.batch_size, cfg.seed, e.kid_subsets, e.kid_subset_size, cache_dir,
                     dataset_key(cfg))


STEPS = I2ISteps()
