"""Opening a report in a headless Chromium to check that it renders: every image decodes,
every table is there and no script or resource error occurred (the report's inline check
script writes that into `<body data-check=...>`, read back with --dump-dom)."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from analysis.load import AnalysisError

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
_CHECK = re.compile(r'data-check="images=(\d+)/(\d+) tables=(\d+) errors=(\d+)"')
_EXPECTED = {k: re.compile(rf'data-expected-{k}="(\d+)"') for k in ("images", "tables")}


def find_browser(explicit: str | None = None) -> str | None:
    if explicit:
        return shutil.which(explicit) or (explicit if Path(explicit).is_file() else None)
    return next((p for p in map(shutil.which, BROWSERS) if p), None)


def _run(browser: str, args: list[str], timeout: float) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="l2l-browser-") as profile:
        # --no-sandbox: Chromium refuses to start as root with its sandbox; the page is ours
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-dev-shm-usage", "--no-first-run", f"--user-data-dir={profile}",
               "--virtual-time-budget=15000", *args]
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise AnalysisError(f"{browser} did not finish within {timeout:.0f} s") from e


def _expected(path: Path) -> tuple[int, int]:
    """(images, tables) that the report says it holds; AnalysisError if it is no report."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:  # a report is UTF-8
        text = ""
    except OSError as e:
        raise AnalysisError(f"cannot read {path}: {e.strerror or e}") from e
    counts = [_EXPECTED[k].search(text) for k in ("images", "tables")]
    if None in counts:
        raise AnalysisError(f"{path} is not an l2l-analysis report")
    return tuple(int(m.group(1)) for m in counts)


def check_report(path, *, browser: str | None = None, screenshot=None,
                 timeout: float = 120) -> str:
    """One line saying what rendered; AnalysisError when anything is missing or failed."""
    path = Path(path)
    if not path.is_file():
        raise AnalysisError(f"no such report: {path}")
    want_img, want_tab = _expected(path)  # before the browser: a wrong file needs none
    exe = find_browser(browser)
    if exe is None:
        raise AnalysisError(f"no headless browser found ({browser or ', '.join(BROWSERS)}); "
                            "install one, e.g. apt-get install chromium")
    url = path.resolve().as_uri()
    res = _run(exe, ["--dump-dom", url], timeout)
    m = _CHECK.search(res.stdout)
    if m is None:
        tail = (res.stderr.strip().splitlines() or ["no output"])[-1][:200]
        raise AnalysisError(f"{path}: the page's check did not run in {exe} ({tail})")
    ok, imgs, tables, errors = map(int, m.groups())
    if (ok, imgs, tables, errors) != (want_img, want_img, want_tab, 0):
        raise AnalysisError(f"{path}: images {ok}/{imgs} decoded (expected {want_img}), "
                            f"{tables} tables (expected {want_tab}), {errors} error(s)")
    if screenshot:
        shot = Path(screenshot).resolve()
        shot.parent.mkdir(parents=True, exist_ok=True)
        _run(exe, [f"--screenshot={shot}", "--window-size=1400,2400", "--hide-scrollbars",
                   url], timeout)
        if not shot.is_file():
            raise AnalysisError(f"{exe} wrote no screenshot to {shot}")
    return f"{path}: {ok}/{imgs} images decoded, {tables} tables, no errors"
