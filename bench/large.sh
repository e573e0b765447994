#!/usr/bin/env bash
# `just bench large`: the hot routes on data that has grown (issue 16), route by route, beside the
# same routes of a user with 200 tasks in the same database.
#
# A fresh database bench_large, migrated, then seeded with SQL (bench/seed_sql.py): one user with
# LARGE_TASKS (100,000) tasks, LARGE_READERS (1,000) users with 100 each (and as many writers), and a
# reference user with 200 tasks. One worker serves it (pinned, the bare configuration's settings: the
# data's cost alone), wrk loads each route at 32 connections for LARGE_SECONDS (10) after 2 s of
# warm-up, LARGE_ROUNDS (1) times:
#
#   list_first     GET the first page (20) with its total
#   list_deep      GET page 500 (the reference user: its last page, 10)
#   list_filtered  GET ?completed=false, first page
#   search         GET ?search=quarterly (1% of the titles hold the word), first page
#   get            GET one task
#   changes        GET /changes from the feed's position an hour ago (100 changes an hour), limit 100
#   create         POST a task (deleted again afterwards)
#   scroll_*       the four listings above read by cursor instead (keyset: no total, no OFFSET):
#                  scroll_first, scroll_deep (the cursor after the tasks before page 500), scroll_filtered,
#                  scroll_search
#
# and the 1,000 users' first pages and gets, every request another user. Target: each route's p99
# within 2x of the reference user's. Then what the exact `total` costs: count(*) of the big user's
# live tasks, timed in PostgreSQL, beside the page itself. Report: bench/report-large.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source bench/common.sh
DB=${LARGE_DB:-bench_large}
PORT=${LARGE_PORT:-19062}
SECONDS_=${LARGE_SECONDS:-10}
ROUNDS_=${LARGE_ROUNDS:-1}
BIG=${LARGE_TASKS:-100000}
OUT=${OUT:-$ROOT/bench/runs/$(date +%Y%m%d-%H%M%S)-large}
REPORT=${REPORT_TO:-$ROOT/bench/report-large.txt}
ROUTES="list_first list_deep list_filtered search scroll_first scroll_deep scroll_filtered scroll_search get changes create"
mkdir -p "$OUT"
[[ $DB == bench_* ]] || { echo "large: the database must be named bench_*" >&2; exit 2; }
URL="postgresql+asyncpg://$PGUSER:$PGPASSWORD@$PGHOST:$PGPORT/$DB"

echo "== large: fresh database $DB, migrate, seed"
psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" -c "CREATE DATABASE \"$DB\"" > /dev/null
DATABASE_URL=$URL "$VENV/todo-service" database upgrade --no-prompt > "$OUT/migrate.log" 2>&1
"$VENV/python" bench/seed_sql.py "$URL" "$OUT/big" --readers "${LARGE_READERS:-1000}" --tasks 100 --big-user-tasks "$BIG" | tee "$OUT/seed.log"
"$VENV/python" bench/seed_sql.py "$URL" "$OUT/ref" --readers 0 --big-user-tasks 200 --prefix ref | tee -a "$OUT/seed.log"

trap stop_server EXIT
start_server "$PORT" "$OUT/server.log" "$DB"

# large_run SET ROUTE [VAR=VALUE...]: "req/s p50 p99 errors" of the route (median req/s round's figures).
large_run() {
  local set=$1 route=$2 round best="" figures
  shift 2
  env LARGE_ROUTE="$route" "$@" taskset -c "$WRK_CPU" wrk -t1 -c32 -d2s --latency -s bench/scenarios/large.lua "http://127.0.0.1:$PORT" > /dev/null
  for round in $(seq 1 "$ROUNDS_"); do
    env LARGE_ROUTE="$route" "$@" taskset -c "$WRK_CPU" wrk -t1 -c32 -d"${SECONDS_}s" --latency -s bench/scenarios/large.lua \
      "http://127.0.0.1:$PORT" > "$OUT/$set-$route-$round.txt"
    figures=$(wrk_figures < "$OUT/$set-$route-$round.txt")
    best+="$figures"$'\n'
  done
  if [[ $route == create ]]; then
    psql -X -q -d "$DB" -c "DELETE FROM tasks WHERE title LIKE 'bench task %'" -c "VACUUM (ANALYZE) tasks" > /dev/null
  fi
  sort -n <<< "${best%$'\n'}" | sed -n "$(( (ROUNDS_ + 1) / 2 ))p"
}

# deep_cursor UID TOKEN SKIP: the listing's cursor after its first SKIP tasks, walked there 100 at a time.
deep_cursor() {
  "$VENV/python" - "http://127.0.0.1:$PORT/api/v1/users/$1/tasks" "$2" "$3" << 'EOF'
import json, sys, urllib.request
url, token, left = sys.argv[1], sys.argv[2], int(sys.argv[3])
cursor = "start"
while left > 0:
    step = min(100, left)
    request = urllib.request.Request(f"{url}?limit={step}&cursor={cursor}", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        cursor = json.load(response)["next_cursor"]
    left -= step
print(cursor)
EOF
}

declare -A result=()
for set in ref big; do
  # shellcheck disable=SC1090
  source "$OUT/$set/big.env"
  deep=$([[ $set == ref ]] && echo 10 || echo 500)
  scroll_cursor=$(deep_cursor "$BIG_UID" "$BIG_TOKEN" $(( (deep - 1) * 20 )))
  for route in $ROUTES; do
    echo "== large: $set $route"
    result[$set.$route]=$(large_run "$set" "$route" LARGE_UID="$BIG_UID" LARGE_TOKEN="$BIG_TOKEN" LARGE_TASK="$BIG_TASK" \
      LARGE_CURSOR="$BIG_CURSOR" LARGE_WORD="$BIG_WORD" LARGE_DEEP_PAGE="$deep" LARGE_SCROLL_CURSOR="$scroll_cursor")
  done
done
for route in list_first get; do
  echo "== large: ${LARGE_READERS:-1000} users, $route"
  result[many.$route]=$(large_run many "$route" LARGE_USERS="$OUT/big/users.txt")
done
stop_server

# What the exact total costs, in PostgreSQL alone: the count, and the page at offset 9,980, timed.
source "$OUT/big/big.env"
sql_ms() {  # the median of 5 timings of a statement, in ms
  local i
  for i in 1 2 3 4 5; do
    psql -X -q -d "$DB" -c '\timing on' -c "$1" | awk '/^Time:/ { print $2 }'
  done | sort -n | sed -n 3p
}
count_ms=$(sql_ms "SELECT count(*) FROM tasks WHERE user_id = '$BIG_UID' AND deleted_at IS NULL")
deep_ms=$(sql_ms "SELECT id FROM tasks WHERE user_id = '$BIG_UID' AND deleted_at IS NULL ORDER BY created_at DESC, id DESC OFFSET 9980 LIMIT 20")
first_ms=$(sql_ms "SELECT id FROM tasks WHERE user_id = '$BIG_UID' AND deleted_at IS NULL ORDER BY created_at DESC, id DESC LIMIT 20")
# The same tasks as page 500 by keyset: after the 9,980th task's (created_at, id), as the cursor holds them.
IFS='|' read -r at id <<< "$(psql -X -At -F '|' -d "$DB" -c "SELECT created_at, id FROM tasks WHERE user_id = '$BIG_UID' AND deleted_at IS NULL ORDER BY created_at DESC, id DESC OFFSET 9979 LIMIT 1")"
keyset_ms=$(sql_ms "SELECT id FROM tasks WHERE user_id = '$BIG_UID' AND deleted_at IS NULL AND (created_at, id) < (TIMESTAMPTZ '$at', '$id') ORDER BY created_at DESC, id DESC LIMIT 20")

{
  echo "Large data: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git log -1 --format='%h %cs'), $(nproc) cores"
  echo "command: just bench large (LARGE_SECONDS=$SECONDS_ LARGE_ROUNDS=$ROUNDS_); one $SERVER worker on cpu $SERVER_CPU, wrk on cpu $WRK_CPU, 32 connections"
  echo "data: $(cat "$OUT/seed.log" | tr '\n' ';' | sed 's/;$//')"
  echo "settings: bare (rate limits off, logs at WARNING): the data's cost alone"
  echo
  printf '%-16s %12s %12s %12s %12s %8s  %s\n' route "200: req/s" "p99 ms" "$BIG: req/s" "p99 ms" "p99 x" "target <= 2x"
  for route in $ROUTES; do
    read -r r_rps _ r_p99 r_err <<< "${result[ref.$route]}"
    read -r b_rps _ b_p99 b_err <<< "${result[big.$route]}"
    ratio=$(echo "$b_p99 / $r_p99" | bc -l)
    verdict=$( (( $(echo "$ratio <= 2" | bc -l) )) && echo met || echo "NOT met")
    printf '%-16s %12s %12s %12s %12s %8.2f  %s%s\n' "$route" "$r_rps" "$r_p99" "$b_rps" "$b_p99" "$ratio" "$verdict" \
      "${r_err:+ (200: errors$r_err)}${b_err:+ ($BIG: errors$b_err)}"
  done
  echo "(list_deep: page 500 of the $BIG; for the 200-task user its last page, 10; scroll_deep: the same tasks by cursor)"
  for route in list_first get; do
    read -r m_rps _ m_p99 m_err <<< "${result[many.$route]}"
    read -r _ _ r_p99 _ <<< "${result[ref.$route]}"
    printf '%s users x 100 tasks, %-10s %s req/s, p99 %s ms (%.2fx the 200-task user)%s\n' "${LARGE_READERS:-1000}" "$route:" "$m_rps" "$m_p99" \
      "$(echo "$m_p99 / $r_p99" | bc -l)" "${m_err:+; errors$m_err}"
  done
  echo
  echo "The exact total (PostgreSQL alone, median of 5, the $BIG-task user): count(*) ${count_ms} ms;"
  echo "  the first page's rows ${first_ms} ms; page 500's rows (OFFSET 9980) ${deep_ms} ms, by keyset ${keyset_ms} ms."
} | tee "$OUT/report.txt"
cp "$OUT/report.txt" "$REPORT"
echo "report: $REPORT (and $OUT/report.txt)"
