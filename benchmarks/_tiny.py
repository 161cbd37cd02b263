"""The calibrated tiny trial config shared by the benchmark scripts; the same as TINY in
tests/conftest.py (kept separate so benchmarks do not import the test suite)."""
TINY = {
    "dataset": "fashion_mnist",
    "task": {"kind": "center_inpaint", "mask_ratio": 0.5},
    "generator": {"name": "mae", "size": "tiny"},
    "pretrain": {"images": 2000, "epochs": 8, "batch_size": 64, "lr": 0.002, "seed": 0},
    "classifier": {"images": 10000, "epochs": 1},
    "forget_set": {"classes": [5, 7, 9]},
    "retain": {"mode": "full", "classes": [0, 1, 2, 3]},
    "unlearn": {"steps": 100, "batch_size": 64, "lr": 0.001, "images_per_class": 500},
    "eval": {"images_per_class": 100},
    "noise": "normal",
}
