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


@pytest.mark.parametrize("damage", ["bytes", "old format", "misfit"])
def test_a_checkpoint_that_cannot_be_resumed_trains_from_scratch(tmp_path, monkeypatch, damage):
    """Unreadable bytes, a file of an earlier format, or a state that does not fit the loop
    (the masks' state as an earlier version saved it, after the weights and optimiser were
    restored): the model trains from scratch, to the same weights as a run that never had a
    checkpoint."""
    cfg = _cfg(tmp_path / "b", "mae", 2)
    clean, _ = get_original(_cfg(tmp_path / "a", "mae", 2), _pool(), torch.device("cpu"),
                            tmp_path / "a")
    partial = cache.partial_path(tmp_path / "b", "generator", original_key(cfg))
    if damage == "bytes":
        partial.parent.mkdir(parents=True)
        partial.write_bytes(b"not a checkpoint")
    else:
        save = Checkpoint.save

        def dying_save(self, *a, **kw):
            save(self, *a, **kw)
            raise Stopped

        monkeypatch.setattr(Checkpoint, "save", dying_save)
        with pytest.raises(Stopped):
            get_original(cfg, _pool(), torch.device("cpu"), tmp_path / "b")
        monkeypatch.setattr(Checkpoint, "save", save)
        state = torch.load(partial, weights_only=True)
        if damage == "old format":
            state.pop("format")
        else:  # restoring fails at the masks, the last object, after the others were loaded
            state["objects"]["masks"] = state["objects"]["masks"]["g"]
        torch.save(state, partial)
    model, hit = get_original(cfg, _pool(), torch.device("cpu"), tmp_path / "b")
    assert not hit.hit and not partial.exists()
    a, b = clean.state_dict(), model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("stop_after", [1, 3])  # mid-run; at the epoch the criterion stops
def test_a_stopped_gan_training_resumes_to_the_same_weights_and_record(tmp_path, monkeypatch,
                                                                       stop_after):
    """The GAN's loop with the FID criterion: the best epoch's weights, the FID history and
    the training seconds (the speedup's denominator) carry across the stop."""
    from l2l.gan.config import GanTrialConfig
    from l2l.gan.pretrain import FidCheck, get_gan
    from l2l.classifier import Classifier
    from l2l.gan.models import GAN
    from test_gan_methods import SMOKE

    def run(root):
        cfg = GanTrialConfig.from_dict({
            **SMOKE, "method": "original", "forget_set": {"classes": [3]},
            "pretrain": {**SMOKE["pretrain"], "images": 96, "epochs": 6, "fid_patience": 2,
                         "fid_tolerance": 0.5}})
        torch.manual_seed(0)  # an untrained classifier: any fixed feature map will do here
        check = FidCheck(Classifier().eval(), _pool(64).x)
        return get_gan(cfg, _pool(96), torch.device("cpu"), root, check=check)

    whole, first = run(tmp_path / "a")
    save = Checkpoint.save
    count = []

    def dying_save(self, *a, **kw):
        save(self, *a, **kw)
        count.append(1)
        if len(count) == stop_after:
            raise Stopped

    monkeypatch.setattr(Checkpoint, "save", dying_save)
    with pytest.raises(Stopped):
        run(tmp_path / "b")
    monkeypatch.setattr(Checkpoint, "save", save)
    resumed, hit = run(tmp_path / "b")
    a, b = whole.state_dict(), resumed.state_dict()
    assert isinstance(resumed, GAN) and all(torch.equal(a[k], b[k]) for k in a)
    for k in ("epochs", "epochs_run", "fid_history", "samples_seen"):
        assert hit.meta[k] == first.meta[k], k
    assert first.meta["epochs_run"] == 3  # the criterion's end: a resumed run trains no further
    assert not list((tmp_path / "b" / "gan").glob("*.partial.pt"))
