#!/usr/bin/env bats
# Argument handling of both scripts: help, unknown input, and sourcing without running.

setup() {
  load test_helper
  cd "$BATS_TEST_TMPDIR" || return 1
}

@test "no command prints usage to stderr and exits 2" {
  run -2 --separate-stderr "$KIT_ROOT/production_migrate.sh"
  [ "$output" = "" ]
  [ "${stderr_lines[0]}" = "Usage: production_migrate.sh COMMAND [options]" ]
}

@test "help lists every command with its summary" {
  run -0 "$KIT_ROOT/production_migrate.sh" help
  [ "${lines[0]}" = "Usage: production_migrate.sh COMMAND [options]" ]
  [[ "$output" == *"  status             Show the connection"* ]]
  [[ "$output" == *"  check-migrations   "* ]]
  [[ "$output" == *"  migrate            "* ]]
  run -0 "$KIT_ROOT/production_migrate.sh" --help
  [ "${lines[0]}" = "Usage: production_migrate.sh COMMAND [options]" ]
}

@test "--help works on every command of both scripts, without touching the database" {
  local script cmd
  for script in production_migrate.sh production_migrate_enhanced.sh; do
    while read -r cmd; do
      run -0 env -u DB_PASSWORD "$KIT_ROOT/$script" "$cmd" --help
      [ "${lines[0]%% *}" = "Usage:" ]
      [[ "${lines[0]}" == "Usage: $script $cmd"* ]]
    done < <("$KIT_ROOT/$script" help | sed -n 's/^  \([a-z-]*\)  .*/\1/p')
  done
}

@test "an unknown command prints the usage on stderr and exits 2" {
  run -2 --separate-stderr "$KIT_ROOT/production_migrate.sh" deploy-everything
  [ "${stderr_lines[0]}" = "production_migrate.sh: unknown command 'deploy-everything'" ]
  [ "${stderr_lines[1]}" = "Usage: production_migrate.sh COMMAND [options]" ]
}

@test "an unknown option is refused before anything runs, even with no environment" {
  run -2 --separate-stderr env -u DB_NAME "$KIT_ROOT/production_migrate.sh" migrate --force
  [ "${stderr_lines[0]}" = "production_migrate.sh: unknown option '--force'" ]
  [[ "${stderr_lines[1]}" == "Usage: production_migrate.sh migrate "* ]]
  [ ! -e migration.log ]
}

@test "an option missing its value is refused" {
  run -2 --separate-stderr "$KIT_ROOT/production_migrate.sh" status --database
  [ "${stderr_lines[0]}" = "production_migrate.sh: option '--database' needs a value" ]
}

@test "an extra argument is refused" {
  run -2 --separate-stderr "$KIT_ROOT/production_migrate.sh" status extra
  [ "${stderr_lines[0]}" = "production_migrate.sh: unexpected argument 'extra'" ]
}

@test "the enhanced script names itself and its profile" {
  run -0 "$KIT_ROOT/production_migrate_enhanced.sh" help
  [ "${lines[0]}" = "Usage: production_migrate_enhanced.sh COMMAND [options]" ]
  [[ "$output" == *"Enhanced profile: monitoring on by default"* ]]
}

@test "sourcing the script defines functions without running anything" {
  run -0 bash -c "source '$KIT_ROOT/production_migrate.sh'; declare -F pm_main >/dev/null && echo sourced"
  [ "$output" = "sourced" ]
}
