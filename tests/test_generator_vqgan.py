"""The VQ-GAN generator's interface on tiny random-init models (no real pretraining, a few s)."""
from __future__ import annotations

import logging

import pytest
import torch

from l2l.config import I2IPretrainConfig
from l2l.data import ImageSet
from l2l.generators import build_generator
from l2l.generators.vqgan import VQGAN
from l2l.tasks import TrainingMasks, pixel_mask, task_mask


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return VQGAN("tiny").eval()


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(1)
    return torch.rand(4, 1, 32, 32, generator=g), task_mask("center_inpaint", 8, 0.5)


def test_registered_and_grid(model):
    m = build_generator("vqgan", "tiny", sampling_steps=3)
    assert isinstance(m, VQGAN) and m.sampling_steps == 3
    assert (model.patch, model.grid) == (4, 8)


def test_tokens_cover_the_grid(model, data):
    x, _ = data
    tokens = model.tokenize(x)
    assert tokens.shape == (4, 64) and tokens.dtype == torch.long
    assert int(tokens.min()) >= 0 and int(tokens.max()) < model.codebook
    with torch.no_grad():
        assert model.detokenize(tokens).shape == x.shape


def test_encode_shape_visible_tokens_only(model, data):
    x, mask = data
    with torch.no_grad():
        feats = model.encode(x, mask)
    assert isinstance(feats, list) and len(feats) == 1
    n_vis = int((~mask).sum())
    assert feats[0].shape == (4, n_vis, model.encoder.pos_embed.shape[-1])
    assert model.sample_aux(x, mask) is None


def test_reconstruct_keeps_visible_pixels(model, data):
    x, mask = data
    out = model.reconstruct(x, mask, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    assert 0 <= float(out.min()) and float(out.max()) <= 1
    visible = pixel_mask(mask, model.patch).expand_as(x) == 0
    assert torch.equal(out[visible], x[visible])


def test_reconstruct_deterministic_for_a_seed(model, data):
    x, mask = data
    a = model.reconstruct(x, mask, torch.Generator().manual_seed(3))
    b = model.reconstruct(x, mask, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    sampler = VQGAN("tiny").eval()
    sampler.load_state_dict(model.state_dict())
    sampler.temperature = 1.0  # sampled tokens: the generator's seed decides them
    a = sampler.reconstruct(x, mask, torch.Generator().manual_seed(3))
    b = sampler.reconstruct(x, mask, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_per_image_masks(model, data):
    x, mask = data
    rows = torch.stack([mask, mask.roll(1), mask.roll(2), mask.roll(3)])
    out = model.reconstruct(x, rows, torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert model.encode(x, rows)[0].shape[:2] == (4, int((~mask).sum()))
    for i in range(4):
        visible = pixel_mask(rows[i], model.patch)[0].expand_as(x[i]) == 0
        assert torch.equal(out[i][visible], x[i][visible])


def test_parameter_groups_partition_the_model(model):
    groups = {k: {id(p) for p in getattr(model, k).parameters()}
              for k in ("tokenizer", "encoder", "decoder")}
    assert groups["encoder"] and groups["decoder"] and groups["tokenizer"]
    assert not groups["encoder"] & groups["decoder"]
    assert not groups["encoder"] & groups["tokenizer"]
    assert not groups["decoder"] & groups["tokenizer"]
    assert set().union(*groups.values()) == {id(p) for p in model.parameters()}


def test_encode_does_not_reach_the_tokenizer(data):
    x, mask = data
    torch.manual_seed(0)
    m = VQGAN("tiny").requires_grad_(True)
    m.encode(x, mask)[0].pow(2).mean().backward()
    assert all(p.grad is None for p in m.tokenizer.parameters())
    assert any(p.grad is not None for p in m.encoder.parameters())


def test_task_loss_decreases(data):
    x, mask = data
    torch.manual_seed(0)
    m = VQGAN("tiny").train()
    params = list(m.encoder.parameters()) + list(m.decoder.parameters())
    opt = torch.optim.AdamW(params, lr=3e-3)
    noise = torch.rand(x.shape, generator=torch.Generator().manual_seed(2))
    losses = []
    for _ in range(20):
        loss = m.task_loss(x, mask, target=noise, g=torch.Generator().manual_seed(0))
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_pretrain_runs_and_freezes_the_tokenizer():
    torch.manual_seed(0)
    m = VQGAN("tiny")
    g = torch.Generator().manual_seed(0)
    pool = ImageSet(torch.rand(16, 1, 32, 32, generator=g), torch.zeros(16, dtype=torch.long))
    before = [p.clone() for p in m.tokenizer.parameters()]
    cfg = I2IPretrainConfig(images=16, epochs=2, batch_size=8, lr=1e-3, seed=0)
    mask = task_mask("center_inpaint", 8, 0.5)
    masks = TrainingMasks(mask, 0.0, torch.Generator().manual_seed(1))  # the task's mask only
    history = m.pretrain(pool, masks, cfg, torch.device("cpu"), logging.getLogger("test"),
                         val=(pool.x[:4], mask))
    assert history[0] is None and history[1] > 0  # tokenizer epoch, then a transformer epoch
    assert any(not torch.equal(a, b) for a, b in zip(before, m.tokenizer.parameters()))
    assert not any(p.requires_grad for p in m.tokenizer.parameters())
    assert not m.training


def test_unknown_size():
    with pytest.raises(KeyError, match="tiny"):
        VQGAN("huge")
