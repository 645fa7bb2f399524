"""Headless Debian chromium, offline: open a page, read its DOM and console, take a screenshot.

Started with a fresh profile and every background service off, so it never reaches for the
network; `--no-sandbox` as root (chromium refuses to run sandboxed as root). Console messages
(script errors included) come from chromium's own log (`--enable-logging=stderr`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
]
CONSOLE = re.compile(r":(?:INFO|WARNING|ERROR):CONSOLE[:(]\d*\)?\]\s*(.*)$")


class BrowserMissing(RuntimeError):
    pass


@dataclass(frozen=True)
class Page:
    dom: str
    console: list[str]  # every console message, script errors included


def chromium() -> str:
    found = shutil.which(CHROMIUM) or shutil.which("chromium")
    if not found:
        raise BrowserMissing(
            f"{CHROMIUM} not found: install Debian's chromium (lib/packages.bash does, as root)"
        )
    return found


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="kit-chromium-") as profile:
        argv = [chromium(), *FLAGS, f"--user-data-dir={profile}", *args]
        if os.geteuid() == 0:
            argv.insert(1, "--no-sandbox")
        env = {**os.environ, "HOME": profile}
        return subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=env,
            stdin=subprocess.DEVNULL,
        )


def console_lines(stderr: str) -> list[str]:
    return [m.group(1) for line in stderr.splitlines() if (m := CONSOLE.search(line))]


def open_page(html: Path, timeout: float = 60) -> Page:
    """The page's DOM after loading, and what it wrote on the console."""
    done = _run(["--dump-dom", html.resolve().as_uri()], timeout)
    if done.returncode != 0 or "<html" not in done.stdout:
        raise RuntimeError(f"chromium could not open {html} (exit {done.returncode}): {done.stderr[-500:]}")
    return Page(done.stdout, console_lines(done.stderr))


def screenshot(
    html: Path, png: Path, *, width: int = 1200, height: int = 2200, timeout: float = 60
) -> list[str]:
    """A PNG of the page; returns the console messages."""
    png.unlink(missing_ok=True)
    done = _run(
        [f"--screenshot={png.resolve()}", f"--window-size={width},{height}", html.resolve().as_uri()], timeout
    )
    if not png.is_file():
        raise RuntimeError(
            f"chromium made no screenshot of {html} (exit {done.returncode}): {done.stderr[-500:]}"
        )
    return console_lines(done.stderr)
