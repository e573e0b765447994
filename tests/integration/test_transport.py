"""Transport hygiene through the HTTP API: X-Request-ID, security headers, Cache-Control, CORS, trusted hosts."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
import uuid
from collections.abc import Awaitable, Callable
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
from litestar import Request, get

from tests.factories import Account, Client, SameLoopClient, make_settings, register
from tests.integration.test_errors import MAX_BODY, assert_error, bearer_for_unknown_session
from todo_service.app import create_app
from todo_service.core.request_context import request_id_of
from todo_service.http.front_door import FrontDoor
from todo_service.http.headers import API_CSP

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import httpx
    from litestar.handlers import HTTPRouteHandler

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}
HEX_UUID4 = re.compile(r"^[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$")
ORIGIN = "https://app.example.com"
OTHER_ORIGIN = "https://evil.example.net"
DOCS_PAGES = ("/api/docs", "/api/docs/swagger", "/api/docs/redoc")
ME = "/api/v1/users/me"
HEALTH = "/api/v1/health"


def assert_transport_headers(
    response: httpx.Response, *, private: bool, csp: str | None = API_CSP, hsts: str | None = None
) -> str:
    """Every header this service adds, with its value; returns the request id."""
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get_list(name) == [value], name
    if csp is not None:
        assert response.headers.get_list("content-security-policy") == [csp]
    if private:
        assert response.headers.get_list("cache-control") == ["no-store"]
    else:
        assert "cache-control" not in response.headers
    if hsts is None:
        assert "strict-transport-security" not in response.headers
    else:
        assert response.headers["strict-transport-security"] == hsts
    request_ids = response.headers.get_list("x-request-id")
    assert len(request_ids) == 1
    return request_ids[0]


@contextlib.asynccontextmanager
async def serve(database_url: str, *handlers: HTTPRouteHandler, **settings: Any) -> AsyncIterator[Client]:
    """The service built with these settings (plus test-only routes), behind a test client."""
    app = create_app(make_settings(database_url, **settings))
    for handler in handlers:
        app.register(handler)
    async with SameLoopClient(app=app) as client:
        yield client


@get("/api/v1/test/request-id", exclude_from_auth=True, sync_to_thread=False)
def echo_request_id(request: Request[Any, Any, Any]) -> dict[str, str | None]:
    """What the handler finds in the scope state."""
    return {"request_id": request_id_of(request.scope)}


def failing_route(seen: list[str | None]) -> HTTPRouteHandler:
    @get("/api/v1/test/boom", exclude_from_auth=True, sync_to_thread=False)
    def boom(request: Request[Any, Any, Any]) -> None:
        seen.append(request_id_of(request.scope))
        raise RuntimeError("an unexpected bug")

    return boom


# Every status carries every header.

Call = Callable[[Client, Account, Account], Awaitable["httpx.Response"]]
STATUS_CASES: dict[str, tuple[int, bool, Call]] = {
    "200": (200, True, lambda c, a, _: c.get(ME, headers=a.headers)),
    "200-health": (200, False, lambda c, _, __: c.get(HEALTH)),
    "201": (
        201,
        True,
        lambda c, _, __: c.post(
            "/api/v1/auth/register",
            json={"email": "new@example.com", "password": "Correct-Horse-42", "first_name": "N", "last_name": "U"},
        ),
    ),
    "400": (
        400,
        True,
        lambda c, _, __: c.post("/api/v1/auth/login", content=b"{", headers={"Content-Type": "application/json"}),
    ),
    "401": (401, True, lambda c, _, __: c.get(ME)),
    "403": (403, True, lambda c, a, o: c.get(o.tasks_url, headers=a.headers)),
    "404-api": (404, True, lambda c, _, __: c.get("/api/v1/nope")),
    "404-elsewhere": (404, False, lambda c, _, __: c.get("/nope")),
    "405": (405, True, lambda c, _, __: c.patch(ME)),
    "405-health": (405, False, lambda c, _, __: c.delete(HEALTH)),
    "413": (
        413,
        True,
        lambda c, _, __: c.post(
            "/api/v1/auth/login", content=b"x" * (MAX_BODY + 1), headers={"Content-Type": "application/json"}
        ),
    ),
    "422": (422, True, lambda c, _, __: c.post("/api/v1/auth/register", json={"email": "not-an-email"})),
}


@pytest.mark.parametrize("case", STATUS_CASES)
async def test_every_response_carries_the_headers(
    client: Client, account: Account, other_account: Account, case: str
) -> None:
    status, private, call = STATUS_CASES[case]
    response = await call(client, account, other_account)
    assert response.status_code == status, response.text
    assert HEX_UUID4.match(assert_transport_headers(response, private=private))


async def test_unexpected_500_carries_the_headers_and_the_id_its_handler_saw(database_url: str) -> None:
    seen: list[str | None] = []
    async with serve(database_url, failing_route(seen)) as client:
        response = await client.get("/api/v1/test/boom", headers={"X-Request-ID": "trace-500"})
        generated = await client.get("/api/v1/test/boom")
    assert_error(response, 500, "INTERNAL_ERROR", "/api/v1/test/boom")
    assert assert_transport_headers(response, private=True) == "trace-500"
    assert assert_transport_headers(generated, private=True) == seen[1]
    assert seen[0] == "trace-500"
    assert HEX_UUID4.match(str(seen[1]))


async def test_database_outage_503_carries_the_headers() -> None:
    settings = make_settings(
        "postgresql+asyncpg://u:p@127.0.0.1:1/x", db_pool_timeout=1, health_check_timeout=0.5, db_connect_attempts=0
    )
    async with SameLoopClient(app=create_app(settings)) as broken:
        response = await broken.get(ME, headers=bearer_for_unknown_session())
        ready = await broken.get(f"{HEALTH}/ready")
    assert_error(response, 503, "SERVICE_UNAVAILABLE", ME)
    assert_transport_headers(response, private=True)
    assert ready.status_code == 503
    assert_transport_headers(ready, private=False)


# X-Request-ID


@pytest.mark.parametrize("path", [HEALTH, ME, "/api/v1/nope", "/api/docs/openapi.json"])
@pytest.mark.parametrize("request_id", ["abc", "req-2030.01.31_17:00", str(uuid.uuid4()), "x" * 128])
async def test_sane_request_id_is_echoed(client: Client, path: str, request_id: str) -> None:
    response = await client.get(path, headers={"X-Request-ID": request_id})
    assert response.headers["x-request-id"] == request_id


async def test_request_id_is_echoed_on_a_405(client: Client) -> None:
    response = await client.delete(HEALTH, headers={"X-Request-ID": "wrong-method-1"})
    assert response.status_code == 405
    assert response.headers["x-request-id"] == "wrong-method-1"


@pytest.mark.parametrize("request_id", [b"", b"x" * 129, b"has space", b"semi;colon", b"<script>", b"caf\xc3\xa9"])
async def test_odd_request_id_is_replaced(client: Client, request_id: bytes) -> None:
    response = await client.get(HEALTH, headers={b"X-Request-ID": request_id})
    assert HEX_UUID4.match(response.headers["x-request-id"])
    assert response.headers["x-request-id"].encode() != request_id


async def test_generated_request_ids_are_unique(client: Client) -> None:
    ids = [(await client.get(path)).headers["x-request-id"] for path in (HEALTH, "/nope", ME) * 10]
    assert len(set(ids)) == 30
    assert all(HEX_UUID4.match(request_id) for request_id in ids)


async def test_request_id_is_in_the_scope_state_before_the_handler_runs(database_url: str) -> None:
    async with serve(database_url, echo_request_id) as client:
        echoed = await client.get("/api/v1/test/request-id", headers={"X-Request-ID": "from-client"})
        replaced = await client.get("/api/v1/test/request-id", headers={"X-Request-ID": "not sane"})
        generated = await client.get("/api/v1/test/request-id")
    assert echoed.json() == {"request_id": "from-client"}
    assert echoed.headers["x-request-id"] == "from-client"
    for response in (replaced, generated):
        assert HEX_UUID4.match(response.json()["request_id"])
        assert response.json()["request_id"] == response.headers["x-request-id"]
    assert replaced.json() != generated.json()


async def test_the_front_door_runs_before_every_other_middleware(database_url: str) -> None:
    settings = make_settings(database_url, rate_limit_enabled=True, allowed_hosts=("testserver.local",))
    middleware = create_app(settings).middleware
    listed = [getattr(m, "middleware", m) for m in middleware]
    assert listed[0] is FrontDoor  # the request id, then the Host check
    assert FrontDoor not in listed[1:]


# The docs pages' CSP


class _PageAssets(HTMLParser):
    """What a page loads: script URLs, inline scripts, stylesheets and icons (parsed by the standard library)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.scripts: list[str] = []
        self.inline: list[str] = []
        self.styles: list[str] = []
        self.icons: list[str] = []
        self._in_inline = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "script":
            if "src" in values:
                self.scripts.append(values["src"])
            else:
                self._in_inline = True
                self.inline.append("")
        elif tag == "link" and values.get("rel") == "stylesheet":
            self.styles.append(values["href"])
        elif tag == "link" and values.get("rel") == "icon":
            self.icons.append(values["href"])

    def handle_data(self, data: str) -> None:
        if self._in_inline:
            self.inline[-1] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_inline = False


def parse_csp(value: str) -> dict[str, set[str]]:
    policy: dict[str, set[str]] = {}
    for directive in value.split(";"):
        name, *sources = directive.split()
        assert name not in policy, f"{name} twice"
        policy[name] = set(sources)
    return policy


def csp_allows(sources: set[str], url: str) -> bool:
    """Whether a source list allows ``url`` (scheme-host sources, or path sources as CSP matches them)."""
    parts = urlsplit(url)
    if parts.scheme == "data":
        return "data:" in sources
    if not parts.netloc:
        return "'self'" in sources
    origin = f"{parts.scheme}://{parts.netloc}"
    for source in sources:
        if source in {origin, f"{origin}/"}:
            return True
        if source.startswith(f"{origin}/"):
            path = source.removeprefix(origin)
            if path == parts.path or (path.endswith("/") and parts.path.startswith(path)):
                return True
    return False


def script_hash(text: str) -> str:
    return f"'sha256-{base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()}'"


@pytest.mark.parametrize("path", DOCS_PAGES)
async def test_docs_page_csp_allows_exactly_what_the_page_loads(client: Client, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    header = response.headers["content-security-policy"]
    assert header != API_CSP
    assert_transport_headers(response, private=False, csp=header)
    policy = parse_csp(header)
    page = _PageAssets()
    page.feed(response.text)
    assert page.scripts
    assert page.inline
    for url in page.scripts:
        assert csp_allows(policy["script-src"], url), url
    for text in page.inline:
        assert script_hash(text) in policy["script-src"]
        assert script_hash(f"{text} ") not in policy["script-src"]  # one byte off is refused
    for url in page.styles:
        assert csp_allows(policy["style-src"], url), url
    for url in page.icons:
        assert csp_allows(policy["img-src"], url), url
    assert policy["script-src"] == {"'self'"} | {script_hash(text) for text in page.inline}  # nothing else
    assert not csp_allows(policy["script-src"], "https://cdn.jsdelivr.net/npm/evil@1/evil.js")
    # Everything comes from the service itself: no directive names another host.
    sources = set().union(*policy.values()) - {script_hash(text) for text in page.inline}
    assert sources <= {"'self'", "'none'", "'unsafe-inline'", "data:", "blob:"}
    assert policy["default-src"] == {"'none'"}
    assert policy["frame-ancestors"] == {"'none'"}
    assert policy["base-uri"] == {"'none'"}
    assert policy["form-action"] == {"'none'"}


async def test_docs_pages_get_what_their_renderer_needs(client: Client) -> None:
    scalar, swagger, redoc = [
        parse_csp((await client.get(path)).headers["content-security-policy"]) for path in DOCS_PAGES
    ]
    assert scalar["connect-src"] == {"'self'"}  # the schema and "try it" requests
    assert swagger["connect-src"] == {"'self'"}
    assert redoc["worker-src"] == {"blob:"}
    assert "connect-src" not in redoc
    for policy in (scalar, swagger, redoc):
        assert "font-src" not in policy  # no web fonts (Scalar's and Google's are on CDNs)
        assert "'unsafe-inline'" in policy["style-src"]
        assert "data:" in policy["img-src"]


@pytest.mark.parametrize("path", ["/api/docs/openapi.json", "/api/docs/nope", "/api/docs/oauth2-redirect.html"])
async def test_other_docs_paths_get_the_api_policy(client: Client, path: str) -> None:
    response = await client.get(path)
    assert_transport_headers(response, private=False)


# HSTS


async def test_hsts_is_off_by_default(client: Client) -> None:
    assert_transport_headers(await client.get(HEALTH), private=False, hsts=None)


async def test_hsts_when_configured(database_url: str) -> None:
    async with serve(database_url, hsts_max_age=31536000) as client:
        responses = [
            await client.get(HEALTH),
            await client.get("/nope"),
            await client.get(ME),
            await client.get("/api/docs"),
        ]
    hsts = "max-age=31536000; includeSubDomains"
    assert_transport_headers(responses[0], private=False, hsts=hsts)
    assert_transport_headers(responses[1], private=False, hsts=hsts)
    assert_transport_headers(responses[2], private=True, hsts=hsts)
    assert_transport_headers(responses[3], private=False, csp=None, hsts=hsts)


# Cache-Control


async def test_token_and_user_responses_are_not_stored(client: Client, account: Account) -> None:
    login = await client.post("/api/v1/auth/login", json={"email": account.email, "password": account.password})
    listing = await client.get(account.tasks_url, headers=account.headers)
    for response in (login, listing):
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("path", [HEALTH, f"{HEALTH}/ready", "/api/docs", "/api/docs/openapi.json"])
async def test_probes_and_docs_may_be_cached(client: Client, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert "cache-control" not in response.headers


# CORS


def access_control(response: httpx.Response) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name.startswith("access-control-")}


def header_set(value: str) -> set[str]:
    return {item.strip().lower() for item in value.split(",")}


async def test_cors_is_off_by_default(client: Client) -> None:
    preflight = await client.options(
        ME,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    simple = await client.get(HEALTH, headers={"Origin": ORIGIN})
    assert preflight.status_code == 204
    assert access_control(preflight) == {}
    assert access_control(simple) == {}
    assert_transport_headers(preflight, private=True)


async def test_cors_preflight_for_an_allowed_origin(database_url: str) -> None:
    request_headers = "authorization, content-type, x-request-id"
    async with serve(database_url, cors_origins=(ORIGIN,)) as client:
        preflight = await client.options(
            ME,
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "PUT",
                "Access-Control-Request-Headers": request_headers,
            },
        )
    assert preflight.status_code == 204  # no token needed
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert header_set(preflight.headers["access-control-allow-methods"]) == {"get", "post", "put", "patch", "delete"}
    assert header_set(request_headers) <= header_set(preflight.headers["access-control-allow-headers"])
    assert "access-control-allow-credentials" not in preflight.headers
    assert "origin" in header_set(preflight.headers["vary"])
    assert HEX_UUID4.match(assert_transport_headers(preflight, private=True))


@pytest.mark.parametrize(
    ("origin", "method", "headers"),
    [
        (OTHER_ORIGIN, "GET", "authorization"),
        ("http://app.example.com", "GET", "authorization"),  # another scheme is another origin
        (ORIGIN, "TRACE", "authorization"),
        (ORIGIN, "GET", "x-api-key"),
    ],
)
async def test_cors_preflight_refuses_the_rest(database_url: str, origin: str, method: str, headers: str) -> None:
    async with serve(database_url, cors_origins=(ORIGIN,)) as client:
        preflight = await client.options(
            ME,
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": headers,
            },
        )
    assert not preflight.is_success
    assert "access-control-allow-origin" not in preflight.headers
    assert_transport_headers(preflight, private=True)


async def test_cors_responses_expose_the_documented_headers(database_url: str) -> None:
    async with serve(database_url, cors_origins=(ORIGIN, "https://admin.example.com")) as client:
        account = await register(client)
        allowed = await client.get(ME, headers={**account.headers, "Origin": ORIGIN})
        error = await client.get(ME, headers={"Origin": "https://admin.example.com"})
        other = await client.get(ME, headers={**account.headers, "Origin": OTHER_ORIGIN})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    exposed = {
        "x-request-id",
        "location",
        "retry-after",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
        "x-trace-id",
        "traceresponse",
    }
    assert header_set(allowed.headers["access-control-expose-headers"]) == exposed
    assert error.status_code == 401  # errors are readable by the allowed page too
    assert error.headers["access-control-allow-origin"] == "https://admin.example.com"
    assert other.status_code == 200
    assert "access-control-allow-origin" not in other.headers


# Trusted hosts


async def test_any_host_by_default(client: Client) -> None:
    response = await client.get(HEALTH, headers={"Host": "whatever.example"})
    assert response.status_code == 200


@pytest.mark.parametrize("host", ["api.example.com", "API.Example.com:8443", "api.example.com.", "eu.example.org"])
async def test_allowed_hosts_are_served(database_url: str, host: str) -> None:
    async with serve(database_url, allowed_hosts=("api.example.com", "*.example.org")) as client:
        response = await client.get(HEALTH, headers={"Host": host})
    assert response.status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "example.org", "api.example.com.evil.example", "testserver.local"])
@pytest.mark.parametrize("path", [HEALTH, ME, "/api/docs"])
async def test_other_hosts_get_the_contract_400(database_url: str, host: str, path: str) -> None:
    async with serve(database_url, allowed_hosts=("api.example.com", "*.example.org")) as client:
        response = await client.get(path, headers={"Host": host, "X-Request-ID": "bad-host-1"})
    body = assert_error(response, 400, "INVALID_HOST", path)
    assert host not in body["detail"]
    assert assert_transport_headers(response, private=path == ME) == "bad-host-1"


@pytest.mark.parametrize("allowed_hosts", [("*",), ("api.example.com",)])
@pytest.mark.parametrize("second", ["api.example.com", "evil.example"])
async def test_two_host_headers_are_refused(database_url: str, allowed_hosts: tuple[str, ...], second: str) -> None:
    """RFC 9112 3.2: a proxy and the app could each believe a different one; 400, whatever ALLOWED_HOSTS says."""
    async with serve(database_url, allowed_hosts=allowed_hosts) as client:
        headers = [("Host", "api.example.com"), ("Host", second), ("X-Request-ID", "two-hosts-1")]
        response = await client.get(HEALTH, headers=headers)
        single = await client.get(HEALTH, headers={"Host": "api.example.com"})
    body = assert_error(response, 400, "INVALID_HOST", HEALTH)
    assert "more than one Host" in body["detail"]
    assert assert_transport_headers(response, private=False) == "two-hosts-1"
    assert single.status_code == 200


# OPTIONS: Allow lists exactly the methods of the path

TASK_PATHS = {
    ME: "GET, OPTIONS, PUT",
    f"{ME}/password": "OPTIONS, PUT",
    "/api/v1/users/{user_id}/tasks": "GET, OPTIONS, POST",
    "/api/v1/users/{user_id}/tasks/{task_id}": "DELETE, GET, OPTIONS, PUT",
    "/api/v1/users/{user_id}/tasks/{task_id}/complete": "OPTIONS, PATCH",
    HEALTH: "GET, OPTIONS",
}


def allow_of(response: httpx.Response) -> str:
    allows = response.headers.get_list("allow")
    assert len(allows) == 1, allows
    return allows[0]


def expected_paths() -> dict[str, str]:
    ids = {"user_id": str(uuid.uuid4()), "task_id": str(uuid.uuid4())}
    return {path.format(**ids): allow for path, allow in TASK_PATHS.items()}


async def test_options_allow_lists_exactly_the_methods_of_the_path(client: Client) -> None:
    for path, allow in expected_paths().items():
        response = await client.options(path)
        assert response.status_code == 204, (path, response.text)
        assert allow_of(response) == allow, path
        # The same set as a 405 on that path says (plus OPTIONS, which Allow of a 405 has too).
        wrong = await client.request("TRACE", path)
        assert wrong.status_code == 405, path
        assert header_set(allow_of(wrong)) == header_set(allow), path


async def test_options_allow_with_cors_on(database_url: str) -> None:
    """Litestar's CORS answers any OPTIONS with an Origin before routing: Allow is still there, and right."""
    async with serve(database_url, cors_origins=(ORIGIN,)) as client:
        for path, allow in expected_paths().items():
            plain = await client.options(path)
            preflight = await client.options(path, headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"})
            assert plain.status_code == preflight.status_code == 204, path
            assert allow_of(plain) == allow_of(preflight) == allow, path
            assert preflight.headers["access-control-allow-origin"] == ORIGIN
        # A preflight is answered before routing, whatever the path: no route, no Allow.
        nowhere = await client.options(
            "/api/v1/nothing", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"}
        )
    assert nowhere.status_code == 204
    assert "allow" not in nowhere.headers


async def test_options_on_a_path_that_is_no_route_is_a_404(client: Client) -> None:
    for path in ("/api/v1/users/not-a-uuid/tasks", "/api/v1/nothing"):
        response = await client.options(path)
        assert_error(response, 404, "NOT_FOUND", path)
        assert "allow" not in response.headers
