"""Resumable pretraining (l2l/checkpoint.py): an original whose training stops after some
epochs resumes after the last finished one, and ends with exactly the weights (and validation
history) of a run that never stopped; the checkpoint is gone once the model is cached."""
import pytest
import torch

from l2l import cache
from l2l.checkpoint import Checkpoint
from l2l.config import TrialConfig
from l2l.data import ImageSet
from l2l.pretrain import get_original, original_key

pytestmark = pytest.mark.usefixtures("one_thread")


class Stopped(Exception):
    """The process dying after an epoch's checkpoint was written."""


def _cfg(tmp_path, generator, epochs):
    # hybrid masks and noise images: every random draw the loops make is exercised
    return TrialConfig.from_dict({
        "method": "original", "forget_set": {"classes": [5]}, "retain": {"classes": [0, 1]},
        "generator": {"name": generator, "size": "tiny"},
        "pretrain": {"images": 64, "epochs": epochs, "batch_size": 32, "random_masks": 0.5,
                     "noise_share": 0.25},
        "cache_dir": str(tmp_path)})


def _pool(n=64):
    g = torch.Generator().manual_seed(0)
    return ImageSet(torch.rand(n, 1, 32, 32, generator=g), torch.arange(n) % 10)


@pytest.mark.parametrize("generator,epochs,stop_after", [
    ("mae", 3, 1), ("diffusion", 2, 1),
    ("vqgan", 4, 1),  # in the tokenizer phase (2 epochs of 4)
    ("vqgan", 4, 3)])  # in the transformer phase
def test_a_stopped_pretraining_resumes_to_the_same_weights(tmp_path, monkeypatch, generator,
                                                           epochs, stop_after):
    val = _pool(16)
    whole, _ = get_original(_cfg(tmp_path / "a", generator, epochs), _pool(),
                            torch.device("cpu"), tmp_path / "a", val=val)

    cfg = _cfg(tmp_path / "b", generator, epochs)
    save = Checkpoint.save
    saved = []

    def dying_save(self, phase, epoch, objects, **extra):
        save(self, phase, epoch, objects, **extra)
        saved.append((phase, epoch))
        if len(saved) == stop_after:
            raise Stopped

    monkeypatch.setattr(Checkpoint, "save", dying_save)
    with pytest.raises(Stopped):
        get_original(cfg, _pool(), torch.device("cpu"), tmp_path / "b", val=val)
    partial = cache.partial_path(tmp_path / "b", "generator", original_key(cfg))
    assert partial.is_file()
    monkeypatch.setattr(Checkpoint, "save", save)
    resumed, hit = get_original(cfg, _pool(), torch.device("cpu"), tmp_path / "b", val=val)
    assert not hit.hit and not partial.exists()
    a, b = whole.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    first = cache.get_or_build(tmp_path / "a", "generator", original_key(cfg), None)[1].meta
    assert hit.meta["validation_loss"] == first["validation_loss"]
    assert hit.meta["train_seconds"] > 0


def test_an_unreadable_checkpoint_trains_from_scratch(tmp_path):
    cfg = _cfg(tmp_path, "mae", 1)
    partial = cache.partial_path(tmp_path, "generator", original_key(cfg))
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"not a checkpoint")
    model, hit = get_original(cfg, _pool(), torch.device("cpu"), tmp_path)
    assert not hit.hit and not partial.exists()
