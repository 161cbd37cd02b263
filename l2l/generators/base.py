"""The base of every image-to-image generator: the interface (l2l/generators/__init__.py), the
default pretraining loop (a generator with a schedule of its own overrides it) and the
validation loss that tells whether pretraining has converged."""
from __future__ import annotations

import time

import torch
from torch import nn

from l2l.checkpoint import Checkpoint
from l2l.training import cosine_schedule, epoch_batches

VAL_SEED = 1234  # the validation loss draws the same (masks, timesteps, noise) every epoch


def with_noise_images(x: torch.Tensor, share: float, g: torch.Generator) -> torch.Tensor:
    """x [B, C, H, W] with its last round(share * B) images replaced by noise images:
    clamp(mean + std * randn, 0, 1) with a random mean in [0, 0.6) and std in [0.1, 0.5) per
    image (pretrain.noise_share; the VQ-GAN docstring says why one may want them)."""
    k = int(round(share * len(x)))
    if not k:
        return x
    mean = torch.rand(k, 1, 1, 1, generator=g) * 0.6
    std = 0.1 + torch.rand(k, 1, 1, 1, generator=g) * 0.4
    z = torch.randn((k,) + x.shape[1:], generator=g)
    return torch.cat([x[:len(x) - k], (mean + std * z).clamp(0, 1).to(x)])


class Generator(nn.Module):
    def noise_input(self, x: torch.Tensor, noise: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The noise image n of l2l's forget target E0(T(n)) for forget images x, both
        [N, C, H, W] in [0, 1]: the whole noise image. (An encoder that sees only the visible
        tokens would see nothing of noise confined to the hidden region.)"""
        return noise

    @torch.no_grad()
    def validation_loss(self, x: torch.Tensor, mask: torch.Tensor, batch_size: int = 256) -> float:
        """Mean task loss over validation images x [N, C, H, W] with the task's mask [L], with
        the same random draws on every call, so that epochs compare. Leaves train/eval mode as
        it found it."""
        was_training = self.training
        self.eval()
        g = torch.Generator().manual_seed(VAL_SEED)
        total = 0.0
        for i in range(0, len(x), batch_size):
            chunk = x[i:i + batch_size].to(mask.device)
            total += self.task_loss(chunk, mask, g=g).item() * len(chunk)
        self.train(was_training)
        return total / max(1, len(x))

    def pretrain(self, pool, masks, cfg, device, log, val=None,
                 checkpoint: Checkpoint | None = None) -> list[float | None]:
        """`cfg.epochs` epochs of `task_loss` over the pool's images with AdamW and
        cfg.schedule (warm-up, then cosine or constant); batches drawn by a generator seeded
        with `cfg.seed`, each masked by `masks()` (l2l/tasks.py TrainingMasks), with
        cfg.noise_share of noise images. `val`: (images, task mask) whose validation loss is
        measured after every epoch. Returns those losses. `checkpoint`: saved after every
        epoch, resumed from when it holds one (l2l/checkpoint.py)."""
        checkpoint = checkpoint or Checkpoint(None)
        opt = torch.optim.AdamW(self.parameters(), lr=cfg.lr, betas=(0.9, 0.95),
                                weight_decay=0.05)
        steps_per_epoch = -(-len(pool) // cfg.batch_size)
        sched = cosine_schedule(opt, steps_per_epoch * cfg.epochs, kind=cfg.schedule)
        g = torch.Generator().manual_seed(cfg.seed)
        self.train()
        t0 = time.perf_counter()
        state = {"model": self, "opt": opt, "sched": sched, "data": g, "masks": masks}
        start, extra = checkpoint.resume("train", state)
        history: list[float | None] = extra.get("history", [])
        for epoch in range(start, cfg.epochs):
            total = 0.0
            for idx in epoch_batches(len(pool), cfg.batch_size, g):
                x = with_noise_images(pool.x[idx], cfg.noise_share, g).to(device)
                loss = self.task_loss(x, masks(), g=g)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += loss.item() * len(idx)
            history.append(None if val is None else self.validation_loss(*val))
            log.info("pretrain %s epoch %d/%d: loss %.4f%s (%.0f s)", type(self).__name__,
                     epoch + 1, cfg.epochs, total / len(pool),
                     "" if val is None else f", validation {history[-1]:.4f}",
                     time.perf_counter() - t0)
            checkpoint.save("train", epoch + 1, state, history=history)
        return history
