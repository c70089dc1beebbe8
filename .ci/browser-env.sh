#!/usr/bin/env bash
# Install headless Chromium and its WebDriver (Debian packages `chromium`, `chromium-driver`)
# for the browser tests (tests/python/test_dashboard.py). Idempotent: does nothing when
# /usr/bin/chromium and /usr/bin/chromedriver are already there. Runs as root (CI does);
# prints nothing but errors.
set -euo pipefail

if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then
  exit 0
fi

SUDO=""
if [[ "$(id -u)" != 0 ]]; then
  SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! { $SUDO apt-get update -qq && \
       $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core; } >"$log" 2>&1; then
  echo "browser-env: installing chromium chromium-driver failed:" >&2
  cat "$log" >&2
  exit 1
fi
for bin in /usr/bin/chromium /usr/bin/chromedriver; do
  if [[ ! -x "$bin" ]]; then
    echo "browser-env: $bin missing after install" >&2
    exit 1
  fi
done
