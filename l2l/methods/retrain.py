"""`retrain`: the gold standard the paper could not afford. The generator is trained from
scratch, exactly like the original, on the same training sample minus every forget-class
image. Cached like the original model (its key adds the excluded classes)."""
import logging

from l2l.methods import METHODS, UnlearnContext

log = logging.getLogger("l2l.methods.retrain")


@METHODS.register("retrain")
def retrain(model, ctx: UnlearnContext):
    from l2l.pretrain import get_original  # pretrain imports methods' siblings; avoid a cycle

    retrained, hit = get_original(ctx.cfg, ctx.pool, ctx.device, ctx.cache_dir,
                                  exclude_classes=ctx.cfg.forget_classes)
    log.info("retrain: %s %s", "loaded from cache" if hit.hit else "trained and cached", hit.path)
    ctx.caches["retrain"] = hit
    return retrained
