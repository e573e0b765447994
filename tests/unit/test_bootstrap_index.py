"""scripts/bootstrap.py against a package index of its own on loopback: the wheel it picks, the hash it checks.

The index speaks PEP 691 (JSON) like PyPI and serves wheels built here, so a wrong hash, a missing
wheel and a mirror (``PIP_INDEX_URL``) can be tried for real; test_bootstrap.py runs the bootstrap
against the real index, with the real uv and just.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import platform
import zipfile
from typing import TYPE_CHECKING, Any

import pytest

from scripts import bootstrap
from tests.servers import serving_in_a_thread

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

GLIBC = ("glibc", "2.36")


@pytest.mark.parametrize(
    ("tag", "system", "machine", "libc", "mac", "fits"),
    [
        ("manylinux_2_17_x86_64", "Linux", "x86_64", GLIBC, "", True),
        ("manylinux2014_x86_64", "Linux", "x86_64", GLIBC, "", True),
        ("manylinux_2_39_x86_64", "Linux", "x86_64", GLIBC, "", False),  # needs a newer glibc
        ("manylinux_2_17_aarch64", "Linux", "x86_64", GLIBC, "", False),
        ("manylinux_2_17_aarch64", "Linux", "aarch64", GLIBC, "", True),
        ("musllinux_1_1_x86_64", "Linux", "x86_64", GLIBC, "", False),
        ("musllinux_1_1_x86_64", "Linux", "x86_64", ("", ""), "", True),  # Alpine
        ("manylinux_2_17_x86_64", "Linux", "x86_64", ("", ""), "", False),
        ("macosx_11_0_arm64", "Darwin", "arm64", ("", ""), "14.5", True),
        ("macosx_10_12_x86_64", "Darwin", "arm64", ("", ""), "14.5", False),
        ("macosx_10_12_universal2", "Darwin", "arm64", ("", ""), "14.5", True),
        ("macosx_15_0_arm64", "Darwin", "arm64", ("", ""), "14.5", False),  # needs a newer macOS
        ("win_amd64", "Windows", "AMD64", ("", ""), "", False),
    ],
)
def test_a_platform_tag_fits_only_the_machines_it_runs_on(
    tag: str, system: str, machine: str, libc: tuple[str, str], mac: str, *, fits: bool
) -> None:
    assert bootstrap.platform_fits(tag, system, machine, libc, mac) is fits


def test_the_wheel_picked_is_the_pinned_version_for_this_platform_and_not_yanked() -> None:
    def fits(tag: str) -> bool:
        return tag == "manylinux_2_17_x86_64"

    files: list[dict[str, Any]] = [
        {"filename": "uv-0.13.8-py3-none-manylinux_2_17_x86_64.whl"},
        {"filename": "uv-0.13.9.tar.gz"},
        {"filename": "uv-0.13.9-py3-none-musllinux_1_1_x86_64.whl"},
        {"filename": "uv-0.13.9-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "yanked": "broken"},
        {"filename": "uv-0.13.9-py3-none-manylinux_2_17_x86_64.whl"},
    ]
    assert bootstrap.pick_wheel(files, "uv", "0.13.9", fits) is files[4]
    with pytest.raises(bootstrap.BootstrapError, match=r"no uv 0\.13\.10 wheel on the index fits this machine"):
        bootstrap.pick_wheel(files, "uv", "0.13.10", fits)


def this_platform_tag() -> str:
    machine = platform.machine()
    if platform.system() == "Darwin":
        return f"macosx_10_12_{machine}"
    return f"manylinux_2_17_{machine}" if platform.libc_ver()[0] == "glibc" else f"musllinux_1_1_{machine}"


def wheel(name: str, version: str, binaries: tuple[str, ...]) -> bytes:
    """A wheel as uv's and just's are laid out: the binaries under ``<name>-<version>.data/scripts/``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for binary in binaries:
            archive.writestr(f"{name}-{version}.data/scripts/{binary}", f"#!/bin/sh\necho {binary} {version}\n")
        archive.writestr(f"{name}-{version}.dist-info/WHEEL", "Wheel-Version: 1.0\n")
    return buffer.getvalue()


class Index:
    """A PEP 691 index on loopback with a wheel of each pinned tool for this platform."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.listings: dict[str, dict[str, Any]] = {}
        self.requests: list[str] = []
        for project, (version, binaries) in bootstrap.PINS.items():
            name = project.replace("-", "_")
            filename = f"{name}-{version}-py3-none-{this_platform_tag()}.whl"
            self.blobs[filename] = wheel(name, version, binaries)
            digest = hashlib.sha256(self.blobs[filename]).hexdigest()
            # A relative url, as a mirror may give: the bootstrap resolves it against the listing's address.
            entry = {"filename": filename, "url": f"../../files/{filename}", "hashes": {"sha256": digest}}
            self.listings[project] = {"meta": {"api-version": "1.1"}, "name": project, "files": [entry]}

    def handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        index = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                index.requests.append(self.path)
                parts = self.path.strip("/").split("/")
                if parts[0] == "simple" and parts[1] in index.listings:
                    body = json.dumps(index.listings[parts[1]]).encode()
                    content_type = "application/vnd.pypi.simple.v1+json"
                elif parts[0] == "files" and parts[1] in index.blobs:
                    body, content_type = index.blobs[parts[1]], "application/octet-stream"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002  (the stdlib's name)
                del format, args

        return Handler


@pytest.fixture
def index(monkeypatch: pytest.MonkeyPatch) -> Iterator[Index]:
    served = Index()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), served.handler())
    with serving_in_a_thread(server):
        monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{server.server_address[1]}/simple/")
        yield served


def test_the_pinned_tools_come_from_the_configured_index_once(index: Index, tmp_path: Path) -> None:
    assert bootstrap.main(tmp_path) == 0
    bin_dir = tmp_path / "bin"
    for version, binaries in bootstrap.PINS.values():
        for binary in binaries:
            assert os.access(bin_dir / binary, os.X_OK)
            assert (bin_dir / binary).read_text() == f"#!/bin/sh\necho {binary} {version}\n"
    assert json.loads((bin_dir / ".pins.json").read_text()) == {name: v for name, (v, _) in bootstrap.PINS.items()}
    assert len(index.requests) == 2 * len(bootstrap.PINS)  # a listing and a wheel each

    assert bootstrap.main(tmp_path) == 0
    assert len(index.requests) == 2 * len(bootstrap.PINS)  # nothing fetched: the pins are there

    (bin_dir / "just").unlink()  # a tool gone: only its wheel is fetched again
    assert bootstrap.main(tmp_path) == 0
    assert len(index.requests) == 2 * len(bootstrap.PINS) + 2
    assert index.requests[-2] == "/simple/rust-just/"
    assert index.requests[-1].startswith("/files/rust_just-")
    assert os.access(bin_dir / "just", os.X_OK)


def test_a_wheel_whose_hash_differs_from_the_index_is_not_installed(
    index: Index, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = index.listings["uv"]["files"][0]
    entry["hashes"]["sha256"] = hashlib.sha256(b"something else").hexdigest()
    assert bootstrap.main(tmp_path) == 1
    assert "SHA-256 mismatch, not installed" in capsys.readouterr().err
    assert not (tmp_path / "bin" / "uv").exists()
    assert not (tmp_path / "bin" / ".pins.json").exists()


def test_a_listing_without_a_hash_is_refused(index: Index, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    del index.listings["rust-just"]["files"][0]["hashes"]
    assert bootstrap.main(tmp_path) == 1
    assert "gives no sha256" in capsys.readouterr().err
    assert not (tmp_path / "bin" / "just").exists()


def test_a_missing_project_is_one_line_not_a_traceback(
    index: Index, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    del index.listings["uv"]
    assert bootstrap.main(tmp_path) == 1
    err = capsys.readouterr().err
    assert err.startswith("bootstrap: could not fetch http://127.0.0.1:")
    assert "HTTP Error 404" in err
    assert len(err.splitlines()) == 1


def test_only_http_addresses_are_fetched() -> None:
    with pytest.raises(bootstrap.BootstrapError, match="not an http"):
        bootstrap.fetch("file:///etc/passwd")
