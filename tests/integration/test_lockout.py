"""Account lockout: repeated failed logins for one email lock it for a while, on every worker alike."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import PASSWORD, TEST_SECRET, Account, Client, SameLoopClient, make_settings, register
from todo_service.app import create_app
from todo_service.audit.log import AuditLog
from todo_service.db.models import AuditEvent, LoginFailure
from todo_service.security.lockout import Lockout, LockoutPolicy

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from httpx import Response
    from sqlalchemy.ext.asyncio import AsyncEngine

LOGIN = "/api/v1/auth/login"
WRONG = "Wrong-Password-1"
THRESHOLD = 5  # Settings.lockout_threshold
DURATION = 900  # Settings.lockout_duration_seconds
WINDOW = 900  # Settings.lockout_window_seconds
UNKNOWN = "nobody@example.com"
T = TypeVar("T")


async def attempt(client: Client, email: str, password: str = WRONG) -> Response:
    return await client.post(LOGIN, json={"email": email, "password": password})


async def fail(client: Client, email: str, times: int) -> None:
    for _ in range(times):
        response = await attempt(client, email)
        assert response.status_code == 401, response.text
        assert response.json()["error_code"] == "INVALID_CREDENTIALS"


def assert_locked(response: Response, max_seconds: int = DURATION) -> int:
    assert response.status_code == 423, response.text
    body = response.json()
    assert body["error_code"] == "ACCOUNT_LOCKED"
    assert body["status_code"] == 423
    assert body["path"] == LOGIN
    assert body["detail"]
    assert "access_token" not in body
    seconds = int(response.headers["Retry-After"])
    assert 0 < seconds <= max_seconds
    return seconds


def email_hash(db_engine: AsyncEngine, email: str) -> str:
    return AuditLog(db_engine, TEST_SECRET).email_hash(email)


async def failure_rows(db_engine: AsyncEngine) -> list[Any]:
    async with db_engine.connect() as connection:
        return list((await connection.execute(select(LoginFailure))).all())


async def set_failure_times(db_engine: AsyncEngine, email: str, **values: datetime) -> None:
    async with db_engine.begin() as connection:
        statement = update(LoginFailure).where(LoginFailure.email_hash == email_hash(db_engine, email))
        assert (await connection.execute(statement.values(**values))).rowcount == 1


async def test_threshold_failures_lock_even_the_right_password(client: Client, account: Account) -> None:
    await fail(client, account.email, THRESHOLD)

    seconds = assert_locked(await attempt(client, account.email, PASSWORD))

    assert seconds >= DURATION - 5
    assert_locked(await attempt(client, account.email, WRONG))


async def test_fewer_failures_than_the_threshold_do_not_lock(client: Client, account: Account) -> None:
    await fail(client, account.email, THRESHOLD - 1)

    assert (await attempt(client, account.email, PASSWORD)).status_code == 200


async def test_unknown_email_locks_exactly_like_a_known_one(client: Client, account: Account) -> None:
    known: list[Response] = []
    unknown: list[Response] = []
    for _ in range(THRESHOLD + 1):
        known.append(await attempt(client, account.email))
        unknown.append(await attempt(client, UNKNOWN))

    for mine, theirs in zip(known, unknown, strict=True):
        assert mine.status_code == theirs.status_code
        assert {k: v for k, v in mine.json().items() if k != "timestamp"} == {
            k: v for k, v in theirs.json().items() if k != "timestamp"
        }
        assert set(mine.headers) == set(theirs.headers)
    assert abs(assert_locked(known[-1]) - assert_locked(unknown[-1])) <= 1
    assert_locked(await attempt(client, UNKNOWN, PASSWORD))


async def test_a_success_resets_the_count(client: Client, account: Account, db_engine: AsyncEngine) -> None:
    await fail(client, account.email, THRESHOLD - 1)
    assert (await attempt(client, account.email, PASSWORD)).status_code == 200
    assert await failure_rows(db_engine) == []

    await fail(client, account.email, THRESHOLD - 1)

    assert [row.failures for row in await failure_rows(db_engine)] == [THRESHOLD - 1]
    assert (await attempt(client, account.email, PASSWORD)).status_code == 200


async def test_failures_outside_the_window_do_not_add_up(
    client: Client, account: Account, db_engine: AsyncEngine
) -> None:
    await fail(client, account.email, THRESHOLD - 1)
    long_ago = datetime.now(UTC) - timedelta(seconds=WINDOW + 5)
    await set_failure_times(db_engine, account.email, first_failed_at=long_ago)

    await fail(client, account.email, THRESHOLD - 1)

    assert [row.failures for row in await failure_rows(db_engine)] == [THRESHOLD - 1]
    assert (await attempt(client, account.email, PASSWORD)).status_code == 200


async def test_the_lock_expires(client: Client, account: Account, db_engine: AsyncEngine) -> None:
    await fail(client, account.email, THRESHOLD)
    assert_locked(await attempt(client, account.email, PASSWORD))
    await set_failure_times(db_engine, account.email, locked_until=datetime.now(UTC) - timedelta(seconds=1))

    # One more failure after the lock does not lock again at once: the count started afresh.
    assert (await attempt(client, account.email)).status_code == 401
    response = await attempt(client, account.email, PASSWORD)

    assert response.status_code == 200, response.text
    assert response.json()["user"]["id"] == account.id
    assert await failure_rows(db_engine) == []


async def test_attempts_during_a_lock_neither_extend_it_nor_count(
    client: Client, account: Account, db_engine: AsyncEngine
) -> None:
    await fail(client, account.email, THRESHOLD)
    [before] = await failure_rows(db_engine)

    for password in (WRONG, PASSWORD, WRONG):
        assert_locked(await attempt(client, account.email, password))

    assert await failure_rows(db_engine) == [before]


async def test_state_is_a_hashed_row_in_login_failures(
    client: Client, account: Account, db_engine: AsyncEngine
) -> None:
    before = datetime.now(UTC)
    await fail(client, account.email.upper(), 2)  # the address in another case counts for the same email
    [row] = await failure_rows(db_engine)
    assert re.fullmatch(r"[0-9a-f]{64}", row.email_hash)
    assert row.email_hash == email_hash(db_engine, account.email)
    assert row.failures == 2
    assert row.locked_until is None
    assert before - timedelta(seconds=1) <= row.first_failed_at <= datetime.now(UTC)
    assert not any("example.com" in str(value).lower() for value in row)

    await fail(client, account.email, THRESHOLD - 2)

    [locked] = await failure_rows(db_engine)
    expected = datetime.now(UTC) + timedelta(seconds=DURATION)
    assert expected - timedelta(seconds=10) <= locked.locked_until <= expected
    assert not any("example.com" in str(value).lower() for value in locked)


async def test_one_locked_email_does_not_lock_another(client: Client, account: Account, other_account: Account) -> None:
    await fail(client, account.email, THRESHOLD)

    assert_locked(await attempt(client, account.email, PASSWORD))
    assert (await attempt(client, other_account.email, PASSWORD)).status_code == 200


async def test_every_app_instance_sees_the_same_lock(client: Client, database_url: str) -> None:
    ada = await register(client, email="ada@example.com")
    bob = await register(client, email="bob@example.com")
    second_app = create_app(make_settings(database_url))
    async with SameLoopClient(app=second_app) as other_worker:
        await fail(client, ada.email, THRESHOLD)
        assert_locked(await attempt(other_worker, ada.email, PASSWORD))

        # Failures spread over both instances add up.
        await fail(client, bob.email, THRESHOLD - 2)
        await fail(other_worker, bob.email, 2)
        assert_locked(await attempt(client, bob.email, PASSWORD))
        assert_locked(await attempt(other_worker, bob.email, PASSWORD))


async def test_threshold_and_duration_are_configurable(client: Client, database_url: str) -> None:
    settings = make_settings(database_url, lockout_threshold=2, lockout_window_seconds=60, lockout_duration_seconds=30)
    async with SameLoopClient(app=create_app(settings)) as small:
        account = await register(small, email="carol@example.com")
        await fail(small, account.email, 2)

        assert assert_locked(await attempt(small, account.email, PASSWORD), max_seconds=30) >= 25


# Concurrency: however many guesses arrive at once, at most THRESHOLD are evaluated in a window.

BURST = 40


async def audit_counts(db_engine: AsyncEngine, email: str) -> dict[str, int]:
    """How many audit events of each kind name this email (each LOGIN_* one is one evaluated hash)."""
    statement = (
        select(AuditEvent.event, func.count())
        .where(AuditEvent.email_hash == email_hash(db_engine, email))
        .group_by(AuditEvent.event)
    )
    async with db_engine.connect() as connection:
        return {str(event): int(count) for event, count in (await connection.execute(statement)).all()}


def error_codes(responses: list[Response]) -> dict[str, int]:
    codes: dict[str, int] = {}
    for response in responses:
        code = response.json().get("error_code", str(response.status_code))
        codes[code] = codes.get(code, 0) + 1
    return codes


async def test_a_burst_of_wrong_guesses_gets_at_most_the_threshold_evaluated(
    client: Client, account: Account, db_engine: AsyncEngine
) -> None:
    responses = await asyncio.gather(*(attempt(client, account.email) for _ in range(BURST)))

    # Exactly THRESHOLD guesses were evaluated (a password hash verified); all the others refused unseen.
    assert error_codes(responses) == {"INVALID_CREDENTIALS": THRESHOLD, "ACCOUNT_LOCKED": BURST - THRESHOLD}
    for response in responses:
        if response.status_code == 423:
            assert_locked(response, max_seconds=max(DURATION, WINDOW))
    events = await audit_counts(db_engine, account.email)
    assert events.get("login_failed") == THRESHOLD
    assert events.get("login_blocked") == BURST - THRESHOLD
    assert events.get("account_locked") == 1
    assert "login_succeeded" not in events
    # The right password is refused now, for the whole lock.
    assert assert_locked(await attempt(client, account.email, PASSWORD)) >= DURATION - 10
    [row] = await failure_rows(db_engine)
    assert row.locked_until is not None


async def test_the_right_password_inside_a_burst_does_not_reset_the_count(
    client: Client, account: Account, db_engine: AsyncEngine
) -> None:
    guesses = [attempt(client, account.email) for _ in range(BURST)]
    guesses.insert(BURST // 2, attempt(client, account.email, PASSWORD))

    responses = await asyncio.gather(*guesses)

    codes = error_codes(responses)
    evaluated = codes.get("INVALID_CREDENTIALS", 0) + codes.get("200", 0)
    assert evaluated == THRESHOLD
    assert codes.get("ACCOUNT_LOCKED") == BURST + 1 - THRESHOLD
    events = await audit_counts(db_engine, account.email)
    assert events.get("login_failed", 0) + events.get("login_succeeded", 0) == THRESHOLD
    assert_locked(await attempt(client, account.email, PASSWORD))


async def test_a_burst_of_unknown_email_guesses_is_bounded_the_same_way(client: Client, db_engine: AsyncEngine) -> None:
    responses = await asyncio.gather(*(attempt(client, UNKNOWN) for _ in range(BURST)))

    assert error_codes(responses) == {"INVALID_CREDENTIALS": THRESHOLD, "ACCOUNT_LOCKED": BURST - THRESHOLD}
    assert (await audit_counts(db_engine, UNKNOWN)).get("login_failed") == THRESHOLD
    assert_locked(await attempt(client, UNKNOWN, PASSWORD))


async def test_bursts_on_two_app_instances_add_up(client: Client, account: Account, database_url: str) -> None:
    async with SameLoopClient(app=create_app(make_settings(database_url))) as other_worker:
        half = BURST // 2
        responses = await asyncio.gather(
            *(attempt(client, account.email) for _ in range(half)),
            *(attempt(other_worker, account.email) for _ in range(half)),
        )

        assert error_codes(responses) == {"INVALID_CREDENTIALS": THRESHOLD, "ACCOUNT_LOCKED": BURST - THRESHOLD}
        assert_locked(await attempt(other_worker, account.email, PASSWORD))
        assert_locked(await attempt(client, account.email, PASSWORD))


# Settling attempts, on the real tables: what a success may clear, and what a late failure restores.

POLICY = LockoutPolicy(threshold=THRESHOLD, window=timedelta(seconds=WINDOW), duration=timedelta(seconds=DURATION))
KEY = "a" * 64


async def settle(db_engine: AsyncEngine, action: Callable[[Lockout], Awaitable[T]]) -> T:
    async with AsyncSession(db_engine) as db, db.begin():
        return await action(Lockout(db, POLICY))


@pytest.mark.usefixtures("client")  # empty tables
async def test_a_success_clears_nothing_once_a_later_attempt_was_reserved(db_engine: AsyncEngine) -> None:
    first = await settle(db_engine, lambda lockout: lockout.reserve(KEY))
    second = await settle(db_engine, lambda lockout: lockout.reserve(KEY))
    assert (first.number, second.number, first.refused) == (1, 2, False)

    await settle(db_engine, lambda lockout: lockout.clear(KEY, first))

    assert [row.failures for row in await failure_rows(db_engine)] == [2]


@pytest.mark.usefixtures("client")
async def test_a_failure_settled_after_a_success_cleared_its_window_counts_again(db_engine: AsyncEngine) -> None:
    guess = await settle(db_engine, lambda lockout: lockout.reserve(KEY))
    owner = await settle(db_engine, lambda lockout: lockout.reserve(KEY))
    await settle(db_engine, lambda lockout: lockout.clear(KEY, owner))  # the latest attempt: clears
    assert await failure_rows(db_engine) == []

    assert not await settle(db_engine, lambda lockout: lockout.record_failure(KEY, guess))

    [row] = await failure_rows(db_engine)
    assert (row.failures, row.locked_until) == (1, None)
    assert row.first_failed_at > guess.window_start
    # A second late failure of the old window adds to the new one.
    await settle(db_engine, lambda lockout: lockout.record_failure(KEY, guess))
    assert [row.failures for row in await failure_rows(db_engine)] == [2]


@pytest.mark.usefixtures("client")
async def test_the_lock_is_reported_once_and_a_success_does_not_lift_it(db_engine: AsyncEngine) -> None:
    attempts = [await settle(db_engine, lambda lockout: lockout.reserve(KEY)) for _ in range(THRESHOLD)]
    assert [a.number for a in attempts] == list(range(1, THRESHOLD + 1))
    assert not any(a.refused for a in attempts)
    overflow = await settle(db_engine, lambda lockout: lockout.reserve(KEY))
    assert overflow.refused
    assert 0 < overflow.seconds_locked <= WINDOW

    first_locks = await settle(db_engine, lambda lockout: lockout.record_failure(KEY, attempts[0]))
    second_locks = await settle(db_engine, lambda lockout: lockout.record_failure(KEY, attempts[1]))
    await settle(db_engine, lambda lockout: lockout.clear(KEY, attempts[-1]))

    assert (first_locks, second_locks) == (True, False)
    [row] = await failure_rows(db_engine)
    assert row.locked_until is not None
    assert row.failures == THRESHOLD + 1


@pytest.mark.usefixtures("client")
async def test_a_new_window_starts_after_the_old_one(db_engine: AsyncEngine) -> None:
    async with db_engine.begin() as connection:
        long_ago = datetime.now(UTC) - timedelta(seconds=WINDOW + 1)
        await connection.execute(
            insert(LoginFailure).values(email_hash=KEY, failures=THRESHOLD + 3, first_failed_at=long_ago)
        )

    assert await settle(db_engine, lambda lockout: lockout.seconds_locked(KEY)) == 0
    fresh = await settle(db_engine, lambda lockout: lockout.reserve(KEY))

    assert (fresh.number, fresh.refused) == (1, False)
    assert fresh.window_start > long_ago
