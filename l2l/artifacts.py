"""What a trial leaves besides its metric rows: sample grids and embeddings.

    grid_<split>.png   rows: original / masked input (hidden region grey) / output
    embeddings.npz     float32 <split>_output, <split>_original [N, D] (the cosine extractor's
                       embeddings, for a T-SNE plot) and int64 <split>_labels [N]
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def masked_input(x: torch.Tensor, pmask: torch.Tensor, fill: float = 0.5) -> torch.Tensor:
    """What the generator sees: x with the hidden pixels (pmask [1, 1, H, W], 1 = hidden) grey."""
    return x * (1 - pmask) + fill * pmask


def save_grid(path: Path, rows: list[torch.Tensor]) -> Path:
    """One PNG with a row per tensor ([k, C, H, W] in [0, 1], the same k each)."""
    from torchvision.utils import save_image

    k = rows[0].shape[0]
    save_image(torch.cat([r.float().clamp(0, 1) for r in rows]), path, nrow=k, padding=2,
               pad_value=1.0)
    return path


def save_embeddings(path: Path, arrays: dict[str, torch.Tensor]) -> Path:
    """An .npz of the tensors: floating ones as float32, integer ones as int64."""
    out = {k: v.detach().cpu().numpy().astype(np.float32 if v.is_floating_point() else np.int64)
           for k, v in arrays.items()}
    np.savez(path, **out)
    return path


def write_trial_artifacts(directory: Path, splits: dict, pmask: torch.Tensor,
                          grid_images: int = 8) -> dict[str, str]:
    """Grids and embeddings of the SplitResults in `splits` (split name -> result) into
    `directory`; returns artifact name -> path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths, arrays = {}, {}
    for split, r in splits.items():
        k = min(grid_images, len(r.images))
        x, out = r.images[:k], r.outputs[:k]
        name = f"grid_{split}"
        paths[name] = str(save_grid(directory / f"{name}.png",
                                    [x, masked_input(x, pmask), out]))
        arrays.update({f"{split}_output": r.embedding_output,
                       f"{split}_original": r.embedding_original, f"{split}_labels": r.labels})
    paths["embeddings"] = str(save_embeddings(directory / "embeddings.npz", arrays))
    return paths
