"""The unlearning budget of image-to-image trials in images (`samples_seen`, split `all`): the
methods that use retain data draw the same number of images for the same unlearn.steps and
batch_size, `original` none, and `retrain` (its training's images) more than any of them."""
import copy
from types import SimpleNamespace

import pytest
import torch

from contract.metrics import direction
from l2l.config import METHODS, TrialConfig
from l2l.data import ImageSet, Splits
from l2l.generators import build_generator
from l2l.i2i import STEPS

# Every unlearning method that uses retain data: a forget and a retain batch a step (the
# controls finetune_retain and finetune_all: two batches of retain / pool images).
WITH_RETAIN = ("l2l", "max_loss", "noisy_label", "retain_label", "random_encoder",
               "finetune_retain", "finetune_all")
STEPS_, BATCH = 3, 4


def test_the_list_covers_every_unlearning_method():
    assert set(WITH_RETAIN) | {"original", "retrain"} == set(METHODS.names())


def _images(n, seed, label=0):
    g = torch.Generator().manual_seed(seed)
    return ImageSet(torch.rand(n, 1, 32, 32, generator=g), torch.full((n,), label))


def _run(method, tmp_path):
    """`method` on a tiny MAE through the trial's own context (l2l/i2i.py); its context."""
    cfg = TrialConfig.from_dict({
        "method": method, "forget_set": {"classes": [1]}, "retain": {"classes": [0]},
        # retrain's pool: 64 images, 32 of the retain class, 2 epochs -> 64 images seen
        "pretrain": {"images": 64, "epochs": 2, "batch_size": 16},
        "unlearn": {"steps": STEPS_, "batch_size": BATCH, "images_per_class": 8},
        "generator": {"name": "mae", "size": "tiny"}})
    pool = ImageSet(torch.rand(64, 1, 32, 32), torch.arange(64) % 2)
    splits = Splits(_images(8, 1, 1), _images(8, 2, 0), _images(4, 3, 1), _images(4, 4, 0))
    torch.manual_seed(0)
    model = build_generator("mae", "tiny")
    prep = SimpleNamespace(pool=pool, classifier=None)
    ctx = STEPS.context(cfg, prep, splits, model, torch.device("cpu"), tmp_path)
    METHODS.get(method).load(method)(copy.deepcopy(model), ctx)
    return cfg, ctx


@pytest.mark.parametrize("method", WITH_RETAIN)
def test_methods_with_retain_data_see_the_same_images(method, tmp_path):
    _, ctx = _run(method, tmp_path)
    assert ctx.samples_seen == 2 * BATCH * STEPS_


def test_original_sees_no_image_and_retrain_more_than_unlearning(tmp_path):
    assert _run("original", tmp_path)[1].samples_seen == 0
    cfg, ctx = _run("retrain", tmp_path)
    assert ctx.samples_seen == cfg.pretrain.epochs * 32  # its pool without the forget class
    assert ctx.samples_seen > 2 * BATCH * STEPS_
    # read from the cache, the same count
    assert _run("retrain", tmp_path)[1].caches["retrain"].hit
    assert _run("retrain", tmp_path)[1].samples_seen == ctx.samples_seen


@pytest.mark.parametrize("method,expected", [("original", 0), ("l2l", 2 * BATCH * STEPS_)])
def test_a_trial_reports_samples_seen_once_as_a_registered_metric(method, expected, tiny):
    from l2l.trial import run_trial

    cfg = TrialConfig.from_dict({**tiny, "method": method, "unlearn": {
        **tiny["unlearn"], "steps": STEPS_, "batch_size": BATCH},
        "eval": {**tiny["eval"], "images_per_class": 2}})
    rows = run_trial(cfg).rows()
    seen = [r for r in rows if r["metric"] == "samples_seen"]
    assert [(r["split"], r["value"], r["n"]) for r in seen] == [("all", expected, expected)]
    assert direction("i2i", "all", "samples_seen").text == "lower"
