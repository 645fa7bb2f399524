"""A backup's bytes on disk, for both pg_dump tiers: one custom-format file or one directory.

MIGRATION_KIT["BACKUP_FORMAT"] picks the tier (core.config.backup_tier):

    custom     backups/<prefix>_backup_<TS>.sql    pg_dump -Fc -Z9 (one core compresses)
    directory  backups/<prefix>_backup_<TS>.dir/   pg_dump -Fd -Z9 --jobs N: a table of contents
                                                   (toc.dat) and one file per table's data, written
                                                   by N workers from one synchronized snapshot

Everything the kit does with those bytes goes through here, so both tiers get the same checks:
the size (a directory's: the sum of its files), the SHA-256 (a directory's: the SHA-256 of its
manifest, the lines `sha256sum` prints for each regular file in it, in byte order of the names;
the standalone rollback script computes the same), the partial name reserved and locked while it
is written, sealing it (files 0600, directory 0700, fsync, rename), removing it, and the full
read (`pg_restore -f /dev/null`, which decompresses every data block; a directory's data files
are split over N such readers, each given part of the table of contents with `-L`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

from migration_tools.backup import metadata
from migration_tools.pg import tools

HASH_CHUNK = 1 << 20
DATA_SUFFIXES = (".dat", ".dat.gz", ".dat.lz4", ".dat.zst")  # a table's data in a directory archive


def is_directory(path: Path) -> bool:
    """Whether the backup named `path` is of the directory tier (by its name: `.dir`)."""
    return metadata.format_of(Path(path)) == "directory"


def present(path: Path) -> bool:
    """The backup is there, as the kind of thing its name says (a directory for `.dir`)."""
    path = Path(path)
    return path.is_dir() if is_directory(path) else path.is_file()


def pg_dump_args(fmt: str, jobs: int) -> list[str]:
    """pg_dump's format options for a tier."""
    if fmt == "directory":
        return ["--format=directory", "--compress=9", f"--jobs={jobs}"]
    return ["--format=custom", "--compress=9"]


def members(directory: Path) -> list[Path]:
    """A directory backup's regular files, in byte order of their names (symlinks left out)."""
    found = [p for p in Path(directory).iterdir() if p.is_file() and not p.is_symlink()]
    return sorted(found, key=lambda p: os.fsencode(p.name))


def size_of(path: Path) -> int:
    path = Path(path)
    if path.is_dir():
        return sum(p.stat().st_size for p in members(path))
    return path.stat().st_size


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def manifest(directory: Path, jobs: int = 1) -> str:
    """`sha256sum` lines of a directory backup's files (hashed by `jobs` threads), in name order."""
    files = members(directory)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        sums = list(pool.map(sha256_file, files))
    return "".join(f"{digest}  {p.name}\n" for digest, p in zip(sums, files, strict=True))


def sha256_of(path: Path, jobs: int = 1) -> str:
    """The SHA-256 the metadata records: of the file, or of a directory's manifest."""
    path = Path(path)
    if path.is_dir():
        return hashlib.sha256(manifest(path, jobs).encode()).hexdigest()
    return sha256_file(path)


def reserve(partial: Path, directory: bool) -> int:
    """Create the hidden partial file (0600) or directory (0700) exclusively and lock it.

    Returns the descriptor holding the flock (cleanup-backups leaves a locked partial alone);
    FileExistsError when the name is taken.
    """
    if directory:
        os.mkdir(partial, metadata.DIR_MODE)
        fd = os.open(partial, os.O_RDONLY | os.O_DIRECTORY)
    else:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, metadata.FILE_MODE)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def seal(partial: Path, final: Path) -> None:
    """Owner-only modes, fsync every file, rename to the final name, fsync the parent."""
    if not partial.is_dir():
        metadata.publish(partial, final)
        return
    for path in members(partial):
        os.chmod(path, metadata.FILE_MODE)
        metadata.fsync_file(path)
    os.chmod(partial, metadata.DIR_MODE)
    metadata.fsync_dir(partial)
    os.rename(partial, final)
    metadata.fsync_dir(final.parent)


def remove(path: Path) -> bool:
    """Remove a backup file or directory; False when it was not there."""
    path = Path(path)
    try:
        if path.is_dir() and not path.is_symlink():
            try:
                shutil.rmtree(path)
            except OSError:  # a file appeared meanwhile (a dying pg_dump worker): once more
                time.sleep(0.1)
                shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        return False
    return True


def _read_all(dump: Path, err: IO[bytes], listing: Path | None = None) -> subprocess.Popen[bytes]:
    argv = [str(tools.find_tool("pg_restore")), "-f", os.devnull]
    if listing is not None:
        argv.append(f"--use-list={listing}")
    return subprocess.Popen(
        [*argv, str(dump)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=err, start_new_session=tools.OWN_SESSION,
    )


def _outcome(proc: subprocess.Popen[bytes], err: IO[bytes]) -> str:
    code = proc.wait()
    err.seek(0)
    return "" if code == 0 else tools.tool_failure("pg_restore", code, err.read().decode(errors="replace"))


def _split(dump: Path, toc: list[str], jobs: int) -> list[list[str]]:
    """The TOC's lines in `jobs` parts with about as many data bytes each; the first part holds
    every entry without a data file too."""
    sizes: dict[str, int] = {}
    for path in members(dump):
        stem, _, rest = path.name.partition(".")
        if stem.isdigit() and "." + rest in DATA_SUFFIXES:
            sizes[stem] = path.stat().st_size
    parts: list[list[str]] = [[] for _ in range(jobs)]
    loads = [0] * jobs
    data = []
    for line in toc:
        dump_id = line.split(";", 1)[0].strip()
        if dump_id in sizes:
            data.append((sizes[dump_id], line))
        else:
            parts[0].append(line)
    for size, line in sorted(data, key=lambda item: item[0], reverse=True):
        lightest = loads.index(min(loads))
        parts[lightest].append(line)
        loads[lightest] += size
    return [part for part in parts if part]


def full_read(dump: Path, jobs: int = 1) -> str:
    """'' when every data block decompresses (`pg_restore -f /dev/null`), else the error.

    A directory backup is read by up to `jobs` pg_restore processes at once, each on part of it.
    """
    dump = Path(dump)
    if not dump.is_dir() or jobs <= 1:
        with tempfile.TemporaryFile() as err:
            return _outcome(_read_all(dump, err), err)
    listed = subprocess.run(
        [str(tools.find_tool("pg_restore")), "--list", str(dump)], capture_output=True, text=True,
        check=False, stdin=subprocess.DEVNULL, start_new_session=tools.OWN_SESSION,
    )
    if listed.returncode != 0:
        return tools.tool_failure("pg_restore", listed.returncode, listed.stderr)
    toc = [line for line in listed.stdout.splitlines() if line.strip() and not line.startswith(";")]
    with tempfile.TemporaryDirectory(prefix="migration_kit_read_") as scratch:
        readers: list[tuple[subprocess.Popen[bytes], IO[bytes]]] = []
        try:
            for n, part in enumerate(_split(dump, toc, jobs)):
                listing = Path(scratch) / f"part{n}.list"
                listing.write_text("\n".join(part) + "\n")
                err = tempfile.TemporaryFile()  # noqa: SIM115 (closed below)
                readers.append((_read_all(dump, err, listing), err))
            problems = [_outcome(proc, err) for proc, err in readers]
        finally:
            for proc, err in readers:
                if proc.poll() is None:
                    with contextlib.suppress(OSError):
                        proc.kill()
                    proc.wait()
                err.close()
    return next((problem for problem in problems if problem), "")
