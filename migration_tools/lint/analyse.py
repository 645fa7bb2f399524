"""The plan as a whole: each statement's effects weighed with what came before it in the same
transaction, the tables' sizes, and the columns' state at the end of the plan. Pure: it takes
the collected SQL and the catalog's answers, and returns every finding.

Transactions follow how the kit runs the plan: by default all of it in one transaction, so a
lock taken by an early migration is held until the last one commits; with --commit-each (or a
non-atomic migration in the plan) each atomic migration is its own transaction, and a
non-atomic migration's statements each commit on their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pglast import parse_sql
from pglast.parser import ParseError

from migration_tools.lint import catalogue, findings, types
from migration_tools.lint.classify import Effect, classify
from migration_tools.lint.collect import Collected
from migration_tools.lint.findings import Finding
from migration_tools.lint.settings import LintSettings
from migration_tools.lint.sizes import Catalog
from migration_tools.lint.statement import Statement
from migration_tools.lint.tracking import Columns, Plan


@dataclass
class LintReport:
    findings: list[Finding]
    statements: list[Statement]
    version: int | None
    online: bool
    one_transaction: bool
    threshold: int
    skipped: list[str] = field(default_factory=list)  # migrations that only touch tables new in the plan

    @property
    def failing(self) -> list[Finding]:
        return [f for f in self.findings if f.level == findings.FAIL]


def parse(collected: list[Collected], version: int | None) -> list[Statement]:
    """Every statement of every migration, parsed and classified, in plan order."""
    out = []
    for migration in collected:
        for chunk in migration.chunks:
            try:
                raws = parse_sql(chunk.sql)
            except ParseError as exc:  # the lint says it could not read it
                error = str(exc).splitlines()[0]
                out.append(Statement(migration, chunk.operation, chunk.sql.strip(), error=error,
                                     run_sql=chunk.run_sql, position=(chunk.index, len(out))))
                continue
            for raw in raws:
                end = raw.stmt_location + raw.stmt_len if raw.stmt_len else len(chunk.sql)
                text = chunk.sql[raw.stmt_location:end].strip()
                where = (chunk.index, len(out))
                try:
                    classified = classify(raw.stmt, version)
                except (AttributeError, TypeError, ValueError, IndexError) as exc:  # an unforeseen shape
                    out.append(Statement(migration, chunk.operation, text, error=f"not classified: {exc}",
                                         run_sql=chunk.run_sql, position=where))
                    continue
                out.append(Statement(migration, chunk.operation, text, classified, run_sql=chunk.run_sql,
                                     position=where))
    return out


def names(statements: list[Statement]) -> set[str]:
    """The relations the statements name: what the catalog is asked about."""
    found: set[str] = set()
    for statement in statements:
        found.update(e.table for e in statement.classified.effects)
        found.update(c.table for c in statement.classified.columns)
    return found


def analyse(statements: list[Statement], collected: list[Collected], catalog: Catalog,
            settings: LintSettings, *, one_transaction: bool) -> LintReport:
    plan = Plan(catalog, one_transaction=one_transaction)
    columns = Columns(catalog, {k: v for m in collected for k, v in m.column_types.items()})
    out: list[Finding] = []
    parsed: dict[tuple[str, int], int] = {}  # statements per (migration, operation): RunSQL's count
    for statement in statements:
        key = (statement.migration.label, statement.position[0])
        parsed[key] = parsed.get(key, 0) + 1
    for migration in collected:
        for review in migration.reviews:
            detail = dict(review.detail)
            if review.rule == "run-sql":
                detail["count"] = str(parsed.get((migration.label, review.index), 0))
            out.append(findings.make(review.rule, migration=migration.label, operation=review.operation,
                                     statement="", detail=detail, version=catalog.version,
                                     position=(review.index, -1)))
    for migration in collected:
        for table in migration.created_tables:
            plan.created(table, migration.label)
    last = collected[-1].label if collected else ""
    for statement in statements:
        out.extend(_statement(statement, plan, columns, catalog, last_migration=last))
    out.extend(columns.findings(catalog.version))
    out.extend(plan.findings(catalog.version))
    for finding in out:
        _size(finding, plan, catalog)
        marker = next((m.marker for m in collected if m.label == finding.migration), None)
        findings.decide(finding, settings.threshold, settings.reasons_for(finding.migration, marker))
    order = {m.label: i for i, m in enumerate(collected)}
    out.sort(key=lambda f: (order.get(f.migration, 0), f.position))
    return LintReport(out, statements, catalog.version, catalog.online, one_transaction, settings.threshold,
                      [m.label for m in collected if m.skipped])


def _statement(statement: Statement, plan: Plan, columns: Columns, catalog: Catalog, *,
               last_migration: str) -> list[Finding]:
    migration = statement.migration
    where: dict[str, Any] = {"migration": migration.label, "operation": statement.operation,
                             "statement": statement.text, "version": catalog.version,
                             "position": statement.position}
    if statement.error:
        return [findings.make("unparsed", detail={"error": statement.error}, **where)]
    cls = statement.classified
    out = []
    if cls.no_transaction and migration.atomic:
        out.append(findings.make("concurrent-in-transaction", **where))
    scope = plan.enter(statement)
    if cls.lock_timeout is not None:
        plan.set_lock_timeout(scope, *cls.lock_timeout)
    for table in cls.creates:
        plan.created(table, migration.label)
    for index, table in cls.indexes:
        plan.index_created(index, table)
    for effect in cls.effects:
        if not effect.table or plan.is_new(plan.resolve(effect.table), migration.label):
            continue
        held_mode, held_by = plan.hold(scope, effect.table, effect.lock, statement)
        finding = _effect(effect, held_mode, held_by, columns, where)
        if finding is not None:
            if (plan.one_transaction and migration.label != last_migration
                    and findings.blocks_application(finding)):
                finding.risk += " Its lock is held until the whole plan commits (one transaction)."
            out.append(finding)
    for old, new in cls.renames:
        plan.renamed(old, new, migration.label)
    for change in cls.columns:
        if not plan.is_new(change.table, migration.label):
            columns.apply(change, statement)
    return out


def _effect(effect: Effect, held_mode: str, held_by: str, columns: Columns,
            where: dict[str, Any]) -> Finding | None:
    rule, detail = effect.rule, dict(effect.detail)
    stronger = catalogue.strength(held_mode) > catalogue.strength(effect.lock)
    if rule == "alter-type":
        old = columns.type_of(effect.table, detail.get("column", ""))
        new = types.parse_type(detail.get("new_type", ""))
        change = types.compare(old, new) if new else types.TypeChange(True, False, False)
        if not change.rewrite:
            rule = None
        elif change.narrowing:
            rule = "narrow-type"
        detail["old_type"] = str(old) if old else "an unknown type"
    if rule is None:
        if not (stronger and effect.work != "none" and catalogue.blocks_of(held_mode)):
            return None
        rule = "held-lock"
        detail.update(held_by=held_by, lock=held_mode)
    finding = findings.make(rule, table=effect.table, lock=held_mode if stronger else effect.lock,
                            detail=detail, **where)
    if stronger and rule != "held-lock":
        finding.risk += f" The table is already held {held_mode} by {held_by} in this transaction."
    return finding


def _size(finding: Finding, plan: Plan, catalog: Catalog) -> None:
    if not finding.table:
        finding.size = ""
        return
    info = catalog.table(plan.resolve(finding.table)) if catalog.online else None
    if info is not None:
        finding.table = info.name if not info.via_index else f"{info.name} (index {finding.table})"
        finding.rows, finding.size_bytes = info.rows, info.bytes
    finding.size = findings.describe_table(finding.rows, finding.size_bytes, info is not None)

