"""Every 4xx/5xx answers ``{detail, error_code, timestamp, path, status_code}`` (plus ``errors`` for bad input)."""

from __future__ import annotations

import contextlib
import logging
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import jwt
import pytest
from litestar import Litestar, get
from litestar.params import Parameter

from tests.factories import TEST_SECRET, Account, Client, SameLoopClient, make_settings
from todo_service.app import create_app
from todo_service.http.errors import exception_to_response

if TYPE_CHECKING:
    from collections.abc import Iterator

    import httpx

ERROR_KEYS = {"detail", "error_code", "timestamp", "path", "status_code"}
ISO_8601 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
LEAKS = ("Traceback", "sqlalchemy", "asyncpg", "SELECT", "Connect", "secret-table")
MAX_BODY = 64 * 1024  # Settings.max_body_bytes, which make_settings keeps


def assert_error(response: httpx.Response, status: int, code: str, path: str) -> dict[str, Any]:
    """Check the contract's error body and return it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) - {"errors"} == ERROR_KEYS, body
    assert body["error_code"] == code
    assert body["status_code"] == status
    assert body["path"] == path
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert ISO_8601.match(body["timestamp"]), body["timestamp"]
    stamped = datetime.fromisoformat(body["timestamp"])
    assert stamped.tzinfo is not None
    assert abs(datetime.now(UTC) - stamped) < timedelta(minutes=1)
    for item in body.get("errors", []):
        assert set(item) <= {"field", "message", "source"}
        assert isinstance(item["field"], str)
        assert isinstance(item["message"], str)
    return body


def bearer_for_unknown_session() -> dict[str, str]:
    """A well-signed token (the tests' key) whose user and session exist nowhere."""
    now = datetime.now(UTC)
    claims = {
        "sub": str(uuid.uuid4()),
        "sid": str(uuid.uuid4()),
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + timedelta(minutes=5),
    }
    return {"Authorization": f"Bearer {jwt.encode(claims, TEST_SECRET, algorithm='HS256')}"}


@contextlib.contextmanager
def service_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Capture the service's own log records.

    The app's logging config replaces the root logger's handlers at start, caplog's among them, so
    caplog's handler is attached to the ``todo_service`` logger itself for the duration.
    """
    service_logger = logging.getLogger("todo_service")
    caplog.handler.setLevel(logging.WARNING)
    service_logger.addHandler(caplog.handler)
    try:
        yield
    finally:
        service_logger.removeHandler(caplog.handler)


def error_records(caplog: pytest.LogCaptureFixture, path: str) -> list[logging.LogRecord]:
    """The service's ERROR records that name ``path``."""
    return [
        r
        for r in caplog.records
        if r.name.startswith("todo_service") and r.levelno >= logging.ERROR and path in r.getMessage()
    ]


@pytest.mark.parametrize("path", ["/nope", "/api/v1/nope", "/api/v1/users/me/extra", "/api/docs/nope"])
async def test_unknown_route_is_404_not_found(client: Client, path: str) -> None:
    assert_error(await client.get(path), 404, "NOT_FOUND", path)


async def test_unknown_route_with_a_body_is_404(client: Client) -> None:
    assert_error(await client.post("/api/v1/things", json={"a": 1}), 404, "NOT_FOUND", "/api/v1/things")


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [("DELETE", "/api/v1/health", {"GET"}), ("PATCH", "/api/v1/users/me", {"GET", "PUT"})],
)
async def test_wrong_method_is_405_with_allow(client: Client, method: str, path: str, allowed: set[str]) -> None:
    response = await client.request(method, path)
    assert_error(response, 405, "METHOD_NOT_ALLOWED", path)
    assert allowed <= {m.strip() for m in response.headers["allow"].split(",")}
    assert method not in response.headers["allow"]


@pytest.mark.parametrize("content", [b'{"email": "a@example.com", ', b"hello", b"{'single': 'quotes'}"])
async def test_malformed_json_is_400(client: Client, content: bytes) -> None:
    response = await client.post("/api/v1/auth/login", content=content, headers={"Content-Type": "application/json"})
    body = assert_error(response, 400, "MALFORMED_REQUEST", "/api/v1/auth/login")
    assert "errors" not in body


async def test_malformed_json_on_a_protected_route_is_400(client: Client, account: Account) -> None:
    headers = {**account.headers, "Content-Type": "application/json"}
    response = await client.put("/api/v1/users/me", content=b"{", headers=headers)
    assert_error(response, 400, "MALFORMED_REQUEST", "/api/v1/users/me")


async def test_oversized_body_is_413(client: Client) -> None:
    content = b'{"email": "' + b"a" * (MAX_BODY + 1) + b'"}'
    response = await client.post("/api/v1/auth/login", content=content, headers={"Content-Type": "application/json"})
    assert_error(response, 413, "PAYLOAD_TOO_LARGE", "/api/v1/auth/login")


async def test_body_under_the_limit_is_read(client: Client) -> None:
    content = b'{"email": "' + b"a" * (MAX_BODY // 2) + b'", "password": "x"}'
    response = await client.post("/api/v1/auth/login", content=content, headers={"Content-Type": "application/json"})
    assert_error(response, 422, "VALIDATION_ERROR", "/api/v1/auth/login")


async def test_oversized_body_behind_a_small_content_length_is_413(client: Client) -> None:
    content = b'{"email": "' + b"a" * (MAX_BODY + 1) + b'"}'
    headers = {"Content-Type": "application/json", "Content-Length": "10"}
    response = await client.post("/api/v1/auth/login", content=content, headers=headers)
    assert_error(response, 413, "PAYLOAD_TOO_LARGE", "/api/v1/auth/login")


async def test_missing_token_is_401_with_challenge(client: Client) -> None:
    response = await client.get("/api/v1/users/me")
    assert_error(response, 401, "NOT_AUTHENTICATED", "/api/v1/users/me")
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_body_validation_names_each_field(client: Client) -> None:
    response = await client.post("/api/v1/auth/register", json={"email": "not-an-email", "password": 5})
    body = assert_error(response, 422, "VALIDATION_ERROR", "/api/v1/auth/register")
    assert body["errors"]
    assert {e["source"] for e in body["errors"]} == {"body"}
    assert body["errors"][0]["field"] in body["detail"]
    assert {e["field"] for e in body["errors"]} & {"email", "password", "first_name", "last_name"}


@pytest.mark.parametrize(("query", "field"), [("limit=0", "limit"), ("limit=101", "limit"), ("page=0", "page")])
async def test_query_validation_names_the_parameter(client: Client, account: Account, query: str, field: str) -> None:
    response = await client.get(f"{account.tasks_url}?{query}", headers=account.headers)
    body = assert_error(response, 422, "VALIDATION_ERROR", account.tasks_url)
    assert body["errors"] == [{"field": field, "message": body["errors"][0]["message"], "source": "query"}]
    assert body["errors"][0]["message"]


@get("/things/{number:int}", sync_to_thread=False)
def _thing(number: Annotated[int, Parameter(ge=1)]) -> dict[str, int]:
    return {"number": number}


@get("/boom", sync_to_thread=False)
def _boom() -> None:
    msg = "SELECT password_hash FROM secret-table; sqlalchemy asyncpg Connect failed"
    raise RuntimeError(msg)


def _bare_app() -> Litestar:
    """A minimal app with the service's only exception handler, for cases the service has no route for."""
    return Litestar([_thing, _boom], exception_handlers={Exception: exception_to_response}, debug=False)


async def test_path_validation_is_sourced_path() -> None:
    async with SameLoopClient(app=_bare_app()) as bare:
        response = await bare.get("/things/0")
    body = assert_error(response, 422, "VALIDATION_ERROR", "/things/0")
    assert [(e["field"], e["source"]) for e in body["errors"]] == [("number", "path")]


async def test_unexpected_exception_is_a_bare_500_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    with service_logs(caplog):
        async with SameLoopClient(app=_bare_app()) as bare:
            response = await bare.get("/boom")
    body = assert_error(response, 500, "INTERNAL_ERROR", "/boom")
    assert "errors" not in body
    for leak in (*LEAKS, "password_hash", "RuntimeError"):
        assert leak not in response.text
    records = error_records(caplog, "/boom")
    assert records
    assert records[0].exc_info is not None
    assert isinstance(records[0].exc_info[1], RuntimeError)


async def test_database_down_is_a_retryable_503_that_leaks_nothing(caplog: pytest.LogCaptureFixture) -> None:
    settings = make_settings(
        "postgresql+asyncpg://u:p@127.0.0.1:1/x", db_pool_timeout=1, health_check_timeout=0.5, db_connect_attempts=0
    )
    with service_logs(caplog):
        async with SameLoopClient(app=create_app(settings)) as broken:
            response = await broken.get("/api/v1/users/me", headers=bearer_for_unknown_session())
    assert_error(response, 503, "SERVICE_UNAVAILABLE", "/api/v1/users/me")
    assert response.headers["Retry-After"] == "5"
    for leak in (*LEAKS, "127.0.0.1", "Errno", "refused"):
        assert leak not in response.text
    # Logged once, as an outage (not a bug): the cause is named, without a traceback.
    records = [r for r in caplog.records if r.name.startswith("todo_service") and "/api/v1/users/me" in r.getMessage()]
    assert [r.levelno for r in records] == [logging.WARNING]
    assert "ConnectionRefusedError" in records[0].getMessage()
    assert records[0].exc_info is None
