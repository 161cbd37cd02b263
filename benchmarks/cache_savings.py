"""Benchmark 2: what the shared caches save in a sweep.

The same small sweep (the tiny MAE of tests/conftest.py, N l2l trials, two at a time as on a
2-core laptop) runs three times through the sweep runner (a real Ray Tune run, Parquet rows):

  caches off     every trial gets its own empty cache directory: it trains the original model
                 and the classifier and computes the evaluation features itself
  shared, cold   one empty cache for the sweep: the first trial builds each entry (a second one
                 that needs it meanwhile waits on its lock) and the others read it
  shared, warm   the same cache again, as in the second sweep of a study

    python benchmarks/cache_savings.py                    # 4 trials: ~9 min on 2 busy cores
    python benchmarks/cache_savings.py --trials 6 --pretrain-epochs 4

Ray is started once before the first variant (untimed) so that every variant pays the same.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import os
import platform
import tempfile
import time
from pathlib import Path

from _tiny import TINY  # scripts run from benchmarks/


def make_spec(n: int, epochs: int, concurrent: int) -> dict:
    spec = copy.deepcopy(TINY)
    spec["pretrain"]["epochs"] = epochs
    spec["eval"] = {"images_per_class": 100, "mia": False, "retrain_reference": False}
    alphas = [round(0.05 * (i + 1), 4) for i in range(n)]
    return {**spec, "name": "bench-cache", "method": "l2l", "grid": {"alpha": alphas},
            "resources": {"cpu": 1}, "max_concurrent_trials": concurrent}


def run(label: str, spec, work: Path, per_trial_cache: Path | None = None):
    """One sweep; with `per_trial_cache`, each trial's cache_dir is a fresh directory there."""
    import pandas as pd

    from sweeps.driver import run_sweep
    from sweeps.sweepfile import SweepSettings

    if per_trial_cache is not None:
        spec = dataclasses.replace(spec, trials=[
            dataclasses.replace(t, config=dataclasses.replace(
                t.config, cache_dir=str(per_trial_cache / t.trial_id))) for t in spec.trials])
    sweep_id = label.replace(", ", "-").replace(" ", "-")
    settings = SweepSettings(results_dir=work / "results", storage_dir=work / "ray_results",
                             mlflow_uri=None, artifact_dir=None, sweep_id=sweep_id,
                             code_version="bench", experiment="bench-cache")
    t0 = time.perf_counter()
    failed = run_sweep(spec, settings)
    wall = time.perf_counter() - t0
    if failed:
        raise SystemExit(f"error: {failed} trial(s) of '{label}' failed; see {work}")
    rows = pd.concat(pd.read_parquet(f) for f in
                     (work / "results" / f"sweep_id={sweep_id}").glob("*.parquet"))
    t = rows.groupby("trial_id").first()
    return {"label": label, "wall": wall, "pretrain": float(t.pretrain_seconds.sum()),
            "unlearn": float(t.unlearn_seconds.sum()), "eval": float(t.eval_seconds.sum()),
            "hits": int(t.pretrain_cache_hit.sum()), "n": len(t)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=4, help="trials (default: %(default)s)")
    p.add_argument("--concurrent", type=int, default=2, help="trials at a time (default: 2)")
    p.add_argument("--pretrain-epochs", type=int, default=8,
                   help="epochs of the original model (default: the tests' 8)")
    p.add_argument("--workdir", help="keep results here (default: a temp dir)")
    args = p.parse_args()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="l2l-bench-cache-")).resolve()
    from sweeps.driver import init_ray
    from sweeps.spec import parse_spec

    raw = make_spec(args.trials, args.pretrain_epochs, args.concurrent)
    shared = work / "shared-cache"
    spec = parse_spec(raw, {"cache_dir": str(shared)})
    print(f"{len(spec.trials)} trials: mae tiny (original: 2,000 images x {args.pretrain_epochs} "
          f"epochs; classifier: 10,000 images), l2l 100 steps, 700 evaluation images; "
          f"{args.concurrent} at a time, 1 CPU each; machine: {platform.machine()}, "
          f"{os.cpu_count()} CPUs")
    t0 = time.perf_counter()
    init_ray(None)
    print(f"Ray started (untimed): {time.perf_counter() - t0:.1f} s")

    results = [run("caches off", spec, work, per_trial_cache=work / "per-trial-caches"),
               run("shared, cold", spec, work),
               run("shared, warm", spec, work)]
    for r in results:
        print(f"{r['label']:<13} {r['wall']:6.1f} s wall; in trials: original model "
              f"{r['pretrain']:6.1f} s ({r['hits']}/{r['n']} read from the cache), unlearning "
              f"{r['unlearn']:5.1f} s, evaluation {r['eval']:5.1f} s")
    off, cold, warm = (r["wall"] for r in results)
    print(f"the shared cache saves {off - cold:.1f} s ({off / cold:.2f}x) on a first sweep and "
          f"{off - warm:.1f} s ({off / warm:.2f}x) once warm; per trial, caches off cost "
          f"{(off - warm) / args.trials:.1f} s more")
    print(f"results: {work}")


if __name__ == "__main__":
    main()
