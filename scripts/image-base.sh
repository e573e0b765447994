#!/usr/bin/env bash
# Local base images for building the Containerfile where no registry is reachable:
#
#   localhost/todo-base:bookworm   a minimal Debian bookworm with python3 (3.11), made by debootstrap
#                                  from this machine's configured Debian mirror (stands in for
#                                  python:3.11-slim-bookworm; BASE_IMAGE)
#   localhost/todo-uv:<version>    the uv binary this machine runs, alone in an image, as
#                                  ghcr.io/astral-sh/uv ships it (/uv, /uvx; UV_IMAGE)
#
# Each is made only if missing (FORCE=1 remakes both). Needs root, debootstrap and podman.
# The base also trusts this machine's local CAs (/usr/local/share/ca-certificates), so that uv in
# the build reaches PyPI through the same TLS proxy the host uses; it is a local image, never pushed.
set -euo pipefail

BASE_TAG=${BASE_TAG:-localhost/todo-base:bookworm}
SUITE=bookworm
uv_version=$(uv --version | awk '{print $2}')
UV_TAG=${UV_TAG:-localhost/todo-uv:${uv_version}}

have_image() { [[ -z "${FORCE:-}" ]] && podman image exists "$1"; }

work=$(mktemp -d /var/tmp/todo-base.XXXXXX)
cleanup() {
    # A failed debootstrap can leave /proc or /sys mounted in the rootfs: unmount, never delete through.
    awk -v w="$work/" 'index($2, w) == 1 {print $2}' /proc/mounts | sort -r | xargs -r umount -l
    rm -rf --one-file-system "$work"
}
trap cleanup EXIT

if have_image "$BASE_TAG"; then
    echo "base: $BASE_TAG exists"
else
    # The mirrors apt uses here, read now (never written into the repository): the suite's own,
    # plus its -updates and -security ones when configured.
    # shellcheck disable=SC2016  # apt expands $(REPO_URI) and the rest, not the shell
    mapfile -t repos < <(apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT)' \
        'Identifier: Packages' | awk -v s="$SUITE" '$2 == s || $2 == s "-updates" || $2 == s "-security"' | sort -u)
    mirror=$(printf '%s\n' "${repos[@]}" | awk -v s="$SUITE" '$2 == s {print $1; exit}')
    if [[ -z "$mirror" ]]; then
        echo "no Debian $SUITE mirror in this machine's apt sources" >&2
        exit 1
    fi
    echo "base: debootstrap $SUITE from $mirror"
    start=$SECONDS
    rootfs="$work/rootfs"
    timeout 900 debootstrap --variant=minbase --include=python3,ca-certificates \
        "$SUITE" "$rootfs" "$mirror" > "$work/debootstrap.log" 2>&1 \
        || { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }
    : > "$rootfs/etc/apt/sources.list"
    for repo in "${repos[@]}"; do
        read -r uri release component <<< "$repo"
        echo "deb $uri $release $component" >> "$rootfs/etc/apt/sources.list"
    done
    cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/" 2>/dev/null || true
    # Security and point-release updates, then no package lists, caches, docs or man pages.
    timeout 600 chroot "$rootfs" /bin/sh -c '
        set -e
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q > /dev/null
        apt-get upgrade -y -q > /dev/null
        update-ca-certificates > /dev/null
        apt-get clean
        rm -rf /var/lib/apt/lists/* /var/cache/debconf/*-old /var/log/*.log /var/log/apt/* \
            /usr/share/doc/* /usr/share/man/* /usr/share/info/* /usr/share/locale/*
        find /usr/lib/python3* -name __pycache__ -prune -exec rm -rf {} +
    '
    # A stable machine id is not wanted in an image; the resolv.conf is the runtime's to write.
    : > "$rootfs/etc/machine-id"
    rm -f "$rootfs/etc/resolv.conf"
    tar --numeric-owner -C "$rootfs" -cf "$work/rootfs.tar" .
    podman import --quiet \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
        --change 'CMD ["python3"]' \
        --message "debootstrap --variant=minbase $SUITE + python3" \
        "$work/rootfs.tar" "$BASE_TAG" > /dev/null
    size=$(podman image inspect --format '{{.Size}}' "$BASE_TAG")
    echo "base: $BASE_TAG made in $((SECONDS - start)) s, $((size / 1000000)) MB, $(chroot "$rootfs" python3 --version)"
fi

if have_image "$UV_TAG"; then
    echo "uv: $UV_TAG exists"
else
    # The binary itself, not a shim script in front of it (pyenv's, for one).
    uv_bin=$(readlink -f "$(command -v uv)")
    if ! head -c 4 "$uv_bin" | grep -q ELF && command -v pyenv > /dev/null; then
        uv_bin=$(readlink -f "$(pyenv which uv)")
    fi
    mkdir "$work/uv"
    cp "$uv_bin" "$work/uv/uv"
    uvx_bin="$(dirname "$uv_bin")/uvx"
    if [[ -x "$uvx_bin" ]]; then cp "$uvx_bin" "$work/uv/uvx"; fi
    tar --numeric-owner --owner 0 --group 0 -C "$work/uv" -cf "$work/uv.tar" .
    podman import --quiet --change 'ENTRYPOINT ["/uv"]' --message "uv $uv_version from this machine" \
        "$work/uv.tar" "$UV_TAG" > /dev/null
    echo "uv: $UV_TAG made from $uv_bin"
fi
