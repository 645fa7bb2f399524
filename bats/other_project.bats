#!/usr/bin/env bats
# The kit on a Django project that is not the demo (tests/fixtures/other_project):
# an empty database, no MIGRATION_KIT settings, a squashed migration and contrib apps.

setup() {
  load test_helper
  DB_NAME="bats_other_$(basename "$BATS_TEST_TMPDIR" | tr -c 'a-z0-9\n' '_')_${BATS_TEST_NUMBER}"
  export DB_NAME
  "$PM_PYTHON" -m devtools.throwaway_pg createdb "$PG_ROOT" "$DB_NAME" 2>/dev/null
  export DJANGO_SETTINGS_MODULE=inventory_site.settings
  export DJANGO_PROJECT_DIR="$KIT_ROOT/tests/fixtures/other_project"
  KIT_WORK="$BATS_TEST_TMPDIR/work dir"
  mkdir -p "$KIT_WORK"
  cd "$KIT_WORK" || return 1
}

teardown() {
  kit_drop_db
}

# A private copy of the project, in a folder whose name has a space.
other_project_copy() {
  local copy="$BATS_TEST_TMPDIR/other project"
  cp -R "$KIT_ROOT/tests/fixtures/other_project" "$copy"
  printf '%s\n' "$copy"
}

@test "check-migrations lists the other project's plan, contrib apps first, the squash not its parts" {
  run -0 --separate-stderr "$KIT_ROOT/production_migrate.sh" check-migrations
  [ "${lines[0]}" = "Pending migrations (26), in plan order:" ]
  [ "${lines[1]}" = "  1. contenttypes.0001_initial" ]
  [ "${lines[18]}" = "  18. catalog.0001_squashed_0003_populate_sku" ]
  [ "${lines[19]}" = "  19. catalog.0004_product_sku_unique" ]
  [[ "$output" != *"catalog.0001_initial"* ]]
  [ "${lines[-1]}" = "OK: 26 migration(s) pending, no conflicts" ]
  [ "$stderr" = "" ]
}

@test "conflicting leaf migrations: check-migrations and migrate refuse, naming the merge command (exit 1)" {
  local project
  project=$(other_project_copy)
  cat >"$project/orders/migrations/0004_order_note.py" <<'EOF'
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("orders", "0003_order_status")]

    operations = [migrations.AddField("order", "note", models.TextField(default=""))]
EOF
  local expected="production_migrate.sh: conflicting leaf migrations in app 'orders': 0004_order_note, 0004_order_status_created_idx; run python manage.py makemigrations --merge orders, then production_migrate.sh check-migrations [migration-conflict]"
  DJANGO_PROJECT_DIR=$project run -1 --separate-stderr "$KIT_ROOT/production_migrate.sh" check-migrations
  [ "${stderr_lines[0]}" = "$expected" ]
  DJANGO_PROJECT_DIR=$project run -1 --separate-stderr "$KIT_ROOT/production_migrate.sh" migrate --no-backup
  [ "${stderr_lines[0]}" = "$expected" ]
  [ "$output" = "" ]
  # Nothing was applied: the database is still empty.
  run -0 "$PM_PYTHON" -c 'import os, psycopg
conn = psycopg.connect(host=os.environ["DB_HOST"], port=os.environ["DB_PORT"], user=os.environ["DB_USER"],
                       password=os.environ["DB_PASSWORD"], dbname=os.environ["DB_NAME"])
print(conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = %s", ["public"]).fetchone()[0])'
  [ "$output" = "0" ]
}

@test "a model change without a migration names the app and makemigrations (exit 1)" {
  local project
  project=$(other_project_copy)
  printf '    weight_grams = models.PositiveIntegerField(null=True)\n' >>"$project/catalog/models.py"
  DJANGO_PROJECT_DIR=$project run -1 --separate-stderr "$KIT_ROOT/production_migrate.sh" check-migrations
  [ "${stderr_lines[0]}" = "production_migrate.sh: models in app 'catalog' have changes with no migration (Add field weight_grams to product); run python manage.py makemigrations catalog, then production_migrate.sh check-migrations [migration-missing]" ]
}

@test "migrate applies the whole plan with progress, then nothing is pending" {
  run -0 --separate-stderr "$KIT_ROOT/production_migrate.sh" migrate --no-backup
  [[ "${lines[0]}" =~ ^\[1/26\]\ contenttypes\.0001_initial\ applied\ in\ [0-9]+\.[0-9]{2}s$ ]]
  [[ "${lines[25]}" =~ ^\[26/26\]\ shipping\.0002_shipment_tracking_number\ applied\ in\  ]]
  [[ "${lines[-1]}" == "OK: applied 26 migration(s) in "* ]]
  run -0 --separate-stderr "$KIT_ROOT/production_migrate.sh" check-migrations
  [ "$output" = "OK: no pending migrations: the database is up to date" ]
}
