"""Frozen, validated config of one GAN-unlearning trial (the second paper, docs/gan.md).

`GanTrialConfig.from_dict(d)` fills defaults, checks every field and raises
`ConfigError("<field path>", "<what is allowed>")` on the first problem, before any work; the
helpers are l2l/config.py's, so both families word their errors the same way.

    family: gan
    method: cascade                      # see METHODS
    setting: class                       # class | item (inferred from forget_set when absent)
    forget_set: {classes: [5]}           # class setting; item setting: {items: 64, seed: 0}
    dataset: fashion_mnist               # fashion_mnist | digits | mnist | cifar10 (l2l/datasets.py)
    generator: {name: dcgan, size: tiny} # nz / ngf / ndf override the size preset
    pretrain: {images, epochs, batch_size, lr, seed, fid_patience, fid_tolerance}
    classifier: {images, epochs, batch_size, lr, seed}
    unlearn: {rounds | passes, batch_size, lr, stop_every}   # null for original and retrain
    cascade: {fake_target, substitute, d_steps, g_steps}   # cascade methods only
    eval: {samples, batch_size, real_images, mia_images, downstream_epochs}
    seed: 0
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from l2l.config import (DEVICES, ClassifierConfig, PretrainConfig, RelearnConfig,
                        SequentialRequests, _batch, _choice, _classes, _classifier,
                        _earlier_requests, _float, _int, _lr, _mapping, _no_unknown, _opt_str,
                        _pos, _section, _seed, every_steps, parse_relearn)
from l2l.datasets import DATASETS, VALIDATION_SHARE
from l2l.errors import ConfigError
from l2l.fields import Config, spec
from l2l.registry import Method, method_registry

FAMILY = "gan"
SETTINGS = ("class", "item")
GENERATORS = ("dcgan",)
# DCGAN size presets: size -> (nz, ngf, ndf); base is the paper's default (l2l/gan/models.py).
SIZES = {"tiny": (32, 16, 16), "small": (64, 32, 32), "base": (100, 64, 64)}
SUBSTITUTES = ("retain", "filtered", "nearest")
MAX_SAMPLES = 100_000  # generated images an evaluation holds (100,000 x 3 x 32 x 32: 1.2 GB)
FAKE_TARGET_MODES = ("mean_fake",)  # besides a number in [0, 1)
# The methods of this family: name -> (module defining `def <name>(gan, ctx)`, the cascade
# options it uses; a method without any gets no `cascade` section). Adding a method is its file
# (or function) and one line here.
_CASCADE = ("fake_target", "substitute", "d_steps", "g_steps")
METHODS = method_registry("gan method", {
    "original": Method("l2l.gan.methods"),
    "retrain": Method("l2l.gan.methods"),
    "finetune_retain": Method("l2l.gan.methods"),
    "gradient_ascent": Method("l2l.gan.methods"),
    "cascade": Method("l2l.gan.cascade", _CASCADE),
    "cascade_no_fake_label": Method("l2l.gan.cascade", ("substitute", "d_steps", "g_steps")),
    "cascade_no_substitution": Method("l2l.gan.cascade", ("fake_target", "d_steps", "g_steps")),
    "cascade_d_only": Method("l2l.gan.cascade", ("fake_target", "substitute", "d_steps")),
    "cascade_g_only": Method("l2l.gan.cascade", ("substitute", "g_steps")),
})
# Methods that change no weights by unlearning (retrain trains from scratch): no `unlearn`.
NO_UNLEARN = ("original", "retrain")
KEYS = {"family", "method", "setting", "forget_set", "dataset", "generator", "pretrain",
        "classifier", "unlearn", "cascade", "eval", "seed", "device", "data_root", "cache_dir",
        "relearn", "earlier_requests"}


@dataclass(frozen=True)
class ForgetSet:
    """Class setting: `classes`; item setting: `items` training images drawn by `seed` from the
    original model's training sample."""

    classes: tuple[int, ...] | None = None
    items: int | None = None
    seed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.classes is not None:
            return {"classes": list(self.classes)}
        return {"items": self.items, "seed": self.seed}


@dataclass(frozen=True)
class DcganConfig:
    name: str = spec("dcgan", column="generator")
    size: str = spec("tiny", column="generator_size")
    nz: int = SIZES["tiny"][0]  # latent size
    ngf: int = SIZES["tiny"][1]  # generator width
    ndf: int = SIZES["tiny"][2]  # discriminator width


@dataclass(frozen=True)
class GanPretrainConfig(PretrainConfig):
    """Training the original GAN (and `retrain`, on the retained images) with Adam (0.5, 0.999),
    the paper's optimiser: the image-to-image family's budget fields, plus the stopping
    criterion both models are trained to (l2l/gan/pretrain.py)."""

    # Train until FID stops improving: after every epoch, the FID of the GAN's samples against
    # held-out real training images (the validation holdout, left out of the pool); stop once
    # `fid_patience` epochs in a row have not lowered the best FID by `fid_tolerance`
    # (relative), and keep the best epoch's weights. `epochs` is then the most it trains.
    # None: exactly `epochs` epochs.
    fid_patience: int | None = spec(None, since=2)
    fid_tolerance: float = spec(0.02, since=2)


PRETRAIN_DEFAULTS = GanPretrainConfig(images=20000, epochs=5, batch_size=64, lr=2e-4, seed=0)


@dataclass(frozen=True)
class GanUnlearnConfig:
    # cascade rounds (or steps of the other methods); None when `passes` sets the budget
    rounds: int | None = spec(200, param=True)
    batch_size: int = 64
    lr: float = 2e-4
    # A budget that scales with the request: passes over the forget set instead of a fixed
    # number of rounds; rounds = ceil(passes x forget images / batch_size), at least 1
    # (`rounds_for`). None: `rounds` as given.
    passes: float | None = spec(None, param=True, since=2)
    # The stopping rule (l2l/gan/stopping.py): every this many rounds, measure the forgetting
    # and stop once it reaches the retrained model's level. None: run the whole budget.
    stop_every: int | None = spec(None, param=True, since=2)

    def rounds_for(self, forget_images: int) -> int:
        """The rounds this budget runs for a forget set of `forget_images` images."""
        if self.passes is None:
            return self.rounds
        return max(1, math.ceil(self.passes * forget_images / self.batch_size))


@dataclass(frozen=True)
class CascadeConfig:
    """The paper's open choices (docs/gan.md). A field a method does not use is None."""

    # D's target for forget images; or "mean_fake"
    fake_target: float | str | None = spec(0.0, param=True)
    substitute: str | None = spec("retain", param=True)  # retain | filtered | nearest
    d_steps: int | None = spec(1, param=True)  # discriminator steps a round
    g_steps: int | None = spec(1, param=True)  # generator steps a round


@dataclass(frozen=True)
class GanEvalConfig:
    samples: int = 1000  # generated images every metric uses
    batch_size: int = 256
    real_images: int = 1000  # real test images: FID reference and downstream test set
    mia_images: int = 256  # at most this many members and as many non-members
    downstream_epochs: int = 3  # epochs of the classifier trained on generated samples
    # The forgetting curve (l2l/monitor.py): also evaluate (without the downstream classifier)
    # before the first round and after every this many rounds; None: the final evaluation only
    every: int | None = spec(None, since=3)


def pool_size(p: GanPretrainConfig, train_size: int) -> int:
    """Training images of the original model: `images`, at most the training split's, less
    the validation holdout when the FID criterion measures on it."""
    if p.fid_patience is not None:
        train_size -= round(train_size * VALIDATION_SHARE)
    return min(p.images, train_size)


@dataclass(frozen=True)
class GanTrialConfig(SequentialRequests, Config):
    """One GAN-unlearning trial (family `gan`)."""

    method: str = spec(column="method")
    setting: str = spec(column="setting")
    forget_set: ForgetSet = spec()
    dataset: str = spec("fashion_mnist", column="dataset")
    generator: DcganConfig = spec(default_factory=DcganConfig)
    pretrain: GanPretrainConfig = PRETRAIN_DEFAULTS
    classifier: ClassifierConfig = spec(default_factory=ClassifierConfig)
    unlearn: GanUnlearnConfig | None = spec(default_factory=GanUnlearnConfig)
    cascade: CascadeConfig | None = None
    eval: GanEvalConfig = spec(default_factory=GanEvalConfig)
    # A relearning attack after unlearning (l2l/config.py RelearnConfig; None: none)
    relearn: RelearnConfig | None = spec(None, since=3)
    # Deletion requests in sequence, class setting only (l2l/config.py TrialConfig's field)
    earlier_requests: tuple[tuple[int, ...], ...] | None = spec(None, since=3)
    seed: int = spec(0, column="seed")
    # Where things run and live; they do not change results, so they are not in the identity.
    device: str = spec("auto", role="runtime")
    data_root: str | None = spec(None, role="runtime")
    cache_dir: str | None = spec(None, role="runtime")

    family: ClassVar[str] = FAMILY

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "GanTrialConfig":
        return _parse(d)

    @property
    def n_classes(self) -> int:
        return DATASETS.get(self.dataset).classes

    @property
    def channels(self) -> int:
        """Image channels of the data set (1, or 3 for colour), end to end."""
        return DATASETS.get(self.dataset).channels

    @property
    def forget_classes(self) -> tuple[int, ...]:
        """The forgotten classes (class setting); empty in the item setting."""
        return self.forget_set.classes or ()

    @property
    def retain_classes(self) -> tuple[int, ...]:
        return tuple(c for c in range(self.n_classes) if c not in self.forget_classes)

    def with_forget_classes(self, classes: tuple[int, ...]) -> "GanTrialConfig":
        return dataclasses.replace(self, forget_set=ForgetSet(classes=classes))

    @property
    def forget_k(self) -> int:
        """Forgotten items (item setting) or classes (class setting)."""
        return len(self.forget_classes) if self.setting == "class" else self.forget_set.items

    @property
    def pool_size(self) -> int:
        """Training images of the original model (about: the validation holdout's per-class
        rounding may leave a few more)."""
        return pool_size(self.pretrain, DATASETS.get(self.dataset).train_size)

    def to_dict(self) -> dict[str, Any]:
        """A dict that `from_dict` turns back into this config (lists for tuples, no Nones)."""
        d = dataclasses.asdict(self)
        d["family"] = FAMILY
        d["forget_set"] = self.forget_set.to_dict()
        for k in ("unlearn", "cascade"):
            if d[k] is None:
                del d[k]
        if "cascade" in d:
            d["cascade"] = {k: v for k, v in d["cascade"].items() if v is not None}
        for k in ("data_root", "cache_dir"):
            if d[k] is None:
                del d[k]
        return d

    derived_fields = ("forget_set.classes", "forget_set.items", "forget_set.seed")

    def check_data(self) -> None:
        DATASETS.get(self.dataset).files(self.data_root)

    def derived_columns(self) -> dict[str, Any]:
        if self.setting == "class":
            forget_set = json.dumps(list(self.forget_classes))
            retain_set = json.dumps(list(self.retain_classes))
        else:
            forget_set = json.dumps(self.forget_set.to_dict(), sort_keys=True)
            retain_set = json.dumps(list(range(self.n_classes)))  # every class stays
        return {"forget_k": self.forget_k, "forget_set": forget_set, "retain_set": retain_set,
                "retain_mode": "full"}

    def describe(self) -> str:
        forget = list(self.forget_classes) if self.setting == "class" else \
            f"{self.forget_set.items} items"
        params = json.loads(self.columns()["params"])
        extra = "".join(f" {k}={v}" for k, v in sorted(params.items()) if k != "rounds")
        return (f"{self.generator.name}/{self.generator.size} {self.method}{extra} "
                f"forget={forget} seed={self.seed}")


# ----------------------------------------------------------------------------------------------
# Parsing with field paths in every error.

def _parse(d: Mapping[str, Any]) -> GanTrialConfig:
    d = _mapping(d, "config")
    _no_unknown(d, KEYS, "")
    if d.get("family", FAMILY) != FAMILY:
        raise ConfigError("family", f"expected {FAMILY!r} for a GAN trial, got {d['family']!r}")
    for req in ("method", "forget_set"):
        if req not in d:
            raise ConfigError(req, "missing required field")
    method = _choice(d["method"], "method", METHODS.names())
    dataset = _choice(d.get("dataset", "fashion_mnist"), "dataset", DATASETS.names())
    test = DATASETS.get(dataset).per_class("test") * DATASETS.get(dataset).classes
    generator = _generator(d.get("generator"))
    pretrain = _section(GanPretrainConfig, d.get("pretrain"), "pretrain", {
        "images": lambda v, p: _int(v, p, 20), "epochs": _pos, "batch_size": _batch, "lr": _lr,
        "seed": _seed, "fid_patience": lambda v, p: None if v is None else _int(v, p, 1, 1000),
        "fid_tolerance": lambda v, p: _float(v, p, 0.0, 0.5)},
        defaults=PRETRAIN_DEFAULTS)
    classifier = _classifier(d.get("classifier"))
    evalc = _section(GanEvalConfig, d.get("eval"), "eval", {
        # generated images are held in memory: at most MAX_SAMPLES; real ones are test images
        "samples": lambda v, p: _int(v, p, 2, MAX_SAMPLES), "batch_size": _batch,
        "real_images": lambda v, p: _int(v, p, 2, test),
        "mia_images": lambda v, p: _int(v, p, 2, test),
        "downstream_epochs": lambda v, p: _int(v, p, 0), "every": every_steps})
    data = DATASETS.get(dataset)
    pool = pool_size(pretrain, data.train_size)
    setting, forget = _forget_set(d.get("setting"), d["forget_set"], data.classes, pool)

    # Validated for every method (a typo is refused even where the section is unused).
    unlearn = _section(GanUnlearnConfig, d.get("unlearn"), "unlearn", {
        "rounds": lambda v, p: None if v is None else _int(v, p, 1), "batch_size": _batch,
        "lr": _lr, "passes": lambda v, p: None if v is None else _float(v, p, 0.0, 1e4, lo_open=True),
        "stop_every": lambda v, p: None if v is None else _int(v, p, 1)})
    given = d.get("unlearn") if isinstance(d.get("unlearn"), Mapping) else {}
    if given.get("rounds") is not None and given.get("passes") is not None:
        raise ConfigError("unlearn.passes", "give rounds (a fixed budget) or passes (a budget "
                                            "that grows with the forget set), not both")
    if unlearn.passes is not None:
        unlearn = dataclasses.replace(unlearn, rounds=None)
    elif unlearn.rounds is None:
        raise ConfigError("unlearn.rounds", "give rounds (a fixed budget) or passes (a budget "
                                            "that grows with the forget set)")
    if method in NO_UNLEARN:
        unlearn = None
    cascade = _cascade(d.get("cascade"), method)

    return GanTrialConfig(
        method=method, setting=setting, forget_set=forget, dataset=dataset, generator=generator,
        pretrain=pretrain, classifier=classifier, unlearn=unlearn, cascade=cascade, eval=evalc,
        relearn=parse_relearn(d.get("relearn")),
        earlier_requests=_requests(d.get("earlier_requests"), setting, forget, data.classes,
                                   method),
        seed=_seed(d.get("seed", 0), "seed"),
        device=_choice(d.get("device", "auto"), "device", DEVICES),
        data_root=_opt_str(d.get("data_root"), "data_root"),
        cache_dir=_opt_str(d.get("cache_dir"), "cache_dir"),
    )


def _generator(v: Any) -> DcganConfig:
    g = {} if v is None else _mapping(v, "generator")
    _no_unknown(g, {f.name for f in dataclasses.fields(DcganConfig)}, "generator")
    name = _choice(g.get("name", "dcgan"), "generator.name", GENERATORS)
    size = _choice(g.get("size", "tiny"), "generator.size", list(SIZES))
    nz, ngf, ndf = SIZES[size]
    # Explicit widths are resolved here, so `{size: tiny}` and `{size: tiny, nz: 32}` hash alike.
    return DcganConfig(name, size,
                       _int(g.get("nz", nz), "generator.nz", 1, 1024),
                       _int(g.get("ngf", ngf), "generator.ngf", 1, 1024),
                       _int(g.get("ndf", ndf), "generator.ndf", 1, 1024))


def _forget_set(setting: Any, v: Any, n_classes: int, pool: int) -> tuple[str, ForgetSet]:
    fs = _mapping(v, "forget_set")
    _no_unknown(fs, {"classes", "items", "seed"}, "forget_set")
    if setting is None:  # inferred: the forget set says which setting it is
        setting = "item" if "items" in fs else "class"
    setting = _choice(setting, "setting", SETTINGS)
    if setting == "class":
        if "classes" not in fs or set(fs) != {"classes"}:
            raise ConfigError("forget_set", "setting 'class' needs {classes: [c, ...]} "
                                            "(items and seed are for setting 'item')")
        classes = _classes(fs["classes"], "forget_set.classes", n_classes)
        if len(classes) == n_classes:
            raise ConfigError("forget_set.classes", "forgets every class; nothing is left to "
                                                    "retain")
        return setting, ForgetSet(classes=classes)
    if "items" not in fs or "classes" in fs:
        raise ConfigError("forget_set", "setting 'item' needs {items: k, seed: s} (classes is "
                                        "for setting 'class')")
    k = _int(fs["items"], "forget_set.items", 1)
    if k >= pool:
        raise ConfigError("forget_set.items", f"must be less than the {pool} training images "
                                              "of the original model (pretrain.images)")
    return setting, ForgetSet(items=k, seed=_seed(fs.get("seed", 0), "forget_set.seed"))


def _requests(v: Any, setting: str, forget: ForgetSet, n_classes: int, method: str):
    if v is not None and setting != "class":
        raise ConfigError("earlier_requests", "is for setting 'class' (requests of classes); "
                                              "remove it for an item forget set")
    return _earlier_requests(v, forget.classes or (), n_classes, method)


def _fake_target(v: Any, path: str) -> float | str:
    if isinstance(v, str):
        return _choice(v, path, FAKE_TARGET_MODES)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v < 1.0:
        raise ConfigError(path, f"expected a number in [0, 1) (1 is the real label) or "
                                f"'mean_fake', got {v!r}")
    return float(v)


def _cascade(v: Any, method: str) -> CascadeConfig | None:
    checks = {
        "fake_target": _fake_target,
        "substitute": lambda x, p: _choice(x, p, SUBSTITUTES),
        "d_steps": lambda x, p: _int(x, p, 1, 100),
        "g_steps": lambda x, p: _int(x, p, 1, 100),
    }
    full = _section(CascadeConfig, v, "cascade", checks)  # validates what is given, any method
    uses = METHODS.get(method).params
    if not uses:
        return None
    return CascadeConfig(**{k: getattr(full, k) if k in uses else None
                            for k in checks})
