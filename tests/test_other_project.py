"""The kit on a Django project that is not the demo: tests/fixtures/other_project.

An inventory site with three apps (catalog, orders, shipping) whose foreign keys cross apps,
a squashed migration in catalog (with a reversible RunPython copied into it), Django's
contrib apps, and no MIGRATION_KIT dict. Every test starts from an empty database.
"""

import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.pg_server import create_database, drop_database
from tests.support import REPO, Database, base_env

PROJECT = Path(__file__).resolve().parent / "fixtures" / "other_project"
SETTINGS = "inventory_site.settings"

# The project's own part of the plan on an empty database: the squash, never the migrations it replaces.
PROJECT_PLAN = [
    "catalog.0001_squashed_0003_populate_sku",
    "catalog.0004_product_sku_unique",
    "orders.0001_initial",
    "orders.0002_orderline",
    "orders.0003_order_status",
    "orders.0004_order_status_created_idx",
]
SHIPPING_PLAN = ["shipping.0001_initial", "shipping.0002_shipment_tracking_number"]
REPLACED = ["catalog.0001_initial", "catalog.0002_product_sku", "catalog.0003_populate_sku"]
TOTAL = 26  # with admin (3), auth (12), contenttypes (2) and sessions (1)

CONFLICT_MIGRATION = '''from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("orders", "0003_order_status")]

    operations = [
        migrations.AddField("order", "note", models.TextField(blank=True, default="")),
    ]
'''

FAILING_MIGRATION = '''from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("shipping", "0002_shipment_tracking_number")]

    operations = [
        migrations.RunSQL("SELECT 1 / 0", reverse_sql=migrations.RunSQL.noop),
    ]
'''


def use_project(db: Database, project: Path = PROJECT) -> Database:
    db.env.update(DJANGO_PROJECT_DIR=str(project), DJANGO_SETTINGS_MODULE=SETTINGS)
    return db


@pytest.fixture
def other_db(empty_db: Database) -> Database:
    return use_project(empty_db)


@pytest.fixture
def second_db(pg, tmp_path: Path) -> Iterator[Database]:
    """Another empty database, for running plain Django side by side with the kit."""
    name = f"o_{uuid.uuid4().hex[:10]}"
    create_database(pg, name)
    workdir = tmp_path / "plain django"
    workdir.mkdir()
    yield use_project(Database(pg, name, workdir, base_env(pg, name, workdir)))
    drop_database(pg, name)


def copy_project(tmp_path: Path) -> Path:
    """A private copy of the project (in a folder whose name has a space) that a test may edit."""
    target = tmp_path / "other project"
    shutil.copytree(PROJECT, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def manage(db: Database, project: Path, *args: str) -> None:
    """Plain `python manage.py ...` of the project, as its developers run it."""
    result = db.run([sys.executable, str(project / "manage.py"), *args])
    assert result.returncode == 0, result.stderr


def listed_plan(stdout: str) -> list[str]:
    return [m.group(1) for m in re.finditer(r"^  \d+\. (\S+)$", stdout, re.MULTILINE)]


def django_plan(db: Database, project: Path = PROJECT) -> list[str]:
    """What `manage.py showmigrations --plan` says is still to apply."""
    result = db.run([sys.executable, str(project / "manage.py"), "showmigrations", "--plan"])
    assert result.returncode == 0, result.stderr
    return [line[5:].strip() for line in result.stdout.splitlines() if line.startswith("[ ]")]


def public_tables(db: Database) -> list[str]:
    return [r[0] for r in db.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]


def at_catalog_0002_with_products(db: Database, tmp_path: Path) -> None:
    """The database of a site deployed before the squash: catalog at 0002, two products without SKUs."""
    before_squash = tmp_path / "before squash"
    shutil.copytree(PROJECT, before_squash, ignore=shutil.ignore_patterns("__pycache__"))
    (before_squash / "catalog" / "migrations" / "0001_squashed_0003_populate_sku.py").unlink()
    manage(db, before_squash, "migrate", "catalog", "0002_product_sku")
    db.query("INSERT INTO catalog_category (name) VALUES ('tools') RETURNING id")
    db.query(
        "INSERT INTO catalog_product (name, category_id, price_cents, sku) "
        "SELECT p, (SELECT id FROM catalog_category), 100, '' FROM unnest(ARRAY['hammer', 'saw']) p "
        "RETURNING id"
    )


def test_status_and_check_migrations_list_the_plan_per_app_in_plan_order(other_db: Database):
    status = other_db.script("status")
    assert status.returncode == 0, status.stderr
    for line in (
        "  catalog: 0 applied, 2 pending",
        "  orders: 0 applied, 4 pending",
        "  shipping: 0 applied, 2 pending",
        "  auth: 0 applied, 12 pending",
    ):
        assert line in status.stdout.splitlines()
    assert status.stdout.splitlines()[-1] == (
        f"OK: {TOTAL} migration(s) pending on postgres@127.0.0.1:{other_db.server.port}/{other_db.name}"
    )

    check = other_db.script("check-migrations")
    assert check.returncode == 0, check.stderr
    assert check.stderr == ""
    lines = check.stdout.splitlines()
    assert lines[0] == f"Pending migrations ({TOTAL}), in plan order:"
    assert lines[-1] == f"OK: {TOTAL} migration(s) pending, no conflicts"
    plan = listed_plan(check.stdout)
    assert plan == django_plan(other_db)  # the order Django's own migrate would apply them
    assert [m for m in plan if m.split(".")[0] in {"catalog", "orders"}] == PROJECT_PLAN
    assert [m for m in plan if m.startswith("shipping.")] == SHIPPING_PLAN
    # orders.0002 has a foreign key to catalog.Product: the squash comes first.
    assert plan.index("catalog.0001_squashed_0003_populate_sku") < plan.index("orders.0002_orderline")
    assert plan.index("orders.0001_initial") < plan.index("shipping.0001_initial")
    assert not set(REPLACED) & set(plan)
    assert public_tables(other_db) == []  # looking changed nothing


def test_contrib_apps_migrations_are_in_the_plan_on_an_empty_database(other_db: Database):
    check = other_db.script("check-migrations")
    assert check.returncode == 0, check.stderr
    assert check.stdout.splitlines()[1] == "  1. contenttypes.0001_initial"
    plan = listed_plan(check.stdout)
    for migration in (
        "auth.0001_initial",
        "auth.0012_alter_user_first_name_max_length",
        "admin.0003_logentry_add_action_flag_choices",
        "contenttypes.0002_remove_content_type_name",
        "sessions.0001_initial",
    ):
        assert migration in plan
    assert plan.index("contenttypes.0001_initial") < plan.index("auth.0001_initial")


def test_migrate_applies_the_whole_plan_like_django_does_then_nothing_is_pending(
    other_db: Database, second_db: Database
):
    expected = listed_plan(other_db.script("check-migrations").stdout)
    result = other_db.script("migrate", "--no-backup")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    progress = [re.fullmatch(r"\[(\d+)/(\d+)\] (\S+) applied in \d+\.\d\ds", line) for line in lines[:-1]]
    assert all(progress), lines
    assert [m.group(3) for m in progress if m] == expected
    assert [(m.group(1), m.group(2)) for m in progress if m] == [(str(i), str(TOTAL)) for i in range(1, 27)]
    assert re.fullmatch(rf"OK: applied {TOTAL} migration\(s\) in \d+\.\ds", lines[-1])

    # Plain Django on a second empty database ends in the same state.
    manage(second_db, PROJECT, "migrate", "--no-input")
    assert other_db.applied() == second_db.applied()
    assert ("catalog", "0001_squashed_0003_populate_sku") in other_db.applied()
    assert {("catalog", n.split(".")[1]) for n in REPLACED} <= other_db.applied()
    assert public_tables(other_db) == public_tables(second_db)
    # post_migrate ran: content types and permissions exist, as after manage.py migrate.
    counts = "SELECT (SELECT count(*) FROM django_content_type), (SELECT count(*) FROM auth_permission)"
    assert other_db.query(counts) == second_db.query(counts) == [(12, 48)]

    again = other_db.script("check-migrations")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == ["OK: no pending migrations: the database is up to date"]
    status = other_db.script("status")
    assert "  catalog: 2 applied, 0 pending" in status.stdout.splitlines()  # the squash counts once
    twice = other_db.script("migrate", "--no-backup")
    assert twice.returncode == 0, twice.stderr
    assert twice.stdout.splitlines() == ["OK: nothing to apply: the database is up to date"]


def test_half_applied_squash_runs_the_replaced_migrations_and_the_runpython(
    other_db: Database, tmp_path: Path
):
    at_catalog_0002_with_products(other_db, tmp_path)
    check = other_db.script("check-migrations")
    assert check.returncode == 0, check.stderr
    plan = listed_plan(check.stdout)
    assert [m for m in plan if m.startswith("catalog.")] == [
        "catalog.0003_populate_sku",
        "catalog.0004_product_sku_unique",
    ]
    assert plan == django_plan(other_db)
    assert len(plan) == TOTAL  # catalog.0003 and catalog.0004 in place of the squash and catalog.0004

    result = other_db.script("migrate", "--no-backup")
    assert result.returncode == 0, result.stderr
    assert "catalog.0003_populate_sku applied in " in result.stdout
    assert other_db.query("SELECT name, sku FROM catalog_product ORDER BY id") == [
        ("hammer", "SKU-000001"),
        ("saw", "SKU-000002"),
    ]
    # Once every replaced migration is applied, Django records the squash as applied too.
    assert ("catalog", "0001_squashed_0003_populate_sku") in other_db.applied()


def test_a_failure_is_undone_by_reverse_migrations_including_the_squash(other_db: Database, tmp_path: Path):
    project = copy_project(tmp_path)
    (project / "shipping" / "migrations" / "0003_fails.py").write_text(FAILING_MIGRATION)
    result = other_db.script(
        "migrate", "--no-backup", "--commit-each", env={"DJANGO_PROJECT_DIR": str(project)}
    )
    assert result.returncode == 3, result.stderr
    assert result.stderr.splitlines() == [
        "production_migrate.sh: migration shipping.0003_fails failed; the database was rolled back "
        "to its state before this run (reverse migrations); fix the cause, then run production_migrate.sh "
        "migrate again (details in migration.log) [migrate-rolled-back]"
    ]
    lines = result.stdout.splitlines()
    assert any(
        line.startswith("[26/27] shipping.0002_shipment_tracking_number applied in ") for line in lines
    )
    # The squash (with its RunPython) is undone as one migration, like the others.
    assert any(
        re.fullmatch(r"  unapplied \[\d+/26\] catalog\.0001_squashed_0003_populate_sku in \d+\.\d\ds", line)
        for line in lines
    )
    assert "Rolled back (reverse migrations): the applied migrations equal those before the run." in lines
    assert other_db.applied() == set()
    assert public_tables(other_db) == ["django_migrations"]


def test_a_failure_after_completing_a_half_applied_squash_is_undone(other_db: Database, tmp_path: Path):
    # The run applies the squash's last replaced migration (so Django would now see the squash as
    # applied) and then fails: the undo must still find and unapply the replaced migration.
    at_catalog_0002_with_products(other_db, tmp_path)
    before = other_db.applied()
    project = copy_project(tmp_path)
    (project / "shipping" / "migrations" / "0003_fails.py").write_text(FAILING_MIGRATION)
    result = other_db.script(
        "migrate", "--no-backup", "--commit-each", env={"DJANGO_PROJECT_DIR": str(project)}
    )
    assert result.returncode == 3, result.stdout + result.stderr
    assert any(line.startswith("  unapplied ") and line.split()[2] == "catalog.0003_populate_sku"
               for line in result.stdout.splitlines())
    assert other_db.applied() == before
    skus = other_db.query("SELECT name, sku FROM catalog_product ORDER BY id")
    assert skus == [("hammer", ""), ("saw", "")]


def test_model_change_without_a_migration_names_the_app_and_makemigrations(
    other_db: Database, tmp_path: Path
):
    project = copy_project(tmp_path)
    models = project / "catalog" / "models.py"
    models.write_text(models.read_text() + "    weight_grams = models.PositiveIntegerField(null=True)\n")
    result = other_db.script("check-migrations", env={"DJANGO_PROJECT_DIR": str(project)})
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "production_migrate.sh: models in app 'catalog' have changes with no migration "
        "(Add field weight_grams to product); run python manage.py makemigrations catalog, "
        "then production_migrate.sh check-migrations [migration-missing]"
    ]
    assert "✗ catalog: model changes without a migration: Add field weight_grams to product" in (
        result.stdout.splitlines()
    )
    assert public_tables(other_db) == []
    # migrate applies what has migrations, and warns like Django does about the rest.
    applied = other_db.script("migrate", "--no-backup", env={"DJANGO_PROJECT_DIR": str(project)})
    assert applied.returncode == 0, applied.stderr
    assert applied.stderr.splitlines() == [
        "warning: models in app 'catalog' have changes with no migration (Add field weight_grams to "
        "product); run python manage.py makemigrations catalog before the next release"
    ]


def test_conflicting_leaves_are_refused_by_check_migrations_and_by_migrate(
    other_db: Database, tmp_path: Path
):
    project = copy_project(tmp_path)
    (project / "orders" / "migrations" / "0004_order_note.py").write_text(CONFLICT_MIGRATION)
    env = {"DJANGO_PROJECT_DIR": str(project)}
    expected = [
        "production_migrate.sh: conflicting leaf migrations in app 'orders': 0004_order_note, "
        "0004_order_status_created_idx; run python manage.py makemigrations --merge orders, "
        "then production_migrate.sh check-migrations [migration-conflict]"
    ]
    check = other_db.script("check-migrations", env=env)
    assert check.returncode == 1
    assert check.stderr.splitlines() == expected

    # migrate (with its backup on) refuses the same way before it backs up or applies anything.
    migrate = other_db.script("migrate", env=env)
    assert migrate.returncode == 1
    assert migrate.stderr.splitlines() == expected
    assert migrate.stdout == ""
    assert public_tables(other_db) == []
    assert not (other_db.workdir / "backups").exists() or not any((other_db.workdir / "backups").iterdir())


def test_dry_run_prints_the_plans_sql_and_changes_nothing(other_db: Database):
    manage(other_db, PROJECT, "migrate", "contenttypes")
    before_rows = other_db.query("SELECT id, app, name, applied FROM django_migrations ORDER BY id")
    before_tables = public_tables(other_db)
    pending = TOTAL - 2

    result = other_db.script("migrate", "--dry-run")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"Would apply {pending} migration(s), in this order:"
    headers = [line for line in lines if line.startswith("-- [")]
    assert headers[0] == f"-- [1/{pending}] auth.0001_initial"
    assert f"-- [{pending}/{pending}] shipping.0002_shipment_tracking_number" in headers
    squash = next(i for i, line in enumerate(lines) if line.endswith(f"] {PROJECT_PLAN[0]}"))
    after_squash = next(i for i in range(squash + 1, len(lines)) if lines[i].startswith("-- ["))
    assert lines[after_squash].endswith("] catalog.0004_product_sku_unique")
    squash_sql = lines[squash + 1 : after_squash]
    assert any(line.startswith('CREATE TABLE "catalog_product" (') for line in squash_sql)
    assert "-- THIS OPERATION CANNOT BE WRITTEN AS SQL" in squash_sql  # the RunPython
    assert 'CREATE INDEX "order_status_created_idx" ON "orders_order" ("status", "created_at");' in lines
    assert lines[-1] == f"OK: dry run: would apply {pending} migration(s); nothing was changed"

    assert other_db.query("SELECT id, app, name, applied FROM django_migrations ORDER BY id") == before_rows
    assert public_tables(other_db) == before_tables


def test_inconsistent_history_is_refused_by_check_migrations_and_migrate(other_db: Database):
    manage(other_db, PROJECT, "migrate", "contenttypes")
    other_db.query(
        "INSERT INTO django_migrations (app, name, applied) "
        "VALUES ('shipping', '0002_shipment_tracking_number', now()) RETURNING id"
    )
    rows = other_db.query("SELECT id, app, name FROM django_migrations ORDER BY id")
    expected = [
        "production_migrate.sh: inconsistent migration history: Migration "
        "shipping.0002_shipment_tracking_number is applied before its dependency shipping.0001_initial "
        "on database 'default'; the database's django_migrations rows do not match the migration files; "
        "find out how (a renamed or removed migration, a wrong database), then run "
        "production_migrate.sh check-migrations [migration-history]"
    ]
    check = other_db.script("check-migrations")
    assert check.returncode == 1
    assert check.stderr.splitlines() == expected
    # migrate refuses before its backup and before applying anything.
    migrate = other_db.script("migrate")
    assert migrate.returncode == 1
    assert migrate.stderr.splitlines() == expected
    assert not (other_db.workdir / "backups").exists() or not any((other_db.workdir / "backups").iterdir())
    assert other_db.query("SELECT id, app, name FROM django_migrations ORDER BY id") == rows


def test_a_two_hundred_migration_history_is_planned_like_django_and_applied(
    empty_db: Database, tmp_path: Path
):
    project = tmp_path / "long history"
    made = subprocess.run([sys.executable, str(REPO / "bench" / "make_long_history.py"), str(project)],
                          capture_output=True, text=True, check=False)
    assert made.returncode == 0, made.stderr
    empty_db.env.update(DJANGO_PROJECT_DIR=str(project), DJANGO_SETTINGS_MODULE="longhist_site.settings")
    check = empty_db.script("check-migrations")
    assert check.returncode == 0, check.stderr
    plan = listed_plan(check.stdout)
    assert len([m for m in plan if not m.startswith(("auth.", "contenttypes."))]) == 200
    assert plan == django_plan(empty_db, project)
    migrate = empty_db.script("migrate", "--no-backup")
    assert migrate.returncode == 0, migrate.stderr
    assert migrate.stdout.splitlines()[-1].startswith(f"OK: applied {len(plan)} migration(s) in ")
    assert len(empty_db.applied()) == len(plan)
