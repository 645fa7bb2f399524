# shellcheck shell=bash
# One real PostgreSQL for the whole bats run, with a seeded demo database as a template.

setup_suite() {
  bats_require_minimum_version 1.5.0
  KIT_ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
  export KIT_ROOT
  export PM_PYTHON="$KIT_ROOT/.venv/bin/python"
  # The harness module (devtools.throwaway_pg) is run from test directories.
  export PYTHONPATH="$KIT_ROOT"
  export PG_ROOT="$BATS_SUITE_TMPDIR/pg"
  local exports
  if ! exports=$("$PM_PYTHON" -m devtools.throwaway_pg start --fast "$PG_ROOT"); then
    echo "bats: the test PostgreSQL did not start; nothing can be tested" >&2
    return 1
  fi
  eval "$exports"
  DB_PASSWORD=$(cat "$PG_ROOT/password")
  export DB_PASSWORD DB_NAME=bats_template
  export DJANGO_SETTINGS_MODULE=medguard_backend.settings.production
  export DJANGO_PROJECT_DIR="$KIT_ROOT/example"
  "$PM_PYTHON" -m devtools.throwaway_pg createdb "$PG_ROOT" bats_template 2>/dev/null
  "$PM_PYTHON" "$KIT_ROOT/example/manage.py" seed_demo >/dev/null
}

teardown_suite() {
  "$PM_PYTHON" -m devtools.throwaway_pg stop --destroy "$PG_ROOT"
}
