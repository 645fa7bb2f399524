"""What bench/zd_load.py measured while one command ran: the longest statements per table, and the
part of each that the machine's noise does not explain.

The load runs the same reader and writer on a table the release does not touch (the control). A
pause of the whole machine (the virtual machine descheduled, the CPU shared with the command, a
slow fsync) delays every thread at once, the control's included; a lock the release holds delays
only the statements on its table. So for each statement on a touched table, its *lock stall* is
its latency minus the longest latency of the control's statements that overlapped it in time
(never below zero; with no overlapping control statement, its whole latency).
"""

from __future__ import annotations

import bisect
from typing import Any

Series = list[list[Any]]  # [started (epoch s), latency (s), ok]


def _inside(series: Series, start: float, end: float) -> list[tuple[float, float, bool]]:
    return [(float(s), float(lat), bool(ok)) for s, lat, ok in series if start <= s <= end]


class Control:
    """The control table's statements, searchable by time."""

    def __init__(self, statements: list[tuple[float, float, bool]]) -> None:
        self.items = sorted((s, s + lat, lat) for s, lat, _ok in statements)
        self.starts = [item[0] for item in self.items]
        self.longest = max((item[2] for item in self.items), default=0.0)

    def noise(self, started: float, ended: float) -> float:
        """The longest control statement overlapping [started, ended]."""
        first = bisect.bisect_left(self.starts, started - self.longest)
        last = bisect.bisect_right(self.starts, ended)
        return max((lat for s, e, lat in self.items[first:last] if e >= started), default=0.0)


def measure(load: dict[str, Series], start: float, end: float, control_table: str) -> dict[str, Any]:
    """Per touched table and overall: longest read and write (ms), their lock stalls, failures."""
    control = Control([st for key, series in load.items() if key.split(" ", 1)[1] == control_table
                       for st in _inside(series, start, end)])
    tables: dict[str, dict[str, float]] = {}
    for key, series in load.items():
        kind, table = key.split(" ", 1)
        if table == control_table:
            continue
        inside = _inside(series, start, end)
        entry = tables.setdefault(table, {"read_ms": 0.0, "write_ms": 0.0, "read_lock_ms": 0.0,
                                          "write_lock_ms": 0.0, "errors": 0, "statements": 0})
        entry[f"{kind}_ms"] = max((lat * 1000 for _s, lat, _ok in inside), default=0.0)
        entry[f"{kind}_lock_ms"] = max(
            (max(0.0, lat - control.noise(s, s + lat)) * 1000 for s, lat, _ok in inside), default=0.0)
        entry["errors"] += sum(1 for _s, _lat, ok in inside if not ok)
        entry["statements"] += len(inside)
    overall = {name: max((t[name] for t in tables.values()), default=0.0)
               for name in ("read_ms", "write_ms", "read_lock_ms", "write_lock_ms")}
    return {"tables": tables, **overall, "noise_ms": control.longest * 1000,
            "errors": sum(int(t["errors"]) for t in tables.values())}
