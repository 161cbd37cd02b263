"""A content-addressed disk cache for trained models shared by many trials.

Layout: <root>/<kind>/<key>/{model.pt, meta.json}, key = hash of everything that determines the
entry. An entry is built in a temporary directory and renamed into place, so a reader never sees
half of one; an exclusive file lock per key makes concurrent trials (processes, or Ray workers on
one machine or a shared POSIX file system) build it once while the others wait and then read it.
`meta.json` records the SHA-256 of the weights; a mismatch marks the entry corrupt and it is rebuilt.
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
from typing import Any, Callable

import torch

from contract.identity import stable_hash as content_hash

log = logging.getLogger("l2l.cache")
CACHE_ENV = "L2L_CACHE_DIR"
WEIGHTS = "model.pt"
META = "meta.json"


def default_cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "l2l"


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


def get_or_build(root: str | os.PathLike, kind: str, key_obj: dict[str, Any],
                 build: Callable[[], tuple[dict[str, torch.Tensor], dict[str, Any]]],
                 ) -> tuple[dict[str, torch.Tensor], CacheHit]:
    """Returns the state dict cached under hash(key_obj), calling `build()` -> (state, info) only
    when no valid entry exists. `info` (JSON-able) is stored in meta.json."""
    root = Path(root)
    key = content_hash(key_obj)
    entry = root / kind / key
    t0 = time.perf_counter()
    found = _read(entry)  # fast path without the lock: entries appear only by atomic rename
    if found is None:
        with _locked(root / kind / f"{key}.lock"):
            found = _read(entry)  # another process may have built it while we waited
            if found is None:
                state, info = build()
                _write(entry, state, {"kind": kind, "key": key, "config": key_obj, **info})
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
