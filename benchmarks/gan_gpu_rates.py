"""Benchmark 6: what the paper-scale GAN speedup specs cost on the device at hand, measured.

For each `gan_speedup_*_gpu.yaml` spec it runs, through `l2l.experiment.run` (the code a sweep
trial runs, without Ray), seed 0's original, the retrained model of one class, the cascade
on that class and on k = 64 items with the spec's stopping rule, and the cascade on that class
for `--rounds` rounds without it, and measures

  pretrain   seconds per image-epoch of DCGAN training (the FID checks after each epoch left
             out, as in the cache's `seconds_run`; median of the models trained), and the wall
             seconds of the original's epoch with them
  round      seconds per cascade round, from the fixed-budget run (`unlearn_seconds / rounds`:
             the first rounds' warm-up diluted, evaluation excluded as the sweep times it)
  eval       seconds per generated sample of the final evaluation (`eval_seconds / samples`)

then prices the whole spec with those rates and the plan's work per trial (sweeps/plan.py
WORK): every model of the grid trained for CRITERION_EPOCHS epochs (what the FID criterion took
on Fashion-MNIST) and for the spec's cap (`pretrain.epochs`), every trial's whole unlearning
budget (the stopping rule may end it sooner) and its evaluation.

Models train for `--epochs` epochs only: the rates do not depend on how long they train. With
no `--data-root` the data sets are written at full size in their real on-disk formats (MNIST's
IDX files, CIFAR-10's python batches) with synthetic images, so the timing needs no download;
the images' content does not change the seconds of an epoch.

    python benchmarks/gan_gpu_rates.py                      # on a GPU: ~2 min for both specs
    python benchmarks/gan_gpu_rates.py --epochs 1 --specs sweeps/specs/gan_speedup_mnist_gpu.yaml
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from l2l.dataset_files import write_cifar10, write_mnist  # noqa: E402

SPECS = [ROOT / "sweeps/specs/gan_speedup_mnist_gpu.yaml",
         ROOT / "sweeps/specs/gan_speedup_cifar10_gpu.yaml"]
REQUESTS = ({"classes": [0]}, {"items": 64, "seed": 0})


WRITERS = {"mnist": write_mnist, "cifar10": write_cifar10}  # full size by default


def _pick(spec, epochs: int, rounds: int):
    """Seed 0's original, and the retrain and cascade trials of REQUESTS, in that order, with
    pretraining cut to `epochs` epochs (the FID criterion still checked after each); last, the
    first request's cascade for a fixed `rounds` rounds without the stopping rule (the steady
    rate of a round, first rounds' warm-up diluted). Yields (label, config)."""
    from l2l import experiment

    for method, requests in (("original", [None]), ("retrain", REQUESTS[:1]),
                             ("cascade", REQUESTS), ("fixed", REQUESTS[:1])):
        for req in requests:
            want = "cascade" if method == "fixed" else method
            t = next(t for t in spec.trials if t.config.method == want
                     and t.config.pretrain.seed == 0
                     and (req is None or t.config.to_dict()["forget_set"] == req))
            d = t.config.to_dict()
            d["pretrain"] = {**d["pretrain"], "epochs": epochs}
            if method == "fixed":
                d["unlearn"] = {**d["unlearn"], "rounds": rounds, "passes": None,
                                "stop_every": None}
            yield method, req, experiment.parse_config(d)


def measure(spec_path: Path, args, work: Path) -> dict:
    import torch

    from l2l import experiment
    from sweeps.plan import CRITERION_EPOCHS, WORK, model_work
    from sweeps.spec import load_spec

    probe = load_spec(spec_path)
    dataset = probe.trials[0].config.dataset
    root = Path(args.data_root) if args.data_root else work / f"data-{dataset}"
    if not args.data_root:
        t0 = time.perf_counter()
        WRITERS[dataset](root)
        print(f"{dataset}: wrote full-size synthetic files in {time.perf_counter() - t0:.0f} s",
              flush=True)
    cache = work / f"cache-{dataset}"
    spec = load_spec(spec_path, runtime={"device": args.device, "data_root": str(root),
                                         "cache_dir": str(cache)})
    trials = []
    for method, req, cfg in _pick(spec, args.epochs, args.rounds):
        t0 = time.perf_counter()
        r = experiment.run(cfg)
        wall = time.perf_counter() - t0
        v = {m.metric: m.value for m in r.metrics}
        trials.append({"method": method, "request": req, "wall_s": wall,
                       "pretrain_s": r.pretrain_seconds, "unlearn_s": r.unlearn_seconds,
                       "eval_s": r.eval_seconds, "samples": cfg.eval.samples,
                       "rounds_run": v.get("rounds_run"), "reached": v.get("reached_retrain"),
                       "peak_mb": r.peak_memory_mb, "device": r.device})
        print(f"  {method:8s} {json.dumps(req)}: wall {wall:.1f} s, unlearn "
              f"{r.unlearn_seconds:.2f} s in {v.get('rounds_run')} rounds (reached retrain: "
              f"{v.get('reached_retrain')}), eval "
              f"{r.eval_seconds:.1f} s, peak {r.peak_memory_mb:.0f} MB", flush=True)
    metas = [json.loads(p.read_text()) for p in (cache / "gan").glob("*/meta.json")]
    for m in sorted(metas, key=lambda m: -m["images"]):
        print(f"  model of {m['images']} images: {m['epochs_run']} epochs, "
              f"{m['seconds_run'] / m['epochs_run']:.2f} s an epoch (FID checks excluded)")
    pretrain = float(np.median([m["seconds_run"] / (m["epochs_run"] * m["images"])
                                for m in metas]))
    fixed = next(t for t in trials if t["method"] == "fixed")
    round_s = fixed["unlearn_s"] / args.rounds  # no stopping rule: the whole budget runs
    eval_s = float(np.median([t["eval_s"] / t["samples"] for t in trials]))
    original = next(t for t in trials if t["method"] == "original")
    epoch_wall = original["pretrain_s"] / args.epochs  # the FID check included

    # the whole spec at these rates: models (each once, sweeps/plan.py), every trial's budget
    # and evaluation
    models, steps, evals = {}, 0.0, 0.0
    for t in spec.trials:
        models.update(model_work(t.config))
        w = WORK[t.config.family](t.config)
        steps += w.steps
        evals += w.eval_images
    train_s = sum(models.values()) * pretrain  # at CRITERION_EPOCHS a model
    cap = spec.trials[0].config.pretrain.epochs
    out = {"spec": spec_path.name, "dataset": dataset, "trials": len(spec.trials),
           "models": len(models), "pretrain_s_per_image_epoch": pretrain,
           "epoch_wall_s": epoch_wall, "round_s": round_s, "eval_s_per_sample": eval_s,
           "measured": trials,
           "train_h_criterion": train_s / 3600,
           "train_h_cap": train_s * cap / CRITERION_EPOCHS / 3600,
           "unlearn_h_budget": steps * round_s / 3600, "eval_h": evals * eval_s / 3600,
           "criterion_epochs": CRITERION_EPOCHS, "cap_epochs": cap,
           "device_name": torch.cuda.get_device_name(0) if args.device == "cuda" else
           platform.processor()}
    print(f"{spec_path.name}: {pretrain * 1e6:.1f} us per image-epoch ({epoch_wall:.1f} s an "
          f"epoch with its FID check), {round_s * 1e3:.1f} ms a cascade round "
          f"({args.rounds} rounds), {eval_s * 1e3:.2f} ms an evaluated sample", flush=True)
    print(f"  whole spec ({len(spec.trials)} trials, {len(models)} models): training "
          f"{out['train_h_criterion']:.1f} h at {CRITERION_EPOCHS} epochs a model "
          f"({out['train_h_cap']:.1f} h at the cap of {cap}), unlearning at most "
          f"{out['unlearn_h_budget']:.1f} h (whole budgets), evaluation {out['eval_h']:.1f} h",
          flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--specs", nargs="+", type=Path, default=SPECS,
                   help="gan_speedup GPU specs to price (default: the MNIST and CIFAR-10 ones)")
    p.add_argument("--epochs", type=int, default=2,
                   help="epochs each model trains for the measurement (default 2)")
    p.add_argument("--rounds", type=int, default=200,
                   help="rounds of the fixed-budget cascade that times a round (default 200)")
    p.add_argument("--data-root", help="a root with the spec's data set; default: synthetic "
                   "files written at full size in the real formats")
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args()

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("error: --device cuda: no GPU found (torch.cuda.is_available() is False); "
                 "use --device cpu")
    print(f"machine: {platform.machine()}, torch {torch.__version__}, device {args.device}"
          + (f" ({torch.cuda.get_device_name(0)})" if args.device == "cuda" else ""), flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="l2l-gan-gpu-") as work:
        for s in args.specs:
            results.append(measure(s, args, Path(work)))
            if args.json:  # after each spec: a cut-off run keeps what it measured
                args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
