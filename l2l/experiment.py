"""The experiment families and the one trial interface that both implement.

A family is one registry entry (`Family`): how to parse its config section, its generators, its
methods (l2l/config.py and l2l/gan/config.py `METHODS`) and the module that holds its trial
steps (`TrialSteps`): loading data, building and caching the original model, the method's
context, evaluation. `l2l/trial.py` runs any family's trial with them. Callers (the CLIs,
`sweeps`, the plan) use only this module and the config's own methods; nothing above `l2l`
asks which family a trial is.

  i2i  image-to-image unlearning (l2l/config.py, l2l/i2i.py): MAE, VQ-GAN, diffusion
  gan  GAN unlearning (l2l/gan/): DCGAN, the cascade and its baselines

A config dict names its family in `family` (default `i2i`). Importing this module imports no
torch: configs are parsed and validated without it.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Mapping

from l2l import config as i2i_config
from l2l.errors import ConfigError
from l2l.gan import config as gan_config
from l2l.registry import Registry

DEFAULT_FAMILY = "i2i"


@dataclass(frozen=True)
class Family:
    name: str
    config: type  # frozen config class: `from_dict(d)` validates, ConfigError names the field
    keys: frozenset[str]  # its top-level trial fields
    generators: tuple[str, ...]
    methods: Registry  # name -> l2l.registry.Method
    steps_module: str  # module of its TrialSteps (imports torch; loaded when a trial runs)

    @property
    def steps(self):
        return importlib.import_module(self.steps_module).STEPS

    def parse(self, d: Mapping[str, Any]):
        return self.config.from_dict({k: v for k, v in d.items() if k != "family"})


FAMILIES: Registry[Family] = Registry("family")
FAMILIES.register("i2i")(Family("i2i", i2i_config.TrialConfig, frozenset(i2i_config.KEYS),
                                tuple(i2i_config.GENERATORS), i2i_config.METHODS, "l2l.i2i"))
FAMILIES.register("gan")(Family("gan", gan_config.GanTrialConfig,
                                frozenset(gan_config.KEYS - {"family"}), gan_config.GENERATORS,
                                gan_config.METHODS, "l2l.gan.steps"))

# Top-level trial fields of any family (sweep specs check their keys against the union).
TRIAL_KEYS = frozenset({"family"}).union(*(FAMILIES.get(f).keys for f in FAMILIES.names()))
GENERATORS = tuple(g for f in FAMILIES.names() for g in FAMILIES.get(f).generators)


def family_of(d: Mapping[str, Any]) -> Family:
    if not isinstance(d, Mapping):  # worded as the CLI words it for a YAML file
        raise ConfigError("config", "expected a mapping of trial fields")
    name = d.get("family", DEFAULT_FAMILY)
    if not isinstance(name, str) or name not in FAMILIES:
        raise ConfigError("family", f"unknown value {name!r} (allowed: "
                                    f"{', '.join(FAMILIES.names())})")
    return FAMILIES.get(name)


def parse_config(d: Mapping[str, Any]):
    """A validated, frozen config of its family; ConfigError names the bad field."""
    return family_of(d).parse(d)


def run(cfg, artifact_dir=None, model_store=None):
    """Runs one trial of any family; `artifact_dir` (a Path or None) receives sample grids and
    embeddings; `model_store` (a path or URI, or None) keeps the unlearned model
    (l2l/stored_model.py). Returns an l2l.result.TrialResult."""
    from l2l.trial import run_trial

    return run_trial(cfg, artifact_dir=artifact_dir, model_store=model_store)
