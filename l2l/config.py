"""Frozen, validated trial configuration.

`TrialConfig.from_dict(d)` is the single entry point: it fills defaults, checks every field and
raises `ConfigError("<field path>: <what is allowed>")` on the first problem, before any work.
"""
from __future__ import annotations

import dataclasses
import json
import math
import random
from pathlib import Path
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from l2l.errors import ConfigError
from l2l.fields import Config, spec
from l2l.registry import Method, method_registry

DATASETS = {"fashion_mnist": 10, "image_folder": None}  # name -> classes (None: from files)
TASKS = ("center_inpaint", "outpaint", "random")  # l2l/tasks.py, one function each
# The generators, one file each: name -> "module:Class", imported when one is built (so configs
# validate without torch). Adding a generator is its file and one line here.
GENERATORS = {
    "mae": "l2l.generators.mae:MAE",
    "vqgan": "l2l.generators.vqgan:VQGAN",
    "diffusion": "l2l.generators.diffusion:Diffusion",
}
GENERATOR_SIZES = ("tiny", "small", "base")
RETAIN_MODES = ("full", "fraction", "proxy", "none")
PROXY_SOURCES = ("fashion_mnist", "digits")  # digits: scikit-learn's 8x8 digits, resized
NOISE_TYPES = ("normal", "uniform", "constant")
# l2l's noise image n in E0(T(n)): `paper` as each generator's released code (the diffusion
# model: noise only in the hidden region; MAE, VQ-GAN: the whole image, their encoders see only
# visible tokens), `whole_image` for every generator (an ablation: docs/design-notes.md).
NOISE_TARGETS = ("paper", "whole_image")
DEVICES = ("auto", "cpu", "cuda")
SCHEDULES = ("cosine", "constant")  # l2l/training.py cosine_schedule
# The methods of this family, one file each: name -> (module, the method-specific fields it
# uses). Adding a method is its file and one line here.
METHODS = method_registry("method", {
    "original": Method("l2l.methods.original"),
    "retrain": Method("l2l.methods.retrain"),
    "max_loss": Method("l2l.methods.max_loss", ("alpha",)),
    "noisy_label": Method("l2l.methods.noisy_label", ("alpha",)),
    "retain_label": Method("l2l.methods.retain_label", ("alpha",)),
    "random_encoder": Method("l2l.methods.random_encoder", ("alpha",)),
    "l2l": Method("l2l.methods.l2l", ("alpha", "noise", "noise_target")),
    "finetune_retain": Method("l2l.methods.finetune_retain"),
    "finetune_all": Method("l2l.methods.finetune_all"),
})
# Methods that cannot work without retain images (their retain term is the whole point).
NEEDS_RETAIN = ("retain_label", "finetune_retain")


@dataclass(frozen=True)
class TaskConfig:
    kind: str = spec("center_inpaint", column="task")
    # center_inpaint: side of the hidden centre square / image side, as in the paper;
    # outpaint: share of the side hidden as a border (half on each side); random: share of the
    # tokens hidden, scattered (one fixed draw for every trial).
    mask_ratio: float = spec(0.5, column="mask_ratio")


@dataclass(frozen=True)
class EvalTaskConfig:
    """The task an evaluation runs under when it is not the trial's own: the mask-transfer
    check (does forgetting hold under masks the model was not unlearned with?). No result
    column of its own: it goes to `settings` (eval.task.kind, eval.task.mask_ratio)."""

    kind: str = "center_inpaint"
    mask_ratio: float = 0.5


@dataclass(frozen=True)
class GeneratorConfig:
    name: str = spec("mae", column="generator")
    size: str = spec("tiny", column="generator_size")
    # Steps of iterative generation at evaluation (diffusion: DDIM steps; VQ-GAN: decoding
    # rounds); None = the generator's default. Does not change the trained weights.
    sampling_steps: int | None = None


@dataclass(frozen=True)
class PretrainConfig:
    images: int = 20000
    epochs: int = 4
    batch_size: int = 128
    lr: float = 2e-3
    seed: int = spec(0, column="pretrain_seed")


@dataclass(frozen=True)
class I2IPretrainConfig(PretrainConfig):
    """Pretraining of an image-to-image generator: the shared budget fields plus the training
    masks and noise images (docs/design-notes.md, "Masks" and "Originals")."""

    # Share of batches masked at random (l2l/tasks.py TrainingMasks), the rest with the task's
    # mask: 1.0 is the paper's random masking, 0.0 the task's mask only.
    random_masks: float = spec(1.0, since=2, legacy=0.0)
    # Share of noise images mixed into pretraining batches (0: real images only, the paper).
    noise_share: float = spec(0.0, since=2)
    # Learning-rate schedule after the warm-up: cosine decay (the originals) or constant (the
    # validation curves of `l2l plateau`).
    schedule: str = spec("cosine", since=2)


@dataclass(frozen=True)
class ClassifierConfig:
    images: int = 20000
    epochs: int = 1
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0


@dataclass(frozen=True)
class UnlearnConfig:
    steps: int = 100
    batch_size: int = 64  # images of each set (forget, retain) per step
    lr: float = 1e-3
    images_per_class: int = 500
    # Share of steps masked at random, the rest with the task's mask (as pretrain.random_masks;
    # student and teacher see the same mask). 1.0: the paper's training masks.
    random_masks: float = spec(1.0, since=2, legacy=0.0)


@dataclass(frozen=True)
class RelearnConfig:
    """The relearning attack (l2l/relearn.py), both families: after unlearning, an attacker
    who holds `images` of the forgotten images fine-tunes the whole model on them for `steps`
    steps (the model's own training objective), and the trial is evaluated after that. steps 0:
    the unlearned model as it is (the attack's starting point)."""

    images: int = 16  # forgotten images the attacker holds (drawn from the forget set)
    steps: int = 50
    lr: float = 1e-3
    batch_size: int = 16  # at most `images`
    seed: int = 0  # which images the attacker holds, and its batches


def parse_relearn(v: Any, path: str = "relearn") -> RelearnConfig | None:
    """The `relearn` section (None: no attack)."""
    if v is None:
        return None
    return _section(RelearnConfig, v, path, {
        "images": _pos, "steps": lambda x, p: _int(x, p, 0, 1_000_000), "lr": _lr,
        "batch_size": _batch, "seed": _seed})


EXTRACTORS = ("classifier", "inception", "clip")  # l2l/features.py
# What the evaluation sets are drawn from: the test split (final tables) or the validation
# holdout of the training images (l2l/data.py validation_split; what searches choose on).
EVAL_SPLITS = ("test", "validation")


@dataclass(frozen=True)
class EvalConfig:
    """How a trial is evaluated (l2l/metrics.py; every metric: docs/results-schema.md)."""

    images_per_class: int = 100  # held-out images of each forget / retain class
    # Where the held-out images come from (EVAL_SPLITS): `test`, or `validation`, training
    # images no original model is trained on. Sweep searches set `validation`.
    split: str = spec("test", since=2)
    batch_size: int = 256
    # Feature extractor of fid, kid and is; `cosine_features` that of cosine and of the saved
    # embeddings (None: the same). inception and clip read local weights: the file fields or
    # $L2L_INCEPTION_WEIGHTS / $L2L_CLIP_WEIGHTS.
    features: str = "classifier"
    cosine_features: str | None = None
    inception_weights: str | None = spec(None, role="file")
    clip_weights: str | None = spec(None, role="file")
    clip_model: str = "ViT-H-14"  # open_clip architecture of clip_weights (the paper's)
    kid_subsets: int = 50
    kid_subset_size: int = 1000  # capped at the number of images
    # Membership inference (mia_auc): a loss-threshold attack on training-pool images of each
    # split's classes against as many held-out ones.
    mia: bool = True
    # Compare with the model retrained without the forget classes (retrain_distance,
    # mia_auc_retrain); trains and caches that model once when it is not cached yet.
    retrain_reference: bool = True
    grid_images: int = spec(8, role="display")  # images per sample grid (artifacts)
    # Evaluate under another task than the trial's (None: its own); since=3: left out of the
    # identity while unset, so no existing trial id changes
    task: EvalTaskConfig | None = spec(None, since=3)
    # The forgetting curve (l2l/monitor.py): also evaluate before the first unlearning step and
    # after every this many steps, rows with a `step`; None: the final evaluation only
    every: int | None = spec(None, since=3)


@dataclass(frozen=True)
class ImageFolderConfig:
    """An ImageNet- or Places-style folder (see l2l/image_folder.py). Part of the content hash:
    a different folder is a different data set."""

    root: str = spec(role="location")  # the data are identified by their class list
    classes_file: str | None = spec(None, role="file")
    max_per_class: int | None = None  # images read a class and split, for small-scale runs


@dataclass(frozen=True)
class RetainConfig:
    """Which real retain images unlearning may use. `classes` are the retained classes (their
    held-out images are always the retain evaluation set); `mode` says what training data stands
    for them: all (`full`), a `fraction` of them, a `proxy` set of `size` x |forget set| images
    from other classes or another data set, or `none`."""

    classes: tuple[int, ...]
    mode: str = spec("full", column="retain_mode")
    fraction: float | None = None  # fraction mode: share of the real retain images
    # proxy mode: fashion_mnist (other classes) or digits
    source: str | None = spec(None, column="proxy_source")
    proxy_classes: tuple[int, ...] | None = None  # proxy from fashion_mnist: which classes
    size: float | None = spec(None, column="proxy_size")  # proxy images per forget image


class SequentialRequests:
    """Deletion requests in sequence (l2l/sequence.py), for the trial configs of both families:
    they have `forget_classes`, `earlier_requests`, `relearn` and `eval.every`, and say how to
    change their forget classes (`with_forget_classes`)."""

    @property
    def own_request(self) -> tuple[int, ...]:
        """The classes this trial's unlearning forgets: the forget set less the earlier
        requests' (all of it without earlier requests)."""
        done = {c for r in self.earlier_requests or () for c in r}
        return tuple(c for c in self.forget_classes if c not in done)

    def previous_request(self):
        """The trial whose unlearned model this one starts from: the same method and
        settings on the earlier requests (the last of them its own), without what does not
        change a model (the forgetting curve, a relearning attack after it)."""
        earlier = self.earlier_requests
        prev = self.with_forget_classes(tuple(sorted(c for r in earlier for c in r)))
        return dataclasses.replace(prev, earlier_requests=earlier[:-1] or None, relearn=None,
                                   eval=dataclasses.replace(self.eval, every=None))


@dataclass(frozen=True)
class TrialConfig(SequentialRequests, Config):
    """One image-to-image unlearning trial (family `i2i`)."""

    method: str = spec(column="method")
    forget_classes: tuple[int, ...] = spec()
    retain: RetainConfig = spec()
    dataset: str = spec("fashion_mnist", column="dataset")
    image_folder: ImageFolderConfig | None = None
    task: TaskConfig = spec(default_factory=TaskConfig)
    generator: GeneratorConfig = spec(default_factory=GeneratorConfig)
    pretrain: I2IPretrainConfig = spec(default_factory=I2IPretrainConfig)
    classifier: ClassifierConfig = spec(default_factory=ClassifierConfig)
    alpha: float | None = spec(None, column="alpha")
    noise: str | None = spec(None, column="noise")
    noise_target: str | None = spec(None, param=True, since=2, legacy="paper")
    unlearn: UnlearnConfig = spec(default_factory=UnlearnConfig)
    eval: EvalConfig = spec(default_factory=EvalConfig)
    # A relearning attack after unlearning (None: none); since=3: left out of the identity
    # while unset, so the trial ids of sweeps without it stay as they were
    relearn: RelearnConfig | None = spec(None, since=3)
    # Deletion requests in sequence (l2l/sequence.py): the forget requests this model carried
    # out before this trial's, in order, each a list of classes within `forget_classes`; this
    # trial unlearns the rest of `forget_classes` starting from the model those requests left
    # (unlearned by the same method and settings, cached) and is evaluated on all of them.
    # None: one request, from the original model. since=3: left out of the identity while unset
    earlier_requests: tuple[tuple[int, ...], ...] | None = spec(None, since=3)
    seed: int = spec(0, column="seed")
    # Where things run and live; they do not change results, so they are not in the identity.
    device: str = spec("auto", role="runtime")
    data_root: str | None = spec(None, role="runtime")
    cache_dir: str | None = spec(None, role="runtime")

    family: ClassVar[str] = "i2i"
    # The field that picks the evaluation images and the value settings are chosen on
    # (l2l/fields.py Config; sweeps/spec.py sets it in searches).
    selection_split: ClassVar[tuple[str, str] | None] = ("eval.split", "validation")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "TrialConfig":
        return _parse_trial(d)

    @property
    def retain_classes(self) -> tuple[int, ...]:
        return self.retain.classes

    def with_forget_classes(self, classes: tuple[int, ...]) -> "TrialConfig":
        return dataclasses.replace(self, forget_classes=classes)

    def to_dict(self) -> dict[str, Any]:
        """A dict that `from_dict` turns back into this config (lists for tuples, no Nones)."""
        d = dataclasses.asdict(self)
        d["forget_set"] = {"classes": list(d.pop("forget_classes"))}
        if d["image_folder"] is None:
            del d["image_folder"]
        d["retain"] = {k: list(v) if isinstance(v, tuple) else v
                       for k, v in d["retain"].items() if v is not None}
        return d

    derived_fields = ("forget_classes", "retain.classes", "retain.fraction")

    def derived_columns(self) -> dict[str, Any]:
        r = self.retain
        return {"setting": "class", "forget_k": len(self.forget_classes),
                "forget_set": json.dumps(list(self.forget_classes)),
                "retain_set": json.dumps(list(self.retain_classes)),
                "retain_fraction": {"full": 1.0, "fraction": r.fraction}.get(r.mode, 0.0)}

    def describe(self) -> str:
        alpha = f" alpha={self.alpha:g}" if self.alpha is not None else ""
        return (f"{self.generator.name}/{self.generator.size} {self.method}{alpha} "
                f"forget={list(self.forget_classes)} seed={self.seed}")


# ----------------------------------------------------------------------------------------------
# Parsing with field paths in every error.

# Top-level trial fields (the GAN family's are l2l/gan/config.py KEYS).
KEYS = {
    "method", "forget_set", "retain", "dataset", "task", "generator", "pretrain", "classifier",
    "alpha", "noise", "noise_target", "unlearn", "eval", "seed", "device", "data_root",
    "cache_dir", "image_folder", "relearn", "earlier_requests",
}


def _type_name(v: Any) -> str:
    return type(v).__name__ if v is not None else "null"


def _mapping(v: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(v, Mapping):
        raise ConfigError(path, f"expected a mapping, got {_type_name(v)}")
    return v


def _no_unknown(d: Mapping[str, Any], allowed: set[str], path: str) -> None:
    for k in d:
        if k not in allowed:
            name = str(k) if len(str(k)) <= 60 else f"{str(k)[:60]}..."  # never megabytes
            where = f"{path}.{name}" if path else name
            raise ConfigError(where, f"unknown field (allowed: {', '.join(sorted(allowed))})")


def _int(v: Any, path: str, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(path, f"expected an integer, got {_type_name(v)} {v!r}")
    if lo is not None and v < lo:
        raise ConfigError(path, f"must be >= {lo}, got {v}")
    if hi is not None and v > hi:
        raise ConfigError(path, f"must be <= {hi}, got {v}")
    return v


def _float(v: Any, path: str, lo: float | None = None, hi: float | None = None,
           lo_open: bool = False, hi_open: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ConfigError(path, f"expected a number, got {_type_name(v)} {v!r}")
    v = float(v)
    if not math.isfinite(v):  # NaN passes every comparison below: refuse it here
        raise ConfigError(path, f"expected a finite number, got {v}")
    if lo is not None and (v <= lo if lo_open else v < lo):
        raise ConfigError(path, f"must be {'>' if lo_open else '>='} {lo}, got {v}")
    if hi is not None and (v >= hi if hi_open else v > hi):
        raise ConfigError(path, f"must be {'<' if hi_open else '<='} {hi}, got {v}")
    return v


def _choice(v: Any, path: str, allowed: tuple[str, ...] | list[str]) -> str:
    if not isinstance(v, str) or v not in allowed:
        raise ConfigError(path, f"unknown value {v!r} (allowed: {', '.join(allowed)})")
    return v


def _opt_str(v: Any, path: str) -> str | None:
    if v is not None and not isinstance(v, str):
        raise ConfigError(path, f"expected a string or null, got {_type_name(v)}")
    return v


def _classes(v: Any, path: str, n_classes: int) -> tuple[int, ...]:
    if not isinstance(v, (list, tuple)) or not v:
        raise ConfigError(path, f"expected a non-empty list of class indices in 0..{n_classes - 1}")
    out = []
    for i, c in enumerate(v):
        out.append(_int(c, f"{path}[{i}]", 0, n_classes - 1))
    if len(set(out)) != len(out):
        raise ConfigError(path, f"repeated class in {out}")
    return tuple(sorted(out))


def _section(cls, d: Any, path: str, checks: dict[str, Any], defaults=None):
    """Build a frozen section dataclass from `d`, validating each given field with `checks`;
    fields not given come from `defaults` (an instance of `cls`), else the class's defaults."""
    d = {} if d is None else _mapping(d, path)
    names = {f.name for f in dataclasses.fields(cls)}
    _no_unknown(d, names, path)
    kwargs = {k: checks[k](v, f"{path}.{k}") for k, v in d.items()}
    return cls(**kwargs) if defaults is None else dataclasses.replace(defaults, **kwargs)


def _pos(v, p):
    return _int(v, p, 1)


MAX_BATCH = 65536  # images a step; beyond it a batch only exhausts memory


def _batch(v, p):
    return _int(v, p, 1, MAX_BATCH)


def _lr(v, p):
    return _float(v, p, 0.0, 10.0, lo_open=True)


def _share(v, p):
    return _float(v, p, 0.0, 1.0)


def _seed(v, p):
    return _int(v, p, 0, 2**31 - 1)


def _classifier(v: Any) -> ClassifierConfig:
    """The `classifier` section; the same for both families (l2l/gan/config.py uses it)."""
    return _section(ClassifierConfig, v, "classifier", {
        "images": _pos, "epochs": _pos, "batch_size": _batch, "lr": _lr, "seed": _seed})


def _parse_trial(d: Mapping[str, Any]) -> TrialConfig:
    d = _mapping(d, "config")
    _no_unknown(d, KEYS, "")
    for req in ("method", "forget_set"):
        if req not in d:
            raise ConfigError(req, "missing required field")

    method = _choice(d["method"], "method", METHODS.names())
    dataset = _choice(d.get("dataset", "fashion_mnist"), "dataset", list(DATASETS))
    folder, n_classes = _image_folder(d.get("image_folder"), dataset)

    task = _section(TaskConfig, d.get("task"), "task", {
        "kind": lambda v, p: _choice(v, p, TASKS),
        "mask_ratio": lambda v, p: _float(v, p, 0.0, 1.0, lo_open=True, hi_open=True),
    })
    generator = _section(GeneratorConfig, d.get("generator"), "generator", {
        "name": lambda v, p: _choice(v, p, list(GENERATORS)),
        "size": lambda v, p: _choice(v, p, GENERATOR_SIZES),
        "sampling_steps": lambda v, p: None if v is None else _int(v, p, 1, 1000),
    })
    pretrain = _section(I2IPretrainConfig, d.get("pretrain"), "pretrain", {
        "images": _pos, "epochs": _pos, "batch_size": _batch, "lr": _lr, "seed": _seed,
        "random_masks": _share, "noise_share": _share,
        "schedule": lambda v, p: _choice(v, p, SCHEDULES)})
    classifier = _classifier(d.get("classifier"))
    unlearn = _section(UnlearnConfig, d.get("unlearn"), "unlearn", {
        "steps": _pos, "batch_size": _batch, "lr": _lr,
        "images_per_class": _pos, "random_masks": _share})
    evalc = _eval(d.get("eval"))

    if dataset != "image_folder":  # an image folder's size is known only from its files
        _within_data(dataset, pretrain, unlearn, evalc, classifier)
    forget, preset = _forget_set(d["forget_set"], n_classes)
    retain = _retain(d.get("retain", {}), forget, n_classes, preset)
    if dataset != "image_folder":
        _proxy_fits(retain, forget, unlearn, pretrain, n_classes)
    if retain.mode == "none" and method in NEEDS_RETAIN:
        raise ConfigError("retain.mode", f"'none' gives no retain images, which {method} needs "
                                         "(allowed for it: full, fraction, proxy)")

    uses = METHODS.get(method).params
    alpha = noise = noise_target = None
    if "noise_target" in uses:
        noise_target = _choice(d.get("noise_target", "paper"), "noise_target", NOISE_TARGETS)
    if "alpha" in uses:
        alpha = _float(d.get("alpha", 0.25), "alpha", 0.0, 1000.0)
    if "noise" in uses:
        noise = _choice(d.get("noise", "normal"), "noise", NOISE_TYPES)

    return TrialConfig(
        method=method, forget_classes=forget, retain=retain, dataset=dataset,
        image_folder=folder, task=task,
        generator=generator, pretrain=pretrain, classifier=classifier,
        alpha=alpha, noise=noise, noise_target=noise_target, unlearn=unlearn, eval=evalc,
        relearn=_relearn(d.get("relearn"), forget, unlearn.images_per_class),
        earlier_requests=_earlier_requests(d.get("earlier_requests"), forget, n_classes, method),
        seed=_seed(d.get("seed", 0), "seed"),
        device=_choice(d.get("device", "auto"), "device", DEVICES),
        data_root=_opt_str(d.get("data_root"), "data_root"),
        cache_dir=_opt_str(d.get("cache_dir"), "cache_dir"),
    )


def _earlier_requests(v: Any, forget: tuple[int, ...], n_classes: int, method: str
                      ) -> tuple[tuple[int, ...], ...] | None:
    path = "earlier_requests"
    if v is None:
        return None
    if method in ("original", "retrain"):
        raise ConfigError(path, f"is for unlearning methods; {method} unlearns nothing (remove "
                                "it, or give the forget set of all requests)")
    if not isinstance(v, (list, tuple)) or not v:
        raise ConfigError(path, "expected a non-empty list of requests, each a list of classes")
    out, seen = [], set()
    for i, req in enumerate(v):
        classes = _classes(req, f"{path}[{i}]", n_classes)
        if not set(classes) <= set(forget):
            raise ConfigError(f"{path}[{i}]", f"classes {sorted(set(classes) - set(forget))} "
                                              f"are not in the forget set {list(forget)}")
        if seen & set(classes):
            raise ConfigError(f"{path}[{i}]", f"classes {sorted(seen & set(classes))} are "
                                              "already in an earlier request")
        seen |= set(classes)
        out.append(classes)
    if seen == set(forget):
        raise ConfigError(path, f"the earlier requests take the whole forget set {list(forget)}; "
                                "this trial's own request must hold at least one class")
    return tuple(out)


def _relearn(v: Any, forget, per_class: int) -> RelearnConfig | None:
    r = parse_relearn(v)
    if r is not None and r.images > len(forget) * per_class:
        raise ConfigError("relearn.images", f"must be <= the forget set's training images "
                                            f"({len(forget)} x {per_class}), got {r.images}")
    return r


def _within_data(dataset: str, pretrain, unlearn, evalc, classifier) -> None:
    """Counts of images no larger than the data set holds: drawn without replacement, a
    larger count would silently be fewer images than the config (and its identity) says."""
    from l2l.datasets import DATASETS as SETS

    data = SETS.get(dataset)
    split = "test" if evalc.split == "test" else "validation"
    for path, n, most in (
            ("eval.images_per_class", evalc.images_per_class, data.per_class(split)),
            ("unlearn.images_per_class", unlearn.images_per_class, data.per_class("train")),
            ("pretrain.images", pretrain.images, data.per_class("train") * data.classes),
            ("classifier.images", classifier.images, data.train_size)):
        if n > most:
            where = f"{split} split" if path.startswith("eval") else "training images"
            raise ConfigError(path, f"must be <= {most:,} (what {dataset}'s {where} hold), "
                                    f"got {n:,}")


# A pool of `pretrain.images` drawn at random holds about images / classes of each class, a few
# percent fewer for some pretraining seeds: a proxy is refused above this share of that.
POOL_SLACK = 0.97


def _proxy_fits(retain, forget, unlearn, pretrain, n_classes: int) -> None:
    """A proxy of other classes of the same data set is drawn from the original's training
    pool: it must fit in that pool's images of those classes for every pretraining seed, or
    some trials of a sweep would fail after the others ran."""
    if retain.mode != "proxy" or retain.source != "fashion_mnist":
        return
    need = retain.size * len(forget) * unlearn.images_per_class
    held = pretrain.images * len(retain.proxy_classes) / n_classes * POOL_SLACK
    if need > held:
        raise ConfigError("retain.size", f"a proxy of about {need:,.0f} images needs more than "
                          f"the original's {pretrain.images:,}-image pool holds of classes "
                          f"{list(retain.proxy_classes)} (about {held:,.0f} for every "
                          f"pretraining seed); at most {held / need * retain.size:.2f} fits")


def _bool(v: Any, path: str) -> bool:
    if not isinstance(v, bool):
        raise ConfigError(path, f"expected true or false, got {_type_name(v)} {v!r}")
    return v


def every_steps(v: Any, path: str) -> int | None:
    """`eval.every` of both families: None, or steps between the curve's measurements."""
    return None if v is None else _int(v, path, 1, 10**6)


def _eval(v: Any) -> EvalConfig:
    def weights(v, p):
        if _opt_str(v, p) is None:
            return None
        path = Path(v).expanduser().resolve()
        if not path.exists():
            raise ConfigError(p, f"file not found: {path}")
        if not path.is_file():
            raise ConfigError(p, f"{v} is not a regular file; give the weights file")
        if path.stat().st_size == 0:
            raise ConfigError(p, f"{v} is empty; give the weights file")
        return str(path)

    evalc = _section(EvalConfig, v, "eval", {
        "images_per_class": lambda v, p: _int(v, p, 2), "batch_size": _batch,
        "split": lambda v, p: _choice(v, p, EVAL_SPLITS),
        "features": lambda v, p: _choice(v, p, EXTRACTORS),
        "cosine_features": lambda v, p: None if v is None else _choice(v, p, EXTRACTORS),
        "inception_weights": weights, "clip_weights": weights,
        "clip_model": lambda v, p: _opt_str(v, p) or EvalConfig.clip_model,
        "kid_subsets": _pos, "kid_subset_size": lambda v, p: _int(v, p, 2),
        "mia": _bool, "retrain_reference": _bool,
        "grid_images": lambda v, p: _int(v, p, 1, 64), "every": every_steps,
        "task": lambda v, p: None if v is None else _section(EvalTaskConfig, v, p, {
            "kind": lambda x, q: _choice(x, q, TASKS),
            "mask_ratio": lambda x, q: _float(x, q, 0.0, 1.0, lo_open=True, hi_open=True)})})
    for name in {evalc.features, evalc.cosine_features} & {"inception", "clip"}:
        from l2l.features import weights_path  # the check the extractor makes, before any work

        weights_path(name, getattr(evalc, f"{name}_weights"))
    return evalc


def _image_folder(v: Any, dataset: str) -> tuple[ImageFolderConfig | None, int]:
    if dataset != "image_folder":
        if v is not None:
            raise ConfigError("image_folder", f"only for dataset image_folder, not {dataset!r}")
        return None, DATASETS[dataset]
    if v is None:
        raise ConfigError("image_folder", "missing; dataset image_folder needs {root: PATH}")
    f = _mapping(v, "image_folder")
    _no_unknown(f, {"root", "classes_file", "max_per_class"}, "image_folder")
    if not isinstance(f.get("root"), str):
        raise ConfigError("image_folder.root", "missing; the folder holding train/ and val/")
    root = str(Path(f["root"]).expanduser().resolve())
    if not Path(root, "train").is_dir():
        raise ConfigError("image_folder.root", f"no train/ directory under {root}")
    classes_file = _opt_str(f.get("classes_file"), "image_folder.classes_file")
    if classes_file is not None:
        classes_file = str(Path(classes_file).expanduser().resolve())
        if not Path(classes_file).is_file():
            raise ConfigError("image_folder.classes_file", f"file not found: {classes_file}")
    max_per_class = None if f.get("max_per_class") is None else \
        _int(f["max_per_class"], "image_folder.max_per_class", 1)
    from l2l.class_lists import class_names  # reads the class list (a small file)

    try:
        n = len(class_names(root, classes_file))
    except ValueError as e:  # InputError too: not text, a FIFO, a class listed twice
        msg = str(e)
        raise ConfigError("", msg if msg.startswith("image_folder") else
                          f"image_folder.classes_file: {msg}") from None
    if n < 2:
        raise ConfigError("image_folder", f"found {n} classes under {root}; need at least 2")
    return ImageFolderConfig(root, classes_file, max_per_class), n


def _forget_set(v: Any, n_classes: int) -> tuple[tuple[int, ...], str | None]:
    """`{classes: [...]}`, `{random: k, seed: s}` (k classes drawn by s, resolved here so the
    config hash and the results name the actual classes) or `{preset: imagenet_r | places365}`
    (the paper's split of the class list). Returns (classes, preset)."""
    from l2l.class_lists import PRESETS

    fs = _mapping(v, "forget_set")
    _no_unknown(fs, {"classes", "random", "seed", "preset"}, "forget_set")
    given = [k for k in ("classes", "random", "preset") if k in fs]
    if len(given) != 1 or ("seed" in fs and "random" not in fs):
        raise ConfigError("forget_set", "give exactly one of classes (a list), random (a number "
                                        "of classes, with seed) or preset")
    if "classes" in fs:
        return _classes(fs["classes"], "forget_set.classes", n_classes), None
    if "preset" in fs:
        name = _choice(fs["preset"], "forget_set.preset", list(PRESETS))
        need = max(PRESETS[name]["forget"].stop, PRESETS[name]["retain"].stop)
        if n_classes < need:
            raise ConfigError("forget_set.preset", f"{name} needs at least {need} classes, "
                                                   f"the data set has {n_classes}")
        return tuple(PRESETS[name]["forget"]), name
    k = _int(fs["random"], "forget_set.random", 1, n_classes - 1)
    seed = _seed(fs.get("seed", 0), "forget_set.seed")
    return tuple(sorted(random.Random(seed).sample(range(n_classes), k))), None


def _retain(v: Any, forget: tuple[int, ...], n_classes: int,
            preset: str | None = None) -> RetainConfig:
    r = _mapping(v, "retain")
    _no_unknown(r, {f.name for f in dataclasses.fields(RetainConfig)}, "retain")
    mode = _choice(r.get("mode", "full"), "retain.mode", RETAIN_MODES)
    if "classes" in r:
        kept = _classes(r["classes"], "retain.classes", n_classes)
        overlap = sorted(set(kept) & set(forget))
        if overlap:
            raise ConfigError("retain.classes", f"overlaps forget_set.classes at {overlap}; "
                                                "a class is either forgotten or retained")
    elif preset is not None:
        from l2l.class_lists import PRESETS

        kept = tuple(PRESETS[preset]["retain"])
    else:
        kept = tuple(c for c in range(n_classes) if c not in forget)
        if not kept:
            raise ConfigError("forget_set.classes", "forgets every class; nothing is left to retain")
    allowed = {"full": set(), "none": set(), "fraction": {"fraction"},
               "proxy": {"source", "proxy_classes", "size"}}[mode]
    for k in ("fraction", "source", "proxy_classes", "size"):
        if k in r and k not in allowed:
            raise ConfigError(f"retain.{k}", f"not used by mode {mode!r}")
    fraction = source = proxy = size = None
    if mode == "fraction":
        if "fraction" not in r:
            raise ConfigError("retain.fraction", "missing; mode 'fraction' needs 0 < fraction <= 1")
        fraction = _float(r["fraction"], "retain.fraction", 0.0, 1.0, lo_open=True)
    if mode == "proxy":
        source = _choice(r.get("source", "digits"), "retain.source", PROXY_SOURCES)
        size = _float(r.get("size", 1.0), "retain.size", 0.0, 100.0, lo_open=True)
        if source == "fashion_mnist":
            if "proxy_classes" not in r:
                raise ConfigError("retain.proxy_classes", "missing; a fashion_mnist proxy needs "
                                  "classes that are neither forgotten nor retained")
            proxy = _classes(r["proxy_classes"], "retain.proxy_classes", n_classes)
            clash = sorted(set(proxy) & (set(forget) | set(kept)))
            if clash:
                raise ConfigError("retain.proxy_classes", f"{clash} are forgotten or retained; "
                                  "a proxy set comes from other classes")
        elif "proxy_classes" in r:
            raise ConfigError("retain.proxy_classes", "only for source fashion_mnist")
    return RetainConfig(kept, mode, fraction, source, proxy, size)
