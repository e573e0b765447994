"""Request bodies: a read deadline (408), and a client that drops mid-upload is no server error.

The app is driven directly with an ASGI scope, receive and send, so each test decides exactly what
the client sends and when: part of a body then ``http.disconnect``, or part of a body then nothing.
A real server and raw sockets do the same over TCP in ``test_body_deadline_process.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from tests.factories import SameLoopClient, make_settings
from tests.integration.test_metrics import Scrape, scrape
from todo_service.app import create_app

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

    from litestar import Litestar

    from tests.factories import Client

REGISTER = "/api/v1/auth/register"


def register_body(email: str) -> bytes:
    return json.dumps({"email": email, "password": "Correct-Horse-42", "first_name": "S", "last_name": "L"}).encode()


# These tests share the database with no cleanup: one email per run, another one for the body that arrives.
BODY = register_body(f"slow-{uuid.uuid4().hex[:8]}@example.com")
EMAIL = f"fine-{uuid.uuid4().hex[:8]}@example.com"
ERRORS = "todo_http_requests_error_total"
REQUESTS = "todo_http_requests_total"


@contextlib.asynccontextmanager
async def serve(database_url: str, **overrides: Any) -> AsyncIterator[tuple[Litestar, Client]]:
    app = create_app(make_settings(database_url, **overrides))
    async with SameLoopClient(app=app) as client:
        yield app, client


@contextlib.contextmanager
def every_record(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every record of every logger (the app's logging config replaced the root's handlers, caplog's too)."""
    root = logging.getLogger()
    caplog.handler.setLevel(logging.DEBUG)
    root.addHandler(caplog.handler)
    try:
        yield
    finally:
        root.removeHandler(caplog.handler)


def http_scope(path: str, length: int) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/json"),
            (b"content-length", str(length).encode()),
        ],
        "client": ("127.0.0.1", 50001),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def drive(app: Litestar, receive: Callable[[], Awaitable[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One request straight into the app's ASGI callable; every message it sent."""
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await asyncio.wait_for(app(http_scope(REGISTER, len(BODY)), receive, send), 10)  # type: ignore[arg-type]
    return sent


def response_of(sent: list[dict[str, Any]]) -> tuple[int, dict[str, str], dict[str, Any]]:
    start = next(m for m in sent if m["type"] == "http.response.start")
    headers = {name.decode().lower(): value.decode() for name, value in start["headers"]}
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], headers, json.loads(body)


def server_errors(scraped: Scrape, before: Scrape) -> float:
    return sum(scraped.delta(before, name, path=REGISTER) for name in (ERRORS,)) + sum(
        scraped.delta(before, REQUESTS, path=REGISTER, status_code=str(status)) for status in range(500, 600)
    )


async def test_a_client_that_drops_mid_upload_is_no_server_error(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with serve(database_url) as (app, client):
        messages: list[dict[str, Any]] = [
            {"type": "http.request", "body": BODY[:20], "more_body": True},
            {"type": "http.disconnect"},
        ]

        async def receive() -> dict[str, Any]:
            return messages.pop(0)

        before = await scrape(client)
        with every_record(caplog):
            sent = await drive(app, receive)
        after = await scrape(client)

    status, _, body = response_of(sent)  # sent into the void, but no 500
    assert status == 499
    assert body["error_code"] == "CLIENT_CLOSED_REQUEST"
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert after.delta(before, REQUESTS, path=REGISTER, status_code="499") == 1
    assert server_errors(after, before) == 0
    assert after.delta(before, ERRORS) == 0


async def test_a_body_that_stalls_is_a_408_within_the_deadline(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with serve(database_url, request_body_timeout_seconds=0.3) as (app, client):
        chunks = [BODY[:10], BODY[10:20]]

        async def receive() -> dict[str, Any]:
            if chunks:
                await asyncio.sleep(0.05)
                return {"type": "http.request", "body": chunks.pop(0), "more_body": True}
            await asyncio.sleep(30)  # the rest never comes (cancelled by the deadline)
            return {"type": "http.disconnect"}

        before = await scrape(client)
        started = time.monotonic()
        with every_record(caplog):
            sent = await drive(app, receive)
        elapsed = time.monotonic() - started
        after = await scrape(client)

    status, headers, body = response_of(sent)
    assert status == 408
    assert body["error_code"] == "REQUEST_TIMEOUT"
    assert body["status_code"] == 408
    assert body["path"] == REGISTER
    assert "0.3s" in body["detail"]
    assert headers["connection"] == "close"
    assert 0.3 <= elapsed < 3
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert server_errors(after, before) == 0


async def test_the_deadline_counts_every_wait_not_each_one(database_url: str) -> None:
    """A byte every 0.1 s never waits long for one chunk, but in all it waits past the deadline."""
    async with serve(database_url, request_body_timeout_seconds=0.5) as (app, _):
        remaining = list(BODY)

        async def receive() -> dict[str, Any]:
            await asyncio.sleep(0.1)
            return {"type": "http.request", "body": bytes([remaining.pop(0)]), "more_body": len(remaining) > 0}

        started = time.monotonic()
        sent = await drive(app, receive)
        elapsed = time.monotonic() - started

    assert response_of(sent)[0] == 408
    assert len(remaining) > len(BODY) - 10  # it stopped reading after about 5 bytes
    assert 0.5 <= elapsed < 3


async def test_a_body_in_time_is_served(database_url: str) -> None:
    body_in_time = register_body(EMAIL)
    assert len(body_in_time) == len(BODY)  # the scope's Content-Length
    async with serve(database_url, request_body_timeout_seconds=5) as (app, _):
        messages = [
            {"type": "http.request", "body": body_in_time[:30], "more_body": True},
            {"type": "http.request", "body": body_in_time[30:], "more_body": False},
        ]

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop(0)
            await asyncio.sleep(30)
            return {"type": "http.disconnect"}

        sent = await drive(app, receive)

    status, _, body = response_of(sent)
    assert status == 201, body
    assert body["user"]["email"] == EMAIL
