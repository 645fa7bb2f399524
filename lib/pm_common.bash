# shellcheck shell=bash
# The shared library of production_migrate.sh and production_migrate_enhanced.sh.
# It only defines pm_-prefixed functions; the scripts call pm_main.
#
# The scripts own what the design card gives them: finding Python, the client-tool check, command
# dispatch and the enhanced profile's defaults. A command's options are defined once, in its click
# command: usage, help, option checks and the required-variable rule come from the core's gate
# (python -m migration_tools.cli.gate, which imports click but never Django), and then the script
# becomes the core (exec; when the script has nothing of its own to say, the gate's process becomes
# the core: gate run), so a signal sent to the script reaches it and nothing outlives the script.
# migration.log is only ever written by the core (migration_tools/core/audit.py).

# The same exit codes as migration_tools/core/errors.py; not all are used in shell code.
# shellcheck disable=SC2034
readonly PM_EXIT_OK=0 PM_EXIT_FAILED=1 PM_EXIT_USAGE=2 PM_EXIT_ROLLED_BACK=3

# pm_die CODE ERROR_ID MESSAGE: the kit's one line (`prog: what; next [id]`), logged, then exit.
pm_die() {
  local code=$1 error_id=$2
  shift 2
  printf '%s: %s [%s]\n' "$PM_PROG" "$*" "$error_id" >&2
  pm_log ERROR "refused: $* [$error_id]"
  exit "$code"
}

pm_warn() {
  printf '%s: warning: %s\n' "$PM_PROG" "$*" >&2
  pm_log WARNING "$*"
}

# One line in migration.log, written by the core's audit module; never fails the command.
# Without a Python there is no writer: the message on stderr is all there is.
pm_log() {
  [[ -n "${PM_PY:-}" ]] || return 0
  pm_gate log "$1" "${PM_COMMAND:-shell}" "$2" || true
}

# The core's gate (usage, help, option and variable checks); its exit code is ours to act on.
pm_gate() {
  PM_PROG=$PM_PROG PYTHONPATH="$PM_KIT_DIR${PYTHONPATH:+:$PYTHONPATH}" \
    "$PM_PY" -m migration_tools.cli.gate "$@"
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
    pm_die "$PM_EXIT_USAGE" python-missing \
      "no python3 found; install Python 3.10+ or set PM_PYTHON, then run $PM_PROG status"
  fi
}

# A virtual environment's interpreter sits in <venv>/bin beside <venv>/pyvenv.cfg (PEP 405);
# checked without starting Python. A warning, not a failure.
pm_in_venv() {
  [[ -f "$(dirname "$(dirname "$PM_PY")")/pyvenv.cfg" ]]
}

pm_check_venv() {
  if ! pm_in_venv; then
    pm_warn "no virtual environment detected (python: $PM_PY); create one with python3 -m venv .venv && .venv/bin/pip install -r requirements.txt"
  fi
}

readonly PM_TOOLS=(pg_dump pg_restore)

pm_tools_found() {
  local tool
  for tool in "${PM_TOOLS[@]}"; do command -v "$tool" >/dev/null 2>&1 || return 1; done
}

pm_require_tools() {
  local tool
  for tool in "${PM_TOOLS[@]}"; do
    command -v "$tool" >/dev/null 2>&1 ||
      pm_die "$PM_EXIT_USAGE" tool-missing \
        "$tool not found on PATH; install the PostgreSQL client tools (apt install postgresql-client) or add them to PATH, then run $PM_PROG status"
  done
}

pm_in_list() {
  local needle=$1 item
  shift
  for item in "$@"; do [[ "$item" == "$needle" ]] && return 0; done
  return 1
}

# The enhanced profile's defaults, added unless the operator chose: PM_ARGS is the argument list.
pm_enhance_args() {
  local cmd=$1
  shift
  PM_ARGS=("$@")
  [[ "$PM_PROFILE" == enhanced ]] || return 0
  case "$cmd" in
    migrate | full-deploy | zero-downtime)
      pm_in_list --monitor "$@" || pm_in_list --no-monitor "$@" || PM_ARGS+=(--monitor)
      ;;
    backup)
      pm_in_list --deep "$@" || PM_ARGS+=(--deep)
      ;;
  esac
}

# What pm_enhance_args does, in words, under the help it changes.
pm_profile_note() {
  [[ "$PM_PROFILE" == enhanced ]] || return 0
  case "${1:-}" in
    '') printf '\nEnhanced profile: monitoring on by default (--no-monitor turns it off), backups validated by a test restore (--deep).\n' ;;
    migrate | full-deploy) printf '\nEnhanced profile: --monitor unless --no-monitor is given.\n' ;;
    backup) printf '\nEnhanced profile: --deep is always on.\n' ;;
  esac
}

# help [COMMAND]: the command list, or one command's help, from the click commands.
pm_cmd_help() {
  pm_gate help "$@" || exit
  pm_profile_note "$@"
}

# COMMAND [ARG ...]: checked by the gate (command, options, required variables), then the tools;
# then the script becomes the core. With the tools found and a virtual environment's Python, the
# script has nothing of its own to say: it becomes the gate, which checks, then becomes the core
# (gate run), one Python start-up instead of two; the same checks, lines and exit codes.
pm_run() {
  local cmd=${1:-} arg
  (($# == 0)) || shift
  PM_COMMAND=$cmd
  for arg in "$@"; do
    if [[ "$arg" == --help || "$arg" == -h ]]; then
      pm_cmd_help "$cmd"
      exit "$PM_EXIT_OK"
    fi
  done
  pm_enhance_args "$cmd" "$@"
  if pm_tools_found && pm_in_venv; then
    pm_exec_core migration_tools.cli.gate run "$cmd" "${PM_ARGS[@]}"
  fi
  pm_gate check "$cmd" "${PM_ARGS[@]}" || exit
  pm_require_tools
  pm_check_venv
  pm_exec_core migration_tools "$cmd" "${PM_ARGS[@]}"
}

# MODULE [ARG ...]: the script becomes `python -m MODULE ARG ...`, with the core's environment.
pm_exec_core() {
  local module=$1
  shift
  export PM_PROG PM_PROFILE PYTHONPATH="$PM_KIT_DIR${PYTHONPATH:+:$PYTHONPATH}"
  exec "$PM_PY" -m "$module" "$@"
}

pm_main() {
  [[ -z "${PM_DEBUG:-}" ]] || set -x
  pm_find_python
  case "${1:-}" in
    help | -h | --help)
      shift
      pm_cmd_help "$@"
      ;;
    *) pm_run "$@" ;;
  esac
}
