"""The mask-transfer check: `eval.task` evaluates the same unlearned model under another task
(the unlearning is the trial's own), and the transfer table sets the tasks side by side."""
import json

import pytest
import torch

from analysis.pivot import KEYS, Stat
from analysis.transfer import transfer_table
from l2l import experiment

pytestmark = pytest.mark.usefixtures("one_thread")


def test_another_evaluation_task_evaluates_the_same_unlearned_model(tiny, tmp_path):
    evalc = {"images_per_class": 40, "mia": False, "retrain_reference": False}
    own = experiment.run(experiment.parse_config({**tiny, "method": "l2l", "eval": evalc}),
                         model_store=tmp_path)
    other = experiment.run(experiment.parse_config(
        {**tiny, "method": "l2l",
         "eval": {**evalc, "task": {"kind": "outpaint", "mask_ratio": 0.25}}}),
        model_store=tmp_path)
    # the same weights (the files differ by the config in their metadata), other numbers
    from l2l.stored_model import load

    a, b = load(own.artifacts["model"]).state, load(other.artifacts["model"]).state
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    v = {(m.split, m.metric): m.value for m in own.metrics}
    w = {(m.split, m.metric): m.value for m in other.metrics}
    assert v[("forget", "fid")] != w[("forget", "fid")]
    assert v[("all", "samples_seen")] == w[("all", "samples_seen")]
    # the result columns keep the trial's own task; the evaluation task is in `settings`
    cols = other.config.columns()
    assert (cols["task"], cols["mask_ratio"]) == ("center_inpaint", 0.5)
    assert json.loads(cols["settings"])["eval.task.kind"] == "outpaint"


def _rec(method, split, fid, task=None, masks=None):
    keys = {k: None for k in KEYS}
    settings = {} if task is None else {"eval.task.kind": task[0], "eval.task.mask_ratio": task[1]}
    if masks is not None:
        settings["unlearn.random_masks"] = masks
    keys.update(family="i2i", dataset="fashion_mnist", task="center_inpaint", mask_ratio=0.5,
                generator="mae", generator_size="tiny", method=method, params="{}",
                settings=json.dumps(settings))
    return {**keys, "split": split, "metric": "fid", "extractor": "classifier",
            "stat": Stat(fid, 1.0, 3, 1.0), "direction": None}


def test_the_transfer_table_sets_each_task_beside_the_own_one():
    records = [_rec(m, s, v, t) for m, t, vals in [
        ("original", None, (60, 30)), ("l2l", None, (150, 31)),
        ("original", ("outpaint", 0.25), (40, 20)), ("l2l", ("outpaint", 0.25), (45, 21))]
        for s, v in zip(("forget", "retain"), vals)]
    table = transfer_table(records)
    assert [c.levels[0] for c in table.columns] == ["own (centre 0.5)"] * 2 + ["outpaint 0.25"] * 2
    assert [r.labels[0] for r in table.rows] == ["original", "l2l"]
    l2l = 1
    assert table.cells[(l2l, 0)].mean == 150 and table.cells[(l2l, 2)].mean == 45
    assert transfer_table([r for r in records if "outpaint" not in r["settings"]]) is None
    # two ways of unlearning (its masks) are two rows, each with its own tasks' cells
    records = [_rec(m, s, v, t, masks) for m, masks, t, vals in [
        ("original", None, None, (60, 30)), ("original", None, ("random", 0.25), (44, 33)),
        ("l2l", 0.0, None, (150, 31)), ("l2l", 0.0, ("random", 0.25), (45, 31)),
        ("l2l", 1.0, None, (140, 32)), ("l2l", 1.0, ("random", 0.25), (90, 30))]
        for s, v in zip(("forget", "retain"), vals)]
    table = transfer_table(records)
    assert [r.labels[0] for r in table.rows] == ["original", "l2l unlearn.random_masks=0",
                                                 "l2l unlearn.random_masks=1"]
    assert [table.cells[(i, 2)].mean for i in range(3)] == [44, 45, 90]


def test_the_random_task_hides_a_fixed_scattered_share_of_the_tokens():
    from l2l.config import TrialConfig
    from l2l.tasks import task_mask

    m = task_mask("random", 8, 0.4)
    assert m.shape == (64,) and int(m.sum()) == round(0.4 * 64)
    assert torch.equal(m, task_mask("random", 8, 0.4))  # one draw: every trial sees this mask
    # scattered, not the centre square or a border of the same size
    assert not torch.equal(m, task_mask("center_inpaint", 8, 0.5))
    rows = m.view(8, 8).any(1)
    assert rows.sum() > 4
    cfg = TrialConfig.from_dict({"method": "l2l", "forget_set": {"classes": [5]},
                                 "eval": {"task": {"kind": "random", "mask_ratio": 0.4}}})
    assert cfg.eval.task.kind == "random"
