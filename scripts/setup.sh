#!/usr/bin/env bash
# Create .venv and install PyROS with its locked dependencies (idempotent).
#   scripts/setup.sh          runtime + dev dependencies (tests, linters)
#   scripts/setup.sh --no-dev runtime only
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DEV_FLAG=""
[[ "${1:-}" == "--no-dev" ]] && DEV_FLAG="--no-dev"

PY="${PYROS_PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' 2>/dev/null \
  || { echo "setup: PyROS needs Python 3.11 (found $("$PY" --version 2>&1)); set PYROS_PYTHON" >&2; exit 1; }

if ! command -v uv >/dev/null 2>&1; then
  echo "setup: installing uv from PyPI"
  "$PY" -m pip install --quiet --disable-pip-version-check uv
fi
UV="$(command -v uv || echo "$("$PY" -m site --user-base)/bin/uv")"

echo "setup: .venv from uv.lock"
"$UV" sync --frozen --inexact --python "$PY" $DEV_FLAG --no-install-package voevent-parse --quiet
# voevent-parse ships only an sdist that uv refuses to unpack (a ':' in a fixture's name): pip builds it.
if ! .venv/bin/python -c 'import voeventparse' 2>/dev/null; then
  echo "setup: voevent-parse 1.0.3 (pip)"
  "$PY" -m pip --python .venv/bin/python install --quiet --disable-pip-version-check --no-deps voevent-parse==1.0.3
fi

if [[ -z "$DEV_FLAG" ]] && command -v npm >/dev/null 2>&1 && [[ ! -d .cache/asyncapi/node_modules/@asyncapi/parser ]]; then
  echo "setup: @asyncapi/parser (npm) for the contract test"
  mkdir -p .cache/asyncapi
  (cd .cache/asyncapi && npm install --no-audit --no-fund --silent @asyncapi/parser@3 >/dev/null)
fi
# Byte-compile once, so that `pyros --help` and the first start need not compile on every run
# (a shell with PYTHONDONTWRITEBYTECODE never writes the caches itself).
.venv/bin/python -m compileall -q -j 0 cli libs services simulators .venv/lib/python3.11/site-packages \
  >/dev/null 2>&1 || true
echo "setup: done ($(.venv/bin/python --version), $(.venv/bin/pyros --help >/dev/null && echo 'pyros ok'))"
