"""Benchmark: the GAN paper's headline, checked against its targets from a sweep's Parquet.

Reads the rows of a `gan_speedup*.yaml` sweep (run it first, or pass `--run SPEC`) and prints,
per request (item k, class) and method: the speedup over retraining (retrain's seconds / the
method's, per original, then averaged; mean and 95% interval), the ratio of images trained on,
whether the stopping rule reached retrain's forgetting, the FID against retrain's, and the
downstream accuracy. Then the targets of the issue that asked for it, for the cascade:
  - it reaches retrain-level forgetting in every run;
  - its FID is within 10% of the retrained model's (mean ratio <= 1.10);
  - it is at least 185x faster than retraining (the paper's MNIST figure), judged on the lower
    end of the 95% interval, and on the mean.
Every number comes from `l2l-analysis`'s own records (analysis.speedup_records), so this
prints what the table shows.

    python benchmarks/gan_speedup.py --results results --sweep-id gan-speedup
    python benchmarks/gan_speedup.py --run sweeps/specs/gan_speedup.yaml --sweep-id gan-speedup
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere

TARGET_SPEEDUP = 185.0
FID_MARGIN = 0.10
COLUMNS = ("speedup", "images_ratio", "reached_retrain", "fid_vs_retrain",
           "downstream_accuracy")


def _cell(stat) -> str:
    if stat is None:
        return "–"
    half = "" if math.isnan(stat.half) else f" ± {stat.half:.3g}"
    return f"{stat.mean:.3g}{half}"


def records(results: str, sweep_id: str) -> dict:
    """(request label, method) -> metric -> Stat, from the analysis' own records."""
    from analysis import aggregate, speedup_records
    from analysis.load import open_results

    res = open_results(results, [sweep_id])
    recs = aggregate(res)
    out: dict = {}
    for r in [x for x in recs if x["family"] == "gan"] + speedup_records(res, recs):
        if r["split"] != "all":
            continue
        req = (r["setting"] != "item", r["forget_k"] if r["setting"] == "item" else 0,
               f"item k={r['forget_k']}" if r["setting"] == "item"
               else f"class {r['forget_set']}")
        out.setdefault((req, r["method"]), {})[r["metric"]] = r["stat"]
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", default="results", help="results root (default: results)")
    ap.add_argument("--sweep-id", required=True, help="the sweep to read")
    ap.add_argument("--run", metavar="SPEC", help="run (or resume) this spec first")
    ap.add_argument("--target", type=float, default=TARGET_SPEEDUP,
                    help=f"speedup to reach (default: {TARGET_SPEEDUP:g}, the paper's MNIST)")
    args = ap.parse_args(argv)
    if args.run:
        subprocess.run([sys.executable, "-m", "sweeps", "run", args.run, "--results",
                        args.results, "--sweep-id", args.sweep_id], check=True)
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}")
    recs = records(args.results, args.sweep_id)
    if not recs:
        print(f"error: no GAN rows of sweep {args.sweep_id!r} under {args.results}")
        return 1
    print(f"{'request':<16} {'method':<24} " + " ".join(f"{c:>18}" for c in COLUMNS))
    for (req, method), m in sorted(recs.items(), key=lambda kv: (kv[0][0][:2], kv[0][1])):
        print(f"{req[2]:<16} {method:<24} " + " ".join(f"{_cell(m.get(c)):>18}"
                                                       for c in COLUMNS))
    print(f"\ntargets for the cascade: reaches retrain's forgetting; FID within "
          f"{FID_MARGIN:.0%} of retrain's; at least {args.target:g}x faster")
    for (req, method), m in sorted(recs.items(), key=lambda kv: kv[0][0][:2]):
        if method != "cascade":
            continue
        speed, fid, reached = m.get("speedup"), m.get("fid_vs_retrain"), m.get("reached_retrain")
        checks = {
            "reached": reached is not None and reached.mean == 1.0,
            "FID": fid is not None and fid.mean <= 1 + FID_MARGIN,
            "speedup (mean)": speed is not None and speed.mean >= args.target,
            "speedup (95% lower end)": speed is not None and not math.isnan(speed.lo)
            and speed.lo >= args.target,
        }
        print(f"  {req[2]:<16} " + ", ".join(f"{k} {'met' if v else 'NOT met'}"
                                            for k, v in checks.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
