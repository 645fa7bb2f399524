#!/usr/bin/env bats
# The enhanced profile end to end: full-deploy through production_migrate_enhanced.sh monitors
# (the script's default) and deep-validates its backup (the core's enhanced profile).
# (The argument defaults themselves are in handoff.bats; migrate's rollback on failure, the deploy
# lock, --dry-run and verify-data run through the script in tests/test_migrate.py.)

setup() {
  load test_helper
  kit_fresh_db
}

teardown() {
  kit_drop_db
}

@test "the enhanced full-deploy monitors, deep-validates its backup and ends with the summary" {
  run -0 --separate-stderr "$KIT_ROOT/production_migrate_enhanced.sh" full-deploy --interval 0.2
  [ "${lines[-1]}" = "OK: deployed" ]
  [[ "$output" == *$'\nDeployment summary\n'* ]]
  [[ "$output" == *"✓ backup            ok"* ]]
  [[ "$output" == *"✓ check --deploy    ok"* ]]
  [[ "$output" == *"Performance report: $KIT_WORK/migration_monitoring/report_"* ]]
  grep -q '"deep": true' backups/medguard_backup_*.json
  run -0 "$KIT_ROOT/production_migrate.sh" check-migrations
  [ "${lines[-1]}" = "OK: no pending migrations: the database is up to date" ]
}
