"""The quick start on a machine like a stock Debian 12 or Ubuntu 24.04: python3, and a pip that refuses.

Such a Python is *externally managed* (PEP 668): pip finds the file ``EXTERNALLY-MANAGED`` in the
interpreter's stdlib directory (``sysconfig.get_path("stdlib")``) and refuses ``pip install``, which
is what broke the old ``pip install uv rust-just``. pip skips the check inside a virtual environment,
so a venv cannot reproduce it. The reproduction here is a Python installation of its own: a copy of
this interpreter's binary in a new prefix, which finds its stdlib by the landmark
``lib/python3.X/os.py`` beside it; that stdlib directory holds a symlink to each entry of the real
one, pip (linked) in its site-packages, and the marker. Where the machine's own ``/usr/bin/python3``
is externally managed (Debian's is), it is tried too.

Each case runs ``./just`` from a copy of the project's wrapper, bootstrap and justfile, in a fresh
``sh`` with only the interpreter's directory, ``/usr/bin`` and ``/bin`` on PATH and an empty HOME:
no uv, no just, no cache (only the machine's proxy and CA settings are kept). It downloads the real
wheels from the package index.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from scripts.bootstrap import PINS

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = Path("/usr/bin/python3")
TIMEOUT = 180
# How this machine reaches the package index (a proxy, its CA, a mirror): kept, as a user's shell has them.
NETWORK_SETTINGS = {
    "https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "PIP_INDEX_URL", "UV_DEFAULT_INDEX",
}  # fmt: skip


def externally_managed_python(prefix: Path) -> Path:
    """A Python installation under ``prefix`` whose pip refuses to install, as Debian's does; its bin dir."""
    stdlib = Path(sysconfig.get_path("stdlib"))  # in a venv: the base interpreter's
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    assert stdlib.name == version, stdlib
    bin_dir = prefix / "bin"
    bin_dir.mkdir(parents=True)
    shutil.copy2(Path(sys.executable).resolve(), bin_dir / "python3")
    lib = prefix / "lib" / version
    lib.mkdir(parents=True)
    for entry in stdlib.iterdir():
        if entry.name not in {"site-packages", "EXTERNALLY-MANAGED"}:
            (lib / entry.name).symlink_to(entry)
    (lib / "site-packages").mkdir()
    pip = subprocess.run(
        [sys.executable, "-c", "import pip, pathlib; print(pathlib.Path(pip.__file__).parent)"],
        capture_output=True,
        text=True,
        check=False,
    )
    base_pip = Path(pip.stdout.strip()) if pip.returncode == 0 else None
    if base_pip is None:  # this venv has none: the base interpreter's own
        base_site = Path(sysconfig.get_path("purelib", vars={"base": sys.base_prefix}))
        base_pip = base_site / "pip" if (base_site / "pip").is_dir() else None
    if base_pip is not None:
        (lib / "site-packages" / "pip").symlink_to(base_pip)
    (lib / "EXTERNALLY-MANAGED").write_text(
        "[externally-managed]\nError=This Python is managed by the system: use a virtual environment.\n"
    )
    return bin_dir


def project_copy(directory: Path) -> Path:
    """The files the quick start needs, plus a recipe that shows which uv and just the recipes see."""
    directory.mkdir()
    shutil.copy2(ROOT / "just", directory / "just")
    (directory / "scripts").mkdir()
    shutil.copy2(ROOT / "scripts" / "bootstrap.py", directory / "scripts" / "bootstrap.py")
    justfile = (ROOT / "justfile").read_text()
    (directory / "justfile").write_text(justfile + "\n_tool-versions:\n    uv --version\n    just --version\n")
    return directory


def fresh_shell(command: str, *, cwd: Path, path: str, home: Path) -> subprocess.CompletedProcess[str]:
    """``sh -c command`` with ``path`` and ``home``; of this process's environment, only the network's settings."""
    env = {name: value for name, value in os.environ.items() if name in NETWORK_SETTINGS}
    return subprocess.run(  # noqa: S603
        ["/bin/sh", "-c", command],
        cwd=cwd,
        env={**env, "PATH": path, "HOME": str(home), "LANG": "C.UTF-8"},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def system_python_is_externally_managed() -> bool:
    if not SYSTEM_PYTHON.exists():
        return False
    stdlib = subprocess.run(  # noqa: S603  (the machine's own python3)
        [str(SYSTEM_PYTHON), "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return bool(stdlib) and (Path(stdlib) / "EXTERNALLY-MANAGED").is_file()


@pytest.mark.parametrize("python", ["copied", "system"])
def test_the_quick_start_bootstraps_uv_and_just_where_pip_may_not_install(python: str, tmp_path: Path) -> None:
    if python == "copied":
        python_dir = externally_managed_python(tmp_path / "python")
    elif system_python_is_externally_managed():
        python_dir = SYSTEM_PYTHON.parent
    else:
        pytest.skip("the system's python3 is not externally managed here")
    path = f"{python_dir}:/usr/bin:/bin"
    home = tmp_path / "home"
    home.mkdir()
    project = project_copy(tmp_path / "project")
    assert shutil.which("uv", path=path) is None
    assert shutil.which("just", path=path) is None

    which = fresh_shell(
        "command -v python3; python3 -c 'import sys; print(sys.prefix)'", cwd=project, path=path, home=home
    )
    assert which.stdout.splitlines()[0] == str(python_dir / "python3"), which

    # The old quick start fails here, for the reason the users met (when this Python has pip at all).
    has_pip = fresh_shell("python3 -c 'import pip'", cwd=project, path=path, home=home).returncode == 0
    old = fresh_shell("python3 -m pip install rust-just", cwd=project, path=path, home=home)
    assert old.returncode != 0
    assert ("externally-managed-environment" if has_pip else "No module named pip") in old.stderr, old.stderr

    first = fresh_shell("./just _tool-versions", cwd=project, path=path, home=home)
    assert first.returncode == 0, first.stderr
    uv_version, just_version = PINS["uv"][0], PINS["rust-just"][0]
    uv_line, just_line = first.stdout.splitlines()
    assert re.fullmatch(rf"uv {re.escape(uv_version)} \([\w.-]+\)", uv_line), (
        first.stdout
    )  # "(x86_64-unknown-linux-gnu)"
    assert just_line == f"just {just_version}"
    assert "bootstrap: uv-" in first.stderr
    assert "bootstrap: rust_just-" in first.stderr
    for binary in ("uv", "uvx", "just"):
        assert os.access(project / ".tools" / "bin" / binary, os.X_OK)

    # The real justfile parses with the pinned just, and a second run downloads nothing.
    again = fresh_shell("./just --list", cwd=project, path=path, home=home)
    assert again.returncode == 0, again.stderr
    assert "bootstrap:" not in again.stderr
    assert {"run", "test", "lint"} <= {line.split()[0] for line in again.stdout.splitlines()[1:] if line.strip()}
