"""Render an HTML report in headless Chromium and screenshot it (the check that it really renders).

Uses Debian's ``chromium`` package (``apt-get install -y --no-install-recommends chromium``);
every network-facing feature is switched off, and the page is a local ``file://`` URL.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def find_chromium() -> str | None:
    """The first Chromium-family executable on ``PATH``, else ``None``."""
    return next(filter(None, map(shutil.which, BROWSERS)), None)


def screenshot(html: str | Path, png: str | Path, width: int = 1280, height: int = 2000, timeout: float = 120) -> Path:
    """Screenshot ``html`` at ``width`` x ``height`` into ``png`` with headless Chromium."""
    browser = find_chromium()
    if browser is None:
        raise RuntimeError(f"no Chromium found (looked for {', '.join(BROWSERS)}); "
                           "install it with: apt-get install -y --no-install-recommends chromium")
    png = Path(png).resolve()
    with tempfile.TemporaryDirectory() as profile:
        command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                   "--disable-background-networking", "--disable-component-update", "--disable-sync",
                   "--hide-scrollbars", f"--user-data-dir={profile}", f"--screenshot={png}",
                   f"--window-size={width},{height}", Path(html).resolve().as_uri()]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0 or not png.is_file():
        raise RuntimeError(f"Chromium failed (exit {result.returncode}): {result.stderr[-2000:]}")
    return png
