"""Small shared pieces of every training loop: device choice, batches, the LR schedule, and
the peak memory a trial records."""
from __future__ import annotations

import math
import resource
import sys

import torch


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA when there is one. Asking for CUDA on a machine without one is an error,
    not a silent fallback: the sweep layer decides fallbacks and says so."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device: 'cuda' requested but torch finds no CUDA device")
    return torch.device(name)


def reset_peak_memory(device: torch.device) -> None:
    """Starts `peak_memory_mb`'s CUDA count afresh (the CPU peak cannot be reset)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device: torch.device) -> float:
    """CUDA: the most memory torch allocated on the device since `reset_peak_memory`. CPU: the
    process's peak resident set size (ru_maxrss), which in a long-lived worker process also
    covers earlier trials."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes on macOS, else KiB


def epoch_batches(n: int, batch_size: int, g: torch.Generator):
    """Index batches of one shuffled epoch; the last partial batch is kept."""
    perm = torch.randperm(n, generator=g)
    for i in range(0, n, batch_size):
        yield perm[i:i + batch_size]


def cosine_schedule(opt: torch.optim.Optimizer, total_steps: int, warmup: float = 0.05,
                    kind: str = "cosine"):
    """Linear warm-up over `warmup` of the steps, then cosine decay to zero (`cosine`) or the
    full rate to the end (`constant`: a validation curve that is not bent by the decay, which
    is how `l2l plateau` finds where more epochs stop helping)."""
    warm = max(1, int(total_steps * warmup))
    decay = kind == "cosine"

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        if not decay:
            return 1.0
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total_steps - warm))))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)
