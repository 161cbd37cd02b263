"""`retrain` reference: the gold standard the paper could not afford.

- trains the whole generator from scratch, exactly like the original (same code, pretraining
  settings and seed), on the same training sample minus every forget-class image
  (`get_original(exclude_classes=...)`).
- cached like the original model (its key adds the excluded classes).
- cost -> its training time (`reported_seconds`, also when read from the cache) and the images
  its training saw (`samples_seen`): pretrain.epochs x the images of its pool (the cache
  entry's `images_seen` where recorded). A VQ-GAN trains at least one epoch in each of its two
  phases, so at pretrain.epochs 1 it saw twice that."""
import logging

import torch

from l2l.context import TrialContext

log = logging.getLogger("l2l.methods.retrain")


def retrain(model, ctx: TrialContext):
    from l2l.pretrain import get_original  # pretrain imports methods' siblings; avoid a cycle

    retrained, hit = get_original(ctx.cfg, ctx.pool, ctx.device, ctx.cache_dir,
                                  exclude_classes=ctx.cfg.forget_classes)
    log.info("retrain: %s %s", "loaded from cache" if hit.hit else "trained and cached", hit.path)
    ctx.caches["retrain"] = hit
    ctx.reported_seconds = float(hit.meta.get("train_seconds", 0.0)) or None
    kept = int((~torch.isin(ctx.pool.y, torch.tensor(list(ctx.cfg.forget_classes)))).sum())
    ctx.samples_seen = int(hit.meta.get("images_seen", ctx.cfg.pretrain.epochs * kept))
    return retrained
