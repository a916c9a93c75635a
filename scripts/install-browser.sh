#!/usr/bin/env bash
# Installs Debian's Chromium for the browser test (the Temporal UI check), when it is missing.
# CHROMIUM_PATH names another Chromium to use instead. Quiet when there is nothing to do.
set -euo pipefail
want="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ -x "$want" ]; then exit 0; fi
if [ -n "${CHROMIUM_PATH:-}" ]; then
  echo "install-browser: CHROMIUM_PATH=$CHROMIUM_PATH is not an executable" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "install-browser: Chromium is missing: install Debian's chromium package (apt-get install chromium) or set CHROMIUM_PATH" >&2
  exit 1
fi
log="$(dirname "$0")/../.tools/install-browser.log"
mkdir -p "$(dirname "$log")"
if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >"$log" 2>&1; then
  echo "install-browser: apt-get install chromium failed; see $log" >&2
  exit 1
fi
echo "install-browser: Chromium via apt-get ($(/usr/bin/chromium --version 2>/dev/null || echo installed))"
