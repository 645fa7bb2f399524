"""A finding: one catalogue rule matched by one statement, joined with the table's size, and
the level it earns (fail, accepted, warn). Pure."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from migration_tools.core.errors import OperationFailed, prog_name
from migration_tools.lint import alternatives, catalogue
from migration_tools.lint.catalogue import READS, RULES, WRITES
from migration_tools.lint.settings import accepted

FAIL, ACCEPTED, WARN = "fail", "accepted", "warn"
SHORT = 60


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "?"


@dataclass
class Finding:
    migration: str
    operation: str
    statement: str  # the whole statement; "" for a RunPython or a RunSQL as a whole
    rule: str
    title: str
    lock: str
    blocks: tuple[str, ...]
    work: str
    breaks: bool
    table: str = ""
    rows: int | None = None
    size_bytes: int | None = None
    size: str = "unknown"  # "new table", "unknown", or a size the operator reads
    risk: str = ""
    alternative: str = ""
    level: str = WARN
    why: str = ""  # why it fails, or what accepted it
    detail: dict[str, str] = field(default_factory=dict)
    position: tuple[int, int] = (0, 0)  # (operation, statement) in its migration: the display order

    @property
    def short(self) -> str:
        text = " ".join(self.statement.split())
        return text if len(text) <= SHORT else text[: SHORT - 3] + "..."

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["blocks"] = list(self.blocks)
        del data["position"]
        return data


def describe_table(rows: int | None, size_bytes: int | None, known: bool) -> str:
    from migration_tools.core.sizes import human_size

    if not known:
        return "unknown"
    if rows is None:
        return f"{human_size(size_bytes or 0)}, never analysed"
    return f"{rows:,} rows, {human_size(size_bytes or 0)}"


def make(rule_id: str, *, migration: str, operation: str, statement: str, table: str = "",
         lock: str | None = None, detail: dict[str, str] | None = None,
         version: int | None = None, position: tuple[int, int] = (0, 0)) -> Finding:
    """A finding of a catalogue rule; `lock` overrides the rule's when the statement holds more."""
    rule = RULES[rule_id]
    detail = dict(detail or {})
    detail.setdefault("table", table)
    mode = lock or rule.lock
    blocks = rule.blocks
    if catalogue.strength(mode) > catalogue.strength(rule.lock):
        blocks = tuple(dict.fromkeys(catalogue.blocks_of(mode) + rule.blocks))
    if rule_id == "lock-table":
        blocks = catalogue.blocks_of(mode)
    if catalogue.ROW_WRITES in blocks and WRITES in blocks:
        blocks = tuple(b for b in blocks if b != catalogue.ROW_WRITES)
    sql = alternatives.build(rule_id, statement, detail, version) if statement else ""
    template = rule.alternative if sql else rule.alternative.replace("{sql}  -- ", "").replace("{sql}", "")
    return Finding(
        migration=migration, operation=operation, statement=statement, rule=rule_id, title=rule.title,
        lock=mode, blocks=blocks, work=rule.work, breaks=rule.breaks, table=table,
        risk=rule.risk.format_map(_Blank(detail)),
        alternative=template.format_map(_Blank(detail | {"sql": sql})).strip(), detail=detail,
        position=position,
    )


def blocks_application(finding: Finding) -> bool:
    return READS in finding.blocks or WRITES in finding.blocks


def decide(finding: Finding, threshold: int, reasons: dict[str, str]) -> None:
    """Set the level: fail when it breaks the running code, or blocks reads or writes while
    scanning or rewriting a table above the threshold; accepted when the migration says so."""
    from migration_tools.core.sizes import human_size

    why = ""
    if finding.breaks:
        why = "breaks the previous release's running code"
    elif (blocks_application(finding) and finding.work in ("scan", "rewrite")
          and finding.size_bytes is not None and finding.size_bytes > threshold):
        blocked = " and ".join(b for b in finding.blocks if b in (READS, WRITES))
        doing = "rewrites" if finding.work == "rewrite" else "scans"
        why = f"blocks {blocked} while it {doing} a table above {human_size(threshold)}"
    if not why:
        finding.level = WARN
        return
    reason = accepted(reasons, finding.rule)
    finding.level, finding.why = (ACCEPTED, f"accepted: {reason}") if reason else (FAIL, why)


def unsafe_error(failing: list[Finding], command: str) -> OperationFailed:
    """The one line a refused plan ends with: how many, the first with its safe alternative."""
    first = failing[0]
    where = f" on {first.table}" if first.table else ""
    return OperationFailed(
        "lint-unsafe",
        f"{len(failing)} statement(s) of the plan would break the running code or block the application; "
        f"first: {first.migration}: {first.title}{where} ({first.why}); instead: "
        f"{first.alternative.rstrip('.')}; nothing was changed",
        "make it safe, or accept it with migration_kit_accept = [\"reason\"] on the migration, or pass "
        f"--allow-unsafe; then run {prog_name()} {command} again "
        f"({prog_name()} check-migrations lists them all)",
    )
