"""Run the PostgreSQL client tools (pg_dump, pg_restore, psql) as the settings connect.

`tool_env` gives them the connection through libpq's environment (ConnParams.libpq_env: the
password and the settings' OPTIONS, never argv). The OPTIONS libpq reads from no environment
variable (sslpassword, keepalives*, tcp_user_timeout) go into a service file the tools are
pointed at with PGSERVICEFILE/PGSERVICE: on Linux an anonymous in-memory file of this process
(memfd, read through /proc/<pid>/fd/<n>), which never touches a disk and disappears with the
process whatever ends it; elsewhere a 0600 file in a private directory removed at exit.
"""

from __future__ import annotations

import atexit
import functools
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from migration_tools.core.djangoenv import ConnParams
from migration_tools.core.errors import BadInput, status_command
from migration_tools.core.redact import redact

CLIENT_TOOLS = ("pg_dump", "pg_restore")


def find_tool(name: str) -> Path:
    found = shutil.which(name)
    if not found:
        raise BadInput(
            "tool-missing",
            f"{name} not found on PATH",
            f"install the PostgreSQL client tools or add them to PATH, then run {status_command()}",
        )
    return Path(found)


@functools.cache
def tool_major_version(name: str) -> tuple[int, str]:
    """(major, full version text) of a client tool, e.g. (15, '15.18')."""
    out = subprocess.run(
        [str(find_tool(name)), "--version"], capture_output=True, text=True, check=False,
        start_new_session=OWN_SESSION,
    ).stdout
    match = re.search(r"(\d+)(?:\.(\d+))?", out)
    if not match:
        raise BadInput("tool-version", f"cannot read the version of {name}: {out.strip()!r}", "")
    return int(match.group(1)), match.group(0)


def check_tools_against_server(server_version_num: int) -> list[str]:
    """Problems with the client tools; empty when pg_dump and pg_restore can handle this server."""
    problems = []
    server_major = server_version_num // 10000
    for name in CLIENT_TOOLS:
        try:
            major, full = tool_major_version(name)
        except BadInput as exc:
            problems.append(exc.message)
            continue
        if major < server_major:
            problems.append(
                f"{name} {full} is older than the server ({server_major}); "
                f"install PostgreSQL {server_major} client tools"
            )
    return problems


SERVICE_NAME = "migration_kit"


def tool_env(params: ConnParams) -> dict[str, str]:
    """The environment a client tool runs with: this one, the settings' connection over it."""
    env = dict(os.environ)
    env.pop("PGPASSFILE", None)
    env.update(params.libpq_env())
    in_file = params.service_file_options()
    if in_file:
        env["PGSERVICEFILE"] = _service_file(os.getpid(), tuple(sorted(in_file.items())))
        env["PGSERVICE"] = SERVICE_NAME
    return env


@functools.cache
def _service_file(pid: int, entries: tuple[tuple[str, str], ...]) -> str:
    """A libpq service file holding `entries` for the life of process `pid`; its path."""
    text = f"[{SERVICE_NAME}]\n" + "".join(f"{key}={value}\n" for key, value in entries)
    if hasattr(os, "memfd_create") and os.path.isdir(f"/proc/{pid}/fd"):
        fd = os.memfd_create("migration_kit_service", os.MFD_CLOEXEC)
        os.write(fd, text.encode())
        return f"/proc/{pid}/fd/{fd}"
    directory = tempfile.mkdtemp(prefix="migration_kit_")  # 0700
    path = os.path.join(directory, "pg_service.conf")
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    atexit.register(shutil.rmtree, directory, True)
    return path


# Every client tool the kit starts runs in a session of its own: a signal sent to the operator's
# process group (Ctrl-C, a deploy system's SIGTERM) reaches the kit alone. The kit stops its tools
# itself where stopping is safe (a backup, a check) and lets them finish where it would do harm
# (the restore of an undo, during which a further signal is ignored).
OWN_SESSION = True


def run_tool(
    name: str,
    args: Sequence[str],
    params: ConnParams,
    *,
    capture: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a client tool against params; the caller checks returncode."""
    return subprocess.run(
        [str(find_tool(name)), *args],
        env=tool_env(params),
        capture_output=capture,
        text=True,
        check=False,
        start_new_session=OWN_SESSION,
    )


def first_error_line(stderr: str) -> str:
    """The first line a client tool printed that names an error, redacted; else its last line."""
    lines = [" ".join(line.split()) for line in redact(stderr).splitlines() if line.strip()]
    for line in lines:
        if "error" in line.lower() or "FATAL" in line:
            return line
    return lines[-1] if lines else "no error message"


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def tool_failure(name: str, returncode: int, stderr: str) -> str:
    """The one way the kit says why a client tool failed: killed by which signal, or its error."""
    if returncode < 0:
        return f"{name} was killed by signal {signal_name(-returncode)}"
    return f"{name} failed (exit {returncode}): {first_error_line(stderr)}"


# pg_restore 17 and later start every connection with `SET transaction_timeout = 0`, which a
# server before 17 refuses ("unrecognized configuration parameter"): with --exit-on-error that
# ends the restore while INITIALIZING, before anything was restored.
TIMEOUT_SET_ERROR = 'unrecognized configuration parameter "transaction_timeout"'


def only_timeout_set_errors(stderr: str) -> bool:
    """True when every error pg_restore reported is its SET transaction_timeout being refused."""
    errors = [line for line in stderr.splitlines() if line.startswith("pg_restore: error:")]
    return bool(errors) and all(TIMEOUT_SET_ERROR in line for line in errors)


def run_pg_restore(args: Sequence[str], params: ConnParams) -> subprocess.CompletedProcess[str]:
    """pg_restore `args` (holding --exit-on-error) into a database. When an older server refused
    only pg_restore's SET transaction_timeout (exit 1, nothing restored yet), it restores again
    without stopping at that error and succeeds when that was the only one (once per connection).
    A failure is returned with those lines taken out, so the error shown is the one that matters."""
    proc = run_tool("pg_restore", args, params)
    if proc.returncode == 1 and only_timeout_set_errors(proc.stderr):
        proc = run_tool("pg_restore", [a for a in args if a != "--exit-on-error"], params)
        if proc.returncode == 1 and only_timeout_set_errors(proc.stderr):
            return subprocess.CompletedProcess(proc.args, 0, proc.stdout, proc.stderr)
    kept = [line for line in proc.stderr.splitlines(keepends=True)
            if TIMEOUT_SET_ERROR not in line and line.strip() != "Command was: SET transaction_timeout = 0;"]
    return subprocess.CompletedProcess(proc.args, proc.returncode, proc.stdout, "".join(kept))
