"""A content-addressed disk cache for trained models shared by many trials.

Layout: <root>/<kind>/<key>/{model.pt, meta.json}, key = hash of everything that determines the
entry. An entry is built in a temporary directory and renamed into place, so a reader never sees
half of one; an exclusive file lock per key makes concurrent trials (processes, or Ray workers on
one machine or a shared POSIX file system) build it once while the others wait and then read it.
`meta.json` records the SHA-256 of the weights; a mismatch marks the entry corrupt and it is rebuilt.

The cache may also be a URI (`s3://bucket/cache`, anything contract/storage.py opens): the
nodes of a cluster without a shared file system then share it through object storage. Each
node keeps a local copy (`<local cache>/remote/<hash of the URI>/`, the same layout) and
reads an entry from the store when its copy lacks one; an entry it builds is uploaded weights
first and meta.json last, so a reader that finds meta.json finds whole weights (and checks
their hash). The lock is per node there: two nodes may build the same entry at once, which
costs time but not correctness (the key determines the entry).
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import torch

from contract.identity import stable_hash as content_hash
from contract.inputs import is_uri

if TYPE_CHECKING:
    from contract.storage import Location

log = logging.getLogger("l2l.cache")
CACHE_ENV = "L2L_CACHE_DIR"
WEIGHTS = "model.pt"
META = "meta.json"


def _local_default() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "l2l"


def default_cache_dir() -> str | Path:
    """$L2L_CACHE_DIR (a path or a URI), else ~/.cache/l2l."""
    if os.environ.get(CACHE_ENV):
        text = os.environ[CACHE_ENV]
        return text if is_uri(text) else Path(text)
    return _local_default()


@dataclass(frozen=True)
class CacheRoot:
    """Where entries live: a local directory and, for a cache on object storage, the store
    that the local directory mirrors."""

    local: Path
    remote: Location | None = None

    def __str__(self) -> str:
        return str(self.remote or self.local)


def open_cache(where: str | os.PathLike | CacheRoot | None = None) -> CacheRoot:
    """The cache at a path or URI (default: `default_cache_dir()`)."""
    if isinstance(where, CacheRoot):
        return where
    where = default_cache_dir() if where is None else where
    if not is_uri(os.fspath(where)):  # a local cache needs no file-system layer (nor pyarrow)
        return CacheRoot(Path(where))
    from contract.storage import locate

    loc = locate(where, "cache_dir")
    if loc.is_local:
        return CacheRoot(Path(loc.path))
    return CacheRoot(_local_default() / "remote" / content_hash({"uri": loc.uri})[:16], loc)


@dataclass(frozen=True)
class CacheHit:
    """How an entry was obtained: `hit` True when read from disk, False when built now."""

    kind: str
    key: str
    path: Path
    hit: bool
    seconds: float  # building or reading, whichever happened
    meta: dict[str, Any]


def cache_info(hit: CacheHit) -> dict[str, Any]:
    """What a trial result records of one cache access (TrialResult.caches, GanTrialResult's)."""
    return {"hit": hit.hit, "key": hit.key, "path": str(hit.path), "seconds": round(hit.seconds, 2)}


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


@contextmanager
def _locked(lock_path: Path):
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _read(entry: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """The entry's state dict and meta, or None when it is missing or corrupt."""
    try:
        meta = json.loads((entry / META).read_text())
        if sha256_file(entry / WEIGHTS) != meta["sha256"]:
            log.warning("cache entry %s is corrupt (weights hash mismatch); rebuilding", entry)
            return None
        return torch.load(entry / WEIGHTS, map_location="cpu", weights_only=True), meta
    except FileNotFoundError:
        return None
    except Exception as e:  # truncated JSON, unreadable pickle: rebuild rather than fail
        log.warning("cache entry %s is unreadable (%s); rebuilding", entry, e)
        return None


def partial_path(root: str | os.PathLike | CacheRoot, kind: str, key_obj: dict[str, Any]) -> Path:
    """Where the build of an entry keeps its progress (l2l/checkpoint.py): beside the entry,
    on local disk (for a cache on object storage, in its local copy)."""
    return open_cache(root).local / kind / f"{content_hash(key_obj)}.partial.pt"


def get_or_build(root: str | os.PathLike | CacheRoot, kind: str, key_obj: dict[str, Any],
                 build: Callable[[], tuple[dict[str, torch.Tensor], dict[str, Any]]],
                 ) -> tuple[dict[str, torch.Tensor], CacheHit]:
    """Returns the state dict cached under hash(key_obj), calling `build()` -> (state, info) only
    when no valid entry exists. `info` (JSON-able) is stored in meta.json."""
    cache = open_cache(root)
    key = content_hash(key_obj)
    entry = cache.local / kind / key
    remote = cache.remote / kind / key if cache.remote else None
    t0 = time.perf_counter()
    found = _read(entry)  # fast path without the lock: entries appear only by atomic rename
    if found is None:
        with _locked(cache.local / kind / f"{key}.lock"):
            found = _read(entry)  # another process may have built it while we waited
            if found is None and remote is not None and _fetch(remote, entry):
                found = _read(entry)
            if found is None:
                state, info = build()
                _write(entry, state, {"kind": kind, "key": key, "config": key_obj, **info})
                if remote is not None:
                    _publish(entry, remote)
                return state, CacheHit(kind, key, entry, False, time.perf_counter() - t0,
                                       json.loads((entry / META).read_text()))
    state, meta = found
    return state, CacheHit(kind, key, entry, True, time.perf_counter() - t0, meta)


def _write(entry: Path, state: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
    try:
        torch.save({k: v.detach().cpu() for k, v in state.items()}, tmp / WEIGHTS)
        meta = {**meta, "sha256": sha256_file(tmp / WEIGHTS), "created": time.time()}
        (tmp / META).write_text(json.dumps(meta, indent=1, sort_keys=True, default=str))
        if entry.exists():  # a corrupt entry being replaced; we hold the lock
            shutil.rmtree(entry)
        os.rename(tmp, entry)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _fetch(remote: Location, entry: Path) -> bool:
    """Copies an entry from object storage into the local cache (whole, by a rename); False
    when the store has none (no meta.json: none, or one still being uploaded)."""
    if not (remote / META).is_file():
        return False
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
    try:
        (remote / META).download(tmp / META)
        (remote / WEIGHTS).download(tmp / WEIGHTS)
        if _read(tmp) is None:  # a hash mismatch: build it here instead
            return False
        if entry.exists():
            shutil.rmtree(entry)
        os.rename(tmp, entry)
        log.info("cache entry %s read from %s", entry.name, remote.uri)
        return True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _publish(entry: Path, remote: Location) -> None:
    """Uploads a local entry: the weights, then meta.json, which marks it complete."""
    (remote / WEIGHTS).upload(entry / WEIGHTS)
    (remote / META).upload(entry / META)
