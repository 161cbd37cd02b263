"""One entry point for both experiment families, so that callers (the CLI, `sweeps`) need not
know which paper a trial belongs to.

  i2i  image-to-image unlearning (l2l/config.py, l2l/trial.py): MAE, VQ-GAN, diffusion
  gan  GAN unlearning (l2l/gan/): DCGAN, the cascade and its baselines

A config dict names its family in `family` (default `i2i`). Both config classes offer
`from_dict`, `to_dict` (which includes `family` for gan), `config_hash`, `method`, `seed` and
`generator.name`; both trial functions return a result with `metrics` and `rows()`.
"""
from __future__ import annotations

from typing import Any, Mapping

from l2l import config as i2i_config
from l2l.errors import ConfigError
from l2l.gan import config as gan_config

FAMILIES = ("i2i", "gan")

# Top-level trial fields of each family (sweep specs check their keys against the union).
I2I_KEYS = frozenset(i2i_config.KEYS)
GAN_KEYS = frozenset(gan_config.KEYS)
TRIAL_KEYS = I2I_KEYS | GAN_KEYS
# Generators of each family (sweep specs key per-generator resources by these names).
GENERATORS = {"i2i": i2i_config.GENERATORS, "gan": gan_config.GENERATORS}


def family_of(d: Mapping[str, Any]) -> str:
    if not isinstance(d, Mapping):  # worded as the CLI words it for a YAML file
        raise ConfigError("config", "expected a mapping of trial fields")
    fam = d.get("family", "i2i")
    if fam not in FAMILIES:
        raise ConfigError("family", f"unknown value {fam!r} (allowed: {', '.join(FAMILIES)})")
    return fam


def parse_config(d: Mapping[str, Any]):
    """A validated, frozen config of either family; ConfigError names the bad field."""
    if family_of(d) == "gan":
        return gan_config.GanTrialConfig.from_dict(d)
    return i2i_config.TrialConfig.from_dict({k: v for k, v in d.items() if k != "family"})


def family(cfg) -> str:
    return getattr(cfg, "family", "i2i")


def run(cfg, artifact_dir=None):
    """Runs one trial; `artifact_dir` (a Path or None) receives sample grids and embeddings."""
    if family(cfg) == "gan":
        from l2l.gan.trial import run_gan_trial
        return run_gan_trial(cfg, artifact_dir=artifact_dir)
    from l2l.trial import run_trial
    return run_trial(cfg, artifact_dir=artifact_dir)


def columns(cfg) -> dict[str, Any]:
    """The result-schema columns that describe a trial's config (also for error rows)."""
    if family(cfg) == "gan":
        from l2l.gan.trial import config_columns
        return config_columns(cfg)
    from l2l.trial import config_columns
    return config_columns(cfg)
