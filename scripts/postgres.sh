#!/usr/bin/env bash
# PostgreSQL for tests: Debian's packaged server, cluster "<ver>/main" on localhost:5432,
# role pyros/pyros (LOGIN CREATEDB SUPERUSER) and database pyros.
#   scripts/postgres.sh start|stop|status
# Uses postgresql-common's pg_ctlcluster (works as root without systemd) and the server binaries in
# /usr/lib/postgresql/<ver>/bin, never whatever pg_ctl happens to be on PATH.
# Must run as root (installs the package with apt-get when missing).
set -euo pipefail
_LOG_PREFIX=postgres
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT=5432
CLUSTER=main
DB_USER=pyros
DB_PASSWORD=pyros
DB_NAME=pyros
TIMEOUT="${POSTGRES_START_TIMEOUT:-60}"

pg_version() { # newest installed server major version
  local d v=""
  for d in /usr/lib/postgresql/*/bin/postgres; do
    [[ -x "$d" ]] || continue
    d="${d#/usr/lib/postgresql/}"
    d="${d%%/*}"
    if [[ -z "$v" || "$d" -gt "$v" ]]; then v="$d"; fi
  done
  echo "$v"
}

ensure_installed() {
  if [[ -n "$(pg_version)" ]] && command -v pg_ctlcluster >/dev/null 2>&1; then
    return 0
  fi
  [[ "$(id -u)" -eq 0 ]] || die "PostgreSQL is not installed and installing it needs root."
  need_cmd apt-get "this script supports Debian/Ubuntu only"
  log "installing the Debian 'postgresql' package (apt-get)..."
  export DEBIAN_FRONTEND=noninteractive
  {
    apt-get update -q && apt-get install -y -q --no-install-recommends postgresql
  } >"$CACHE_DIR/postgres-apt.log" 2>&1 || die "apt-get install postgresql failed." "$CACHE_DIR/postgres-apt.log"
  [[ -n "$(pg_version)" ]] || die "postgresql was installed but no server binaries were found in /usr/lib/postgresql."
}

as_postgres() { (cd / && runuser -u postgres -- "$@"); }

psql_admin() { # run SQL as the postgres superuser over the Unix socket
  as_postgres "/usr/lib/postgresql/$VER/bin/psql" -X -q -v ON_ERROR_STOP=1 -p "$PORT" -d postgres "$@"
}

cluster_status() { # prints online/down/"" for $VER/$CLUSTER
  pg_lsclusters -h 2>/dev/null | awk -v v="$VER" -v c="$CLUSTER" '$1 == v && $2 == c {print $4}'
}

ensure_cluster() {
  if [[ -z "$(cluster_status)" ]]; then
    log "creating cluster $VER/$CLUSTER on port $PORT..."
    pg_createcluster "$VER" "$CLUSTER" --port "$PORT" --start-conf manual -- \
      --auth-local=peer --auth-host=scram-sha-256 >"$CACHE_DIR/postgres-createcluster.log" 2>&1 ||
      die "pg_createcluster $VER $CLUSTER failed." "$CACHE_DIR/postgres-createcluster.log"
  fi
  local conf="/etc/postgresql/$VER/$CLUSTER/conf.d"
  mkdir -p "$conf"
  # Test settings: local only, no TLS (no snakeoil certificate needed), fast and non-durable.
  cat >"$conf/pyros-test.conf" <<CONF
# Written by scripts/postgres.sh (PyROS test infrastructure).
listen_addresses = 'localhost'
port = $PORT
ssl = off
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
  chown -R postgres:postgres "$conf"
}

is_ready() { "/usr/lib/postgresql/$VER/bin/pg_isready" -q -h 127.0.0.1 -p "$PORT" -t 2; }

ensure_role_and_db() {
  psql_admin <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_USER') THEN
    CREATE ROLE $DB_USER LOGIN CREATEDB SUPERUSER PASSWORD '$DB_PASSWORD';
  ELSE
    ALTER ROLE $DB_USER LOGIN CREATEDB SUPERUSER PASSWORD '$DB_PASSWORD';
  END IF;
END
\$\$;
SQL
  if [[ "$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" != "1" ]]; then
    log "creating database $DB_NAME..."
    psql_admin -c "CREATE DATABASE $DB_NAME OWNER $DB_USER"
  fi
  PGPASSWORD="$DB_PASSWORD" "/usr/lib/postgresql/$VER/bin/psql" -X -q -h 127.0.0.1 -p "$PORT" -U "$DB_USER" \
    -d "$DB_NAME" -tAc 'SELECT 1' >/dev/null || die "cannot log in as $DB_USER over TCP on 127.0.0.1:$PORT."
}

start() {
  ensure_installed
  VER="$(pg_version)"
  need_cmd pg_ctlcluster "part of postgresql-common"
  ensure_cluster
  # /var/run/postgresql is a tmpfs on many machines; without systemd nobody recreates it.
  install -d -o postgres -g postgres -m 2775 /var/run/postgresql
  local logf="/var/log/postgresql/postgresql-$VER-$CLUSTER.log"
  if [[ "$(cluster_status)" == online ]]; then
    log "cluster $VER/$CLUSTER already running."
  else
    if port_open 127.0.0.1 "$PORT"; then
      die "port $PORT on 127.0.0.1 is in use by something other than cluster $VER/$CLUSTER."
    fi
    log "starting PostgreSQL $VER cluster $CLUSTER on 127.0.0.1:$PORT..."
    pg_ctlcluster "$VER" "$CLUSTER" start >"$CACHE_DIR/postgres-start.log" 2>&1 ||
      { cat "$CACHE_DIR/postgres-start.log" >&2; die "pg_ctlcluster $VER $CLUSTER start failed." "$logf"; }
  fi
  local t0=$SECONDS
  until is_ready; do
    ((SECONDS - t0 < TIMEOUT)) || die "PostgreSQL did not accept connections within ${TIMEOUT}s." "$logf"
    sleep 0.5
  done
  ensure_role_and_db
  log "ready: postgresql://$DB_USER:$DB_PASSWORD@127.0.0.1:$PORT/$DB_NAME"
}

stop() {
  VER="$(pg_version)"
  if [[ -z "$VER" ]] || [[ "$(cluster_status)" != online ]]; then
    log "not running."
    return 0
  fi
  log "stopping cluster $VER/$CLUSTER..."
  pg_ctlcluster "$VER" "$CLUSTER" stop -m fast || die "pg_ctlcluster $VER $CLUSTER stop failed."
  log "stopped."
}

status() {
  VER="$(pg_version)"
  [[ -n "$VER" ]] || { log "PostgreSQL is not installed."; return 3; }
  if [[ "$(cluster_status)" == online ]] && is_ready; then
    log "running (PostgreSQL $VER, cluster $CLUSTER) on 127.0.0.1:$PORT."
    return 0
  fi
  log "not running (cluster $VER/$CLUSTER: $(cluster_status || true))."
  return 3
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  restart) stop; start ;;
  *) echo "usage: $0 start|stop|status|restart" >&2; exit 2 ;;
esac
