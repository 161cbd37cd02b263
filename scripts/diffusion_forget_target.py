"""Measures what the diffusion model's l2l forget target does (docs/design-notes.md, "Protocol"):
the paper's noise image (noise only in the hidden region, `Diffusion.noise_input`) against a
whole noise image (the base class's `noise_input`, what MAE and VQ-GAN get), on the diffusion
original of a spec's protocol. Prints retain / forget FID and cosine of each, one line each.

    .venv/bin/python scripts/diffusion_forget_target.py --spec sweeps/specs/i2i_control.yaml \
        --pretrain-seed 0 --cache-dir /path/to/cache

The whole-image variant is not a config option on purpose: it departs from the paper, and this
script exists to measure that departure, not to offer it.
"""
from __future__ import annotations

import argparse

import yaml

from l2l import experiment
from l2l.generators.base import Generator
from l2l.generators.diffusion import Diffusion

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
    paper = Diffusion.noise_input
    for name, target in (("hidden region (paper)", paper),
                         ("whole image", Generator.noise_input)):
        Diffusion.noise_input = target
        result = experiment.run(experiment.parse_config(raw))
        d = {(m.split, m.metric): m.value for m in result.metrics}
        print(f"{name}: retain FID {d['retain', 'fid']:.2f}, forget FID {d['forget', 'fid']:.2f}, "
              f"retain cosine {d['retain', 'cosine']:.4f}, forget cosine "
              f"{d['forget', 'cosine']:.4f}", flush=True)
    Diffusion.noise_input = paper


if __name__ == "__main__":
    main()
