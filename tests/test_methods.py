"""Every generator x method pair runs, and each method trains only what it claims to train."""
import copy

import pytest
import torch

from l2l.config import GENERATORS, METHODS, TrialConfig
from l2l.context import TrialContext
from l2l.data import ImageSet, Splits
from l2l.generators import build_generator
from l2l.tasks import TrainingMasks, task_mask

ENCODER_ONLY = {"l2l", "random_encoder"}
WHOLE_MODEL = {"max_loss", "noisy_label", "retain_label", "finetune_retain"}


def test_every_registered_method_loads_from_its_module():
    for name in METHODS.names():
        assert callable(METHODS.get(name).load(name)), name


def _unlearn(method, model, ctx):
    return METHODS.get(method).load(method)(model, ctx)


def _images(n, seed):
    g = torch.Generator().manual_seed(seed)
    return ImageSet(torch.rand(n, 1, 32, 32, generator=g), torch.zeros(n, dtype=torch.long))


def _context(method, tmp_path, retain_mode="full"):
    cfg = TrialConfig.from_dict({
        "method": method, "forget_set": {"classes": [1]}, "alpha": 0.25,
        "retain": {"mode": retain_mode, "classes": [0]},
        "pretrain": {"images": 16, "epochs": 1, "batch_size": 8},
        "unlearn": {"steps": 2, "batch_size": 4, "lr": 1e-3, "images_per_class": 8},
        "generator": {"name": "mae", "size": "tiny", "sampling_steps": 2}})
    pool = ImageSet(torch.rand(16, 1, 32, 32), torch.arange(16) % 2)
    splits = Splits(_images(8, 1), None if retain_mode == "none" else _images(8, 2),
                    _images(4, 3), _images(4, 4))
    return cfg, splits, pool


def _masks(cfg, mask):
    """The unlearning step masks the trial builds (l2l/i2i.py), for a hand-made context."""
    return TrainingMasks(mask, cfg.unlearn.random_masks, torch.Generator().manual_seed(0))


@pytest.mark.parametrize("generator", GENERATORS)
@pytest.mark.parametrize("method", sorted(METHODS.names()))
def test_method_runs_and_trains_the_right_parts(generator, method, tmp_path):
    cfg, splits, pool = _context(method, tmp_path)
    cfg = TrialConfig.from_dict({**cfg.to_dict(), "generator": {
        "name": generator, "size": "tiny", "sampling_steps": 2}})
    torch.manual_seed(0)
    model = build_generator(generator, "tiny", sampling_steps=2)
    mask = task_mask("center_inpaint", model.grid, 0.5)
    ctx = TrialContext(cfg, splits, torch.device("cpu"), torch.Generator().manual_seed(0),
                       tmp_path, pool=pool, mask=mask, train_masks=_masks(cfg, mask))
    out_model = _unlearn(method, copy.deepcopy(model), ctx)
    x = splits.eval_forget.x
    out = out_model.reconstruct(x, mask, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and torch.isfinite(out).all()
    if method == "retrain":
        return  # a new model: nothing to compare parameter by parameter

    def changed(part):
        return any(not torch.equal(a, b) for a, b in zip(
            getattr(model, part).parameters(), getattr(out_model, part).parameters(), strict=True))

    enc, dec = changed("encoder"), changed("decoder")
    if method == "original":
        assert not enc and not dec
    elif method in ENCODER_ONLY:
        assert enc and not dec, "encoder-only methods must leave the decoder as it was"
    else:
        assert dec, "whole-model baselines must train the decoder too"


@pytest.mark.parametrize("method", ["retain_label", "finetune_retain"])
def test_methods_that_need_retain_images_refuse_mode_none(method):
    from l2l.errors import ConfigError

    with pytest.raises(ConfigError, match="retain.mode"):
        TrialConfig.from_dict({"method": method, "forget_set": {"classes": [1]},
                               "retain": {"mode": "none"}})


def test_finetune_retain_spends_the_baselines_budget_on_retain_images_only(tmp_path):
    """The control: as many images as a baseline draws (a forget and a retain batch a step),
    all of them retain images, and the retain task loss goes down."""
    cfg, splits, pool = _context("finetune_retain", tmp_path)
    cfg = TrialConfig.from_dict({**cfg.to_dict(), "unlearn": {**cfg.to_dict()["unlearn"],
                                                              "steps": 20, "lr": 3e-3}})
    torch.manual_seed(0)
    model = build_generator("mae", "tiny")
    mask = task_mask("center_inpaint", model.grid, 0.5)
    x_r = splits.retain.x

    def retain_loss(m):
        with torch.no_grad():
            return float(m.eval().task_loss(x_r, mask, g=torch.Generator().manual_seed(1)))

    before = retain_loss(model)
    splits.forget.x.fill_(float("nan"))  # a forget image in any batch would poison the weights
    ctx = TrialContext(cfg, splits, torch.device("cpu"), torch.Generator().manual_seed(0),
                       tmp_path, pool=pool, mask=mask, train_masks=_masks(cfg, mask))
    out = _unlearn("finetune_retain", copy.deepcopy(model), ctx)
    assert ctx.samples_seen == 20 * 2 * cfg.unlearn.batch_size
    assert retain_loss(out) < before  # finite and lower: no forget image was used


def test_l2l_runs_without_retain_images(tmp_path):
    cfg, splits, pool = _context("l2l", tmp_path, retain_mode="none")
    model = build_generator("mae", "tiny")
    mask = task_mask("center_inpaint", model.grid, 0.5)
    ctx = TrialContext(cfg, splits, torch.device("cpu"), torch.Generator().manual_seed(0),
                       tmp_path, pool=pool, mask=mask, train_masks=_masks(cfg, mask))
    _unlearn("l2l", model, ctx)
    assert ctx.samples_seen == cfg.unlearn.steps * cfg.unlearn.batch_size  # forget images only


@pytest.mark.parametrize("kind", ["normal", "uniform", "constant"])
def test_noise_images_are_images_of_the_batch_shape(kind):
    from l2l.methods.common import noise_images

    x = torch.rand(4, 1, 32, 32) * 0.5
    n = noise_images(x, kind, torch.Generator().manual_seed(0))
    assert n.shape == x.shape and 0 <= float(n.min()) and float(n.max()) <= 1
    if kind == "constant":
        assert torch.allclose(n, torch.full_like(x, float(x.mean())))
    else:
        assert n.std() > 0.05  # real noise, not a flat image


def test_finetune_all_trains_on_the_whole_pool_forget_classes_included(tmp_path):
    """The second control continues training on the original's own data: a poisoned pool
    image reaches it (finetune_retain, above, never sees one)."""
    cfg, splits, pool = _context("finetune_all", tmp_path)
    model = build_generator("mae", "tiny")
    mask = task_mask("center_inpaint", model.grid, 0.5)
    pool.x.fill_(float("nan"))
    ctx = TrialContext(cfg, splits, torch.device("cpu"), torch.Generator().manual_seed(0),
                       tmp_path, pool=pool, mask=mask, train_masks=_masks(cfg, mask))
    out = _unlearn("finetune_all", copy.deepcopy(model), ctx)
    assert ctx.samples_seen == cfg.unlearn.steps * 2 * cfg.unlearn.batch_size
    assert not all(torch.isfinite(p).all() for p in out.parameters())
