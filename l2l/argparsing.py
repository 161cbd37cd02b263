"""The argparse parser every l2l command line uses: usage errors as one line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from contract.inputs import one_line


class OneLineParser(argparse.ArgumentParser):
    """argparse, with its usage errors as one `error: PROG: ...` line and exit code 2
    (argparse's default prints the whole usage block first, which buries the problem)."""

    def error(self, message):
        print(f"error: {one_line(f'{self.prog}: {message}')}", file=sys.stderr)
        sys.exit(2)


def path_arg(text: str) -> Path:
    """A path on the command line; an empty one (which would mean the current directory)
    is refused rather than taken."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    from contract.inputs import is_uri

    if is_uri(text):  # Path("s3://b/x") would be a local directory named "s3:"
        raise argparse.ArgumentTypeError(f"a local path, got the URI {text!r}")
    return Path(text)


def name_arg(text: str) -> str:
    """A name on the command line (an MLflow experiment): printable, no surrounding
    whitespace, not empty, so that it never silently falls back to a default."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    if text != text.strip() or not text.isprintable():
        raise argparse.ArgumentTypeError(f"no control characters or surrounding whitespace, "
                                         f"got {text!r}")
    return text


def location_arg(text: str):
    """A local path or a URI (s3://bucket/dir, ...: contract/storage.py) on the command line,
    as a `contract.storage.Location`; an empty one or an unknown scheme is refused."""
    from contract.storage import StorageError, locate

    try:
        return locate(text, "location")
    except StorageError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("location: ")) from None


def store_arg(text: str) -> str:
    """A local path or a URI, checked as `location_arg` does, as text: what a config's
    runtime field holds."""
    return str(location_arg(text))
