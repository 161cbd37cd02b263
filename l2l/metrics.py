"""Evaluation of a generator on one split (forget or retain), with the cached classifier.

Every metric compares each output with its own original image:
  fid        Frechet distance of the classifier's 128-d embeddings (torchmetrics FID)
  is         Inception Score on the classifier's 10-class softmax (torchmetrics IS, 1 split)
  cosine     mean cosine similarity of output and original embeddings (the paper's CLIP column)
  mse_masked mean squared error of the generated region
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore

from l2l.tasks import pixel_mask

METRICS = ("fid", "is", "cosine", "mse_masked")
# Direction on the retain split; on the forget split each one flips (we want it worse there).
_HIGHER_ON_RETAIN = {"fid": False, "is": True, "cosine": True, "mse_masked": False}


def higher_is_better(split: str, metric: str) -> bool:
    return _HIGHER_ON_RETAIN[metric] if split == "retain" else not _HIGHER_ON_RETAIN[metric]


@dataclass(frozen=True)
class MetricValue:
    split: str
    metric: str
    value: float
    n: int  # images the value is computed on

    @property
    def higher_is_better(self) -> bool:
        return higher_is_better(self.split, self.metric)


class _Precomputed(nn.Module):
    """Lets torchmetrics take embeddings we already computed (they also feed the cosine)."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return feats


@torch.no_grad()
def generate(model, x: torch.Tensor, mask: torch.Tensor, device, batch_size: int,
             seed: int = 0) -> torch.Tensor:
    """Composite outputs for all of x: [N, C, H, W] on the CPU. Sampling generators draw their
    noise from a generator seeded by `seed`, so evaluation is deterministic."""
    g = torch.Generator().manual_seed(seed)
    return torch.cat([model.reconstruct(x[i:i + batch_size].to(device), mask, g).cpu()
                      for i in range(0, len(x), batch_size)])


@torch.no_grad()
def _embed(classifier, x: torch.Tensor, device, batch_size: int):
    feats, logits = [], []
    for i in range(0, len(x), batch_size):
        f = classifier.embed(x[i:i + batch_size].to(device))
        feats.append(f.cpu())
        logits.append(classifier.head(f).cpu())
    return torch.cat(feats), torch.cat(logits)


@torch.no_grad()
def evaluate(model, classifier, images: torch.Tensor, mask: torch.Tensor, split: str, device,
             batch_size: int = 256, seed: int = 0) -> list[MetricValue]:
    """All metrics of `model` on `images` ([N, C, H, W], the originals) for one split."""
    n = len(images)
    out = generate(model, images, mask, device, batch_size, seed)
    f_out, logits_out = _embed(classifier, out, device, batch_size)
    f_orig, _ = _embed(classifier, images, device, batch_size)

    fid = FrechetInceptionDistance(feature=_Precomputed(f_out.shape[1]))
    fid.update(f_orig, real=True)
    fid.update(f_out, real=False)
    with warnings.catch_warnings():
        # one split by design: no std across splits, and the logits buffer is small
        warnings.filterwarnings("ignore", ".*(will save all extracted features|degrees of freedom)")
        inception = InceptionScore(feature=nn.Identity(), splits=1)
        inception.update(logits_out)
        is_value = inception.compute()[0]
    cosine = nn.functional.cosine_similarity(f_out, f_orig, dim=1).mean()
    pm = pixel_mask(mask.cpu(), model.patch)
    mse = (((out - images) ** 2) * pm).sum() / (pm.sum() * n * images.shape[1])
    values = {"fid": fid.compute(), "is": is_value, "cosine": cosine,
              "mse_masked": mse}
    return [MetricValue(split, k, float(v), n) for k, v in values.items()]
