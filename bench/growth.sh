#!/usr/bin/env bash
# `just bench growth`: how the cost grows, as a table of req/s and p99:
#
#   against data size    the reader owns 200, 10,000 or 100,000 tasks (three users of one database):
#                        s1_list, s2_get and s4_mixed at 32 connections
#   against connections  s4_mixed on the 200-task reader at 1, 2, 4, 8, 16, 32, 256 and 1,000 connections
#                        (GROWTH_CONNS), with the worker's CPU: the saturation point is the fewest
#                        connections that reach 95% of the best req/s; more only queue (p99 grows)
#
# One worker pinned as in the harness, the bare configuration's settings (the cost of the service
# itself; the configurations' runs give the cost of each setting), a fresh database bench_growth seeded with SQL
# (bench/seed_sql.py). Each point: 2 s of warm-up, then GROWTH_SECONDS (10). The harness's
# scenarios (its Lua, copied to bench/.harness). Report: bench/report-growth.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source bench/common.sh
source bench/configs.sh
DB=${GROWTH_DB:-bench_growth}
PORT=${GROWTH_PORT:-19064}
SECONDS_=${GROWTH_SECONDS:-10}
SIZES=${GROWTH_SIZES:-"200 10000 100000"}
CONNS_=${GROWTH_CONNS:-"1 2 4 8 16 32 256 1000"}
OUT=${OUT:-$ROOT/bench/runs/$(date +%Y%m%d-%H%M%S)-growth}
REPORT=${REPORT_TO:-$ROOT/bench/report-growth.txt}
URL="postgresql+asyncpg://$PGUSER:$PGPASSWORD@$PGHOST:$PGPORT/$DB"
[[ $DB == bench_* ]] || { echo "growth: the database must be named bench_*" >&2; exit 2; }
ulimit -n 65536 2> /dev/null || ulimit -n "$(ulimit -Hn)"
mkdir -p "$OUT"
harness_copy
trap stop_server EXIT

echo "== growth: fresh database $DB, migrate, seed"
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" -c "CREATE DATABASE \"$DB\"" > /dev/null
DATABASE_URL=$URL "$VENV/todo-service" database upgrade --no-prompt > "$OUT/migrate.log" 2>&1
for size in $SIZES; do
  # One reader (and its writer) per size.
  "$VENV/python" bench/seed_sql.py "$URL" "$OUT/size-$size/project" --readers 1 --tasks "$size" --prefix "size$size" \
    | tee -a "$OUT/seed.log"
done
start_server "$PORT" "$OUT/server.log" "$DB"
server_cpu() { cpu_seconds $(pgrep -g "$SERVER_PID" || true); }

# point SIZE SCENARIO CONNS: "req/s p50 p99 cpu% errors" (cpu%: the server's, 100 = one core)
point() {
  local size=$1 scenario=$2 conns=$3 before after figures
  seed_env "$OUT/size-$size"
  wrk_run "$scenario" "$conns" 2 "$PORT" > /dev/null
  before=$(server_cpu)
  figures=$(wrk_run "$scenario" "$conns" "$SECONDS_" "$PORT" | tee "$OUT/size-$size/$scenario-$conns.txt" | wrk_figures)
  after=$(server_cpu)
  psql -X -q -d "$DB" -c "DELETE FROM tasks WHERE title LIKE 'bench task %'" > /dev/null
  read -r rps p50 p99 errors <<< "$figures"
  printf '%s %s %s %.0f%s\n' "$rps" "$p50" "$p99" "$(echo "100 * ($after - $before) / $SECONDS_" | bc -l)" "${errors:+ $errors}"
}

declare -A by_size=() by_conns=()
for size in $SIZES; do
  for scenario in s1_list s2_get s4_mixed; do
    echo "== growth: $size tasks, $scenario"
    by_size[$size.$scenario]=$(point "$size" "$scenario" 32)
  done
done
first_size=${SIZES%% *}
for conns in $CONNS_; do
  echo "== growth: s4_mixed at $conns connections"
  by_conns[$conns]=$(point "$first_size" s4_mixed "$conns")
done
stop_server

best=$(for conns in $CONNS_; do read -r rps _ <<< "${by_conns[$conns]}"; echo "$rps"; done | sort -n | tail -1)
{
  echo "Cost growth: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git log -1 --format='%h %cs'), $(nproc) cores"
  echo "command: just bench growth (GROWTH_SECONDS=$SECONDS_); configuration bare; one $SERVER worker on cpu $SERVER_CPU, wrk on cpu $WRK_CPU"
  echo
  echo "Against data size (the reader's tasks), 32 connections: req/s / p99 ms"
  printf '%-9s' tasks; for scenario in s1_list s2_get s4_mixed; do printf ' %22s' "$scenario"; done; echo
  for size in $SIZES; do
    printf '%-9s' "$size"
    for scenario in s1_list s2_get s4_mixed; do
      read -r rps _ p99 _ errors <<< "${by_size[$size.$scenario]}"
      printf ' %22s' "$rps / $p99${errors:+ (errors)}"
    done
    echo
  done
  echo
  echo "Against connections, s4_mixed on the $first_size-task reader:"
  printf '%-6s %9s %9s %9s %6s\n' conns req/s "p50 ms" "p99 ms" "srv%"
  saturated=
  for conns in $CONNS_; do
    read -r rps p50 p99 cpu errors <<< "${by_conns[$conns]}"
    printf '%-6s %9s %9s %9s %6s%s\n' "$conns" "$rps" "$p50" "$p99" "$cpu" "${errors:+  errors: $errors}"
    if [[ -z $saturated ]] && (( $(echo "$rps >= 0.95 * $best" | bc -l) )); then saturated="$conns connections: $rps req/s at ${cpu}% of a core"; fi
  done
  echo "One worker saturates at ${saturated:-?} (the fewest connections within 95% of the best, $best req/s);"
  echo "beyond it, more connections only wait: p99 grows with them."
} | tee "$OUT/report.txt"
cp "$OUT/report.txt" "$REPORT"
echo "report: $REPORT (and $OUT/report.txt)"
