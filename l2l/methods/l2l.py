"""`l2l`: the image-to-image paper's method (Li et al., ICLR 2024).

Only the encoder E is trained; the decoder stays frozen. With E0 the frozen original encoder,
T the task's masking and n a noise image:
    L = L_R + alpha * L_F
    L_R = MSE(E(T(x_r)), E0(T(x_r)))      keep retain embeddings where they were
    L_F = MSE(E(T(x_f)), E0(T(n)))        move forget embeddings to where noise lands
The forget target is the teacher's embedding of a noise *image*, not raw noise, so it stays on
the encoder's output manifold and the decoder turns it into noise-like content.
"""
from __future__ import annotations

import copy
import logging

import torch

from l2l.methods import METHODS, UnlearnContext, batch, feature_mse

log = logging.getLogger("l2l.methods.l2l")


def noise_images(like: torch.Tensor, kind: str, g: torch.Generator) -> torch.Tensor:
    """Noise images shaped like the forget batch `like`: [N, C, H, W] in [0, 1].
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


@METHODS.register("l2l")
def l2l(model, ctx: UnlearnContext):
    cfg, u = ctx.cfg, ctx.cfg.unlearn
    teacher = copy.deepcopy(model).eval().requires_grad_(False)
    model.requires_grad_(False)
    model.encoder.requires_grad_(True)
    model.train()
    opt = torch.optim.AdamW(model.encoder.parameters(), lr=u.lr, betas=(0.9, 0.95),
                            weight_decay=0.05)
    for step in range(u.steps):
        x_r = batch(ctx.splits.retain.x, u.batch_size, ctx.generator, ctx.device)
        x_f = batch(ctx.splits.forget.x, u.batch_size, ctx.generator, ctx.device)
        aux_r = model.sample_aux(x_r, ctx.mask, ctx.generator)
        aux_f = model.sample_aux(x_f, ctx.mask, ctx.generator)
        with torch.no_grad():
            target_r = teacher.encode(x_r, ctx.mask, aux_r)
            target_f = teacher.encode(noise_images(x_f, cfg.noise, ctx.generator), ctx.mask, aux_f)
        loss_r = feature_mse(model.encode(x_r, ctx.mask, aux_r), target_r)
        loss_f = feature_mse(model.encode(x_f, ctx.mask, aux_f), target_f)
        loss = loss_r + cfg.alpha * loss_f
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.encoder.parameters(), 3.0)
        opt.step()
        if (step + 1) % max(1, u.steps // 4) == 0:
            log.info("l2l step %d/%d: retain %.5f forget %.5f", step + 1, u.steps,
                     loss_r.item(), loss_f.item())
    return model.eval().requires_grad_(False)
