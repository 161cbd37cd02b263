"""Writing outputs so that no reader ever sees half a file, and a failed command leaves none."""

from __future__ import annotations

import os
from pathlib import Path

from analysis.load import AnalysisError


def write_all(outputs: dict[Path, str | bytes]) -> list[Path]:
    """Writes every output, or none: all are written to temporary files beside their targets
    first (so a full disk, a directory in a target's place or a file in a directory's place
    fails before any target changes), then renamed into place; should a rename fail, the
    targets renamed so far get their old content back and the directories this call made are
    removed. An OSError becomes one AnalysisError line naming the file."""
    made: list[Path] = []  # directories created here, parents first
    temps: dict[Path, Path] = {}
    try:
        for path, data in outputs.items():
            path = Path(path)
            try:
                _make_dirs(path.parent, made)
                if path.is_dir():
                    raise IsADirectoryError(21, "a directory is in its place")
                tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
                with open(tmp, "xb") as f:
                    temps[path] = tmp
                    f.write(data.encode("utf-8") if isinstance(data, str) else data)
            except OSError as e:
                raise AnalysisError(f"cannot write {path}: {e.strerror or e}") from e
        _swap_in(temps)
    except BaseException:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)
        for d in reversed(made):
            try:
                d.rmdir()
            except OSError:
                pass
        raise
    return [Path(p) for p in outputs]


def _make_dirs(d: Path, made: list[Path]) -> None:
    missing = []
    while not d.exists():
        missing.append(d)
        d = d.parent
    for m in reversed(missing):
        m.mkdir()
        made.append(m)


def _swap_in(temps: dict[Path, Path]) -> None:
    """Renames each temporary file onto its target; on a failure, undoes the renames made."""
    done: list[tuple[Path, Path | None]] = []  # (target, its old content kept aside)
    try:
        for path, tmp in temps.items():
            old = None
            if path.exists():
                old = path.with_name(f".{path.name}.{os.getpid()}.old")
                os.replace(path, old)
            done.append((path, old))
            os.replace(tmp, path)
    except OSError as e:
        failed = path
        for target, old in reversed(done):
            if old is not None:
                os.replace(old, target)
            else:
                target.unlink(missing_ok=True)
        raise AnalysisError(f"cannot write {failed}: {e.strerror or e}") from e
    for _, old in done:
        if old is not None:
            old.unlink(missing_ok=True)


def safe_name(text: str) -> str:
    """A sweep id as a file name: path separators and control characters replaced."""
    return "".join(c if c.isprintable() and c not in '/\\:*?"<>|' else "_" for c in text)
