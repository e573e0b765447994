#!/usr/bin/env bash
# What the shared harness does not measure, on the database it just seeded (bench/run.sh calls this):
#
#   argon2    verifications/s that argon2id (the service's default cost) allows on the server's core
#   login     logins/s of the service on that core (4 connections, 20 s), and their ratio to the above
#   reads     s2_get alone, then s2_get while logins run beside it (4 connections): the event loop
#             must not stall on hashing, so reads keep their latency up to the CPU the hashing takes
#   polling   "anything new?" the way sync clients ask it, beside s2_get in the same server, rounds
#             alternated: the change feed with an up-to-date cursor (empty answer) and a task read with
#             If-None-Match (304); each should serve at least as many requests/s as s2_get
#   memory    the worker's resident memory during a long s4_mixed run (EXTRAS_MEMORY_SECONDS, else
#             MEMORY_SECONDS, else 600):
#             after warm-up, then every 30 s, and at the end
#
# usage: bench/extras.sh RUN_DIR      (prints its report; bench/run.sh appends it to the table)
set -euo pipefail
RUN=${1:?usage: extras.sh RUN_DIR}
source "$(dirname "$0")/common.sh"
PORT=${EXTRAS_PORT:-19060}
SECONDS_EACH=${EXTRAS_SECONDS:-10}
MEMORY_SECONDS=${EXTRAS_MEMORY_SECONDS:-${MEMORY_SECONDS:-600}}
OUT=$RUN/extras
mkdir -p "$OUT"
seed_env "$RUN"
trap stop_server EXIT

rss_mb() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

echo "== extras ($SERVER, one worker on cpu $SERVER_CPU, wrk on cpu $WRK_CPU)"
argon2=$(taskset -c "$SERVER_CPU" "$VENV/python" - "$SECONDS_EACH" <<'PY'
import sys, time
from argon2 import PasswordHasher, Type
from todo_service.core.settings import Settings
s = Settings()  # the service's default cost
hasher = PasswordHasher(time_cost=s.argon2_time_cost, memory_cost=s.argon2_memory_cost,
                        parallelism=s.argon2_parallelism, type=Type.ID)
encoded = hasher.hash("Bench-Passw0rd-42!")
hasher.verify(encoded, "Bench-Passw0rd-42!")
started, count = time.perf_counter(), 0
while time.perf_counter() - started < float(sys.argv[1]):
    hasher.verify(encoded, "Bench-Passw0rd-42!")
    count += 1
print(f"{count / (time.perf_counter() - started):.2f} t={s.argon2_time_cost},m={s.argon2_memory_cost}KiB,p={s.argon2_parallelism}")
PY
)

start_server "$PORT" "$OUT/server.log" "${PROJECT_DB:-bench_project}"
wrk_run s2_get 32 3 "$PORT" > /dev/null  # warm-up: pool, prepared statements
reads=$(wrk_run s2_get 32 "$SECONDS_EACH" "$PORT" | tee "$OUT/reads.txt" | wrk_figures)
wrk_run login 4 3 "$PORT" > /dev/null
# 20 s at least: at ~6 logins/s a short run is mostly its first and last request.
login=$(wrk_run login 4 "$(( SECONDS_EACH > 20 ? SECONDS_EACH : 20 ))" "$PORT" | tee "$OUT/login.txt" | wrk_figures)
sleep 2  # the hashes wrk left behind finish
wrk_run login 4 $((SECONDS_EACH + 2)) "$PORT" > "$OUT/login-beside-reads.txt" &
logins=$!
sleep 1
mixed=$(wrk_run s2_get 32 "$SECONDS_EACH" "$PORT" | tee "$OUT/reads-beside-logins.txt" | wrk_figures)
wait "$logins"  # not a bare wait: the server runs in the background too
beside=$(wrk_figures < "$OUT/login-beside-reads.txt")
sleep 2

# Polling: the reader's up-to-date cursor and one task's ETag, then s2_get and the two polls in turn.
api="http://127.0.0.1:$PORT/api/v1/users/$UID_R/tasks"
cursor=""
while :; do
  page=$(curl -sf "$api/changes?limit=1000${cursor:+&cursor=$cursor}" -H "Authorization: Bearer $TOKEN_R")
  cursor=$(jq -r .next_cursor <<< "$page")
  [[ $(jq -r .has_more <<< "$page") == true ]] || break
done
first_id=$(head -1 "$BENCH_IDS")
etag=$(curl -sf "$api/$first_id" -H "Authorization: Bearer $TOKEN_R" | jq -r .etag)
status=$(curl -s -o /dev/null -w '%{http_code}' "$api/$first_id" -H "Authorization: Bearer $TOKEN_R" -H "If-None-Match: $etag")
[[ $status == 304 ]] || { echo "extras: If-None-Match answered $status, not 304" >&2; exit 1; }
export BENCH_CURSOR=$cursor BENCH_TASK_PATH="/api/v1/users/$UID_R/tasks/$first_id" BENCH_ETAG=$etag
wrk_own() { taskset -c "$WRK_CPU" wrk -t1 -c"$2" -d"$3"s --latency -s "bench/scenarios/$1.lua" "http://127.0.0.1:$4"; }
declare -A poll_rps=()
for round in 1 2 3; do
  for scenario in s2_get s5_poll_feed s5_poll_etag; do
    if [[ $scenario == s2_get ]]; then run=(wrk_run); else run=(wrk_own); fi
    read -r rps _ <<< "$("${run[@]}" "$scenario" 32 "$SECONDS_EACH" "$PORT" | tee "$OUT/$scenario-$round.txt" | wrk_figures)"
    poll_rps[$scenario]+="$rps "
  done
done
median() { printf '%s\n' $1 | sort -n | sed -n 2p; }
poll_get=$(median "${poll_rps[s2_get]}")
poll_feed=$(median "${poll_rps[s5_poll_feed]}")
poll_etag=$(median "${poll_rps[s5_poll_etag]}")
poll_figures() { wrk_figures < "$OUT/$1-2.txt"; }
sleep 2

worker=$(worker_pid)
wrk_run s4_mixed 32 10 "$PORT" > /dev/null  # warm-up
rss_start=$(rss_mb "$worker")
wrk_run s4_mixed 32 "$MEMORY_SECONDS" "$PORT" > "$OUT/memory-run.txt" &
load=$!
samples=("$rss_start")
while kill -0 "$load" 2> /dev/null; do
  sleep 30
  kill -0 "$load" 2> /dev/null && samples+=("$(rss_mb "$worker")")
done
wait "$load"
rss_end=$(rss_mb "$worker")
memory_run=$(wrk_figures < "$OUT/memory-run.txt")

read -r argon2 argon2_cost <<< "$argon2"
read -r login_rps login_p50 login_p99 login_errors <<< "$login"
read -r reads_rps reads_p50 reads_p99 _ <<< "$reads"
read -r mixed_rps mixed_p50 mixed_p99 mixed_errors <<< "$mixed"
read -r beside_rps _ <<< "$beside"
read -r memory_rps _ memory_p99 memory_errors <<< "$memory_run"
peak=$(printf '%s\n' "${samples[@]}" "$rss_end" | sort -n | tail -1)
{
  printf 'argon2id verifications/s on one core (%s): %s\n' "$argon2_cost" "$argon2"
  printf 'login (4 conns): %s req/s = %.2f of argon2 alone; p50 %s ms, p99 %s ms%s\n' \
    "$login_rps" "$(echo "$login_rps / $argon2" | bc -l)" "$login_p50" "$login_p99" "${login_errors:+; errors:$login_errors}"
  printf 's2_get alone (32 conns): %s req/s, p50 %s ms, p99 %s ms\n' "$reads_rps" "$reads_p50" "$reads_p99"
  printf 's2_get beside logins:    %s req/s, p50 %s ms, p99 %s ms (logins meanwhile: %s req/s)%s\n' \
    "$mixed_rps" "$mixed_p50" "$mixed_p99" "$beside_rps" "${mixed_errors:+; errors:$mixed_errors}"
  printf 'polling (32 conns, median of 3 alternated rounds): s2_get %s req/s; change feed, up-to-date cursor %s req/s (%.2fx s2_get); If-None-Match 304 %s req/s (%.2fx s2_get)\n' \
    "$poll_get" "$poll_feed" "$(echo "$poll_feed / $poll_get" | bc -l)" "$poll_etag" "$(echo "$poll_etag / $poll_get" | bc -l)"
  printf '  round 2 figures (req/s p50 p99): s2_get %s; feed %s; etag %s\n' \
    "$(poll_figures s2_get)" "$(poll_figures s5_poll_feed)" "$(poll_figures s5_poll_etag)"
  printf 'memory, s4_mixed for %ss (%s req/s, p99 %s ms%s): RSS start %s MB, end %s MB, peak %s MB\n' \
    "$MEMORY_SECONDS" "$memory_rps" "$memory_p99" "${memory_errors:+, errors:$memory_errors}" "$rss_start" "$rss_end" "$peak"
  printf '  RSS every 30 s (MB): %s\n' "${samples[*]} $rss_end"
} | tee "$OUT/report.txt"
