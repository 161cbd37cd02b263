"""The metric registry: every metric a trial reports, with its family, split, unit and
direction, declared once. Tables, search objectives, figures and claims read directions here.

A direction is `higher`, `lower` or `target:<value>`: a membership-inference AUC is best at 0.5
(no membership signal), so an AUC far below 0.5, an inverted but fully informative attack, ranks
as badly as one far above it. `Direction.score(value)` orders values best-last for any kind.
Pure Python: `l2l` and `sweeps` use it without pyarrow, `analysis` without torch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Direction:
    kind: str  # higher | lower | target
    target: float | None = None

    @classmethod
    def parse(cls, text: str | None) -> "Direction | None":
        """`higher`, `lower`, `target:0.5` (spaces allowed); None or '' -> None."""
        if text is None or text == "":
            return None
        t = str(text).replace(" ", "")
        if t in ("higher", "lower"):
            return cls(t)
        if t.startswith("target:"):
            value = float(t[len("target:"):])
            if not math.isfinite(value):
                raise ValueError(f"direction: target must be finite, got {text!r}")
            return cls("target", value)
        raise ValueError(f"direction: expected higher, lower or target:<value>, got {text!r}")

    @property
    def text(self) -> str:
        return f"target:{self.target:g}" if self.kind == "target" else self.kind

    @property
    def arrow(self) -> str:
        """↑, ↓, or →0.5 (best at the value)."""
        return {"higher": "↑", "lower": "↓"}.get(self.kind) or f"→{self.target:g}"

    @property
    def words(self) -> str:
        return {"higher": "higher is better", "lower": "lower is better"}.get(
            self.kind) or f"best at {self.target:g} (ranked by distance to it)"

    def score(self, value: float) -> float:
        """Larger is better, for every kind: v, -v, or -|v - target|."""
        if self.kind == "higher":
            return value
        if self.kind == "lower":
            return -value
        return -abs(value - self.target)


HIGHER, LOWER, AUC_TARGET = Direction("higher"), Direction("lower"), Direction("target", 0.5)


@dataclass(frozen=True)
class MetricSpec:
    name: str
    family: str  # i2i | gan
    split: str  # forget | retain | all
    unit: str  # "" for unitless, "dB", "images", "s", ...
    direction: Direction | None  # None: descriptive, never ranked
    derived: bool = False  # computed by the analysis from other rows, never written by a trial
    # computed on a feature extractor's embeddings or logits: its rows name the extractor in
    # the `extractor` column (contract/schema.py), and tables name it in the header
    features: bool = False


METRICS: dict[tuple[str, str, str], MetricSpec] = {}


def register(name: str, family: str, splits: dict[str, Direction | None], unit: str = "",
             derived: bool = False, features: bool = False) -> None:
    for split, direction in splits.items():
        key = (family, split, name)
        if key in METRICS:
            raise KeyError(f"metric {key} is registered twice")
        METRICS[key] = MetricSpec(name, family, split, unit, direction, derived, features)


I2I_SPLITS = ("forget", "retain")
GAN_SPLIT = "all"  # a GAN is judged on its samples as a whole
I2I_TRIAL_SPLIT = "all"  # what an image-to-image trial reports once, not per split (its budget)


def _quality(better_on_retain: Direction) -> dict[str, Direction]:
    """A quality metric: better on retain means like the original; on forget it flips."""
    return {"retain": better_on_retain, "forget": LOWER if better_on_retain is HIGHER else HIGHER}


def _both(d: Direction | None) -> dict[str, Direction | None]:
    return {s: d for s in I2I_SPLITS}


# Image-to-image metrics (l2l/metrics.py); meanings: docs/results-schema.md.
register("fid", "i2i", _quality(LOWER), features=True)
register("kid", "i2i", _quality(LOWER), features=True)
register("kid_std", "i2i", _both(LOWER), features=True)  # a spread, not a quality
register("is", "i2i", _quality(HIGHER), features=True)
register("cosine", "i2i", _quality(HIGHER), features=True)
register("psnr", "i2i", _quality(HIGHER), unit="dB")
register("ssim", "i2i", _quality(HIGHER))
register("mse_masked", "i2i", _quality(LOWER))
register("mia_auc", "i2i", _both(AUC_TARGET))
register("mia_auc_retrain", "i2i", _both(AUC_TARGET))
register("mia_gap_retrain", "i2i", _both(LOWER))  # |mia_auc - mia_auc_retrain|
register("retrain_distance", "i2i", _both(LOWER))
register("forget_class_share", "i2i", _both(LOWER), features=True)  # the classifier's logits
# Training images the unlearning drew (retrain: its training's; l2l/i2i.py), as for GANs.
register("samples_seen", "i2i", {I2I_TRIAL_SPLIT: LOWER}, unit="images")
# The timing column as a metric of the headline table (analysis/pivot.py cost_records).
register("unlearn_seconds", "i2i", {I2I_TRIAL_SPLIT: LOWER}, unit="s", derived=True)
# GAN metrics (l2l/gan/evaluate.py), one split.
register("fid", "gan", {GAN_SPLIT: LOWER}, features=True)
register("is", "gan", {GAN_SPLIT: HIGHER}, features=True)
register("forget_class_share", "gan", {GAN_SPLIT: LOWER}, features=True)
register("mia_auc", "gan", {GAN_SPLIT: AUC_TARGET})
register("nn_distance", "gan", {GAN_SPLIT: HIGHER})
register("downstream_accuracy", "gan", {GAN_SPLIT: HIGHER})
register("epochs", "gan", {GAN_SPLIT: LOWER}, unit="epochs")
register("samples_seen", "gan", {GAN_SPLIT: LOWER}, unit="images")
# The stopping rule (unlearn.stop_every): rounds run before it stopped, and whether the
# forgetting reached the retrained model's level (1) or the budget ran out first (0).
register("rounds_run", "gan", {GAN_SPLIT: LOWER}, unit="rounds")
register("reached_retrain", "gan", {GAN_SPLIT: HIGHER})
# Derived by the analysis from the timing columns (analysis/pivot.py speedup table).
register("unlearn_seconds", "gan", {GAN_SPLIT: LOWER}, unit="s", derived=True)
register("speedup", "gan", {GAN_SPLIT: HIGHER}, unit="x", derived=True)
register("images_ratio", "gan", {GAN_SPLIT: HIGHER}, unit="x", derived=True)
register("fid_vs_retrain", "gan", {GAN_SPLIT: LOWER}, derived=True)
register("retrain_epochs", "gan", {GAN_SPLIT: None}, unit="epochs", derived=True)


def spec(family: str, split: str, metric: str) -> MetricSpec | None:
    return METRICS.get((family, split, metric))


def uses_features(family: str, split: str, metric: str) -> bool:
    """Whether a metric is computed on a feature extractor (its rows name it in `extractor`)."""
    s = METRICS.get((family, split, metric))
    return bool(s and s.features)


def direction(family: str, split: str, metric: str) -> Direction | None:
    s = METRICS.get((family, split, metric))
    return s.direction if s else None


def names(family: str) -> dict[str, tuple[str, ...]]:
    """split -> the metric names a trial of `family` may report on it (not the derived ones)."""
    out: dict[str, list[str]] = {}
    for (fam, split, name), s in METRICS.items():
        if fam == family and not s.derived:
            out.setdefault(split, []).append(name)
    return {k: tuple(v) for k, v in out.items()}


def families() -> tuple[str, ...]:
    return tuple(dict.fromkeys(f for f, _, _ in METRICS))
