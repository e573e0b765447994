"""Live events against a real ``todo-service run`` on each backend: order, ids, resume, auth, tickets, limits.

The server re-reads the feed only every 60 s without a notification (``EVENTS_POLL_SECONDS``),
so an event that arrives within seconds came through the fan-out: PostgreSQL's NOTIFY and the
listener, or on SQLite the task service's in-process hook.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import TYPE_CHECKING, Any

import httpx
import msgspec
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.factories import PASSWORD
from tests.processes import running_service, service_env

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from tests.processes import LiveService

WAIT = 5.0  # seconds any expected event may take
HEARTBEAT = 1
TICKET_TTL = 5
PER_USER = 2


class Event(msgspec.Struct):
    """One SSE event (or a comment: ``comment`` set, the rest empty)."""

    id: str | None = None
    event: str | None = None
    data: Any = None
    comment: str | None = None


class SSE:
    """A stream read line by line; every read bounded in time."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()

    async def next(self, timeout: float = WAIT, *, comments: bool = False) -> Event:  # noqa: ASYNC109
        """The next event (comments skipped unless ``comments``); TimeoutError if none comes in time."""
        async with asyncio.timeout(timeout):
            event = Event()
            async for line in self.lines:
                if line.startswith(":"):
                    if comments:
                        return Event(comment=line[1:].strip())
                elif not line:
                    if event.event is not None:
                        return event
                else:
                    name, _, value = line.partition(": ")
                    if name == "data":
                        event.data = msgspec.json.decode(value)
                    else:
                        setattr(event, name, value)
            raise EOFError

    async def silent(self, seconds: float) -> None:
        """No event (comments aside) comes within ``seconds``."""
        with pytest.raises(TimeoutError):
            await self.next(seconds)


@pytest.fixture(scope="module")
def live(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    """One server process on the session's database, with small event settings."""
    env = service_env(
        DATABASE_URL=database_url,
        RATE_LIMIT_ENABLED="false",
        EVENTS_HEARTBEAT_SECONDS=str(HEARTBEAT),
        EVENTS_POLL_SECONDS="60",
        EVENTS_TICKET_TTL_SECONDS=str(TICKET_TTL),
        EVENTS_MAX_STREAMS_PER_USER=str(PER_USER),
        LOG_LEVEL="INFO",
    )
    with running_service(cwd=tmp_path_factory.mktemp("events"), env=env) as service:
        yield service


class User(msgspec.Struct):
    """A registered account of the live server."""

    id: str
    auth: dict[str, str]

    @property
    def tasks(self) -> str:
        return f"/api/v1/users/{self.id}/tasks"


@pytest.fixture
async def http(live: LiveService) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live.base_url, timeout=10) as client:
        yield client


async def register(http: httpx.AsyncClient) -> User:
    body = {"email": f"{uuid.uuid4().hex}@example.com", "password": PASSWORD, "first_name": "E", "last_name": "V"}
    answer = await http.post("/api/v1/auth/register", json=body)
    assert answer.status_code == 201, answer.text
    user = answer.json()
    return User(id=user["user"]["id"], auth={"Authorization": f"Bearer {user['access_token']}"})


@contextlib.asynccontextmanager
async def stream(
    http: httpx.AsyncClient, path: str, *, headers: dict[str, str] | None = None, params: dict[str, str] | None = None
) -> AsyncIterator[SSE]:
    async with http.stream("GET", path, headers=headers, params=params, timeout=httpx.Timeout(10, read=30)) as answer:
        assert answer.status_code == 200, (await answer.aread()).decode()
        assert answer.headers["content-type"].startswith("text/event-stream")
        yield SSE(answer)


async def refused(http: httpx.AsyncClient, path: str, **kwargs: Any) -> tuple[int, str]:
    """The status and error code of a stream request that must not open."""
    answer = await http.get(path, timeout=10, **kwargs)
    return answer.status_code, answer.json()["error_code"]


async def feed_after(http: httpx.AsyncClient, user: User, cursor: str | None) -> tuple[dict[str, Any], str]:
    """The first change of the feed after ``cursor``, and the feed's cursor after it."""
    params = {"limit": "1", **({"cursor": cursor} if cursor else {})}
    page = (await http.get(f"{user.tasks}/changes", params=params, headers=user.auth)).json()
    return page["changes"][0], page["next_cursor"]


async def test_create_update_delete_arrive_in_order_as_the_feed_reports_them(http: httpx.AsyncClient) -> None:
    user = await register(http)
    async with stream(http, f"{user.tasks}/events", headers=user.auth) as events:
        created = (await http.post(user.tasks, json={"title": "live"}, headers=user.auth)).json()
        first = await events.next()
        assert first.event == "task.upserted"
        assert first.data == {"op": "upsert", "task": created}
        assert await feed_after(http, user, None) == (first.data, first.id)

        updated = await http.put(f"{user.tasks}/{created['id']}", json={"title": "renamed"}, headers=user.auth)
        second = await events.next()
        assert (second.event, second.data["task"]) == ("task.upserted", updated.json())
        assert await feed_after(http, user, first.id) == (second.data, second.id)

        assert (await http.delete(f"{user.tasks}/{created['id']}", headers=user.auth)).status_code == 200
        third = await events.next()
        assert third.event == "task.deleted"
        assert (third.data["op"], third.data["task_id"]) == ("delete", created["id"])
        assert await feed_after(http, user, second.id) == (third.data, third.id)
        assert len({first.id, second.id, third.id}) == 3


async def test_last_event_id_resumes_with_exactly_the_missed_changes(http: httpx.AsyncClient) -> None:
    user = await register(http)
    for n in range(3):
        await http.post(user.tasks, json={"title": f"before {n}"}, headers=user.auth)
    async with stream(http, f"{user.tasks}/events", headers=user.auth) as events:
        seen = [await events.next() for _ in range(3)]
    assert [event.data["task"]["title"] for event in seen] == ["before 0", "before 1", "before 2"]
    # Disconnected: two more changes.
    for n in range(2):
        await http.post(user.tasks, json={"title": f"missed {n}"}, headers=user.auth)
    resume = {**user.auth, "Last-Event-ID": seen[-1].id or ""}
    async with stream(http, f"{user.tasks}/events", headers=resume) as events:
        again = [await events.next() for _ in range(2)]
        assert [event.data["task"]["title"] for event in again] == ["missed 0", "missed 1"]
        await events.silent(1.5)  # nothing repeated
    # From the middle: what came after the first event, nothing before it.
    middle = {**user.auth, "Last-Event-ID": seen[0].id or ""}
    async with stream(http, f"{user.tasks}/events", headers=middle) as events:
        titles = [(await events.next()).data["task"]["title"] for _ in range(4)]
        assert titles == ["before 1", "before 2", "missed 0", "missed 1"]
    # The cursor parameter (a new EventSource cannot set the header) resumes the same way.
    async with stream(http, f"{user.tasks}/events", headers=user.auth, params={"cursor": seen[-1].id or ""}) as events:
        assert (await events.next()).data["task"]["title"] == "missed 0"
    bad = {**user.auth, "Last-Event-ID": "not-a-cursor"}
    assert await refused(http, f"{user.tasks}/events", headers=bad) == (422, "VALIDATION_ERROR")


async def test_only_the_owner_with_a_credential_opens_a_stream(http: httpx.AsyncClient) -> None:
    user, other = await register(http), await register(http)
    assert await refused(http, f"{other.tasks}/events", headers=user.auth) == (403, "FORBIDDEN")
    assert await refused(http, f"{user.tasks}/events") == (401, "NOT_AUTHENTICATED")
    bad_token = {"Authorization": "Bearer not.a.token"}
    assert await refused(http, f"{user.tasks}/events", headers=bad_token) == (401, "INVALID_TOKEN")
    # A long-lived access token is never accepted in the URL.
    access_token = user.auth["Authorization"].removeprefix("Bearer ")
    params = {"ticket": access_token}
    assert await refused(http, f"{user.tasks}/events", params=params) == (401, "INVALID_TICKET")


async def test_a_ticket_opens_its_users_stream_until_it_expires(http: httpx.AsyncClient, live: LiveService) -> None:
    user, other = await register(http), await register(http)
    issued = await http.post(f"{user.tasks}/events/tokens", headers=user.auth)
    assert issued.status_code == 201
    ticket = issued.json()
    assert ticket["expires_in"] == TICKET_TTL
    started = time.monotonic()
    async with stream(http, f"{user.tasks}/events", params={"ticket": ticket["ticket"]}) as events:
        created = (await http.post(user.tasks, json={"title": "by ticket"}, headers=user.auth)).json()
        assert (await events.next()).data["task"] == created
    # Scoped: not another user's stream, not an access token, not issued for someone else's path.
    assert await refused(http, f"{other.tasks}/events", params={"ticket": ticket["ticket"]}) == (403, "FORBIDDEN")
    as_token = {"Authorization": f"Bearer {ticket['ticket']}"}
    assert (await http.get(user.tasks, headers=as_token)).status_code == 401
    assert (await http.post(f"{other.tasks}/events/tokens", headers=user.auth)).status_code == 403
    assert (await http.post(f"{user.tasks}/events/tokens")).status_code == 401
    await asyncio.sleep(max(0.0, TICKET_TTL + 1 - (time.monotonic() - started)))
    assert await refused(http, f"{user.tasks}/events", params={"ticket": ticket["ticket"]}) == (401, "TICKET_EXPIRED")
    assert ticket["ticket"] not in live.output()  # never logged


async def test_streams_per_user_are_capped_and_a_closed_one_frees_its_place(http: httpx.AsyncClient) -> None:
    user = await register(http)
    path = f"{user.tasks}/events"
    async with contextlib.AsyncExitStack() as open_streams:
        held = [await open_streams.enter_async_context(stream(http, path, headers=user.auth)) for _ in range(PER_USER)]
        for held_stream in held:  # both are running (their first heartbeat came)
            assert (await held_stream.next(3, comments=True)).comment == "keep-alive"
        assert await refused(http, path, headers=user.auth) == (429, "TOO_MANY_STREAMS")
    for _ in range(50):  # the server notices the closed streams within moments
        async with http.stream("GET", path, headers=user.auth) as answer:
            if answer.status_code == 200:
                assert (await SSE(answer).next(3, comments=True)).comment == "keep-alive"
                return
            assert answer.status_code == 429
        await asyncio.sleep(0.1)
    pytest.fail("no stream could be opened again after closing both")


async def test_a_heartbeat_comment_keeps_an_idle_stream_open(http: httpx.AsyncClient) -> None:
    user = await register(http)
    async with stream(http, f"{user.tasks}/events", headers=user.auth) as events:
        started = time.monotonic()
        for _ in range(2):
            assert (await events.next(HEARTBEAT + 2, comments=True)).comment == "keep-alive"
        assert time.monotonic() - started >= HEARTBEAT * 1.5


async def test_events_survive_the_listening_connection_dropping(
    http: httpx.AsyncClient, backend: str, database_url: str
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite has no listening connection")
    user = await register(http)
    async with stream(http, f"{user.tasks}/events", headers=user.auth) as events:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as connection:
                ended = await connection.scalar(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE application_name = 'todo-service events' AND datname = current_database()"
                    )
                )
        finally:
            await engine.dispose()
        assert ended >= 1  # the server's listener (and the in-process app's, when the suite runs one)
        # Written while nobody listens (the listener waits before connecting again): still delivered.
        created = (await http.post(user.tasks, json={"title": "during the outage"}, headers=user.auth)).json()
        assert (await events.next(10)).data["task"] == created
        created = (await http.post(user.tasks, json={"title": "after it"}, headers=user.auth)).json()
        assert (await events.next()).data["task"] == created
