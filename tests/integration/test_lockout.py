"""Account lockout: repeated failed logins for one email lock it for a while, on every worker alike."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from tests.factories import PASSWORD, TEST_SECRET, Account, Client, SameLoopClient, make_settings, register
from todo_service.app import create_app
from todo_service.db.models import LoginFailure
from todo_service.lib.audit import AuditLog

if TYPE_CHECKING:
    from httpx import Response
    from sqlalchemy.ext.asyncio import AsyncEngine

LOGIN = "/api/v1/auth/login"
WRONG = "Wrong-Password-1"
THRESHOLD = 5  # Settings.lockout_threshold
DURATION = 900  # Settings.lockout_duration_seconds
WINDOW = 900  # Settings.lockout_window_seconds
UNKNOWN = "nobody@example.com"


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
