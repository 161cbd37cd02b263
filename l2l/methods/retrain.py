"""`retrain`: the gold standard the paper could not afford. The generator is trained from
scratch, exactly like the original, on the same training sample minus every forget-class
image. Cached like the original model (its key adds the excluded classes); its cost is its
training time, also when it is read from the cache."""
import logging

from l2l.context import TrialContext

log = logging.getLogger("l2l.methods.retrain")


def retrain(model, ctx: TrialContext):
    from l2l.pretrain import get_original  # pretrain imports methods' siblings; avoid a cycle

    retrained, hit = get_original(ctx.cfg, ctx.pool, ctx.device, ctx.cache_dir,
                                  exclude_classes=ctx.cfg.forget_classes)
    log.info("retrain: %s %s", "loaded from cache" if hit.hit else "trained and cached", hit.path)
    ctx.caches["retrain"] = hit
    ctx.reported_seconds = float(hit.meta.get("train_seconds", 0.0)) or None
    return retrained
