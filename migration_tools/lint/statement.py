"""One statement of the plan, as the lint sees it: where it comes from, its text, what it does."""

from __future__ import annotations

from dataclasses import dataclass, field

from migration_tools.lint.classify import Classified
from migration_tools.lint.collect import Collected


@dataclass
class Statement:
    migration: Collected
    operation: str
    text: str
    classified: Classified = field(default_factory=Classified)
    error: str = ""
    run_sql: bool = False
    position: tuple[int, int] = (0, 0)  # (operation, statement) in its migration
