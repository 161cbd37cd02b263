"""Which configuration identifies a trial, versioned.

A trial's identity is the SHA-256 (16 hex digits) of the JSON of its *identity fields*: the
settings that change its results. Where things run (device, data and cache paths), what is only
displayed (sample-grid size) and where a file lives (weights and image-folder paths, replaced by
what they hold) are not part of it, so a sweep moved to another machine or node keeps its trial
ids. Which fields count is declared on the config classes (l2l/fields.py, `role=`); this module
owns the version and the hash.

  version 1  (schema versions 1 and 2) every config field but device, data_root, cache_dir,
             paths as written: `l2l.fields.legacy_identity`
  version 2  (schema version 3) identity fields only: `l2l.fields.identity`

Sweeps record the version their trial ids were made with (sweep.json) and keep it on resume,
so a sweep started before version 2 resumes under its old ids.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

IDENTITY_VERSION = 2
KNOWN_VERSIONS = (1, 2)


def stable_hash(obj: Any) -> str:
    """Stable SHA-256 (16 hex digits) of a JSON-able object; key order does not matter. Trial
    identities and cache keys both use it."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


identity_hash = stable_hash  # a trial's identity is the stable hash of its identity fields
