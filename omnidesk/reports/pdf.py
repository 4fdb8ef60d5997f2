"""The printable report as PDF, printed by headless Chromium from the HTML page.

Chromium rather than a PDF library because it shapes Arabic and lays out right-to-left
exactly as the browser the page was checked in does, and the page's own print CSS (A4,
no breaks inside tables) applies. Which binary: $OMNIDESK_CHROMIUM, else chromium,
chromium-browser, google-chrome on PATH; none is a one-line error (exit 2).

In the daemon (`print_pdf`) at most PRINTS prints run at once (each a whole browser); another
waits up to WAIT_S on the event loop, holding no thread, then is refused as `PrinterBusy` (503,
try again). Prints run in their own PRINTS threads, never the loop's default executor that the
desk API, logins and the scheduler share: slow prints cannot stall those. The CLI prints one
page synchronously (`html_to_pdf`). Chromium runs in its own process group, killed whole when
it overruns TIMEOUT_S (`PrintTimeout`, also a 503): a hung print holds no thread, process or
temp folder after that.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from omnidesk.errors import PermanentError, TransientError

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT_S = 120
PRINTS = 2  # browsers printing at once, whatever asks (the API, scheduled reports)
WAIT_S = 10.0  # how long a print waits for a free slot before it is refused
_printers = ThreadPoolExecutor(max_workers=PRINTS, thread_name_prefix="omnidesk-pdf")
# an asyncio.Semaphore belongs to one loop (tests run several); the daemon has one
_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


class NoChromium(PermanentError):
    pass


class PrinterBusy(TransientError):
    """Every print slot stayed taken for WAIT_S: try again shortly."""


class PrintTimeout(TransientError):
    """Chromium printed nothing within TIMEOUT_S; its process group was killed."""


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
    """Print one self-contained HTML page (no network: everything is inline) to PDF, in
    this thread: the CLI's one print. The daemon uses `print_pdf`."""
    return _print(chromium_binary(), page)


def print_slots() -> asyncio.Semaphore:
    """This loop's print slots (PRINTS of them)."""
    loop = asyncio.get_running_loop()
    slots = _slots.get(loop)
    if slots is None:
        slots = _slots[loop] = asyncio.Semaphore(PRINTS)
    return slots


async def print_pdf(page: str) -> bytes:
    """`html_to_pdf` for the daemon: waits for a slot on the loop, prints in the print threads."""
    binary = chromium_binary()
    slots = print_slots()
    try:
        await asyncio.wait_for(slots.acquire(), timeout=WAIT_S)
    except TimeoutError:
        raise PrinterBusy(f"{PRINTS} PDF reports are printing: try again in a moment") from None
    try:
        job = asyncio.get_running_loop().run_in_executor(_printers, _print, binary, page)
    except BaseException:
        slots.release()
        raise
    # the slot is freed when Chromium is done, not when a cancelled caller stops waiting
    job.add_done_callback(lambda done: _free(slots, done))
    return await asyncio.shield(job)


def _free(slots: asyncio.Semaphore, done: asyncio.Future[bytes]) -> None:
    slots.release()
    if not done.cancelled():
        done.exception()  # retrieved: a caller that was cancelled logs no "never retrieved"


def _print(binary: str, page: str) -> bytes:
    with tempfile.TemporaryDirectory(prefix="omnidesk-pdf-") as tmp:
        src, out = Path(tmp) / "report.html", Path(tmp) / "report.pdf"
        src.write_text(page, "utf-8")
        argv = [binary, "--headless", "--disable-gpu", "--no-first-run",
                "--no-default-browser-check", "--disable-extensions", "--mute-audio",
                f"--user-data-dir={Path(tmp) / 'profile'}", "--no-pdf-header-footer",
                f"--print-to-pdf={out}", src.as_uri()]  # fmt: skip
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            argv.insert(1, "--no-sandbox")  # Chromium refuses to start as root otherwise
        # its own session: the renderer and GPU children die with it on a timeout
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)  # fmt: skip
        try:
            _, err = proc.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise PrintTimeout(f"Chromium printed no PDF within {TIMEOUT_S} s") from None
        finally:
            _kill_group(proc)  # helpers a finished Chromium left behind
        if not out.exists() or out.stat().st_size == 0:
            tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or ["?"]
            raise PermanentError(f"Chromium printed no PDF (exit {proc.returncode}): {tail[0]}")
        return out.read_bytes()


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()  # reaped: no zombie
    if proc.stderr is not None:
        proc.stderr.close()
