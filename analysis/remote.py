"""A results root on object storage (`--results s3://bucket/results`), read from a local copy.

The analysis reads Parquet with DuckDB, which reaches object stores only through extensions it
downloads; so a remote root's files (and, for figures and reports, its artifacts) are copied
once into a temporary directory with pyarrow.fs, read there like a local root, and the outputs
written beside the local copy are uploaded beside the remote root (`<root>-tables/`, ...), one
object at a time, each whole. Messages name the remote locations, never the temporary copy.
"""
from __future__ import annotations

import atexit
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from contract.schema import beside
from pyarrow.fs import FileType

from contract.storage import STORE_ERRORS, Location, StorageError, locate, probe

OUTPUTS = ("tables", "figures", "report")  # what the commands write beside the root


@dataclass(frozen=True)
class Root:
    local: Path  # where the commands read (and, by default, write beside)
    remote: Location | None = None  # the root on object storage that `local` copies

    def show(self, text) -> str:
        """`text` with the temporary copy's directory replaced by the remote one's URI."""
        text = str(text)
        if self.remote is None:
            return text
        return text.replace(str(self.local.parent), self.remote.parent.uri)

    def publish(self) -> None:
        """Uploads the outputs written beside the local copy to beside the remote root."""
        if self.remote is None:
            return
        for what in OUTPUTS:
            done = beside(self.local, what)
            if done.is_dir():
                beside(self.remote, what).upload(done)


def open_root(text: str, artifacts: bool) -> Root:
    """The root at a path or URI; a remote one is copied (its artifacts too when asked)."""
    from analysis.load import AnalysisError

    try:
        loc = locate(text, "--results")
    except StorageError as e:
        raise AnalysisError(str(e)) from None
    if loc.is_local:
        return Root(Path(text))
    tmp = Path(tempfile.mkdtemp(prefix="l2l-analysis-"))
    atexit.register(shutil.rmtree, tmp, True)
    root = Root(tmp / loc.name, loc)
    try:
        if probe(loc, "--results") != FileType.Directory:
            raise AnalysisError(f"no Parquet result files under {loc.uri}")
        loc.download(root.local)
        if artifacts:
            beside(loc, "artifacts").download(beside(root.local, "artifacts"))
    except StorageError as e:
        raise AnalysisError(str(e)) from None
    except STORE_ERRORS as e:
        raise AnalysisError(f"--results: cannot read {loc.uri} "
                            f"({str(e).strip().splitlines()[0][:200]})") from None
    return root
