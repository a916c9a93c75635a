#!/usr/bin/env bash
# Installs PostgreSQL's server (Debian's `postgresql` package) when it is missing, for the tests
# that run the target-state store against a real server (scripts/postgres.ts starts it).
#
# Idempotent and non-interactive (fine with CI=true and no stdin). Prints nothing when initdb and
# pg_ctl are already there, otherwise one line; failures go to stderr with the tail of the log.
# Needs root (or sudo) only when it has something to install.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
LOG="$TOOLS/install-postgres.log"
mkdir -p "$TOOLS"

found() {
  command -v pg_ctl >/dev/null 2>&1 && return 0
  compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null
}

if found; then exit 0; fi

fail() {
  echo "install-postgres: $1; last lines of ${LOG#"$ROOT"/}:" >&2
  tail -n 15 "$LOG" | sed 's/^/    /' >&2
  exit 1
}

SUDO=()
if [[ "$(id -u)" != 0 ]]; then
  command -v sudo >/dev/null 2>&1 || {
    echo "install-postgres: PostgreSQL is missing and this user cannot install it: run 'apt-get install -y postgresql' as root" >&2
    exit 1
  }
  SUDO=(sudo -n)
fi
export DEBIAN_FRONTEND=noninteractive
{
  "${SUDO[@]}" apt-get update -q
  "${SUDO[@]}" apt-get install -y -q --no-install-recommends postgresql
} >"$LOG" 2>&1 </dev/null || fail "apt-get install postgresql failed"
found || fail "the postgresql package installed no pg_ctl"
echo "install-postgres: $(ls -d /usr/lib/postgresql/*/bin | tail -n 1)/pg_ctl via apt-get (postgresql)"
