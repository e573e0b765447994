# The one place every command lives. `just` lists the recipes.

set shell := ["bash", "-euo", "pipefail", "-c"]

# docker compose, or podman compose where docker is missing
compose := if `command -v docker || true` != "" { "docker compose" } else { "podman compose" }

# List the recipes
default:
    @just --list --unsorted

# Install the project and its dev tools into .venv, exactly as uv.lock pins them
sync:
    uv sync --frozen

# Apply the database migrations to DATABASE_URL (default: SQLite file todo.db)
migrate: sync
    uv run --frozen todo-service database upgrade --no-prompt

# Migrate, then serve the API on http://127.0.0.1:8000 (docs at /api/docs): `just run port=8080 host=0.0.0.0`, or any `todo-service run` option (`just run --port 8080 -W 2`)
[positional-arguments]
run *args:
    #!/usr/bin/env bash
    set -euo pipefail
    options=()
    for arg in "$@"; do
        case "$arg" in
            port=*) options+=(--port "${arg#port=}") ;;
            host=*) options+=(--host "${arg#host=}") ;;
            *) options+=("$arg") ;;
        esac
    done
    # One process: `run --migrate` migrates, then serves (a `migrate` step first imported the whole app twice).
    exec uv run --frozen todo-service run --migrate "${options[@]}"

# `just run` with auto-reload: the worker restarts when a file under todo_service/ changes (takes the same arguments)
[positional-arguments]
dev *args:
    @{{ just_executable() }} --justfile {{ justfile() }} run --reload "$@"

# The whole test suite, on SQLite and a real PostgreSQL (and a real Redis), with coverage (>= 90%, auth and security code 100%)
test *args: sync _servers
    uv run --frozen pytest --cov --cov-report=term-missing:skip-covered --cov-fail-under=90 {{ args }}
    @echo "auth and security code coverage (must be 100%):"
    uv run --frozen coverage report --include='todo_service/auth/*,todo_service/security/*' --fail-under=100

# Schemathesis against a live server for longer, with a random seed (the test suite runs 60 s, seed fixed)
fuzz seconds="600": sync _servers
    FUZZ_MAX_TIME={{ seconds }} FUZZ_SEED=$RANDOM uv run --frozen pytest -p no:cacheprovider tests/integration/test_schemathesis.py

# Benchmarks by name (docs/performance.md): bare, production, production-redis, workers-2 (each beside the raw-asyncpg ceiling: BENCH_HARNESS, see docs/testing.md), large, memory, growth; none = all. KEY=VALUE sets a knob; writes bench/report-*.txt
[positional-arguments]
bench *args: sync
    bench/bench.sh "$@"

# uvicorn against granian for this app, alternated round by round, on the last benchmark run's data
bench-servers *args: sync
    {{ args }} bench/servers.sh

# Where one worker's CPU goes under load (py-spy), on the last benchmark run's data: just profile s1_list
profile scenario="s2_get": sync
    bench/profile.sh {{ scenario }}

# The scaled-out topology for real: nginx over 3 replicas, PgBouncer (transaction mode) before PostgreSQL, Redis; prints its figures
scale-test *args: sync _servers
    uv run --frozen pytest -p no:randomly -s -q tests/scale {{ args }}

# Lint, check formatting, type-check (strict) and lint the Containerfile
lint: sync
    uv run --frozen ruff check .
    uv run --frozen ruff format --check .
    uv run --frozen mypy
    uv run --frozen hadolint Containerfile
    uv run --frozen lint-imports
    uv run --frozen mkdocs build --strict --site-dir site

# Build the docs site into site/ with warnings as errors (`just docs serve` serves it on :8001 with live reload)
docs command="build": sync
    if [[ "{{ command }}" == "serve" ]]; then uv run --frozen mkdocs serve --dev-addr 127.0.0.1:8001; else uv run --frozen mkdocs build --strict --site-dir site; fi

# Build the image with podman from local base images (no registry needed) and check it against PostgreSQL: health, non-root, read-only root, SIGTERM, size
image-test *args: sync _servers
    scripts/image-test.sh {{ args }}

# Start the whole stack with docker or podman compose (add `monitoring` for Prometheus and Grafana)
up *profiles:
    {{ compose }} {{ prepend("--profile ", profiles) }} up --detach --build
    @echo "the app starts once migrate has finished: {{ compose }} ps shows it healthy"

# Stop the stack (its database volume stays; `just down --volumes` drops it)
down *args:
    {{ compose }} --profile monitoring down {{ args }}

# Format the code and apply safe lint fixes
fmt: sync
    uv run --frozen ruff format .
    uv run --frozen ruff check --fix .

# Servers for the tests: PostgreSQL binaries (unless TEST_DATABASE_URL is set), redis-server, and pgbouncer and nginx (the scale-out tests)
_servers:
    #!/usr/bin/env bash
    set -euo pipefail
    missing=()
    if [[ -z "${TEST_DATABASE_URL:-}" ]] && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" > /dev/null; then
        missing+=(postgresql)
    fi
    if ! command -v redis-server > /dev/null; then missing+=(redis-server); fi
    if ! command -v chromium > /dev/null; then missing+=(chromium); fi  # the docs pages in a real browser
    if ! command -v pgbouncer > /dev/null && [[ ! -x /usr/sbin/pgbouncer ]]; then missing+=(pgbouncer); fi
    if ! command -v nginx > /dev/null && [[ ! -x /usr/sbin/nginx ]]; then missing+=(nginx); fi
    if [[ ${#missing[@]} -eq 0 ]]; then exit 0; fi
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get > /dev/null; then
        required=()
        for package in "${missing[@]}"; do
            case $package in
                chromium | pgbouncer | nginx) echo "not installed: $package (its tests will be skipped)" >&2 ;;
                *) required+=("$package") ;;
            esac
        done
        if [[ ${#required[@]} -eq 0 ]]; then exit 0; fi
        echo "missing for the tests: ${required[*]}: install them (or set TEST_DATABASE_URL instead of PostgreSQL)" >&2; exit 1
    fi
    echo "installing ${missing[*]} (apt-get install)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "${missing[@]}" > /dev/null || { apt-get update -q > /dev/null && apt-get install -y -q "${missing[@]}" > /dev/null; }
