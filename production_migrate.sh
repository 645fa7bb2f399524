#!/usr/bin/env bash
# production_migrate.sh: production-safe Django migrations on PostgreSQL.
# Run 'production_migrate.sh help' for the commands.
set -Eeuo pipefail
umask 077

PM_PROG=$(basename "${BASH_SOURCE[0]}")
PM_PROFILE=standard
PM_KIT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib/pm_common.bash
source "$PM_KIT_DIR/lib/pm_common.bash"

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  pm_main "$@"
fi
