#!/usr/bin/env bats
# backup from the shell scripts' side: the happy path, a disk that fills up during the dump
# (a file-size limit on the real pg_dump), and the generated rollback script's refusals.

setup() {
  load test_helper
  kit_fresh_db
}

teardown() {
  kit_drop_db
}

@test "backup writes an owner-only dump, metadata and rollback script, and ends with OK" {
  run -0 --separate-stderr "$KIT_ROOT/production_migrate.sh" backup
  [[ "${lines[-1]}" == "OK: backup medguard_backup_"*".sql of $DB_NAME is complete and verified (full read), "* ]]
  local dump
  dump=$(find backups -name 'medguard_backup_*.sql')
  [ -f "${dump%.sql}.json" ]
  [ "$(stat -c %a "$dump")" = 600 ]
  [ "$(stat -c %a backups)" = 700 ]
  [ "$(stat -c %a rollback_scripts/rollback_*.sh)" = 700 ]
  run ! grep -rqF "$DB_PASSWORD" backups rollback_scripts migration.log
  run -0 --separate-stderr "$PM_PYTHON" "$KIT_ROOT/rollback_manager.py" list-backups
  [[ "${lines[-1]}" == "OK: 1 backup(s), 1 valid; newest valid: ${dump#backups/}" ]]
}

@test "backup --help shows its usage line" {
  run -0 "$KIT_ROOT/production_migrate.sh" backup --help
  [ "${lines[0]}" = "Usage: production_migrate.sh backup [--database ALIAS] [--deep]" ]
}

@test "a disk that fills up during the dump leaves no file and exits 1" {
  # Fault: the real pg_dump under a 64 KiB file-size limit (SIGXFSZ ignored, so writes fail with EFBIG).
  local bin="$BATS_TEST_TMPDIR/bin" real
  real=$(command -v pg_dump)
  mkdir -p "$bin"
  printf '#!/usr/bin/env bash\nulimit -f 64\ntrap "" XFSZ\nexec %q "$@"\n' "$real" >"$bin/pg_dump"
  chmod +x "$bin/pg_dump"
  PATH="$bin:$PATH" run -1 --separate-stderr "$KIT_ROOT/production_migrate.sh" backup
  [[ "${stderr_lines[-1]}" == "production_migrate.sh: pg_dump failed (exit 1): pg_dump: error: "*"File too large; nothing was kept; fix the cause, then run production_migrate.sh backup again [backup-dump]" ]]
  [ -z "$(ls -A backups)" ]
  [ -z "$(ls -A rollback_scripts)" ]
  grep -q "ERROR \[backup\] user=.* backup outcome=failed" migration.log
}

@test "the rollback script refuses without a terminal, and a flipped byte fails validation" {
  "$KIT_ROOT/production_migrate.sh" backup >/dev/null
  local script dump
  script=$(find rollback_scripts -name 'rollback_*.sh')
  dump=$(find backups -name 'medguard_backup_*.sql')
  run -2 --separate-stderr "$script" </dev/null
  [ "${stderr_lines[0]}" = "${script##*/}: no terminal to confirm on; run ${script##*/} --yes to restore without asking" ]
  printf '\xff\xff\xff\xff' | dd of="$dump" bs=1 seek=50000 conv=notrunc status=none
  run -1 --separate-stderr "$PM_PYTHON" "$KIT_ROOT/rollback_manager.py" validate-backup "$dump"
  [[ "${stderr_lines[-1]}" == *": backup ${dump#backups/} is invalid: SHA-256 does not match the metadata (the file changed since the backup); do not restore it; run python rollback_manager.py list-backups and pick a valid one [backup-invalid]" ]]
}
