# shellcheck shell=bash
# Helpers shared by the bats files: a fresh database per test, hostile working directories, and a
# stand-in core that records what a script hands it.

# A working directory whose name has a space.
kit_work_dir() {
  KIT_WORK="$BATS_TEST_TMPDIR/work dir"
  mkdir -p "$KIT_WORK"
  cd "$KIT_WORK" || return 1
}

# A fresh copy of the seeded demo database, and the working directory.
kit_fresh_db() {
  DB_NAME="bats_$(basename "$BATS_TEST_TMPDIR" | tr -c 'a-z0-9\n' '_')_${BATS_TEST_NUMBER}"
  export DB_NAME
  "$PM_PYTHON" -m devtools.throwaway_pg createdb "$PG_ROOT" "$DB_NAME" --template bats_template 2>/dev/null
  KIT_FRESH_DB=$DB_NAME
  kit_work_dir
}

# Drops the database kit_fresh_db made, if it made one.
kit_drop_db() {
  [[ -n "${KIT_FRESH_DB:-}" ]] || return 0
  "$PM_PYTHON" -m devtools.throwaway_pg dropdb "$PG_ROOT" "$KIT_FRESH_DB"
}

# A PATH holding every command of the current PATH except the ones named: one directory of links,
# the first of each name on PATH (no shell loop: under bats' traps a loop over /usr/bin takes seconds).
kit_path_without() {
  local dir="$BATS_TEST_TMPDIR/bin-without" entry
  mkdir -p "$dir"
  local -a dirs existing=()
  IFS=: read -r -a dirs <<<"$PATH"
  for entry in "${dirs[@]}"; do [[ -d "$entry" ]] && existing+=("$entry"); done
  find "${existing[@]}" -mindepth 1 -maxdepth 1 -executable ! -type d -printf '%f\t%p\n' |
    awk -F '\t' -v skip=" $* " '!seen[$1]++ && index(skip, " " $1 " ") == 0 { print $2 }' |
    xargs -d '\n' -r ln -s -t "$dir" --
  printf '%s\n' "$dir"
}

# PM_PYTHON becomes a stand-in in a virtual environment whose path has a space: the real gate
# answers, and the "core" only writes its PID, PM_PROG, PM_PROFILE and arguments to KIT_CORE_ARGS.
# `gate run` (check, then become the core in the same process) is the real gate's check, then the
# stand-in core with what the gate would have run: -m migration_tools COMMAND ARG ...
kit_stub_core() {
  local venv="$BATS_TEST_TMPDIR/stub venv"
  mkdir -p "$venv/bin"
  : >"$venv/pyvenv.cfg"
  cat >"$venv/bin/python" <<'EOF'
#!/usr/bin/env bash
if [[ "${1:-} ${2:-} ${3:-}" == "-m migration_tools.cli.gate run" ]]; then
  "$KIT_REAL_PYTHON" -m migration_tools.cli.gate check "${@:4}" || exit
  set -- -m migration_tools "${@:4}"
elif [[ "${1:-} ${2:-}" == "-m migration_tools.cli.gate" ]]; then
  exec "$KIT_REAL_PYTHON" "$@"
fi
printf '%s\n' "$$" "PM_PROG=$PM_PROG PM_PROFILE=$PM_PROFILE" "$*" >"$KIT_CORE_ARGS"
EOF
  chmod +x "$venv/bin/python"
  export KIT_REAL_PYTHON=$PM_PYTHON KIT_CORE_ARGS="$BATS_TEST_TMPDIR/core args"
  export PM_PYTHON="$venv/bin/python"
  rm -f "$KIT_CORE_ARGS"
}

# What the stand-in core was given: "PM_PROG=... PM_PROFILE=..." and the arguments, one line each.
kit_core_args() {
  tail -n +2 "$KIT_CORE_ARGS"
}
