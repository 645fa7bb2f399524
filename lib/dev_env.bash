# shellcheck shell=bash
# Set-up shared by demo.sh and run_tests.sh: the virtualenv with runtime and dev requirements.

# Create .venv if missing and (re)install the requirements when they changed since last time.
dev_ensure_venv() {
  local root=$1
  local venv="$root/.venv" stamp="$root/.venv/.requirements.sha256" want
  if [[ ! -x "$venv/bin/python" ]]; then
    printf '==> creating virtual environment %s\n' "$venv"
    python3 -m venv "$venv"
  fi
  want=$(cat "$root/requirements.txt" "$root/requirements-dev.txt" | sha256sum | cut -d' ' -f1)
  if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    printf '==> installing requirements into %s\n' "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
      -r "$root/requirements-dev.txt"
    printf '%s\n' "$want" >"$stamp"
  fi
}
