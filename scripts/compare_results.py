"""Compares the metric values of two result directories trial by trial: the check that a
refactoring changed no number (issue 14: quickstart.yaml and gan_class_small.yaml before and
after, same seeds).

    python scripts/compare_results.py BEFORE_RESULTS AFTER_RESULTS [--rel 1e-9]

Trials are matched on what they are (family, generator, method, forget set, retain setting,
alpha, noise, task, mask ratio, seed, pretrain seed and the cascade options), not on their ids
or hashes, which may change; rows on (split, metric). Prints every difference beyond the
relative tolerance and exits 1 when there is one, or when a trial or metric is missing on
either side.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import warnings

from analysis.load import read_results

KEYS = ("family", "generator", "generator_size", "method", "dataset", "forget_set", "retain_mode",
        "retain_fraction", "proxy_source", "proxy_size", "alpha", "noise", "task", "mask_ratio",
        "seed", "pretrain_seed", "params", "split", "metric")


def _key(row) -> tuple:
    out = []
    for k in KEYS:
        v = row[k]
        if k == "params":  # `rounds` is recorded for more methods since schema 3
            p = json.loads(v or "{}")
            p.pop("rounds", None)
            v = json.dumps(p, sort_keys=True)
        out.append(None if v is None or (isinstance(v, float) and math.isnan(v)) else v)
    return tuple(out)


def values(results: str) -> dict[tuple, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df = read_results(results)
    df = df[df["status"] == "ok"]
    out = {}
    for row in df.to_dict("records"):
        k = _key(row)
        if k in out:
            raise SystemExit(f"error: two rows for {k} in {results}")
        out[k] = row["value"]
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("before")
    p.add_argument("after")
    p.add_argument("--rel", type=float, default=1e-9, help="relative tolerance (default 1e-9)")
    args = p.parse_args(argv)
    a, b = values(args.before), values(args.after)
    bad = 0
    for k in sorted(set(a) | set(b), key=str):
        if k not in a or k not in b:
            print(f"missing {'after' if k in a else 'before'}: {k}")
            bad += 1
        elif not math.isclose(a[k], b[k], rel_tol=args.rel, abs_tol=1e-12):
            print(f"differs: {k}: {a[k]!r} -> {b[k]!r}")
            bad += 1
    worst = max((abs(a[k] - b[k]) / max(abs(a[k]), 1e-300) for k in set(a) & set(b)),
                default=0.0)
    print(f"{len(set(a) & set(b))} values compared; {bad} differences beyond rel {args.rel:g}; "
          f"largest relative difference {worst:.3g}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
