"""Live progress as the operator sees it: a backup and an index build, on a terminal (a pty) and in a pipe.

The database is the demo seeded large enough (seed_demo --scale) for pg_dump's COPY to run for
seconds; the index build is tests/fixtures/slow_index_app's, whose indexed function spins per row.
On the terminal the screen shows a percentage that changes; in a pipe only plain `progress:`
lines come, one per PM_PROGRESS_INTERVAL (1 s here), with no carriage return and no escape code.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.pg_server import Server, create_database, drop_database
from tests.support import EXAMPLE, REPO, Database, base_env

SCALE = "250000"
SLOW = {"DJANGO_SETTINGS_MODULE": "tests.fixtures.slow_index_settings", "SLOW_INDEX_LOOPS": "600",
        "SLOW_INDEX_PAUSE_EVERY": "20000"}  # ~10 pauses of 0.2 s in the scan: several 0.5 s polls see it
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
PERCENT = re.compile(r"(\d{1,3})%")


@pytest.fixture(scope="module")
def big_template(pg: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    name = f"big_{uuid.uuid4().hex[:8]}"
    create_database(pg, name)
    workdir = tmp_path_factory.mktemp("bigseed")
    seeded = subprocess.run(
        [sys.executable, str(EXAMPLE / "manage.py"), "seed_demo", "--scale", SCALE],
        env=base_env(pg, name, workdir),
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert seeded.returncode == 0, seeded.stderr
    yield name
    drop_database(pg, name)


@pytest.fixture
def big_db(pg: Server, big_template: str, tmp_path: Path) -> Iterator[Database]:
    name = f"p_{uuid.uuid4().hex[:10]}"
    create_database(pg, name, template=big_template)
    workdir = tmp_path / "work dir"
    workdir.mkdir()
    yield Database(pg, name, workdir, base_env(pg, name, workdir))
    drop_database(pg, name)


def on_terminal(db: Database, argv: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run `argv` with stdin, stdout and stderr on a new pty of 140x40; returns (exit code, all it wrote)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 140, 0, 0))
    proc = subprocess.Popen(
        argv,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=db.workdir,
        env=db.env | {"TERM": "xterm-256color", "COLUMNS": "140"} | (env or {}),
        start_new_session=True,
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=30)
    finally:
        os.close(master)
    return code, b"".join(chunks).decode("utf-8", "replace")


def percentages(screen: str, marker: str) -> list[int]:
    """The percentages shown on frames (lines redrawn in place) that hold `marker`, in order."""
    frames = re.split(r"[\r\n]", ANSI.sub("", screen))
    return [int(p) for frame in frames if marker in frame for p in PERCENT.findall(frame)]


def test_backup_on_a_terminal_shows_a_live_changing_percentage(big_db: Database):
    code, screen = on_terminal(big_db, [str(REPO / "production_migrate.sh"), "backup"])
    assert code == 0, screen
    shown = percentages(screen, "pg_dump:")
    assert len(set(shown)) >= 2, screen[-3000:]
    assert "\x1b[" in screen  # drawn in place by the terminal library
    assert "of ~" in ANSI.sub("", screen) and "tables done" in ANSI.sub("", screen)
    assert ANSI.sub("", screen).rstrip().splitlines()[-1].startswith("OK: backup ")


def test_backup_in_a_pipe_prints_plain_periodic_lines(big_db: Database):
    result = big_db.script("backup", env={"PM_PROGRESS_INTERVAL": "0.25"})  # a line every 0.25 s
    assert result.returncode == 0, result.stdout + result.stderr
    assert "\r" not in result.stdout and "\x1b" not in result.stdout
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("progress: pg_dump: ")]
    assert len(lines) >= 2, result.stdout
    # Each line: what pg_dump has done, and a percentage with elapsed time (the middle depends on
    # the moment: which table is being copied, how much is written). Later steps have lines too.
    pattern = (r"^progress: pg_dump: \d+ of 14 tables done, [\d,]+ of ~[\d,]+ rows.*; (\d+)% "
               r"\(elapsed \d:\d\d:\d\d")
    odd = [ln for ln in lines if not re.search(pattern, ln)]
    assert not odd, odd
    assert len({re.search(pattern, ln).group(1) for ln in lines}) >= 2, lines  # type: ignore[union-attr]
    assert result.stdout.splitlines()[-1].startswith("OK: backup ")


def test_an_index_build_shows_its_phase_and_a_changing_percentage_on_a_terminal(big_db: Database):
    code, screen = on_terminal(big_db, [str(REPO / "production_migrate.sh"), "migrate", "--no-backup"], SLOW)
    assert code == 0, screen
    shown = percentages(screen, "building slow_index_doselog_idx: scanning table")
    assert len(set(shown)) >= 2, screen[-3000:]
    assert "slow_index_app.0001_slow_index" in ANSI.sub("", screen)


def test_an_index_build_in_a_pipe_prints_plain_lines_with_its_phase(big_db: Database):
    result = big_db.script("migrate", "--no-backup", env=SLOW | {"PM_PROGRESS_INTERVAL": "0.25"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "\r" not in result.stdout and "\x1b" not in result.stdout
    lines = [ln for ln in result.stdout.splitlines() if "building slow_index_doselog_idx" in ln]
    assert lines, result.stdout
    line = re.compile(
        r"^progress: \[\d/6\] slow_index_app\.0001_slow_index; building slow_index_doselog_idx: "
        r"(?P<phase>[a-z ]+)(; \d+%)? \(elapsed \d:\d\d:\d\d"
    )
    assert all(line.search(ln) for ln in lines), lines  # every phase PostgreSQL names, as it names it
    assert any(re.search(r": scanning table; \d+% \(", ln) for ln in lines), lines
