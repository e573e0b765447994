"""Request ids, security headers, CORS settings and trusted hosts, piece by piece (the docs' CSP: test_docs_pages)."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any, cast

import pytest

from todo_service.core.errors import ClientClosedRequest, RequestTimeout
from todo_service.core.request_context import REQUEST_ID_KEY, request_id_of
from todo_service.core.settings import SettingsError
from todo_service.http.body import bounded_receive
from todo_service.http.headers import (
    API_CSP,
    SecurityHeaders,
    cors_config,
    ensure_request_id,
    sane_request_id,
)
from todo_service.http.hosts import AllowedHosts, host_of

if TYPE_CHECKING:
    from litestar.types import Message, Scope


def scope_with(*headers: tuple[bytes, bytes], path: str = "/api/v1/users/me") -> Scope:
    return cast("Scope", {"type": "http", "path": path, "headers": list(headers), "state": {}})


def start_message(*headers: tuple[bytes, bytes]) -> Message:
    return cast("Message", {"type": "http.response.start", "status": 200, "headers": list(headers)})


def headers_of(message: Message) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in cast("dict[str, Any]", message)["headers"]:
        found.setdefault(name.decode(), []).append(value.decode())
    return found


# Request ids


@pytest.mark.parametrize("value", [b"a", b"abc-123", b"req:2024.01_x-Y", str(uuid.uuid4()).encode(), b"x" * 128])
def test_sane_request_id_is_kept(value: bytes) -> None:
    assert sane_request_id(value) == value.decode()


@pytest.mark.parametrize(
    "value",
    [b"", b"x" * 129, b"has space", b"new\nline", b"semi;colon", b"slash/", b"quote'", "caf\u00e9".encode(), b"\x00"],
)
def test_odd_request_id_is_refused(value: bytes) -> None:
    assert sane_request_id(value) is None


def test_client_request_id_is_kept_in_the_scope_state() -> None:
    scope = scope_with((b"x-request-id", b"client-42"))
    assert ensure_request_id(scope) == "client-42"
    assert request_id_of(scope) == "client-42"
    assert cast("dict[str, Any]", scope)["state"][REQUEST_ID_KEY] == "client-42"


def test_request_id_header_name_is_case_insensitive() -> None:
    assert ensure_request_id(scope_with((b"X-Request-ID", b"upper-7"))) == "upper-7"


@pytest.mark.parametrize("headers", [(), ((b"x-request-id", b"not sane!"),), ((b"x-request-id", b""),)])
def test_missing_or_odd_request_id_is_replaced_by_a_uuid4(headers: tuple[tuple[bytes, bytes], ...]) -> None:
    request_id = ensure_request_id(scope_with(*headers))
    assert len(request_id) == 32
    assert uuid.UUID(hex=request_id).version == 4


def test_request_id_is_assigned_once_per_request() -> None:
    scope = scope_with()
    first = ensure_request_id(scope)
    assert ensure_request_id(scope) == first
    assert ensure_request_id(scope_with()) != first


# Security headers


def test_api_paths_are_private_except_the_health_probes() -> None:
    headers = SecurityHeaders()
    for path in ("/api/v1/users/me", "/api/v1/auth/login", "/api/v1/users/x/tasks", "/api/v1/healthz", "/api/v1/nope"):
        assert (b"cache-control", b"no-store") in headers.for_path(path), path
    for path in ("/api/v1/health", "/api/v1/health/", "/api/v1/health/ready", "/api/docs", "/nope", "/metrics"):
        assert b"cache-control" not in dict(headers.for_path(path)), path


async def test_before_send_adds_every_header_and_the_request_id() -> None:
    scope = scope_with((b"x-request-id", b"abc"))
    message = start_message((b"content-type", b"application/json"))
    await SecurityHeaders().before_send(message, scope)
    assert headers_of(message) == {
        "content-type": ["application/json"],
        "x-content-type-options": ["nosniff"],
        "x-frame-options": ["DENY"],
        "referrer-policy": ["no-referrer"],
        "content-security-policy": [API_CSP],
        "cross-origin-opener-policy": ["same-origin"],
        "cross-origin-resource-policy": ["same-origin"],
        "cache-control": ["no-store"],
        "x-request-id": ["abc"],
    }


async def test_before_send_keeps_what_the_response_already_says() -> None:
    message = start_message((b"Cache-Control", b"max-age=60"), (b"content-security-policy", b"script-src x"))
    await SecurityHeaders().before_send(message, scope_with())
    headers = headers_of(message)
    assert headers["Cache-Control"] == ["max-age=60"]
    assert "cache-control" not in headers
    assert headers["content-security-policy"] == ["script-src x"]


async def test_before_send_leaves_body_messages_alone() -> None:
    message = cast("Message", {"type": "http.response.body", "body": b"{}"})
    await SecurityHeaders().before_send(message, scope_with())
    assert message == {"type": "http.response.body", "body": b"{}"}


async def test_hsts_only_when_configured() -> None:
    off, on = start_message(), start_message()
    await SecurityHeaders(hsts_max_age=0).before_send(off, scope_with())
    await SecurityHeaders(hsts_max_age=31536000).before_send(on, scope_with())
    assert "strict-transport-security" not in headers_of(off)
    assert headers_of(on)["strict-transport-security"] == ["max-age=31536000; includeSubDomains"]


# CORS


def test_cors_is_off_without_origins() -> None:
    assert cors_config(()) is None


def test_cors_allows_exactly_the_configured_origins() -> None:
    config = cors_config(("https://app.example.com/", "http://localhost:5173"))
    assert config is not None
    assert config.allow_origins == ["https://app.example.com", "http://localhost:5173"]
    assert config.is_origin_allowed("https://app.example.com")
    assert config.is_origin_allowed("http://localhost:5173")
    assert not config.is_origin_allowed("https://app.example.com.evil.net")
    assert not config.is_origin_allowed("http://app.example.com")
    assert sorted(config.allow_methods) == ["DELETE", "GET", "PATCH", "POST", "PUT"]
    assert config.allow_headers == ["authorization", "content-type", "x-request-id"]
    assert config.expose_headers == [
        "X-Request-ID",
        "Location",
        "Retry-After",
        "RateLimit-Limit",
        "RateLimit-Remaining",
        "RateLimit-Reset",
        "X-Trace-Id",
        "traceresponse",
    ]
    assert config.allow_credentials is False


@pytest.mark.parametrize(
    "origin", ["app.example.com", "ftp://app.example.com", "https://app.example.com/path", "https://"]
)
def test_cors_refuses_what_is_not_an_origin(origin: str) -> None:
    with pytest.raises(SettingsError, match="CORS_ORIGINS"):
        cors_config((origin,))


# Trusted hosts


@pytest.mark.parametrize("hosts", [(), ("*",), ("api.example.com", "*")])
def test_any_host_when_allowed_hosts_has_a_star(hosts: tuple[str, ...]) -> None:
    assert AllowedHosts.parse(hosts) is None


def test_allowed_hosts_match_names_and_subdomains() -> None:
    allowed = AllowedHosts.parse(("API.example.com", "*.internal.example", "[::1]", "localhost."))
    assert allowed is not None
    for host in ("api.example.com", "a.internal.example", "a.b.internal.example", "[::1]", "localhost"):
        assert allowed.allows(host), host
    for host in ("", "example.com", "internal.example", "evilinternal.example", "api.example.com.evil", "[::2]"):
        assert not allowed.allows(host), host


@pytest.mark.parametrize("host", ["localhost:8000", "https://api.example.com", "api.*.example.com", "a/b", "*."])
def test_allowed_hosts_refuses_what_is_not_a_host_name(host: str) -> None:
    with pytest.raises(SettingsError, match="ALLOWED_HOSTS"):
        AllowedHosts.parse((host,))


@pytest.mark.parametrize(
    ("header", "host"),
    [
        (b"api.example.com", "api.example.com"),
        (b"API.Example.COM:8443", "api.example.com"),
        (b"api.example.com.", "api.example.com"),
        (b"[::1]:8000", "[::1]"),
        (b"[::1", ""),
        (b"127.0.0.1:80", "127.0.0.1"),
    ],
)
def test_host_of_drops_port_case_and_trailing_dot(header: bytes, host: str) -> None:
    assert host_of(scope_with((b"host", header))) == host


def test_host_of_without_a_host_header_is_empty() -> None:
    assert host_of(scope_with()) == ""


# The request body deadline, on its own

BODY_PART = {"type": "http.request", "body": b"{", "more_body": True}
WHOLE_BODY = {"type": "http.request", "body": b"{}", "more_body": False}
DISCONNECT = {"type": "http.disconnect"}


async def run_body_middleware(deadline: float, script: list[dict[str, Any] | float]) -> list[dict[str, Any]]:
    """What an app that reads until ``http.disconnect`` receives; a float in ``script`` is a pause first."""
    received: list[dict[str, Any]] = []
    steps = list(script)

    async def receive() -> dict[str, Any]:
        step = steps.pop(0)
        if isinstance(step, float):
            await asyncio.sleep(step)
            step = steps.pop(0)
        assert not isinstance(step, float)
        return step

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while (message := await receive())["type"] != "http.disconnect":
            received.append(message)
        received.append(message)

    async def send(message: Any) -> None:
        raise AssertionError(message)

    await app(scope_with(), bounded_receive(cast("Any", receive), deadline), send)
    return received


async def test_after_the_body_receive_is_left_alone() -> None:
    """A streaming handler waits for the disconnect as long as it likes once the body is in."""
    received = await run_body_middleware(0.1, [WHOLE_BODY, 0.3, DISCONNECT])
    assert received == [WHOLE_BODY, DISCONNECT]


async def test_a_disconnect_before_the_body_is_complete_is_a_client_closed_request() -> None:
    with pytest.raises(ClientClosedRequest) as raised:
        await run_body_middleware(5, [BODY_PART, DISCONNECT])
    assert (raised.value.status_code, raised.value.error_code) == (499, "CLIENT_CLOSED_REQUEST")


async def test_a_stalled_body_is_a_request_timeout_that_closes_the_connection() -> None:
    with pytest.raises(RequestTimeout) as raised:
        await run_body_middleware(0.1, [BODY_PART, 5.0, BODY_PART])
    assert (raised.value.status_code, raised.value.error_code) == (408, "REQUEST_TIMEOUT")
    assert raised.value.headers == {"Connection": "close"}
