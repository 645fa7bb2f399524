# shellcheck shell=bash
# The shared library of production_migrate.sh and production_migrate_enhanced.sh.
# It only defines pm_-prefixed functions; the scripts call pm_main.
#
# Each command is a pm_cmd_NAME function with two comment lines above it:
#   # Usage: NAME [--flag] [--option VALUE]
#   # Summary: one line
# `help` prints them, and the Usage line is also the list of options the command accepts:
# anything else is refused (usage on stderr, exit 2) before any work starts.

# The same exit codes as migration_tools/core/errors.py; not all are used in shell code.
# shellcheck disable=SC2034
readonly PM_EXIT_OK=0 PM_EXIT_FAILED=1 PM_EXIT_USAGE=2 PM_EXIT_ROLLED_BACK=3

readonly PM_REQUIRED_VARS=(DJANGO_SETTINGS_MODULE DB_NAME DB_USER DB_PASSWORD DB_HOST DB_PORT)

pm_die() {
  local code=$1
  shift
  printf '%s: %s\n' "$PM_PROG" "$*" >&2
  pm_log ERROR "$*"
  exit "$code"
}

pm_warn() {
  printf '%s: warning: %s\n' "$PM_PROG" "$*" >&2
  pm_log WARNING "$*"
}

# Append one line to the audit log; never fails the command.
pm_log() {
  local level=$1
  shift
  local log_file="${PM_WORKDIR:-$PWD}/migration.log"
  {
    printf '%s %s [%s] user=%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%S+0000)" "$level" \
      "${PM_COMMAND:-shell}" "$(id -un 2>/dev/null || id -u)" "$*"
  } >>"$log_file" 2>/dev/null || true
  chmod 600 "$log_file" 2>/dev/null || true
}

# All command names, in the order they appear in this file.
pm_commands() {
  sed -n 's/^pm_cmd_\([a-z_]*\)() {$/\1/p' "${BASH_SOURCE[0]}" | tr '_' '-'
}

pm_usage_line() {
  sed -n "s/^# Usage: \\($1\\b.*\\)$/\\1/p" "${BASH_SOURCE[0]}"
}

pm_summary_line() {
  local fn="pm_cmd_${1//-/_}"
  grep -B1 "^${fn}() {$" "${BASH_SOURCE[0]}" | sed -n 's/^# Summary: //p'
}

pm_print_usage() {
  local cmd
  printf 'Usage: %s COMMAND [options]\n\nCommands:\n' "$PM_PROG"
  while IFS= read -r cmd; do
    printf '  %-18s %s\n' "$cmd" "$(pm_summary_line "$cmd")"
  done < <(pm_commands)
  printf '\nRun %s COMMAND --help for the options of one command.\n' "$PM_PROG"
  if [[ "$PM_PROFILE" == enhanced ]]; then
    printf 'Enhanced profile: monitoring on by default (--no-monitor turns it off), backups validated by a test restore.\n'
  fi
}

pm_print_command_help() {
  printf 'Usage: %s %s\n\n%s\n' "$PM_PROG" "$(pm_usage_line "$1")" "$(pm_summary_line "$1")"
}

# Refuse any argument the command's Usage line does not list.
pm_validate_args() {
  local cmd=$1
  shift
  local usage
  usage=$(pm_usage_line "$cmd")
  local -a flags=() valued=()
  local token
  while read -r token; do
    if [[ "$token" == *" "* ]]; then valued+=("${token%% *}"); else flags+=("$token"); fi
  done < <(grep -oE '\[--[a-z-]+( [A-Z]+)?\]' <<<"$usage" | tr -d '[]')
  local positional
  positional=$(grep -oE ' [A-Z]+( |$)' <<<"${usage#"$cmd"}" | grep -vc '^$' || true)
  local seen_positional=0 arg name
  while (($#)); do
    arg=$1
    shift
    case "$arg" in
      --help | -h) continue ;;
      --*=*)
        name=${arg%%=*}
        pm_in_list "$name" "${valued[@]}" || pm_usage_error "$cmd" "unknown option '$name'"
        ;;
      --*)
        if pm_in_list "$arg" "${flags[@]}"; then
          :
        elif pm_in_list "$arg" "${valued[@]}"; then
          (($#)) || pm_usage_error "$cmd" "option '$arg' needs a value"
          shift
        else
          pm_usage_error "$cmd" "unknown option '$arg'"
        fi
        ;;
      *)
        seen_positional=$((seen_positional + 1))
        ((seen_positional <= positional)) || pm_usage_error "$cmd" "unexpected argument '$arg'"
        ;;
    esac
  done
}

pm_in_list() {
  local needle=$1 item
  shift
  for item in "$@"; do [[ "$item" == "$needle" ]] && return 0; done
  return 1
}

pm_usage_error() {
  printf '%s: %s\n' "$PM_PROG" "$2" >&2
  printf 'Usage: %s %s\n' "$PM_PROG" "$(pm_usage_line "$1")" >&2
  printf "Run '%s %s --help' for details.\n" "$PM_PROG" "$1" >&2
  exit "$PM_EXIT_USAGE"
}

pm_require_env() {
  local -a missing=()
  local var
  for var in "${PM_REQUIRED_VARS[@]}"; do
    [[ -n "${!var:-}" ]] || missing+=("$var")
  done
  if ((${#missing[@]})); then
    pm_die "$PM_EXIT_USAGE" "missing environment variable(s): ${missing[*]}; export them (see README, Configuration), then run $PM_PROG status"
  fi
  [[ "$DB_PORT" =~ ^[0-9]+$ ]] ||
    pm_die "$PM_EXIT_USAGE" "DB_PORT '$DB_PORT' is not a port number; fix DB_PORT, then run $PM_PROG status"
}

pm_require_tools() {
  local tool
  for tool in pg_dump pg_restore; do
    command -v "$tool" >/dev/null 2>&1 ||
      pm_die "$PM_EXIT_USAGE" "$tool not found on PATH; install the PostgreSQL client tools (apt install postgresql-client) or add them to PATH, then run $PM_PROG status"
  done
}

# The Python that runs the core: PM_PYTHON, the active virtualenv, the kit's .venv, python3.
pm_find_python() {
  if [[ -n "${PM_PYTHON:-}" ]]; then
    PM_PY=$PM_PYTHON
  elif [[ -n "${VIRTUAL_ENV:-}" && -x "$VIRTUAL_ENV/bin/python" ]]; then
    PM_PY="$VIRTUAL_ENV/bin/python"
  elif [[ -x "$PM_KIT_DIR/.venv/bin/python" ]]; then
    PM_PY="$PM_KIT_DIR/.venv/bin/python"
  elif command -v python3 >/dev/null 2>&1; then
    PM_PY=$(command -v python3)
  else
    pm_die "$PM_EXIT_USAGE" "no python3 found; install Python 3.10+ or set PM_PYTHON, then run $PM_PROG status"
  fi
  # A virtual environment's interpreter sits in <venv>/bin beside <venv>/pyvenv.cfg (PEP 405);
  # checked here without starting Python.
  if [[ ! -f "$(dirname "$(dirname "$PM_PY")")/pyvenv.cfg" ]]; then
    pm_warn "no virtual environment detected (python: $PM_PY); create one with python3 -m venv .venv && .venv/bin/pip install -r requirements.txt"
  fi
}

# Hand the command to the Python core; its exit code is ours.
pm_core() {
  local rc=0
  PM_PROG=$PM_PROG PM_PROFILE=$PM_PROFILE PYTHONPATH="$PM_KIT_DIR${PYTHONPATH:+:$PYTHONPATH}" \
    "$PM_PY" -m migration_tools "$@" || rc=$?
  return "$rc"
}

pm_prepare_db_command() {
  pm_require_env
  pm_require_tools
  pm_find_python
}

# Usage: status [--database ALIAS]
# Summary: Show the connection, server version, applied/pending migrations, newest backup and pre-flight checks.
pm_cmd_status() {
  pm_prepare_db_command
  pm_core status "$@"
}

# Usage: check-migrations [--database ALIAS]
# Summary: List pending migrations in plan order; fail on model changes without a migration or conflicts.
pm_cmd_check_migrations() {
  pm_prepare_db_command
  pm_core check-migrations "$@"
}

# Usage: backup [--database ALIAS] [--deep]
# Summary: Take a verified, compressed pg_dump backup with metadata and a rollback script.
pm_cmd_backup() {
  pm_prepare_db_command
  pm_core backup "$@"
}

# Usage: migrate [--database ALIAS] [--monitor] [--no-monitor] [--interval SECONDS] [--no-backup] [--no-auto-rollback] [--dry-run]
# Summary: Back up, then apply the pending migrations with progress; undo this run's migrations on failure.
pm_cmd_migrate() {
  pm_prepare_db_command
  pm_core migrate "$@"
}

# Usage: verify-data [--database ALIAS] [--json]
# Summary: Check record counts, orphaned rows and potential duplicates of the critical models.
pm_cmd_verify_data() {
  pm_prepare_db_command
  pm_core verify-data "$@"
}

# Usage: full-deploy [--database ALIAS] [--monitor] [--no-monitor] [--interval SECONDS]
# Summary: Pre-flight, check-migrations, backup, migrate, verify-data and Django's deploy checks, with a summary.
pm_cmd_full_deploy() {
  pm_prepare_db_command
  pm_core full-deploy "$@"
}

# Usage: help [COMMAND]
# Summary: Show this help, or the help of one command.
pm_cmd_help() {
  if (($#)); then
    pm_is_command "$1" || pm_usage_error help "unknown command '$1'"
    pm_print_command_help "$1"
  else
    pm_print_usage
  fi
}

pm_is_command() {
  local -a names
  mapfile -t names < <(pm_commands)
  pm_in_list "$1" "${names[@]}"
}

pm_main() {
  if (($# == 0)); then
    pm_print_usage >&2
    exit "$PM_EXIT_USAGE"
  fi
  local cmd=$1
  shift
  case "$cmd" in
    -h | --help) cmd=help ;;
  esac
  if ! pm_is_command "$cmd"; then
    printf "%s: unknown command '%s'\n" "$PM_PROG" "$cmd" >&2
    pm_print_usage >&2
    exit "$PM_EXIT_USAGE"
  fi
  PM_COMMAND=$cmd
  local arg
  for arg in "$@"; do
    if [[ "$arg" == --help || "$arg" == -h ]]; then
      pm_print_command_help "$cmd"
      exit "$PM_EXIT_OK"
    fi
  done
  pm_validate_args "$cmd" "$@"
  if [[ "$PM_PROFILE" == enhanced ]]; then
    pm_enhance_args "$cmd" "$@"
    set -- "${PM_ARGS[@]}"
  fi
  [[ -z "${PM_DEBUG:-}" ]] || set -x
  "pm_cmd_${cmd//-/_}" "$@"
}

# The enhanced profile's defaults, added unless the operator turned them off.
pm_enhance_args() {
  local cmd=$1
  shift
  PM_ARGS=("$@")
  case "$cmd" in
    migrate | full-deploy | zero-downtime)
      if ! pm_in_list --no-monitor "$@" && ! pm_in_list --monitor "$@" &&
        [[ "$(pm_usage_line "$cmd")" == *"[--monitor]"* ]]; then
        PM_ARGS+=(--monitor)
      fi
      ;;
    backup)
      if [[ "$(pm_usage_line "$cmd")" == *"[--deep]"* ]] && ! pm_in_list --deep "$@"; then
        PM_ARGS+=(--deep)
      fi
      ;;
  esac
}
