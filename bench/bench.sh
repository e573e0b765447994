#!/usr/bin/env bash
# `just bench [NAME...] [KEY=VALUE...]`: the benchmarks by name (docs/performance.md), one after the other.
#
#   configurations, each a harness run beside the raw-asyncpg ceiling (bench/run.sh):
#     bare  production  production-redis  workers-2      (`configs`: the four)
#   scenarios on data the harness does not make:
#     large    one user with 100,000 tasks and 1,000 users with 100 each, route by route (bench/large.sh)
#     memory   RSS of a worker during the mixed load with SSE streams open (bench/memory.sh)
#     growth   req/s and p99 against data size and connections (bench/growth.sh)
#   all (the default): every one of them, in this order.
#
# KEY=VALUE words are exported for every run (ROUNDS=1, DURATION=5, MEMORY_SECONDS=600, ...);
# config=NAME is the same as NAME. Each run writes its report (bench/report-*.txt); the targets of
# every run go to bench/report-summary.txt (SUMMARY_TO) as well.
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIGS="bare production production-redis workers-2"
SCENARIOS_="large memory growth"
names=()
for word in "$@"; do
  case $word in
    config=*) names+=("${word#config=}") ;;
    *=*) export "${word?}" ;;
    *) names+=("$word") ;;
  esac
done
(( ${#names[@]} )) || names=(all)
runs=()
for name in "${names[@]}"; do
  case $name in
    all) read -ra more <<< "$CONFIGS $SCENARIOS_"; runs+=("${more[@]}") ;;
    configs) read -ra more <<< "$CONFIGS"; runs+=("${more[@]}") ;;
    bare | production | production-redis | workers-2 | large | memory | growth) runs+=("$name") ;;
    *) echo "bench: unknown name $name (one of: all configs $CONFIGS $SCENARIOS_)" >&2; exit 2 ;;
  esac
done
# With `memory` in the same session, bare's extras keep their memory run short (the long one is `memory`'s).
if [[ " ${runs[*]} " == *" memory "* ]]; then export EXTRAS_MEMORY_SECONDS=${EXTRAS_MEMORY_SECONDS:-120}; fi
started=$(date +%s)
SUMMARY=${SUMMARY_TO:-bench/report-summary.txt}
{
  echo "Benchmarks: ${runs[*]}; started $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git log -1 --format='%h %cs')"
  echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr)"
  echo "command: just bench $*"
} > "$SUMMARY"
for name in "${runs[@]}"; do
  echo "==== bench: $name ($(date -u +%H:%M:%S) UTC)"
  case $name in
    large | memory | growth) report=${REPORT_TO:-bench/report-$name.txt}; "bench/$name.sh" ;;
    *)
      report=${REPORT_TO:-bench/report-${SERVER:-granian}$([[ $name == bare ]] || echo "-$name").txt}
      CONFIG=$name bench/run.sh ;;
  esac
  # The summary: each configuration's targets table (with the settings line), each scenario's report.
  {
    echo
    echo "== $name ($report)"
    if [[ $name == large || $name == memory || $name == growth ]]; then
      cat "$report"
    else
      head -1 "$report"
      sed -n '/^Targets of issue 16/,/^$/p' "$report"  # down to the extras, if any
    fi
  } >> "$SUMMARY"
done
echo "==== bench: ${runs[*]} done in $(( ($(date +%s) - started) / 60 )) min; summary: $SUMMARY"
