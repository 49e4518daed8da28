#!/usr/bin/env bash
# Single-node Apache Kafka (KRaft, broker+controller) for tests: 127.0.0.1:9092 (controller 9093).
#   scripts/kafka.sh start|stop|status
# Jars come from Maven Central via infra/kafka/pom.xml into $PYROS_CACHE_DIR/kafka/lib
# (default <repo>/.cache/kafka/lib); data, logs and pid file live under $PYROS_CACHE_DIR/kafka/.
# Env: KAFKA_VERSION (default: pinned in infra/kafka/pom.xml), KAFKA_START_TIMEOUT (default 90),
#      KAFKA_HEAP_OPTS (default -Xms256m -Xmx512m).
set -euo pipefail
_LOG_PREFIX=kafka
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

INFRA="$REPO_ROOT/infra/kafka"
POM="$INFRA/pom.xml"
PINNED_VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM" | head -n1)"
KAFKA_VERSION="${KAFKA_VERSION:-$PINNED_VERSION}"
KDIR="$CACHE_DIR/kafka"
LIB="$KDIR/lib"
DATA="$KDIR/data"
LOGS="$KDIR/logs"
CONF="$KDIR/config"
PIDFILE="$KDIR/kafka.pid"
STDOUT_LOG="$LOGS/kafkaServer.out"
HOST=127.0.0.1
PORT=9092
CONTROLLER_PORT=9093
TIMEOUT="${KAFKA_START_TIMEOUT:-90}"

java_bin() {
  need_cmd java "install a Java 17 JRE, e.g. apt-get install openjdk-17-jre-headless"
  local v
  v="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)"
  [[ -n "$v" && "$v" -ge 17 ]] || die "Kafka $KAFKA_VERSION needs Java 17+, found '${v:-unknown}'."
}

fetch_jars() {
  local marker="$LIB/.complete-$KAFKA_VERSION"
  if [[ -f "$marker" ]]; then
    return 0
  fi
  need_cmd mvn "install Maven, e.g. apt-get install maven"
  log "downloading Kafka $KAFKA_VERSION and runtime dependencies from Maven Central into $LIB ..."
  local binding_args=()
  if [[ "${KAFKA_VERSION%%.*}" -lt 4 ]]; then
    # Kafka 3.x logs through slf4j 1.7 -> reload4j (log4j 1.x API).
    binding_args=(-Dlog.binding.groupId=org.slf4j -Dlog.binding.artifactId=slf4j-reload4j -Dlog.binding.version=1.7.36)
  fi
  rm -rf "$LIB" "$LIB.tmp"
  mkdir -p "$KDIR"
  if ! mvn -q -B -f "$POM" dependency:copy-dependencies \
      -Dkafka.version="$KAFKA_VERSION" "${binding_args[@]}" \
      -Dmaven.repo.local="$KDIR/m2" \
      -DincludeScope=runtime -DoutputDirectory="$LIB.tmp" >"$KDIR/mvn.log" 2>&1; then
    rm -rf "$LIB.tmp"
    die "mvn could not fetch Kafka $KAFKA_VERSION from Maven Central." "$KDIR/mvn.log"
  fi
  mv "$LIB.tmp" "$LIB"
  touch "$marker"
  log "fetched $(find "$LIB" -name '*.jar' | wc -l) jars."
}

jvm_log_opts() {
  if [[ "${KAFKA_VERSION%%.*}" -lt 4 ]]; then
    echo "-Dlog4j.configuration=file:$INFRA/log4j.properties"
  else
    echo "-Dlog4j2.configurationFile=$INFRA/log4j2.properties"
  fi
}

run_java() { # run a short-lived Kafka JVM tool
  java -Xmx256m -Dkafka.logs.dir="$LOGS" "$(jvm_log_opts)" -cp "$LIB/*" "$@"
}

render_config() {
  mkdir -p "$CONF"
  sed -e "s#@DATA_DIR@#$DATA#g" "$INFRA/server.properties.template" >"$CONF/server.properties"
}

format_storage() {
  if [[ -f "$DATA/meta.properties" ]]; then
    if [[ "$(cat "$KDIR/data.version" 2>/dev/null || true)" == "$KAFKA_VERSION" ]]; then
      return 0
    fi
    log "data dir was formatted by another Kafka version; wiping $DATA."
  fi
  rm -rf "$DATA"
  mkdir -p "$DATA"
  local cluster_id
  cluster_id="$(run_java kafka.tools.StorageTool random-uuid 2>>"$LOGS/storage-tool.log" | tail -n1)"
  [[ -n "$cluster_id" ]] || die "kafka.tools.StorageTool random-uuid produced no cluster id." "$LOGS/storage-tool.log"
  log "formatting KRaft storage (cluster id $cluster_id)..."
  run_java kafka.tools.StorageTool format --ignore-formatted -t "$cluster_id" -c "$CONF/server.properties" \
    >>"$LOGS/storage-tool.log" 2>&1 || die "formatting KRaft storage failed." "$LOGS/storage-tool.log"
  echo "$KAFKA_VERSION" >"$KDIR/data.version"
}

broker_ready() { # port open and the broker logged that it finished starting (since this process started)
  port_open "$HOST" "$PORT" || return 1
  grep -q "Kafka Server started" "$LOGS/server.log" 2>/dev/null
}

metadata_check() { # real client round-trip if the repo's venv exists (not required)
  local py="$REPO_ROOT/.venv/bin/python"
  [[ -x "$py" ]] || return 0
  "$py" - "$HOST:$PORT" <<'PY' >>"$LOGS/readiness.log" 2>&1
import asyncio, sys
from aiokafka.admin import AIOKafkaAdminClient
async def main() -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=sys.argv[1], request_timeout_ms=5000)
    await admin.start()
    try:
        meta = await admin.describe_cluster()
        print("cluster:", meta)
    finally:
        await admin.close()
asyncio.run(main())
PY
}

show_stdout_tail() { # JVM-level failures (bad options, OOM) only show up on stdout/stderr
  if [[ -s "$STDOUT_LOG" ]]; then
    echo "[kafka] ---- last 20 lines of $STDOUT_LOG ----" >&2
    tail -n 20 "$STDOUT_LOG" >&2 || true
  fi
}

status() {
  if pid_alive "$PIDFILE" && port_open "$HOST" "$PORT"; then
    log "running (pid $(cat "$PIDFILE"), Kafka $(cat "$KDIR/running.version" 2>/dev/null || echo '?')) on $HOST:$PORT."
    return 0
  fi
  if pid_alive "$PIDFILE"; then
    log "process $(cat "$PIDFILE") alive but $HOST:$PORT is not accepting connections."
    return 1
  fi
  if port_open "$HOST" "$PORT"; then
    log "not started by this script, but something is listening on $HOST:$PORT."
    return 1
  fi
  log "not running."
  return 3
}

start() {
  if pid_alive "$PIDFILE" && port_open "$HOST" "$PORT"; then
    log "already running (pid $(cat "$PIDFILE")) on $HOST:$PORT; nothing to do."
    return 0
  fi
  if pid_alive "$PIDFILE"; then
    log "stale broker process $(cat "$PIDFILE") is not serving; restarting it."
    stop_pidfile kafka "$PIDFILE" 30
  fi
  if port_open "$HOST" "$PORT" || port_open "$HOST" "$CONTROLLER_PORT"; then
    die "port $PORT or $CONTROLLER_PORT on $HOST is already in use by another process."
  fi
  java_bin
  fetch_jars
  mkdir -p "$LOGS"
  render_config
  format_storage
  log "starting Kafka $KAFKA_VERSION (KRaft broker+controller) on $HOST:$PORT ..."
  : >"$LOGS/server.log"
  local t0=$SECONDS heap
  read -r -a heap <<<"${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
  # setsid: own session so the broker survives the caller's shell/job control; stop uses the pid file.
  setsid java "${heap[@]}" -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -Dkafka.logs.dir="$LOGS" "$(jvm_log_opts)" \
    -cp "$LIB/*" kafka.Kafka "$CONF/server.properties" \
    >"$STDOUT_LOG" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  echo "$KAFKA_VERSION" >"$KDIR/running.version"
  until broker_ready; do
    if ! pid_alive "$PIDFILE"; then
      rm -f "$PIDFILE"
      show_stdout_tail
      die "Kafka exited during startup." "$LOGS/server.log"
    fi
    if ((SECONDS - t0 >= TIMEOUT)); then
      show_stdout_tail
      stop_pidfile kafka "$PIDFILE" 30 >&2
      die "Kafka did not become ready on $HOST:$PORT within ${TIMEOUT}s." "$LOGS/server.log"
    fi
    sleep 0.5
  done
  if ! metadata_check; then
    die "Kafka port is open but an aiokafka metadata request failed." "$LOGS/readiness.log"
  fi
  log "ready on $HOST:$PORT after $((SECONDS - t0))s (pid $(cat "$PIDFILE"), logs in $LOGS)."
}

stop() { stop_pidfile kafka "$PIDFILE" 60; }

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  restart) stop; start ;;
  *) echo "usage: $0 start|stop|status|restart" >&2; exit 2 ;;
esac
