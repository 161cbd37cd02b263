"""Metric primitives on tensors, shared by the image-to-image and the GAN evaluation.

Pure functions: features, logits or images in, a float out. Feature-based scores (FID, KID, IS)
use torchmetrics with precomputed features, so that any extractor of the registry can feed them.
"""
from __future__ import annotations

import warnings

import torch
from torch import nn
from torchmetrics.functional.image import structural_similarity_index_measure
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance


class Precomputed(nn.Module):
    """Lets torchmetrics take embeddings we already computed (they also feed other scores)."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return feats


def fid(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Frechet distance between two sets of features [N, D] (float64 inside torchmetrics)."""
    m = FrechetInceptionDistance(feature=Precomputed(real.shape[1]))
    m.update(real.double(), real=True)
    m.update(fake.double(), real=False)
    return float(m.compute())


# Draws of the bootstrap over images behind the standard errors of FID and IS (`value_se`): 50
# give the SE to about 10% (its relative error is ~1/sqrt(2 * draws)), at the cost of 50 more
# FIDs, each a D x D matrix square root (milliseconds at the classifier's D; Inception's 2,048
# take ~1 s each on a CPU, which the GPU path affords).
BOOTSTRAP_DRAWS = 50


def bootstrap_se(stat, *arrays: torch.Tensor, paired: bool = True, draws: int = BOOTSTRAP_DRAWS,
                 seed: int = 0) -> float:
    """Standard error of `stat(*arrays)` from resampling the images (rows) with replacement:
    the spread of the score over the data sets that could have been drawn. `paired`: the arrays
    are rows of the same images (an output and its original) and share each draw; otherwise
    each array is resampled on its own (generated samples against real images)."""
    g = torch.Generator().manual_seed(seed)

    def draw(n):
        return torch.randint(0, n, (n,), generator=g)

    values = []
    for _ in range(draws):
        if paired:
            idx = draw(len(arrays[0]))
            values.append(stat(*(a[idx] for a in arrays)))
        else:
            values.append(stat(*(a[draw(len(a))] for a in arrays)))
    return float(torch.tensor(values, dtype=torch.float64).std())


def mean_se(per_image: torch.Tensor) -> float:
    """Standard error of the mean of per-image values [N] (what the bootstrap of a mean
    converges to, without drawing); NaN for one image."""
    v = per_image.double().flatten()
    return float(v.std() / len(v) ** 0.5) if len(v) > 1 else float("nan")


def kid(real: torch.Tensor, fake: torch.Tensor, subsets: int = 50,
        subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance (mean, std over random subsets); unbiased, so it suits small n
    better than FID. The subsets are drawn under `seed`, so the value is deterministic. When a
    subset would hold all images of both sets, one is computed (std 0)."""
    size = min(subset_size, len(real), len(fake))
    if size == len(real) == len(fake):  # every subset would be all of both sets: one suffices
        subsets = 1
    with warnings.catch_warnings():  # the feature buffer is what we want here
        warnings.filterwarnings("ignore", ".*will save all extracted features")
        m = KernelInceptionDistance(feature=Precomputed(real.shape[1]), subsets=subsets,
                                    subset_size=size)
    m.update(real.double(), real=True)
    m.update(fake.double(), real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = m.compute()
    return float(mean), float(std)


def inception_score(logits: torch.Tensor) -> float:
    """Inception Score of class logits [N, K] in one split (no std across splits by design)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*(will save all extracted features|degrees of freedom)")
        m = InceptionScore(feature=nn.Identity(), splits=1)
        m.update(logits.double())
        return float(m.compute()[0])


def cosine_per_image(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of paired rows [N] (each output with its own original)."""
    return nn.functional.cosine_similarity(a.double(), b.double(), dim=1)



def psnr(out: torch.Tensor, ref: torch.Tensor, region: torch.Tensor,
         data_range: float = 2.0) -> float:
    """PSNR over the pixels of `region` ([1 or N, 1, H, W], 1 = counted); images in [-1, 1]."""
    region = region.expand(out.shape[0], out.shape[1], *out.shape[2:]).double()
    mse = (((out.double() - ref.double()) ** 2) * region).sum() / region.sum()
    return float(10 * torch.log10(data_range ** 2 / mse.clamp_min(1e-12)))


def psnr_per_image(out: torch.Tensor, ref: torch.Tensor, region: torch.Tensor,
                   data_range: float = 2.0) -> torch.Tensor:
    """PSNR of each image over the pixels of `region` ([1 or N, 1, H, W]): [N] (float64). An
    exact match is capped at 10 log10(range^2 / 1e-12), i.e. 120 dB for range 1."""
    region = region.expand(out.shape[0], out.shape[1], *out.shape[2:]).double()
    mse = (((out.double() - ref.double()) ** 2) * region).sum(dim=(1, 2, 3)) / \
        region.sum(dim=(1, 2, 3))
    return 10 * torch.log10(data_range ** 2 / mse.clamp_min(1e-12))


def ssim(out: torch.Tensor, ref: torch.Tensor, region: torch.Tensor | None = None,
         data_range: float = 2.0) -> float:
    """Mean SSIM map over `region` (all pixels if None); 1 for identical images. The map is
    computed in float32: on 400 images several times faster than float64, and the mean
    differs by about 1e-7."""
    _, full = structural_similarity_index_measure(
        out.float(), ref.float(), data_range=data_range, return_full_image=True)
    full = full.double()
    if region is None:
        return float(full.mean())
    region = region.expand_as(full).double()
    return float((full * region).sum() / region.sum())


def roc_auc(member: torch.Tensor, nonmember: torch.Tensor) -> float:
    """ROC AUC of a score that should be higher for members: 0.5 = no membership signal.
    The Mann-Whitney U statistic with average ranks for ties (equal to scikit-learn's
    roc_auc_score, without importing it)."""
    m, nm = member.flatten().double(), nonmember.flatten().double()
    _, inverse, counts = torch.unique(torch.cat([m, nm]), return_inverse=True, return_counts=True)
    avg_rank = counts.cumsum(0).double() - (counts.double() - 1) / 2  # 1-based, ties averaged
    u = avg_rank[inverse[:len(m)]].sum() - len(m) * (len(m) + 1) / 2
    return float(u / (len(m) * len(nm)))


def in_classes(logits: torch.Tensor, classes) -> torch.Tensor:
    """Whether each row's predicted class is one of `classes`: [N] bool."""
    return torch.isin(logits.argmax(dim=1), torch.as_tensor(list(classes)))



def nn_distance(samples: torch.Tensor, items: torch.Tensor) -> float:
    """Mean over `items` of the L2 distance to the nearest of `samples` (flattened)."""
    d = torch.cdist(items.flatten(1).double(), samples.flatten(1).double())
    return float(d.min(dim=1).values.mean())
