"""What identifies a trial (l2l/fields.py, contract/identity.py): settings that change results
do, where it runs, what is only displayed and where a file lives do not; version 1 ids of
sweeps started before stay as they were; the result columns come from the fields."""
import dataclasses

import pytest
import yaml

from contract.schema import CONFIG
from l2l import experiment
from l2l.fields import walk

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]


def _first_trial(spec: str) -> dict:
    raw = yaml.safe_load((ROOT / "sweeps" / "specs" / spec).read_text())
    d = {k: v for k, v in raw.items() if k in experiment.TRIAL_KEYS}
    d.update({k: v[0] for k, v in raw["grid"].items()})
    d.update(raw.get("variants", [{}])[0])
    return d


def test_version_1_ids_are_those_of_sweeps_started_before():
    # Trial ids of the committed quickstart and GAN sweeps, as written by schema version 2.
    # (the quickstart's evaluation as it was then: the retrained reference on)
    then = {**_first_trial("quickstart.yaml"), "eval": {"images_per_class": 100}}
    assert experiment.parse_config(then).identity_hash(1) == "aab36502e49b626a"
    cfg = experiment.parse_config(_first_trial("gan_class_small.yaml"))
    assert cfg.identity_hash(1) == experiment.parse_config(cfg.to_dict()).identity_hash(1)


def test_runtime_display_and_location_fields_are_not_identity(tmp_path):
    d = _first_trial("quickstart.yaml")
    base = experiment.parse_config(d)
    for change in ({"device": "cpu"}, {"cache_dir": "/elsewhere"}, {"data_root": "/data"},
                   {"eval": {**d["eval"], "grid_images": 3}}):
        other = experiment.parse_config({**d, **change})
        assert other.config_hash == base.config_hash, change
    assert experiment.parse_config({**d, "eval": {"grid_images": 3}}).identity_hash(1) != \
        base.identity_hash(1)  # version 1 counted the display setting
    for change in ({"seed": 7}, {"unlearn": {"steps": 5}}, {"generator": {"sampling_steps": 2}},
                   {"eval": {"batch_size": 16}}):
        assert experiment.parse_config({**d, **change}).config_hash != base.config_hash, change


def test_a_weights_file_is_identified_by_its_content(tmp_path, monkeypatch):
    from l2l import features

    monkeypatch.setattr(features, "weights_path", lambda name, given=None: given)
    d = _first_trial("quickstart.yaml")
    a, b = tmp_path / "a" / "w.pth", tmp_path / "b" / "w.pth"
    for p in (a, b):
        p.parent.mkdir()
        p.write_bytes(b"the same weights")
    cfg_a = experiment.parse_config({**d, "eval": {"features": "inception",
                                                   "inception_weights": str(a)}})
    cfg_b = experiment.parse_config({**d, "eval": {"features": "inception",
                                                   "inception_weights": str(b)}})
    assert cfg_a.config_hash == cfg_b.config_hash  # moved, same content
    b.write_bytes(b"other weights")
    cfg_c = experiment.parse_config({**d, "eval": {"features": "inception",
                                                   "inception_weights": str(b)}})
    assert cfg_c.config_hash != cfg_a.config_hash


@pytest.mark.parametrize("spec", ["quickstart.yaml", "gan_class_small.yaml"])
def test_result_columns_come_from_the_fields_and_exist_in_the_contract(spec):
    cfg = experiment.parse_config(_first_trial(spec))
    cols = cfg.columns()
    assert set(cols) <= set(CONFIG)
    declared = {f.metadata["column"] for _, _, f in walk(cfg) if f.metadata.get("column")}
    assert declared <= set(cols)
    assert cols["config_hash"] == cfg.config_hash and cols["identity_version"] == 2
    assert cfg.columns(1)["config_hash"] == cfg.identity_hash(1)
    assert cols["generator"] == cfg.generator.name and cols["seed"] == cfg.seed


@pytest.mark.parametrize("spec", ["quickstart.yaml", "gan_class_small.yaml"])
def test_every_identity_field_without_a_column_is_in_settings(spec):
    """Two trials that differ in any identity field other than their seeds differ in some
    result column, so no table takes them for replicates of one setting."""
    import json

    cfg = experiment.parse_config(_first_trial(spec))
    settings = json.loads(cfg.columns()["settings"])
    identity = {p for p, _, f in walk(cfg) if f.metadata.get("role", "identity") == "identity"}
    held = {p for p, _, f in walk(cfg) if f.metadata.get("column") or f.metadata.get("param")}
    # fields added after identity version 2 (since=3) are in neither while unset (they would
    # change every earlier row's settings); set, they are (test_relearn, test_mask_transfer)
    unset = {p for p, v, f in walk(cfg) if f.metadata.get("since", 1) > 2 and v is None}
    assert unset and set(settings) == identity - held - set(cfg.derived_fields) - unset
    assert "pretrain.epochs" in settings and "seed" not in settings
    if cfg.family == "i2i":
        other = experiment.parse_config({**_first_trial(spec), "unlearn": {"lr": 0.0001}})
        ours, theirs = cfg.columns(), other.columns()
        assert {k for k in ours if ours[k] != theirs[k]} == {"settings", "config_hash"}


def test_runtime_fields_are_replaced_by_name_only():
    cfg = experiment.parse_config(_first_trial("quickstart.yaml"))
    moved = cfg.with_runtime(device="cpu", cache_dir="/c")
    assert (moved.device, moved.cache_dir, moved.config_hash) == ("cpu", "/c", cfg.config_hash)
    with pytest.raises(KeyError, match="not runtime fields: seed"):
        cfg.with_runtime(seed=3)
    assert dataclasses.replace(cfg, seed=3).config_hash != cfg.config_hash


def test_every_family_is_one_registry_entry_and_parses_its_own_section():
    assert experiment.FAMILIES.names() == ["i2i", "gan"]
    for name in experiment.FAMILIES.names():
        fam = experiment.FAMILIES.get(name)
        assert fam.keys <= experiment.TRIAL_KEYS and set(fam.generators) <= set(
            experiment.GENERATORS)
        for method in fam.methods.names():  # each line names a module that defines it
            assert callable(fam.methods.get(method).load(method)), (name, method)
    with pytest.raises(Exception, match="family: unknown value 'vae'"):
        experiment.parse_config({"family": "vae"})
