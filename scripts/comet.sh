#!/usr/bin/env bash
# Comet VOEvent broker (Twisted app) for tests, in its own venv ($PYROS_CACHE_DIR/comet-venv).
#   scripts/comet.sh start|stop|status
# Receiver (authors submit events, e.g. comet-sendvo): tcp 127.0.0.1:8098 (COMET_RECEIVE_PORT)
# Broadcaster (subscribers receive events, VTP):       tcp 127.0.0.1:8099 (COMET_BROADCAST_PORT)
# Local IVO: ivo://pyros/test (COMET_LOCAL_IVO). Pid file and log in $PYROS_CACHE_DIR/comet/.
# The event database (duplicate-IVORN check) is wiped on every start so tests can re-send packets.
# See infra/comet/README.md for the protocol details observed with this broker.
set -euo pipefail
_LOG_PREFIX=comet
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

REQS="$REPO_ROOT/infra/comet/requirements.txt"
VENV="$CACHE_DIR/comet-venv"
CDIR="$CACHE_DIR/comet"
PIDFILE="$CDIR/comet.pid"
LOGFILE="$CDIR/comet.log"
EVENTDB="$CDIR/eventdb"
RECEIVE_PORT="${COMET_RECEIVE_PORT:-8098}"
BROADCAST_PORT="${COMET_BROADCAST_PORT:-8099}"
LOCAL_IVO="${COMET_LOCAL_IVO:-ivo://pyros/test}"
TIMEOUT="${COMET_START_TIMEOUT:-60}"

ensure_venv() {
  local stamp
  stamp="$VENV/.installed-$(sha256sum "$REQS" | cut -c1-16)"
  [[ -f "$stamp" && -x "$VENV/bin/twistd" ]] && return 0
  local py
  py="$(command -v python3.11 || true)"
  [[ -n "$py" ]] || die "python3.11 is required to build the Comet venv but is not on PATH."
  log "creating $VENV and installing Comet (pip, pinned by infra/comet/requirements.txt)..."
  rm -rf "$VENV"
  mkdir -p "$CACHE_DIR"
  {
    "$py" -m venv "$VENV" &&
      "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQS"
  } >"$CACHE_DIR/comet-venv-install.log" 2>&1 || {
    rm -rf "$VENV"
    die "installing Comet into its venv failed." "$CACHE_DIR/comet-venv-install.log"
  }
  touch "$stamp"
}

status() {
  if pid_alive "$PIDFILE" && port_open 127.0.0.1 "$RECEIVE_PORT" && port_open 127.0.0.1 "$BROADCAST_PORT"; then
    log "running (pid $(cat "$PIDFILE")): receive tcp:$RECEIVE_PORT, broadcast tcp:$BROADCAST_PORT, ivo $LOCAL_IVO."
    return 0
  fi
  log "not running."
  return 3
}

start() {
  if pid_alive "$PIDFILE" && port_open 127.0.0.1 "$RECEIVE_PORT" && port_open 127.0.0.1 "$BROADCAST_PORT"; then
    log "already running (pid $(cat "$PIDFILE")); nothing to do."
    return 0
  fi
  pid_alive "$PIDFILE" && stop_pidfile comet "$PIDFILE" 15
  if port_open 127.0.0.1 "$RECEIVE_PORT" || port_open 127.0.0.1 "$BROADCAST_PORT"; then
    die "port $RECEIVE_PORT or $BROADCAST_PORT is already in use by another process."
  fi
  ensure_venv
  mkdir -p "$CDIR"
  rm -rf "$EVENTDB"
  mkdir -p "$EVENTDB"
  log "starting Comet: receive tcp:$RECEIVE_PORT, broadcast tcp:$BROADCAST_PORT, local ivo $LOCAL_IVO..."
  # twistd -n: stay in the foreground (we background it and own the pid file); --pidfile= disables
  # twistd's own pid file. Whitelists restrict authors and subscribers to loopback.
  (cd "$CDIR" && exec setsid "$VENV/bin/twistd" -n --pidfile= --logfile="$LOGFILE" comet \
    --receive --receive-port="$RECEIVE_PORT" \
    --broadcast --broadcast-port="$BROADCAST_PORT" \
    --local-ivo="$LOCAL_IVO" \
    --eventdb="$EVENTDB" \
    --author-whitelist=127.0.0.0/8 \
    --subscriber-whitelist=127.0.0.0/8 \
    --broadcast-test-interval=0 \
    --verbose \
    >"$CDIR/twistd.out" 2>&1 </dev/null) &
  echo $! >"$PIDFILE"
  local t0=$SECONDS
  wait_port Comet 127.0.0.1 "$RECEIVE_PORT" "$TIMEOUT" "$PIDFILE" "$LOGFILE"
  wait_port Comet 127.0.0.1 "$BROADCAST_PORT" "$TIMEOUT" "$PIDFILE" "$LOGFILE"
  log "ready after $((SECONDS - t0))s (pid $(cat "$PIDFILE"), log $LOGFILE)."
}

stop() { stop_pidfile comet "$PIDFILE" 15; }

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  restart) stop; start ;;
  *) echo "usage: $0 start|stop|status|restart" >&2; exit 2 ;;
esac
