"""The argparse parser every l2l command line uses: usage errors as one line."""

from __future__ import annotations

import argparse
import sys


class OneLineParser(argparse.ArgumentParser):
    """argparse, with its usage errors as one `error: PROG: ...` line and exit code 2
    (argparse's default prints the whole usage block first, which buries the problem)."""

    def error(self, message):
        print(f"error: {self.prog}: {message}", file=sys.stderr)
        sys.exit(2)
