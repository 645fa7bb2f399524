#!/usr/bin/env bats
# migrate through the shell scripts: rollback on failure (exit 3), the deploy lock, the enhanced
# profile's monitoring, verify-data.

setup() {
  load test_helper
  kit_fresh_db
}

teardown() {
  [[ -z "${LOCK_PID:-}" ]] || kill "$LOCK_PID" 2>/dev/null || true
  kit_drop_db
}

@test "a migration failing mid-plan is undone and migrate exits 3" {
  DJANGO_SETTINGS_MODULE=tests.fixtures.failing_settings PYTHONPATH="$KIT_ROOT" \
    run -3 --separate-stderr "$KIT_ROOT/production_migrate.sh" migrate --no-backup
  [ "${lines[-1]}" = "Rolled back by reverse migrations: the applied migrations equal those before the run." ]
  [ "${stderr_lines[-1]}" = "production_migrate.sh: migration failing_app.0002_boom failed and the database was rolled back to its state before this run; fix the migration, then run production_migrate.sh migrate again (details in migration.log) [migrate-rolled-back]" ]
  run -0 "$KIT_ROOT/production_migrate.sh" status
  [ "${lines[-1]}" = "OK: 5 migration(s) pending on postgres@127.0.0.1:$DB_PORT/$DB_NAME" ]
}

@test "a second migrate while one holds the deploy lock is refused at once" {
  # The holder: a real process holding the kit's advisory lock, as a running migrate does.
  "$PM_PYTHON" - <<'PY' &
import os, time
from migration_tools import deploy_lock
from migration_tools.core.djangoenv import ConnParams
params = ConnParams(os.environ["DB_NAME"], os.environ["DB_USER"], os.environ["DB_HOST"],
                    int(os.environ["DB_PORT"]), os.environ["DB_PASSWORD"])
with deploy_lock.hold(params, "migrate"):
    time.sleep(60)
PY
  LOCK_PID=$!
  local deadline=$((SECONDS + 20)) holders=0
  while ((SECONDS < deadline)); do
    holders=$(PGPASSWORD=$DB_PASSWORD psql -h "$DB_HOST" -p "$DB_PORT" -U "$DB_USER" -d postgres -Atc \
      "select count(*) from pg_stat_activity where application_name like 'migration_kit:lock migrate%'")
    ((holders > 0)) && break
    sleep 0.1
  done
  ((holders > 0))
  run -1 --separate-stderr "$KIT_ROOT/production_migrate.sh" migrate --no-backup
  [[ "${stderr_lines[-1]}" == "production_migrate.sh: another migration or rollback is running on database '$DB_NAME' (migrate host=$(hostname) pid=$LOCK_PID); wait for it to finish (or stop it), then run the command again [deploy-locked]" ]]
  run -0 "$KIT_ROOT/production_migrate.sh" status
  [ "${lines[-1]}" = "OK: 5 migration(s) pending on postgres@127.0.0.1:$DB_PORT/$DB_NAME" ]
}

@test "verify-data ends with the seed document's summary lines" {
  run -0 "$KIT_ROOT/production_migrate.sh" verify-data
  [ "${lines[0]}" = "✓ medications.models.Medication: 1,247 records" ]
  [[ "$output" == *$'Data integrity check results:\nOrphan medications: 0\n'* ]]
  [[ "$output" == *$'\nPotential duplicates: 2\n'* ]]
}

@test "migrate --dry-run changes nothing" {
  run -0 "$KIT_ROOT/production_migrate.sh" migrate --dry-run
  [ "${lines[0]}" = "Would apply 5 migration(s), in this order:" ]
  run -0 "$KIT_ROOT/production_migrate.sh" status
  [ "${lines[-1]}" = "OK: 5 migration(s) pending on postgres@127.0.0.1:$DB_PORT/$DB_NAME" ]
}

@test "the enhanced profile monitors migrate by default and writes the report" {
  run -0 --separate-stderr "$KIT_ROOT/production_migrate_enhanced.sh" migrate --no-backup --interval 0.1
  [[ "${lines[-1]}" == "OK: applied 5 migration(s) in "* ]]
  [[ "${lines[-2]}" == "Performance report: $KIT_WORK/migration_monitoring/report_"*.json ]]
  grep -Eq '^\[[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\] CPU: [0-9]+\.[0-9]%, MEM: [0-9]+\.[0-9]%, DISK: [0-9]+\.[0-9]%' \
    migration_monitoring/performance.log
  local report
  report=$(ls migration_monitoring/report_*.json)
  "$PM_PYTHON" - "$report" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
for key in ("duration_seconds", "avg_cpu_usage", "max_cpu_usage", "avg_memory_usage", "max_memory_usage",
            "total_errors", "total_warnings", "peak_db_connections"):
    assert key in report, key
assert report["outcome"] == "success"
assert [m["migration"] for m in report["migrations"]][-1] == "users.0003_user_timezone"
PY
}

@test "--no-monitor turns the enhanced profile's monitoring off" {
  run -0 "$KIT_ROOT/production_migrate_enhanced.sh" migrate --no-backup --no-monitor
  [ ! -e migration_monitoring ]
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
