"""verify-data on the demo and on tests/fixtures/verify_project, every finding made real.

The verify project (no MIGRATION_KIT dict in verify_site.settings) has multi-table inheritance,
an auto-created and an explicit many-to-many, a generic relation, a db_constraint=False foreign key
and a table in the schema "archive". It is migrated and seeded once per module into a template;
each test gets a copy. Orphans are made as they happen in production: a constraint dropped, or
rows written with `session_replication_role = replica` (foreign key triggers off).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.pg_server import create_database, drop_database
from tests.support import Database, base_env, execute, take_backup, temp_files_of

PROJECT = Path(__file__).resolve().parent / "fixtures" / "verify_project"
SETTINGS = "verify_site.settings"
KIT_SETTINGS = "verify_site.settings_kit"  # with a MIGRATION_KIT dict and the kit's check app
BAD_SETTINGS = "verify_site.settings_bad"  # a MIGRATION_KIT naming a model and a field that do not exist
BAD_CHECKED = "verify_site.settings_bad_checked"  # the same, with the kit's check app installed
TEMPLATE = "verify_template"
PROG = "production_migrate.sh"

SEED = """
INSERT INTO places_owner (id, name, email) VALUES
  (1, 'Ann', 'ann@example.com'), (2, 'Bob', 'bob@example.com'), (3, 'Ann again', ' ANN@Example.com ');
INSERT INTO places_place (id, name, code) VALUES (1, 'Corner', 'C1'), (2, 'Harbour', 'H1'),
  (3, 'Square', 'S1');
INSERT INTO places_restaurant (place_ptr_id, serves_pizza, owner_id) VALUES (1, true, 1), (2, false, 2);
INSERT INTO places_supplier (id, name) VALUES (1, 'Mill'), (2, 'Farm');
INSERT INTO places_restaurant_suppliers (id, restaurant_id, supplier_id) VALUES (1, 1, 1), (2, 1, 2),
  (3, 2, 1);
INSERT INTO places_note (id, place_id, text) VALUES (1, 1, 'a'), (2, 3, 'b');
INSERT INTO catalogue_tag (id, label) VALUES (1, 'new'), (2, 'sale');
INSERT INTO catalogue_product (id, name, sku, maker_id) VALUES (1, 'Flour', 'F1', 1), (2, 'Oil', 'O1', 2),
  (3, 'Salt', 'S1', NULL);
INSERT INTO catalogue_producttag (id, product_id, tag_id, added_at) VALUES (1, 1, 1, now()), (2, 2, 2, now());
INSERT INTO catalogue_note (id, product_id, text) VALUES (1, 1, 'x');
INSERT INTO catalogue_comment (id, content_type_id, object_id, text)
  SELECT 1, id, 1, 'nice' FROM django_content_type WHERE app_label = 'catalogue' AND model = 'product';
INSERT INTO catalogue_comment (id, content_type_id, object_id, text)
  SELECT 2, id, 2, 'busy' FROM django_content_type WHERE app_label = 'places' AND model = 'restaurant';
INSERT INTO archive.legacy_record (id, product_id, payload) VALUES (1, 1, 'old');
DO $$ DECLARE r record; BEGIN
  FOR r IN SELECT table_schema, table_name, column_name FROM information_schema.columns
           WHERE is_identity = 'YES' AND table_schema IN ('public', 'archive') LOOP
    PERFORM setval(pg_get_serial_sequence(format('%I.%I', r.table_schema, r.table_name), r.column_name), 100);
  END LOOP;
END $$;
"""


def use_project(db: Database, settings: str = SETTINGS) -> Database:
    db.env.update(DJANGO_PROJECT_DIR=str(PROJECT), DJANGO_SETTINGS_MODULE=settings)
    return db


@pytest.fixture(scope="module")
def verify_template(pg, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    create_database(pg, TEMPLATE)
    workdir = tmp_path_factory.mktemp("verify seed")
    template = use_project(Database(pg, TEMPLATE, workdir, base_env(pg, TEMPLATE, workdir)))
    migrated = template.run([sys.executable, str(PROJECT / "manage.py"), "migrate", "-v0"])
    assert migrated.returncode == 0, migrated.stderr
    execute(template, SEED)
    yield TEMPLATE
    drop_database(pg, TEMPLATE)


@pytest.fixture
def vdb(pg, verify_template: str, tmp_path: Path) -> Iterator[Database]:
    """A copy of the migrated and seeded verify project's database."""
    name = f"v_{uuid.uuid4().hex[:10]}"
    create_database(pg, name, template=verify_template)
    workdir = tmp_path / "work dir"
    workdir.mkdir()
    yield use_project(Database(pg, name, workdir, base_env(pg, name, workdir)))
    drop_database(pg, name)


def as_json(db: Database, *args: str, code: int | None = None) -> dict[str, Any]:
    result = db.script("verify-data", "--json", *args)
    if code is not None:
        assert result.returncode == code, result.stdout + result.stderr
    return json.loads(result.stdout)


def orphan(report: dict[str, Any], model: str, field: str, column: str | None = None) -> dict[str, Any]:
    found = [o for o in report["orphans"] if o["model"] == model and o["field"] == field
             and (column is None or o["column"] == column)]
    assert len(found) == 1, (model, field, column, found)
    return found[0]


def as_replica(db: Database, *statements: str) -> None:
    """Writes with foreign key triggers off, as a bulk load or a logical replica does."""
    with db.connect() as conn, conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        for statement in statements:
            conn.execute(statement)


# -- the demo -----------------------------------------------------------------------------------


def test_the_demo_passes_with_the_seed_documents_lines(demo_db: Database):
    result = demo_db.script("verify-data")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[:10] == [
        "✓ medications.models.Medication: 1,247 records",
        "✓ users.models.User: 156 records",
        "✓ security.models.SecurityEvent: 89 records",
        "✓ medguard_notifications.models.Notification: 234 records",
        "Data integrity check results:",
        "Orphan medications: 0",
        "Orphan users: 0",
        "Orphan security events: 0",
        "Orphan notifications: 0",
        "Potential duplicates: 2",
    ]
    assert "! medications.Medication on (name, strength, form): 2 potential duplicate(s)" in lines
    assert lines[-1] == "OK: data integrity verified"
    assert result.stderr == ""

    report = as_json(demo_db, code=0)
    assert report["ok"] is True and report["problems"] == []
    assert report["counts"]["medications.models.Medication"] == 1247
    assert report["orphan_total"] == 0 and report["duplicate_total"] == 2
    # Every relation, many-to-many tables on both sides (the custom user's groups and permissions) included.
    checked = {(o["model"], o["field"], o["column"]) for o in report["orphans"]}
    assert {("users.User", "groups", "user_id"), ("users.User", "groups", "group_id"),
            ("medications.DoseLog", "prescription", "prescription_id"),
            ("auth.Permission", "content_type", "content_type_id")} <= checked
    assert report["losses"] == [] and report["backup"] is None


def test_rows_lost_since_the_backup_fail_unless_allowed(demo_db: Database):
    take_backup(demo_db)
    dump = next((demo_db.workdir / "backups").glob("*.sql"))
    execute(demo_db, "DELETE FROM medguard_notifications_notification WHERE id IN "
                     "(SELECT id FROM medguard_notifications_notification ORDER BY id LIMIT 10)")
    result = demo_db.script("verify-data")
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert ("✗ public.medguard_notifications_notification: 10 row(s) fewer than in the backup (234 -> 224)"
            in lines)
    assert f"Checked 13 table(s), 12 relation(s); rows compared with {dump.name}" in lines
    assert result.stderr == (
        f"{PROG}: data integrity check failed: 0 orphaned row(s), 0 invalid index(es), 1 table(s) with lost "
        f"rows; the lines above (or --json) name the tables; fix the data, then run {PROG} verify-data "
        "[verify-data-failed]\n"
    )
    allowed = demo_db.script("verify-data", "--allow-decrease", "medguard_notifications_notification")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert ("! public.medguard_notifications_notification: 10 row(s) fewer than in the backup (234 -> 224) "
            "(allowed)") in allowed.stdout.splitlines()
    report = as_json(demo_db, "--against", str(dump), code=1)
    assert report["backup"] == dump.name
    assert report["losses"] == [{"table": "public.medguard_notifications_notification", "before": 234,
                                 "now": 224, "allowed": False, "estimated": False, "lost": 10,
                                 "unexpected": True}]


# -- the verify project: relations of every kind --------------------------------------------------


def test_a_clean_project_without_settings_passes_with_generic_labels(vdb: Database):
    result = vdb.script("verify-data")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "✓ places.models.Restaurant: 2 records" in lines
    assert "✓ catalogue.models.LegacyRecord: 1 records" in lines
    assert "✓ django.contrib.contenttypes.models.ContentType: 15 records" in lines
    summary = lines[lines.index("Data integrity check results:") + 1:]
    assert summary[:2] == ["Orphan records: 0", "Potential duplicates: 0"]
    assert not [line for line in lines if line.startswith("Orphan ") and line != "Orphan records: 0"]
    report = as_json(vdb, code=0)
    kinds = {(o["model"], o["field"], o["column"]): (o["kind"], o["table"], o["db_constraint"])
             for o in report["orphans"]}
    assert kinds[("places.Restaurant", "place_ptr", "place_ptr_id")] == (
        "parent link", "public.places_restaurant", True)
    assert kinds[("places.Restaurant", "owner", "owner_id")][0] == "foreign key"
    assert kinds[("places.Restaurant", "suppliers", "supplier_id")][0] == "many-to-many"
    assert kinds[("places.Restaurant", "suppliers", "restaurant_id")][0] == "many-to-many"
    assert kinds[("catalogue.ProductTag", "product", "product_id")][0] == "foreign key"
    assert kinds[("catalogue.Product", "maker", "maker_id")] == (
        "foreign key", "public.catalogue_product", False)
    assert kinds[("catalogue.LegacyRecord", "product", "product_id")][1] == "archive.legacy_record"
    generic = [o for o in report["orphans"] if o["kind"] == "generic"]
    assert {o["target"] for o in generic} == {"catalogue.Product", "places.Restaurant"}
    # The child table is never asked for its parent's columns: no place_ptr on places_place.
    assert not [o for o in report["orphans"] if o["model"] == "places.Restaurant" and o["column"] == "code"]


ORPHANS_MADE = [
    # (made how, model, field, column, example key)
    ("replica", "places.Restaurant", "place_ptr", "place_ptr_id", 99),
    ("replica", "places.Restaurant", "owner", "owner_id", 3),
    ("replica", "places.Restaurant", "suppliers", "supplier_id", 10),
    ("replica", "places.Restaurant", "suppliers", "restaurant_id", 11),
    ("replica", "catalogue.ProductTag", "product", "product_id", 7),
    ("no constraint", "catalogue.Product", "maker", "maker_id", 3),
    ("replica", "catalogue.LegacyRecord", "product", "product_id", 8),
]


def make_orphans(db: Database) -> None:
    as_replica(
        db,
        "INSERT INTO places_restaurant (place_ptr_id, serves_pizza) VALUES (99, false)",
        "INSERT INTO places_restaurant (place_ptr_id, serves_pizza, owner_id) VALUES (3, false, 404)",
        "INSERT INTO places_restaurant_suppliers (id, restaurant_id, supplier_id) VALUES (10, 1, 55)",
        "INSERT INTO places_restaurant_suppliers (id, restaurant_id, supplier_id) VALUES (11, 88, 1)",
        "INSERT INTO catalogue_producttag (id, product_id, tag_id, added_at) VALUES (7, 66, 1, now())",
        "INSERT INTO archive.legacy_record (id, product_id, payload) VALUES (8, 555, '')",
    )
    execute(db, "UPDATE catalogue_product SET maker_id = 44 WHERE id = 3")  # db_constraint=False: no trigger
    execute(db, "INSERT INTO django_content_type (app_label, model) VALUES ('gone', 'ghost')")
    execute(db, "INSERT INTO catalogue_comment (id, content_type_id, object_id, text) SELECT 3, id, 999, '' "
                "FROM django_content_type WHERE app_label = 'catalogue' AND model = 'product'")
    execute(db, "INSERT INTO catalogue_comment (id, content_type_id, object_id, text) SELECT 4, id, 1, '' "
                "FROM django_content_type WHERE app_label = 'gone'")


def test_every_kind_of_orphan_is_found_with_its_field_and_an_example_key(vdb: Database):
    make_orphans(vdb)
    result = vdb.script("verify-data")
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "Orphan records: 9" in lines
    for expected in (
        "✗ places.Restaurant.place_ptr: 1 row(s) with no parent",
        "✗ places.Restaurant.owner: 1 row(s) with no parent",
        "✗ places.Restaurant.suppliers (public.places_restaurant_suppliers.supplier_id -> places.Supplier): "
        "1 row(s) with no parent",
        "✗ places.Restaurant.suppliers (public.places_restaurant_suppliers.restaurant_id -> "
        "places.Restaurant): 1 row(s) with no parent",
        "✗ catalogue.ProductTag.product: 1 row(s) with no parent",
        "✗ catalogue.Product.maker: 1 row(s) with no parent",
        "✗ catalogue.LegacyRecord.product: 1 row(s) with no parent",
        "✗ catalogue.Comment.content_object -> catalogue.Product: 1 row(s) with no parent",
        "✗ catalogue.Comment.content_object -> gone.ghost (no such model): 1 row(s) with no parent",
    ):
        assert expected in lines, expected
        assert lines[lines.index(expected) + 1].startswith("    e.g. ")
    assert lines[lines.index("✗ places.Restaurant.place_ptr: 1 row(s) with no parent") + 1] == \
        "    e.g. place_ptr_id 99"
    assert result.stderr == (
        f"{PROG}: data integrity check failed: 9 orphaned row(s), 0 invalid index(es); the lines above (or "
        f"--json) name the tables; fix the data, then run {PROG} verify-data [verify-data-failed]\n"
    )
    report = as_json(vdb, "--jobs", "1", code=1)
    for _how, model, field, column, key in ORPHANS_MADE:
        found = orphan(report, model, field, column)
        assert (found["rows"], found["examples"]) == (1, [key]), found
    generic = [o for o in report["orphans"] if o["kind"] == "generic" and o["rows"]]
    assert sorted((o["target"], o["examples"]) for o in generic) == [
        ("catalogue.Product", [3]), ("gone.ghost (no such model)", [4])]
    assert as_json(vdb, "--jobs", "4") == report  # the same results, whatever the parallelism


def test_with_indexes_and_a_vacuumed_table_an_orphan_check_writes_no_temporary_file(vdb: Database):
    """A merge of two index-only scans instead of the planner's choice, once the tables are vacuumed:
    the same orphan and example key, and no temporary file. work_mem is made tiny so that 20,000 rows
    stand for the millions that spill to disk with the default (on the demo at 8 million rows the
    hash join wrote 210 MB of temporary files)."""
    execute(vdb, "INSERT INTO catalogue_product (id, name, sku) SELECT g, 'p', 'S' || g "
                 "FROM generate_series(1000, 21000) g")
    execute(vdb, "INSERT INTO catalogue_producttag (id, product_id, tag_id, added_at) "
                 "SELECT g, g, 1, now() FROM generate_series(1000, 21000) g")
    as_replica(vdb, "INSERT INTO catalogue_producttag (id, product_id, tag_id, added_at) "
                    "VALUES (7, 66, 1, now())")
    execute(vdb, f'ALTER DATABASE "{vdb.name}" SET work_mem = "64kB"')
    execute(vdb, "ANALYZE")
    check = lambda: orphan(as_json(vdb, "--jobs", "1", code=1), "catalogue.ProductTag", "product")  # noqa: E731
    planned, planned_files = temp_files_of(vdb, check)
    execute(vdb, "VACUUM (ANALYZE) catalogue_producttag")
    execute(vdb, "VACUUM (ANALYZE) catalogue_product")
    merged, merged_files = temp_files_of(vdb, check)
    assert (merged["rows"], merged["examples"]) == (planned["rows"], planned["examples"]) == (1, [7])
    assert (planned_files > 0, merged_files) == (True, 0)


def test_configured_keys_labels_strict_and_estimates(vdb: Database):
    use_project(vdb, KIT_SETTINGS)
    execute(vdb, "INSERT INTO places_place (name, code) SELECT 'p' || g, 'P' || g "
                 "FROM generate_series(1, 500) g")
    execute(vdb, "ANALYZE places_place")
    result = vdb.script("verify-data", "--estimate")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[:12] == [
        "✓ places.models.Place: ~503 records (estimated)",
        "✓ places.models.Restaurant: 2 records",
        "✓ places.models.Note: 2 records",
        "✓ catalogue.models.Note: 1 records",
        "✓ catalogue.models.Product: 3 records",
        "Data integrity check results:",
        "Orphan places: 0",
        "Orphan restaurants: 0",
        "Orphan notes (places): 0",
        "Orphan notes (catalogue): 0",
        "Orphan products: 0",
        "Owners sharing an email: 1",
    ]
    assert ("! places.Owner on (email, ignoring case and spaces in email): 1 potential duplicate(s)"
            in lines)
    assert lines[-2].endswith("; 1 count(s) estimated")
    strict = vdb.script("verify-data", "--strict")
    assert strict.returncode == 1
    assert "1 potential duplicate(s); the lines above" in strict.stderr
    report = as_json(vdb, code=0)
    assert report["duplicates"] == [
        {"model": "places.Owner", "fields": ["email"], "extra_rows": 1, "normalized": ["email"],
         "examples": [3]},
        {"model": "catalogue.Product", "fields": ["name"], "extra_rows": 0, "normalized": [], "examples": []},
    ]
    # The kit's check app is in INSTALLED_APPS here: manage.py check runs the settings check too.
    check = vdb.run([sys.executable, str(PROJECT / "manage.py"), "check"])
    assert check.returncode == 0, check.stderr


def test_a_misconfigured_settings_dict_is_a_system_check_error_with_its_id_and_hint(vdb: Database):
    use_project(vdb, BAD_SETTINGS)
    result = vdb.script("verify-data")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(
        f"{PROG}: MIGRATION_KIT['CRITICAL_MODELS'] names model 'places.Palace', which no installed app "
        "defines [migration_kit.E001] (and 1 more); name models as app_label.ModelName")
    assert result.stderr.endswith(f"then run {PROG} verify-data [settings-check]\n")
    assert vdb.run([sys.executable, str(PROJECT / "manage.py"), "check"]).returncode == 0  # app not installed
    use_project(vdb, BAD_CHECKED)
    check = vdb.run([sys.executable, str(PROJECT / "manage.py"), "check"])
    assert check.returncode == 1
    assert "migration_kit.E001" in check.stderr
    assert ("(migration_kit.E002) MIGRATION_KIT['DUPLICATE_KEYS'] names field 'e_mail' of places.Owner"
            in check.stderr)
    assert "HINT: use one of its fields: id, name, email" in check.stderr


# -- duplicates the database should have refused, schema health ------------------------------------


def test_unenforced_unique_invalid_index_and_not_valid_constraint_fail(vdb: Database):
    name = vdb.scalar("SELECT conname FROM pg_constraint WHERE conrelid = 'places_place'::regclass "
                      "AND contype = 'u'")
    execute(vdb, f'ALTER TABLE places_place DROP CONSTRAINT "{name}"')
    execute(vdb, "INSERT INTO places_place (id, name, code) VALUES (10, 'Copy', 'C1'), (11, 'Copy 2', 'C1')")
    execute(vdb, "INSERT INTO places_owner (id, name, email) VALUES (4, 'Bob twin', 'bob@example.com')")
    with pytest.raises(Exception, match="could not create unique index"):
        execute(vdb, "CREATE UNIQUE INDEX CONCURRENTLY owner_email_uniq ON places_owner (email)")
    execute(vdb, "ALTER TABLE catalogue_note ADD CONSTRAINT note_text_set CHECK (text <> '') NOT VALID")
    result = vdb.script("verify-data")
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert ("✗ places.Place (code): 2 row(s) break unique code (unique), which the database does not enforce"
            in lines)
    assert ("✗ invalid index owner_email_uniq (a failed concurrent build?): drop it and build it again"
            in lines)
    assert "✗ check constraint note_text_set on catalogue_note is NOT VALID" in lines
    assert result.stderr.startswith(
        f"{PROG}: data integrity check failed: 0 orphaned row(s), 1 invalid index(es), 1 NOT VALID "
        "constraint(s), 2 row(s) breaking an unenforced unique constraint;")
    report = as_json(vdb, code=1)
    assert report["unique_violations"] == [
        {"model": "places.Place", "fields": ["code"], "name": "code (unique)", "extra_rows": 2,
         "examples": [11]}]
    assert report["invalid_indexes"] == ["owner_email_uniq"]
    assert report["not_valid_constraints"] == [{"table": "catalogue_note", "name": "note_text_set",
                                                "kind": "check"}]


def test_a_dropped_table_and_column_are_findings_not_a_crash(vdb: Database):
    execute(vdb, "DROP TABLE places_note")
    execute(vdb, "ALTER TABLE catalogue_tag DROP COLUMN label")
    result = vdb.script("verify-data")
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "✗ table places_note of places.Note is missing" in lines
    assert "✗ column public.catalogue_tag.label (catalogue.Tag.label) is missing" in lines
    assert "✓ places.models.Restaurant: 2 records" in lines  # the rest is still checked
    assert "[internal]" not in result.stderr
    assert result.stderr.startswith(
        f"{PROG}: data integrity check failed: 0 orphaned row(s), 0 invalid index(es), 1 missing table(s), "
        "1 missing column(s);")
    report = as_json(vdb, code=1)
    assert report["missing_tables"] == [{"model": "places.Note", "table": "places_note"}]
    assert not [o for o in report["orphans"] if o["model"] == "places.Note"]


def test_a_check_that_times_out_is_reported_unchecked_never_clean(vdb: Database):
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        with vdb.connect() as conn, conn.transaction():
            conn.execute("LOCK TABLE catalogue_comment IN ACCESS EXCLUSIVE MODE")
            locked.set()
            release.wait(60)

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(10)
        result = vdb.script("verify-data", "--timeout", "0.5")
    finally:
        release.set()
        holder.join()
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert ("✗ not checked: catalogue.Comment.content_object (content types used): timed out after 0.5s"
            in lines)
    assert "✗ not checked: count of public.catalogue_comment: timed out after 0.5s" in lines
    assert "✗ not checked: orphans of catalogue.Comment.content_type (catalogue_comment.content_type_id -> " \
           "contenttypes.ContentType): timed out after 0.5s" in lines
    assert not [line for line in lines if line.startswith("✓ catalogue.models.Comment")]
    assert "3 check(s) not done" in result.stderr


def test_the_gate_knows_the_new_options():
    shown = subprocess.run([sys.executable, "-m", "migration_tools", "verify-data", "--help"],
                           capture_output=True, text=True, check=True, cwd=PROJECT.parents[2]).stdout
    for option in ("--against FILE", "--allow-decrease TABLE", "--strict", "--jobs N", "--estimate",
                   "--timeout SECONDS"):
        assert option in shown
