"""What a sweep would do, without doing it: resources per trial after the GPU fallback, and an
estimated cost. Used by `l2l-sweep run --dry-run` (which starts nothing and writes nothing) and,
for the fallback, by the driver. No Ray, torch or MLflow import here.

The estimate is rough by design: per-generator reference rates measured on the 2-core CPU of
docs/benchmarks.md (tiny models), scaled by the trial's steps, batch size, evaluation images and
pretraining budget; where `--results` already holds a trial with the same config hash, its
measured seconds replace the reference.
"""
from __future__ import annotations

import math
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

from contract.identity import IDENTITY_VERSION
from sweeps.spec import SweepSpec

# Seconds per unit of work (`Work`) at `threads` torch threads: pretraining per image-epoch,
# unlearning per step of 64 forget + 64 retain images (the GAN cascade: per round), evaluation
# per image (the GAN: per generated sample).
# Image-to-image generators: "cpu2" of docs/benchmarks.md (tiny size), from the i2i-control
# sweep of 2026-12-03 (two 1-CPU trials at a time, halved to 2 threads): hybrid masks and a
# validation pass per epoch included; membership inference and the retrained model's outputs
# were off there, so trials with them cost somewhat more than this says.
# DCGAN (tiny): the gan-speedup sweep of 2026-12-04, one trial at a time on one thread:
# pretraining 36 s an epoch of 54,000 images with the FID check, evaluation (2,000 samples,
# 2,000 real images, membership, a 3-epoch downstream classifier) 8 s; a cascade round
# (3 batches of 64) from benchmarks/unlearn_vs_retrain.py (38,400 images in 15.4 s).
REFERENCE = {
    "mae": {"pretrain": 1.5e-3, "step": 0.125, "eval": 1.6e-3, "threads": 2},
    "vqgan": {"pretrain": 2.8e-3, "step": 0.19, "eval": 4.1e-3, "threads": 2},
    "diffusion": {"pretrain": 1.6e-3, "step": 0.18, "eval": 5.5e-3, "threads": 2},
    "dcgan": {"pretrain": 6.7e-4, "step": 0.077, "eval": 4.0e-3, "threads": 1},
}
# Rates on a GPU, per (generator, size), same units; used for trials that get a GPU. Measured
# by benchmarks/gan_gpu_rates.py on an NVIDIA H200 (2026-12-04; median of the MNIST- and
# CIFAR-10-format runs, batch 64). No i2i generator has GPU rates yet: its CPU figures stand in.
GPU_REFERENCE = {
    ("dcgan", "base"): {"pretrain": 1.13e-4, "step": 0.0108, "eval": 1.5e-4},
}
# Epochs a GAN trained to the FID criterion (pretrain.fid_patience) runs, the patience
# included: 6 to 19, mean 11.6, over the 24 originals and retrained models of the gan-speedup
# sweep (2026-12-04; 278 epochs, 2.67 h against the dry run's 2.8 h).
CRITERION_EPOCHS = 12
SIZE_FACTOR = {"tiny": 1.0, "small": 4.0, "base": 16.0}  # a guess: not measured
CLASSIFIER_PER_IMAGE_EPOCH = 8.6 / 10000
# What the sweep adds (benchmarks/sweep_overhead.py): a trial on a warm, reused Ray worker
# (measured 0.1 to 0.3 s; 1 s here), and once per sweep Ray, MLflow and Tune starting and
# stopping (measured 8 to 11 s on a 2-core machine).
TRIAL_OVERHEAD = 1.0
SWEEP_START = 10.0
NO_REFERENCE = 60.0  # a trial of a generator without reference rates


def local_gpus() -> int:
    """GPUs this machine would give Ray, found without starting Ray or importing torch:
    $CUDA_VISIBLE_DEVICES when set, else `nvidia-smi -L`."""
    vis = os.environ.get("CUDA_VISIBLE_DEVICES")
    if vis is not None:
        return len([d for d in vis.split(",") if d.strip() and d.strip() != "-1"])
    if not shutil.which("nvidia-smi"):
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for ln in out.stdout.splitlines() if ln.startswith("GPU "))


def effective_resources(requested: dict[str, dict[str, float]], gpus: float,
                        where: str = "the Ray cluster") -> tuple[dict[str, dict[str, float]],
                                                                list[str]]:
    """Per-generator resources; GPU requests become CPU-only, with a notice, where there are no
    GPUs, so the same spec runs on a laptop. Returns (resources, notices)."""
    out, notices = {}, []
    for gen, res in requested.items():
        if res["gpu"] > 0 and gpus == 0:
            notices.append(f"notice: resources.{gen} asks for {res['gpu']:g} GPU but {where} "
                           "has none; its trials run on the CPU")
            res = {**res, "gpu": 0.0, "cpu": max(res["cpu"], 1.0)}
        out[gen] = res
    return out, notices


class ResourceError(ValueError):
    """A trial asks for more than the whole cluster has: Tune would wait for it forever."""


def check_fits(requested: dict[str, dict[str, float]], cpus: float, gpus: float,
               where: str = "the Ray cluster") -> None:
    """Refuses a per-trial request larger than `where` has in all (after the GPU fallback):
    such a trial never starts, and the sweep would wait for it without end."""
    resources, _ = effective_resources(requested, gpus, where)
    for gen, res in resources.items():
        if res["cpu"] > cpus:
            raise ResourceError(f"resources.{gen}: asks for {res['cpu']:g} CPUs a trial, but "
                                f"{where} has {cpus:g}; lower it (trials would wait forever)")
        if res["gpu"] > gpus:
            raise ResourceError(f"resources.{gen}: asks for {res['gpu']:g} GPUs a trial, but "
                                f"{where} has {gpus:g}")


def generator_of(config: dict[str, Any]) -> str:
    return (config.get("generator") or {}).get("name", "default")


def pick(resources: dict[str, dict[str, float]], generator: str) -> dict[str, float]:
    return resources.get(generator, resources["default"])


# ----------------------------------------------------------------------------------------------
# Cost


@dataclass
class Estimate:
    trials: int
    trial_seconds: list[float]  # one per trial
    measured: int  # trials whose seconds came from earlier results
    originals: int  # distinct original models (and retrained ones) to train unless cached
    pretrain_seconds: float
    classifier_seconds: float
    unreferenced: set[str] = field(default_factory=set)  # generators without reference rates


def _slowdown(ref: dict[str, float], res: dict[str, float] | None) -> float:
    """The reference ran `threads` torch threads; a CPU trial runs as many as it has CPUs."""
    if res is None or res["gpu"] > 0:
        return 1.0  # no GPU rates for this generator and size: the CPU figures stand in
    return ref["threads"] / max(1.0, min(res["cpu"], ref["threads"]))


@dataclass(frozen=True)
class Work:
    """What one trial does, in the units of REFERENCE."""

    steps: float  # unlearning steps (GAN: rounds) of 64 images
    eval_images: float
    pretrain_image_epochs: float  # training its original model, when not cached
    retained_share: float  # of the original's training images a retrained model keeps
    needs_retrained: bool  # trains (or reads) the model retrained without the forget set


def _i2i_work(cfg) -> Work:
    steps = 0 if cfg.method in ("original", "retrain") else cfg.unlearn.steps
    n_classes = len(cfg.forget_classes) + len(cfg.retain_classes)
    full = max(n_classes, _classes_of(cfg))
    return Work(steps * cfg.unlearn.batch_size / 64, cfg.eval.images_per_class * n_classes,
                cfg.pretrain.images * cfg.pretrain.epochs,
                1 - len(cfg.forget_classes) / full,
                cfg.method == "retrain" or cfg.eval.retrain_reference)


def _gan_work(cfg) -> Work:
    pool = cfg.pool_size
    forget = (pool * len(cfg.forget_classes) / cfg.n_classes if cfg.setting == "class"
              else cfg.forget_set.items)
    u = cfg.unlearn  # None for original and retrain
    # the whole budget: the stopping rule may end it sooner
    steps = 0 if u is None else u.rounds_for(round(forget)) * u.batch_size / 64
    p = cfg.pretrain
    epochs = p.epochs if p.fid_patience is None else min(p.epochs, CRITERION_EPOCHS)
    return Work(steps, cfg.eval.samples, pool * epochs, 1 - forget / pool,
                cfg.method == "retrain" or (u is not None and u.stop_every is not None))


WORK = {"i2i": _i2i_work, "gan": _gan_work}  # family -> what its trials do


def _rates(cfg, res) -> tuple[dict[str, float] | None, float]:
    """The generator's reference rates (None: not measured) and the factor its size and
    threads multiply them by. A trial with a GPU takes GPU_REFERENCE's, where measured."""
    if res is not None and res["gpu"] > 0:
        gpu = GPU_REFERENCE.get((cfg.generator.name, cfg.generator.size))
        if gpu is not None:
            return gpu, 1.0
    ref = REFERENCE.get(cfg.generator.name)
    if ref is None:
        return None, 1.0
    return ref, SIZE_FACTOR.get(cfg.generator.size, 1.0) * _slowdown(ref, res)


def _trial_seconds(cfg, res=None) -> float:
    ref, factor = _rates(cfg, res)
    if ref is None:
        return NO_REFERENCE
    w = WORK[cfg.family](cfg)
    return TRIAL_OVERHEAD + factor * (w.steps * ref["step"] + w.eval_images * ref["eval"])


def trial_estimates(spec: SweepSpec) -> dict[str, float]:
    """Per grid trial id: its estimated seconds without model training (the progress line
    scales these by what the finished trials measured, so only their proportions matter)."""
    return {t.trial_id: _trial_seconds(t.config, pick(spec.resources,
                                                      t.config.generator.name))
            for t in spec.trials}


def model_work(cfg) -> dict[str, float]:
    """The models a trial trains when no cache holds them: key -> image-epochs (a GAN to the
    FID criterion at CRITERION_EPOCHS). The original is shared by every trial with the same
    data, generator, task and pretraining; the retrained model by those that also share the
    forget set (classes, or items drawn)."""
    w = WORK[cfg.family](cfg)
    d = cfg.to_dict()
    key = repr([d.get(k) for k in ("dataset", "image_folder", "generator", "task", "pretrain")])
    out = {key: w.pretrain_image_epochs}
    if w.needs_retrained:
        out[key + repr(d.get("forget_set"))] = w.pretrain_image_epochs * w.retained_share
    return out


def _models(cfg, res=None) -> dict[str, float]:
    """`model_work` in estimated seconds (a model without reference rates: NO_REFERENCE for
    its original)."""
    ref, factor = _rates(cfg, res)
    full = WORK[cfg.family](cfg).pretrain_image_epochs
    return {k: NO_REFERENCE * ie / full if ref is None else factor * ref["pretrain"] * ie
            for k, ie in model_work(cfg).items()}


def build_estimates(spec: SweepSpec, trials=None) -> dict[str, dict[str, float]]:
    """Per grid trial id (of `trials`, default the spec's): the models it trains unless they
    are cached (`_models`)."""
    return {t.trial_id: _models(t.config, pick(spec.resources, t.config.generator.name))
            for t in (spec.trials if trials is None else trials)}


def _classes_of(cfg) -> int:
    """Classes of the trial's data set when the config knows them (Fashion-MNIST: 10)."""
    from l2l.config import DATASETS

    return DATASETS.get(cfg.dataset) or 0


def _measured(results_dir) -> dict[tuple[int, str], float]:
    """(identity version, config hash) -> median seconds of earlier successful trials with
    that config, from the results at a path or URI. Unreadable files are skipped."""
    from contract.schema import PARTITION, SchemaError, read_table
    from contract.storage import STORE_ERRORS, StorageError, locate, probe

    if results_dir is None:
        return {}
    root = locate(results_dir)
    try:
        probe(root, "--results")
        files = [f for d in root.dirs() if d.name.startswith(f"{PARTITION}=")
                 for f in d.files(".parquet")]
    except (StorageError, *STORE_ERRORS):  # a store that cannot be reached: the rates alone
        return {}
    if not files:
        return {}

    seen: dict[tuple[int, str], list[float]] = {}
    cols = ["config_hash", "identity_version", "status", "unlearn_seconds", "eval_seconds"]
    for f in files[-2000:]:
        try:
            r = read_table(f).select(cols).slice(0, 1).to_pylist()[0]
        except SchemaError:
            continue
        if r["status"] == "ok" and r["unlearn_seconds"] is not None and r["config_hash"]:
            key = (r["identity_version"] or IDENTITY_VERSION, r["config_hash"])
            seen.setdefault(key, []).append(
                TRIAL_OVERHEAD + r["unlearn_seconds"] + (r["eval_seconds"] or 0.0))
    return {k: median(v) for k, v in seen.items()}


def _lookup(measured: dict[tuple[int, str], float], cfg) -> float | None:
    """The measured seconds of `cfg`, under whichever identity version they were recorded."""
    for version in sorted({v for v, _ in measured}):
        found = measured.get((version, cfg.identity_hash(version)))
        if found is not None:
            return found
    return None


def estimate(spec: SweepSpec, results_dir: Path | None = None,
             resources: dict[str, dict[str, float]] | None = None) -> Estimate:
    configs = [t.config for t in spec.trials]
    if spec.search:  # every point runs every seed (ASHA may stop some earlier)
        configs = configs * spec.search.num_samples
    measured = _measured(results_dir)
    resources = resources or spec.resources

    def res_of(c):
        return pick(resources, c.generator.name)

    seconds, n_measured, unreferenced = [], 0, set()
    for c in configs:
        found = _lookup(measured, c)
        if found is not None:
            seconds.append(found)
            n_measured += 1
        else:
            seconds.append(_trial_seconds(c, res_of(c)))
            if c.generator.name not in REFERENCE:
                unreferenced.add(c.generator.name)
    models: dict[str, float] = {}
    classifiers: dict[str, float] = {}
    for c in configs:
        models.update(_models(c, res_of(c)))
        classifiers[repr(c.to_dict().get("classifier"))] = \
            CLASSIFIER_PER_IMAGE_EPOCH * c.classifier.images * c.classifier.epochs
    originals, pretrain_seconds = len(models), sum(models.values())
    return Estimate(len(configs), seconds, n_measured, originals, pretrain_seconds,
                    sum(classifiers.values()), unreferenced)


def _fmt(s: float) -> str:
    if s >= 5400:
        return f"{s / 3600:.1f} h"
    return f"{s / 60:.1f} min" if s >= 90 else f"{s:.0f} s"


def dry_run(spec: SweepSpec, results_dir: Path | None, address: str | None) -> str:
    """The text of `l2l-sweep run --dry-run`."""
    lines = []
    if spec.search:
        s = spec.search
        lines.append(f"dry run: spec {spec.name} (search): {s.num_samples} points x "
                     f"{len(s.seeds)} seeds = at most {s.num_samples * len(s.seeds)} trials")
    else:
        lines.append(f"dry run: spec {spec.name} (grid): {len(spec.trials)} trials")
    if address:
        gpus, cpus = None, None
        lines.append(f"resources per trial (cluster {address} is not queried in a dry run; "
                     "GPU requests as the spec gives them):")
        resources, notices = spec.resources, []
    else:
        gpus, cpus = local_gpus(), os.cpu_count() or 1
        lines.append(f"resources per trial (this machine: {cpus} CPUs, "
                     f"{gpus or 'no'} GPU{'s' if gpus != 1 else ''}):")
        resources, notices = effective_resources(spec.resources, gpus, "this machine")
    lines += [f"  {n}" for n in notices]

    groups: dict[tuple, int] = {}
    per = spec.search.num_samples if spec.search else 1
    for t in spec.trials:
        g = t.config.generator
        key = (g.name, g.size)
        groups[key] = groups.get(key, 0) + per
    slots = math.inf
    for (name, size), n in groups.items():
        res, asked = pick(resources, name), spec.resources_for(name)
        note = "" if res == asked else f"   (spec: cpu {asked['cpu']:g}, gpu {asked['gpu']:g})"
        lines.append(f"  {n:4d} trials  {name}/{size}: cpu {res['cpu']:g}, gpu {res['gpu']:g}"
                     f"{note}")
        if cpus is not None:
            fit = cpus // res["cpu"] if res["cpu"] > 0 else math.inf
            if res["gpu"] > 0:
                fit = min(fit, gpus // res["gpu"])
            slots = min(slots, max(1, fit))
    cap = spec.search.max_concurrent if spec.search else spec.max_concurrent_trials
    if cap:
        slots = min(slots, cap)
    if slots != math.inf:
        lines.append(f"  at most {int(slots)} at a time here")

    est = estimate(spec, results_dir, resources)
    total = sum(est.trial_seconds)
    src = (f"{est.measured} of {est.trials} from earlier results in {results_dir}, the rest "
           if est.measured else "")
    lines.append(f"estimated cost (rough; {src}reference rates of docs/benchmarks.md: 2-core "
                 "CPU, tiny models):")
    for gen in sorted(est.unreferenced):
        lines.append(f"  {gen}: no reference rates yet; {NO_REFERENCE:.0f} s a trial and an "
                     "original model assumed (earlier results in --results replace it)")
    lines.append(f"  {est.originals} original model{'s' if est.originals != 1 else ''} to "
                 f"train unless cached: about {_fmt(est.pretrain_seconds)}; classifier about "
                 f"{_fmt(est.classifier_seconds)}")
    lines.append(f"  {est.trials} trials: about {_fmt(total)} of trial time "
                 f"(median {_fmt(median(est.trial_seconds))} a trial)")
    if slots != math.inf:
        # Originals are trained by the first trials that need them, several at a time when
        # the sweep has several (measured: the i2i-control sweep, 37 min against 35 here).
        wall = (SWEEP_START + est.classifier_seconds
                + est.pretrain_seconds / min(slots, max(1, est.originals)) + total / slots)
        lines.append(f"  wall clock: about {_fmt(wall)} with {int(slots)} at a time")
    gpu_s = sum(s * pick(resources, t.config.generator.name)["gpu"]
                for s, t in zip(est.trial_seconds, spec.trials * per))
    lines.append(f"  GPU time: {'none' if not gpu_s else f'about {gpu_s / 3600:.2f} GPU-hours'}")
    lines.append("nothing was started or written (dry run)")
    return "\n".join(lines)
