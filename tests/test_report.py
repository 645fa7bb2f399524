"""The HTML report of real runs of the demo, opened by Debian's headless chromium.

A monitored full-deploy writes report_<ts>.html beside its JSON: chromium loads it with no console
error, a screenshot is taken, its text holds the verdict, every migration and the backup file, and
every number it shows is the JSON's. A failed, undone run shows the failure and the undo on the
timeline. `rollback_manager.py report` renders a page again and lists the reports; a rollback
writes its own report.
"""

from __future__ import annotations

import html
import json
import re
import stat
from pathlib import Path
from typing import Any

import pytest

from devtools import browser
from migration_tools.core.sizes import human_size
from tests.support import Database, backup_files, take_backup

FAILING = {"DJANGO_SETTINGS_MODULE": "tests.fixtures.failing_settings"}
NUMBER = re.compile(r"\d+(?:\.\d+)?")


@pytest.fixture(scope="module", autouse=True)
def _chromium() -> None:
    browser.chromium()  # raises, naming the package, when it is missing: never a silent skip


def the_report(db: Database) -> tuple[Path, dict[str, Any], Path]:
    [json_path] = sorted((db.workdir / "migration_monitoring").glob("report_*.json"))[-1:]
    page = json_path.with_suffix(".html")
    assert page.is_file()
    for path in (json_path, page):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    return json_path, json.loads(json_path.read_text()), page


def page_text(dom: str) -> str:
    """What a reader sees outside the chart: the DOM's text without the SVG and the style."""
    dom = re.sub(r"<svg\b.*?</svg>|<style>.*?</style>", " ", dom, flags=re.DOTALL)
    return html.unescape(re.sub(r"<[^>]+>", " ", dom))


def rows(dom: str) -> list[list[str]]:
    found = []
    for row in re.findall(r"<tr>(.*?)</tr>", dom, flags=re.DOTALL):
        cells = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, flags=re.DOTALL)
        found.append([html.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in cells])
    return found


def test_a_full_deploy_writes_a_page_that_a_browser_shows_and_that_agrees_with_the_json(
    demo_db: Database, tmp_path: Path
):
    result = demo_db.script("full-deploy", "--monitor", "--interval", "0.3")
    assert result.returncode == 0, result.stdout + result.stderr
    _, report, page = the_report(demo_db)
    assert f"HTML report: {page}" in result.stdout

    opened = browser.open_page(page)
    assert opened.console == []  # no script error, nothing on the console
    shot = tmp_path / "report.png"
    assert browser.screenshot(page, shot) == []
    assert shot.stat().st_size > 20_000

    text = page_text(opened.dom)
    assert "deployed" in text and report["run"]["verdict"] == "deployed"
    names = [m["migration"] for m in report["migrations"]]
    assert len(names) == 5
    for name in names:
        assert name in text
    backup = report["backup"]
    assert backup["file"].startswith("medguard_backup_") and backup["file"] in text
    assert demo_db.env["DB_PASSWORD"] not in page.read_text()

    # Every number on the page is one of the JSON's values (a size also in human units).
    haystack = json.dumps(report) + human_size(backup["size_bytes"])
    for token in NUMBER.findall(text):
        assert token in haystack, token
    table = {r[0]: r[1:] for r in rows(opened.dom) if r}
    assert table["Duration"] == [f"{report['duration_seconds']} s"]
    assert table["Exit code"] == ["0"]
    assert table["Size"][0].startswith(f"{backup['size_bytes']} bytes")
    assert table["Rows"] == [f"{backup['rows']} in {backup['tables']} tables"]
    for migration in report["migrations"]:
        assert table[migration["migration"]][0] == str(migration["seconds"])
    steps = {s["name"]: s for s in report["timeline"]["steps"]}
    assert {"pre-flight", "check-migrations", "backup", "migrate", "verify-data", "check --deploy"} <= set(
        steps
    )
    assert all(s["outcome"] == "ok" for s in steps.values())
    for label, key in (
        ("peak CPU %", "max_cpu_usage"),
        ("samples", "samples"),
        ("peak DB connections", "peak_db_connections"),
    ):
        assert table[label] == [str(report[key])]
    assert report["samples"] >= 2 and len(report["timeline"]["samples"]) == report["samples"]
    for count in report["verify_data"]["counts"]:
        assert table[count["label"]] == [str(count["rows"])]


def test_a_failed_and_undone_run_shows_the_failure_and_the_undo_on_the_timeline(demo_db: Database):
    result = demo_db.script("migrate", "--monitor", "--interval", "0.3", env=FAILING)
    assert result.returncode == 3, result.stdout + result.stderr
    _, report, page = the_report(demo_db)
    steps = report["timeline"]["steps"]
    [failed] = [s for s in steps if s["outcome"] == "failed"]
    assert failed["name"] == "failing_app.0002_boom" and failed["kind"] == "migration"
    [undo] = [s for s in steps if s["kind"] == "undo"]
    assert undo["outcome"] == "ok" and undo["started_at"] >= failed["finished_at"]
    assert report["run"]["exit_code"] == 3 and report["run"]["verdict"] == "failed and rolled back"

    dom = browser.open_page(page).dom
    chart = re.search(r"<svg\b.*?</svg>", dom, flags=re.DOTALL)
    assert chart is not None
    assert "failing_app.0002_boom (FAILED)" in chart.group(0) and ">undo<" in chart.group(0).replace(" ", "")
    step_rows = {r[0]: r[1:] for r in rows(dom) if len(r) == 6}  # the steps table
    assert step_rows["failing_app.0002_boom"][:4] == [
        "migration",
        failed["started_at"],
        str(failed["seconds"]),
        "failed",
    ]
    assert step_rows["undo"][0] == "undo" and step_rows["undo"][3] == "ok"
    assert "failed and rolled back" in page_text(dom)
    assert any("failing_app.0002_boom" in m["text"] for m in report["timeline"]["messages"])


def test_a_rollback_writes_a_report_and_report_renders_and_lists_them(db: Database):
    take_backup(db)
    dump, _, _ = backup_files(db)
    rolled = db.rollback_manager("rollback", dump.name, "--yes")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    json_path, report, page = the_report(db)
    assert report["run"]["command"] == "rollback" and report["run"]["exit_code"] == 0
    assert report["restored"]["file"] == dump.name and report["restored"]["method"] == "swap"
    assert [s["name"] for s in report["timeline"]["steps"]] == [f"restore {dump.name}"]
    assert rolled.stdout.splitlines()[-1].startswith("OK: database ")

    listed = db.rollback_manager("report")
    assert listed.returncode == 0, listed.stderr
    [line] = [ln for ln in listed.stdout.splitlines() if ln.startswith(json_path.name)]
    assert "rollback" in line and f"rolled back to {dump.name}" in line

    page.unlink()
    again = db.rollback_manager("report", json_path.name)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1] == f"OK: rendered {page.name} from {json_path.name}"
    assert page.is_file() and stat.S_IMODE(page.stat().st_mode) == 0o600

    missing = db.rollback_manager("report", "report_19990101_000000.json")
    assert missing.returncode == 2
    assert missing.stderr.strip().endswith("[report-not-found]")
    assert "nothing was written" in missing.stderr


def test_the_zero_downtime_keys_are_shown_as_stalls_per_table_on_the_chart_and_in_tables(tmp_path: Path):
    from migration_tools.deploy.monitor import MigrationMonitor

    monitor = MigrationMonitor(tmp_path / "migration_monitoring", interval=0.1, command="zero-downtime")
    monitor.start_monitoring()
    at = monitor.get_performance_report()["started_at"]
    monitor.add_section(
        "availability",
        lambda: {
            "max_read_stall_ms": 6.5,
            "max_write_stall_ms": 1200.0,
            "probe_failures": 1,
            "stalls_by_table": {
                "public.medications_doselog": {
                    "max_read_stall_ms": 6.5,
                    "max_write_stall_ms": 1200.0,
                    "probe_failures": 1,
                    "probes": 42,
                }
            },
            "stall_timeline": [
                {"at": at, "table": "public.medications_doselog", "read_ms": 6.5, "write_ms": 1200.0}
            ],
        },
    )
    monitor.add_section(
        "lock_retries",
        lambda: {
            "lock_retries": 2,
            "lock_retry_events": [
                {"at": at, "statement": "ALTER TABLE x ADD y int", "attempt": 2, "waited_ms": 2001}
            ],
        },
    )
    monitor.add_section(
        "health",
        lambda: {
            "health": {
                "url": "http://127.0.0.1:1/health/",
                "checks": 9,
                "failures": 0,
                "slowest_ms": 31.5,
                "after_migration": "ok",
            }
        },
    )
    monitor.finish(exit_code=0, verdict="migrated without downtime")
    monitor.stop_monitoring()
    assert monitor.html_path is not None
    dom = browser.open_page(monitor.html_path).dom
    assert "public.medications_doselog read stall" in dom and "public.medications_doselog write stall" in dom
    table = {r[0]: r[1:] for r in rows(dom) if r}
    assert table["public.medications_doselog"] == ["6.5", "1200.0", "1", "42"]
    assert table[at][1:] == ["2", "2001"]
    text = page_text(dom)
    assert (
        "longest read stall 6.5 ms, longest write stall 1200.0 ms, 1 probe failures, 2 lock retries" in text
    )
    assert "Health check http://127.0.0.1:1/health/: 9 checks, 0 failures, slowest 31.5 ms" in text
    assert "migrated without downtime" in text
