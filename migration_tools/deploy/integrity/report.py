"""What verify-data found: one dataclass per kind of finding, the verdict, and the JSON document."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelCount:
    label: str  # the model's module and class: "medications.models.Medication", as the seed prints it
    rows: int
    model: str = ""  # app_label.ModelName
    table: str = ""  # schema.table
    estimated: bool = False


@dataclass(frozen=True)
class Orphans:
    """Rows of one relation pointing at a row that does not exist (rows may be 0: checked and clean)."""

    model: str
    field: str
    rows: int
    kind: str = "foreign key"  # foreign key | one-to-one | parent link | many-to-many | generic
    table: str = ""  # schema.table holding the column
    column: str = ""
    target: str = ""  # app_label.ModelName pointed at
    examples: tuple[Any, ...] = ()  # up to five primary keys of the orphaned rows
    example_column: str = ""
    db_constraint: bool = True

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.model, self.field, self.column, self.target)


@dataclass(frozen=True)
class Duplicates:
    """Rows beyond the first of each group sharing a configured natural key (a warning)."""

    model: str
    fields: tuple[str, ...]
    extra_rows: int
    normalized: tuple[str, ...] = ()  # fields compared case- and whitespace-insensitively
    examples: tuple[Any, ...] = ()


@dataclass(frozen=True)
class UniqueViolation:
    """Rows breaking a unique field or constraint the models declare and the database does not enforce."""

    model: str
    fields: tuple[str, ...]
    name: str
    extra_rows: int
    examples: tuple[Any, ...] = ()


@dataclass(frozen=True)
class MissingTable:
    model: str
    table: str


@dataclass(frozen=True)
class MissingColumn:
    model: str
    field: str
    table: str
    column: str


@dataclass(frozen=True)
class NotValidConstraint:
    table: str
    name: str
    kind: str


@dataclass(frozen=True)
class Loss:
    """A table with fewer rows than the backup's metadata recorded."""

    table: str
    before: int
    now: int
    allowed: bool = False
    estimated: bool = False

    @property
    def lost(self) -> int:
        return self.before - self.now

    @property
    def unexpected(self) -> bool:
        return not self.allowed and not self.estimated


@dataclass(frozen=True)
class Unchecked:
    """A check that did not finish (timeout, error): never reported as clean."""

    what: str
    reason: str


@dataclass(frozen=True)
class SummaryLine:
    """A per-model orphan line: orphans of the relations the model takes part in, at either end."""

    label: str
    rows: int
    model: str = ""


@dataclass
class IntegrityReport:
    counts: list[ModelCount] = field(default_factory=list)
    orphans: list[Orphans] = field(default_factory=list)
    duplicates: list[Duplicates] = field(default_factory=list)
    invalid_indexes: list[str] = field(default_factory=list)
    unique_violations: list[UniqueViolation] = field(default_factory=list)
    missing_tables: list[MissingTable] = field(default_factory=list)
    missing_columns: list[MissingColumn] = field(default_factory=list)
    not_valid: list[NotValidConstraint] = field(default_factory=list)
    losses: list[Loss] = field(default_factory=list)
    backup: str | None = None  # the backup the losses are measured against
    unchecked: list[Unchecked] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    summary: list[SummaryLine] = field(default_factory=list)  # per-model orphan lines
    orphans_label: str = "Orphan records"
    duplicates_label: str = "Potential duplicates"
    strict: bool = False
    tables_checked: int = 0

    @property
    def orphan_total(self) -> int:
        return sum(o.rows for o in self.orphans)

    @property
    def duplicate_total(self) -> int:
        return sum(d.extra_rows for d in self.duplicates)

    @property
    def unique_total(self) -> int:
        return sum(v.extra_rows for v in self.unique_violations)

    @property
    def unexpected_losses(self) -> list[Loss]:
        return [loss for loss in self.losses if loss.unexpected]

    @property
    def uncovered_orphans(self) -> int:
        """Orphans of relations that no per-model summary line counts (the total line says them)."""
        shown = {line.model for line in self.summary}
        return sum(o.rows for o in self.orphans if o.model not in shown and o.target not in shown)

    def problems(self) -> list[str]:
        """What fails the check, as the stderr line names it; empty when the data is fine."""
        parts = [f"{self.orphan_total:,} orphaned row(s)", f"{len(self.invalid_indexes)} invalid index(es)"]
        more = [
            (len(self.not_valid), "NOT VALID constraint(s)"),
            (len(self.missing_tables), "missing table(s)"),
            (len(self.missing_columns), "missing column(s)"),
            (self.unique_total, "row(s) breaking an unenforced unique constraint"),
            (len(self.unexpected_losses), "table(s) with lost rows"),
            (len(self.unchecked), "check(s) not done"),
        ]
        if self.strict:
            more.append((self.duplicate_total, "potential duplicate(s)"))
        found = any(count for count, _ in more) or self.orphan_total or self.invalid_indexes
        return [*parts, *(f"{count:,} {what}" for count, what in more if count)] if found else []

    @property
    def ok(self) -> bool:
        return not self.problems()

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "strict": self.strict,
            "counts": {c.label: c.rows for c in self.counts},
            "count_details": [_plain(asdict(c)) for c in self.counts],
            "orphans": [_plain(asdict(o)) for o in self.orphans],
            "orphan_total": self.orphan_total,
            "orphan_summary": {line.label: line.rows for line in self.summary},
            "duplicates": [_plain(asdict(d)) for d in self.duplicates],
            "duplicate_total": self.duplicate_total,
            "unique_violations": [_plain(asdict(v)) for v in self.unique_violations],
            "invalid_indexes": self.invalid_indexes,
            "not_valid_constraints": [asdict(c) for c in self.not_valid],
            "missing_tables": [asdict(t) for t in self.missing_tables],
            "missing_columns": [asdict(c) for c in self.missing_columns],
            "backup": self.backup,
            "losses": [asdict(loss) | {"lost": loss.lost, "unexpected": loss.unexpected}
                       for loss in self.losses],
            "unchecked": [asdict(u) for u in self.unchecked],
            "notes": self.notes,
            "tables_checked": self.tables_checked,
            "problems": self.problems(),
        }


def _plain(value: Any) -> Any:
    """JSON-ready: tuples as lists, keys other than numbers and text (uuid, dates) as text."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def orphans_by_model(report: IntegrityReport) -> dict[str, int]:
    totals: dict[str, int] = {}
    for o in report.orphans:
        totals[o.model] = totals.get(o.model, 0) + o.rows
    return totals


def new_problems(before: IntegrityReport, after: IntegrityReport) -> list[str]:
    """Problems in `after` that `before` did not have: more orphans on a relation, a new invalid
    index or NOT VALID constraint, a missing table or column, more rows breaking a unique
    declaration, a check that could not run."""
    was = {o.key: o.rows for o in before.orphans}
    found = [
        f"{o.model}.{o.field}: {o.rows - was.get(o.key, 0):,} new orphaned row(s)"
        for o in after.orphans
        if o.rows > was.get(o.key, 0)
    ]
    found += [f"invalid index {name}" for name in after.invalid_indexes
              if name not in before.invalid_indexes]
    found += [f"NOT VALID constraint {c.name} on {c.table}" for c in after.not_valid
              if c not in before.not_valid]
    found += [f"missing table {t.table} ({t.model})" for t in after.missing_tables
              if t not in before.missing_tables]
    found += [f"missing column {c.table}.{c.column}" for c in after.missing_columns
              if c not in before.missing_columns]
    unique_was = {(v.model, v.name): v.extra_rows for v in before.unique_violations}
    found += [
        f"{v.model} ({', '.join(v.fields)}): {v.extra_rows - unique_was.get((v.model, v.name), 0):,} "
        "new row(s) breaking an unenforced unique constraint"
        for v in after.unique_violations
        if v.extra_rows > unique_was.get((v.model, v.name), 0)
    ]
    found += [f"not checked: {u.what} ({u.reason})" for u in after.unchecked]
    return found
