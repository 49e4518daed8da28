#!/usr/bin/env bash
# The one test command (README): setup, real Kafka + PostgreSQL + Comet, ruff, mypy, pytest.
# Stops at the end what it started. Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
STARTED=()
cleanup() {
  local rc=$?
  for svc in "${STARTED[@]}"; do
    echo "test: stopping $svc"
    "scripts/$svc.sh" stop >/dev/null 2>&1 || true
  done
  exit $rc
}
trap cleanup EXIT

step() { echo; echo "=== $* ($(date -u +%H:%M:%S))"; }

step setup
scripts/setup.sh
[[ -x scripts/tools.sh ]] && scripts/tools.sh

step infrastructure
if ! command -v indiserver >/dev/null 2>&1; then
  echo "test: installing INDI (Debian indi-bin: indiserver + simulator drivers)"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq indi-bin >/dev/null) \
    || { echo "test: could not install indi-bin with apt-get" >&2; exit 1; }
fi
# Debian's Tycho-2 astrometry.net index files: the stars of the simulated images.
scripts/astrometry.sh ensure || { echo "test: could not install the Tycho-2 index files" >&2; exit 1; }
for svc in kafka postgres comet; do
  [[ -x "scripts/$svc.sh" ]] || continue
  if "scripts/$svc.sh" status >/dev/null 2>&1; then
    echo "test: $svc already running"
  else
    "scripts/$svc.sh" start
    STARTED+=("$svc")
  fi
done

step ruff
.venv/bin/ruff check .
.venv/bin/ruff format --check .

step "mypy --strict (libs/ and every service)"
MYPYPATH="libs:cli:simulators$(printf ':%s' services/*)" .venv/bin/mypy \
  $(for d in libs/pyros_* cli/pyros_* simulators/pyros_* services/*/pyros_*; do printf -- '-p %s ' "$(basename "$d")"; done)

step pytest
set +e
.venv/bin/pytest -W error -p no:cacheprovider "$@"
rc=$?
set -e
if [[ $rc -eq 5 ]]; then echo "test: pytest collected no test" >&2; exit 1; fi
exit $rc
