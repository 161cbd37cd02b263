"""Measures what the diffusion model's l2l forget target does (docs/design-notes.md, "Protocol"):
the paper's noise image (noise only in the hidden region, `noise_target: paper`) against a
whole noise image (`noise_target: whole_image`, what MAE and VQ-GAN get), on the diffusion
original of a spec's protocol. Prints retain / forget FID and cosine of each, one line each.

    .venv/bin/python scripts/diffusion_forget_target.py --spec sweeps/specs/i2i_control.yaml \
        --pretrain-seed 0 --cache-dir /path/to/cache
"""
from __future__ import annotations

import argparse

import yaml

from l2l import experiment

SPEC_ONLY = ("name", "description", "grid", "variants", "resources", "max_concurrent_trials",
             "max_failures")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--spec", default="sweeps/specs/i2i_control.yaml")
    p.add_argument("--pretrain-seed", type=int, default=0)
    p.add_argument("--cache-dir", help="model cache (default: $L2L_CACHE_DIR or ~/.cache/l2l)")
    args = p.parse_args()
    spec = yaml.safe_load(open(args.spec))
    raw = {k: v for k, v in spec.items() if k not in SPEC_ONLY}
    raw.update(method="l2l", generator={"name": "diffusion", "size": "tiny"})
    raw["pretrain"] = {**raw["pretrain"], "seed": args.pretrain_seed}
    if args.cache_dir:
        raw["cache_dir"] = args.cache_dir
    for target in ("paper", "whole_image"):
        result = experiment.run(experiment.parse_config({**raw, "noise_target": target}))
        d = {(m.split, m.metric): m.value for m in result.metrics}
        print(f"{target}: retain FID {d['retain', 'fid']:.2f}, forget FID {d['forget', 'fid']:.2f}, "
              f"retain cosine {d['retain', 'cosine']:.4f}, forget cosine "
              f"{d['forget', 'cosine']:.4f}", flush=True)


if __name__ == "__main__":
    main()
