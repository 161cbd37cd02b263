"""Benchmark 3: unlearning against retraining from scratch, per generator and for the GAN.

For each image-to-image generator (mae, vqgan, diffusion; the tiny config of tests/conftest.py)
the l2l trial and the `retrain` trial (the generator trained from scratch without the forget
classes' images) run in this process; for the DCGAN (class setting, forget class 7) the cascade
and `retrain`. Reported per model: the seconds of unlearning (`unlearn_seconds`: l2l's steps,
the cascade's rounds, retrain's whole training), the training images each saw, and the speedup
(retrain seconds / unlearning seconds). Each original model is trained first (untimed here).

Samples seen: l2l sees `steps x batch_size` forget images plus as many retain images; retraining
sees `pretrain.epochs x` the retained share of the original's training images; the GAN trial
reports its own `samples_seen` metric (real and substitute images; generated ones not counted).

    python benchmarks/unlearn_vs_retrain.py                  # all four: ~7 min on 2 cores
    python benchmarks/unlearn_vs_retrain.py --models mae gan --threads 2
    python benchmarks/unlearn_vs_retrain.py --models mae --pretrain-images 20000 --pretrain-epochs 4
"""
from __future__ import annotations

import argparse
import copy
import os
import platform
import tempfile
import time

from _tiny import TINY  # noqa: E402  (scripts run from benchmarks/)
# The DCGAN of sweeps/specs/gan_class_small.yaml, with a smaller original model
GAN = {
    "family": "gan", "dataset": "fashion_mnist", "setting": "class",
    "forget_set": {"classes": [7]},
    "generator": {"name": "dcgan", "size": "tiny"},
    "pretrain": {"images": 4000, "epochs": 8, "batch_size": 64, "lr": 0.0005, "seed": 0},
    "classifier": {"images": 10000, "epochs": 1},
    "unlearn": {"rounds": 200, "batch_size": 64, "lr": 0.0005},
    "eval": {"samples": 200, "real_images": 200, "mia_images": 64, "downstream_epochs": 0},
}


def retained_images(cfg) -> int:
    """Training images of the retrain model: the original's sample less the forget classes."""
    from pathlib import Path

    import torch

    from l2l.data import load_split, sample

    pool = sample(load_split(cfg, "train", Path(cfg.cache_dir) / "data"), cfg.pretrain.images,
                  cfg.pretrain.seed)
    return int((~torch.isin(pool.y, torch.tensor(list(cfg.forget_classes)))).sum())


def i2i(name: str, cache: str, images: int | None, epochs: int | None) -> dict:
    from l2l import experiment

    base = {**copy.deepcopy(TINY), "generator": {"name": name, "size": "tiny"},
            "cache_dir": cache}
    base["pretrain"].update({k: v for k, v in (("images", images), ("epochs", epochs)) if v})
    t0 = time.perf_counter()
    experiment.run(experiment.parse_config({**base, "method": "original"}))  # the original
    setup = time.perf_counter() - t0
    l2l = experiment.run(experiment.parse_config({**base, "method": "l2l"}))
    retrain = experiment.run(experiment.parse_config({**base, "method": "retrain"}))
    cfg = l2l.config
    return {"model": f"{name}/tiny", "method": "l2l", "setup": setup,
            "unlearn_s": l2l.unlearn_seconds, "retrain_s": retrain.unlearn_seconds,
            "unlearn_n": 2 * cfg.unlearn.steps * cfg.unlearn.batch_size,
            "retrain_n": cfg.pretrain.epochs * retained_images(cfg)}


def gan(cache: str) -> dict:
    from l2l import experiment

    base = {**copy.deepcopy(GAN), "cache_dir": cache}
    t0 = time.perf_counter()
    experiment.run(experiment.parse_config({**base, "method": "original"}))
    setup = time.perf_counter() - t0
    out = {}
    for method in ("cascade", "retrain"):
        r = experiment.run(experiment.parse_config({**base, "method": method}))
        seen = {m.metric: m.value for m in r.metrics}
        out[method] = (r.unlearn_seconds, seen.get("samples_seen"))
    return {"model": "dcgan/tiny", "method": "cascade", "setup": setup,
            "unlearn_s": out["cascade"][0], "retrain_s": out["retrain"][0],
            "unlearn_n": out["cascade"][1], "retrain_n": out["retrain"][1]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["mae", "vqgan", "diffusion", "gan"],
                   choices=["mae", "vqgan", "diffusion", "gan"])
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default: 1, steadier on a shared machine)")
    p.add_argument("--cache-dir", help="model cache (default: a fresh one, so retraining "
                                       "really trains)")
    p.add_argument("--pretrain-images", type=int,
                   help="training images of the image-to-image originals (default: the tests' "
                        "2,000; the quickstart's 20,000 makes retraining 10x longer)")
    p.add_argument("--pretrain-epochs", type=int, help="their epochs (default: 8; quickstart 4)")
    args = p.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    cache = args.cache_dir or tempfile.mkdtemp(prefix="l2l-bench-retrain-")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{args.threads} thread(s); cache {cache}")
    print(f"{'model':<15} {'method':<8} {'unlearn s':>9} {'retrain s':>9} {'speedup':>8} "
          f"{'images seen':>12} {'retrain seen':>12} {'ratio':>6}")
    for m in args.models:
        try:
            r = gan(cache) if m == "gan" else i2i(m, cache, args.pretrain_images,
                                                  args.pretrain_epochs)
        except ImportError as e:  # l2l/gan not there (yet)
            print(f"{m:<15} skipped: {e}")
            continue
        ratio = (f"{r['retrain_n'] / r['unlearn_n']:.1f}x" if r["unlearn_n"] and r["retrain_n"]
                 else "-")
        print(f"{r['model']:<15} {r['method']:<8} {r['unlearn_s']:9.1f} {r['retrain_s']:9.1f} "
              f"{r['retrain_s'] / r['unlearn_s']:7.1f}x {r['unlearn_n'] or 0:12,.0f} "
              f"{r['retrain_n'] or 0:12,.0f} {ratio:>6}   (original model: {r['setup']:.0f} s)",
              flush=True)


if __name__ == "__main__":
    main()
