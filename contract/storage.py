"""Where results, Tune state, artifacts and cached models live: a local path or a URI.

`locate("results")`, `locate("s3://bucket/sweeps/results")`: a `Location` (a pyarrow file
system and a path in it) with the few operations the project needs, the same on a local disk
and on object storage. URIs resolve through pyarrow.fs (s3, gs, hdfs, abfs, file), then
through fsspec for the schemes only it knows. S3 credentials and endpoint come from the usual
AWS variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL for an
S3-compatible server such as MinIO), or from query parameters of the URI
(`s3://bucket/x?endpoint_override=host:9000&scheme=http`).

Writes are atomic on both: a local file is written under a temporary name no reader globs and
renamed; an object store makes an object visible only once its upload completes (one put, or
a multipart upload that is completed on close), so a reader sees the whole file or none of it.
Torch-free and Ray-free: the library, the sweep layer and the analysis all use it.
"""
from __future__ import annotations

import os
import re
import tempfile
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterable, Iterator
import pyarrow as pa
import pyarrow.fs as pafs

from contract.inputs import is_uri

# How long a store may take to answer the first question asked of it: a client without
# credentials may otherwise wait minutes (Google Cloud's asks a metadata server that is not
# there), and a command would hang instead of saying what is wrong.
PROBE_SECONDS = 20.0
# What a file system raises: OSError (pyarrow's I/O errors are OSErrors) and pyarrow's other
# errors (an Azure client without credentials raises a plain ArrowException)
STORE_ERRORS = (OSError, pa.ArrowException)


# Schemes refused up front, with the reason. Azure: pyarrow's client aborts the whole process
# (an uncaught C++ exception in a thread of its own) when it finds no credentials, which no
# error line can report. Web servers: not stores one can write to.
_AZURE = ("pyarrow's Azure client aborts the process when it finds no credentials, and it is "
          "untested here; use an S3-compatible endpoint")
_WEB = "a web server is not a store one can write to; give s3://, gs:// or a path"
REFUSED = {"abfs": _AZURE, "abfss": _AZURE, "az": _AZURE, "adl": _AZURE,
           "http": _WEB, "https": _WEB, "ftp": _WEB}


class StorageError(ValueError):
    """A location that cannot be used; the message names it and says why."""


def _from_fsspec(uri: str) -> tuple[pafs.FileSystem, str]:
    import fsspec

    fs, path = fsspec.core.url_to_fs(uri)
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), path


@dataclass(frozen=True)
class Location:
    """A file or directory: `fs` and `path` in it; `uri` is how it is recorded (the absolute
    path of a local one, `scheme://...` of a remote one); `str()` shows it as it was given
    (a relative path stays relative in messages)."""

    fs: pafs.FileSystem
    path: str
    uri: str
    label: str = ""

    # ------------------------------------------------------------------------------ naming
    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, pafs.LocalFileSystem)

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name

    @property
    def parent(self) -> "Location":
        label = str(PurePosixPath(self.label).parent) if self.label else ""
        return Location(self.fs, str(PurePosixPath(self.path).parent), _parent_uri(self.uri),
                        label)

    def __truediv__(self, name: str) -> "Location":
        name = str(name).strip("/")
        uri, sep, query = self.uri.partition("?")
        return Location(self.fs, f"{self.path.rstrip('/')}/{name}",
                        f"{uri.rstrip('/')}/{name}{sep}{query}",
                        f"{self.label.rstrip('/')}/{name}" if self.label else "")

    def beside(self, suffix: str) -> "Location":
        """`<dir>/<name>-<suffix>`: a sibling, never inside this one."""
        return self.parent / f"{self.name}-{suffix}"

    def as_path(self) -> Path:
        """The local path; a remote location has none."""
        if not self.is_local:
            raise StorageError(f"{self.uri}: a local path is needed here")
        return Path(self.path)

    def __str__(self) -> str:
        return self.label or self.uri

    # ------------------------------------------------------------------------------ reading
    def _type(self) -> pafs.FileType:
        return self.fs.get_file_info(self.path).type

    def exists(self) -> bool:
        return self._type() != pafs.FileType.NotFound

    def is_dir(self) -> bool:
        return self._type() == pafs.FileType.Directory

    def is_file(self) -> bool:
        return self._type() == pafs.FileType.File

    def read_bytes(self, limit: int | None = None) -> bytes:
        """The file's bytes; more than `limit` is a StorageError (read no further)."""
        with self.fs.open_input_stream(self.path) as f:
            data = f.read() if limit is None else f.read(limit + 1)
        if limit is not None and len(data) > limit:
            raise StorageError(f"{self.uri}: larger than {limit} bytes")
        return data

    def files(self, suffix: str = "", recursive: bool = False) -> list["Location"]:
        """Files directly in (or, recursive, under) this directory whose names end with
        `suffix`, sorted; hidden files (a leading '.': temporaries) are left out. A missing
        directory has none."""
        sel = pafs.FileSelector(self.path, allow_not_found=True, recursive=recursive)
        out = []
        for info in self.fs.get_file_info(sel):
            rel = info.path[len(self.path.rstrip("/")) + 1:]
            if info.type == pafs.FileType.File and info.base_name.endswith(suffix) \
                    and not any(p.startswith(".") for p in rel.split("/")):
                out.append(self / rel)
        return sorted(out, key=lambda loc: loc.path)

    def dirs(self) -> list["Location"]:
        sel = pafs.FileSelector(self.path, allow_not_found=True)
        return sorted((self / i.base_name for i in self.fs.get_file_info(sel)
                       if i.type == pafs.FileType.Directory), key=lambda loc: loc.path)

    def download(self, dest: Path) -> Path:
        """Copies this file, or this directory's files, to the local `dest`."""
        if self.is_local and Path(self.path) == Path(dest):
            return dest
        if self.is_file():
            dest.parent.mkdir(parents=True, exist_ok=True)
            pafs.copy_files(self.path, str(dest), source_filesystem=self.fs,
                            destination_filesystem=pafs.LocalFileSystem())
        elif self.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
            pafs.copy_files(self.path, str(dest), source_filesystem=self.fs,
                            destination_filesystem=pafs.LocalFileSystem())
        return dest

    # ------------------------------------------------------------------------------ writing
    def mkdir(self) -> None:
        self.fs.create_dir(self.path, recursive=True)

    def write_bytes(self, data: bytes) -> "Location":
        """Writes the whole file atomically (see the module's docstring); an error leaves no
        file and no temporary behind."""
        if self.is_local:
            target = Path(self.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.tmp")
            try:
                tmp.write_bytes(data)
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
        else:  # one stream written in one go: the object appears when it is closed
            self.fs.create_dir(str(PurePosixPath(self.path).parent), recursive=True)
            with self.fs.open_output_stream(self.path) as out:
                out.write(data)
        return self

    def write_text(self, text: str) -> "Location":
        return self.write_bytes(text.encode())

    def upload(self, src: Path) -> "Location":
        """Copies the local file or directory `src` here (each file atomically, as written
        by `write_bytes`); a local location that is `src` itself is left alone."""
        src = Path(src)
        if self.is_local and Path(self.path).resolve() == src.resolve():
            return self
        if src.is_dir():
            for f in sorted(p for p in src.rglob("*") if p.is_file()):
                (self / f.relative_to(src).as_posix()).write_bytes(f.read_bytes())
        else:
            self.write_bytes(src.read_bytes())
        return self

    def delete(self) -> None:
        t = self._type()
        if t == pafs.FileType.Directory:
            self.fs.delete_dir(self.path)
        elif t == pafs.FileType.File:
            self.fs.delete_file(self.path)


def read_text(loc: Location, what: str, max_bytes: int | None = None) -> str:
    """contract/inputs.py `read_text` for a location: a local file through it (FIFOs and
    devices refused before they are opened), a remote one read at most `max_bytes` and checked
    the same way. Raises InputError."""
    from contract.inputs import MAX_BYTES, InputError, decode_text, one_line
    from contract.inputs import read_text as read_local

    limit = MAX_BYTES if max_bytes is None else max_bytes
    if loc.is_local:
        return read_local(loc.path, what, limit)
    try:
        if probe(loc, what) != pafs.FileType.File:
            raise InputError(f"{what}: file not found: {loc.uri}")
        data = loc.read_bytes(limit=limit)
    except StorageError as e:
        raise InputError(one_line(str(e))) from None
    except STORE_ERRORS as e:
        raise InputError(f"{what}: cannot read {loc.uri}: {one_line(str(e))}") from None
    return decode_text(data, what, loc.uri, limit)


def _parent_uri(uri: str) -> str:
    base, sep, query = uri.partition("?")
    head, _, tail = base.rstrip("/").rpartition("/")
    if is_uri(base) and "/" not in base.split("://", 1)[1].rstrip("/"):
        return uri  # a bucket: its own parent
    return f"{head}{sep}{query}" if head and not head.endswith(":/") else uri


def locate(where: str | os.PathLike | Location, field: str = "path") -> Location:
    """The location of a local path or a URI. An empty string, an unknown scheme or a URI
    that names no bucket is a StorageError naming `field`."""
    if isinstance(where, Location):
        return where
    text = os.fspath(where)
    if not text.strip():
        raise StorageError(f"{field}: must not be empty")
    if not is_uri(text):
        p = Path(text).expanduser().resolve()
        return Location(pafs.LocalFileSystem(), str(p), str(p), text)
    scheme = text.split("://", 1)[0].lower()
    if scheme in REFUSED:
        raise StorageError(f"{field}: {scheme}:// is not supported: {REFUSED[scheme]}")
    if scheme == "file":
        return locate(text.split("://", 1)[1] or "/", field)
    try:
        fs, path = pafs.FileSystem.from_uri(text)
    except Exception as e:  # pyarrow: unknown scheme -> fsspec, which knows more
        try:
            fs, path = _from_fsspec(text)
        except Exception:
            raise StorageError(f"{field}: cannot open {text!r} ({_first_line(e)}); expected "
                               "a local path or a URI such as s3://bucket/dir") from None
    if not path.strip("/"):
        raise StorageError(f"{field}: {text!r} names no bucket or directory")
    base, sep, query = text.partition("?")
    return Location(fs, path.rstrip("/"), base.rstrip("/") + sep + query)


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:200]


def probe(loc: Location, field: str, seconds: float = PROBE_SECONDS) -> pafs.FileType:
    """What is at `loc` (a FileType), asked with a deadline: a store that does not answer in
    `seconds`, or answers with an error, is a StorageError naming `field`."""
    if loc.is_local:
        return loc._type()
    box: dict = {}

    def ask():
        try:
            box["type"] = loc._type()
        except BaseException as e:  # handed to the caller's thread
            box["error"] = e

    t = threading.Thread(target=ask, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        raise StorageError(f"{field}: no answer from {loc.uri} within {seconds:g} s (check "
                           "the endpoint and the credentials, e.g. AWS_ENDPOINT_URL and "
                           "AWS_ACCESS_KEY_ID)")
    if "error" in box:
        raise StorageError(f"{field}: cannot reach {loc.uri} "
                           f"({_first_line(box['error'])})") from None
    return box["type"]


def check_writable(loc: Location, field: str) -> None:
    """Refuses, before any work, a location that cannot be written: a local one whose nearest
    existing ancestor is not a writable directory, a remote one whose bucket cannot be
    reached or does not exist. Creates nothing."""
    if loc.is_local:
        p = Path(loc.path)
        while not p.exists():
            p = p.parent
        if not p.is_dir() or not os.access(p, os.W_OK):
            raise StorageError(f"{field}: {loc} is not a writable directory")
        return
    bucket = loc.path.split("/", 1)[0]
    if probe(Location(loc.fs, bucket, loc.uri), field) != pafs.FileType.Directory:
        raise StorageError(f"{field}: {loc.uri}: bucket {bucket!r} does not exist")
    if probe(loc, field) == pafs.FileType.File:
        raise StorageError(f"{field}: {loc.uri} is a file, not a directory")


@contextmanager
def local_copies(files: Iterable[str | os.PathLike]) -> Iterator[list[Path]]:
    """Local paths of files given as paths or URIs: a local file as it is, a remote one copied
    into a temporary directory that is removed afterwards. Missing files are left out."""
    with tempfile.TemporaryDirectory(prefix="l2l-fetch-") as tmp:
        out = []
        for i, f in enumerate(files):
            loc = locate(f)
            if not loc.is_file():
                continue
            out.append(Path(loc.path) if loc.is_local
                       else loc.download(Path(tmp) / str(i) / loc.name))
        yield out


@contextmanager
def staging(loc: Location) -> Iterator[Path]:
    """A local directory for files that belong at `loc`: `loc` itself when it is local, else a
    temporary directory whose files are uploaded to `loc` when the block ends without an
    error."""
    if loc.is_local:
        yield Path(loc.path)
        return
    with tempfile.TemporaryDirectory(prefix="l2l-stage-") as tmp:
        yield Path(tmp)
        loc.upload(Path(tmp))
