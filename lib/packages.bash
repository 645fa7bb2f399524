# shellcheck shell=bash
# Debian packages the tests use besides PostgreSQL: chromium (the report tests open the HTML reports
# with it, devtools/browser.py) and pgbackrest (the pgBackRest tier's tests, devtools/pg_backrest.py).

# package_ensure COMMAND PACKAGE: install PACKAGE when COMMAND is missing: as root through apt-get;
# otherwise say how, and go on (the tests that need it then fail naming it).
package_ensure() {
  local command=$1 package=$2
  if command -v "$command" >/dev/null 2>&1; then
    return 0
  fi
  if [[ $(id -u) -ne 0 ]]; then
    printf 'warning: %s is missing; install it as root: apt-get install %s\n' "$command" "$package" >&2
    return 0
  fi
  printf '==> installing %s (apt-get)\n' "$package"
  if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null; }; then
    printf 'warning: apt-get could not install %s; the tests that need it will fail naming it\n' "$package" >&2
  fi
}
