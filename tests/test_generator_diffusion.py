"""The diffusion generator's interface on tiny random-init models (no pretraining, a few s)."""
from __future__ import annotations

import pytest
import torch

from l2l.generators.diffusion import Diffusion
from l2l.tasks import pixel_mask, task_mask


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return Diffusion("tiny", sampling_steps=2).eval()


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(1)
    return torch.rand(4, 1, 32, 32, generator=g), task_mask("center_inpaint", 8, 0.5)


def test_encode_returns_list_of_feature_maps(model, data):
    x, mask = data
    with torch.no_grad():
        feats = model.encode(x, mask)
    assert isinstance(feats, list) and len(feats) >= 3
    assert all(f.shape[0] == len(x) and torch.isfinite(f).all() for f in feats)
    assert feats[0].dim() == 2  # time embedding, consumed by the decoder
    assert all(f.dim() == 4 for f in feats[1:])  # conv_in, down-block outputs, mid block


def test_reconstruct_shape_range_and_visible_pixels_kept(model, data):
    x, mask = data
    out = model.reconstruct(x, mask, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    assert out.min() >= 0 and out.max() <= 1
    m = pixel_mask(mask, model.patch)
    assert torch.equal(out * (1 - m), x * (1 - m))
    assert not torch.allclose(out * m, x * m)  # the hidden region is generated


def test_reconstruct_deterministic_for_seeded_generator(model, data):
    x, mask = data
    a = model.reconstruct(x, mask, torch.Generator().manual_seed(3))
    b = model.reconstruct(x, mask, torch.Generator().manual_seed(3))
    c = model.reconstruct(x, mask, torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_sample_aux_and_encode_determinism(model, data):
    x, mask = data
    aux1 = model.sample_aux(x, mask, torch.Generator().manual_seed(0))
    aux1b = model.sample_aux(x, mask, torch.Generator().manual_seed(0))
    aux2 = model.sample_aux(x, mask, torch.Generator().manual_seed(1))
    t, noise = aux1
    assert t.shape == (len(x),) and t.dtype == torch.long
    assert noise.shape == x.shape
    assert torch.equal(t, aux1b[0]) and torch.equal(noise, aux1b[1])
    with torch.no_grad():
        f1, f1b, f2 = (model.encode(x, mask, a) for a in (aux1, aux1b, aux2))
        fnone = model.encode(x, mask), model.encode(x, mask)
    assert all(torch.equal(a, b) for a, b in zip(f1, f1b, strict=True))
    assert any(not torch.allclose(a, b) for a, b in zip(f1, f2, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(*fnone, strict=True))  # aux None: fixed seed


def test_encoder_decoder_split_is_a_partition_of_the_unet(model):
    enc = {id(p) for p in model.encoder.parameters()}
    dec = {id(p) for p in model.decoder.parameters()}
    unet = {id(p) for p in model.unet.parameters()}
    assert enc and dec and not enc & dec
    assert enc | dec == unet
    assert {id(p) for p in model.parameters()} == unet


def test_split_forward_matches_unet_forward(model):
    """encoder + decoder re-implement UNet2DModel.forward exactly."""
    s = model.s2d
    inp = torch.randn(2, 3, 32, 32)
    t = torch.tensor([10, 900])
    with torch.no_grad():
        ref = model.unet(torch.nn.functional.pixel_unshuffle(inp, s), t).sample
        ref = torch.nn.functional.pixel_shuffle(ref, s)
        ours = model._decode(*model._features(inp, t))
    torch.testing.assert_close(ours, ref)


def test_state_dict_round_trip(model, data):
    x, mask = data
    torch.manual_seed(123)
    fresh = Diffusion("tiny", sampling_steps=2).eval()
    fresh.load_state_dict(model.state_dict())
    aux = model.sample_aux(x, mask, torch.Generator().manual_seed(0))
    with torch.no_grad():
        for a, b in zip(model.encode(x, mask, aux), fresh.encode(x, mask, aux), strict=True):
            assert torch.equal(a, b)
    assert torch.equal(model.reconstruct(x, mask, torch.Generator().manual_seed(0)),
                       fresh.reconstruct(x, mask, torch.Generator().manual_seed(0)))


def test_task_loss_finite_and_decreasing(data):
    x, mask = data
    torch.manual_seed(0)
    m = Diffusion("tiny").train()
    opt = torch.optim.Adam(m.parameters(), lr=2e-3)

    def loss_at_fixed_noise():
        with torch.no_grad():
            return m.task_loss(x, mask, g=torch.Generator().manual_seed(0)).item()

    before = loss_at_fixed_noise()
    g = torch.Generator().manual_seed(1)
    for _ in range(20):
        loss = m.task_loss(x, mask, g=g)
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss_at_fixed_noise() < 0.8 * before
    # another target (e.g. a baseline's noise target) is a valid loss too
    target = torch.rand(x.shape, generator=torch.Generator().manual_seed(2))
    assert torch.isfinite(m.task_loss(x, mask, target=target, g=g))


def test_unknown_size_raises_key_error_listing_sizes():
    with pytest.raises(KeyError, match="tiny.*small.*base"):
        Diffusion("huge")


def test_registered_builder():
    from l2l.generators import build_generator

    m = build_generator("diffusion", "tiny", sampling_steps=4)
    assert isinstance(m, Diffusion) and m.sampling_steps == 4 and m.grid == 8


@pytest.mark.parametrize("size", ["small", "base"])
def test_larger_sizes_build_and_run(size, data):
    x, mask = data[0][:1], data[1]
    m = Diffusion(size, sampling_steps=1).eval()
    with torch.no_grad():
        feats = m.encode(x, mask)
    assert all(f.shape[0] == 1 for f in feats)
    assert m.reconstruct(x, mask, torch.Generator().manual_seed(0)).shape == x.shape
    enc = {id(p) for p in m.encoder.parameters()}
    assert not enc & {id(p) for p in m.decoder.parameters()}
