"""Evaluation of an image-to-image generator on one split (forget or retain).

Every metric is computed on the generator's composite outputs (visible input pixels plus the
generated hidden region) against the originals of the same images; docs/results-schema.md gives
each one's meaning, direction and n.

  quality     fid, kid (+ kid_std), is                features of the `eval.features` extractor
              cosine                                  each output vs its own original
                                                      (`eval.cosine_features`)
              psnr, ssim, mse_masked                  pixels of the hidden region
  forgetting  mia_auc (+ mia_auc_retrain,             loss-threshold membership inference
              mia_gap_retrain)                        (and its distance to retrain's)
              retrain_distance                        outputs vs those of `retrain`'s model
              forget_class_share                      outputs the classifier puts in a forget class

Deterministic for a seed: sampling generators draw their noise from a generator seeded by it,
KID's subsets and the attack's member sample are drawn under it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from l2l import scores
from l2l.data import ImageSet
from l2l.features import Extractor, cached_tensors, extract, reference_features, tensor_sha256
from l2l.result import MetricValue
from l2l.tasks import pixel_mask

FORMAT = 1  # bump when what a cached retrain output is changes


@dataclass
class Evaluator:
    """What evaluating any model of a trial needs, built once per trial."""

    mask: torch.Tensor  # the task's token mask [L]
    patch: int  # pixels per token side
    device: torch.device
    features: Extractor  # fid, kid, is
    cosine_features: Extractor  # cosine, saved embeddings
    classifier: Extractor  # forget_class_share; is when `features` has no logits
    forget_classes: tuple[int, ...]
    batch_size: int = 256
    seed: int = 0
    kid_subsets: int = 50
    kid_subset_size: int = 1000
    cache_dir: Path | None = None  # reference features and retrain outputs are cached here
    dataset: dict = field(default_factory=dict)  # l2l.data.dataset_key, for cache keys

    @property
    def pmask(self) -> torch.Tensor:
        """[1, 1, H, W] float, 1 = hidden (generated)"""
        return pixel_mask(self.mask.cpu(), self.patch)


@dataclass
class RetrainReference:
    """The model retrained without the forget classes, for retrain_distance and
    mia_auc_retrain. `key` identifies it (cache key and sampling steps); `same` when the model
    evaluated is this very model (the `retrain` method), whose distance is 0 by definition."""

    model: nn.Module
    key: str
    same: bool = False


@dataclass
class SplitResult:
    metrics: list[MetricValue]
    images: torch.Tensor  # originals [N, C, H, W] in [0, 1]
    outputs: torch.Tensor  # composites [N, C, H, W] in [0, 1]
    labels: torch.Tensor  # [N]
    embedding_output: torch.Tensor  # [N, D] (cosine_features)
    embedding_original: torch.Tensor  # [N, D]
    cache_hits: dict[str, bool] = field(default_factory=dict)


@torch.no_grad()
def generate(model, x: torch.Tensor, mask: torch.Tensor, device, batch_size: int,
             seed: int = 0) -> torch.Tensor:
    """Composite outputs for all of x: [N, C, H, W] on the CPU. Sampling generators draw their
    noise from a generator seeded by `seed`, so evaluation is deterministic."""
    g = torch.Generator().manual_seed(seed)
    return torch.cat([model.reconstruct(x[i:i + batch_size].to(device), mask.to(device), g).cpu()
                      for i in range(0, len(x), batch_size)])


def masked_mse(out: torch.Tensor, ref: torch.Tensor, pmask: torch.Tensor) -> torch.Tensor:
    """Per-image mean squared error over the hidden pixels: [N]."""
    err = ((out.double() - ref.double()) ** 2 * pmask.double()).sum(dim=(1, 2, 3))
    return err / (pmask.sum() * out.shape[1])


def membership_sets(candidates: ImageSet, heldout: ImageSet, seed: int,
                    ) -> tuple[ImageSet, torch.Tensor]:
    """Members and non-members of equal size per class, for the attack: per class of `heldout`,
    k = min(its held-out images, its candidates) candidates (training images) drawn by `seed`,
    and the first k held-out images (already a random sample). Returns (members, indices of the
    non-members in `heldout`)."""
    g = torch.Generator().manual_seed(seed)
    member_idx, nonmember_idx = [], []
    for c in torch.unique(heldout.y).tolist():
        cand = torch.nonzero(candidates.y == c).flatten()
        held = torch.nonzero(heldout.y == c).flatten()
        k = min(len(cand), len(held))
        member_idx.append(cand[torch.randperm(len(cand), generator=g)[:k]])
        nonmember_idx.append(held[:k])
    return candidates.subset(torch.cat(member_idx)), torch.cat(nonmember_idx)


def _to_signed(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] images -> [-1, 1], the extractors' input range"""
    return x * 2 - 1


@torch.no_grad()
def evaluate(model, data: ImageSet, split: str, ev: Evaluator,
             membership: tuple[ImageSet, torch.Tensor] | None = None,
             reference: RetrainReference | None = None) -> SplitResult:
    """All metrics of `model` on the originals `data` for one split. `membership` (from
    `membership_sets`: training images of the split's classes and the indices of as many
    held-out images in `data`) adds mia_auc; `reference` adds retrain_distance and, with
    membership, mia_auc_retrain."""
    x, n, pm, bs = data.x, len(data), ev.pmask, ev.batch_size
    if membership is not None and len(membership[0]) == 0:  # no training image of these classes
        membership = None
    out = generate(model, x, ev.mask, ev.device, bs, ev.seed)
    hits = {}

    f_out, logits_out = extract(ev.features, _to_signed(out), bs, ev.device)
    f_orig, _, hits["features"] = reference_features(ev.features, _to_signed(x), bs, ev.device,
                                                     ev.cache_dir, ev.dataset)
    if ev.cosine_features is ev.features:
        c_out, c_orig = f_out, f_orig
    else:
        c_out, _ = extract(ev.cosine_features, _to_signed(out), bs, ev.device)
        c_orig, _, hits["cosine_features"] = reference_features(
            ev.cosine_features, _to_signed(x), bs, ev.device, ev.cache_dir, ev.dataset)
    clf_logits = logits_out if ev.classifier is ev.features else \
        extract(ev.classifier, _to_signed(out), bs, ev.device)[1]

    kid_mean, kid_std = scores.kid(f_orig, f_out, ev.kid_subsets, ev.kid_subset_size, ev.seed)
    loss = masked_mse(out, x, pm)  # [N]
    is_logits = logits_out if logits_out is not None else clf_logits
    psnr = scores.psnr_per_image(out, x, pm, data_range=1.0)  # [N]
    cos = scores.cosine_per_image(c_out, c_orig)  # [N]
    forgotten = scores.in_classes(clf_logits, ev.forget_classes)  # [N]
    # name: (value, images, standard error over the images or None)
    values = {
        "fid": (scores.fid(f_orig, f_out), n,
                scores.bootstrap_se(scores.fid, f_orig, f_out, seed=ev.seed)),
        "kid": (kid_mean, n, None),
        "is": (scores.inception_score(is_logits), n,
               scores.bootstrap_se(scores.inception_score, is_logits, seed=ev.seed)),
        "cosine": (float(cos.mean()), n, scores.mean_se(cos)),
        "psnr": (float(psnr.mean()), n, scores.mean_se(psnr)),
        "ssim": (scores.ssim(out, x, pm, data_range=1.0), n, None),
        "mse_masked": (float(loss.mean()), n, scores.mean_se(loss)),
        "forget_class_share": (float(forgotten.double().mean()), n, scores.mean_se(forgotten)),
    }

    if min(ev.kid_subset_size, n) < n:  # with one subset of all images there is no spread
        values["kid_std"] = (kid_std, n, None)
    m_loss = None
    if membership is not None:
        members, nonmember_idx = membership
        m_loss = masked_mse(generate(model, members.x, ev.mask, ev.device, bs, ev.seed),
                            members.x, pm)
        # Score = -loss: a model that remembers its training images reconstructs them better.
        values["mia_auc"] = (scores.roc_auc(-m_loss, -loss[nonmember_idx]),
                             len(m_loss) + len(nonmember_idx), None)
    if reference is not None:
        if reference.same:
            ref_out, ref_m_loss = out, m_loss
        else:
            ref = _retrain_outputs(reference, x, None if m_loss is None else members.x, ev)
            ref_out, ref_m_loss = ref["outputs"], ref.get("member_loss")
            hits["retrain_outputs"] = ref["hit"]
        values["retrain_distance"] = (float(masked_mse(out, ref_out, pm).mean()), n, None)
        if m_loss is not None:
            ref_loss = masked_mse(ref_out, x, pm)
            values["mia_auc_retrain"] = (scores.roc_auc(-ref_m_loss, -ref_loss[nonmember_idx]),
                                         len(ref_m_loss) + len(nonmember_idx), None)
            # How far the attack's result is from the retrained model's: 0 is what a perfect
            # unlearning reaches, whichever side of 0.5 both lie on.
            values["mia_gap_retrain"] = (abs(values["mia_auc"][0] - values["mia_auc_retrain"][0]),
                                         values["mia_auc_retrain"][1], None)

    # The extractor of each metric computed on one (the `extractor` column): IS reads the
    # features' logits, the classifier's when the features have none (clip).
    fid_on = ev.features.label
    extractors = {"fid": fid_on, "kid": fid_on, "kid_std": fid_on,
                  "is": (ev.features if logits_out is not None else ev.classifier).label,
                  "cosine": ev.cosine_features.label,
                  "forget_class_share": ev.classifier.label}
    metrics = [MetricValue(split, k, float(v), int(cnt), extractors.get(k), se)
               for k, (v, cnt, se) in values.items()]
    return SplitResult(metrics, x, out, data.y, c_out, c_orig, hits)


def _retrain_outputs(ref: RetrainReference, x: torch.Tensor, member_x: torch.Tensor | None,
                     ev: Evaluator) -> dict:
    """The retrain model's outputs on x and its per-image loss on the members, cached per
    (model, images, mask, seed, batch size) so that the trials of a sweep generate them once."""
    key = {"format": FORMAT, "model": ref.key, "images": tensor_sha256(x),
           "members": None if member_x is None else tensor_sha256(member_x),
           "mask": ev.mask.int().tolist(), "seed": ev.seed, "batch_size": ev.batch_size}

    def build():
        state = {"outputs": generate(ref.model, x, ev.mask, ev.device, ev.batch_size, ev.seed)}
        if member_x is not None:
            m_out = generate(ref.model, member_x, ev.mask, ev.device, ev.batch_size, ev.seed)
            state["member_loss"] = masked_mse(m_out, member_x, ev.pmask)
        return state

    state, hit = cached_tensors(ev.cache_dir, "retrain_outputs", key, build)
    return {**state, "hit": hit}
