#!/usr/bin/env bash
# demo.sh: set everything up and run the main job on the demo project (example/).
#
# Usage: ./demo.sh          create .venv, start a throwaway PostgreSQL in .demo/, create and seed
#                           the MedGuard database, then run status, check-migrations and migrate
#        ./demo.sh zero-downtime
#                           reset, then the release with zero-downtime in two phases (pre, then
#                           post), the demo application's /health/ served on loopback meanwhile
#        ./demo.sh reset    recreate and seed the demo database at its released state, nothing else
#        ./demo.sh stop     stop the demo's PostgreSQL (data kept)
#        ./demo.sh destroy  stop it and delete .demo/ and the run artefacts
#        ./demo.sh env      print the exports that point the kit at the demo database
set -Eeuo pipefail
umask 077

root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$root"
# shellcheck source=lib/dev_env.bash
source "$root/lib/dev_env.bash"

pg_root="$root/.demo/pg"
py="$root/.venv/bin/python"

demo_env() {
  eval "$("$py" -m devtools.throwaway_pg start "$pg_root")"
  DB_PASSWORD=$(cat "$pg_root/password")
  export DB_PASSWORD DB_NAME=medguard_sa
  export DJANGO_SETTINGS_MODULE=medguard_backend.settings.production
  export DJANGO_PROJECT_DIR="$root/example"
}

demo_reset() {
  dev_ensure_venv "$root"
  printf '==> starting the throwaway PostgreSQL in %s\n' "$pg_root"
  demo_env
  printf '==> recreating the demo database %s at the released state\n' "$DB_NAME"
  "$py" -m devtools.throwaway_pg dropdb "$pg_root" "$DB_NAME"
  "$py" -m devtools.throwaway_pg createdb "$pg_root" "$DB_NAME"
  "$py" example/manage.py seed_demo
}

# The demo application itself (runserver on a free loopback port), for zero-downtime's health URL;
# stopped when the script exits.
demo_serve() {
  local port
  port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$py" example/manage.py runserver "127.0.0.1:$port" --noreload >"$root/.demo/runserver.log" 2>&1 &
  server_pid=$!
  trap 'kill "$server_pid" 2>/dev/null || true' EXIT
  export MEDGUARD_HEALTH_URL="http://127.0.0.1:$port/health/"
  for _ in $(seq 50); do
    "$py" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
      "$MEDGUARD_HEALTH_URL" 2>/dev/null && break
    sleep 0.2
  done
  printf '==> the demo application answers on %s\n' "$MEDGUARD_HEALTH_URL"
}

case "${1:-run}" in
  reset)
    demo_reset
    ;;
  run)
    demo_reset
    printf '==> ./production_migrate.sh status\n'
    ./production_migrate.sh status
    # The release's NOT NULL column breaks inserts of the code still running; the lint says so
    # (exit 1). The demo accepts it to go on: a real release fixes it or marks the migration.
    printf '==> ./production_migrate.sh check-migrations --allow-unsafe\n'
    ./production_migrate.sh check-migrations --allow-unsafe
    printf '==> ./production_migrate.sh migrate\n'
    ./production_migrate.sh migrate
    ;;
  zero-downtime)
    demo_reset
    demo_serve
    printf '==> ./production_migrate.sh zero-downtime --phase pre\n'
    ./production_migrate.sh zero-downtime --phase pre
    printf '==> (the new code rolls out here) ./production_migrate.sh zero-downtime --phase post\n'
    ./production_migrate.sh zero-downtime --phase post
    ;;
  env)
    demo_env
    printf 'export DB_HOST=%q DB_PORT=%q DB_USER=%q DB_NAME=%q\n' "$DB_HOST" "$DB_PORT" "$DB_USER" "$DB_NAME"
    # The password is read from its 0600 file when the exports run, never printed.
    # shellcheck disable=SC2016
    printf 'export DB_PASSWORD="$(cat %q)"\n' "$pg_root/password"
    printf 'export DJANGO_SETTINGS_MODULE=%q DJANGO_PROJECT_DIR=%q\n' "$DJANGO_SETTINGS_MODULE" "$DJANGO_PROJECT_DIR"
    ;;
  stop)
    [[ -x "$py" ]] && "$py" -m devtools.throwaway_pg stop "$pg_root"
    ;;
  destroy)
    [[ -x "$py" ]] && "$py" -m devtools.throwaway_pg stop --destroy "$pg_root"
    rm -rf "$root/.demo" "$root/backups" "$root/rollback_scripts" "$root/migration_monitoring"
    rm -f "$root/migration.log" "$root/rollback.log"
    ;;
  *)
    printf 'demo.sh: unknown command %q; use run, zero-downtime, reset, stop, destroy or env\n' "$1" >&2
    exit 2
    ;;
esac
