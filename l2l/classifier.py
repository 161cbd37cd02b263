"""The evaluation feature extractor: a small Fashion-MNIST CNN trained once and cached.

Its 128-d penultimate layer is the embedding (FID, cosine similarity); its 10-class logits feed IS.
No Inception or CLIP weights can be downloaded here; they plug in where a user has them.
"""
from __future__ import annotations

import logging
import time

import torch
from torch import nn

from l2l import cache
from l2l.config import ClassifierConfig
from l2l.data import ImageSet, sample
from l2l.training import epoch_batches

log = logging.getLogger("l2l.classifier")
FORMAT = 1


class Classifier(nn.Module):
    """conv32-conv64-FC128-FC10 on [N, C, 32, 32] images in [0, 1] (C: 1, or 3 for colour)."""

    num_features = 128  # read by torchmetrics when this is the FID extractor

    def __init__(self, n_classes: int = 10, chans: int = 1):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(chans, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 8 * 8, 128), nn.ReLU())
        self.head = nn.Linear(128, n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """[N, C, 32, 32] -> [N, 128]"""
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def train_classifier(cfg: ClassifierConfig, train: ImageSet, test: ImageSet,
                     device: torch.device) -> tuple[Classifier, float]:
    torch.manual_seed(cfg.seed)
    data = sample(train, cfg.images, cfg.seed)
    model = Classifier(n_classes(train), train.x.shape[1]).to(device)
    fit(model, data.x, data.y, cfg.epochs, cfg.batch_size, cfg.lr,
        torch.Generator().manual_seed(cfg.seed), device)
    acc = accuracy(model, test.x, test.y, device, chunk=1000)
    log.info("classifier: %d images x %d epochs, test accuracy %.3f", len(data), cfg.epochs, acc)
    return model, acc


def fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, batch_size: int,
        lr: float, g: torch.Generator, device) -> nn.Module:
    """Cross-entropy training with Adam over shuffled batches (images [N, 1, 32, 32] in [0, 1],
    labels [N]); the loop of the project classifier and of the GAN's downstream classifier.
    Leaves the model in eval mode."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        for idx in epoch_batches(len(x), batch_size, g):
            loss = nn.functional.cross_entropy(model(x[idx].to(device)), y[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return model.eval()


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device, chunk: int) -> float:
    """Share of x classified as y, predicted `chunk` images at a time."""
    pred = torch.cat([model(x[i:i + chunk].to(device)).argmax(1).cpu()
                      for i in range(0, len(x), chunk)])
    return float((pred == y).double().mean())


def n_classes(data: ImageSet) -> int:
    return int(data.y.max()) + 1


def get_classifier(cfg: ClassifierConfig, dataset: dict, train: ImageSet, test: ImageSet,
                   device: torch.device, cache_dir):
    """`dataset` identifies the data (l2l.data.dataset_key) in the cache key."""
    def build():
        t0 = time.perf_counter()
        model, acc = train_classifier(cfg, train, test, device)
        return model.state_dict(), {"test_accuracy": acc, "train_seconds": time.perf_counter() - t0}

    key = {"format": FORMAT, **dataset, "classifier": vars(cfg)}
    state, hit = cache.get_or_build(cache_dir, "classifier", key, build)
    model = Classifier(n_classes(train), train.x.shape[1])
    model.load_state_dict(state)
    return model.to(device).eval(), hit
