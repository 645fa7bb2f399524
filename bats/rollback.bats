#!/usr/bin/env bats
# rollback and emergency-rollback from an operator's shell: the happy path with the old database
# kept, the refusals (no terminal, a path outside backups/), a corrupted newest backup that
# emergency-rollback skips, and a pg_restore that dies halfway (a wrapper first on PATH).

setup() {
  load test_helper
  kit_fresh_db
}

teardown() {
  rb_drop_side_databases
  kit_drop_db
}

rb_sql() {
  local dbname=$1
  shift
  PGPASSWORD=$DB_PASSWORD psql -X -q -h "$DB_HOST" -p "$DB_PORT" -U "$DB_USER" -d "$dbname" -Atc "$*"
}

# Databases a rollback created beside the test database (restore copies, kept old databases).
rb_side_databases() {
  rb_sql postgres "SELECT datname FROM pg_database WHERE datname LIKE '${DB_NAME}\\_\\_%' ORDER BY 1"
}

rb_drop_side_databases() {
  local name
  while IFS= read -r name; do
    [[ -n "$name" ]] && "$PM_PYTHON" -m devtools.throwaway_pg dropdb "$PG_ROOT" "$name"
  done < <(rb_side_databases)
}

rb_backup() {
  "$KIT_ROOT/production_migrate.sh" backup >/dev/null
  find backups -name 'medguard_backup_*.sql' -newer "$BATS_TEST_TMPDIR/stamp" -printf '%f\n' 2>/dev/null |
    sort | tail -1
}

@test "rollback --yes restores the backup, drops later tables, keeps the old database and logs it" {
  touch -d '1 minute ago' "$BATS_TEST_TMPDIR/stamp"
  local dump
  dump=$(rb_backup)
  rb_sql "$DB_NAME" "CREATE TABLE after_backup (id int)"
  run -0 --separate-stderr "$PM_PYTHON" "$KIT_ROOT/rollback_manager.py" rollback "$dump" --yes
  [ "$stderr" = "" ]
  [[ "${lines[-1]}" == "OK: database '$DB_NAME' rolled back to $dump in "*s ]]
  [ "$(rb_sql "$DB_NAME" "SELECT to_regclass('after_backup') IS NULL")" = t ]
  local kept
  kept=$(rb_side_databases)
  [[ "$kept" == "${DB_NAME}__pre_rollback_"* ]]
  [ "$(rb_sql "$kept" "SELECT to_regclass('after_backup') IS NOT NULL")" = t ]
  grep -q "INFO \[rollback\] user=$(id -un) rollback $dump succeeded" rollback.log
  run ! grep -qF "$DB_PASSWORD" rollback.log
}

@test "without a terminal and without --yes it refuses (exit 2) and changes nothing" {
  touch -d '1 minute ago' "$BATS_TEST_TMPDIR/stamp"
  local dump
  dump=$(rb_backup)
  rb_sql "$DB_NAME" "CREATE TABLE after_backup (id int)"
  run -2 --separate-stderr "$PM_PYTHON" "$KIT_ROOT/rollback_manager.py" rollback "$dump" </dev/null
  [ "${stderr_lines[0]}" = "rollback_manager.py: refusing to roll back without confirmation: stdin is not a terminal and --yes was not given; nothing was changed; run it on a terminal to confirm, or pass --yes [confirm-needed]" ]
  [ "$(rb_sql "$DB_NAME" "SELECT to_regclass('after_backup') IS NOT NULL")" = t ]
  [ -z "$(rb_side_databases)" ]
}

@test "a FILENAME with .. is refused (exit 2)" {
  touch -d '1 minute ago' "$BATS_TEST_TMPDIR/stamp"
  local dump
  dump=$(rb_backup)
  run -2 --separate-stderr "$PM_PYTHON" "$KIT_ROOT/rollback_manager.py" rollback "backups/../backups/$dump" --yes
  [ "${stderr_lines[0]}" = "rollback_manager.py: 'backups/../backups/$dump' contains '..'; give a backup's file name from $KIT_WORK/backups; run python rollback_manager.py list-backups to see the valid backups [backup-path]" ]
}

@test "emergency-rollback skips and names a corrupted newest backup" {
  touch -d '1 minute ago' "$BATS_TEST_TMPDIR/stamp"
  local good bad
  good=$(rb_backup)
  rb_sql "$DB_NAME" "CREATE TABLE after_backup (id int)"
  touch -d '1 second ago' "$BATS_TEST_TMPDIR/stamp"
  bad=$(rb_backup)
  [ "$good" != "$bad" ]
  printf '\xff\xff\xff\xff' | dd of="backups/$bad" bs=1 seek=30000 conv=notrunc status=none
  run -0 --separate-stderr "$PM_PYTHON" "$KIT_ROOT/rollback_manager.py" emergency-rollback --yes
  [[ "${stderr_lines[0]}" == "warning: skipping $bad: SHA-256 does not match the metadata"* ]]
  [ "${lines[0]}" = "Newest valid backup of '$DB_NAME': $good" ]
  [[ "${lines[-1]}" == "OK: database '$DB_NAME' rolled back to $good in "* ]]
  [ "$(rb_sql "$DB_NAME" "SELECT to_regclass('after_backup') IS NULL")" = t ]
}

@test "a pg_restore that dies halfway leaves the database as it was (exit 1)" {
  touch -d '1 minute ago' "$BATS_TEST_TMPDIR/stamp"
  local dump bin="$BATS_TEST_TMPDIR/bin" real
  dump=$(rb_backup)
  rb_sql "$DB_NAME" "CREATE TABLE after_backup (id int)"
  # Fault: the restore into the new database loads schema and data, then is killed (SIGKILL).
  real=$(printf '%q' "$(command -v pg_restore)")
  mkdir -p "$bin"
  cat >"$bin/pg_restore" <<EOF
#!/usr/bin/env bash
set -euo pipefail
for arg in "\$@"; do
  if [[ \$arg == --dbname=* ]]; then
    $real --section=pre-data --section=data "\$@"
    kill -9 \$\$
  fi
done
exec $real "\$@"
EOF
  chmod +x "$bin/pg_restore"
  PATH="$bin:$PATH" run -1 --separate-stderr "$PM_PYTHON" "$KIT_ROOT/rollback_manager.py" rollback "$dump" --yes
  [[ "${stderr_lines[0]}" == "rollback_manager.py: pg_restore was killed by signal SIGKILL while restoring into '${DB_NAME}__restore_"*"'; database '$DB_NAME' is unchanged (the new database was dropped); fix the cause, then run the rollback again [restore-failed]" ]]
  [ "$(rb_sql "$DB_NAME" "SELECT to_regclass('after_backup') IS NOT NULL")" = t ]
  [ -z "$(rb_side_databases)" ]
}
