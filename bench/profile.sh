#!/usr/bin/env bash
# `just profile <scenario>`: where one worker's CPU goes under load, by function (py-spy).
#
# Needs a seeded benchmark run (`just bench` leaves one: bench/runs/<time>/project/seed.env and
# its database bench_project). Serves the app like the benchmark does (one uvicorn worker on cpu
# 1), loads it with wrk on cpu 0 with the harness's scenario, samples it with py-spy and prints
# the functions that take the most time while serving requests, inclusive and exclusive.
#
#   just profile s2_get            # or s1_list, s3_create, s4_mixed
#   RUN=bench/runs/<dir> SECONDS_=20 just profile s1_list
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source bench/common.sh
SCENARIO=${1:-s2_get}
RUN=${RUN:-$(last_harness_run)}
[[ -n $RUN && -f $RUN/project/seed.env ]] || { echo "profile: no seeded run in bench/runs (run just bench first)" >&2; exit 2; }
PORT=${PORT:-19050}
DURATION=${SECONDS_:-15}
OUT=$RUN/profile-$SCENARIO-$(date +%H%M%S)
mkdir -p "$OUT"
seed_env "$RUN"
# The run's configuration (CONFIG overrides): a production run is profiled with its settings and services.
source bench/configs.sh
trap 'stop_server; config_stop' EXIT
config_apply "${CONFIG:-$(run_config "$RUN")}" "$OUT/services"
start_server "$PORT" "$OUT/server.log" "${PROJECT_DB:-bench_project}"
wrk_run "$SCENARIO" 32 3 "$PORT" > /dev/null  # warm-up
wrk_run "$SCENARIO" 32 "$DURATION" "$PORT" > "$OUT/wrk.txt" &
LOAD=$!
sleep 1
"$VENV/py-spy" record --pid "$(worker_pid)" --duration $((DURATION - 2)) --rate 250 --format raw \
  --output "$OUT/profile.txt" --nonblocking > /dev/null 2>&1
wait $LOAD
wrk_figures < "$OUT/wrk.txt"
"$VENV/python" bench/top_functions.py "$OUT/profile.txt" 40 ASGIRouter.__call__ | tee "$OUT/top.txt"
echo "profile: $OUT"
