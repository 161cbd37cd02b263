"""Small helpers shared by the method files: optimisers, frozen teachers, noise targets."""
from __future__ import annotations

import copy

import torch

from l2l.tasks import pixel_mask


def frozen_copy(model):
    """The original model as a teacher: a copy that never trains."""
    return copy.deepcopy(model).eval().requires_grad_(False)


def encoder_only(model, lr: float) -> torch.optim.Optimizer:
    """Train the encoder, freeze everything else (l2l, random_encoder)."""
    model.requires_grad_(False)
    model.encoder.requires_grad_(True)
    model.train()
    return torch.optim.AdamW(model.encoder.parameters(), lr=lr, betas=(0.9, 0.95),
                             weight_decay=0.05)


def whole_model(model, lr: float) -> torch.optim.Optimizer:
    """Train encoder and decoder (the baselines that "train the whole model"); parts that a
    generator keeps frozen anyway, such as the VQ tokenizer, stay frozen."""
    model.requires_grad_(False)
    params = {id(p): p for m in (model.encoder, model.decoder) for p in m.parameters()}
    for p in params.values():
        p.requires_grad_(True)
    model.train()
    return torch.optim.AdamW(params.values(), lr=lr, betas=(0.9, 0.95), weight_decay=0.05)


def step(opt: torch.optim.Optimizer, loss: torch.Tensor, clip: float = 3.0) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    params = [p for group in opt.param_groups for p in group["params"]]
    torch.nn.utils.clip_grad_norm_(params, clip)
    opt.step()


def noise_images(like: torch.Tensor, kind: str, g: torch.Generator) -> torch.Tensor:
    """Noise images shaped like the batch `like`: [N, C, H, W] in [0, 1].
    `normal` follows the released VQ-GAN code: clamp(randn * std(batch) + mean(batch), 0, 1)."""
    mean, std = like.mean(), like.std()
    if kind == "normal":
        z = torch.randn(like.shape, generator=g).to(like)
        return (z * std + mean).clamp(0, 1)
    if kind == "uniform":
        return torch.rand(like.shape, generator=g).to(like)
    if kind == "constant":
        return torch.full_like(like, mean.item())
    raise ValueError(f"noise: unknown type {kind!r} (allowed: normal, uniform, constant)")


def noise_in_hidden_region(x: torch.Tensor, mask: torch.Tensor, patch: int,
                           g: torch.Generator) -> torch.Tensor:
    """x with its hidden region replaced by normal noise: the noisy-label target."""
    m = pixel_mask(mask, patch).to(x)
    return x * (1 - m) + noise_images(x, "normal", g) * m


def log_every(step_idx: int, steps: int) -> bool:
    return (step_idx + 1) % max(1, steps // 4) == 0


def continue_training(model, ctx, images: torch.Tensor, log) -> torch.nn.Module:
    """The controls' loop: `unlearn.steps` steps of the task loss on 2 x unlearn.batch_size
    of `images` [N, C, H, W] (the images a baseline draws a step), whole model, no forget term."""
    u = ctx.cfg.unlearn
    opt = whole_model(model, u.lr)
    for i in range(u.steps):
        mask = ctx.step_mask()  # this step's mask (unlearn.random_masks)
        loss = model.task_loss(ctx.batch(images, 2 * u.batch_size), mask, g=ctx.generator)
        step(opt, loss)
        if ctx.after_step(model, last=i == u.steps - 1):  # l2l/monitor.py
            break
        if log_every(i, u.steps):
            log.info("%s step %d/%d: task loss %.5f", ctx.cfg.method, i + 1, u.steps,
                     loss.item())
    return model.eval().requires_grad_(False)
