"""Unlearned models kept on request (`--save-model`, `--save-models`) and evaluated again by
`l2l eval` without unlearning again: the same numbers as the trial when nothing changes, other
numbers under another task, and files that are damaged or are not models refused."""
import copy
import json

import pytest
import torch
from safetensors.torch import save as save_tensors

from l2l import experiment, stored_model
from l2l.cli import main as l2l_main

pytestmark = pytest.mark.usefixtures("one_thread")


def _values(metrics):
    return {(m.split, m.metric): m.value for m in metrics}


@pytest.fixture(scope="module")
def i2i_stored(tmp_path_factory, cache_dir):
    from conftest import TINY

    store = tmp_path_factory.mktemp("models")
    cfg = experiment.parse_config({**copy.deepcopy(TINY), "method": "l2l",
                                   "cache_dir": str(cache_dir),
                                   "eval": {"images_per_class": 30, "mia": False,
                                            "retrain_reference": False}})
    result = experiment.run(cfg, model_store=store)
    return result, store


def test_a_stored_model_evaluated_again_gives_its_trials_numbers(i2i_stored, cache_dir):
    result, store = i2i_stored
    path = result.artifacts["model"]
    (f,) = [p for p in store.rglob("*.safetensors")]
    assert str(f) == path and f.parent.name == f.name[:2]  # content-addressed
    again = stored_model.reevaluate(path, runtime={"cache_dir": str(cache_dir)})
    assert again.unlearn_seconds == 0.0 and again.pretrain_seconds == 0.0
    assert _values(again.metrics) == pytest.approx(_values(result.metrics), rel=1e-6)
    # the trial's config travels in the file, without the machine's paths
    loaded = stored_model.load(path)
    assert loaded.config["method"] == "l2l" and "cache_dir" not in loaded.config
    assert loaded.sha256 == f.stem


def test_another_task_changes_the_numbers_and_leaves_the_model_alone(i2i_stored, cache_dir):
    result, _ = i2i_stored
    other = stored_model.reevaluate(result.artifacts["model"],
                                    {"task.mask_ratio": 0.25},
                                    runtime={"cache_dir": str(cache_dir)})
    assert other.config.task.mask_ratio == 0.25 and other.config.method == "l2l"
    before, after = _values(result.metrics), _values(other.metrics)
    assert before[("forget", "fid")] != after[("forget", "fid")]


def test_l2l_eval_prints_the_numbers_and_refuses_what_it_cannot_use(i2i_stored, cache_dir,
                                                                    tmp_path, capsys):
    result, _ = i2i_stored
    path = result.artifacts["model"]
    out_json = tmp_path / "rows.json"
    assert l2l_main(["eval", path, "--cache-dir", str(cache_dir), "--json", str(out_json),
                     "-q"]) == 0
    rows = json.loads(out_json.read_text())
    got = {(r["split"], r["metric"]): r["value"] for r in rows}
    assert got == pytest.approx(_values(result.metrics), rel=1e-6)
    capsys.readouterr()

    damaged = tmp_path / "ab" / f"{'ab' * 32}.safetensors"
    damaged.parent.mkdir()
    damaged.write_bytes(open(path, "rb").read())  # a name that is not its hash
    notamodel = tmp_path / "x.safetensors"
    notamodel.write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage")
    foreign = tmp_path / "foreign.safetensors"  # safetensors, but not one of ours
    foreign.write_bytes(save_tensors({"w": torch.zeros(2)}))
    cases = [([str(damaged)], "is damaged"),
             ([str(notamodel)], "is not a stored model"),
             ([str(foreign)], "has format None"),
             ([str(tmp_path / "missing.safetensors")], "no file at"),
             ([path, "--set", "unlearn.steps=1"], "only fields of eval.*, task.*"),
             ([path, "--set", "eval.images_per_class=.nan"], "expected a finite number"),
             ([path, "--set", "eval.images_per_class=-3"], "eval.images_per_class"),
             ([path, "--set", "noequals"], "expected FIELD=VALUE")]
    for args, expected in cases:
        try:
            rc = l2l_main(["eval", *args, "--cache-dir", str(cache_dir), "-q"])
        except SystemExit as e:
            rc = e.code
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and err[0].startswith("error: "), (args, err)
        assert expected in err[0], (args, err)


def test_a_gan_kept_and_evaluated_again_gives_its_trials_numbers(tmp_path):
    from test_gan_methods import SMOKE

    d = {**copy.deepcopy(SMOKE), "cache_dir": str(tmp_path / "cache"), "method": "cascade",
         "forget_set": {"classes": [3]}}
    result = experiment.run(experiment.parse_config(d), model_store=tmp_path / "models")
    again = stored_model.reevaluate(result.artifacts["model"],
                                    runtime={"cache_dir": str(tmp_path / "cache")})
    assert _values(again.metrics) == pytest.approx(_values(result.metrics), rel=1e-6)
