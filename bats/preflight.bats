#!/usr/bin/env bats
# What the scripts check before the core starts: the required variables (the core's one rule,
# through the gate), the client tools, the virtual environment; and that their refusals are
# written to migration.log by the core's audit module, in UTC.
# (A wrong password, a missing database, a stopped server and a healthy status are the core's
# answers: tests/test_foundation_cli.py and tests/test_backup.py run them through the script.)

setup() {
  load test_helper
  kit_work_dir
}

teardown() {
  kit_drop_db
}

# One migration.log line as audit.py writes it: UTC time with its offset, level, [command], user.
LOG_LINE='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\+00:00 (INFO|WARNING|ERROR) \[[a-z-]+\] user=[^ ]+ '

@test "each required variable, unset in turn, is named with the fix (exit 2), logged by the core" {
  local var
  for var in DJANGO_SETTINGS_MODULE DB_NAME DB_USER DB_PASSWORD DB_HOST DB_PORT; do
    run -2 --separate-stderr env -u "$var" "$KIT_ROOT/production_migrate.sh" status
    [ "$output" = "" ]
    [ "$stderr" = "production_migrate.sh: missing environment variable(s): $var; export them (see README, Configuration), then run production_migrate.sh status [env-missing]" ]
  done
  run -2 --separate-stderr env -u DB_USER -u DB_HOST "$KIT_ROOT/production_migrate_enhanced.sh" migrate --dry-run
  [ "$stderr" = "production_migrate_enhanced.sh: missing environment variable(s): DB_USER DB_HOST; export them (see README, Configuration), then run production_migrate_enhanced.sh status [env-missing]" ]
  [ "$(wc -l <migration.log)" -eq 7 ]
  run -0 tail -n 1 migration.log
  [[ "$output" =~ $LOG_LINE ]]
  [[ "$output" == *" ERROR [migrate] user="*" refused: missing environment variable(s): DB_USER DB_HOST; export them (see README, Configuration), then run production_migrate_enhanced.sh status [env-missing]" ]]
  [ "$(stat -c %a migration.log)" = 600 ]
}

@test "a DB_PORT that is not a port number is refused (exit 2)" {
  DB_PORT=fivefour run -2 --separate-stderr "$KIT_ROOT/production_migrate.sh" status
  [ "$stderr" = "production_migrate.sh: DB_PORT 'fivefour' is not a port number; fix DB_PORT, then run production_migrate.sh status [env-port]" ]
  DB_PORT=99999 run -2 --separate-stderr "$KIT_ROOT/production_migrate.sh" backup
  [ "$stderr" = "production_migrate.sh: DB_PORT '99999' is not a port number; fix DB_PORT, then run production_migrate.sh status [env-port]" ]
}

@test "a PATH without pg_dump is named (exit 2), and the script's own refusal is logged by the core" {
  local path_without
  path_without=$(kit_path_without pg_dump)
  PATH="$path_without" run -2 --separate-stderr "$KIT_ROOT/production_migrate.sh" status
  [ "$output" = "" ]
  [ "$stderr" = "production_migrate.sh: pg_dump not found on PATH; install the PostgreSQL client tools (apt install postgresql-client) or add them to PATH, then run production_migrate.sh status [tool-missing]" ]
  run -0 cat migration.log
  [ "${#lines[@]}" -eq 1 ]
  [[ "$output" =~ $LOG_LINE ]]
  [[ "$output" == *" ERROR [status] user="*" refused: pg_dump not found on PATH; "*" [tool-missing]" ]]
}

@test "no virtual environment is a warning, not a failure" {
  kit_fresh_db
  local system_python venv_site
  # The interpreter the venv was made from: a real python3 outside any virtual environment.
  system_python=$("$PM_PYTHON" -c 'import os, sys; print(os.path.join(sys.base_prefix, "bin", "python3"))')
  # The kit's packages without the venv: the system interpreter pointed at the venv's site-packages.
  venv_site=$("$PM_PYTHON" -c 'import site; print(site.getsitepackages()[0])')
  PM_PYTHON=$system_python PYTHONPATH=$venv_site \
    run -0 --separate-stderr "$KIT_ROOT/production_migrate.sh" status
  [ "$stderr" = "production_migrate.sh: warning: no virtual environment detected (python: $system_python); create one with python3 -m venv .venv && .venv/bin/pip install -r requirements.txt" ]
  [ "${lines[-1]}" = "OK: 5 migration(s) pending on postgres@127.0.0.1:$DB_PORT/$DB_NAME" ]
  grep -Eq "${LOG_LINE}no virtual environment detected" migration.log
}
