#!/usr/bin/env bash
# `just image-test`: build the Containerfile with podman and check the image for real
# (tests/image/test_image.py: PostgreSQL, health, non-root, read-only root, SIGTERM, size).
# Installs podman, runc and debootstrap first when they are missing (as root, with apt-get); makes
# the local base images when they are missing (scripts/image-base.sh, about a minute). Unlike in
# `just test`, where the module is skipped when podman cannot run containers, here that fails.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for tool in podman runc debootstrap; do
    if ! command -v "$tool" > /dev/null; then missing+=("$tool"); fi
done
if [[ ${#missing[@]} -gt 0 ]]; then
    if [[ $(id -u) -ne 0 ]] || ! command -v apt-get > /dev/null; then
        echo "missing for the image test: ${missing[*]}: install them" >&2
        exit 1
    fi
    echo "installing ${missing[*]} (apt-get install)"
    export DEBIAN_FRONTEND=noninteractive
    timeout 600 apt-get install -y -q "${missing[@]}" > /dev/null \
        || { timeout 300 apt-get update -q > /dev/null && timeout 600 apt-get install -y -q "${missing[@]}" > /dev/null; }
fi

start=$SECONDS
IMAGE_TEST=required timeout 1800 uv run --frozen pytest tests/image -p no:randomly -p no:cacheprovider -v -s "$@"
echo "image-test: done in $((SECONDS - start)) s"
