# shellcheck shell=bash
# Helpers shared by the bats files: a fresh database per test and hostile working directories.

# A fresh copy of the seeded demo database, and a working directory whose name has a space.
kit_fresh_db() {
  DB_NAME="bats_$(basename "$BATS_TEST_TMPDIR" | tr -c 'a-z0-9\n' '_')_${BATS_TEST_NUMBER}"
  export DB_NAME
  "$PM_PYTHON" -m devtools.throwaway_pg createdb "$PG_ROOT" "$DB_NAME" --template bats_template 2>/dev/null
  KIT_WORK="$BATS_TEST_TMPDIR/work dir"
  mkdir -p "$KIT_WORK"
  cd "$KIT_WORK" || return 1
}

kit_drop_db() {
  "$PM_PYTHON" -m devtools.throwaway_pg dropdb "$PG_ROOT" "$DB_NAME"
}

# A PATH holding every command of the current PATH except the ones named.
kit_path_without() {
  local dir="$BATS_TEST_TMPDIR/bin-without" entry name skip
  mkdir -p "$dir"
  local -a dirs
  IFS=: read -r -a dirs <<<"$PATH"
  for entry in "${dirs[@]}"; do
    [[ -d "$entry" ]] || continue
    for name in "$entry"/*; do
      [[ -x "$name" && ! -e "$dir/${name##*/}" ]] || continue
      for skip in "$@"; do [[ "${name##*/}" == "$skip" ]] && continue 2; done
      ln -s "$name" "$dir/${name##*/}"
    done
  done
  printf '%s\n' "$dir"
}
