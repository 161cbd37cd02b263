"""The GAN family's trial steps (l2l/trial.py runs them): the data set, the original DCGAN
trained on a sample of it (cached), and evaluation of the unlearned GAN's samples as a whole
(l2l/gan/evaluate.py)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from contract.metrics import GAN_SPLIT
from l2l.cache import CacheRoot
from l2l.context import TrialContext
from l2l.gan.config import GanTrialConfig
from l2l.gan.data import dataset_key, load, make_splits, training_pool, validation
from l2l.gan.evaluate import evaluate
from l2l.gan.pretrain import build_gan, fid_check, get_gan
from l2l.relearn import relearn_gan
from l2l.sequence import start_model
from l2l.result import MetricValue
from l2l.trial import Evaluation, Prepared


class GanSteps:
    def load(self, cfg: GanTrialConfig, split: str, download_dir: Path):
        return load(cfg, split, download_dir)

    def dataset_key(self, cfg: GanTrialConfig) -> dict:
        return dataset_key(cfg)

    def training_pool(self, cfg: GanTrialConfig, train):
        return training_pool(cfg, train)

    def build(self, cfg: GanTrialConfig):
        return build_gan(cfg)

    def original(self, cfg: GanTrialConfig, prep: Prepared, device, cache_dir: CacheRoot):
        if cfg.earlier_requests:  # a later deletion request: the GAN the earlier ones left
            return start_model(cfg, prep, device, cache_dir, build_gan)
        check = fid_check(cfg, prep.classifier, validation(prep.train)) \
            if cfg.pretrain.fid_patience is not None else None
        return get_gan(cfg, prep.pool, device, cache_dir, check=check)

    def splits(self, cfg: GanTrialConfig, prep: Prepared):
        every = make_splits(cfg, prep.pool, prep.test, prep.train)
        if not cfg.earlier_requests:
            return every
        # a later deletion request unlearns its own classes' images, keeps every request's
        # out of the retain set, and is evaluated on all of them
        own = torch.isin(every.forget.y, torch.tensor(cfg.own_request))
        return dataclasses.replace(every, forget=every.forget.subset(torch.nonzero(own).flatten()))

    def context(self, cfg: GanTrialConfig, prep: Prepared, splits, original, device,
                cache_dir: CacheRoot) -> TrialContext:
        return TrialContext(cfg, splits, device, torch.Generator().manual_seed(cfg.seed),
                            cache_dir, pool=prep.pool, classifier=prep.classifier)

    def relearn(self, cfg: GanTrialConfig, gan, ctx: TrialContext):
        return relearn_gan(gan, ctx, cfg.relearn)

    def curve(self, cfg: GanTrialConfig, prep: Prepared, gan, ctx: TrialContext):
        """The forgetting curve's measurement (l2l/monitor.py): the final evaluation's metrics
        on the same latents and images, less the downstream classifier (a training run)."""
        def measure(g) -> list[MetricValue]:
            return evaluate(g, prep.classifier, cfg, ctx.splits, ctx.device,
                            ctx.samples_seen / len(ctx.splits.retain), ctx.samples_seen,
                            downstream=False)[0]
        return measure

    def evaluate(self, cfg: GanTrialConfig, prep: Prepared, gan, ctx: TrialContext,
                 artifact_dir: Path | None) -> Evaluation:
        epochs = ctx.epochs if ctx.epochs is not None else \
            ctx.samples_seen / len(ctx.splits.retain)
        metrics, samples = evaluate(gan, prep.classifier, cfg, ctx.splits, ctx.device, epochs,
                                    ctx.samples_seen)
        metrics += [MetricValue(GAN_SPLIT, name, float(v), len(ctx.splits.retain))
                    for name, v in ctx.stopping.items()]  # the stopping rule's outcome
        artifacts = {}
        if artifact_dir is not None:
            from torchvision.utils import save_image

            artifact_dir.mkdir(parents=True, exist_ok=True)
            save_image(samples[:64], artifact_dir / "samples.png", nrow=8)
            artifacts["samples.png"] = str(artifact_dir / "samples.png")
        return Evaluation(metrics, artifacts)


STEPS = GanSteps()
