"""The base of every image-to-image generator: the interface (l2l/generators/__init__.py) and
the default pretraining loop, which a generator with a schedule of its own overrides."""
from __future__ import annotations

import time

import torch
from torch import nn

from l2l.training import cosine_schedule, epoch_batches


class Generator(nn.Module):
    def pretrain(self, pool, mask: torch.Tensor, cfg, device, log) -> None:
        """`cfg.epochs` epochs of `task_loss` over the pool's images with AdamW and a cosine
        schedule; batches drawn by a generator seeded with `cfg.seed`."""
        opt = torch.optim.AdamW(self.parameters(), lr=cfg.lr, betas=(0.9, 0.95),
                                weight_decay=0.05)
        steps_per_epoch = -(-len(pool) // cfg.batch_size)
        sched = cosine_schedule(opt, steps_per_epoch * cfg.epochs)
        g = torch.Generator().manual_seed(cfg.seed)
        self.train()
        t0 = time.perf_counter()
        for epoch in range(cfg.epochs):
            total = 0.0
            for idx in epoch_batches(len(pool), cfg.batch_size, g):
                loss = self.task_loss(pool.x[idx].to(device), mask, g=g)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += loss.item() * len(idx)
            log.info("pretrain %s epoch %d/%d: loss %.4f (%.0f s)", type(self).__name__,
                     epoch + 1, cfg.epochs, total / len(pool), time.perf_counter() - t0)
