#!/usr/bin/env bash
# One configuration of `just bench` (bench/bench.sh runs them by name): this service beside the
# raw-asyncpg ceiling, with the shared load harness, then for bare what the harness does not measure
# (bench/extras.sh: login against argon2, reads beside logins, polling, memory over a long run).
#
# The harness (compare.sh and its `limit` target) lives outside the repository, in
# BENCH_HARNESS (default ../shared/bench). It is copied to bench/.harness first, so its venv and
# its runs stay in this checkout and the original is never written to. The run needs wrk and a
# PostgreSQL at PGHOST:PGPORT (default 127.0.0.1:5432, user postgres, password postgres): both
# are installed and started here when missing and this is a Debian machine run as root.
#
# CONFIG names the configuration (bench/configs.sh, docs/performance.md): bare (the default: limits
# off, logs at WARNING), production, production-redis, workers-2. Every run has the ceiling beside it.
#
# Knobs (environment): SERVER=granian|uvicorn (default granian, what `todo-service run` uses: see
# the README), EXTRAS=0 to skip the extras (they run with bare only), MEMORY_SECONDS (600), and every
# compare.sh knob (ROUNDS, DURATION, SCENARIOS, LOGIN, C1000, ...). The report is printed and written
# to bench/runs/<time>-<server>-<config>/report.txt and to bench/report-<server>.txt (bare) or
# bench/report-<server>-<config>.txt (committed: the latest figures).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source bench/common.sh
source bench/configs.sh
CONFIG=${CONFIG:-bare}
harness_copy

as_root_on_debian() { [[ $(id -u) -eq 0 ]] && command -v apt-get > /dev/null; }
missing=()
command -v wrk > /dev/null || missing+=(wrk)
command -v bc > /dev/null || missing+=(bc)
command -v jq > /dev/null || missing+=(jq)
if (( ${#missing[@]} )); then
  as_root_on_debian || { echo "bench: missing ${missing[*]} (apt-get install -y ${missing[*]})" >&2; exit 2; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" > /dev/null
fi
if ! psql -XAtqc 'select 1' -d postgres > /dev/null 2>&1; then
  as_root_on_debian && command -v pg_ctlcluster > /dev/null \
    || { echo "bench: no PostgreSQL at $PGHOST:$PGPORT for $PGUSER" >&2; exit 2; }
  echo "bench: starting the Debian PostgreSQL cluster (15/main) and setting $PGUSER's password"
  pg_ctlcluster 15 main start 2> /dev/null || true
  # Through the local socket (peer authentication): the exported PGHOST would ask for the password being set.
  runuser -u postgres -- env -u PGHOST -u PGPORT -u PGUSER -u PGPASSWORD \
    psql -XAtq -c "ALTER USER $PGUSER PASSWORD '$PGPASSWORD'" > /dev/null
fi

# What runs is the installed project, exactly as uv.lock pins it (granian included).
uv sync --frozen --quiet
export OUT=${OUT:-$ROOT/bench/runs/$(date +%Y%m%d-%H%M%S)-$SERVER-$CONFIG}
trap config_stop EXIT
config_apply "$CONFIG" "$OUT/services"
PROJECT_START=$(server_command)
export PROJECT_START PROJECT_PREPARE="'$VENV/todo-service' database upgrade --no-prompt"
if [[ $CONFIG != bare ]]; then
  PROJECT_PREPARE+=" && $(spread_prepare "$OUT/project")"
fi
REPORT=${REPORT_TO:-$ROOT/bench/report-$SERVER$([[ $CONFIG == bare ]] || echo "-$CONFIG").txt}
redis_before=$(cpu_seconds ${REDIS_PID:-})
started=$(date +%s)
REPORT_TO=$OUT/harness-report.txt "$HARNESS/compare.sh"
wall=$(( $(date +%s) - started ))
{
  echo "configuration: $CONFIG ($(config_settings))"
  cat "$OUT/harness-report.txt"  # it opens with the run's meta (machine, commit, commands)
  echo
  "$VENV/python" bench/configs_report.py "$OUT" "$CONFIG"
  if [[ $CONFIG != bare ]]; then
    echo "OTLP receiver: $(cat "$OUT/services/otlp-totals.txt" 2> /dev/null || echo 'no totals')"
  fi
  if [[ $CONFIG == production-redis ]]; then
    printf 'Redis, whole run: %.1f CPU s = %.0f%% of one core\n' "$(echo "$(cpu_seconds "$REDIS_PID") - $redis_before" | bc -l)" \
      "$(echo "100 * ($(cpu_seconds "$REDIS_PID") - $redis_before) / $wall" | bc -l)"
    bench/redis_check.sh "$OUT"
  fi
} > "$OUT/report.txt"
cat "$OUT/report.txt"
if [[ ${EXTRAS:-$([[ $CONFIG == bare ]] && echo 1 || echo 0)} == 1 ]]; then
  echo
  bench/extras.sh "$OUT"
  { echo; cat "$OUT/extras/report.txt"; } >> "$OUT/report.txt"
fi
cp "$OUT/report.txt" "$REPORT"
echo
echo "report: $REPORT (and $OUT/report.txt)"
