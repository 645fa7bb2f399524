#!/usr/bin/env bats
# What a script hands the core and how: the enhanced profile's defaults, exactly the arguments
# given otherwise, and exec, so the script's process becomes the core (a SIGTERM to the script
# reaches it, and nothing of it outlives the script).

setup() {
  load test_helper
  kit_work_dir
}

teardown() {
  # A core that outlived its script (the failure this file tests for) is not left running.
  if [[ -s "$BATS_TEST_TMPDIR/core.pid" ]]; then
    kill -KILL "$(<"$BATS_TEST_TMPDIR/core.pid")" 2>/dev/null || true
  fi
  kit_drop_db
}

@test "the enhanced profile adds --monitor to migrate and full-deploy and --deep to backup, unless told" {
  kit_stub_core
  local enhanced="$KIT_ROOT/production_migrate_enhanced.sh" standard="$KIT_ROOT/production_migrate.sh"
  local profile="PM_PROG=production_migrate_enhanced.sh PM_PROFILE=enhanced"
  run -0 --separate-stderr "$enhanced" migrate </dev/null
  [ "$stderr" = "" ]
  [ "$(kit_core_args)" = "$profile"$'\n'"-m migration_tools migrate --monitor" ]
  run -0 "$enhanced" migrate --no-monitor --interval 1
  [ "$(kit_core_args)" = "$profile"$'\n'"-m migration_tools migrate --no-monitor --interval 1" ]
  run -0 "$enhanced" migrate --monitor --dry-run
  [ "$(kit_core_args)" = "$profile"$'\n'"-m migration_tools migrate --monitor --dry-run" ]
  run -0 "$enhanced" full-deploy --database default
  [ "$(kit_core_args)" = "$profile"$'\n'"-m migration_tools full-deploy --database default --monitor" ]
  run -0 "$enhanced" backup
  [ "$(kit_core_args)" = "$profile"$'\n'"-m migration_tools backup --deep" ]
  run -0 "$enhanced" verify-data --json
  [ "$(kit_core_args)" = "$profile"$'\n'"-m migration_tools verify-data --json" ]
  run -0 "$standard" migrate
  [ "$(kit_core_args)" = $'PM_PROG=production_migrate.sh PM_PROFILE=standard\n-m migration_tools migrate' ]
  run -0 "$standard" backup --database=default
  [ "$(kit_core_args)" = $'PM_PROG=production_migrate.sh PM_PROFILE=standard\n-m migration_tools backup --database=default' ]
}

@test "a refused invocation never reaches the core" {
  kit_stub_core
  run -2 "$KIT_ROOT/production_migrate_enhanced.sh" migrate --force
  run -2 env -u DB_PASSWORD "$KIT_ROOT/production_migrate_enhanced.sh" backup
  PATH=$(kit_path_without pg_restore) run -2 "$KIT_ROOT/production_migrate.sh" status
  [ ! -e "$KIT_CORE_ARGS" ]
}

@test "the script becomes the core: a SIGTERM to the script ends the core, and nothing of it survives" {
  # A settings module whose import stands for a core at work: it writes its PID, then waits.
  local settings="$BATS_TEST_TMPDIR/slow settings"
  mkdir -p "$settings"
  cat >"$settings/slow_settings.py" <<'PY'
import os
import time
from pathlib import Path

Path(os.environ["KIT_CORE_PID"]).write_text(str(os.getpid()))
time.sleep(120)
PY
  export KIT_CORE_PID="$BATS_TEST_TMPDIR/core.pid"
  DJANGO_SETTINGS_MODULE=slow_settings PYTHONPATH="$settings" \
    "$KIT_ROOT/production_migrate.sh" status </dev/null >"$BATS_TEST_TMPDIR/out" 2>&1 3>&- &
  local script=$! deadline=$((SECONDS + 30))
  until [[ -s "$KIT_CORE_PID" ]]; do
    ((SECONDS < deadline)) || { cat "$BATS_TEST_TMPDIR/out"; false; }
    sleep 0.05
  done
  local core
  core=$(<"$KIT_CORE_PID")
  [ "$core" = "$script" ]  # the core runs in the script's own process
  # One Python process: the gate checked, then became the core (gate run).
  [ "$(ps -o args= -p "$script")" = "$PM_PYTHON -m migration_tools.cli.gate run status" ]
  kill -TERM "$script"
  local rc=0
  wait "$script" || rc=$?
  [ "$rc" -eq 1 ]  # the core handled the signal itself: stopped, and said so in its one line
  run ! kill -0 "$core"
  run -1 pgrep -P "$script"
  [ "$(cat "$BATS_TEST_TMPDIR/out")" = "production_migrate.sh: interrupted by SIGTERM before the command finished; run production_migrate.sh status to see where the database stands [interrupted]" ]
}

@test "a kit in a directory whose name has spaces finds its own .venv and runs from a directory with spaces" {
  kit_fresh_db
  local kit="$BATS_TEST_TMPDIR/kit with spaces"
  ln -s "$KIT_ROOT" "$kit"
  run -0 --separate-stderr env -u PM_PYTHON -u VIRTUAL_ENV -u PYTHONPATH "$kit/production_migrate.sh" status
  [ "$stderr" = "" ]
  [ "${lines[-1]}" = "OK: 5 migration(s) pending on postgres@127.0.0.1:$DB_PORT/$DB_NAME" ]
}
