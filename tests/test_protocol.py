"""The image-to-image protocol's choices (docs/design-notes.md, "Protocol"): training masks,
independent originals per pretraining seed, the diffusion model's forget target, the
convergence criterion and the defaults that follow the paper."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
import yaml

from l2l.config import TrialConfig
from l2l.data import ImageSet
from l2l.generators import build_generator
from l2l.pretrain import get_original, plateau_epoch
from l2l.tasks import RANDOM_HIDDEN, TrainingMasks, random_mask, task_mask

SPECS = Path(__file__).resolve().parent.parent / "sweeps" / "specs"


def test_random_masks_hide_a_share_in_range_and_differ_between_batches():
    g = torch.Generator().manual_seed(0)
    masks = [random_mask(8, g) for _ in range(50)]
    shares = [m.float().mean().item() for m in masks]
    assert min(shares) >= RANDOM_HIDDEN[0] - 1 / 64 and max(shares) <= RANDOM_HIDDEN[1] + 1 / 64
    assert len({tuple(m.tolist()) for m in masks}) == 50


@pytest.mark.parametrize("share", [0.0, 0.5, 1.0])
def test_training_masks_mix_task_and_random_masks_by_share(share):
    task = task_mask("center_inpaint", 8, 0.5)
    masks = TrainingMasks(task, share, torch.Generator().manual_seed(0))
    random_share = sum(not torch.equal(masks(), task) for _ in range(400)) / 400
    assert random_share == pytest.approx(share, abs=0.08)


def _tiny_cfg(tmp_path, **pretrain):
    return TrialConfig.from_dict({
        "method": "original", "forget_set": {"classes": [5]}, "retain": {"classes": [0, 1]},
        "generator": {"name": "mae", "size": "tiny"},
        "pretrain": {"images": 64, "epochs": 1, "batch_size": 32, **pretrain},
        "cache_dir": str(tmp_path)})


def _pool(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return ImageSet(torch.rand(n, 1, 32, 32, generator=g), torch.arange(n) % 10)


def test_each_pretraining_seed_gives_its_own_cached_original(tmp_path):
    """Independent originals: a different model per pretrain.seed, each cached once."""
    pool = _pool()
    models, hits = {}, {}
    for seed in (0, 1):
        cfg = _tiny_cfg(tmp_path, seed=seed)
        models[seed], hits[seed] = get_original(cfg, pool, torch.device("cpu"), tmp_path)
    assert hits[0].path != hits[1].path and not hits[0].hit and not hits[1].hit
    w0, w1 = (dict(models[s].named_parameters())["encoder.blocks.0.attn.qkv.weight"]
              for s in (0, 1))
    assert not torch.equal(w0, w1)
    again, hit = get_original(_tiny_cfg(tmp_path, seed=1), pool, torch.device("cpu"), tmp_path)
    assert hit.hit and all(torch.equal(a, b) for a, b in
                           zip(again.state_dict().values(), models[1].state_dict().values()))


def test_each_pretraining_seed_draws_its_own_training_pool():
    from l2l.i2i import STEPS

    train = _pool(1000)
    pools = [STEPS.training_pool(_tiny_cfg(Path("."), seed=s), train) for s in (0, 1)]
    assert not torch.equal(pools[0].x, pools[1].x)


def test_the_diffusion_forget_target_differs_from_the_image_only_in_the_hidden_region():
    model = build_generator("diffusion", "tiny")
    mask = task_mask("center_inpaint", model.grid, 0.5)
    g = torch.Generator().manual_seed(0)
    x, noise = torch.rand(4, 1, 32, 32, generator=g), torch.rand(4, 1, 32, 32, generator=g)
    target = model.noise_input(x, noise, mask)
    hidden = mask.view(8, 8).repeat_interleave(4, 0).repeat_interleave(4, 1)
    assert torch.equal(target[..., ~hidden], x[..., ~hidden])
    assert (target[..., hidden] != x[..., hidden]).float().mean() > 0.99


@pytest.mark.parametrize("name", ["mae", "vqgan"])
def test_encoders_of_visible_tokens_get_the_whole_noise_image(name):
    """MAE and VQ-GAN encoders see only visible tokens: noise only in the hidden region would
    leave their forget target equal to the forget image's embedding."""
    model = build_generator(name, "tiny")
    x, noise = torch.rand(2, 1, 32, 32), torch.rand(2, 1, 32, 32)
    assert torch.equal(model.noise_input(x, noise, task_mask("center_inpaint", 8, 0.5)), noise)


def test_validation_loss_is_recorded_per_epoch_and_the_plateau_is_found(tmp_path):
    cfg = _tiny_cfg(tmp_path, epochs=3)
    model, hit = get_original(cfg, _pool(), torch.device("cpu"), tmp_path, val=_pool(16, 1))
    history = hit.meta["validation_loss"]
    assert len(history) == 3 and all(v > 0 for v in history)
    assert hit.meta["images_seen"] == 3 * 64
    assert plateau_epoch([1.0, 0.5, 0.3, 0.299, 0.2985, 0.298]) == 3
    assert plateau_epoch([1.0, 0.5, 0.3, 0.299, 0.2985], patience=3) is None  # not seen yet
    assert plateau_epoch([None, None, 2.0, 1.0, 0.999], patience=1) == 4
    assert plateau_epoch([None]) is None


def test_config_defaults_follow_the_paper():
    """Defaults a user gets without a spec: the paper's choices (reference: Li et al. 2024 and
    its released code), the CPU departures live in the specs."""
    cfg = TrialConfig.from_dict({"method": "l2l", "forget_set": {"classes": [5]}})
    assert cfg.task.kind == "center_inpaint" and cfg.task.mask_ratio == 0.5  # Table 1
    assert cfg.alpha == 0.25 and cfg.noise == "normal"  # VQ-GAN code: alpha 0.2-0.25, N(mean, std)
    assert cfg.pretrain.random_masks == 1.0 and cfg.unlearn.random_masks == 1.0  # random masking
    assert cfg.pretrain.noise_share == 0.0  # real images only
    assert cfg.retain.mode == "full"


def _spec(name):
    return yaml.safe_load((SPECS / name).read_text())


@pytest.mark.parametrize("name, ratio", [("i2i_table1.yaml", 0.5), ("i2i_table2.yaml", 0.25),
                                         ("i2i_table1_gpu.yaml", 0.5),
                                         ("i2i_table2_gpu.yaml", 0.25)])
def test_table_specs_encode_the_papers_protocol(name, ratio):
    from sweeps.spec import load_spec

    raw = _spec(name)
    spec = load_spec(SPECS / name)
    cfgs = [t.config for t in spec.trials]
    assert {c.task.mask_ratio for c in cfgs} == {ratio}
    assert {c.task.kind for c in cfgs} == {"center_inpaint"}
    assert {c.generator.name for c in cfgs} == {"mae", "vqgan", "diffusion"}
    # every method of the paper's table, the proxy variant, retrain and the control
    methods = {c.method for c in cfgs}
    assert {"original", "max_loss", "noisy_label", "retain_label", "random_encoder", "l2l",
            "retrain", "finetune_retain"} <= methods
    assert any(c.method == "l2l" and c.retain.mode == "proxy" for c in cfgs)
    # independent originals: at least 5 pretraining seeds, each with every method
    seeds = {c.pretrain.seed for c in cfgs}
    assert len(seeds) >= 5
    assert all(len({c.pretrain.seed for c in cfgs if c.method == m}) == len(seeds)
               for m in methods)
    # at least 1,000 evaluation images per set; the final table is on the test split
    for c in cfgs:
        assert c.eval.images_per_class * len(c.forget_classes) >= 1000
        assert c.eval.images_per_class * len(c.retain_classes) >= 1000
        assert c.eval.split == "test"
        assert c.pretrain.noise_share == 0.0  # real images only
    # one unlearning budget for every method, cheaper than retraining by a stated factor
    u = {(c.unlearn.steps, c.unlearn.batch_size) for c in cfgs}
    assert len(u) == 1
    steps, batch = u.pop()
    unlearn_images = steps * 2 * batch
    p = cfgs[0].pretrain
    retrain_images = p.epochs * p.images * (1 - len(cfgs[0].forget_classes) / 10)
    assert retrain_images / unlearn_images >= 3  # the spec's comment states the factor


def test_plateau_command_prints_the_curve_and_refuses_bad_input(tmp_path, capsys):
    from l2l.cli import main

    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({
        "forget_set": {"classes": [5]}, "retain": {"classes": [0, 1]},
        "generator": {"name": "mae", "size": "tiny"},
        "pretrain": {"images": 128, "batch_size": 64}, "classifier": {"images": 256}}))
    assert main(["plateau", str(cfg), "--epochs", "3", "--patience", "1",
                 "--cache-dir", str(tmp_path / "cache"), "-q"]) == 0
    out = capsys.readouterr().out
    assert "mae/tiny: 128 images" in out and "plateau:" in out
    assert len([ln for ln in out.splitlines() if ln.strip()[:1].isdigit()]) == 3  # 3 epochs
    for args, field in ((["--epochs", "0"], "--epochs"), (["--tolerance", "2"], "--tolerance"),
                        (["--generator", "stylegan"], "generator.name")):
        assert main(["plateau", str(cfg), *args, "-q"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"error: {field}")
    gan = SPECS / "gan_class_small.yaml"
    assert main(["plateau", str(gan), "-q"]) == 2
    assert "image-to-image" in capsys.readouterr().err


def test_random_masks_only_share_one_original_across_tasks():
    """As in the paper, a model pretrained on random masks serves every test task; a hybrid
    one has seen the task's mask, so each task has its own."""
    from l2l.pretrain import original_key

    def key(random_masks, ratio):
        return original_key(TrialConfig.from_dict({
            "method": "original", "forget_set": {"classes": [5]},
            "task": {"kind": "center_inpaint", "mask_ratio": ratio},
            "pretrain": {"random_masks": random_masks}}))

    assert key(1.0, 0.5) == key(1.0, 0.25)
    assert key(0.5, 0.5) != key(0.5, 0.25)


def test_noise_target_is_an_l2l_option_validated_in_one_line():
    from l2l.errors import ConfigError

    base = {"method": "l2l", "forget_set": {"classes": [5]}}
    assert TrialConfig.from_dict(base).noise_target == "paper"
    whole = TrialConfig.from_dict({**base, "noise_target": "whole_image"})
    assert whole.config_hash != TrialConfig.from_dict(base).config_hash
    assert TrialConfig.from_dict({**base, "method": "original"}).noise_target is None
    with pytest.raises(ConfigError, match=r"noise_target: unknown value 'hidden' \(allowed: "
                                          r"paper, whole_image\)"):
        TrialConfig.from_dict({**base, "noise_target": "hidden"})
