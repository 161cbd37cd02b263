"""Benchmark 1: what a Ray Tune sweep costs over a plain loop, for the same trials, in one run.

The same N l2l trials (the tiny MAE of tests/conftest.py, different alphas) run twice, each as a
command a user would type, timed from process start to exit:

  plain loop   `python` + imports + `l2l.experiment.run(cfg)` for each trial, nothing written
  sweep        `l2l-sweep run SPEC`: a local Ray, Tune, one Parquet file and one MLflow run
               (sqlite) a trial

Both run one trial at a time on one thread (the sweep: `cpu: 1`, `max_concurrent_trials: 1`;
Ray sets one thread in a 1-CPU trial) and read the same warm cache (the original model, the
classifier and the evaluation features are built first, untimed), so the difference is what
the sweep adds: starting Ray and a worker process, Tune's bookkeeping, Parquet and MLflow.

The sweep's output lines are timed as they arrive, which splits its overhead in two:

  fixed      before the first trial starts (imports, Ray, MLflow's store, Tune's set-up) and
             after the last one finishes (Tune's last save, Ray's shutdown), less the loop's
             own start (process, imports)
  per trial  the time from the first trial's start to the last one's end, less the loop's time
             in its trials, divided by the trials (the worker's start and imports fall here)

    python benchmarks/sweep_overhead.py                       # 4 trials, 100 steps: ~4 min
    python benchmarks/sweep_overhead.py --trials 16           # ~12 min
    python benchmarks/sweep_overhead.py --trials 8 --mlflow none
    python benchmarks/sweep_overhead.py --steps 10 --eval-images 30   # overhead-dominated trials
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]

from _tiny import TINY  # noqa: E402  (scripts run from benchmarks/)


def make_spec(n: int, steps: int, eval_images: int) -> dict:
    spec = copy.deepcopy(TINY)
    spec["unlearn"]["steps"] = steps
    # no membership inference or retrained reference: they add a second model, not overhead
    spec["eval"] = {"images_per_class": eval_images, "mia": False, "retrain_reference": False}
    alphas = [round(0.05 * (i + 1), 4) for i in range(n)]
    return {**spec, "name": "bench-overhead", "method": "l2l", "grid": {"alpha": alphas},
            "resources": {"cpu": 1}, "max_concurrent_trials": 1}


def loop(spec_path: str, cache: str) -> None:
    """The plain loop (run in its own process): every trial of the spec, one after another."""
    import torch

    torch.set_num_threads(1)  # as in a 1-CPU Ray trial
    from l2l import experiment
    from sweeps.spec import load_spec

    seconds = []
    for t in load_spec(spec_path, {"cache_dir": cache}).trials:
        t0 = time.perf_counter()
        r = experiment.run(t.config)
        seconds.append({"wall": time.perf_counter() - t0, "pretrain": r.pretrain_seconds,
                        "unlearn": r.unlearn_seconds, "eval": r.eval_seconds})
    print("LOOP " + json.dumps(seconds), flush=True)


def timed(cmd: list[str], cwd: Path, log: Path) -> tuple[float, list[tuple[float, str]]]:
    """Runs `cmd`; returns its wall seconds and its output lines, each with the second (from
    the start) it arrived at."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI")}
    env["PYTHONUNBUFFERED"] = "1"
    lines = []
    t0 = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                env=env, text=True)
        for line in proc.stdout:
            lines.append((time.perf_counter() - t0, line.rstrip("\n")))
            f.write(f"{lines[-1][0]:8.2f} {line}")
        rc = proc.wait()
    secs = time.perf_counter() - t0
    if rc != 0:
        sys.exit(f"error: {' '.join(cmd[:4])} ... exited with {rc}; see {log}")
    return secs, lines


def trial_span(lines: list[tuple[float, str]]) -> tuple[float, float]:
    """Seconds at which the sweep's first trial started and its last one finished (from its
    progress lines: "[k/n trials done, ...] <trial id> started|finished")."""
    starts = [t for t, ln in lines if ln.startswith("[") and ln.endswith(" started")]
    ends = [t for t, ln in lines if ln.startswith("[") and " finished" in ln]
    if not starts or not ends:
        sys.exit("error: no progress lines in the sweep's output")
    return starts[0], ends[-1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=4, help="trials (default: %(default)s)")
    p.add_argument("--steps", type=int, default=100, help="unlearning steps a trial")
    p.add_argument("--eval-images", type=int, default=100, help="evaluation images a class")
    p.add_argument("--mlflow", choices=("sqlite", "none"), default="sqlite",
                   help="the sweep's MLflow store (default: a sqlite file, as by default)")
    p.add_argument("--cache-dir", help="model cache (default: a fresh one, warmed first)")
    p.add_argument("--workdir", help="keep the logs and results here (default: a temp dir)")
    p.add_argument("--_loop", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args._loop:
        return loop(*args._loop)

    work = Path(args.workdir or tempfile.mkdtemp(prefix="l2l-bench-overhead-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    cache = Path(args.cache_dir or work / "cache").resolve()
    spec = make_spec(args.trials, args.steps, args.eval_images)
    spec_path = work / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(spec))

    import torch

    from l2l import experiment
    from sweeps.spec import load_spec

    trials = load_spec(spec_path, {"cache_dir": str(cache)}).trials
    print(f"{len(trials)} trials: mae tiny, l2l, {args.steps} unlearning steps, "
          f"{args.eval_images * 7} evaluation images each; one trial at a time, one thread; "
          f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}")
    t0 = time.perf_counter()
    torch.set_num_threads(1)
    experiment.run(trials[0].config)  # warm the caches: original model, classifier, features
    print(f"warm-up (untimed): {time.perf_counter() - t0:.1f} s")

    loop_s, loop_lines = timed([sys.executable, __file__, "--_loop", str(spec_path), str(cache)],
                               work, work / "loop.log")
    per = json.loads(next(ln for _, ln in loop_lines if ln.startswith("LOOP "))[5:])
    loop_in = sum(x["wall"] for x in per)

    uri = "none" if args.mlflow == "none" else f"sqlite:///{work / 'mlflow.db'}"
    sweep_s, lines = timed([sys.executable, "-m", "sweeps", "run", str(spec_path), "--results",
                            str(work / "results"), "--storage", str(work / "ray_results"),
                            "--mlflow-uri", uri, "--cache-dir", str(cache), "--sweep-id",
                            "overhead"], ROOT, work / "sweep.log")
    import pandas as pd

    rows = pd.concat(pd.read_parquet(f) for f in
                     (work / "results" / "sweep_id=overhead").glob("*.parquet"))
    timings = rows.groupby("trial_id")[["pretrain_seconds", "unlearn_seconds",
                                        "eval_seconds"]].first()
    sweep_in = float(timings.sum().sum())
    loop_work = sum(x["pretrain"] + x["unlearn"] + x["eval"] for x in per)

    first, last = trial_span(lines)
    ray_s, _ = timed([sys.executable, "-c", "import os; os.environ['RAY_AUTH_MODE'] = "
                      "'disabled'; import ray; ray.init(num_cpus=2, include_dashboard=False); "
                      "ray.shutdown()"], work, work / "ray.log")
    n = len(trials)
    loop_fixed = loop_s - loop_in
    fixed = first + (sweep_s - last) - loop_fixed
    per_trial = ((last - first) - loop_in) / n
    print(f"plain loop  (process, imports, {n} trials):            {loop_s:6.1f} s "
          f"(trials {loop_in:.1f} s, of which model work {loop_work:.1f} s)")
    print(f"Ray Tune sweep (l2l-sweep run, Parquet, MLflow {args.mlflow}): {sweep_s:6.1f} s "
          f"(model work in the trials {sweep_in:.1f} s)")
    print(f"ratio sweep / loop: {sweep_s / loop_s:.2f}; overhead {sweep_s - loop_s:.1f} s in all")
    print(f"  fixed: {fixed:.1f} s (before the first trial {first:.1f} s, after the last "
          f"{sweep_s - last:.1f} s, less the loop's start {loop_fixed:.1f} s); a bare "
          f"ray.init + shutdown takes {ray_s:.1f} s")
    print(f"  per trial: {per_trial:.2f} s (first start to last end {last - first:.1f} s vs "
          f"the loop's {loop_in:.1f} s in its trials, over {n} trials)")
    print(f"logs and results: {work}")


if __name__ == "__main__":
    main()
