"""The feature-extractor registry: the loading code of Inception and CLIP on randomly initialised
weight files of the right layout (no real weights can be downloaded here), the errors without
them, and the cache of reference features."""
import json

import pytest
import torch

from l2l import features
from l2l.classifier import Classifier
from l2l.config import TrialConfig
from l2l.errors import ConfigError
from l2l.features import ClassifierFeatures, extract, get_extractor, reference_features


@pytest.fixture(autouse=True)
def no_weights_env(monkeypatch):
    for env in features.WEIGHTS_ENV.values():
        monkeypatch.delenv(env, raising=False)


def _images(n=3, chans=1, seed=0):
    """[n, chans, 32, 32] in [-1, 1]"""
    return torch.rand(n, chans, 32, 32, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_registry_names():
    assert features.EXTRACTORS.names() == ["classifier", "inception", "clip"]
    with pytest.raises(KeyError, match="known: classifier, inception, clip"):
        get_extractor("lpips")


def test_classifier_extractor_maps_signed_images_to_the_classifiers_range():
    torch.manual_seed(0)
    clf = Classifier(10).eval()
    ext = get_extractor("classifier", classifier=clf, classifier_key="k")
    x = _images(4)
    f, lg = ext.embed_and_logits(x)
    assert f.shape == (4, 128) and lg.shape == (4, 10) and ext.dim == 128 and ext.has_logits
    with torch.no_grad():
        assert torch.allclose(f, clf.embed((x + 1) / 2))
    assert ext.identity == "classifier:k"
    assert ClassifierFeatures(clf).identity != ClassifierFeatures(Classifier(10)).identity


@pytest.fixture(scope="module")
def inception_file(tmp_path_factory):
    """torch-fidelity's Inception, randomly initialised (its constructor always loads weights:
    the loading is switched off for this one build), saved as a weights file."""
    from torch_fidelity import feature_extractor_inceptionv3 as fi

    mp = pytest.MonkeyPatch()
    mp.setattr(fi, "load_state_dict_from_url", lambda *a, **k: {})
    mp.setattr(fi.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None)
    torch.manual_seed(0)
    net = fi.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    mp.undo()
    path = tmp_path_factory.mktemp("weights") / "weights-inception-2015-12-05-6726825d.pth"
    torch.save(net.state_dict(), path)
    return path


def test_inception_loads_a_weights_file_and_gives_2048_features_and_logits(inception_file):
    ext = get_extractor("inception", weights=inception_file)
    for chans in (1, 3):
        f, lg = extract(ext, _images(2, chans), batch_size=2)
        assert f.shape == (2, 2048) and lg.shape == (2, 1008) and torch.isfinite(f).all()
    assert ext.identity.startswith("inception:")
    assert get_extractor("inception", weights=inception_file) is ext  # loaded once per process


def test_inception_weights_from_the_environment(inception_file, monkeypatch):
    monkeypatch.setenv("L2L_INCEPTION_WEIGHTS", str(inception_file))
    assert get_extractor("inception").embed(_images(1)).shape == (1, 2048)


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A small open_clip architecture, registered by config file, randomly initialised."""
    import open_clip

    d = tmp_path_factory.mktemp("clip")
    name = "l2l-test-tiny-clip"
    (d / f"{name}.json").write_text(json.dumps({
        "embed_dim": 24,
        "vision_cfg": {"image_size": 48, "layers": 1, "width": 32, "head_width": 16,
                       "patch_size": 16},
        "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 2, "layers": 1},
    }))
    open_clip.add_model_config(d)
    torch.manual_seed(0)
    path = d / "open_clip_pytorch_model.bin"
    torch.save(open_clip.create_model(name).state_dict(), path)
    return name, path


def test_clip_loads_a_weights_file_and_gives_embeddings_without_logits(tiny_clip):
    name, path = tiny_clip
    ext = get_extractor("clip", weights=path, clip_model=name)
    f, lg = extract(ext, _images(3), batch_size=2)  # resized 32 -> 48 px, 3 channels
    assert f.shape == (3, 24) and lg is None and ext.dim == 24 and not ext.has_logits
    assert ext.label == f"clip:{name}"  # what result rows name (the `extractor` column)
    with pytest.raises(ValueError, match="no class logits"):
        ext.logits(_images(1))


def test_clip_with_a_file_of_another_architecture_fails(tiny_clip, inception_file):
    name, _ = tiny_clip
    with pytest.raises(Exception):
        get_extractor("clip", weights=inception_file, clip_model=name)


@pytest.mark.parametrize("name, env", [("inception", "L2L_INCEPTION_WEIGHTS"),
                                       ("clip", "L2L_CLIP_WEIGHTS")])
def test_missing_weights_say_which_file_and_where(name, env, tmp_path, monkeypatch):
    with pytest.raises(ConfigError) as e:
        get_extractor(name)
    msg = str(e.value)
    assert msg.startswith(f"eval.{name}_weights: ") and f"${env}" in msg and "none given" in msg
    assert "\n" not in msg and features.WEIGHTS_HINT[name].split(",")[0] in msg
    missing = tmp_path / "nope.pth"
    with pytest.raises(ConfigError, match=f"not found at eval.{name}_weights = {missing}"):
        get_extractor(name, weights=missing)
    monkeypatch.setenv(env, str(missing))
    with pytest.raises(ConfigError, match=rf"not found at \${env} = "):
        get_extractor(name)


def test_config_checks_the_weights_before_any_work(inception_file, monkeypatch):
    base = {"method": "original", "forget_set": {"classes": [1]}}
    with pytest.raises(ConfigError, match="eval.inception_weights: .*L2L_INCEPTION_WEIGHTS"):
        TrialConfig.from_dict({**base, "eval": {"features": "inception"}})
    with pytest.raises(ConfigError, match="eval.clip_weights: "):
        TrialConfig.from_dict({**base, "eval": {"cosine_features": "clip"}})
    with pytest.raises(ConfigError, match="eval.inception_weights: file not found"):
        TrialConfig.from_dict({**base, "eval": {"inception_weights": "/nope.pth"}})
    with pytest.raises(ConfigError, match="eval.features: unknown value 'vgg'"):
        TrialConfig.from_dict({**base, "eval": {"features": "vgg"}})
    with pytest.raises(ConfigError, match="eval.mia: expected true or false"):
        TrialConfig.from_dict({**base, "eval": {"mia": "yes"}})
    cfg = TrialConfig.from_dict({**base, "eval": {"features": "inception",
                                                  "inception_weights": str(inception_file)}})
    assert cfg.eval.inception_weights == str(inception_file.resolve())
    assert TrialConfig.from_dict(cfg.to_dict()) == cfg
    monkeypatch.setenv("L2L_INCEPTION_WEIGHTS", str(inception_file))
    assert TrialConfig.from_dict({**base, "eval": {"features": "inception"}}).eval.features == \
        "inception"


def test_reference_features_are_computed_once_and_cached(tmp_path, monkeypatch):
    clf = Classifier(10).eval()
    ext = ClassifierFeatures(clf, identity="clf")
    x = _images(5)
    calls = []
    real = ext.embed_and_logits
    monkeypatch.setattr(ext, "embed_and_logits", lambda b: calls.append(len(b)) or real(b))
    f1, lg1, hit1 = reference_features(ext, x, 4, cache_dir=tmp_path, dataset={"dataset": "d"})
    f2, lg2, hit2 = reference_features(ext, x, 4, cache_dir=tmp_path, dataset={"dataset": "d"})
    assert (hit1, hit2) == (False, True) and calls == [4, 1]
    features._MEMO.clear()  # a new process: read from the disk cache
    f3, _, hit3 = reference_features(ext, x, 4, cache_dir=tmp_path, dataset={"dataset": "d"})
    assert hit3 and calls == [4, 1] and torch.equal(f1, f3) and torch.equal(lg1, lg2)
    assert len(list((tmp_path / "features").glob("*/meta.json"))) == 1
    # other images, another extractor: computed anew
    assert not reference_features(ext, _images(5, seed=1), 4, cache_dir=tmp_path)[2]
    assert not reference_features(ClassifierFeatures(clf, identity="other"), x, 4,
                                  cache_dir=tmp_path)[2]
    assert len(calls) == 4
