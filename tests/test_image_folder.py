"""Image-folder data sets (ImageNet / Places layout) on small generated folders."""
import numpy as np
import pytest
from PIL import Image

from l2l.config import TrialConfig
from l2l.errors import ConfigError
from l2l.image_folder import load_image_folder, read_class_list


def _folder(root, classes, per_class=(6, 3), size=40):
    rng = np.random.default_rng(0)
    for split, n in zip(("train", "val"), per_class):
        for c in classes:
            d = root / split / c
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                arr = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                Image.fromarray(arr).save(d / f"img{i}.png")
    return root


def test_loads_grayscale_32px_with_labels_from_the_class_list(tmp_path):
    root = _folder(tmp_path / "data", ["a/airfield", "b/bakery", "c/canyon"])
    (tmp_path / "classes.txt").write_text("/a/airfield 0\n/b/bakery 1\n/c/canyon 2\n")
    names = read_class_list(tmp_path / "classes.txt")
    assert names == ["a/airfield", "b/bakery", "c/canyon"]
    train = load_image_folder(root, "train", names)
    assert train.x.shape == (18, 1, 32, 32) and train.y.tolist() == [0] * 6 + [1] * 6 + [2] * 6
    val = load_image_folder(root, "test", names, max_per_class=2)
    assert len(val) == 6 and 0 <= float(val.x.min()) and float(val.x.max()) <= 1


def test_imagenet_r_preset_splits_the_sorted_200_classes(tmp_path):
    root = _folder(tmp_path, [f"n{i:08d}" for i in range(200)], per_class=(1, 1), size=8)
    cfg = TrialConfig.from_dict({"method": "l2l", "dataset": "image_folder",
                                 "image_folder": {"root": str(root)},
                                 "forget_set": {"preset": "imagenet_r"}})
    assert cfg.forget_classes == tuple(range(100)) and cfg.retain.classes == tuple(range(100, 200))


def test_places_preset_needs_enough_classes(tmp_path):
    root = _folder(tmp_path, ["x", "y", "z"], per_class=(1, 1), size=8)
    with pytest.raises(ConfigError, match="forget_set.preset: places365 needs at least 100"):
        TrialConfig.from_dict({"method": "l2l", "dataset": "image_folder",
                               "image_folder": {"root": str(root)},
                               "forget_set": {"preset": "places365"}})


@pytest.mark.parametrize("folder, message", [
    (None, "image_folder: missing"),
    ({"root": "/nonexistent"}, "image_folder.root: no train/ directory"),
    ({"root": ".", "classes_file": "/nope.txt"}, "image_folder"),
])
def test_bad_folder_settings(folder, message):
    d = {"method": "l2l", "dataset": "image_folder", "forget_set": {"classes": [0]}}
    if folder is not None:
        d["image_folder"] = folder
    with pytest.raises(ConfigError, match=message):
        TrialConfig.from_dict(d)


def test_a_whole_trial_runs_on_an_image_folder(tmp_path):
    from l2l.trial import run_trial

    root = _folder(tmp_path / "data", ["cat", "dog", "fox", "owl"], per_class=(12, 4))
    cfg = TrialConfig.from_dict({
        "method": "l2l", "dataset": "image_folder", "image_folder": {"root": str(root)},
        "forget_set": {"classes": [1]}, "cache_dir": str(tmp_path / "cache"),
        "pretrain": {"images": 48, "epochs": 1, "batch_size": 16},
        "classifier": {"images": 48, "epochs": 1},
        "unlearn": {"steps": 2, "batch_size": 4, "images_per_class": 6},
        "eval": {"images_per_class": 4}})
    res = run_trial(cfg)
    n = {(m.split, m.metric): m.n for m in res.metrics}
    assert n[("forget", "fid")] == 4 and n[("retain", "fid")] == 12
    assert cfg.to_dict()["image_folder"]["root"] == str(root.resolve())
    # the folder's location is not its identity: the same data elsewhere is the same trial
    moved = TrialConfig.from_dict({**cfg.to_dict(), "image_folder": {
        "root": str(_folder(tmp_path / "elsewhere", ["cat", "dog", "fox", "owl"],
                            per_class=(12, 4)))}})
    assert moved.config_hash == cfg.config_hash
    assert moved.identity_hash(1) != cfg.identity_hash(1)  # version 1 hashed the path
