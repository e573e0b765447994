"""Podman for the image test: how it runs containers on this machine, and the image build.

Podman's defaults fail in some sandboxes (this project's development machine is one), so the
options are found by trying, cheapest first, a container of the base image that runs ``true``:

1. the defaults;
2. ``--runtime runc`` and explicit ``--ulimit nofile``/``nproc`` at or below the current limits.
   crun 1.8 refuses a hybrid cgroup v1/v2 host ("cgroups in hybrid mode not supported", even with
   ``--cgroups=disabled``), and without ``CAP_SYS_RESOURCE`` the default limits podman asks for
   (1048576 open files, 4194304 processes) cannot be set ("setrlimit RLIMIT_NOFILE: Operation not
   permitted").

Every command is bounded by a timeout. Builds and base-image creation run under one file lock, so
that two test runs on one machine do not race on the tags.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import resource
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

ROOT = Path(__file__).resolve().parents[2]
BASE_SCRIPT = ROOT / "scripts" / "image-base.sh"
BASE_IMAGE = "localhost/todo-base:bookworm"
IMAGE_TAG = "localhost/todo-service:image-test"
LOCK = Path("/var/tmp/todo-image-test.lock")  # noqa: S108  (machine-wide: every checkout shares the images)
BUILD_TIMEOUT = 900
COMMAND_TIMEOUT = 60
# Below the limit this sandbox's container runtime stack can set (65536 fails, 32768 works).
NPROC = 32768


class PodmanUnavailableError(RuntimeError):
    """Podman is missing, or cannot run a container here with any of the options tried."""


@dataclass
class Podman:
    """The podman command with the options that work on this machine."""

    global_options: list[str] = field(default_factory=list)
    run_options: list[str] = field(default_factory=list)
    how: str = "defaults"

    def command(self, *args: str) -> list[str]:
        """``podman`` with the global options, then ``args``."""
        return ["podman", *self.global_options, *args]

    def run(self, *args: str, timeout: float = COMMAND_TIMEOUT, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``podman args`` (bounded), capturing its output."""
        return subprocess.run(  # noqa: S603
            self.command(*args), capture_output=True, text=True, timeout=timeout, check=check
        )

    def container(self, *args: str) -> list[str]:
        """``podman run`` with this machine's run options, then ``args``."""
        return self.command("run", *self.run_options, *args)


def _limits_options() -> list[str]:
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[0], NPROC)
    return ["--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", f"nproc={nproc}:{nproc}"]


def require_tools(*, debootstrap: bool) -> None:
    """Raise PodmanUnavailableError unless podman (and debootstrap when asked) are installed."""
    missing = [tool for tool in ("podman", "debootstrap" if debootstrap else "") if tool and shutil.which(tool) is None]
    if missing:
        install = "apt-get install -y podman buildah runc debootstrap"
        msg = f"{' and '.join(missing)} not found: `{install}` (`just image-test` does)"
        raise PodmanUnavailableError(msg)


def find_podman(image: str) -> Podman:
    """The first set of options with which ``image`` runs ``true``; raises PodmanUnavailableError."""
    candidates = [Podman()]
    if shutil.which("runc"):
        candidates.append(Podman(["--runtime", "runc"], _limits_options(), "runc, explicit ulimits"))
    errors = []
    for candidate in candidates:
        probe = candidate.run("run", *candidate.run_options, "--rm", "--network", "host", image, "true", check=False)
        if probe.returncode == 0:
            return candidate
        errors.append(f"{candidate.how}: {probe.stderr.strip()}")
    raise PodmanUnavailableError("podman cannot run a container here:\n" + "\n".join(errors))


@contextlib.contextmanager
def image_lock() -> Iterator[None]:
    """Hold the machine-wide lock of image builds (waits at most ``BUILD_TIMEOUT`` seconds)."""
    with LOCK.open("a") as handle:
        deadline = time.monotonic() + BUILD_TIMEOUT
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def make_base_images() -> str:
    """Run scripts/image-base.sh (it makes the local base images that are missing); its output."""
    done = subprocess.run(  # noqa: S603
        [str(BASE_SCRIPT)], capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False
    )
    if done.returncode != 0:
        msg = f"scripts/image-base.sh failed ({done.returncode}):\n{done.stdout}{done.stderr}"
        raise RuntimeError(msg)
    return done.stdout


def uv_image() -> str:
    """The local uv image's tag, as scripts/image-base.sh names it (the version of the uv that runs here)."""
    command = ["uv", "--version"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=True)  # noqa: S603
    return f"localhost/todo-uv:{done.stdout.split()[1]}"


@dataclass
class Build:
    """A finished build: the image id and how long it took."""

    image_id: str
    seconds: float
    log: str


def run_tag() -> str:
    """The tag that keeps this test run's image (``podman untag`` it when done)."""
    return f"{IMAGE_TAG}-{os.getpid()}"


def build_image(podman: Podman, build_args: Sequence[str]) -> Build:
    """Build the Containerfile into ``IMAGE_TAG`` (docker format, so that HEALTHCHECK is kept).

    The builder stage is built first under a tag of its own (``IMAGE_TAG-builder``), so that its
    layers stay the cache of the next build; then the untagged images left over are pruned (each
    build after a code change would otherwise keep another copy of the virtualenv, about 200 MB).
    uv's download cache is a cache mount and stays too.
    """
    started = time.monotonic()
    _build(podman, build_args, "--target", "builder", "-t", f"{IMAGE_TAG}-builder")
    iidfile = Path(f"/var/tmp/todo-image-test-{os.getpid()}.iid")  # noqa: S108
    # A tag of this run's own too: another run's prune must not take the image while this one uses it.
    log = _build(podman, build_args, "--iidfile", str(iidfile), "-t", IMAGE_TAG, "-t", run_tag())
    seconds = time.monotonic() - started
    image_id = iidfile.read_text().strip().removeprefix("sha256:")
    iidfile.unlink()
    podman.run("image", "prune", "--force", check=False)
    return Build(image_id, seconds, log)


def _build(podman: Podman, build_args: Sequence[str], *options: str) -> str:
    command = podman.command(
        "build", "--format", "docker", "--network", "host", *podman.run_options, *build_args, *options,
        "-f", "Containerfile", ".",
    )  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False)  # noqa: S603
    if done.returncode != 0:
        msg = f"podman build failed ({done.returncode}):\n{done.stdout[-4000:]}{done.stderr[-4000:]}"
        raise RuntimeError(msg)
    return done.stdout
