"""Every GAN method in both settings on a tiny DCGAN (a few hundred digits, a few steps), the
result contract the sweep layer reads, determinism and what each ablation leaves alone."""
import copy
import json
import math

import pytest

from l2l import experiment
from l2l.gan.config import METHODS, GanTrialConfig

pytestmark = pytest.mark.usefixtures("one_thread")

SMOKE = {
    "family": "gan", "dataset": "digits",
    "generator": {"name": "dcgan", "size": "tiny", "nz": 16, "ngf": 8, "ndf": 8},
    "pretrain": {"images": 300, "epochs": 1, "batch_size": 32, "lr": 0.001, "seed": 0},
    "classifier": {"images": 300, "epochs": 1},
    "unlearn": {"rounds": 3, "batch_size": 16, "lr": 0.001},
    "eval": {"samples": 64, "real_images": 64, "mia_images": 16, "downstream_epochs": 1},
}
SETTINGS = {"class": {"classes": [3]}, "item": {"items": 20, "seed": 1}}
METRICS = {"class": {"fid", "is", "forget_class_share", "mia_auc", "nn_distance",
                     "downstream_accuracy", "epochs", "samples_seen"},
           "item": {"fid", "is", "mia_auc", "nn_distance", "downstream_accuracy", "epochs",
                    "samples_seen"}}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory, one_thread):
    d = copy.deepcopy(SMOKE)
    d["cache_dir"] = str(tmp_path_factory.mktemp("gan-cache"))
    return d


def _run(d, **kw):
    return experiment.run(GanTrialConfig.from_dict({**d, **kw}))


@pytest.fixture(scope="module")
def results(smoke, tmp_path_factory):
    """Every method in both settings: (setting, method) -> result."""
    out = {}
    art = tmp_path_factory.mktemp("gan-art")
    for setting, fs in SETTINGS.items():
        for method in METHODS.names():
            cfg = GanTrialConfig.from_dict({**smoke, "method": method, "forget_set": fs})
            out[setting, method] = experiment.run(cfg, artifact_dir=art / f"{setting}-{method}")
    return out


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_every_method_gives_every_metric(results, setting):
    for method in METHODS.names():
        res = results[setting, method]
        values = {m.metric: m.value for m in res.metrics}
        assert set(values) == METRICS[setting], method
        assert all(math.isfinite(v) for v in values.values()), (method, values)
        assert {m.split for m in res.metrics} == {"all"}
        assert 0.0 <= values["mia_auc"] <= 1.0
        if method == "original":
            assert values["epochs"] == values["samples_seen"] == res.unlearn_seconds == 0
        else:
            assert res.unlearn_seconds > 0, method
            # generator-only learning sees real images only through substitutes, and a
            # one-epoch model may have no forget-like samples to substitute
            assert values["samples_seen"] > 0 or method == "cascade_g_only", method


def test_rows_fit_the_result_schema(results, tmp_path):
    import pyarrow.parquet as pq

    from contract.schema import FILE_SCHEMA, write_rows

    rows = []
    for res in results.values():
        rows += [{**r, "sweep_id": "s", "trial_id": "t", "status": "ok"} for r in res.rows()]
    path = write_rows(tmp_path / "x.parquet", rows)
    table = pq.read_table(path)
    assert table.schema.equals(FILE_SCHEMA)  # every column but the partition's sweep_id
    row = results["item", "cascade"].rows()[0]
    assert row["family"] == "gan" and row["setting"] == "item" and row["forget_k"] == 20
    assert json.loads(row["forget_set"]) == {"items": 20, "seed": 1}
    assert json.loads(row["params"])["substitute"] == "retain"
    assert row["retain_mode"] == "full" and "alpha" not in row and "mask_ratio" not in row
    assert isinstance(row["pretrain_cache_hit"], bool) and row["peak_memory_mb"] > 0
    written = {(r["metric"]): (r["direction"], r["alpha"]) for r in table.to_pylist()
               if r["family"] == "gan" and r["setting"] == "class"}
    assert written["forget_class_share"] == ("lower", None)  # image-to-image columns: null
    assert written["mia_auc"] == ("target:0.5", None)


def test_caches_and_artifacts(results):
    first, later = results["class", "original"], results["item", "gradient_ascent"]
    assert not first.caches["generator"]["hit"] and later.caches["generator"]["hit"]
    assert first.caches["generator"]["key"] == later.caches["generator"]["key"]
    assert set(first.caches) >= {"generator", "classifier"}
    assert all(set(v) >= {"hit", "key", "path", "seconds"} for v in first.caches.values())
    for res in results.values():
        png = res.artifacts["samples.png"]
        with open(png, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_retrain_reports_its_training_and_is_cached_per_forget_set(results, smoke):
    a, b = results["class", "retrain"], results["item", "retrain"]
    assert a.caches["retrain"]["key"] != b.caches["retrain"]["key"]
    for res in (a, b):
        values = {m.metric: m.value for m in res.metrics}
        assert values["epochs"] == smoke["pretrain"]["epochs"]
        meta_seconds = res.unlearn_seconds
        again = _run(smoke, method="retrain", forget_set=SETTINGS[res.config.setting], seed=5)
        assert again.caches["retrain"]["hit"]
        assert again.unlearn_seconds == pytest.approx(meta_seconds)  # training time, not reading


def test_ablations_leave_their_frozen_part_alone(results):
    def v(method):
        return {m.metric: m.value for m in results["class", method].metrics}

    original = v("original")
    d_only, g_only = v("cascade_d_only"), v("cascade_g_only")
    # discriminator only: the generator's samples are the original's
    for k in ("fid", "is", "forget_class_share", "nn_distance", "downstream_accuracy"):
        assert d_only[k] == pytest.approx(original[k], rel=1e-6), k
    # generator only: the discriminator (the membership attack's target) is the original's
    assert g_only["mia_auc"] == pytest.approx(original["mia_auc"])


def test_same_seed_same_numbers(smoke):
    kw = dict(method="cascade", forget_set=SETTINGS["item"],
              cascade={"substitute": "nearest", "fake_target": "mean_fake"}, seed=2)
    first = {m.metric: m.value for m in _run(smoke, **kw).metrics}
    again = {m.metric: m.value for m in _run(smoke, **kw).metrics}
    assert again == first


def test_the_metric_names_sweep_specs_are_checked_against_are_what_a_gan_trial_reports():
    from contract.metrics import names

    known = names("gan")
    assert set(known) == {"all"}  # the split test_every_method_gives_every_metric sees
    # and the stopping rule's outcome, reported when unlearn.stop_every is set (tested below)
    assert set(known["all"]) == METRICS["class"] | METRICS["item"] | {"rounds_run",
                                                                      "reached_retrain"}


def test_a_budget_in_passes_grows_with_the_request_and_a_fixed_one_does_not(smoke):
    """Item unlearning of 4x the images costs about 4x the images seen with `passes`; with a
    fixed number of rounds it costs the same."""
    seen = {}
    for k in (16, 64):
        for budget in ({"passes": 2.0}, {"rounds": 3}):
            u = {"batch_size": 16, "lr": 0.001, **budget}
            cfg = GanTrialConfig.from_dict({**smoke, "method": "cascade", "unlearn": u,
                                            "forget_set": {"items": k, "seed": 1}})
            assert (cfg.unlearn.rounds is None) == ("passes" in budget)
            res = experiment.run(cfg)
            seen[k, tuple(budget)] = {m.metric: m.value for m in res.metrics}["samples_seen"]
    assert seen[64, ("passes",)] / seen[16, ("passes",)] == pytest.approx(4.0, rel=0.15)
    assert seen[64, ("rounds",)] == seen[16, ("rounds",)]
    with pytest.raises(Exception, match="unlearn.passes: give rounds .* or passes"):
        GanTrialConfig.from_dict({**smoke, "method": "cascade", "forget_set": {"items": 8},
                                  "unlearn": {"rounds": 3, "passes": 1.0}})


def _rounds(rounds: int, every: int, measures) -> tuple[int, bool, int]:
    """(rounds run, reached, checks made) of a stopping rule over `rounds` rounds that reads
    the next of `measures` at each check (l2l/monitor.py drives it, as in a trial)."""
    import torch

    from l2l.gan.stopping import Reference
    from l2l.monitor import Monitor

    class Ctx:
        device, excluded_seconds = torch.device("cpu"), 0.0

    model, ctx, mon, checks = torch.nn.Linear(1, 1), Ctx(), Monitor(), []
    ref = Reference(0.05, 0.02, upper_only=True)  # retrain: 5% +- 2%: reached at <= 7%
    mon.stop_every(every, lambda m: checks.append(1) or ref.reached(next(measures)))
    for r in range(1, rounds + 1):
        if mon.after_step(model, ctx, last=r == rounds):
            break
    return mon.step, mon.reached, len(checks)


def test_the_stopping_rule_stops_when_the_measure_crosses_the_reference_and_not_before():
    from l2l.gan.stopping import Reference

    measures = iter([0.30, 0.20, 0.08, 0.071, 0.069, 0.01])
    assert _rounds(100, 2, measures) == (10, True, 5)  # the 5th check (0.069) is the first
    # never reached: the whole budget, flagged, and measured after its last round too
    assert _rounds(7, 3, iter([1.0] * 3)) == (7, False, 3)  # after rounds 3, 6 and 7
    # a budget shorter than the interval (a small request's) is measured at its end
    assert _rounds(2, 5, iter([0.0])) == (2, True, 1)
    # an interval reference (item: membership AUC) is reached from either side, only inside
    item = Reference(0.5, 0.04, upper_only=False)
    assert [item.reached(a) for a in (0.6, 0.545, 0.539, 0.461, 0.45)] == \
        [False, False, True, True, False]


def test_a_stopped_cascade_records_its_rounds_and_leaves_the_checks_out_of_its_time(
        smoke, monkeypatch):
    """The same stopped run with measurements that take 0 s and 2 s each: the rounds and the
    outcome are the same, and the unlearning seconds do not grow with the measurements."""
    import time

    from l2l.gan import stopping

    real = stopping.measure
    cfg = GanTrialConfig.from_dict({**smoke, "method": "cascade", "forget_set": {"classes": [3]},
                                    "unlearn": {"rounds": 6, "batch_size": 16, "lr": 0.001,
                                                "stop_every": 2}})
    out = {}
    for delay in (0.0, 2.0):
        calls = []

        def slow(gan, ctx, delay=delay, calls=calls):
            calls.append(1)
            time.sleep(delay)
            return real(gan, ctx)

        monkeypatch.setattr(stopping, "measure", slow)
        res = experiment.run(cfg)
        values = {m.metric: m.value for m in res.metrics}
        out[delay] = (values["rounds_run"], values["reached_retrain"], len(calls),
                      res.unlearn_seconds)
    (r0, ok0, n0, t0), (r2, ok2, n2, t2) = out[0.0], out[2.0]
    assert (r0, ok0, n0) == (r2, ok2, n2) and n0 >= 2  # the reference and a check at least
    assert 2 <= r0 <= 6 and (ok0 == 1.0 or r0 == 6)
    assert t2 - t0 < 1.0 < 2.0 * n0  # 2 s per measurement would show as >= 4 s


def test_evaluation_is_timed_apart_from_unlearning(smoke, monkeypatch):
    """The same cascade with an evaluation that takes 2 s longer: its unlearning seconds (what
    speedups divide) do not grow, its evaluation seconds do."""
    import time

    from l2l.gan import steps

    cfg = GanTrialConfig.from_dict({**smoke, "method": "cascade", "forget_set": {"classes": [3]}})
    real = steps.evaluate
    out = []
    for delay in (0.0, 2.0):
        def slow(*a, delay=delay, **k):
            time.sleep(delay)
            return real(*a, **k)

        monkeypatch.setattr(steps, "evaluate", slow)
        out.append(experiment.run(cfg))
    assert out[1].eval_seconds - out[0].eval_seconds > 1.5
    assert abs(out[1].unlearn_seconds - out[0].unlearn_seconds) < 1.0
