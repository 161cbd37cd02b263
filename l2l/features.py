"""Feature extractors for evaluation, by name: `get_extractor(name, ...)`.

    classifier  the project's classifier (default): its penultimate layer and class logits;
                trained once per data set and cached (l2l/classifier.py)
    inception   Inception-v3 as FID uses it (torch-fidelity's port of the TF graph,
                weights `weights-inception-2015-12-05-6726825d.pth`): 2048-d pool features,
                1008 logits (IS). Needs a local weights file.
    clip        an open_clip image tower (the paper's CLIP column; it used ViT-H-14): the image
                embedding; no logits. Needs a local weights file.

Every extractor takes images in [-1, 1], [N, C, H, W] (C = 1 or 3; grey images are repeated to
three channels and resized for Inception and CLIP), and offers

    embed(x) -> [N, D]      logits(x) -> [N, K] (IS; `has_logits` says whether there are any)
    identity                a string naming the weights, for cache keys

No weights can be downloaded here: Inception and CLIP read a file given in the config
(`eval.inception_weights`, `eval.clip_weights`) or in $L2L_INCEPTION_WEIGHTS / $L2L_CLIP_WEIGHTS;
without one, `ConfigError` names the file and where it was looked for.

`extract` runs an extractor over many images in batches; `reference_features` does the same for
an evaluation set's original images and caches the result (per data set, extractor and image
content) in the model cache and in memory, so the trials of a sweep compute it once.
"""
from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
import tempfile
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from l2l.fields import file_sha256
from l2l.errors import ConfigError
from l2l.registry import Registry

EXTRACTORS: Registry = Registry("feature extractor")
WEIGHTS_ENV = {"inception": "L2L_INCEPTION_WEIGHTS", "clip": "L2L_CLIP_WEIGHTS"}
WEIGHTS_FIELD = {"inception": "eval.inception_weights", "clip": "eval.clip_weights"}
WEIGHTS_HINT = {
    "inception": "torch-fidelity's FID Inception weights, weights-inception-2015-12-05-6726825d.pth",
    "clip": "an open_clip checkpoint of eval.clip_model (the paper: ViT-H-14, "
            "open_clip_pytorch_model.bin of laion2b_s32b_b79k)",
}
DEFAULT_CLIP_MODEL = "ViT-H-14"
FORMAT = 1  # bump when what a cached reference feature is changes


class Extractor(nn.Module):
    """Base: subclasses implement `_forward(x) -> (embedding [N, D], logits [N, K] or None)`."""

    name = "extractor"
    dim: int
    num_classes: int | None = None
    identity: str = ""

    @property
    def label(self) -> str:
        """What a result row names as the metric's extractor (`extractor` column): the
        registry name, with the architecture where one name covers several (`clip:ViT-H-14`)."""
        return self.name

    @property
    def has_logits(self) -> bool:
        return self.num_classes is not None

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise NotImplementedError

    @torch.no_grad()
    def embed_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x: [N, C, H, W] in [-1, 1] -> ([N, D], [N, K] or None), float32."""
        return self._forward(x)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed_and_logits(x)[0]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        if not self.has_logits:
            raise ValueError(f"feature extractor {self.name!r} has no class logits")
        return self.embed_and_logits(x)[1]


def _rgb(x: torch.Tensor) -> torch.Tensor:
    """[N, 1 or 3, H, W] -> [N, 3, H, W]"""
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


@EXTRACTORS.register("classifier")
class ClassifierFeatures(Extractor):
    """Wraps a classifier with `embed(x) -> [N, D]` and `head` (features -> logits), e.g.
    l2l.classifier.Classifier. `input_range` is the range the classifier was trained on; images
    arrive in [-1, 1] and are mapped to it."""

    name = "classifier"

    def __init__(self, classifier: nn.Module, identity: str = "", input_range=(0.0, 1.0),
                 dim: int | None = None):
        super().__init__()
        self.model = classifier.eval()
        self.lo, self.hi = input_range
        self.dim = dim or getattr(classifier, "num_features", None) or classifier.head.in_features
        self.num_classes = classifier.head.out_features
        self.identity = f"classifier:{identity or state_sha256(classifier)}"

    def _forward(self, x):
        x = (x + 1) / 2 * (self.hi - self.lo) + self.lo
        f = self.model.embed(x)
        return f.float(), self.model.head(f).float()


@EXTRACTORS.register("inception")
class InceptionFeatures(Extractor):
    """Inception-v3 of FID (torch-fidelity's `FeatureExtractorInceptionV3`, which resizes to
    299 px like TF1): 2048-d pool features and the 1008 unbiased logits that IS uses."""

    name = "inception"
    dim = 2048
    num_classes = 1008

    def __init__(self, weights: str | os.PathLike):
        super().__init__()
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        # torch_fidelity unpickles the file in full, which would run any code pickled into it:
        # read it here as tensors only and hand torch_fidelity a re-saved copy of them.
        state = torch.load(weights, map_location="cpu", weights_only=True)
        with tempfile.TemporaryDirectory() as tmp:
            torch.save(state, Path(tmp) / "inception.pth")
            self.net = FeatureExtractorInceptionV3(
                "inception-v3-compat", ["2048", "logits_unbiased"],
                feature_extractor_weights_path=str(Path(tmp) / "inception.pth"))
        self.identity = f"inception:{file_sha256(weights)}"

    def _forward(self, x):
        u8 = ((_rgb(x) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
        feats, logits = self.net(u8)
        return feats.float(), logits.float()


@EXTRACTORS.register("clip")
class ClipFeatures(Extractor):
    """The image tower of an open_clip model built from `model_name`'s config with the weights of
    `weights`; inputs are resized (the model's interpolation) and normalised as it expects."""

    name = "clip"

    def __init__(self, weights: str | os.PathLike, model_name: str = DEFAULT_CLIP_MODEL):
        super().__init__()
        import open_clip

        if model_name not in open_clip.list_models():
            raise ConfigError("eval.clip_model", f"unknown open_clip model {model_name!r}")
        self.net = open_clip.create_model(model_name, pretrained=str(weights),
                                          require_pretrained=True).eval()
        pp = self.net.visual.preprocess_cfg
        size = pp["size"]
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.interpolation = pp.get("interpolation", "bicubic")
        self.register_buffer("mean", torch.tensor(pp["mean"]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(pp["std"]).view(1, 3, 1, 1), persistent=False)
        dim = getattr(self.net.visual, "output_dim", None)
        if dim is None:  # towers without the attribute (timm): one forward pass tells
            with torch.no_grad():
                dim = self.net.encode_image(torch.zeros(1, 3, *self.size)).shape[1]
        self.dim = int(dim)
        self.model_name = model_name
        self.identity = f"clip:{model_name}:{file_sha256(weights)}"

    @property
    def label(self) -> str:
        return f"clip:{self.model_name}"

    def _forward(self, x):
        x = _rgb((x + 1) / 2)
        if tuple(x.shape[-2:]) != self.size:
            x = nn.functional.interpolate(x, size=self.size, mode=self.interpolation,
                                          align_corners=False).clamp(0, 1)
        return self.net.encode_image((x - self.mean) / self.std).float(), None


def weights_path(name: str, given: str | os.PathLike | None = None) -> Path:
    """The weights file of `name` (inception, clip): `given` (the config field), else the
    environment variable. ConfigError, naming the file and where it was looked for, if neither
    points at a file."""
    field, env = WEIGHTS_FIELD[name], WEIGHTS_ENV[name]
    if given:
        where = f"{field} = {given}"
        path = Path(given).expanduser()
    elif os.environ.get(env):
        where = f"${env} = {os.environ[env]}"
        path = Path(os.environ[env]).expanduser()
    else:
        raise ConfigError(field, f"features {name!r} need a local weights file ({WEIGHTS_HINT[name]}); "
                                 f"none given: set {field} or ${env}")
    if not path.is_file():
        raise ConfigError(field, f"features {name!r} need a local weights file ({WEIGHTS_HINT[name]}); "
                                 f"not found at {where}")
    return path.resolve()


def get_extractor(name: str, *, weights: str | os.PathLike | None = None,
                  classifier: nn.Module | None = None, classifier_key: str = "",
                  clip_model: str = DEFAULT_CLIP_MODEL, device="cpu") -> Extractor:
    """An extractor of the registry in eval mode on `device`. `classifier` (with its cache key
    `classifier_key`) is needed for `classifier`; `weights` (else the environment variable) for
    `inception` and `clip`."""
    cls = EXTRACTORS.get(name)
    if name == "classifier":
        if classifier is None:
            raise ValueError("the classifier extractor needs the trained classifier")
        return cls(classifier, identity=classifier_key).to(device).eval()
    path = weights_path(name, weights)
    st = path.stat()
    key = (name, str(path), st.st_size, st.st_mtime_ns, clip_model, str(device))
    if key not in _LOADED:  # large models: load once per process, not once per trial
        ext = cls(path, model_name=clip_model) if name == "clip" else cls(path)
        _LOADED[key] = ext.to(device).eval()
    return _LOADED[key]


_LOADED: dict[tuple, Extractor] = {}


@torch.no_grad()
def extract(extractor: Extractor, x: torch.Tensor, batch_size: int = 256, device="cpu",
            ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Embeddings [N, D] and logits [N, K] (or None) of all of x ([N, C, H, W] in [-1, 1]), on
    the CPU, computed `batch_size` images at a time on `device`."""
    feats, logits = [], []
    for i in range(0, len(x), batch_size):
        f, lg = extractor.embed_and_logits(x[i:i + batch_size].to(device))
        feats.append(f.cpu())
        if lg is not None:
            logits.append(lg.cpu())
    return torch.cat(feats), (torch.cat(logits) if logits else None)


def state_sha256(module: nn.Module) -> str:
    """SHA-256 (16 hex digits) of a module's state dict: identifies weights given without a key."""
    h = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        h.update(k.encode())
        h.update(tensor_sha256(v).encode())
    return h.hexdigest()[:16]


def tensor_sha256(x: torch.Tensor) -> str:
    """SHA-256 (16 hex digits) of a tensor's dtype, shape and values."""
    h = hashlib.sha256(f"{x.dtype}{tuple(x.shape)}".encode())
    h.update(x.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


# In-process memo of cached tensors, least recently used first. Bounded, because a warm Ray
# worker runs trial after trial: without a bound it would keep every evaluation set's features.
_MEMO: OrderedDict[str, dict[str, torch.Tensor]] = OrderedDict()
MEMO_MAX_BYTES = 256 * 2**20


def _nbytes(state: dict[str, torch.Tensor]) -> int:
    return sum(t.element_size() * t.nelement() for t in state.values())


def _remember(key: str, state: dict[str, torch.Tensor]) -> None:
    _MEMO[key] = state
    _MEMO.move_to_end(key)
    total = sum(_nbytes(v) for v in _MEMO.values())
    while total > MEMO_MAX_BYTES and len(_MEMO) > 1:
        _, dropped = _MEMO.popitem(last=False)
        total -= _nbytes(dropped)


def cached_tensors(cache_dir, kind: str, key: dict, build: Callable[[], dict[str, torch.Tensor]],
                   ) -> tuple[dict[str, torch.Tensor], bool]:
    """Tensors cached under `key` in this process and (when `cache_dir` is given) in the model
    cache (l2l/cache.py), built once. Returns (tensors, hit)."""
    from l2l import cache
    from l2l.cache import content_hash

    memo_key = f"{kind}/{content_hash(key)}"
    if memo_key in _MEMO:
        _MEMO.move_to_end(memo_key)
        return _MEMO[memo_key], True
    if cache_dir is None:
        state, hit = build(), False
    else:
        state, info = cache.get_or_build(cache_dir, kind, key, lambda: (build(), {}))
        hit = info.hit
    _remember(memo_key, state)
    return state, hit


def reference_features(extractor: Extractor, x: torch.Tensor, batch_size: int = 256,
                       device="cpu", cache_dir=None, dataset: dict | None = None,
                       ) -> tuple[torch.Tensor, torch.Tensor | None, bool]:
    """`extract` for the original images of an evaluation set, cached per (data set, extractor,
    image content). Returns (embeddings, logits or None, hit)."""
    key = {"format": FORMAT, **(dataset or {}), "extractor": extractor.identity,
           "images": tensor_sha256(x)}

    def build():
        f, lg = extract(extractor, x, batch_size, device)
        return {"embedding": f} if lg is None else {"embedding": f, "logits": lg}

    state, hit = cached_tensors(cache_dir, "features", key, build)
    return state["embedding"], state.get("logits"), hit
