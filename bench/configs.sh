# Sourced (after common.sh): the configurations `just bench` measures by name, and the services they
# run beside the server (an OTLP receiver, a Redis). See docs/performance.md.
#
#   bare              what ran before issue 16: rate limits off, logs at WARNING, metrics on, no tracing
#   production        rate limits in memory at their defaults (1200/min per IP, 600/min per user, the
#                     load spread over enough users and addresses that none is limited), request
#                     logging at INFO as JSON, metrics, tracing sampled at 10% to a real OTLP receiver
#   production-redis  production with the limits in Redis (a redis-server on a free port)
#   workers-2         production with 2 workers, both cores, nothing pinned
#
# config_apply NAME DIR exports the server's settings for NAME (the harness passes its environment
# on to PROJECT_START) and starts its services, writing their logs in DIR; config_stop stops them.
# shellcheck shell=bash

CONFIGS="bare production production-redis workers-2"
SPREAD_READERS=${SPREAD_READERS:-1000}   # users (and as many writers) the production load is spread over
CONFIG_PIDS=()

free_port() { "$VENV/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# The targets of issue 16 for NAME: "rps_ratio p99_ratio" (p99 "-": none), the ratios to the ceiling.
config_targets() {
  case $1 in
    bare) echo "0.8 1.5" ;;
    production) echo "0.7 2.0" ;;
    production-redis) echo "0.6 -" ;;
    workers-2) echo "- -" ;;   # >= 1.6x production's req/s: bench/configs_report.py compares the two runs
  esac
}

config_apply() {
  local name=$1 dir=$2 port
  mkdir -p "$dir"
  case " $CONFIGS " in *" $name "*) ;; *) echo "bench: unknown configuration $name (one of: $CONFIGS)" >&2; return 2 ;; esac
  export CONFIG=$name
  [[ $name == bare ]] && return 0
  # production and the ones built on it
  export RATE_LIMIT_ENABLED=true RATE_LIMIT_PER_IP=${RATE_LIMIT_PER_IP:-1200/minute}
  export RATE_LIMIT_PER_USER=${RATE_LIMIT_PER_USER:-600/minute} TRUSTED_PROXIES=127.0.0.1
  export PROJECT_LOG_LEVEL=INFO LOG_LEVEL=INFO LOG_FORMAT=json METRICS_ENABLED=true
  export OTEL_TRACES_SAMPLER=parentbased_traceidratio OTEL_TRACES_SAMPLER_ARG=0.1
  # The harness's login scenario comes from one address: the login rule (10/minute per IP) refuses it.
  export LOGIN=${LOGIN:-0}
  # Creates go to the writers (the harness's and the spread ones): delete them between runs.
  export PROJECT_RESET_SQL="DELETE FROM tasks WHERE user_id = :'uid' OR title LIKE 'bench task %';"
  "$VENV/python" -u bench/otlp_sink.py "$dir/otlp-totals.txt" > "$dir/otlp-endpoint.txt" 2> "$dir/otlp.log" &
  CONFIG_PIDS+=($!)
  for _ in $(seq 1 600); do  # its imports (grpc, protobuf) take seconds on a busy machine
    [[ -s $dir/otlp-endpoint.txt ]] || ! kill -0 "${CONFIG_PIDS[-1]}" 2> /dev/null && break
    sleep 0.1
  done
  [[ -s $dir/otlp-endpoint.txt ]] || { cat "$dir/otlp.log" >&2; echo "bench: the OTLP receiver did not start" >&2; return 1; }
  OTEL_EXPORTER_OTLP_ENDPOINT=$(head -1 "$dir/otlp-endpoint.txt")
  export OTEL_EXPORTER_OTLP_ENDPOINT OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf
  if [[ $name == production-redis ]]; then
    command -v redis-server > /dev/null || { echo "bench: redis-server is missing (apt-get install -y redis-server)" >&2; return 2; }
    port=$(free_port)
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
      > "$dir/redis.log" 2>&1 &
    CONFIG_PIDS+=($!)
    REDIS_PID=$!
    for _ in $(seq 1 50); do redis-cli -p "$port" ping > /dev/null 2>&1 && break; sleep 0.1; done
    export REDIS_URL=redis://127.0.0.1:$port/0 REDIS_PORT=$port REDIS_PID
    # Redis takes a share of a core the harness would count as "other load": let the run stand.
    export MAX_OTHERS_PCT=${MAX_OTHERS_PCT:-60}
  fi
  if [[ $name == workers-2 ]]; then
    export WORKERS=2 WRK_CPUS= SERVER_CPUS=
    PROMETHEUS_MULTIPROC_DIR=$dir/prometheus
    rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
    export PROMETHEUS_MULTIPROC_DIR
  fi
}

# The settings a configuration changes, as the server sees them (for the report).
config_settings() {
  local name
  for name in WORKERS RATE_LIMIT_ENABLED RATE_LIMIT_PER_IP RATE_LIMIT_PER_USER TRUSTED_PROXIES REDIS_URL LOG_LEVEL \
    LOG_FORMAT METRICS_ENABLED OTEL_TRACES_SAMPLER OTEL_TRACES_SAMPLER_ARG OTEL_EXPORTER_OTLP_ENDPOINT; do
    [[ -n ${!name:-} ]] && printf '%s=%s ' "$name" "${!name}"
  done
  [[ $CONFIG == bare ]] || printf 'load spread over %s users and addresses' "$SPREAD_READERS"
}

config_stop() {
  local pid
  for pid in "${CONFIG_PIDS[@]}"; do
    kill -TERM "$pid" 2> /dev/null || continue
    for _ in $(seq 1 20); do kill -0 "$pid" 2> /dev/null || break; sleep 0.25; done
    kill -KILL "$pid" 2> /dev/null || true
  done
  CONFIG_PIDS=()
}

# The seeding of the spread users, appended to PROJECT_PREPARE (after the migration): SEED_DIR is the
# harness's seed directory of the project (where its ids.txt goes, and the Lua looks for users.txt).
spread_prepare() {
  echo "'$VENV/python' '$ROOT/bench/seed_sql.py' \"\$DATABASE_URL\" '$1' --readers $SPREAD_READERS --tasks ${SEED_TASKS:-200}"
}

# CPU seconds (user + system) a process has used so far: for Redis' and PostgreSQL's shares.
cpu_seconds() {
  local total=0 pid
  for pid in "$@"; do
    [[ -r /proc/$pid/stat ]] || continue
    total=$(awk -v t="$total" -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print t + ($12 + $13) / hz }' "/proc/$pid/stat")
  done
  echo "$total"
}
