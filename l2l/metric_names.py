"""The metric names each trial family reports, by split, importable without torch: sweep specs
name metrics (a search's objective) and are checked against these before Ray starts."""

from __future__ import annotations

I2I_SPLITS = ("forget", "retain")
I2I_METRICS = ("fid", "kid", "kid_std", "is", "cosine", "psnr", "ssim", "mse_masked", "mia_auc",
               "mia_auc_retrain", "retrain_distance", "forget_class_share")
GAN_SPLIT = "all"  # a GAN is judged on its samples as a whole, not per split
GAN_METRICS = ("fid", "is", "forget_class_share", "mia_auc", "nn_distance",
               "downstream_accuracy", "epochs", "samples_seen")

BY_FAMILY = {"i2i": {s: I2I_METRICS for s in I2I_SPLITS}, "gan": {GAN_SPLIT: GAN_METRICS}}
