#!/usr/bin/env bats
# The generated rollback script's refusals, on a backup the shell script takes.
# (backup's usage is in arguments.bats; its happy path and a disk that fills up during the dump
# are tests/test_backup.py's.)

setup() {
  load test_helper
  kit_fresh_db
}

teardown() {
  kit_drop_db
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
