"""Deletion requests in sequence: forget A, then B, then C on the same model.

A trial with `earlier_requests` ([A, B]) and forget set A + B + C is the third request: it
starts from the model that unlearning A and then B left, unlearns C (its own request: the
forget set less the earlier ones) with the same method and settings, and is evaluated like
any trial on the whole forget set, so that its rows compare directly with forgetting A, B and
C at once (the same trial without `earlier_requests`) and with retraining without them. Its
unlearning seconds and images seen are those of its own request; the cost of the sequence so
far is the sum over its requests' trials (analysis/sequence.py).

The model after the earlier requests is the unlearned model of `cfg.previous_request()` (the
trial of A then B, which starts from the trial of A, and so on), kept in the model cache
(kind `unlearned`, keyed by that trial's identity): a sweep over the requests of a sequence
unlearns each of them once, and every trial of it starts from the same model as its
predecessor's trial ended with.
"""
from __future__ import annotations

import logging

from contract.identity import IDENTITY_VERSION
from l2l import cache
from l2l.cache import CacheRoot

log = logging.getLogger("l2l.sequence")


def start_model(cfg, prep, device, cache_dir: CacheRoot, build_model):
    """(the model the earlier requests left, its CacheHit); unlearned now unless cached.
    `build_model(cfg)`: an untrained model of the trial's architecture."""
    from l2l.trial import unlearned_model

    prev = cfg.previous_request()

    def build():
        log.info("deletion request %d: unlearning the earlier requests %s first",
                 len(cfg.earlier_requests) + 1, [list(r) for r in cfg.earlier_requests])
        model = unlearned_model(prev, prep, device, cache_dir)
        return model.state_dict(), {"trial": prev.config_hash,
                                    "requests": [list(r) for r in cfg.earlier_requests]}

    state, hit = cache.get_or_build(cache_dir, "unlearned",
                                    {"trial": prev.identity_hash(IDENTITY_VERSION)}, build)
    model = build_model(cfg)
    model.load_state_dict(state)
    return model.to(device).eval(), hit
