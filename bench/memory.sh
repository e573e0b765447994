#!/usr/bin/env bash
# `just bench memory`: a worker's resident memory during the mixed load with live-event streams open.
#
# The production configuration (bench/configs.sh: rate limits in memory, JSON logs at INFO, metrics,
# 10% of traces to a real OTLP receiver), one worker pinned as in the harness, on a fresh database
# bench_memory seeded with SQL (SPREAD_READERS readers with 200 tasks, as many writers). MEMORY_STREAMS
# (200) SSE streams stay open (bench/sse_hold.py) while wrk runs the harness's s4_mixed, spread over
# every user and address, at 32 connections for MEMORY_SECONDS (1800: the issue's 30 minutes). The
# worker's RSS is read after a warm-up (MEMORY_WARMUP, 30 s), then every MEMORY_SAMPLE seconds (30), and at the end.
# Targets: under 150 MB, and flat: the second half of the run adds less than 5 MB.
# The server runs from an environment without the dev dependencies, as the Containerfile builds it
# (MEMORY_VENV, synced here): pydantic and attrs come only with the dev tools, yet Advanced Alchemy
# imports them when they are there, 8 MB of a worker that production does not hold.
# Report: bench/report-memory.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source bench/common.sh
source bench/configs.sh
DB=${MEMORY_DB:-bench_memory}
PORT=${MEMORY_PORT:-19063}
SECONDS_=${MEMORY_SECONDS:-1800}
SAMPLE=${MEMORY_SAMPLE:-30}
WARMUP_=${MEMORY_WARMUP:-30}
STREAMS=${MEMORY_STREAMS:-200}
SERVE_VENV=${MEMORY_VENV:-${TMPDIR:-/tmp}/todo-service-production-venv}
OUT=${OUT:-$ROOT/bench/runs/$(date +%Y%m%d-%H%M%S)-memory}
REPORT=${REPORT_TO:-$ROOT/bench/report-memory.txt}
URL="postgresql+asyncpg://$PGUSER:$PGPASSWORD@$PGHOST:$PGPORT/$DB"
mkdir -p "$OUT/project"
[[ $DB == bench_* ]] || { echo "memory: the database must be named bench_*" >&2; exit 2; }
harness_copy
HOLDER=
cleanup() {
  [[ -n $HOLDER ]] && { kill -TERM "$HOLDER" 2> /dev/null || true; wait "$HOLDER" 2> /dev/null || true; }
  stop_server
  config_stop
}
trap cleanup EXIT
config_apply production "$OUT/services"

echo "== memory: fresh database $DB, migrate, seed"
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" -c "CREATE DATABASE \"$DB\"" > /dev/null
DATABASE_URL=$URL "$VENV/todo-service" database upgrade --no-prompt > "$OUT/migrate.log" 2>&1
"$VENV/python" bench/seed_sql.py "$URL" "$OUT/project" --readers "$SPREAD_READERS" --tasks 200 | tee "$OUT/seed.log"
seed_env "$OUT"

rss_mb() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
echo "== memory: the server's environment, without the dev dependencies: $SERVE_VENV"
UV_PROJECT_ENVIRONMENT=$SERVE_VENV uv sync --frozen --no-dev --quiet
VENV=$SERVE_VENV/bin start_server "$PORT" "$OUT/server.log" "$DB"
worker=$(worker_pid)
sleep 2
rss_started=$(rss_mb "$worker")   # imports, create_app, the pool's first connections
"$VENV/python" bench/sse_hold.py "http://127.0.0.1:$PORT" "$OUT/project/users.txt" "$STREAMS" "$OUT/streams.txt" \
  > "$OUT/sse_hold.log" 2>&1 &
HOLDER=$!
sleep 5
rss_streams=$(rss_mb "$worker")
echo "== memory: started at $rss_started MB, $rss_streams MB with $STREAMS streams; warm-up ${WARMUP_}s"
wrk_run s4_mixed 32 "$WARMUP_" "$PORT" > "$OUT/warm-up.txt"
rss_start=$(rss_mb "$worker")
echo "== memory: s4_mixed for ${SECONDS_}s, RSS every ${SAMPLE}s (start $rss_start MB)"
wrk_run s4_mixed 32 "$SECONDS_" "$PORT" > "$OUT/memory-run.txt" &
load=$!
samples=("$rss_start")
elapsed=0
while kill -0 "$load" 2> /dev/null; do
  sleep "$SAMPLE"
  elapsed=$((elapsed + SAMPLE))
  if kill -0 "$load" 2> /dev/null; then
    samples+=("$(rss_mb "$worker")")
    echo "   ${elapsed}s: ${samples[-1]} MB"
  fi
done
wait "$load"
rss_end=$(rss_mb "$worker")
samples+=("$rss_end")
streams=$(cat "$OUT/streams.txt" 2> /dev/null || echo "no totals")
read -r rps _ p99 errors <<< "$(wrk_figures < "$OUT/memory-run.txt")"
half=${samples[$(( ${#samples[@]} / 2 ))]}
peak=$(printf '%s\n' "${samples[@]}" | sort -n | tail -1)
# Keep the end of the request log only: at INFO it holds a line per request.
tail -1000 "$OUT/server.log" > "$OUT/server-tail.log" && rm -f "$OUT/server.log"
{
  echo "Memory: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git log -1 --format='%h %cs'), $(nproc) cores"
  echo "command: just bench memory MEMORY_SECONDS=$SECONDS_ (MEMORY_STREAMS=$STREAMS, SPREAD_READERS=$SPREAD_READERS)"
  echo "configuration: production ($(config_settings)); one $SERVER worker on cpu $SERVER_CPU, no dev dependencies"
  printf 's4_mixed for %ss, 32 connections: %s req/s, p99 %s ms%s; streams: %s\n' "$SECONDS_" "$rps" "$p99" \
    "${errors:+, errors:$errors}" "$streams"
  echo "OTLP receiver: $(cat "$OUT/services/otlp-totals.txt" 2> /dev/null || echo 'no totals')"
  printf 'RSS: started %s MB, streams open %s MB; after the warm-up %s MB, half-way %s MB, end %s MB, peak %s MB\n' \
    "$rss_started" "$rss_streams" "$rss_start" "$half" "$rss_end" "$peak"
  printf 'targets: peak < 150 MB: %s; flat (the second half adds < 5 MB: %+.1f MB): %s\n' \
    "$( (( $(echo "$peak < 150" | bc -l) )) && echo met || echo 'NOT met')" "$(echo "$rss_end - $half" | bc -l)" \
    "$( (( $(echo "$rss_end - $half < 5" | bc -l) )) && echo met || echo 'NOT met')"
  echo "RSS every ${SAMPLE} s (MB): ${samples[*]}"
} | tee "$OUT/report.txt"
cp "$OUT/report.txt" "$REPORT"
echo "report: $REPORT (and $OUT/report.txt)"
