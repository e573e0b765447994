"""argon2id hashing off the event loop, and the password policy."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pytest
from argon2 import PasswordHasher, Type

from todo_service.security.errors import WeakPassword
from todo_service.security.passwords import (
    HASHING_NICENESS,
    MIN_PASSWORD_LENGTH,
    Passwords,
    check_password_policy,
    lower_thread_priority,
    usable_cores,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

CHEAP: dict[str, Any] = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}
GOOD = "Correct-Horse-42"


@pytest.fixture
def passwords() -> Iterator[Passwords]:
    hasher = Passwords(**CHEAP)
    yield hasher
    hasher.close()


def policy_message(password: str, email: str = "ada@example.com") -> str:
    with pytest.raises(WeakPassword) as caught:
        check_password_policy(password, email)
    return caught.value.detail


class ThreadRecordingHasher(PasswordHasher):
    """argon2's hasher, noting which thread each call ran on."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.threads: list[str] = []

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        self.threads.append(threading.current_thread().name)
        return super().hash(password, salt=salt)

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:  # noqa: A002  (argon2's name)
        self.threads.append(threading.current_thread().name)
        return super().verify(hash, password)


# --- the policy -------------------------------------------------------------------------------------


@pytest.mark.parametrize("password", [GOOD, "Abcdefg1", "ÄÖÜäöü12", "Zz9" * 40])
def test_a_strong_password_passes(password: str) -> None:
    check_password_policy(password, "ada@example.com")


def test_weak_password_is_a_422_weak_password_error() -> None:
    with pytest.raises(WeakPassword) as caught:
        check_password_policy("short", "ada@example.com")
    assert caught.value.status_code == 422
    assert caught.value.error_code == "WEAK_PASSWORD"


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("Abcdef1", f"be at least {MIN_PASSWORD_LENGTH} characters long"),
        ("ABCDEFG1", "contain a lower-case letter"),
        ("abcdefg1", "contain an upper-case letter"),
        ("Abcdefgh", "contain a digit"),
        ("Xada@example.com1", "not contain the email address or its name part"),
        ("Xada@EXAMPLE.com1", "not contain the email address or its name part"),
        ("My-Ada-Secret-1", "not contain the email address or its name part"),
    ],
)
def test_each_rule_on_its_own(password: str, rule: str) -> None:
    assert policy_message(password) == f"The password must {rule}"


def test_the_message_lists_every_broken_rule() -> None:
    assert policy_message("ada") == (
        "The password must be at least 8 characters long; contain an upper-case letter; contain a digit; "
        "not contain the email address or its name part"
    )


def test_an_empty_password_breaks_all_character_rules() -> None:
    message = policy_message("")
    for rule in ("at least 8", "lower-case", "upper-case", "digit"):
        assert rule in message
    assert "email" not in message


def test_a_name_part_shorter_than_three_characters_is_not_checked() -> None:
    check_password_policy("Al-Secure-99", "al@example.com")
    assert "email" in policy_message("Xal@example.com9", "al@example.com")


# --- hashing ----------------------------------------------------------------------------------------


async def test_hash_is_argon2id_with_the_configured_parameters(passwords: Passwords) -> None:
    hashed = await passwords.hash(GOOD)

    assert hashed.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert GOOD not in hashed
    assert await passwords.hash(GOOD) != hashed  # salted


async def test_verify_accepts_the_password_and_refuses_others(passwords: Passwords) -> None:
    hashed = await passwords.hash(GOOD)

    assert await passwords.verify(hashed, GOOD) is True
    assert await passwords.verify(hashed, GOOD.lower()) is False
    assert await passwords.verify(hashed, "") is False


@pytest.mark.parametrize("stored", ["garbage", "", "$argon2id$v=19$m=8,t=1,p=1$bm90LWJhc2U2NA"])
async def test_verify_against_a_malformed_hash_is_false(passwords: Passwords, stored: str) -> None:
    assert await passwords.verify(stored, GOOD) is False


async def test_verify_reads_hashes_made_with_other_parameters(passwords: Passwords) -> None:
    other = PasswordHasher(time_cost=2, memory_cost=16, parallelism=2, type=Type.ID).hash(GOOD)

    assert await passwords.verify(other, GOOD) is True


async def test_verify_nothing_does_one_verification_with_a_dummy_hash(passwords: Passwords) -> None:
    recorder = ThreadRecordingHasher(**CHEAP, type=Type.ID)
    passwords._hasher = recorder

    await passwords.verify_nothing(GOOD)
    dummy = passwords._dummy_hash
    assert dummy is not None
    assert dummy.startswith("$argon2id$")
    assert len(recorder.threads) == 2  # made the dummy hash, then verified against it

    await passwords.verify_nothing("anything")
    assert passwords._dummy_hash is dummy
    assert len(recorder.threads) == 3  # the dummy hash is made once


async def test_prepare_makes_the_dummy_hash_so_no_login_pays_for_it(passwords: Passwords) -> None:
    recorder = ThreadRecordingHasher(**CHEAP, type=Type.ID)
    passwords._hasher = recorder

    await passwords.prepare()
    assert len(recorder.threads) == 1
    await passwords.prepare()
    assert len(recorder.threads) == 1  # made once

    await passwords.verify_nothing(GOOD)
    assert len(recorder.threads) == 2  # a single verification


async def test_needs_rehash(passwords: Passwords) -> None:
    current = await passwords.hash(GOOD)
    stronger = PasswordHasher(time_cost=2, memory_cost=8, parallelism=1, type=Type.ID).hash(GOOD)
    argon2i = PasswordHasher(**CHEAP, type=Type.I).hash(GOOD)

    assert passwords.needs_rehash(current) is False
    assert passwords.needs_rehash(stronger) is True
    assert passwords.needs_rehash(argon2i) is True
    assert passwords.needs_rehash("garbage") is True


async def test_hashing_and_verifying_run_on_the_argon2_pool_not_the_event_loop(passwords: Passwords) -> None:
    recorder = ThreadRecordingHasher(**CHEAP, type=Type.ID)
    passwords._hasher = recorder
    loop_thread = threading.current_thread().name

    hashed = await passwords.hash(GOOD)
    assert await passwords.verify(hashed, GOOD)

    assert len(recorder.threads) == 2
    assert all(name.startswith("argon2") for name in recorder.threads)
    assert loop_thread not in recorder.threads


async def test_the_event_loop_keeps_running_while_hashing() -> None:
    slow = Passwords(time_cost=3, memory_cost=8192, parallelism=1)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(tick())
    try:
        await slow.hash(GOOD)
    finally:
        ticker.cancel()
        slow.close()
    assert ticks > 1


async def test_close_stops_the_pool(passwords: Passwords) -> None:
    hashed = await passwords.hash(GOOD)

    passwords.close()

    with pytest.raises(RuntimeError):
        await passwords.verify(hashed, GOOD)


# --- the hashing threads: one per usable core, at the lowest priority ------------------------------


def nice_of_thread(native_id: int) -> int:
    """The nice value of one thread, from /proc (field 19 of its stat)."""
    stat = Path(f"/proc/self/task/{native_id}/stat").read_text()
    return int(stat.rpartition(")")[2].split()[16])


async def test_hashing_threads_run_at_the_lowest_priority_and_the_loop_does_not() -> None:
    seen: list[int] = []

    class Recording(PasswordHasher):
        def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
            seen.append(nice_of_thread(threading.get_native_id()))
            return super().hash(password, salt=salt)

    passwords = Passwords(**CHEAP)
    passwords._hasher = Recording(**CHEAP, type=Type.ID)
    try:
        await passwords.hash(GOOD)
    finally:
        passwords.close()
    assert seen == [HASHING_NICENESS]
    assert nice_of_thread(threading.get_native_id()) == 0  # the event loop's thread is left alone


def test_one_hashing_thread_per_core_the_process_may_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: {1})  # as under `taskset -c 1`
    assert usable_cores() == 1
    pinned = Passwords(**CHEAP)
    assert pinned._pool._max_workers == 1
    pinned.close()
    monkeypatch.delattr(os, "sched_getaffinity")  # macOS has none: every core counts
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert usable_cores() == 6


def test_priority_is_left_alone_where_it_cannot_be_lowered(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[tuple[int, int, int]] = []

    def refuse(which: int, who: int, value: int) -> None:
        calls.append((which, who, value))
        raise PermissionError

    monkeypatch.setattr(os, "setpriority", refuse)
    with caplog.at_level(logging.WARNING):
        lower_thread_priority()
    assert calls == [(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICENESS)]
    assert "could not lower the priority" in caplog.text

    calls.clear()
    monkeypatch.setattr(sys, "platform", "darwin")  # per-thread priority is Linux's
    lower_thread_priority()
    assert calls == []
