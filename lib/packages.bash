# shellcheck shell=bash
# Debian's headless chromium, which the report tests open the HTML reports with (devtools/browser.py).

# Install chromium when it is missing: as root through apt-get; otherwise say how, and go on
# (the tests that need it then fail naming it).
browser_ensure() {
  if command -v chromium >/dev/null 2>&1; then
    return 0
  fi
  if [[ $(id -u) -ne 0 ]]; then
    printf 'warning: chromium is missing; install it as root: apt-get install chromium\n' >&2
    return 0
  fi
  printf '==> installing chromium (apt-get)\n'
  if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }; then
    printf 'warning: apt-get could not install chromium; the report tests will fail naming it\n' >&2
  fi
}
