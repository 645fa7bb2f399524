"""The lint's catalogue, as data: for each kind of statement, the lock it takes, what that lock
blocks for the application, what it does to the table while holding it, whether it breaks the
previous release's running code, the risk, and the safe alternative.

`{sql}` in an alternative is filled with SQL built from the statement itself
(`lint.alternatives`); `{table}`, `{column}`, `{constraint}`, `{index}` with its names.
Lock facts follow PostgreSQL's "Explicit Locking" chapter; the stall figures behind the risks
are in the team's postgres-figures notes (sections 5 and 6).
"""

from __future__ import annotations

from dataclasses import dataclass

LOCK_MODES = (
    "ACCESS SHARE", "ROW SHARE", "ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE",
    "SHARE", "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE",
)
NO_LOCK = ""
READS, WRITES, ROW_WRITES = "reads", "writes", "writes to its rows"


def strength(mode: str) -> int:
    """1 (ACCESS SHARE) to 8 (ACCESS EXCLUSIVE); 0 for no table lock."""
    return LOCK_MODES.index(mode) + 1 if mode in LOCK_MODES else 0


def lock_mode(number: int) -> str:
    """The mode of a LOCK TABLE statement's numeric mode (1 to 8)."""
    return LOCK_MODES[number - 1] if 1 <= number <= len(LOCK_MODES) else "ACCESS EXCLUSIVE"


def blocks_of(mode: str) -> tuple[str, ...]:
    """What a table lock held by the migration blocks for the application's statements.

    Plain SELECTs take ACCESS SHARE (only ACCESS EXCLUSIVE conflicts); INSERT/UPDATE/DELETE
    take ROW EXCLUSIVE (SHARE and stronger conflict).
    """
    level = strength(mode)
    if level == 8:
        return (READS, WRITES)
    return (WRITES,) if level >= 5 else ()


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    lock: str
    blocks: tuple[str, ...]
    work: str  # "none", "scan" (reads the whole table) or "rewrite" (writes a new copy)
    breaks: bool  # breaks code of the previous release that is still running
    risk: str
    alternative: str


NOT_VALID_NOTE = (
    "Commit the two steps separately (two migrations with --commit-each, or a non-atomic "
    "migration): in one transaction the first step's lock is held through the validation."
)
EXPAND_CONTRACT = (
    "expand/contract over two releases: this release adds the new {what} and writes both; a "
    "backfill copies the old values in batches; the next release reads the new one; the release "
    "after drops the old one."
)

_RULES = (
    Rule("create-index", "CREATE INDEX without CONCURRENTLY", "SHARE", (WRITES,), "scan", False,
         "writes to the table wait for the whole index build.",
         "{sql}  -- Django: AddIndexConcurrently (django.contrib.postgres.operations) in a "
         "migration with atomic = False."),
    Rule("drop-index", "DROP INDEX without CONCURRENTLY", "ACCESS EXCLUSIVE", (READS, WRITES), "none",
         False, "brief, but queued behind any open transaction on the table it stalls every reader.",
         "{sql}  -- Django: RemoveIndexConcurrently in a migration with atomic = False."),
    Rule("reindex", "REINDEX without CONCURRENTLY", "SHARE", (READS, WRITES), "scan", False,
         "writes wait for the rebuild, and so do reads that plan on the table (the index is held "
         "ACCESS EXCLUSIVE).", "{sql}"),
    Rule("add-foreign-key", "ADD FOREIGN KEY without NOT VALID", "SHARE ROW EXCLUSIVE", (WRITES,),
         "scan", False,
         "writes to this table and to {ref_table} wait while every row is checked.",
         "{sql}  -- " + NOT_VALID_NOTE + " Django: add the field with db_constraint=False, then "
         "SeparateDatabaseAndState holding this RunSQL."),
    Rule("add-check", "ADD CHECK without NOT VALID", "ACCESS EXCLUSIVE", (READS, WRITES), "scan", False,
         "reads and writes wait while every row is checked.",
         "{sql}  -- " + NOT_VALID_NOTE + " Django: RunSQL in SeparateDatabaseAndState with "
         "state_operations=[AddConstraint(...)]."),
    Rule("set-not-null", "SET NOT NULL", "ACCESS EXCLUSIVE", (READS, WRITES), "scan", False,
         "reads and writes wait while every row is checked for NULLs.",
         "{sql}  -- " + NOT_VALID_NOTE),
    Rule("add-unique", "ADD UNIQUE / PRIMARY KEY building its index", "ACCESS EXCLUSIVE",
         (READS, WRITES), "scan", False,
         "reads and writes wait for the whole unique index build.",
         "{sql}  -- Django: SeparateDatabaseAndState(state_operations=[the AddConstraint/AlterField], "
         "database_operations=[RunSQL of these]) in a migration with atomic = False."),
    Rule("add-exclude", "ADD EXCLUDE constraint", "ACCESS EXCLUSIVE", (READS, WRITES), "scan", False,
         "reads and writes wait for the whole index build; there is no NOT VALID or concurrent form.",
         "enforce the rule in the application first, then add the constraint in a maintenance "
         "window, or on a new (empty) table that replaces this one."),
    Rule("add-column-volatile-default", "ADD COLUMN with a volatile default", "ACCESS EXCLUSIVE",
         (READS, WRITES), "rewrite", False,
         "the default ({default}) is computed for every row: the whole table is rewritten while "
         "reads and writes wait.",
         "{sql}  -- then backfill existing rows in batches (UPDATE ... WHERE id BETWEEN ...), each "
         "committed. Django: the field without a volatile default, a batched RunPython, "
         "then the default."),
    Rule("add-column-default-pre11", "ADD COLUMN with a default before PostgreSQL 11", "ACCESS EXCLUSIVE",
         (READS, WRITES), "rewrite", False,
         "before PostgreSQL 11 any default rewrites the whole table while reads and writes wait.",
         "{sql}  -- then backfill in batches; or upgrade: PostgreSQL 11+ stores a constant "
         "default without a rewrite."),
    Rule("add-column-rewrite", "ADD COLUMN that fills every row (identity, serial, stored generated)",
         "ACCESS EXCLUSIVE", (READS, WRITES), "rewrite", False,
         "every row gets a computed value: the whole table is rewritten while reads and writes wait.",
         "add a plain nullable column, backfill it in batches, then attach the sequence or "
         "identity; a stored generated column has no online form."),
    Rule("alter-type", "ALTER COLUMN TYPE with a rewrite", "ACCESS EXCLUSIVE", (READS, WRITES),
         "rewrite", False,
         "{old_type} to {new_type} rewrites the table and rebuilds its indexes while reads and "
         "writes wait.",
         EXPAND_CONTRACT.format(what="column of the new type")),
    Rule("narrow-type", "ALTER COLUMN TYPE to a narrower type", "ACCESS EXCLUSIVE", (READS, WRITES),
         "rewrite", True,
         "{old_type} to {new_type}: values the previous release still writes may not fit, and "
         "the table is rewritten while reads and writes wait.",
         EXPAND_CONTRACT.format(what="column of the narrower type")),
    Rule("rename-column", "RENAME COLUMN", "ACCESS EXCLUSIVE", (READS, WRITES), "none", True,
         "the previous release still reads and writes \"{column}\": its queries fail from the "
         "moment this commits until it is replaced.",
         "rename in Python only: keep db_column=\"{column}\" on the renamed field; or "
         + EXPAND_CONTRACT.format(what="column")),
    Rule("rename-table", "RENAME TABLE", "ACCESS EXCLUSIVE", (READS, WRITES), "none", True,
         "the previous release still queries \"{table}\": its queries fail until it is replaced.",
         "rename in Python only: Meta.db_table = \"{table}\"; or, in SQL, {sql}"),
    Rule("drop-column", "DROP COLUMN", "ACCESS EXCLUSIVE", (READS, WRITES), "none", True,
         "the previous release still selects \"{column}\": its queries on the table fail.",
         "two releases: first remove the field from the model only "
         "(SeparateDatabaseAndState(state_operations=[RemoveField(...)]), with the column made "
         "nullable or given a db_default), then drop the column in the next release."),
    Rule("drop-table", "DROP TABLE", "ACCESS EXCLUSIVE", (READS, WRITES), "none", True,
         "the previous release still queries \"{table}\": its queries fail.",
         "two releases: DeleteModel in SeparateDatabaseAndState(state_operations=[...]) first, "
         "the DROP TABLE in the next release."),
    Rule("not-null-without-default", "NOT NULL column without a database default", "ACCESS EXCLUSIVE",
         (READS, WRITES), "none", True,
         "the previous release inserts rows without \"{column}\" (or with NULL): with NOT NULL and "
         "no database default those inserts fail.",
         "keep a database default: Django 5.0+ db_default=... (the DEFAULT stays in the database); "
         "or add the column nullable in this release and make it NOT NULL in the next."),
    Rule("drop-default", "DROP DEFAULT on a column the previous release may omit", "ACCESS EXCLUSIVE",
         (READS, WRITES), "none", False,
         "if the previous release relies on the database default of \"{column}\" (db_default), its "
         "inserts get NULL or fail.",
         "drop the default one release after the code that stopped relying on it."),
    Rule("vacuum-full", "VACUUM FULL", "ACCESS EXCLUSIVE", (READS, WRITES), "rewrite", False,
         "the whole table is rewritten while reads and writes wait; it also cannot run inside a "
         "transaction block.",
         "pg_repack (or pg_squeeze) rewrites online; plain VACUUM reclaims space for reuse "
         "without a lock that blocks."),
    Rule("cluster", "CLUSTER", "ACCESS EXCLUSIVE", (READS, WRITES), "rewrite", False,
         "the whole table is rewritten in index order while reads and writes wait.",
         "pg_repack --order-by rewrites online."),
    Rule("lock-table", "LOCK TABLE", "ACCESS EXCLUSIVE", (READS, WRITES), "none", False,
         "the lock ({lock}) is held until the transaction ends: with the kit's one transaction, "
         "until the whole plan commits.",
         "drop the explicit lock: every statement takes the lock it needs; set lock_timeout instead."),
    Rule("concurrent-in-transaction", "CONCURRENTLY (or VACUUM) inside a transaction",
         "SHARE UPDATE EXCLUSIVE", (), "scan", False,
         "PostgreSQL refuses it inside a transaction block: the migration fails when it runs.",
         "set atomic = False on the migration (the kit then commits each migration on its own)."),
    Rule("concurrent-pg14-bug", "CONCURRENTLY on PostgreSQL 14.0 to 14.3", "SHARE UPDATE EXCLUSIVE",
         (), "scan", False,
         "on 14.0 to 14.3 a concurrent build or reindex can miss rows that are updated meanwhile: "
         "a silently corrupt index.",
         "upgrade to 14.4 or later first; check indexes built on 14.0 to 14.3 with amcheck "
         "(bt_index_check(index, true)) and REINDEX CONCURRENTLY the bad ones."),
    Rule("needs-pg18", "NOT NULL ... NOT VALID before PostgreSQL 18", "ACCESS EXCLUSIVE",
         (READS, WRITES), "none", False,
         "NOT NULL constraints take NOT VALID only from PostgreSQL 18: the statement fails here.",
         "ALTER TABLE {table} ADD CONSTRAINT {constraint}_check CHECK ({column} IS NOT NULL) "
         "NOT VALID; then VALIDATE CONSTRAINT, SET NOT NULL, DROP CONSTRAINT."),
    Rule("held-lock", "scan under a lock taken earlier in the same transaction", "ACCESS EXCLUSIVE",
         (READS, WRITES), "scan", False,
         "this statement alone would not block, but {held_by} already holds {lock} on the table "
         "in the same transaction, so the application waits for this scan too.",
         "run the two steps in separate transactions: --commit-each, or separate non-atomic "
         "migrations."),
    Rule("multi-table-access-exclusive", "ACCESS EXCLUSIVE on several tables in one transaction",
         "ACCESS EXCLUSIVE", (READS, WRITES), "none", False,
         "{tables} are each locked ACCESS EXCLUSIVE until the {scope} commits: the first stays "
         "locked while the later ones wait for their locks and run, and sessions taking the tables "
         "in another order can deadlock.",
         "--commit-each (each migration commits on its own), or split the release."),
    Rule("no-lock-timeout", "DDL without a lock_timeout", NO_LOCK, (), "none", False,
         "{count} statement(s) take locks that conflict with the application ({tables}) with "
         "lock_timeout {timeout}: queued behind one long transaction, each stalls every later "
         "reader and writer of the table for as long as that transaction lasts.",
         "SET lock_timeout = '500ms' for the migration session (DATABASES OPTIONS "
         "{{\"options\": \"-c lock_timeout=500\"}}, or RunSQL(\"SET LOCAL lock_timeout = '500ms'\") "
         "first in the migration), and retry on timeout."),
    Rule("data-change", "UPDATE / DELETE / INSERT in a migration", "ROW EXCLUSIVE", (ROW_WRITES,), "scan",
         False,
         "the rows it changes stay locked until the transaction commits (with the kit's one "
         "transaction, the whole plan); a large change also bloats the table.",
         "backfill in batches, each committed (a non-atomic migration), or after the release."),
    Rule("run-python", "RunPython: review by hand", NO_LOCK, (ROW_WRITES,), "none", False,
         "{function} runs arbitrary code; reverse: {reverse}.",
         "keep it fast and batched, and give it a reverse_code (RunPython.noop only if undoing "
         "really needs nothing)."),
    Rule("run-sql", "RunSQL: review by hand", NO_LOCK, (), "none", False,
         "{count} statement(s), each classified below; reverse_sql: {reverse}.",
         "give it a reverse_sql, so an undo by reverse operations can run."),
    Rule("unparsed", "SQL the parser could not read", NO_LOCK, (), "none", False,
         "the lint cannot tell what this takes: {error}.", "review the statement by hand."),
    Rule("not-collected", "SQL that could not be collected", NO_LOCK, (), "none", False,
         "Django could not render the operation's SQL here: {error}.",
         "run check-migrations against the database (not --offline), or review by hand."),
)

RULES: dict[str, Rule] = {rule.id: rule for rule in _RULES}
