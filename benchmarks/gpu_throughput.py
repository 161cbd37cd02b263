"""Benchmark 5: images per second of unlearning and evaluation per generator on the GPU, the
GPU's utilisation meanwhile, and how many trials fit on one GPU at fractional resources.

For each generator an `original` trial first builds the model, the classifier and the cached
evaluation features (untimed); then an l2l trial is measured:

  unlearning   images through the trained encoder per second: steps x batch_size forget
               images plus as many retain images, over `unlearn_seconds`
  evaluation   evaluation images per second (generation, features, every metric), over
               `eval_seconds`
  utilisation  the GPU's utilisation, sampled every 0.2 s while the l2l trial runs
               (torch.cuda.utilization, else nvidia-smi)
  fit          a trial needs its peak allocated memory plus what the CUDA context and
               torch's allocator reserve; Ray puts 1/f trials with `gpu: f` on one GPU, each
               with about f of its memory

Without a GPU it runs the same measurement on the CPU, says that no GPU was found and leaves
the GPU figures out; the model quality does not matter here, so the originals are trained
briefly (--pretrain-images x --pretrain-epochs).

    python benchmarks/gpu_throughput.py                          # CPU: ~2 min
    python benchmarks/gpu_throughput.py --size small --batch 256 --steps 200   # on a GPU
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import time

BASE = {
    "dataset": "fashion_mnist",
    "task": {"kind": "center_inpaint", "mask_ratio": 0.5},
    "pretrain": {"images": 1000, "epochs": 1, "batch_size": 64, "lr": 0.002, "seed": 0},
    "classifier": {"images": 5000, "epochs": 1},
    "forget_set": {"classes": [5, 7, 9]},
    "retain": {"mode": "full"},
    "unlearn": {"steps": 50, "batch_size": 64, "lr": 0.001, "images_per_class": 500},
    "eval": {"images_per_class": 100, "mia": False, "retrain_reference": False},
    "alpha": 0.25,
}
FRACTIONS = (1.0, 0.5, 0.25)


class Utilisation:
    """Samples the GPU's utilisation (%) in a thread while a block runs."""

    def __init__(self, index: int = 0, period: float = 0.2):
        self.index, self.period, self.samples = index, period, []
        self._stop = threading.Event()
        self.source = self._pick()

    def _pick(self):
        import torch

        try:
            torch.cuda.utilization(self.index)  # needs pynvml / nvidia-ml-py
            return "torch.cuda.utilization"
        except Exception:
            return "nvidia-smi" if shutil.which("nvidia-smi") else None

    def _read(self) -> float | None:
        import torch

        if self.source == "torch.cuda.utilization":
            return float(torch.cuda.utilization(self.index))
        out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu",
                              "--format=csv,noheader,nounits", "-i", str(self.index)],
                             capture_output=True, text=True, timeout=10)
        return float(out.stdout.strip().splitlines()[0]) if out.returncode == 0 else None

    def _loop(self):
        while not self._stop.is_set():
            v = self._read()
            if v is not None:
                self.samples.append(v)
            self._stop.wait(self.period)

    def __enter__(self):
        if self.source:
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self.source:
            self._thread.join(5)

    def summary(self) -> str:
        if not self.samples:
            return "n/a (no reading)"
        return (f"mean {sum(self.samples) / len(self.samples):.0f}%, max {max(self.samples):.0f}% "
                f"({len(self.samples)} samples, {self.source})")


def measure(name: str, args, device: str, cache: str) -> dict:
    import torch

    from l2l import experiment

    cfg = copy.deepcopy(BASE)
    cfg.update(generator={"name": name, "size": args.size}, device=device, cache_dir=cache)
    cfg["pretrain"].update(images=args.pretrain_images, epochs=args.pretrain_epochs)
    cfg["unlearn"].update(steps=args.steps, batch_size=args.batch)
    cfg["eval"].update(images_per_class=args.eval_images, batch_size=max(args.batch, 256))
    experiment.run(experiment.parse_config({**cfg, "method": "original"}))  # warm, untimed
    gpu = device == "cuda"
    if gpu:
        torch.cuda.synchronize()
        # free and reserved at the same moment: what is neither is the CUDA context
        free0, total = torch.cuda.mem_get_info()
        reserved0 = torch.cuda.memory_reserved()
        torch.cuda.reset_peak_memory_stats()
    with Utilisation() if gpu else contextlib.nullcontext() as util:
        r = experiment.run(experiment.parse_config({**cfg, "method": "l2l"}))
    n_eval = sum(m.n for m in r.metrics if m.metric == "fid")  # forget + retain images
    out = {"name": f"{name}/{args.size}",
           "unlearn_ips": 2 * args.steps * args.batch / r.unlearn_seconds,
           "eval_ips": n_eval / r.eval_seconds, "unlearn_s": r.unlearn_seconds,
           "eval_s": r.eval_seconds, "n_eval": n_eval, "util": util.summary() if gpu else None}
    if gpu:
        peak_alloc = torch.cuda.max_memory_allocated()
        reserved = torch.cuda.max_memory_reserved()
        context = max(0, total - free0 - reserved0)  # CUDA context, roughly
        out.update(total=total, need=reserved + context, peak_alloc=peak_alloc,
                   reserved=reserved, context=context)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--generators", nargs="+", default=["mae", "vqgan", "diffusion"],
                   choices=["mae", "vqgan", "diffusion"])
    p.add_argument("--size", default="tiny", choices=["tiny", "small", "base"])
    p.add_argument("--steps", type=int, default=50, help="unlearning steps (default: 50)")
    p.add_argument("--batch", type=int, default=64, help="images of each set a step (64)")
    p.add_argument("--eval-images", type=int, default=100, help="evaluation images a class")
    p.add_argument("--pretrain-images", type=int, default=1000)
    p.add_argument("--pretrain-epochs", type=int, default=1)
    p.add_argument("--cpu", action="store_true", help="measure on the CPU even with a GPU")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads on the CPU (default: 1, as in a 1-CPU trial; two "
                        "threads on a busy 2-core machine are many times slower)")
    args = p.parse_args()
    import torch

    torch.set_num_threads(args.threads)

    gpu = torch.cuda.is_available() and not args.cpu
    cache = tempfile.mkdtemp(prefix="l2l-bench-gpu-")
    if gpu:
        props = torch.cuda.get_device_properties(0)
        print(f"GPU: {torch.cuda.get_device_name(0)}, {props.total_memory / 2**30:.1f} GiB, "
              f"{torch.cuda.device_count()} device(s); torch {torch.__version__}, CUDA "
              f"{torch.version.cuda}")
    else:
        why = "--cpu given" if args.cpu else "no GPU found (torch.cuda.is_available() is False)"
        print(f"{why}: CPU figures only, {torch.get_num_threads()} thread(s), "
              f"{platform.machine()} {os.cpu_count()} CPUs; torch {torch.__version__}")
    results = []
    for name in args.generators:
        t0 = time.perf_counter()
        r = measure(name, args, "cuda" if gpu else "cpu", cache)
        results.append(r)
        print(f"{r['name']:<15} unlearning {r['unlearn_ips']:8.0f} images/s "
              f"({2 * args.steps * args.batch} in {r['unlearn_s']:.1f} s); evaluation "
              f"{r['eval_ips']:7.0f} images/s ({r['n_eval']} in {r['eval_s']:.1f} s)"
              + (f"; GPU utilisation {r['util']}" if gpu else "")
              + f"  [{time.perf_counter() - t0:.0f} s with setup]", flush=True)
    if not gpu:
        print("GPU utilisation and trials per GPU: not measured (no GPU)")
        return
    gib = 2**30
    for r in results:
        fits = ", ".join(
            f"gpu {f:g}: {int(1 / f)} a GPU with {f * r['total'] / gib:.1f} GiB each "
            f"({'fits' if r['need'] <= f * r['total'] else 'does NOT fit'})" for f in FRACTIONS)
        print(f"{r['name']:<15} needs {r['need'] / gib:.2f} GiB (peak allocated "
              f"{r['peak_alloc'] / gib:.2f}, reserved {r['reserved'] / gib:.2f}, CUDA context "
              f"~{r['context'] / gib:.2f}); {fits}; by memory alone "
              f"{int(r['total'] // r['need'])} would fit")


if __name__ == "__main__":
    main()
