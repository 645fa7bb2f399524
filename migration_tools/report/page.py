"""One self-contained HTML page from a run's JSON report: no script, no network, prints on paper.

Every figure on the page is a value of the JSON, shown as it is there (a size is also shown in
human units beside its bytes); the chart is chart.py's inline SVG.
"""

from __future__ import annotations

from html import escape
from typing import Any

from migration_tools.core.redact import redact
from migration_tools.core.sizes import human_size
from migration_tools.report.chart import step_colour, timeline_svg

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:24px;color:#212121;
max-width:1100px}
h1{font-size:20px;margin:0 0 4px}h3{font-size:13px;margin:10px 0 4px}
h2{font-size:15px;margin:22px 0 6px;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:12.5px;margin:4px 0}td,th{border:1px solid #ddd;padding:3px 7px;
text-align:left;vertical-align:top}th{background:#f5f5f5}td:nth-child(3){white-space:nowrap}td.n{text-align:right;font-variant-numeric:tabular-nums}
.verdict{display:inline-block;padding:3px 10px;border-radius:4px;color:#fff;font-weight:600}
.ok{background:#2e7d32}.bad{background:#c62828}.warn{background:#ef6c00}
.chip{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px}
.muted{color:#757575}code{font-size:12px}svg{max-width:100%;height:auto}
@media print{body{margin:8mm}h2{break-after:avoid}table,svg{break-inside:avoid}}
"""


def _e(value: Any) -> str:
    return escape(redact(str(value)), quote=True)


def _na(value: Any) -> str:
    return "—" if value is None or value == "" else _e(value)


def verdict_of(report: dict[str, Any]) -> tuple[str, str]:
    """(text, css class): the command's own verdict, else one read from the exit code and outcome."""
    run = report.get("run") or {}
    code = run.get("exit_code")
    text = run.get("verdict") or {
        "success": "succeeded",
        "rolled_back": "failed, rolled back",
        "failed": "failed",
    }.get(str(report.get("outcome")), str(report.get("outcome") or "unknown"))
    css = (
        "ok"
        if code == 0 or (code is None and report.get("outcome") == "success")
        else "warn"
        if code == 3
        else "bad"
    )
    return str(text), css


def _table(head: list[str], rows: list[list[str]], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    out = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for row in rows:
        out.append(
            "<tr>"
            + "".join(
                f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(row)
            )
            + "</tr>"
        )
    out.append("</table>")
    return "".join(out)


def _header(report: dict[str, Any]) -> str:
    run = report.get("run") or {}
    text, css = verdict_of(report)
    where = f"{run.get('database')} on {run.get('host') or 'the local socket'}:{run.get('port')}"
    rows = [
        ["Verdict", f'<span class="verdict {css}" id="verdict">{_e(text)}</span>'],
        ["Command", _na(run.get("command"))],
        ["Database", _e(where) + (f" as {_e(run['db_user'])}" if run.get("db_user") else "")],
        [
            "Versions",
            f"kit {_na(run.get('kit_version'))}, Django {_na(run.get('django_version'))}, "
            f"PostgreSQL {_na(run.get('postgresql_version'))}",
        ],
        ["Run by", _na(run.get("os_user"))],
        ["Start", _na(report.get("started_at"))],
        ["End", _na(report.get("finished_at"))],
        ["Duration", f"{_na(report.get('duration_seconds'))} s"],
        ["Exit code", f'<span id="exit-code">{_na(run.get("exit_code"))}</span>'],
    ]
    return "<h1>Migration kit report</h1>" + _table(["", ""], rows)


def _steps(report: dict[str, Any]) -> str:
    steps = (report.get("timeline") or {}).get("steps") or []
    if not steps:
        return '<p class="muted">No steps were recorded.</p>'
    rows = [
        [
            f'<span class="chip" style="background:{step_colour(s)}"></span>{_e(s.get("name"))}',
            _e(s.get("kind")),
            _na(s.get("started_at")),
            _na(s.get("seconds")),
            _e(s.get("outcome")),
            _na(s.get("detail")),
        ]
        for s in steps
    ]
    return _table(["step", "kind", "start (UTC)", "seconds", "outcome", "detail"], rows, {3})


def timeline_steps(report: dict[str, Any]) -> list[dict[str, Any]]:
    return list((report.get("timeline") or {}).get("steps") or [])


def _migrations(report: dict[str, Any]) -> str:
    applied = {m.get("migration"): m for m in report.get("migrations") or []}
    steps = [s for s in (report.get("timeline") or {}).get("steps") or [] if s.get("kind") == "migration"]
    lint = report.get("lint") or {}
    names = list(dict.fromkeys([*(s.get("name") for s in steps), *applied]))
    if not names:
        return '<p class="muted">No migration ran.</p>'
    undone = any(s.get("kind") == "undo" and s.get("outcome") == "ok" for s in timeline_steps(report))
    rows = []
    for name in names:
        step = next((s for s in reversed(steps) if s.get("name") == name), {})
        outcome = str(step.get("outcome", "ok"))
        if outcome == "ok" and undone:
            outcome = "applied, then undone"
        seconds = applied[name].get("seconds") if name in applied else step.get("seconds")
        findings = "; ".join(str(f) for f in lint.get(name, [])) if name in lint else "not linted in this run"
        rows.append([_e(name), _na(seconds), _e(outcome), _e(findings)])
    return _table(["migration", "seconds", "outcome", "lint findings"], rows, {1})


def _backup(report: dict[str, Any]) -> str:
    parts = []
    for key, title in (("backup", "Backup taken"), ("restored", "Backup restored")):
        b = report.get(key)
        if not b:
            continue
        size = b.get("size_bytes")
        rows = [
            ["File", f"<code>{_na(b.get('file'))}</code>"],
            ["Path", f"<code>{_na(b.get('path'))}</code>"],
            ["Size", f"{_na(size)} bytes" + (f" ({human_size(int(size))})" if size is not None else "")],
            ["SHA-256", f"<code>{_na(b.get('sha256'))}</code>"],
            ["Rows", f"{_na(b.get('rows'))} in {_na(b.get('tables'))} tables"],
            ["Reason", _na(b.get("reason"))],
            ["Created", _na(b.get("created_at"))],
        ]
        rows += [
            [_e(k.replace("_", " ").capitalize()), _na(b[k])] for k in ("method", "kept", "undo") if k in b
        ]
        parts.append(f"<h3>{title}</h3>" + _table(["", ""], rows))
    return "".join(parts) or '<p class="muted">No backup was taken or restored by this run.</p>'


def _verify(report: dict[str, Any]) -> str:
    v = report.get("verify_data")
    if not v:
        return '<p class="muted">verify-data did not run in this run.</p>'
    rows = [[_e(c.get("label")), _na(c.get("rows"))] for c in v.get("counts") or []]
    head = (
        f"<p>{'passed' if v.get('ok') else 'FAILED'}: {_na(v.get('tables_checked'))} tables checked, "
        f"{_na(v.get('orphan_total'))} orphaned rows, {_na(v.get('duplicate_total'))} potential duplicates"
        + "".join(f"<br>problem: {_e(p)}" for p in v.get("problems") or [])
        + "</p>"
    )
    return head + (_table(["model", "rows"], rows, {1}) if rows else "")


def _resources(report: dict[str, Any]) -> str:
    keys = [
        ("avg_cpu_usage", "average CPU %"),
        ("max_cpu_usage", "peak CPU %"),
        ("avg_memory_usage", "average memory %"),
        ("max_memory_usage", "peak memory %"),
        ("peak_db_connections", "peak DB connections"),
        ("peak_lock_waits", "peak lock waits"),
        ("samples", "samples"),
        ("interval_seconds", "seconds between samples"),
    ]
    return _table(["figure", "value"], [[label, _na(report.get(key))] for key, label in keys], {1})


def _zero_downtime(report: dict[str, Any]) -> str:
    if "stalls_by_table" not in report and "health" not in report and "max_read_stall_ms" not in report:
        return ""
    out = [
        "<h2>Application during the run</h2><p>"
        f"longest read stall {_na(report.get('max_read_stall_ms'))} ms, longest write stall "
        f"{_na(report.get('max_write_stall_ms'))} ms, {_na(report.get('probe_failures'))} probe failures, "
        f"{_na(report.get('lock_retries'))} lock retries</p>"
    ]
    stalls = report.get("stalls_by_table") or {}
    if stalls:
        out.append(
            _table(
                ["table", "longest read stall ms", "longest write stall ms", "probe failures", "probes"],
                [
                    [
                        _e(t),
                        _na(s.get("max_read_stall_ms")),
                        _na(s.get("max_write_stall_ms")),
                        _na(s.get("probe_failures")),
                        _na(s.get("probes")),
                    ]
                    for t, s in sorted(stalls.items())
                ],
                {1, 2, 3, 4},
            )
        )
    retries = report.get("lock_retry_events") or []
    if retries:
        out.append(
            _table(
                ["at", "statement", "attempt", "waited ms"],
                [
                    [
                        _na(r.get("at")),
                        f"<code>{_e(r.get('statement'))}</code>",
                        _na(r.get("attempt")),
                        _na(r.get("waited_ms")),
                    ]
                    for r in retries
                ],
                {2, 3},
            )
        )
    health = report.get("health")
    if health:
        out.append(
            f'<p id="health">Health check {_na(health.get("url"))}: {_na(health.get("checks"))} checks, '
            f"{_na(health.get('failures'))} failures, slowest {_na(health.get('slowest_ms'))} ms, after the "
            f"migration: {_na(health.get('after_migration'))}</p>"
        )
    return "".join(out)


def _messages(report: dict[str, Any]) -> str:
    found = list((report.get("timeline") or {}).get("messages") or [])
    logged = {m.get("text") for m in found}
    found += [
        {"at": "", "level": "warning", "text": w}
        for w in report.get("monitor_warnings") or []
        if w not in logged and f"monitor: {w}" not in logged
    ]
    summary = (
        f"<p>{_na(report.get('total_errors'))} error(s) and {_na(report.get('total_warnings'))} "
        "warning(s) logged.</p>"
    )
    if not found:
        return summary
    return summary + _table(
        ["at", "level", "message"], [[_na(m.get("at")), _e(m.get("level")), _e(m.get("text"))] for m in found]
    )


def render(report: dict[str, Any]) -> str:
    text, _ = verdict_of(report)
    run = report.get("run") or {}
    title = f"{run.get('command') or 'run'} of {run.get('database') or 'database'}: {text}"
    try:
        chart = timeline_svg(report)
    except Exception as exc:  # a chart that cannot be drawn leaves the tables
        chart = f'<p class="muted">The chart could not be drawn: {_e(type(exc).__name__)}: {_e(exc)}</p>'
    body = [
        _header(report),
        "<h2>Timeline</h2>",
        f"<figure>{chart}</figure>",
        "<h2>Steps</h2>",
        _steps(report),
        "<h2>Migrations</h2>",
        _migrations(report),
        "<h2>Backup</h2>",
        _backup(report),
        "<h2>verify-data</h2>",
        _verify(report),
        _zero_downtime(report),
        "<h2>Machine and database</h2>",
        _resources(report),
        "<h2>Warnings and errors</h2>",
        _messages(report),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
