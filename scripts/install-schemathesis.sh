#!/usr/bin/env bash
# Installs Schemathesis (the HTTP contract test's fuzzer) into <project>/.tools/venv, pinned:
#
#   pip `schemathesis==4.32.5` -> .tools/venv/bin/st
#
# Idempotent and non-interactive (fine with CI=true and no stdin). Prints nothing when it is already
# in place, otherwise one line; failures go to stderr with the tail of the install log.
# Env: PYTHON (interpreter for the venv, default python3).
set -euo pipefail

VERSION=4.32.5 # PyPI schemathesis (needs Python >= 3.9)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
VENV="$TOOLS/venv"
LOG="$TOOLS/install-schemathesis.log"
PYTHON="${PYTHON:-python3}"

export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1

mkdir -p "$TOOLS"

# The same lock as install-temporal.sh: both install into the one venv.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$TOOLS/.install.lock"
  flock 9
fi

installed() {
  [[ -x "$VENV/bin/st" ]] &&
    compgen -G "$VENV/lib/python*/site-packages/schemathesis-$VERSION.dist-info" >/dev/null
}

if installed; then exit 0; fi

fail() {
  echo "install-schemathesis: $1; last lines of ${LOG#"$ROOT"/}:" >&2
  tail -n 15 "$LOG" | sed 's/^/    /' >&2
  exit 1
}

if [[ ! -x "$VENV/bin/pip" ]]; then
  if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "install-schemathesis: $PYTHON not found: install Python 3 (or set PYTHON) to create .tools/venv" >&2
    exit 1
  fi
  "$PYTHON" -m venv "$VENV" >"$LOG" 2>&1 </dev/null || fail "creating .tools/venv failed"
fi
"$VENV/bin/pip" install --quiet "schemathesis==$VERSION" >"$LOG" 2>&1 </dev/null ||
  fail "pip install schemathesis==$VERSION failed"
installed || fail "schemathesis==$VERSION installed no .tools/venv/bin/st"
echo "install-schemathesis: schemathesis==$VERSION via pip -> .tools/venv/bin/st"
