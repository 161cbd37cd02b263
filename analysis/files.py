"""Writing outputs so that no reader ever sees half a file, and a failed command leaves none."""

from __future__ import annotations

import os
from pathlib import Path

from analysis.load import AnalysisError


def write_atomic(path: Path, data: str | bytes) -> None:
    """Temp file in the same directory + rename: readers see the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # open(..., "x") rather than mkstemp: keeps the umask permissions (mkstemp makes 0600)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_all(outputs: dict[Path, str | bytes]) -> list[Path]:
    """Writes every output (all rendered beforehand, so a bad input fails before the first
    write); an OSError becomes one AnalysisError line naming the file."""
    written = []
    for path, data in outputs.items():
        try:
            write_atomic(path, data)
        except OSError as e:
            raise AnalysisError(f"cannot write {path}: {e.strerror or e}") from e
        written.append(Path(path))
    return written


def safe_name(text: str) -> str:
    """A sweep id as a file name: path separators and control characters replaced."""
    return "".join(c if c.isprintable() and c not in '/\\:*?"<>|' else "_" for c in text)
