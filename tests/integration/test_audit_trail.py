"""The audit trail: every security event is recorded, with who and from where, and never a secret."""

from __future__ import annotations

import logging
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import create_async_engine

from tests.factories import PASSWORD, TEST_SECRET, Client
from todo_service.audit.log import AuditLog, Event, Outcome
from todo_service.core.request_context import ClientAddress
from todo_service.db.models import AuditEvent, RefreshToken, Role, User

if TYPE_CHECKING:
    from collections.abc import Awaitable
    from pathlib import Path

    from httpx import Response
    from sqlalchemy.ext.asyncio import AsyncEngine

EVENTS = "/api/v1/admin/audit-events"
LOGIN = "/api/v1/auth/login"
ME = "/api/v1/users/me"
WRONG = "Wrong-Password-1"
NEW_PASSWORD = "Brand-New-Secret-77"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def register(client: Client, email: str) -> dict[str, Any]:
    body = {"email": email, "password": PASSWORD, "first_name": "A", "last_name": "B"}
    response = await client.post("/api/v1/auth/register", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def login(client: Client, email: str, password: str = WRONG) -> Awaitable[Response]:
    return client.post(LOGIN, json={"email": email, "password": password})


def refresh(client: Client, token: str) -> Awaitable[Response]:
    return client.post("/api/v1/auth/refresh", json={"refresh_token": token})


async def past_the_grace(db_engine: AsyncEngine) -> None:
    """Make every exchanged refresh token's first use older than the reuse grace (a reuse is then theft)."""
    async with db_engine.begin() as connection:
        await connection.execute(
            update(RefreshToken)
            .where(RefreshToken.used_at.is_not(None))
            .values(used_at=datetime.now(UTC) - timedelta(minutes=10))
        )


async def make_admin(client: Client, db_engine: AsyncEngine) -> dict[str, str]:
    admin = await register(client, "root@example.com")
    async with db_engine.begin() as connection:
        statement = update(User).where(User.id == uuid.UUID(admin["user"]["id"])).values(role=Role.ADMIN)
        await connection.execute(statement)
    return bearer(admin["access_token"])


async def rows(db_engine: AsyncEngine) -> list[dict[str, Any]]:
    async with db_engine.connect() as connection:
        result = await connection.execute(select(AuditEvent).order_by(AuditEvent.created_at, AuditEvent.id))
        return [dict(row._mapping) for row in result]


async def recorded(db_engine: AsyncEngine, request: Awaitable[Response]) -> tuple[Response, list[dict[str, Any]]]:
    """Send a request; return its response and the audit rows it added (all carrying its request id)."""
    before = {row["id"] for row in await rows(db_engine)}
    response = await request
    added = [row for row in await rows(db_engine) if row["id"] not in before]
    request_ids = {row["request_id"] for row in added}
    assert len(request_ids) <= 1, added
    if "x-request-id" in response.headers and added:
        assert request_ids == {response.headers["x-request-id"]}
    return response, added


async def only_event(db_engine: AsyncEngine, request: Awaitable[Response]) -> tuple[Response, dict[str, Any]]:
    response, added = await recorded(db_engine, request)
    assert len(added) == 1, added
    return response, added[0]


def email_hash(email: str) -> str:
    """The keyed hash the trail stores (hashing needs no engine)."""
    return AuditLog(cast("AsyncEngine", None), TEST_SECRET).email_hash(email)


def check(row: dict[str, Any], event: str, outcome: str, *, user_id: str | None, email: str | None) -> None:
    assert (row["event"], row["outcome"]) == (event, outcome)
    assert row["user_id"] == (uuid.UUID(user_id) if user_id else None)
    assert row["email_hash"] == (email_hash(email) if email else None)
    assert row["ip"] == "testclient"
    assert row["request_id"]
    assert abs(datetime.now(UTC) - row["created_at"]) < timedelta(minutes=1)


async def test_register_login_and_logout_are_recorded(client: Client, db_engine: AsyncEngine) -> None:
    body = {"email": "Ada@Example.com", "password": PASSWORD, "first_name": "A", "last_name": "B"}
    response, registered = await only_event(db_engine, client.post("/api/v1/auth/register", json=body))
    user_id, token = response.json()["user"]["id"], response.json()["access_token"]
    check(registered, "register", "success", user_id=user_id, email="ada@example.com")

    ok, row = await only_event(db_engine, login(client, "ADA@example.com", PASSWORD))
    assert ok.status_code == 200
    check(row, "login_succeeded", "success", user_id=user_id, email="ada@example.com")

    # An error response: its transaction is rolled back, yet the event stays.
    wrong, row = await only_event(db_engine, login(client, "ada@example.com"))
    assert wrong.status_code == 401
    check(row, "login_failed", "failure", user_id=user_id, email="ada@example.com")

    _, row = await only_event(db_engine, login(client, "ghost@example.com"))
    check(row, "login_failed", "failure", user_id=None, email="ghost@example.com")

    out, row = await only_event(db_engine, client.post("/api/v1/auth/logout", headers=bearer(token)))
    assert out.status_code == 200
    check(row, "logout", "success", user_id=user_id, email=None)


async def test_lockout_is_recorded(client: Client, db_engine: AsyncEngine) -> None:
    ada = await register(client, "ada@example.com")
    for _ in range(4):
        await login(client, "ada@example.com")

    fifth, added = await recorded(db_engine, login(client, "ada@example.com"))
    assert fifth.status_code == 401
    added.sort(key=lambda row: str(row["event"]))
    assert [row["event"] for row in added] == ["account_locked", "login_failed"]
    check(added[0], "account_locked", "blocked", user_id=ada["user"]["id"], email="ada@example.com")

    blocked, row = await only_event(db_engine, login(client, "ada@example.com", PASSWORD))
    assert blocked.status_code == 423
    check(row, "login_blocked", "blocked", user_id=None, email="ada@example.com")


async def test_refresh_reuse_and_account_changes_are_recorded(client: Client, db_engine: AsyncEngine) -> None:
    ada = await register(client, "ada@example.com")
    user_id, headers = ada["user"]["id"], bearer(ada["access_token"])
    assert (await refresh(client, ada["refresh_token"])).status_code == 200
    await past_the_grace(db_engine)

    reused, row = await only_event(db_engine, refresh(client, ada["refresh_token"]))
    assert reused.status_code == 401
    check(row, "refresh_reused", "blocked", user_id=user_id, email=None)

    grace = await register(client, "grace@example.com")
    user_id, headers = grace["user"]["id"], bearer(grace["access_token"])
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    changed, row = await only_event(db_engine, client.put("/api/v1/users/me/password", json=body, headers=headers))
    assert changed.status_code == 200
    check(row, "password_changed", "success", user_id=user_id, email=None)

    moved, row = await only_event(db_engine, client.put(ME, json={"email": "Grace.H@example.com"}, headers=headers))
    assert moved.status_code == 200
    check(row, "email_changed", "success", user_id=user_id, email="grace.h@example.com")

    same, added = await recorded(db_engine, client.put(ME, json={"email": "GRACE.H@example.com"}, headers=headers))
    assert same.status_code == 200
    assert added == []


async def test_admin_changes_are_recorded(client: Client, db_engine: AsyncEngine) -> None:
    admin = await make_admin(client, db_engine)
    ada = await register(client, "ada@example.com")
    user_id, url = ada["user"]["id"], f"/api/v1/admin/users/{ada['user']['id']}"

    demoted, row = await only_event(db_engine, client.patch(url, json={"role": "guest"}, headers=admin))
    assert demoted.status_code == 200
    check(row, "role_changed", "success", user_id=user_id, email=None)
    assert "user" in row["detail"]
    assert "guest" in row["detail"]

    _, row = await only_event(db_engine, client.patch(url, json={"is_active": False}, headers=admin))
    check(row, "user_deactivated", "success", user_id=user_id, email=None)
    _, row = await only_event(db_engine, client.patch(url, json={"is_active": True}, headers=admin))
    check(row, "user_reactivated", "success", user_id=user_id, email=None)

    same, added = await recorded(db_engine, client.patch(url, json={"is_active": True, "role": "guest"}, headers=admin))
    assert same.status_code == 200
    assert added == []


async def test_no_row_ever_holds_a_password_a_token_or_an_email(client: Client, db_engine: AsyncEngine) -> None:
    ada = await register(client, "ada@example.com")
    secrets = [PASSWORD, NEW_PASSWORD, WRONG, ada["access_token"], ada["refresh_token"]]
    rotated = (await refresh(client, ada["refresh_token"])).json()
    secrets += [rotated["access_token"], rotated["refresh_token"]]
    await past_the_grace(db_engine)
    await refresh(client, ada["refresh_token"])  # reuse
    for _ in range(6):
        await login(client, "ada@example.com")
    second = await register(client, "grace@example.com")
    secrets += [second["access_token"], second["refresh_token"]]
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    await client.put("/api/v1/users/me/password", json=body, headers=bearer(second["access_token"]))
    await client.post("/api/v1/auth/logout", headers=bearer(second["access_token"]))

    trail = await rows(db_engine)

    assert len(trail) >= 12
    for row in trail:
        for value in row.values():
            text = str(value)
            assert not any(secret in text for secret in secrets), row
            assert "example.com" not in text.lower()


async def test_admin_reads_the_trail_newest_first_with_filters(client: Client, db_engine: AsyncEngine) -> None:
    admin = await make_admin(client, db_engine)
    ada = await register(client, "ada@example.com")
    await login(client, "ada@example.com")
    await login(client, "ghost@example.com")

    response = await client.get(EVENTS, headers=admin)
    assert response.status_code == 200, response.text
    page = response.json()
    stored = await rows(db_engine)
    assert page["total"] == len(stored) == 4
    assert [item["id"] for item in page["items"]] == [str(row["id"]) for row in reversed(stored)]
    assert set(page["items"][0]) == {
        "id",
        "created_at",
        "event",
        "outcome",
        "user_id",
        "email_hash",
        "ip",
        "request_id",
        "detail",
    }

    failed = (await client.get(EVENTS, params={"event": "login_failed"}, headers=admin)).json()
    assert [item["event"] for item in failed["items"]] == ["login_failed", "login_failed"]
    mine = (await client.get(EVENTS, params={"user_id": ada["user"]["id"]}, headers=admin)).json()
    assert sorted(item["event"] for item in mine["items"]) == ["login_failed", "register"]
    ghost = (await client.get(EVENTS, params={"email": "GHOST@example.com"}, headers=admin)).json()
    assert [(item["event"], item["user_id"]) for item in ghost["items"]] == [("login_failed", None)]
    assert ghost["items"][0]["email_hash"] == email_hash("ghost@example.com")
    assert re.fullmatch(r"[0-9a-f]{64}", ghost["items"][0]["email_hash"])


async def test_the_trail_is_paginated(client: Client, db_engine: AsyncEngine) -> None:
    admin = await make_admin(client, db_engine)
    for _ in range(4):
        await login(client, "ghost@example.com")

    pages = [(await client.get(EVENTS, params={"limit": 2, "page": n}, headers=admin)).json() for n in (1, 2, 3, 4)]

    assert [(p["total"], p["page"], p["limit"], p["pages"]) for p in pages] == [(5, n, 2, 3) for n in (1, 2, 3, 4)]
    assert [len(p["items"]) for p in pages] == [2, 2, 1, 0]
    ids = [item["id"] for p in pages for item in p["items"]]
    assert ids == [str(row["id"]) for row in reversed(await rows(db_engine))]


@pytest.mark.parametrize("role", [Role.USER, Role.GUEST])
async def test_only_admins_read_the_trail(client: Client, db_engine: AsyncEngine, role: Role) -> None:
    ada = await register(client, "ada@example.com")
    async with db_engine.begin() as connection:
        await connection.execute(update(User).where(User.id == uuid.UUID(ada["user"]["id"])).values(role=role))

    response = await client.get(EVENTS, headers=bearer(ada["access_token"]))

    assert response.status_code == 403, response.text
    assert response.json()["error_code"] == "FORBIDDEN"
    assert "items" not in response.json()


async def test_the_trail_needs_a_token(client: Client) -> None:
    response = await client.get(EVENTS)

    assert response.status_code == 401
    assert response.json()["error_code"] == "NOT_AUTHENTICATED"


@pytest.mark.parametrize("query", [{"event": "nope"}, {"user_id": "not-a-uuid"}, {"page": "0"}, {"limit": "101"}])
async def test_bad_filters_are_422(client: Client, db_engine: AsyncEngine, query: dict[str, str]) -> None:
    admin = await make_admin(client, db_engine)

    response = await client.get(EVENTS, params=query, headers=admin)

    assert response.status_code == 422, response.text
    assert response.json()["error_code"] == "VALIDATION_ERROR"


async def test_the_clients_request_id_is_recorded(client: Client, db_engine: AsyncEngine) -> None:
    request = client.post(
        LOGIN, json={"email": "ghost@example.com", "password": WRONG}, headers={"X-Request-ID": "trace-42.a"}
    )

    response, row = await only_event(db_engine, request)

    assert response.headers["x-request-id"] == "trace-42.a"
    assert row["request_id"] == "trace-42.a"


def test_a_request_keeps_one_trail() -> None:
    log = AuditLog(cast("AsyncEngine", None), TEST_SECRET)
    scope: dict[str, Any] = {"type": "http", "client": ("203.0.113.9", 5000), "state": {"request_id": "r-1"}}

    first = log.trail(scope, ClientAddress(()))  # type: ignore[arg-type]
    second = log.trail(scope, ClientAddress(()))  # type: ignore[arg-type]

    assert second is first
    assert (first.ip, first.request_id) == ("203.0.113.9", "r-1")


async def test_a_lost_event_is_logged_never_raised(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'no-tables.db'}")  # no audit_events table
    log = AuditLog(engine, TEST_SECRET)
    trail = log.offline_trail("test")
    trail.record(Event.LOGOUT, Outcome.SUCCESS, detail="x")
    audit_logger = logging.getLogger("todo_service.audit.log")
    audit_logger.addHandler(caplog.handler)  # the app's logging config may have replaced the root handlers
    try:
        await log.flush_trail(trail)
    finally:
        audit_logger.removeHandler(caplog.handler)
        await engine.dispose()

    assert trail.pending == []
    assert any(
        "could not write 1 audit events" in r.getMessage() and "logout" in r.getMessage() for r in caplog.records
    )
