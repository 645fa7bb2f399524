"""The report's timeline chart: matplotlib (Agg) drawn to an inline SVG, text kept as text.

One time axis (seconds since the run started) shared by stacked panels: the steps as bars coloured
by outcome, CPU and memory %, database connections and lock waits (per table where measured), and
the application's read/write stalls per table when a zero-downtime probe measured them.
"""

from __future__ import annotations

import io
import re
from datetime import datetime
from typing import Any

OUTCOME_COLOURS = {
    "ok": "#2e7d32",
    "failed": "#c62828",
    "unfinished": "#9e9e9e",
    "running": "#9e9e9e",
    "skipped": "#bdbdbd",
}
UNDO_COLOUR = "#ef6c00"
MAX_STEP_ROWS = 40


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def step_colour(step: dict[str, Any]) -> str:
    if step.get("kind") in ("undo", "unapply") and step.get("outcome") == "ok":
        return UNDO_COLOUR
    return OUTCOME_COLOURS.get(str(step.get("outcome")), "#9e9e9e")


def _offsets(points: list[dict[str, Any]], start: datetime, key: str = "at") -> list[float]:
    found = []
    for point in points:
        moment = parse_time(point.get(key))
        found.append(0.0 if moment is None else (moment - start).total_seconds())
    return found


def timeline_svg(report: dict[str, Any]) -> str:
    """The chart as an `<svg>` element (no XML prologue), ready to sit inside the page."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams.update(
        {"svg.fonttype": "none", "svg.hashsalt": "migration-kit", "font.size": 9, "font.family": "sans-serif"}
    )
    from matplotlib import pyplot as plt

    timeline = report.get("timeline") or {}
    steps = list(timeline.get("steps") or [])[-MAX_STEP_ROWS:]
    samples = list(timeline.get("samples") or [])
    stalls = list(report.get("stall_timeline") or [])
    # The report's started_at is whole seconds: the first step or sample is the precise start.
    moments = [*(parse_time(s.get("started_at")) for s in steps), *(parse_time(s.get("at")) for s in samples)]
    known = [m for m in moments if m is not None] or [m for m in [parse_time(report.get("started_at"))] if m]
    start = min(known) if known else datetime.now().astimezone()
    ends = [parse_time(report.get("finished_at")), *(parse_time(s.get("finished_at")) for s in steps)]
    panels = ["steps", "system", "database"] + (["stalls"] if stalls else [])
    heights = {"steps": max(1.2, 0.24 * len(steps) + 0.5), "system": 1.3, "database": 1.3, "stalls": 1.3}
    fig, axes = plt.subplots(
        len(panels),
        1,
        sharex=True,
        figsize=(10, sum(heights[p] for p in panels)),
        gridspec_kw={"height_ratios": [heights[p] for p in panels]},
    )
    ax = dict(zip(panels, axes, strict=True))
    _steps(ax["steps"], steps, start)
    times = _offsets(samples, start)
    _system(ax["system"], samples, times)
    _database(ax["database"], samples, times)
    if stalls:
        _stalls(ax["stalls"], stalls, start)
    right = max([*(times or [0.0]), *((e - start).total_seconds() for e in ends if e is not None), 1.0])
    axes[-1].set_xlim(0, right * 1.02)
    axes[-1].set_xlabel(f"seconds since {start:%Y-%m-%d %H:%M:%S} UTC")
    for each in axes:
        each.grid(axis="x", color="#e0e0e0", linewidth=0.6)
        each.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    text = buffer.getvalue()
    return re.sub(r"^.*?(<svg\b)", r"\1", text, count=1, flags=re.DOTALL)


def _steps(axis: Any, steps: list[dict[str, Any]], start: datetime) -> None:
    labels = []
    for row, step in enumerate(reversed(steps)):
        began, ended = parse_time(step.get("started_at")), parse_time(step.get("finished_at"))
        if began is None:
            continue
        left = (began - start).total_seconds()
        width = max(((ended or began) - began).total_seconds(), 0.0)
        axis.broken_barh([(left, max(width, 0.02))], (row - 0.38, 0.76), facecolors=step_colour(step))
        name = str(step.get("name"))
        prefix = {"unapply": "undo ", "migration": ""}.get(str(step.get("kind")), "")
        labels.append(f"{prefix}{name}"[:60] + (" (FAILED)" if step.get("outcome") == "failed" else ""))
    axis.set_yticks(range(len(labels)), labels)
    axis.set_ylim(-0.7, max(len(labels), 1) - 0.3)
    axis.set_title("steps (green ok, red failed, orange undo, grey unfinished)", loc="left", fontsize=9)


def _system(axis: Any, samples: list[dict[str, Any]], times: list[float]) -> None:
    axis.plot(times, [s.get("cpu") for s in samples], color="#1565c0", marker=".", label="CPU %")
    axis.plot(times, [s.get("mem") for s in samples], color="#6a1b9a", marker=".", label="memory %")
    axis.set_ylim(0, 100)
    axis.set_ylabel("%")
    axis.legend(loc="upper left", fontsize=8, frameon=False, ncols=2)


def _database(axis: Any, samples: list[dict[str, Any]], times: list[float]) -> None:
    known = [(t, s) for t, s in zip(times, samples, strict=True) if s.get("connections") is not None]
    axis.step(
        [t for t, _ in known],
        [s["connections"] for _, s in known],
        where="post",
        color="#00838f",
        label="DB connections",
    )
    axis.step(
        [t for t, _ in known],
        [s.get("lock_waits") or 0 for _, s in known],
        where="post",
        color="#c62828",
        label="lock waits",
    )
    tables = sorted({table for _, s in known for table in (s.get("lock_waits_by_table") or {})})
    for table in tables[:6]:
        axis.plot(
            [t for t, _ in known],
            [(s.get("lock_waits_by_table") or {}).get(table, 0) for _, s in known],
            linestyle="--",
            linewidth=1,
            label=f"lock waits on {table}",
        )
    axis.set_ylim(bottom=0)
    axis.set_ylabel("count")
    axis.legend(loc="upper left", fontsize=8, frameon=False, ncols=3)


def _stalls(axis: Any, stalls: list[dict[str, Any]], start: datetime) -> None:
    for table in sorted({str(s.get("table")) for s in stalls}):
        mine = [s for s in stalls if str(s.get("table")) == table]
        times = _offsets(mine, start)
        for key, marker in (("read_ms", "o"), ("write_ms", "s")):
            values = [(t, s.get(key)) for t, s in zip(times, mine, strict=True) if s.get(key) is not None]
            if values:
                axis.plot(
                    [t for t, _ in values],
                    [v for _, v in values],
                    marker=marker,
                    markersize=3,
                    linewidth=0.8,
                    label=f"{table} {key[:-3]} stall",
                )
    axis.set_ylabel("ms")
    axis.set_ylim(bottom=0)
    axis.legend(loc="upper left", fontsize=8, frameon=False, ncols=2)
