# Sourced by bench/run.sh, bench/extras.sh and bench/profile.sh: one way to start the service and
# to load it, the same as the shared harness does (uvicorn flags, pinning, environment).
# shellcheck shell=bash

ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
HARNESS=$ROOT/bench/.harness
VENV=$ROOT/.venv/bin
SERVER=${SERVER:-granian}   # what `todo-service run` serves with
SERVER_CPU=${SERVER_CPU:-$(( $(nproc) - 1 ))}   # the harness's default pinning with one worker
WRK_CPU=${WRK_CPU:-0}
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres} PGPASSWORD=${PGPASSWORD:-postgres}
export SECRET_KEY=${BENCH_SECRET_KEY:-bench-only-hs256-secret-0123456789abcdef0123456789}
# The service's settings for a benchmark: production, logs at WARNING (as the harness sets them),
# rate limits off (one client address would be refused), everything else at its default.
export APP_ENV=production LOG_LEVEL=WARNING RATE_LIMIT_ENABLED=false ACCESS_TOKEN_EXPIRE_MINUTES=600

# harness_copy: the shared harness (BENCH_HARNESS, default ../shared/bench) copied to bench/.harness,
# keeping the venv already made there (the limit target's setup is slow); the original is never
# written to. The copy's scenarios spread over many users when a seed directory holds a users.txt
# (bench/seed_sql.py; the production configurations): the harness's common.lua is kept as
# harness_common.lua and loaded by ours (bench/scenarios/spread_common.lua).
harness_copy() {
  local source=${BENCH_HARNESS:-$ROOT/../shared/bench}
  [[ -x "$source/compare.sh" ]] || { echo "bench: no load harness at $source (set BENCH_HARNESS)" >&2; return 2; }
  mkdir -p "$HARNESS"
  tar -C "$source" --exclude=./runs --exclude=./limit/venv --exclude='./peers/*/venv' -cf - . | tar -C "$HARNESS" -xf -
  chmod u+w "$HARNESS/scenarios"
  mv -f "$HARNESS/scenarios/common.lua" "$HARNESS/scenarios/harness_common.lua"
  cp "$ROOT/bench/scenarios/spread_common.lua" "$HARNESS/scenarios/common.lua"
}

# last_harness_run: the newest harness run (bench/runs/<time>-<server>[-<configuration>], with its
# results.jsonl); its project database, bench_project, is the one the harness seeded last.
last_harness_run() {
  find "$ROOT/bench/runs" -mindepth 2 -maxdepth 2 -name results.jsonl -printf '%h\n' 2> /dev/null | sort | tail -1
}

# run_config RUN_DIR: the configuration a harness run measured (bare for runs named before them).
run_config() {
  local name=${1##*/} config
  config=${name#*-*-granian}
  [[ $config == "$name" ]] && config=${name#*-*-uvicorn}
  echo "${config#-}" | sed 's/^$/bare/'
}

# The command that serves the app for SERVER, reading HOST, PORT, WORKERS and UVICORN_ARGS.
server_command() {
  case $SERVER in
    uvicorn) echo "exec '$VENV/uvicorn' --factory todo_service.app:create_app \$UVICORN_ARGS" ;;
    # The production command itself: granian as todo_service/cli.py configures it.
    granian) echo "exec '$VENV/todo-service' run --host \$HOST --port \$PORT --web-concurrency \$WORKERS" ;;
    *) echo "bench: SERVER must be uvicorn or granian" >&2; return 2 ;;
  esac
}

# start_server PORT LOG DATABASE: one worker on SERVER_CPU, in the background; sets SERVER_PID.
start_server() {
  local port=$1 log=$2 database=$3 command
  command=$(server_command)
  HOST=127.0.0.1 PORT=$port WORKERS=1 DATABASE_URL="postgresql+asyncpg://$PGUSER:$PGPASSWORD@$PGHOST:$PGPORT/$database" \
  UVICORN_ARGS="--host 127.0.0.1 --port $port --workers 1 --loop uvloop --http httptools --no-access-log --log-level warning --timeout-keep-alive 30" \
    setsid taskset -c "$SERVER_CPU" bash -c "$command" > "$log" 2>&1 < /dev/null &
  SERVER_PID=$!
  for _ in $(seq 1 150); do
    curl -sf "http://127.0.0.1:$port/api/v1/health" > /dev/null && return 0
    kill -0 "$SERVER_PID" 2> /dev/null || { tail -20 "$log" >&2; return 1; }
    sleep 0.2
  done
  echo "bench: the server on port $port did not answer" >&2
  return 1
}

stop_server() {
  [[ -n ${SERVER_PID:-} ]] || return 0
  kill -TERM -- "-$SERVER_PID" 2> /dev/null || true
  for _ in $(seq 1 40); do kill -0 "$SERVER_PID" 2> /dev/null || break; sleep 0.25; done
  kill -KILL -- "-$SERVER_PID" 2> /dev/null || true
  SERVER_PID=
}

# The worker's process: uvicorn's own pid with one worker; granian's single child.
worker_pid() {
  local child
  child=$(pgrep -P "$SERVER_PID" | head -1 || true)
  if [[ $SERVER == granian ]]; then
    while [[ -n $child ]] && pgrep -P "$child" > /dev/null; do child=$(pgrep -P "$child" | head -1 || true); done
    echo "$child"
  else
    # bash -c exec'ed uvicorn: the setsid'ed process is uvicorn itself, or its only child.
    echo "${child:-$SERVER_PID}"
  fi
}

# seed_env RUN_DIR: the harness's seeded users and task ids, for the lua scenarios.
seed_env() {
  local seed=$1/project
  set -a
  # shellcheck disable=SC1091
  source "$seed/seed.env"
  set +a
  export BENCH_LUA_DIR=$HARNESS/scenarios BENCH_STYLE=contract BENCH_TOKEN_R=$TOKEN_R BENCH_UID_R=$UID_R \
    BENCH_TOKEN_W=$TOKEN_W BENCH_UID_W=$UID_W BENCH_IDS=$seed/ids.txt BENCH_EMAIL=$EMAIL_R BENCH_PASSWORD=$PASSWORD
}

# wrk_run SCENARIO CONNECTIONS SECONDS PORT: wrk's report (with latency percentiles).
wrk_run() {
  taskset -c "$WRK_CPU" wrk -t1 -c"$2" -d"$3"s --latency -s "$HARNESS/scenarios/$1.lua" "http://127.0.0.1:$4"
}

# The figures of a wrk report: "req/s p50 p99" (latencies in ms).
wrk_figures() {
  awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /Requests\/sec/ { rps = $2 }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    /Non-2xx|Socket errors/ { errors = errors " " $0 }
    END { printf "%.1f %.2f %.2f%s\n", rps, p50, p99, errors }'
}
