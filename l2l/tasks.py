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


# The seed of the `random` task's mask: one fixed mask for every trial, method and image, so
# their metrics under it are comparable (as the centre and border masks are).
RANDOM_TASK_SEED = 0


@TASKS.register("random")
def random_tokens(grid: int, mask_ratio: float) -> torch.Tensor:
    """Hide round(mask_ratio * L) of the L = grid^2 tokens, scattered at random (one fixed draw).
    mask: [grid * grid] bool; mask_ratio is the hidden share of the tokens, not of the side."""
    L = grid * grid
    k = max(1, min(L - 1, round(mask_ratio * L)))
    g = torch.Generator().manual_seed(RANDOM_TASK_SEED)
    m = torch.zeros(L, dtype=torch.bool)
    m[torch.randperm(L, generator=g)[:k]] = True
    return m


def task_mask(kind: str, grid: int, mask_ratio: float) -> torch.Tensor:
    return TASKS.get(kind)(grid, mask_ratio)


def pixel_mask(token_mask: torch.Tensor, patch: int) -> torch.Tensor:
    """Token mask [L] -> pixel mask [1, 1, H, W] (float, 1 = hidden)."""
    grid = int(round(token_mask.numel() ** 0.5))
    m = token_mask.view(grid, grid).float()
    return m.repeat_interleave(patch, 0).repeat_interleave(patch, 1)[None, None]


# Random masks hide a share of the tokens drawn uniformly from this range, one share and one
# set of tokens per batch. It spans the test tasks' shares on the 8x8 grid (centre 0.25: 6%,
# centre 0.5: 25%, outpainting 0.5: 75%) up to MAE's 0.75; MAGE's 0.5-1.0 is too hard for the
# tiny CPU models to learn the task from (docs/design-notes.md, "Masks").
RANDOM_HIDDEN = (0.25, 0.75)


def random_mask(grid: int, g: torch.Generator) -> torch.Tensor:
    """A random token mask [grid * grid] bool hiding between RANDOM_HIDDEN of the tokens."""
    lo, hi = RANDOM_HIDDEN
    L = grid * grid
    share = lo + (hi - lo) * torch.rand((), generator=g).item()
    k = max(1, min(L - 1, round(share * L)))
    m = torch.zeros(L, dtype=torch.bool)
    m[torch.randperm(L, generator=g)[:k]] = True
    return m


class TrainingMasks:
    """The masks T of training (pretraining and unlearning): each batch gets a random mask with
    probability `random_share`, else the task's mask. random_share 1.0 is the paper's random
    masking, 0.0 the task's mask only, in between a hybrid (see docs/design-notes.md)."""

    def __init__(self, task: torch.Tensor, random_share: float, g: torch.Generator):
        self.task, self.random_share, self.g = task, random_share, g
        self.grid = int(round(task.numel() ** 0.5))

    def state_dict(self) -> dict:
        """Where the draws stand (a resumed pretraining continues them: l2l/checkpoint.py)."""
        return {"g": self.g.get_state()}

    def load_state_dict(self, state: dict) -> None:
        if not isinstance(state, dict) or "g" not in state:
            raise TypeError(f"TrainingMasks state: expected {{'g': <generator state>}}, got "
                            f"{type(state).__name__}")
        self.g.set_state(state["g"])

    def __call__(self) -> torch.Tensor:
        """The next batch's token mask [L] bool, on the task mask's device."""
        if self.random_share <= 0.0:
            return self.task
        if self.random_share < 1.0 and torch.rand((), generator=self.g).item() >= self.random_share:
            return self.task
        return random_mask(self.grid, self.g).to(self.task.device)
