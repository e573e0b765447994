#!/usr/bin/env bash
# `just bench-servers`: uvicorn (uvloop, httptools) against granian for this app, on the last
# benchmark run's data: one worker on the server core, the same wrk scenarios, servers alternated
# round by round (ROUNDS, default 3) so that drift hits both alike; prints medians.
#
#   just bench-servers          # after `just bench` (it needs the seeded bench_project database)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source bench/common.sh
RUN=${RUN:-$(last_harness_run)}
[[ -n $RUN && -f $RUN/project/seed.env ]] || { echo "servers: no seeded run in bench/runs (run just bench first)" >&2; exit 2; }
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8}
SCENARIOS=${SCENARIOS:-"s1_list s2_get s3_create s4_mixed"}
PORT=${PORT:-19070}
OUT=$RUN/servers-$(date +%H%M%S)
mkdir -p "$OUT"
seed_env "$RUN"
trap stop_server EXIT

for round in $(seq 1 "$ROUNDS"); do
  for SERVER in uvicorn granian; do
    start_server "$PORT" "$OUT/$SERVER-$round.log" "${PROJECT_DB:-bench_project}"
    for scenario in $SCENARIOS; do
      wrk_run "$scenario" 32 3 "$PORT" > /dev/null  # warm-up
      figures=$(wrk_run "$scenario" 32 "$DURATION" "$PORT" | wrk_figures)
      echo "$SERVER $scenario $round $figures" | tee -a "$OUT/results.txt"
    done
    stop_server
  done
done

echo
echo "server   scenario     req/s   p50 ms   p99 ms   (medians of $ROUNDS rounds of ${DURATION}s, 32 connections)"
"$VENV/python" - "$OUT/results.txt" <<'PY' | tee "$OUT/report.txt"
import statistics, sys
from collections import defaultdict
runs = defaultdict(list)
for line in open(sys.argv[1]):
    server, scenario, _, rps, p50, p99, *errors = line.split()
    runs[server, scenario].append((float(rps), float(p50), float(p99), " ".join(errors)))
for (server, scenario), values in sorted(runs.items(), key=lambda item: (item[0][1], item[0][0])):
    rps, p50, p99 = (statistics.median(v[i] for v in values) for i in range(3))
    errors = "; ".join(v[3] for v in values if v[3])
    print(f"{server:8} {scenario:10} {rps:8.1f} {p50:8.2f} {p99:8.2f}   {errors}")
PY
