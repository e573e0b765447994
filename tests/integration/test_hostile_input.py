"""Hostile input: deep nesting, oversized bodies, awkward unicode, injection-looking text, and IDOR probes."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import update

from tests.factories import PASSWORD, Account, Client, create_task, register
from todo_service.db.models import Role, User

if TYPE_CHECKING:
    from httpx import Response
    from sqlalchemy.ext.asyncio import AsyncEngine

JSON = {"Content-Type": "application/json"}
MAX_BODY = 64 * 1024
DEPTH = 10_000
# Emoji, right-to-left text with an override, combining marks, a zero-width-joined emoji, 4-byte characters.
AWKWARD = "😀🎉 שלום مرحبا \u202eabc\u202c e\u0301a\u0308 👩\u200d💻 𝄞𠜎 \ufeff"
HOSTILE_TEXT = [
    "'; DROP TABLE tasks; --",
    "Robert'); DELETE FROM users WHERE ('1'='1",
    '" OR 1=1 -- \\',
    "../../../../etc/passwd",
    "..\\..\\windows\\system32\\config\\sam",
    "%2e%2e%2f%00 %s %n {{7*7}} ${jndi:ldap://x}",
    "<script>alert(1)</script>",
]


def assert_error(response: Response, status: int | set[int], code: str | None = None) -> dict[str, Any]:
    statuses = {status} if isinstance(status, int) else status
    assert response.status_code in statuses, response.text
    body: dict[str, Any] = response.json()
    assert body["status_code"] == response.status_code
    assert body["detail"]
    if code is not None:
        assert body["error_code"] == code
    return body


def register_body(**fields: str) -> dict[str, str]:
    body = {"email": f"{uuid.uuid4().hex[:10]}@example.com", "password": PASSWORD, "first_name": "A", "last_name": "B"}
    return {**body, **fields}


async def bodies_routes(client: Client, account: Account) -> list[tuple[str, str]]:
    """(method, url) of every route that takes a JSON body."""
    task = await create_task(client, account)
    task_url = f"{account.tasks_url}/{task['id']}"
    return [
        ("POST", "/api/v1/auth/register"),
        ("POST", "/api/v1/auth/login"),
        ("POST", "/api/v1/auth/refresh"),
        ("POST", account.tasks_url),
        ("PUT", task_url),
        ("PATCH", f"{task_url}/complete"),
        ("PUT", "/api/v1/users/me"),
        ("PUT", "/api/v1/users/me/password"),
    ]


@pytest.mark.parametrize(
    "nested", ["[" * DEPTH + "]" * DEPTH, '{"a":' * DEPTH + "1" + "}" * DEPTH], ids=["list", "dict"]
)
async def test_deeply_nested_json_is_a_client_error(client: Client, account: Account, nested: str) -> None:
    statuses: dict[str, int] = {}
    for method, url in await bodies_routes(client, account):
        response = await client.request(method, url, content=nested.encode(), headers={**JSON, **account.headers})
        statuses[f"{method} {url}"] = response.status_code
        assert response.json()["status_code"] == response.status_code

    assert (await client.get("/api/v1/health")).status_code == 200
    assert (await client.get(account.tasks_url, headers=account.headers)).json()["total"] == 1
    await register(client)
    assert {route: status for route, status in statuses.items() if status not in {400, 413, 422}} == {}


async def test_a_body_one_byte_over_64_kib_is_413(client: Client, account: Account) -> None:
    for method, url in await bodies_routes(client, account):
        padding = MAX_BODY + 1 - len(b'{"title": ""}')
        over = b'{"title": "' + b"a" * padding + b'"}'
        assert len(over) == MAX_BODY + 1
        response = await client.request(method, url, content=over, headers={**JSON, **account.headers})
        assert_error(response, 413, "PAYLOAD_TOO_LARGE")
        exactly = over[:11] + over[12:]  # valid JSON of exactly 64 KiB
        at_limit = await client.request(method, url, content=exactly, headers={**JSON, **account.headers})
        assert at_limit.status_code == 422, (method, url, at_limit.text)


async def test_awkward_unicode_in_every_account_field(client: Client) -> None:
    email = "δοκιμή👩\u200d💻𝄞@παράδειγμα.example"
    body = register_body(email=email, first_name=AWKWARD, last_name="\u05e9\u05dc\u05d5\u05dd 𠜎")
    response = await client.post("/api/v1/auth/register", json=body)
    assert response.status_code == 201, response.text
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}

    me = (await client.get("/api/v1/users/me", headers=headers)).json()
    assert (me["email"], me["first_name"], me["last_name"]) == (email.lower(), body["first_name"], body["last_name"])
    login = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text

    changed = await client.put("/api/v1/users/me", json={"first_name": "👨\u200d👩\u200d👧\u200d👦"}, headers=headers)
    assert changed.json()["first_name"] == "👨\u200d👩\u200d👧\u200d👦"


async def test_awkward_unicode_in_tasks_and_search(client: Client, account: Account) -> None:
    task = await create_task(client, account, title=AWKWARD, description=AWKWARD * 3)
    assert (task["title"], task["description"]) == (AWKWARD, AWKWARD * 3)
    await create_task(client, account, title="plain")

    for needle in ("👩\u200d💻", "𝄞𠜎", "e\u0301a\u0308", "שלום", "\u202eabc"):
        found = await client.get(account.tasks_url, params={"search": needle}, headers=account.headers)
        assert found.status_code == 200, found.text
        assert [item["id"] for item in found.json()["items"]] == [task["id"]], needle
    stored = await client.get(f"{account.tasks_url}/{task['id']}", headers=account.headers)
    assert stored.json() == task


async def test_a_surrogate_pair_escape_is_one_character(client: Client, account: Account) -> None:
    content = b'{"title": "\\ud83d\\ude00"}'
    response = await client.post(account.tasks_url, content=content, headers={**JSON, **account.headers})

    assert response.status_code == 201, response.text
    assert response.json()["title"] == "😀"


async def test_a_lone_surrogate_escape_is_400(client: Client, account: Account) -> None:
    task = await create_task(client, account)
    cases = [
        ("POST", "/api/v1/auth/register", register_body(first_name="<S>")),
        ("POST", "/api/v1/auth/login", {"email": "a<S>@example.com", "password": PASSWORD}),
        ("POST", "/api/v1/auth/refresh", {"refresh_token": "<S>"}),
        ("POST", account.tasks_url, {"title": "<S>"}),
        ("PUT", f"{account.tasks_url}/{task['id']}", {"description": "x<S>y"}),
        ("PUT", "/api/v1/users/me", {"last_name": "<S>"}),
        ("PUT", "/api/v1/users/me/password", {"current_password": PASSWORD, "new_password": "Aa1<S>aaaa"}),
    ]
    for method, url, body in cases:
        content = json.dumps(body).replace("<S>", "\\ud800").encode()
        response = await client.request(method, url, content=content, headers={**JSON, **account.headers})
        assert_error(response, 400, "MALFORMED_REQUEST")
    assert (await client.get(f"{account.tasks_url}/{task['id']}", headers=account.headers)).json() == task


async def test_undecodable_search_is_never_a_server_error(client: Client, account: Account) -> None:
    response = await client.get(f"{account.tasks_url}?search=%ED%A0%80%FF", headers=account.headers)

    assert response.status_code in {200, 400, 422}, response.text


async def test_nul_is_refused_in_every_text_field(client: Client, account: Account) -> None:
    task = await create_task(client, account)
    task_url = f"{account.tasks_url}/{task['id']}"
    cases = [
        ("POST", "/api/v1/auth/register", register_body(first_name="a\x00b")),
        ("POST", "/api/v1/auth/register", register_body(last_name="\x00")),
        ("POST", "/api/v1/auth/register", register_body(email="a\x00b@example.com")),
        ("POST", "/api/v1/auth/login", {"email": "a\x00@example.com", "password": PASSWORD}),
        ("POST", account.tasks_url, {"title": "a\x00"}),
        ("POST", account.tasks_url, {"title": "ok", "description": "\x00"}),
        ("PUT", task_url, {"title": "x\x00y"}),
        ("PUT", task_url, {"description": "x\x00y"}),
        ("PUT", "/api/v1/users/me", {"first_name": "\x00Ada"}),
    ]
    for method, url, body in cases:
        response = await client.request(method, url, json=body, headers=account.headers)
        assert_error(response, 422, "VALIDATION_ERROR")
    search = await client.get(account.tasks_url, params={"search": "a\x00"}, headers=account.headers)
    assert_error(search, 422, "VALIDATION_ERROR")
    assert (await client.get(task_url, headers=account.headers)).json() == task


@pytest.mark.parametrize(
    ("field", "unit", "limit"),
    [("title", "𝄞", 255), ("title", "e\u0301", 255), ("description", "👩", 1000), ("first_name", "😀", 100)],
)
async def test_lengths_count_code_points(client: Client, account: Account, field: str, unit: str, limit: int) -> None:
    exact = (unit * limit)[:limit] if len(unit) == 1 else (unit * limit)[: limit - 1] + "x"
    assert len(exact) == limit
    url, method = ("/api/v1/users/me", "PUT") if field == "first_name" else (account.tasks_url, "POST")
    extra = {} if field != "description" else {"title": "t"}

    ok = await client.request(method, url, json={**extra, field: exact}, headers=account.headers)
    too_long = await client.request(method, url, json={**extra, field: exact + "x"}, headers=account.headers)

    assert ok.status_code in {200, 201}, ok.text
    assert ok.json()[field] == exact
    assert_error(too_long, 422, "VALIDATION_ERROR")


async def test_search_length_counts_code_points(client: Client, account: Account) -> None:
    ok = await client.get(account.tasks_url, params={"search": "😀" * 200}, headers=account.headers)
    too_long = await client.get(account.tasks_url, params={"search": "😀" * 201}, headers=account.headers)

    assert ok.status_code == 200, ok.text
    assert_error(too_long, 422, "VALIDATION_ERROR")


async def test_injection_looking_text_is_stored_verbatim(client: Client, account: Account) -> None:
    tasks = [await create_task(client, account, title=text, description=text) for text in HOSTILE_TEXT]
    person = await client.put("/api/v1/users/me", json={"first_name": HOSTILE_TEXT[1]}, headers=account.headers)
    assert person.json()["first_name"] == HOSTILE_TEXT[1]

    for task, text in zip(tasks, HOSTILE_TEXT, strict=True):
        stored = (await client.get(f"{account.tasks_url}/{task['id']}", headers=account.headers)).json()
        assert (stored["title"], stored["description"]) == (text, text)
        found = await client.get(account.tasks_url, params={"search": text}, headers=account.headers)
        assert [item["id"] for item in found.json()["items"]] == [task["id"]], text
    assert (await client.get(account.tasks_url, headers=account.headers)).json()["total"] == len(HOSTILE_TEXT)
    assert (await client.get(account.tasks_url, params={"search": "' OR '1'='1"}, headers=account.headers)).json()[
        "total"
    ] == 0


@pytest.mark.parametrize(
    "suffix", ["/..%2F..%2F..%2Fetc%2Fpasswd", "/%2e%2e/%2e%2e/admin/users", "/..\\..\\x", "/%00", "/../../admin"]
)
async def test_path_traversal_in_urls_finds_nothing(client: Client, account: Account, suffix: str) -> None:
    response = await client.get(f"{account.tasks_url}{suffix}", headers=account.headers)

    assert response.status_code in {403, 404}, response.text
    assert "root:" not in response.text
    assert "items" not in response.json()


def writes(base: str, task_id: str) -> list[tuple[str, str, Any]]:
    """Every task write, on the task collection ``base`` and the task id ``task_id``."""
    url = f"{base}/{task_id}"
    return [
        ("PUT", url, {"title": "pwned"}),
        ("DELETE", url, None),
        ("PATCH", f"{url}/complete", {"completed": True}),
        ("POST", base, {"title": "planted"}),
    ]


async def test_idor_sweep(client: Client, account: Account, other_account: Account, db_engine: AsyncEngine) -> None:
    a, b = account, other_account
    admin = await register(client)
    async with db_engine.begin() as connection:
        await connection.execute(update(User).where(User.id == uuid.UUID(admin.id)).values(role=Role.ADMIN))
    mine, theirs = await create_task(client, a), await create_task(client, b)
    on_b = f"{b.tasks_url}/{theirs['id']}"

    for who in (a, admin):
        for task_id in (theirs["id"], mine["id"], str(uuid.uuid4())):
            # On B's path: nobody writes; only the admin reads.
            calls = writes(b.tasks_url, task_id)
            if who is a:
                calls += [("GET", b.tasks_url, None), ("GET", f"{b.tasks_url}/{task_id}", None)]
            for method, url, body in calls:
                assert_error(await client.request(method, url, json=body, headers=who.headers), 403, "FORBIDDEN")
        # B's task id under the caller's own path: exactly like a missing task.
        calls = [*writes(who.tasks_url, theirs["id"])[:3], ("GET", f"{who.tasks_url}/{theirs['id']}", None)]
        for method, url, body in calls:
            assert_error(await client.request(method, url, json=body, headers=who.headers), 404, "TASK_NOT_FOUND")

    assert (await client.get(on_b, headers=admin.headers)).json() == theirs
    assert (await client.get(on_b, headers=b.headers)).json() == theirs
    listing = (await client.get(b.tasks_url, headers=b.headers)).json()
    assert (listing["total"], [item["id"] for item in listing["items"]]) == (1, [theirs["id"]])
    assert (await client.get(a.tasks_url, headers=a.headers)).json()["items"] == [mine]
    assert (await client.get(admin.tasks_url, headers=admin.headers)).json()["total"] == 0
