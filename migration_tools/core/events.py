"""The one shape in which the core tells what it is doing: migrate, backup and restore alike.

The core never prints. It calls a `Report` with `Event`s; the CLI decides how each looks (a live
line on a terminal, a plain line in a pipe, a mark) and the audit log records its own lines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Kind = Literal["step", "live", "ok", "warn", "fail", "migration"]


@dataclass(frozen=True)
class Event:
    kind: Kind
    text: str = ""
    # For kind "migration": one migration of a plan starting or done (applied or unapplied).
    phase: Literal["start", "done", ""] = ""
    label: str = ""
    index: int = 0
    total: int = 0
    seconds: float = 0.0
    backwards: bool = False


Report = Callable[[Event], None]


def step(text: str) -> Event:
    return Event("step", text)


def quiet(_event: Event) -> None:
    return None
