#!/usr/bin/env bash
# Redis round trips per request, for production-redis (bench/run.sh calls it after the harness run):
# serves the project again on the run's database with the same settings, loads it with the spread
# s4_mixed for REDIS_CHECK_SECONDS (5), and divides what Redis counted by the requests wrk completed:
# its reads (total_reads_processed: one per batch a client sends, so a pipeline is one) and its
# commands (INFO commandstats, by command). The target of issue 16: one round trip per request at most.
#
# usage: bench/redis_check.sh RUN_DIR     (REDIS_PORT and the configuration's settings exported)
set -euo pipefail
RUN=${1:?usage: redis_check.sh RUN_DIR}
source "$(dirname "$0")/common.sh"
: "${REDIS_PORT:?the production-redis configuration exports REDIS_PORT}"
PORT=${REDIS_CHECK_PORT:-19061}
SECONDS_=${REDIS_CHECK_SECONDS:-5}
export RATE_LIMIT_ENABLED=true LOG_LEVEL=${LOG_LEVEL:-INFO}
seed_env "$RUN"
trap stop_server EXIT
start_server "$PORT" "$RUN/services/redis-check-server.log" "${PROJECT_DB:-bench_project}"
wrk_run s4_mixed 32 2 "$PORT" > /dev/null  # warm-up
commands() { redis-cli -p "$REDIS_PORT" INFO commandstats | tr -d '\r' | grep '^cmdstat_' | grep -v '^cmdstat_info:' | sed 's/^cmdstat_//; s/:calls=/ /; s/,.*//'; }
# Reads Redis processed (one per batch of commands a client sent): its round trips, give or take.
reads() { redis-cli -p "$REDIS_PORT" INFO stats | tr -d '\r' | awk -F: '$1 == "total_reads_processed" { print $2 }'; }
before=$(commands)
reads_before=$(reads)
requests=$(wrk_run s4_mixed 32 "$SECONDS_" "$PORT" | awk '/requests in/ { print $1 }')
reads_after=$(reads)
after=$(commands)
printf 'Redis round trips per request (spread s4_mixed, %d requests): %.2f (total_reads_processed, less the INFO call itself)\n' \
  "$requests" "$(echo "($reads_after - $reads_before - 1) / $requests" | bc -l)"
join -a 2 <(sort <<< "$before") <(sort <<< "$after") | awk -v n="$requests" '
  NF == 3 { d = $3 - $2 } NF == 2 { d = $2 }
  { total += d; if (d > 0) detail = detail sprintf(" %s %d", $1, d) }
  END { printf "Redis per request (spread s4_mixed, %d requests): %.2f commands (%s); target: one round trip at most\n", n, total / n, substr(detail, 2) }'
