"""What each config field is, declared once on the field, and what follows from it: a trial's
identity (its hash), the config columns of its result rows and the runtime fields a sweep sets.

    alpha: float | None = spec(column="alpha")       # identifies the trial; a result column
    grid_images: int = spec(role="display")          # changes no number: not in the identity
    device: str = spec(role="runtime")               # where it runs: not in the identity
    inception_weights: str | None = spec(role="file")  # identified by the file's content

Roles:
  identity  (default) changes the results, so it is part of the trial's identity
  display   changes only what is shown or saved (sample grids), not a number
  runtime   where the trial runs and finds things (device, data and cache paths)
  file      a path to a file whose content is what matters: the identity holds its SHA-256
  location  a path to data identified by other fields (an image folder's root)
`column=` names the result column (contract/schema.py CONFIG) the field fills; `param=True`
puts it into the `params` JSON column (method settings without a column of their own). Every
other identity field goes into the `settings` JSON column by its dotted path (pretraining,
unlearning and evaluation settings), so that rows of different settings are never taken for
replicates of one, unless a derived column already holds it (`Config.derived_fields`).
`since=2` marks a field added after identity version 1: version-1 ids leave it out while it has
its default, so sweeps started before keep their trial ids. `since=3` marks a field added after
version 2 was in use: both versions leave it out while it has its default (and so does the
`settings` column), so no existing trial id or row changes.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from abc import ABC, abstractmethod
from typing import Any

from contract.identity import IDENTITY_VERSION, KNOWN_VERSIONS, identity_hash

ROLES = ("identity", "display", "runtime", "file", "location")


def spec(default: Any = dataclasses.MISSING, *, role: str = "identity", column: str | None = None,
         param: bool = False, default_factory: Any = dataclasses.MISSING, since: int = 1,
         legacy: Any = dataclasses.MISSING):
    """A dataclass field with its role, result column and params flag (see the module doc).
    `since`: the identity version the field was added in; older identities leave it out while
    it has its default or `legacy`, the value that gives the behaviour every trial before it
    had (random_masks: 0.0, the task's masks, before the paper's random masks became the
    default). So their trial ids stay."""
    if role not in ROLES:
        raise ValueError(f"role: unknown value {role!r} (allowed: {', '.join(ROLES)})")
    meta = {"role": role, "column": column, "param": param, "since": since,
            "legacy": default if legacy is dataclasses.MISSING else legacy}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _role(f: dataclasses.Field) -> str:
    return f.metadata.get("role", "identity")


def walk(obj: Any, prefix: str = ""):
    """(dotted path, value, field) of every leaf field of a (nested) config dataclass."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        path = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value):
            yield from walk(value, f"{path}.")
        else:
            yield path, value, f


def _plain(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


_FILE_HASHES: dict[tuple, str] = {}


def file_sha256(path: str) -> str:
    """SHA-256 (16 hex digits) of a file's content, memoised per (path, size, mtime)."""
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_size, st.st_mtime_ns)
    if key not in _FILE_HASHES:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        _FILE_HASHES[key] = h.hexdigest()[:16]
    return _FILE_HASHES[key]


def identity(cfg: Any) -> dict[str, Any]:
    """The identity fields of a config (version 2), flat by dotted path, with its family."""
    out: dict[str, Any] = {"family": cfg.family}
    for path, value, f in walk(cfg):
        role = _role(f)
        if _unset_later_field(f, value):
            continue
        if role == "identity":
            out[path] = _plain(value)
        elif role == "file" and value is not None:
            out[path] = {"sha256": file_sha256(value)}
    return out


def _unset_later_field(f: dataclasses.Field, value: Any) -> bool:
    """A field added after identity version 2 (`since=3`) that has its default: no id or
    settings column holds it."""
    return f.metadata.get("since", 1) > 2 and value in (f.default, f.metadata.get("legacy"))


def legacy_identity(cfg: Any) -> dict[str, Any]:
    """Identity version 1: the config's dict without its runtime fields, paths as written, and
    without the fields added later while they have their defaults."""
    d = cfg.to_dict()
    for path, value, f in walk(cfg):
        if _role(f) == "runtime":
            d.pop(path, None)
        elif f.metadata.get("since", 1) > 1 and value in (f.default, f.metadata.get("legacy")):
            *parents, leaf = path.split(".")
            node = d
            for p in parents:
                node = node.get(p) if isinstance(node, dict) else None
            if isinstance(node, dict):
                node.pop(leaf, None)
    return d


class Config(ABC):
    """What every family's frozen trial config shares; subclasses are dataclasses that set
    `family` and implement `to_dict`, `derived_columns` and `describe`."""

    family: str = ""
    # (dotted field, value): the field that picks a trial's evaluation images and the value
    # that keeps test images out of choosing settings (a sweep search sets it, and refuses any
    # other). None: the family has no validation split (its searches choose on what it has).
    selection_split: tuple[str, str] | None = None

    def identity_hash(self, version: int = IDENTITY_VERSION) -> str:
        if version not in KNOWN_VERSIONS:
            raise ValueError(f"identity version {version} unknown (known: {KNOWN_VERSIONS})")
        return identity_hash(identity(self) if version == 2 else legacy_identity(self))

    @property
    def config_hash(self) -> str:
        return self.identity_hash(IDENTITY_VERSION)

    # identity fields that a derived column (derived_columns) already holds: not in `settings`
    derived_fields: tuple[str, ...] = ()

    def columns(self, identity_version: int = IDENTITY_VERSION) -> dict[str, Any]:
        """The config columns of a result row (contract/schema.py CONFIG), from the fields'
        `column` and `param` declarations, the family's derived columns, and `settings`: every
        other identity field by its dotted path."""
        out: dict[str, Any] = {}
        params: dict[str, Any] = {}
        settings: dict[str, Any] = {}
        for path, value, f in walk(self):
            if f.metadata.get("column"):
                out[f.metadata["column"]] = value
            elif f.metadata.get("param"):
                if value is not None:
                    params[path.rsplit(".", 1)[-1]] = value
            elif _role(f) == "identity" and path not in self.derived_fields \
                    and not _unset_later_field(f, value):
                settings[path] = _plain(value)
        out.update(self.derived_columns())
        out["params"] = json.dumps(params, sort_keys=True)
        out["settings"] = json.dumps(settings, sort_keys=True)
        out["family"] = self.family
        out["config_hash"] = self.identity_hash(identity_version)
        out["identity_version"] = identity_version
        return out

    def with_runtime(self, **values: Any):
        """A copy with runtime fields (device, data_root, cache_dir) replaced."""
        runtime = {f.name for f in dataclasses.fields(self) if _role(f) == "runtime"}
        bad = sorted(set(values) - runtime)
        if bad:
            raise KeyError(f"not runtime fields: {', '.join(bad)} (runtime: {sorted(runtime)})")
        return dataclasses.replace(self, **values)

    def check_data(self) -> None:
        """Raises DataNotFoundError (one line naming the files expected) when the trial's data
        set needs files that are not there; cheap and torch-free, so a sweep checks every
        data root before it starts. Families whose data are found (or fetched) at run time
        check nothing here."""

    @abstractmethod
    def derived_columns(self) -> dict[str, Any]:
        """Config columns computed from several fields (forget_set as JSON, forget_k, ...)."""

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """A dict that the family's parser turns back into this config."""

    @abstractmethod
    def describe(self) -> str:
        """One line for listings: generator, method, its settings, forget set, seed."""
