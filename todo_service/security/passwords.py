"""Password hashing (argon2id, off the event loop) and the password policy."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from todo_service.security.errors import WeakPassword

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

__all__ = ("MIN_PASSWORD_LENGTH", "Passwords", "check_password_policy")

logger = logging.getLogger(__name__)
MIN_PASSWORD_LENGTH = 8
_DUMMY_PASSWORD = "not-a-real-password-only-for-timing"  # noqa: S105


HASHING_NICENESS = 19


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity: 1 when pinned to one), at least 1."""
    affinity = getattr(os, "sched_getaffinity", None)  # Linux only
    return len(affinity(0)) if affinity else os.cpu_count() or 1


def lower_thread_priority() -> None:
    """Give the calling thread (and the threads it starts) the lowest CPU priority, where Linux allows it."""
    if not sys.platform.startswith("linux"):
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICENESS)  # per thread on Linux
    except OSError:
        logger.warning("could not lower the priority of the password-hashing threads")


class Passwords:
    """Hashes and verifies passwords on a small pool of its own.

    argon2id costs tens of milliseconds and ``memory_cost`` KiB per call: running it on the event
    loop would stall every other request, and on the default executor a login burst could take
    all its threads. One thread per core the process may run on bounds both the CPU and the memory
    it can claim (two hashes sharing one core only thrash its caches).

    The hashing threads run at the lowest CPU priority (nice 19, inherited by argon2's own lane
    threads): when requests and hashes compete for a core, the event loop wins, so reads keep
    their latency during a burst of logins, and hashing takes the CPU the requests leave.

    With a ``tracer`` (tracing on), each hash and verification is an ``argon2.hash`` or
    ``argon2.verify`` span, waiting for a free thread included.
    """

    def __init__(self, *, time_cost: int, memory_cost: int, parallelism: int, tracer: Tracer | None = None) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism, type=Type.ID
        )
        self._pool = ThreadPoolExecutor(
            max_workers=usable_cores(), thread_name_prefix="argon2", initializer=lower_thread_priority
        )
        self._dummy_hash: str | None = None
        self._tracer = tracer
        self._cost = {"argon2.time_cost": time_cost, "argon2.memory_kib": memory_cost, "argon2.lanes": parallelism}

    async def hash(self, password: str) -> str:
        """Return the argon2id hash of ``password``."""
        with self._span("argon2.hash"):
            return await self._hash(password)

    async def verify(self, password_hash: str, password: str) -> bool:
        """Whether ``password`` matches ``password_hash`` (a malformed hash never matches)."""
        with self._span("argon2.verify"):
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._pool, self._verify_sync, password_hash, password)

    async def prepare(self) -> None:
        """Make the dummy hash now (at start), so no login pays for it (and no trace shows it)."""
        if self._dummy_hash is None:
            self._dummy_hash = await self._hash(_DUMMY_PASSWORD)

    async def verify_nothing(self, password: str) -> None:
        """Spend the time of one verification, for an unknown account, so timing reveals nothing."""
        await self.prepare()
        await self.verify(self._dummy_hash or "", password)

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether the hash was made with other parameters than the current ones."""
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    def close(self) -> None:
        """Stop the hashing threads (at application shutdown)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _hash(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._hasher.hash, password)

    def _span(self, name: str) -> AbstractContextManager[object]:
        if self._tracer is None:
            return nullcontext()
        return self._tracer.start_as_current_span(name, attributes=self._cost)

    def _verify_sync(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False


def check_password_policy(password: str, email: str) -> None:
    """Refuse weak passwords with one message listing every rule that is not met.

    Raises:
        WeakPassword: if any rule is broken.
    """
    problems: list[str] = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(f"be at least {MIN_PASSWORD_LENGTH} characters long")
    if not any(c.islower() for c in password):
        problems.append("contain a lower-case letter")
    if not any(c.isupper() for c in password):
        problems.append("contain an upper-case letter")
    if not any(c.isdigit() for c in password):
        problems.append("contain a digit")
    lowered = password.casefold()
    local_part = email.partition("@")[0].casefold()
    if email.casefold() in lowered or (len(local_part) >= 3 and local_part in lowered):  # noqa: PLR2004
        problems.append("not contain the email address or its name part")
    if problems:
        raise WeakPassword("The password must " + "; ".join(problems))
