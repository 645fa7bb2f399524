"""pgBackRest, run as the settings say (MIGRATION_KIT["PGBACKREST"]["COMMAND"]): the one place the
kit calls it. Every call has stdin closed, its own process group (Ctrl-C reaches the kit, which
stops it), and a failure message in the kit's one shape (pg.tools.tool_failure)."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from typing import Any

from migration_tools import STARTUP_TZ
from migration_tools.core.errors import OperationFailed, prog_name
from migration_tools.core.pgbackrest_config import PgBackRestSettings
from migration_tools.core.redact import redact
from migration_tools.pg import tools


@dataclass(frozen=True)
class BackupSet:
    """One backup in the repository, as `pgbackrest info` describes it."""

    label: str
    kind: str  # full, diff, incr
    started: int  # epoch seconds
    stopped: int
    size: int  # the cluster's size
    repo_size: int  # what it takes in the repository
    wal_start: str
    wal_stop: str
    error: bool = False


class PgBackRestFailed(OperationFailed):
    pass


def argv(settings: PgBackRestSettings, command: str, *options: str) -> list[str]:
    return [*settings.command, f"--stanza={settings.stanza}", *options, command]


def startup_env() -> dict[str, str]:
    """The environment with the TZ the kit started with: Django's set-up sets TZ to the project's
    TIME_ZONE, and pgBackRest names backups by local time and refuses a label that sorts before
    the newest, so the operator's own runs (cron, in the TZ of the host) would fail after ours."""
    env = dict(os.environ)
    env.pop("TZ", None)
    if STARTUP_TZ is not None:
        env["TZ"] = STARTUP_TZ
    return env


def run(settings: PgBackRestSettings, command: str, *options: str, what: str = "") -> str:
    """pgBackRest's stdout; PgBackRestFailed naming its error otherwise."""
    try:
        done = subprocess.Popen(
            argv(settings, command, *options), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, start_new_session=tools.OWN_SESSION, env=startup_env(),
        )
    except OSError as exc:
        raise PgBackRestFailed(
            "pgbackrest-missing", f"cannot run {settings.command[0]}: {exc.strerror}",
            f"install pgBackRest or fix MIGRATION_KIT['PGBACKREST']['COMMAND']; run {prog_name()} status",
        ) from exc
    try:
        out, err = done.communicate()
    except BaseException:
        done.terminate()
        try:
            done.wait(30)
        except subprocess.TimeoutExpired:
            done.kill()
            done.wait()
        raise
    if done.returncode != 0:
        text = tools.tool_failure(f"pgbackrest {command}", done.returncode, err or out)
        raise PgBackRestFailed("pgbackrest", f"{what or 'pgBackRest'}: {text}",
                               "see pgBackRest's log for the details, fix the cause, then run it again")
    return redact(out)


def sets(settings: PgBackRestSettings) -> tuple[list[BackupSet], str]:
    """The stanza's backups (oldest first) and the newest WAL segment archived ('' when none)."""
    raw: Any = json.loads(run(settings, "info", "--output=json", what="reading the repository"))
    stanzas = raw if isinstance(raw, list) else []
    stanza = next((s for s in stanzas if s.get("name") == settings.stanza), None)
    if stanza is None:
        return [], ""
    found = [
        BackupSet(
            label=b["label"], kind=b["type"], started=int(b["timestamp"]["start"]),
            stopped=int(b["timestamp"]["stop"]), size=int(b["info"]["size"]),
            repo_size=int(b["info"]["repository"]["delta"] if "delta" in b["info"]["repository"]
                          else b["info"]["repository"]["size"]),
            wal_start=b["archive"]["start"] or "", wal_stop=b["archive"]["stop"] or "",
            error=bool(b.get("error", False)),
        )
        for b in stanza.get("backup", [])
    ]
    archived = max((a.get("max") or "" for a in stanza.get("archive", [])), default="")
    return found, archived


def take(settings: PgBackRestSettings, kind: str) -> BackupSet:
    """One backup of the stanza (pgBackRest makes an incr or diff a full one when none exists)."""
    before = {s.label for s in sets(settings)[0]}
    run(settings, "backup", f"--type={kind}", what="the pgBackRest backup")
    new = [s for s in sets(settings)[0] if s.label not in before]
    if not new:
        raise PgBackRestFailed("pgbackrest", "pgBackRest said the backup succeeded but the repository "
                               "lists no new backup", "run pgbackrest info to see the repository")
    return new[-1]


def restore(settings: PgBackRestSettings, label: str, restore_point: str, *options: str) -> None:
    """Restore backup `label`, then recover to the named restore point and promote."""
    run(settings, "restore", f"--set={label}", "--type=name", f"--target={restore_point}",
        "--target-action=promote", *options, what="the pgBackRest restore")
