#!/usr/bin/env bash
# Shared helpers for scripts/{kafka,postgres,comet}.sh. Source it; do not execute it.
# Sets REPO_ROOT (found from this file's location) and CACHE_DIR (env PYROS_CACHE_DIR, default
# $REPO_ROOT/.cache).

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_DIR="${PYROS_CACHE_DIR:-$REPO_ROOT/.cache}"
mkdir -p "$CACHE_DIR"
CACHE_DIR="$(cd "$CACHE_DIR" && pwd)"

_LOG_PREFIX="${_LOG_PREFIX:-$(basename "$0" .sh)}"

log() { printf '[%s] %s\n' "$_LOG_PREFIX" "$*"; }

# die MESSAGE [LOGFILE]: print a one-sentence reason (plus the tail of LOGFILE) and exit 1.
die() {
  printf '[%s] ERROR: %s\n' "$_LOG_PREFIX" "$1" >&2
  if [[ $# -ge 2 && -f "$2" ]]; then
    printf '[%s] ---- last 40 lines of %s ----\n' "$_LOG_PREFIX" "$2" >&2
    tail -n 40 "$2" >&2 || true
    printf '[%s] ----\n' "$_LOG_PREFIX" >&2
  fi
  exit 1
}

need_cmd() { command -v "$1" >/dev/null 2>&1 || die "required command '$1' not found on PATH${2:+ ($2)}."; }

# port_open HOST PORT: true if a TCP connect succeeds (bash /dev/tcp, no extra tools needed).
port_open() { (exec 3<>"/dev/tcp/$1/$2") >/dev/null 2>&1; }

# pid_alive PIDFILE: true if PIDFILE names a running process (prints nothing).
pid_alive() {
  local pf="$1" pid
  [[ -f "$pf" ]] || return 1
  pid="$(cat "$pf" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null
}

# stop_pidfile NAME PIDFILE [TIMEOUT]: SIGTERM the process, wait, then SIGKILL; removes the pid file.
stop_pidfile() {
  local name="$1" pf="$2" timeout="${3:-30}" pid i
  if ! pid_alive "$pf"; then
    log "$name is not running."
    rm -f "$pf"
    return 0
  fi
  pid="$(cat "$pf")"
  log "stopping $name (pid $pid)..."
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout * 5; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name did not exit within ${timeout}s, sending SIGKILL."
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
  fi
  rm -f "$pf"
  log "$name stopped."
}

# wait_port NAME HOST PORT TIMEOUT PIDFILE LOGFILE: wait for the port, failing early if the process died.
wait_port() {
  local name="$1" host="$2" port="$3" timeout="$4" pf="$5" logf="$6" start=$SECONDS
  until port_open "$host" "$port"; do
    pid_alive "$pf" || die "$name exited during startup before opening $host:$port." "$logf"
    ((SECONDS - start < timeout)) || die "$name did not open $host:$port within ${timeout}s." "$logf"
    sleep 0.5
  done
}
