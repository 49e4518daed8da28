#!/usr/bin/env bash
# Tycho-2 star catalogue for the camera simulators: Debian's astrometry.net index files.
#   scripts/astrometry.sh ensure   install the packages if missing (idempotent), then check the files
#   scripts/astrometry.sh status   say what is installed (exit 3 if not)
# Files: /usr/share/astrometry/index-tycho2-0{8,9}.*.fits (PYROS_TYCHO2_DIR overrides where the
# simulators look). Installing needs root or sudo; apt output goes to $PYROS_CACHE_DIR/astrometry-apt.log.
set -euo pipefail
_LOG_PREFIX=astrometry
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PACKAGES=(astrometry-data-tycho2-08 astrometry-data-tycho2-09)
DIR="${PYROS_TYCHO2_DIR:-/usr/share/astrometry}"
APT_LOG="$CACHE_DIR/astrometry-apt.log"

installed() { [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]; }

have_files() {
  compgen -G "$DIR/index-tycho2-08*.fits" >/dev/null && compgen -G "$DIR/index-tycho2-09*.fits" >/dev/null
}

status() {
  if have_files; then
    log "Tycho-2 index files present in $DIR: $(cd "$DIR" && ls index-tycho2-*.fits | tr '\n' ' ')"
    return 0
  fi
  log "no Tycho-2 index files in $DIR; run \`scripts/astrometry.sh ensure\`."
  return 3
}

ensure() {
  if have_files; then
    status
    return 0
  fi
  [[ "$DIR" == /usr/share/astrometry ]] || die "no Tycho-2 index files in PYROS_TYCHO2_DIR=$DIR (put them there, or unset it)."
  need_cmd apt-get "the Tycho-2 index files come from Debian packages"
  local missing=() sudo=()
  for p in "${PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
  if ((${#missing[@]})); then
    if [[ "$(id -u)" != 0 ]]; then
      need_cmd sudo "installing ${missing[*]} needs root"
      sudo=(sudo)
    fi
    log "installing ${missing[*]} (apt-get; ~120 MB)..."
    {
      "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" ||
        { "${sudo[@]}" apt-get update && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"; }
    } >"$APT_LOG" 2>&1 || die "apt-get install ${missing[*]} failed." "$APT_LOG"
  fi
  have_files || die "packages installed but no index-tycho2-0{8,9}*.fits under $DIR (check \`dpkg -L ${PACKAGES[0]}-littleendian\`)."
  status
}

case "${1:-}" in
  ensure) ensure ;;
  status) status ;;
  *) echo "usage: $0 ensure|status" >&2; exit 2 ;;
esac
