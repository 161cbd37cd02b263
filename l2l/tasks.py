"""Image-to-image tasks as token masks over the patch grid.

A task T hides some patches of the image; the generator fills them. Masks are boolean over the
L = (32 / patch)^2 tokens, True = hidden, identical for every image of a batch (the paper's
evaluation), so the encoder sees a fixed-length sequence.
"""
from __future__ import annotations

import torch

from l2l.registry import Registry

TASKS: Registry = Registry("task")


@TASKS.register("center_inpaint")
def center_inpaint(grid: int, mask_ratio: float) -> torch.Tensor:
    """Hide a centred square of side round(mask_ratio * grid) patches. mask: [grid * grid] bool.

    mask_ratio is a fraction of the image side, as in the paper (0.5 -> 8x8 of 16x16 patches).
    """
    side = max(1, min(grid - 1, round(mask_ratio * grid)))
    start = (grid - side) // 2
    m = torch.zeros(grid, grid, dtype=torch.bool)
    m[start:start + side, start:start + side] = True
    return m.flatten()


@TASKS.register("outpaint")
def outpaint(grid: int, mask_ratio: float) -> torch.Tensor:
    """Hide a border of round(mask_ratio * grid / 2) patches on each side, keep the centre.
    mask: [grid * grid] bool; mask_ratio is the hidden share of the side."""
    border = max(1, min((grid - 1) // 2, round(mask_ratio * grid / 2)))
    m = torch.ones(grid, grid, dtype=torch.bool)
    m[border:grid - border, border:grid - border] = False
    return m.flatten()


def task_mask(kind: str, grid: int, mask_ratio: float) -> torch.Tensor:
    return TASKS.get(kind)(grid, mask_ratio)


def pixel_mask(token_mask: torch.Tensor, patch: int) -> torch.Tensor:
    """Token mask [L] -> pixel mask [1, 1, H, W] (float, 1 = hidden)."""
    grid = int(round(token_mask.numel() ** 0.5))
    m = token_mask.view(grid, grid).float()
    return m.repeat_interleave(patch, 0).repeat_interleave(patch, 1)[None, None]
