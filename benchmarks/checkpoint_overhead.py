"""Benchmark: what resumable pretraining (l2l/checkpoint.py) costs per epoch, and what it saves.

Each generator (tiny sizes, 1,000 random 32x32 images, 3 epochs, one torch thread) trains
from scratch without a checkpoint and with one written after every epoch, each twice,
interleaved after an untimed warm-up, the faster of the two counting. It prints the
seconds of both, the overhead per epoch, the checkpoint's size, and (the saving) the seconds a
run stopped after epoch 2 needs to finish when it resumes, against training from scratch.

    python benchmarks/checkpoint_overhead.py                 # about 3 min on 2 cores
    python benchmarks/checkpoint_overhead.py --images 2000 --epochs 4
"""
from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from l2l.checkpoint import Checkpoint  # noqa: E402
from l2l.config import TrialConfig  # noqa: E402
from l2l.data import ImageSet  # noqa: E402
from l2l.pretrain import train_generator  # noqa: E402


def config(generator: str, images: int, epochs: int) -> TrialConfig:
    return TrialConfig.from_dict({
        "method": "original", "forget_set": {"classes": [5]}, "retain": {"classes": [0, 1]},
        "generator": {"name": generator, "size": "tiny"},
        "pretrain": {"images": images, "epochs": epochs, "batch_size": 64,
                     "random_masks": 0.5}})


def timed(cfg, pool, checkpoint=None) -> float:
    t0 = time.perf_counter()
    train_generator(cfg, pool, torch.device("cpu"), checkpoint=checkpoint)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    pool = ImageSet(torch.rand(args.images, 1, 32, 32, generator=g),
                    torch.arange(args.images) % 10)
    print(f"{platform.node()} {platform.processor() or platform.machine()}, torch "
          f"{torch.__version__}, 1 thread; {args.images} images x {args.epochs} epochs")
    print(f"{'generator':<10} {'plain s':>8} {'ckpt s':>8} {'per epoch':>10} {'size MB':>8} "
          f"{'resume s':>9} {'saved':>6}")
    for gen in ("mae", "vqgan", "diffusion"):
        cfg = config(gen, args.images, args.epochs)
        timed(config(gen, 128, 1), pool.subset(torch.arange(128)))  # warm-up, untimed
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "run.partial.pt"
            plain, with_ckpt = [], []
            for _ in range(2):  # interleaved, the faster of two each: less noise from the host
                plain.append(timed(cfg, pool))
                path.unlink(missing_ok=True)
                with_ckpt.append(timed(cfg, pool, Checkpoint(path)))
            plain, with_ckpt = min(plain), min(with_ckpt)
            size = path.stat().st_size / 2**20
            # a run that stopped after epoch 2 of `epochs`: the stored state of a 2-epoch
            # run of the same schedule is not it, so stop a real run there instead
            stopped = Checkpoint(path.with_name("stopped.partial.pt"))
            save = Checkpoint.save

            def stop_after_two(self, phase, epoch, objects, **extra):
                save(self, phase, epoch, objects, **extra)
                if self is stopped and epoch == 2:
                    raise KeyboardInterrupt

            Checkpoint.save = stop_after_two
            try:
                timed(cfg, pool, stopped)
            except KeyboardInterrupt:
                pass
            finally:
                Checkpoint.save = save
            resumed = timed(cfg, pool, Checkpoint(stopped.path))
        per_epoch = (with_ckpt - plain) / args.epochs
        print(f"{gen:<10} {plain:8.1f} {with_ckpt:8.1f} {per_epoch:+10.3f} {size:8.1f} "
              f"{resumed:9.1f} {1 - resumed / plain:6.0%}")


if __name__ == "__main__":
    main()
