"""The ablation and search specs in sweeps/specs parse and sweep what their headers say
(parse only: no trial runs here)."""
import json

import pytest

from sweeps.spec import load_spec


def _spec(name):
    return load_spec(f"sweeps/specs/{name}.yaml")


def test_alpha_ablation():
    spec = _spec("ablation_alpha")
    l2l = [t.config for t in spec.trials if t.config.method == "l2l"]
    assert sorted({c.alpha for c in l2l}) == [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0]
    assert {t.config.seed for t in spec.trials} == {0, 1, 2}
    assert sum(t.config.method == "original" for t in spec.trials) == 3  # once per seed


def test_retain_ablation_covers_every_retain_availability():
    spec = _spec("ablation_retain")
    settings = {(c.retain.mode, c.retain.fraction, c.retain.source)
                for c in (t.config for t in spec.trials) if c.method == "l2l"}
    assert settings == {("full", None, None), ("fraction", 0.5, None), ("fraction", 0.1, None),
                        ("fraction", 0.01, None), ("proxy", None, "fashion_mnist"),
                        ("proxy", None, "digits"), ("none", None, None)}
    assert {t.config.forget_classes for t in spec.trials} == {(5, 7, 9)}  # same forget set


def test_forget_set_ablation_has_fixed_lists_and_random_draws():
    spec = _spec("ablation_forget_set")
    raw = spec.source["grid"]["forget_set"]
    assert any("classes" in f for f in raw) and sum("random" in f for f in raw) >= 3
    drawn = {t.config.forget_classes for t in spec.trials}
    assert len(drawn) == len(raw)  # every entry is its own forget set
    for c in (t.config for t in spec.trials):  # every other class is retained
        assert sorted(c.forget_classes + c.retain_classes) == list(range(10))


def test_mask_ratio_ablation():
    spec = _spec("ablation_mask_ratio")
    tasks = {(t.config.task.kind, t.config.task.mask_ratio) for t in spec.trials}
    assert tasks == {("center_inpaint", 0.25), ("center_inpaint", 0.5),
                     ("center_inpaint", 0.75), ("outpaint", 0.25)}


def test_search_spec():
    spec = _spec("search_l2l")
    s = spec.search
    assert s is not None and s.algorithm == "optuna" and s.num_samples >= 8
    assert {p.name for p in s.space} == {"alpha", "unlearn.lr"}
    assert s.seeds == (0, 1, 2) and s.asha and s.max_concurrent >= 1
    assert s.objective == {("forget", "fid"): 1.0, ("retain", "fid"): -1.0}


@pytest.mark.parametrize("name", ["ablation_alpha", "ablation_retain", "ablation_forget_set",
                                  "ablation_mask_ratio", "search_l2l", "quickstart",
                                  "i2i_table1", "i2i_table2", "relearn"])
def test_every_spec_asks_for_gpus_or_cpus_that_fall_back(name):
    from sweeps.plan import effective_resources

    spec = _spec(name)
    res, notices = effective_resources(spec.resources, gpus=0)
    assert all(r["gpu"] == 0 and r["cpu"] >= 1 for r in res.values())
    # every GPU request is named in a notice; a CPU-only entry already asks for a whole CPU
    asks_gpu = {g for g, r in spec.resources.items() if r["gpu"] > 0}
    assert {n.split()[1] for n in notices} == {f"resources.{g}" for g in asks_gpu}
    assert all(r["cpu"] >= 1 for g, r in spec.resources.items() if g not in asks_gpu)
    json.dumps(spec.source)  # sweep.json can hold it


@pytest.mark.parametrize("name, models", [("gan_item", 7), ("gan_class", 11)])
def test_the_dry_run_counts_one_retrain_per_forget_set(name, models):
    """The spec headers' count of model trainings: the original plus one retrain per forget
    set; in the item setting the forget sets differ by their drawn items, not their classes."""
    from sweeps.plan import estimate

    assert estimate(_spec(name)).originals == models


def test_the_dry_run_prices_dcgan_trials_by_their_request():
    """DCGAN has reference rates: the GAN speedup sweep's cost is priced, not assumed at 60 s
    a trial; an unlearning budget that grows with the request costs more for a larger one,
    and the 24 models (3 originals, 21 retrained) are counted, each of them once."""
    from sweeps.plan import _trial_seconds, build_estimates, estimate

    spec = _spec("gan_speedup")
    est = estimate(spec)
    assert not est.unreferenced and est.originals == 24
    # 24 trainings of about 12 epochs of 54,000 images at 36 s an epoch (measured: 6 to 8 h
    # in all): several hours, not the 24 minutes of 60 s per model
    assert 2 * 3600 < est.pretrain_seconds < 8 * 3600
    cascade = {(c.forget_k, c.setting): _trial_seconds(c, {"cpu": 1, "gpu": 0})
               for c in (t.config for t in spec.trials)
               if c.method == "cascade" and c.pretrain.seed == 0}
    items = [cascade[(k, "item")] for k in (64, 128, 256, 512, 1024, 2048)]
    assert items == sorted(items) and items[-1] > items[0]
    assert cascade[(1, "class")] > items[-1]  # 5,400 images of a class
    # a cascade trial with the stopping rule reads the retrained model its retrain trial builds
    builds = build_estimates(spec)
    by_id = {t.trial_id: t.config for t in spec.trials}
    for tid, models in builds.items():
        c = by_id[tid]
        assert len(models) == (1 if c.method == "original" else 2)


def test_the_dry_run_prices_a_gpu_trial_at_the_gpu_rates():
    """The paper-scale DCGAN on a GPU takes the rates measured on one (GPU_REFERENCE): its 51
    models of 12 epochs cost about an hour, not the CPU rates' days; without a GPU (the
    resources fall back to the CPU) the CPU rates, scaled to the model's size, stand."""
    from sweeps.plan import _trial_seconds, estimate

    spec = _spec("gan_speedup_mnist_gpu")
    gpu = estimate(spec, resources={"default": {"cpu": 4, "gpu": 1}})
    cpu = estimate(spec, resources={"default": {"cpu": 1, "gpu": 0}})
    assert gpu.originals == cpu.originals == 51
    # 51 x 12 epochs x ~52,000 images x 113 us: measured on an H200, about 1.0 h
    assert 0.5 * 3600 < gpu.pretrain_seconds < 1.5 * 3600
    assert cpu.pretrain_seconds > 20 * gpu.pretrain_seconds
    cascade = next(t.config for t in spec.trials if t.config.method == "cascade")
    assert _trial_seconds(cascade, {"cpu": 4, "gpu": 1}) < 10  # ~0.75 s of eval + its rounds
    # a generator and size without GPU rates keeps the CPU figures on a GPU
    tiny = next(t.config for t in _spec("gan_speedup").trials if t.config.method == "cascade")
    assert _trial_seconds(tiny, {"cpu": 1, "gpu": 1}) == _trial_seconds(tiny, {"cpu": 1,
                                                                              "gpu": 0})
