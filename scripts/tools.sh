#!/usr/bin/env bash
# Install the deploy tools (helm, promtool, docker-compose) used by tests/deploy.
# Idempotent: anything already present is skipped. helm goes to <repo>/.cache/bin.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$REPO/.cache/bin"
HELM_VERSION="${HELM_VERSION:-v3.22.0}"
mkdir -p "$BIN"

log() { printf '[tools] %s\n' "$*"; }

apt_updated=0
apt_install() {
  if [ "$(id -u)" != 0 ]; then
    log "not root: cannot apt-get install $*; install it by hand"
    return 1
  fi
  if [ "$apt_updated" = 0 ]; then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  log "apt-get install -y $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# helm: compiled from source through the Go module proxy (no binary downloads here).
if [ -x "$BIN/helm" ] && "$BIN/helm" version --short 2>/dev/null | grep -q "^${HELM_VERSION}"; then
  log "helm already installed: $("$BIN/helm" version --short)"
else
  command -v go >/dev/null || { log "go not found: cannot build helm"; exit 1; }
  log "building helm ${HELM_VERSION} with go install (several minutes on 2 cores)..."
  start=$(date +%s)
  GOBIN="$BIN" CGO_ENABLED=0 go install \
    -ldflags "-X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}" \
    "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"
  log "helm built in $(( $(date +%s) - start ))s: $("$BIN/helm" version --short)"
fi

# promtool: from Debian's prometheus package.
if command -v promtool >/dev/null; then
  log "promtool already installed: $(command -v promtool)"
else
  apt_install prometheus
  log "promtool installed: $(promtool --version 2>&1 | head -1)"
fi

# docker-compose v1 from Debian (only used for `config -q`; no engine needed).
if command -v docker-compose >/dev/null; then
  log "docker-compose already installed: $(docker-compose version --short 2>/dev/null || true)"
else
  apt_install docker-compose
  log "docker-compose installed: $(docker-compose version --short 2>/dev/null || true)"
fi

log "done; tools in $BIN, /usr/bin/promtool, /usr/bin/docker-compose"
