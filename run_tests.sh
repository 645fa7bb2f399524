#!/usr/bin/env bash
# run_tests.sh: the whole test suite: ruff, shellcheck, pytest, bats. Non-zero on any failure.
# The suite starts its own PostgreSQL (see tests/conftest.py and bats/setup_suite.bash).
set -Eeuo pipefail
umask 022

root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$root"
# shellcheck source=lib/dev_env.bash
source "$root/lib/dev_env.bash"
dev_ensure_venv "$root"
bin="$root/.venv/bin"
export PATH="$bin:$PATH"

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
