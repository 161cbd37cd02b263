"""The result of one trial, whatever its family: metric values, timings, caches, artifacts, and
its tidy rows (the config and trial columns of contract/schema.py, one row per metric value;
the writer adds the direction from the metric registry and the run's own columns)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contract.identity import IDENTITY_VERSION


@dataclass(frozen=True)
class MetricValue:
    split: str  # forget | retain (image-to-image), all (GAN)
    metric: str  # a name of contract/metrics.py
    value: float
    n: int  # images the value is computed on
    # the feature extractor it is computed on (l2l/features.py `label`: classifier, inception,
    # clip:<model>); None for metrics on pixels, losses or counts
    extractor: str | None = None
    # standard error of `value` over the images it is computed on (a bootstrap over images, or
    # the SE of a mean of per-image values); None where not estimated
    se: float | None = None
    # the unlearning step it was measured after (the forgetting curve, l2l/monitor.py; 0: before
    # the first); None for the trial's final metrics
    step: int | None = None


@dataclass
class TrialResult:
    config: Any
    metrics: list[MetricValue]
    pretrain_seconds: float
    unlearn_seconds: float
    eval_seconds: float
    device: str
    peak_memory_mb: float = 0.0  # CUDA: max allocated; CPU: the process's peak RSS
    caches: dict[str, dict[str, Any]] = field(default_factory=dict)  # kind -> hit, key, path
    artifacts: dict[str, str] = field(default_factory=dict)  # name -> path
    # the forgetting curve (eval.every): values measured during unlearning, each with its step;
    # its end is `metrics`, the final evaluation
    curve: list[MetricValue] = field(default_factory=list)

    @property
    def pretrain_cache_hit(self) -> bool:
        """Whether the original model was read from the cache."""
        return self.caches.get("generator", {}).get("hit", False)

    def rows(self, identity_version: int = IDENTITY_VERSION) -> list[dict[str, Any]]:
        """Tidy rows: one per metric value (the final ones, then the curve's), with the config
        columns of the result schema (the config hash made with `identity_version`)."""
        base = {**self.config.columns(identity_version), "pretrain_seconds": self.pretrain_seconds,
                "unlearn_seconds": self.unlearn_seconds, "eval_seconds": self.eval_seconds,
                "device": self.device, "peak_memory_mb": self.peak_memory_mb,
                "pretrain_cache_hit": self.pretrain_cache_hit}
        return [{**base, "split": m.split, "metric": m.metric, "value": m.value, "n": m.n,
                 "value_se": m.se, "extractor": m.extractor, "step": m.step}
                for m in [*self.metrics, *self.curve]]
