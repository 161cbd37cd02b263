"""Class lists of image-folder data sets and the paper's class splits.

Plain Python (no torch), so that specs are validated without importing the training stack.
"""
from __future__ import annotations

from pathlib import Path

# The paper's splits, as class-index ranges of the class list:
# ImageNet-R's 200 classes in sorted order, first 100 forgotten, next 100 retained;
# Places-365's class list, first 50 retained, next 50 forgotten.
PRESETS = {
    "imagenet_r": {"forget": range(0, 100), "retain": range(100, 200)},
    "places365": {"forget": range(50, 100), "retain": range(0, 50)},
}


def read_class_list(path: str | Path) -> list[str]:
    names = []
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            names.append(line.split()[0].lstrip("/"))
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: repeated class names")
    return names


def class_names(root: str | Path, classes_file: str | Path | None) -> list[str]:
    if classes_file:
        return read_class_list(classes_file)
    train = Path(root) / "train"
    return sorted(p.name for p in train.iterdir() if p.is_dir())
