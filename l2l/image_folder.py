"""Image-folder data sets (ImageNet or Places-365 layout) and the paper's class splits.

Layout: <root>/train/<class>/*.jpg and <root>/val/<class>/*.jpg, where <class> may be a nested
path (Places-365: `a/airfield`). The class order comes from a class-list file (one class a line;
the first token counts, a leading '/' is dropped, so Places' `categories_places365.txt` works),
else from the sorted directory names under train/. Images become grayscale 32x32 in [0, 1]
([N, 1, 32, 32]) so that every generator and the classifier take them unchanged at small scale.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from l2l.class_lists import PRESETS, class_names, read_class_list  # noqa: F401 (re-exported)
from l2l.data import ImageSet

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
SPLIT_DIRS = {"train": "train", "test": "val"}


_LOADED: dict[tuple, ImageSet] = {}


def load_image_folder(root: str | Path, split: str, classes: list[str], image_size: int = 32,
                      max_per_class: int | None = None) -> ImageSet:
    """All images (the first `max_per_class` by file name) of each listed class in `split`
    (train or test = val/). Labels are indices into `classes`. Memoised per process."""
    key = (str(root), split, tuple(classes), image_size, max_per_class)
    if key in _LOADED:
        return _LOADED[key]
    from PIL import Image

    xs, ys = [], []
    for label, name in enumerate(classes):
        folder = Path(root) / SPLIT_DIRS[split] / name
        if not folder.is_dir():
            raise FileNotFoundError(f"image folder: class directory missing: {folder}")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS)
        for p in files[:max_per_class]:
            with Image.open(p) as im:
                im = im.convert("L").resize((image_size, image_size), Image.BILINEAR)
                xs.append(np.asarray(im, dtype=np.uint8))
            ys.append(label)
    if not xs:
        raise FileNotFoundError(f"image folder: no images under {Path(root) / SPLIT_DIRS[split]}")
    x = torch.from_numpy(np.stack(xs)).float().div_(255.0).unsqueeze(1)
    _LOADED[key] = ImageSet(x, torch.tensor(ys, dtype=torch.long))
    return _LOADED[key]
