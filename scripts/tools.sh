#!/usr/bin/env bash
# Install the deploy tools (helm, promtool, docker-compose) used by tests/deploy.
# Idempotent: anything already present is skipped. helm goes to <repo>/.cache/bin.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$REPO/.cache/bin"
HELM_VERSION="${HELM_VERSION:-v3.22.0}"
# Kubernetes version helm assumes without a cluster (helm template, lint): helm's Makefile sets
# it from its client-go module (v0.37 -> 1.37); a bare `go install` would leave 1.20.
HELM_K8S_MAJOR=1
HELM_K8S_MINOR=37
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
HELM_STAMP="$BIN/.helm-build"   # what the binary was built with
HELM_WANT="${HELM_VERSION} k8s ${HELM_K8S_MAJOR}.${HELM_K8S_MINOR}"
if [ -x "$BIN/helm" ] && [ "$(cat "$HELM_STAMP" 2>/dev/null)" = "$HELM_WANT" ]; then
  log "helm already installed: $("$BIN/helm" version --short)"
else
  command -v go >/dev/null || { log "go not found: cannot build helm"; exit 1; }
  log "building helm ${HELM_VERSION} with go install (several minutes on 2 cores)..."
  start=$(date +%s)
  GOBIN="$BIN" CGO_ENABLED=0 go install \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION} \
      -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=${HELM_K8S_MAJOR} \
      -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=${HELM_K8S_MINOR} \
      -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=${HELM_K8S_MAJOR} \
      -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=${HELM_K8S_MINOR}" \
    "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"
  echo "$HELM_WANT" > "$HELM_STAMP"
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
