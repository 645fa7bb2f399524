#!/usr/bin/env bash
# run_tests.sh: the whole test suite: ruff, shellcheck, pytest, bats. Non-zero on any failure.
# The suite starts its own PostgreSQL (see tests/conftest.py and bats/setup_suite.bash).
# --matrix [--only DJANGO/PG] [-- PYTEST ARGS]: pytest on every Django x PostgreSQL combination;
# --smoke: the oldest and newest combination's smoke tests (devtools/matrix.py).
set -Eeuo pipefail
umask 022

root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$root"
# shellcheck source=lib/dev_env.bash
source "$root/lib/dev_env.bash"
dev_ensure_venv "$root"
# shellcheck source=lib/packages.bash
source "$root/lib/packages.bash"
package_ensure chromium chromium
package_ensure pgbackrest pgbackrest
bin="$root/.venv/bin"
export PATH="$bin:$PATH"

case "${1:-}" in
  --matrix) shift && exec python -m devtools.matrix "$@" ;;
  --smoke) shift && exec python -m devtools.matrix --smoke "$@" ;;
esac

printf '==> ruff\n'
ruff check .
printf '==> shellcheck\n'
mapfile -t shell_files < <(git ls-files '*.sh' '*.bash' '*.bats' .ci/run 2>/dev/null || true)
shellcheck -x "${shell_files[@]}"
printf '==> pytest\n'
python -m pytest "$@"
printf '==> bats\n'
bats --timing bats/
printf '==> all tests passed\n'
