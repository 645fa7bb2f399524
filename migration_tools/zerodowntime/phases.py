"""Phases for rolling deploys, and which lint findings refuse the run in each.

`pre` applies the plan up to the first migration that is only safe once the new code runs
everywhere (the lint says a statement of it breaks the previous release's running code: a
column or table dropped or renamed, NOT NULL without a default); `post` applies the rest once
the rollout is done; no phase applies both, in order.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.migrations.migration import Migration
from django.db.migrations.operations import DeleteModel, RemoveField, RenameField, RenameModel

from migration_tools.core.errors import BadInput, prog_name
from migration_tools.lint.findings import FAIL, Finding, blocks_application

PRE, POST, BOTH = "pre", "post", "both"
_CONTRACTING = (RemoveField, DeleteModel, RenameField, RenameModel)


@dataclass(frozen=True)
class Selection:
    count: int  # how many of the pending migrations (a prefix of the plan) this run applies
    deferred: list[str]  # labels of the pending migrations left for --phase post
    first_reason: str = ""  # why the first deferred one waits


def _label(migration: Migration) -> str:
    return f"{migration.app_label}.{migration.name}"


def boundary(pending: list[Migration], findings: list[Finding]) -> tuple[int, str]:
    """Index of the first migration only safe after the rollout, and why; len(pending) if none."""
    breaking = {f.migration: f for f in findings if f.breaks}
    for index, migration in enumerate(pending):
        found = breaking.get(_label(migration))
        if found is not None:
            return index, f"{found.title}{' on ' + found.table if found.table else ''}"
        contracting = next((op for op in migration.operations if isinstance(op, _CONTRACTING)), None)
        if contracting is not None:
            return index, contracting.describe()
    return len(pending), ""


def select(pending: list[Migration], findings: list[Finding], phase: str) -> Selection:
    cut, reason = boundary(pending, findings)
    if phase == PRE:
        return Selection(cut, [_label(m) for m in pending[cut:]], reason)
    if phase == POST and cut > 0:
        first = _label(pending[0])
        raise BadInput(
            "phase-order",
            f"--phase post: {cut} pending migration(s) belong to the pre phase, first {first}; "
            "nothing was changed",
            f"run {prog_name()} zero-downtime --phase pre first, then roll out the new code",
        )
    return Selection(len(pending), [])


def refusing(findings: list[Finding], selected: set[str], phase: str, threshold: int) -> list[Finding]:
    """The failing findings of the migrations this run applies. In the post phase the operator says
    the new code runs everywhere, so breaking the previous release's code no longer refuses; a
    blocking lock on a large table still does."""
    chosen = [f for f in findings if f.level == FAIL and f.migration in selected]
    if phase != POST:
        return chosen
    return [f for f in chosen if not f.breaks or (
        blocks_application(f) and f.work in ("scan", "rewrite")
        and f.size_bytes is not None and f.size_bytes > threshold)]
