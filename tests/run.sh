#!/usr/bin/env bash
# Sets up everything the test suite needs on a fresh machine and runs it:
#   1. installs Tansu (a Kafka-protocol broker) unless it is already installed;
#   2. installs the Python packages tests/decode_records.py reads records with
#      (confluent-kafka with its schema registry client, cloudevents, grpcio-tools) unless present;
#   3. checks PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379), starting them if they are installed but down;
#   4. starts Tansu on a free loopback port with sqlite storage in a temporary directory;
#   5. runs the whole suite (unit, integration, fault tests; benches are compiled);
#   6. checks and unit-tests the Prometheus alert rules when promtool is installed
#      (Debian/Ubuntu: apt-get install prometheus);
#   7. installs what the web console's browser test needs (Debian's chromium, Python's
#      playwright); the test says it was skipped when that fails;
#   8. stops the broker whatever the outcome.
# Usage: tests/run.sh [extra cargo test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
export PATH="$CARGO_BIN:$PATH"

log() { printf '==> %s\n' "$*" >&2; }

install_tansu() {
    if command -v tansu >/dev/null 2>&1; then
        log "tansu: $(command -v tansu)"
        return
    fi
    log "installing tansu (first time only; about 10 minutes)"
    cargo install tansu --locked --features dynostore,libsql
}

install_python_packages() {
    if python3 -c 'import confluent_kafka.schema_registry.protobuf, cloudevents.core.bindings.kafka, grpc_tools' 2>/dev/null; then
        return
    fi
    log "installing the Python packages of tests/decode_records.py"
    python3 -m pip install --quiet --disable-pip-version-check \
        'confluent-kafka[protobuf,schemaregistry]>=2.5' 'cloudevents>=2' grpcio-tools
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

ensure_services() {
    if ! port_open 5432; then
        log "PostgreSQL is not answering on 127.0.0.1:5432; trying to start it"
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    fi
    if ! port_open 6379; then
        log "Redis is not answering on 127.0.0.1:6379; trying to start it"
        redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no || true
    fi
    for port in 5432 6379; do
        for _ in $(seq 1 50); do port_open "$port" && break; sleep 0.2; done
        port_open "$port" || { log "nothing answers on 127.0.0.1:$port"; exit 1; }
    done
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_broker() {
    BROKER_DIR="$(mktemp -d -t hookgate-tansu.XXXXXX)"
    BROKER_PORT="$(free_port)"
    local url="tcp://127.0.0.1:$BROKER_PORT"
    (cd "$BROKER_DIR" && exec tansu broker --listener-url "$url" --advertised-listener-url "$url" \
        --storage-engine sqlite://tansu.db >"$BROKER_DIR/tansu.log" 2>&1) &
    BROKER_PID=$!
    for _ in $(seq 1 100); do port_open "$BROKER_PORT" && break; sleep 0.1; done
    port_open "$BROKER_PORT" || { log "tansu did not start"; cat "$BROKER_DIR/tansu.log"; exit 1; }
    tansu topic create webhooks --partitions 3 --broker "$url" >/dev/null
    export HOOKGATE_TEST_KAFKA="127.0.0.1:$BROKER_PORT"
    log "tansu on $HOOKGATE_TEST_KAFKA (pid $BROKER_PID, storage $BROKER_DIR)"
}

stop_broker() {
    if [[ -n "${BROKER_PID:-}" ]]; then
        kill "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || true
    fi
    [[ -n "${BROKER_DIR:-}" ]] && rm -rf "$BROKER_DIR"
}

test_alert_rules() {
    if ! command -v promtool >/dev/null 2>&1; then
        log "promtool not installed: alert rules not tested (apt-get install prometheus)"
        return
    fi
    log "testing the alert rules (deploy/prometheus)"
    promtool check rules deploy/prometheus/alerts.yml
    promtool test rules deploy/prometheus/alerts.test.yml
}

# The console test drives Debian's chromium (browser builds cannot be downloaded here).
install_browser() {
    if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
        log "installing chromium for the console test"
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 \
            || log "chromium could not be installed: the console test will be skipped"
    fi
    if ! python3 -c 'import playwright' >/dev/null 2>&1; then
        log "installing Python playwright for the console test"
        python3 -m pip install -q playwright >/dev/null 2>&1 \
            || log "playwright could not be installed: the console test will be skipped"
    fi
}

install_tansu
install_browser
install_python_packages
ensure_services
test_alert_rules
trap stop_broker EXIT INT TERM
start_broker

log "compiling the benchmarks (debug profile, shared with the tests; run them with cargo bench)"
cargo test --benches --no-run --quiet
log "running the test suite"
cargo test --no-fail-fast "$@" -- --test-threads=4
