#!/usr/bin/env bats
# Every pre-flight failure, made real: unset variables, a PATH without pg_dump,
# a wrong password, a missing database and a stopped server.

setup() {
  load test_helper
  kit_fresh_db
}

teardown() {
  kit_drop_db
}

@test "each required variable, unset in turn, is named with the fix (exit 2)" {
  local var
  for var in DJANGO_SETTINGS_MODULE DB_NAME DB_USER DB_PASSWORD DB_HOST DB_PORT; do
    run -2 --separate-stderr env -u "$var" "$KIT_ROOT/production_migrate.sh" status
    [ "${stderr_lines[0]}" = "production_migrate.sh: missing environment variable(s): $var; export them (see README, Configuration), then run production_migrate.sh status" ]
  done
  grep -q "ERROR \[status\] user=.* missing environment variable(s): DB_PORT" migration.log
}

@test "a non-numeric DB_PORT is refused" {
  DB_PORT=fivefour run -2 --separate-stderr "$KIT_ROOT/production_migrate.sh" status
  [ "${stderr_lines[0]}" = "production_migrate.sh: DB_PORT 'fivefour' is not a port number; fix DB_PORT, then run production_migrate.sh status" ]
}

@test "a PATH without pg_dump is named (exit 2)" {
  local path_without
  path_without=$(kit_path_without pg_dump)
  PATH="$path_without" run -2 --separate-stderr "$KIT_ROOT/production_migrate.sh" status
  [ "${stderr_lines[0]}" = "production_migrate.sh: pg_dump not found on PATH; install the PostgreSQL client tools (apt install postgresql-client) or add them to PATH, then run production_migrate.sh status" ]
}

@test "a wrong password is named, never echoed, never logged (exit 2)" {
  DB_PASSWORD=Wr0ng-Passw0rd run -2 --separate-stderr "$KIT_ROOT/production_migrate.sh" status
  [ "${stderr_lines[0]}" = "production_migrate.sh: password authentication failed for user 'postgres' on 127.0.0.1:$DB_PORT; fix DB_PASSWORD (or DB_USER), then run production_migrate.sh status [db-auth]" ]
  [[ "$stderr" != *Wr0ng-Passw0rd* ]]
  run ! grep -q Wr0ng-Passw0rd migration.log
}

@test "a missing database is named (exit 2)" {
  DB_NAME=no_such_database run -2 --separate-stderr "$KIT_ROOT/production_migrate.sh" status
  [ "${stderr_lines[0]}" = "production_migrate.sh: database 'no_such_database' not found on 127.0.0.1:$DB_PORT; fix DB_NAME or create the database, then run production_migrate.sh status [db-missing]" ]
}

@test "a stopped server is reported as unreachable (exit 1)" {
  # A second real server, started and then stopped: its port now refuses connections.
  local root="$BATS_TEST_TMPDIR/stopped-pg" port
  "$PM_PYTHON" -m devtools.throwaway_pg start --fast "$root" >/dev/null
  port=$("$PM_PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$root/state.json")
  "$PM_PYTHON" -m devtools.throwaway_pg stop --destroy "$root"
  DB_PORT=$port run -1 --separate-stderr "$KIT_ROOT/production_migrate.sh" status
  [ "${stderr_lines[0]}" = "production_migrate.sh: cannot connect to PostgreSQL at 127.0.0.1:$port (server down or wrong port); start the server or fix DB_HOST/DB_PORT, then run production_migrate.sh status [db-unreachable]" ]
}

@test "no virtual environment is a warning, not a failure" {
  local system_python venv_site
  # The interpreter the venv was made from: a real python3 outside any virtual environment.
  system_python=$("$PM_PYTHON" -c 'import os, sys; print(os.path.join(sys.base_prefix, "bin", "python3"))')
  # The kit's packages without the venv: the system interpreter pointed at the venv's site-packages.
  venv_site=$("$PM_PYTHON" -c 'import site; print(site.getsitepackages()[0])')
  PM_PYTHON=$system_python PYTHONPATH=$venv_site \
    run --separate-stderr "$KIT_ROOT/production_migrate.sh" status
  [ "${stderr_lines[0]}" = "production_migrate.sh: warning: no virtual environment detected (python: $system_python); create one with python3 -m venv .venv && .venv/bin/pip install -r requirements.txt" ]
  [ "$status" -eq 0 ]
}

@test "status on a healthy database ends with a one-line verdict" {
  run -0 --separate-stderr "$KIT_ROOT/production_migrate.sh" status
  [[ "${lines[-1]}" == "OK: 5 migration(s) pending on postgres@127.0.0.1:$DB_PORT/$DB_NAME" ]]
  [[ "$output" != *"$DB_PASSWORD"* ]]
}
