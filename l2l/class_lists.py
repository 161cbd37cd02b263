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
    """The class names of a class-list file, one a line (the first word; `#` comments).
    ValueError (one line) for a file that is not text or names a class twice."""
    from contract.inputs import read_text

    names, first = [], {}
    for i, line in enumerate(read_text(path, "image_folder.classes_file").splitlines(), 1):
        line = line.strip()
        if line and not line.startswith("#"):
            name = line.split()[0].lstrip("/")
            if name in first:
                raise ValueError(f"image_folder.classes_file: class {name!r} listed twice "
                                 f"(lines {first[name]} and {i})")
            first[name] = i
            names.append(name)
    return names


def class_names(root: str | Path, classes_file: str | Path | None) -> list[str]:
    if classes_file:
        return read_class_list(classes_file)
    train = Path(root) / "train"
    return sorted(p.name for p in train.iterdir() if p.is_dir())
