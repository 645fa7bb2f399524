#!/usr/bin/env bats
# Arguments and help of both scripts: what they take comes from the click commands (through the
# core's gate), refusals are the kit's one line then the usage on stderr, exit 2, before anything runs.

setup() {
  load test_helper
  kit_work_dir
}

@test "no command: the kit's line and the usage on stderr, exit 2" {
  run -2 --separate-stderr "$KIT_ROOT/production_migrate.sh" </dev/null
  [ "$output" = "" ]
  [ "${stderr_lines[0]}" = "production_migrate.sh: no command given; run 'production_migrate.sh help' for the commands [usage]" ]
  [ "${stderr_lines[1]}" = "Usage: production_migrate.sh COMMAND [options]" ]
}

@test "help lists every command with the first sentence of its click help" {
  run -0 --separate-stderr "$KIT_ROOT/production_migrate.sh" help
  [ "${lines[0]}" = "Usage: production_migrate.sh COMMAND [options]" ]
  [ "${lines[1]}" = "Commands:" ]
  [ "${lines[2]}" = "  status             Show the connection, server, migration counts, newest backup and pre-flight results." ]
  local names
  names=$(sed -n 's/^  \([a-z-]*\)  .*/\1/p' <<<"$output" | tr '\n' ' ')
  [ "$names" = "status check-migrations backup migrate verify-data zero-downtime full-deploy help " ]
  [ "${lines[-1]}" = "Run production_migrate.sh COMMAND --help for the options of one command." ]
  [ "$stderr" = "" ]
  local listed=$output
  run -0 "$KIT_ROOT/production_migrate.sh" --help
  [ "$output" = "$listed" ]
  run -0 "$KIT_ROOT/production_migrate.sh" -h
  [ "$output" = "$listed" ]
}

@test "--help works on every command of both scripts, with no environment at all" {
  local script cmd
  for script in production_migrate.sh production_migrate_enhanced.sh; do
    while read -r cmd; do
      run -0 --separate-stderr env -u DJANGO_SETTINGS_MODULE -u DB_NAME -u DB_USER -u DB_PASSWORD \
        -u DB_HOST -u DB_PORT "$KIT_ROOT/$script" "$cmd" --help
      [[ "${lines[0]}" == "Usage: $script $cmd"* ]]
      [ "$stderr" = "" ]
      if [[ "$script" == production_migrate.sh ]]; then
        local shown=$output
        run -0 "$KIT_ROOT/$script" help "$cmd"
        [ "$output" = "$shown" ]
      fi
    done < <("$KIT_ROOT/$script" help | sed -n 's/^  \([a-z-]*\)  .*/\1/p')
  done
  [ ! -e migration.log ]
}

@test "a command's help is its click command's: the usage names every option" {
  run -0 "$KIT_ROOT/production_migrate.sh" backup --help
  [ "${lines[0]}" = "Usage: production_migrate.sh backup [--database ALIAS] [--all-databases]" ]
  [ "${lines[1]}" = "                                    [--deep]" ]
  [ "${lines[2]}" = "  Take a verified, compressed pg_dump backup with metadata and a rollback" ]
  [[ "$output" == *$'\n  --deep            Also restore into a scratch database and compare row\n'* ]]
  run -0 "$KIT_ROOT/production_migrate.sh" migrate -h
  [ "${lines[0]}" = "Usage: production_migrate.sh migrate [--database ALIAS] [--all-databases]" ]
  [ "${lines[1]}" = "                                     [--monitor | --no-monitor]" ]
  [[ "$output" == *"  --no-auto-rollback        On failure, leave this run's migrations applied."* ]]
}

@test "an unknown command prints the kit's line and the usage on stderr, exit 2" {
  run -2 --separate-stderr "$KIT_ROOT/production_migrate.sh" deploy-everything
  [ "$output" = "" ]
  [ "${stderr_lines[0]}" = "production_migrate.sh: unknown command 'deploy-everything'; run 'production_migrate.sh help' for the commands [usage]" ]
  [ "${stderr_lines[1]}" = "Usage: production_migrate.sh COMMAND [options]" ]
  run -2 --separate-stderr "$KIT_ROOT/production_migrate.sh" migarte
  [ "${stderr_lines[0]}" = "production_migrate.sh: unknown command 'migarte' (did you mean 'migrate'?); run 'production_migrate.sh help' for the commands [usage]" ]
  run -2 --separate-stderr "$KIT_ROOT/production_migrate.sh" help migarte
  [ "${stderr_lines[0]}" = "production_migrate.sh: unknown command 'migarte' (did you mean 'migrate'?); run 'production_migrate.sh help' for the commands [usage]" ]
}

@test "an unknown option is refused before anything runs, even with no environment" {
  run -2 --separate-stderr env -u DB_NAME "$KIT_ROOT/production_migrate.sh" migrate --force
  [ "$output" = "" ]
  [ "${stderr_lines[0]}" = "production_migrate.sh: unknown option '--force'; run 'production_migrate.sh migrate --help' for the options [usage]" ]
  [ "${stderr_lines[1]}" = "Usage: production_migrate.sh migrate [--database ALIAS] [--all-databases]" ]
  local usage  # the usage lines at the top of migrate --help, up to the blank line
  usage=$("$KIT_ROOT/production_migrate.sh" migrate --help | sed '/^$/,$d')
  [ "$stderr" = "${stderr_lines[0]}"$'\n'"$usage" ]
  [ ! -e migration.log ]
}

@test "an option missing its value, an extra argument and a bad value are refused (exit 2)" {
  run -2 --separate-stderr "$KIT_ROOT/production_migrate.sh" status --database
  [ "$stderr" = "production_migrate.sh: option '--database' needs a value; run 'production_migrate.sh status --help' for the options [usage]
Usage: production_migrate.sh status [--database ALIAS]" ]
  run -2 --separate-stderr "$KIT_ROOT/production_migrate.sh" status extra
  [ "${stderr_lines[0]}" = "production_migrate.sh: unexpected argument 'extra'; run 'production_migrate.sh status --help' for the options [usage]" ]
  run -2 --separate-stderr "$KIT_ROOT/production_migrate_enhanced.sh" migrate --interval soon
  [ "${stderr_lines[0]}" = "production_migrate_enhanced.sh: Invalid value for '--interval': 'soon' is not a valid number of seconds; run 'production_migrate_enhanced.sh migrate --help' for the options [usage]" ]
  [ ! -e migration.log ]
}

@test "the enhanced script names itself and its profile's defaults" {
  run -0 "$KIT_ROOT/production_migrate_enhanced.sh" help
  [ "${lines[0]}" = "Usage: production_migrate_enhanced.sh COMMAND [options]" ]
  [ "${lines[-1]}" = "Enhanced profile: monitoring on by default (--no-monitor turns it off), backups validated by a test restore (--deep)." ]
  run -0 "$KIT_ROOT/production_migrate_enhanced.sh" full-deploy --help
  [ "${lines[-1]}" = "Enhanced profile: --monitor unless --no-monitor is given." ]
  run -0 "$KIT_ROOT/production_migrate.sh" full-deploy --help
  [ "${lines[-1]}" = "  -h, --help                Show this message and exit." ]
}

@test "PM_DEBUG=1 traces the script on stderr" {
  PM_DEBUG=1 run -0 --separate-stderr "$KIT_ROOT/production_migrate.sh" help
  [ "${lines[0]}" = "Usage: production_migrate.sh COMMAND [options]" ]
  [[ "$stderr" == *"+ pm_find_python"* ]]
  [[ "$stderr" == *" -m migration_tools.cli.gate help"* ]]
}

@test "sourcing the script defines functions without running anything" {
  run -0 --separate-stderr bash -c "source '$KIT_ROOT/production_migrate.sh'; declare -F pm_main >/dev/null && echo sourced"
  [ "$output" = "sourced" ]
  [ "$stderr" = "" ]
}

@test "gate run refuses as gate check does, and answers --help once, without running the command" {
  local gate=("$PM_PYTHON" -m migration_tools.cli.gate)
  run -2 --separate-stderr env -u DB_NAME PM_PROG=production_migrate.sh "${gate[@]}" run verify-data --jobs 0
  local refused=$stderr
  run -2 --separate-stderr env -u DB_NAME PM_PROG=production_migrate.sh "${gate[@]}" check verify-data --jobs 0
  [ "$stderr" = "$refused" ]
  [[ "${stderr_lines[0]}" == "production_migrate.sh: Invalid value for '--jobs'"*"[usage]" ]]
  run -0 --separate-stderr env -u DB_NAME PM_PROG=production_migrate.sh "${gate[@]}" run verify-data --help
  [ "$(grep -c '^Usage: ' <<<"$output")" -eq 1 ]
  [ ! -e migration.log ]
}
