"""A small masked autoencoder (He et al., 2022) from timm's ViT blocks, for 32x32 images.

Encoder and decoder are separate modules because unlearning trains only the encoder:
    latent = encoder(x, ids_keep)          x: [N, C, H, W] -> [N, L_vis, D]
    pred   = decoder(latent, ids_keep)     -> [N, L, patch * patch * C] (pixels of every patch)
"""
from __future__ import annotations

import torch
from timm.layers import PatchEmbed
from timm.models.vision_transformer import Block
from torch import nn

from l2l.generators.base import Generator
from l2l.tasks import pixel_mask

SIZES = {
    # name: (dim, depth, heads, decoder dim, decoder depth, decoder heads)
    "tiny": (64, 2, 4, 64, 2, 4),
    "small": (128, 4, 4, 64, 2, 4),
    "base": (768, 12, 12, 512, 8, 16),  # MAE-Base widths, for GPUs
}


def _blocks(dim: int, depth: int, heads: int) -> nn.ModuleList:
    return nn.ModuleList(Block(dim, heads, mlp_ratio=4.0, qkv_bias=True) for _ in range(depth))


def _gather(t: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """t: [N, L, D], ids: [N, K] -> [N, K, D]."""
    return torch.gather(t, 1, ids.unsqueeze(-1).expand(-1, -1, t.shape[-1]))


class MAEEncoder(nn.Module):
    def __init__(self, img_size: int, patch: int, chans: int, dim: int, depth: int, heads: int):
        super().__init__()
        self.patch_embed = PatchEmbed(img_size, patch, chans, dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.patch_embed.num_patches, dim))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.blocks = _blocks(dim, depth, heads)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, ids_keep: torch.Tensor) -> torch.Tensor:
        t = _gather(self.patch_embed(x) + self.pos_embed, ids_keep)  # only visible tokens
        for blk in self.blocks:
            t = blk(t)
        return self.norm(t)


class MAEDecoder(nn.Module):
    def __init__(self, num_patches: int, patch: int, chans: int, enc_dim: int, dim: int,
                 depth: int, heads: int):
        super().__init__()
        self.embed = nn.Linear(enc_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches, dim))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.blocks = _blocks(dim, depth, heads)
        self.norm = nn.LayerNorm(dim)
        self.pred = nn.Linear(dim, patch * patch * chans)

    def forward(self, latent: torch.Tensor, ids_keep: torch.Tensor) -> torch.Tensor:
        t = self.embed(latent)
        n, L = latent.shape[0], self.pos_embed.shape[1]
        full = self.mask_token.expand(n, L, -1).clone()
        full.scatter_(1, ids_keep.unsqueeze(-1).expand(-1, -1, t.shape[-1]), t)
        full = full + self.pos_embed
        for blk in self.blocks:
            full = blk(full)
        return self.pred(self.norm(full))


class MAE(Generator):
    """Masked autoencoder with the generator interface of l2l/generators/__init__.py."""

    def __init__(self, size: str = "tiny", img_size: int = 32, patch: int = 4, chans: int = 1,
                 sampling_steps: int | None = None):  # one-shot decoder: no sampling steps
        super().__init__()
        if size not in SIZES:
            raise KeyError(f"unknown MAE size {size!r} (known: {', '.join(SIZES)})")
        dim, depth, heads, ddim, ddepth, dheads = SIZES[size]
        self.patch, self.chans, self.img_size = patch, chans, img_size
        self.grid = img_size // patch
        self.encoder = MAEEncoder(img_size, patch, chans, dim, depth, heads)
        self.decoder = MAEDecoder(self.grid ** 2, patch, chans, dim, ddim, ddepth, dheads)

    # -- helpers ----------------------------------------------------------------------------
    def _ids_keep(self, mask: torch.Tensor, n: int) -> torch.Tensor:
        """mask: [L] or [N, L] bool (True = hidden, same count per row) -> ids_keep: [N, L_vis]."""
        if mask.dim() == 1:
            return torch.nonzero(~mask).flatten().unsqueeze(0).expand(n, -1)
        return torch.nonzero(~mask)[:, 1].view(n, -1)

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """[N, C, H, W] -> [N, L, p * p * C]"""
        n, c, p, g = x.shape[0], self.chans, self.patch, self.grid
        x = x.reshape(n, c, g, p, g, p).permute(0, 2, 4, 3, 5, 1)
        return x.reshape(n, g * g, p * p * c)

    def unpatchify(self, t: torch.Tensor) -> torch.Tensor:
        """[N, L, p * p * C] -> [N, C, H, W]"""
        n, c, p, g = t.shape[0], self.chans, self.patch, self.grid
        t = t.reshape(n, g, g, p, p, c).permute(0, 5, 1, 3, 2, 4)
        return t.reshape(n, c, g * p, g * p)

    # -- the generator interface (see l2l/generators/__init__.py) ---------------------------
    def sample_aux(self, x: torch.Tensor, mask: torch.Tensor, g: torch.Generator | None = None):
        """The MAE's encoder is deterministic: nothing random to share with a teacher."""
        return None

    def encode(self, x: torch.Tensor, mask: torch.Tensor, aux=None) -> list[torch.Tensor]:
        """Latent of the visible tokens: [[N, L_vis, D]]. What l2l's losses compare."""
        return [self.encoder(x, self._ids_keep(mask, x.shape[0]))]

    def predict(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Predicted pixels of every patch: [N, L, p * p * C]."""
        ids = self._ids_keep(mask, x.shape[0])
        return self.decoder(self.encoder(x, ids), ids)

    def reconstruct(self, x: torch.Tensor, mask: torch.Tensor,
                    g: torch.Generator | None = None) -> torch.Tensor:
        """Composite output: visible input pixels plus the generated hidden region. [N, C, H, W]"""
        out = self.unpatchify(self.predict(x, mask)).clamp(0, 1)
        m = pixel_mask(mask, self.patch).to(x) if mask.dim() == 1 else \
            self.unpatchify(mask.float().unsqueeze(-1).expand(-1, -1, self.patch ** 2 * self.chans))
        return x * (1 - m) + out * m

    def task_loss(self, x: torch.Tensor, mask: torch.Tensor, target: torch.Tensor | None = None,
                  g: torch.Generator | None = None) -> torch.Tensor:
        """MSE on hidden patches plus 0.1 x MSE on visible ones (keeps the visible context sane).
        `target` (default x) is the image the output should match: baselines pass other ones."""
        target = x if target is None else target
        err = ((self.predict(x, mask) - self.patchify(target)) ** 2).mean(-1)  # [N, L]
        m = mask.float().expand_as(err)
        hidden = (err * m).sum() / m.sum().clamp_min(1)
        visible = (err * (1 - m)).sum() / (1 - m).sum().clamp_min(1)
        return hidden + 0.1 * visible
