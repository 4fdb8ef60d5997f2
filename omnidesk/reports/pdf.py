"""The printable report as PDF, printed by headless Chromium from the HTML page.

Chromium rather than a PDF library because it shapes Arabic and lays out right-to-left
exactly as the browser the page was checked in does, and the page's own print CSS (A4,
no breaks inside tables) applies. Which binary: $OMNIDESK_CHROMIUM, else chromium,
chromium-browser, google-chrome on PATH; none is a one-line error (exit 2).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from omnidesk.errors import PermanentError

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT_S = 120


class NoChromium(PermanentError):
    pass


def chromium_binary() -> str:
    named = os.environ.get("OMNIDESK_CHROMIUM")
    if named:
        found = shutil.which(named)
        if not found:
            raise NoChromium(f"OMNIDESK_CHROMIUM={named!r}: no such program; a PDF report "
                             "needs Chromium (apt-get install chromium)")  # fmt: skip
        return found
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise NoChromium("no Chromium found for the PDF report (apt-get install chromium, or set "
                     "OMNIDESK_CHROMIUM to its path)")  # fmt: skip


def html_to_pdf(page: str) -> bytes:
    """Print one self-contained HTML page (no network: everything is inline) to PDF."""
    binary = chromium_binary()
    with tempfile.TemporaryDirectory(prefix="omnidesk-pdf-") as tmp:
        src, out = Path(tmp) / "report.html", Path(tmp) / "report.pdf"
        src.write_text(page, "utf-8")
        argv = [binary, "--headless", "--disable-gpu", "--no-first-run",
                "--no-default-browser-check", "--disable-extensions", "--mute-audio",
                f"--user-data-dir={Path(tmp) / 'profile'}", "--no-pdf-header-footer",
                f"--print-to-pdf={out}", src.as_uri()]  # fmt: skip
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            argv.insert(1, "--no-sandbox")  # Chromium refuses to start as root otherwise
        try:
            done = subprocess.run(argv, capture_output=True, timeout=TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            raise PermanentError(f"Chromium printed no PDF within {TIMEOUT_S} s") from None
        if not out.exists() or out.stat().st_size == 0:
            tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["?"]
            raise PermanentError(f"Chromium printed no PDF (exit {done.returncode}): {tail[0]}")
        return out.read_bytes()
