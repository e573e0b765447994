"""Prometheus metrics at ``/metrics``, scraped after real requests; and with two real workers.

prometheus-client's registry is process-wide: every app these tests build counts into it, so each
test compares a scrape taken after its requests with one taken before. Multiprocess mode is chosen
when prometheus-client is imported, so it is tested on a ``todo-service run`` subprocess.
"""

from __future__ import annotations

import asyncio
import contextlib
import platform
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from tests.factories import Account, Client, SameLoopClient, create_task, make_settings
from tests.processes import run_console, running_service, service_env
from tests.servers import free_port, migrate
from todo_service import __version__
from todo_service.app import create_app
from todo_service.observability.metrics import METRICS_PATH, _RequestMetrics

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from prometheus_client.samples import Sample

TASK = "/api/v1/users/{user_id}/tasks/{task_id}"
TASKS = "/api/v1/users/{user_id}/tasks"
LOGIN = "/api/v1/auth/login"
REQUESTS = "todo_http_requests_total"
DURATION = "todo_http_request_duration_seconds"
IN_FLIGHT = "todo_http_requests_in_progress"
UNMATCHED = "todo_http_unmatched_requests_total"
AUDIT = "todo_audit_events_total"
REJECTIONS = "todo_rate_limit_rejections_total"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
WRONG = "Wrong-Password-1"


class Scrape:
    """One ``/metrics`` answer, parsed."""

    def __init__(self, body: str) -> None:
        self.text = body
        self.samples: list[Sample] = [s for f in text_string_to_metric_families(body) for s in f.samples]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples called ``name`` whose labels include ``labels`` (0 when there are none)."""
        return sum(s.value for s in self.matching(name, **labels))

    def matching(self, name: str, **labels: str) -> list[Sample]:
        return [s for s in self.samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]

    def delta(self, before: Scrape, name: str, **labels: str) -> float:
        return self.value(name, **labels) - before.value(name, **labels)


async def scrape(client: Client) -> Scrape:
    response = await client.get(METRICS_PATH)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return Scrape(response.text)


@contextlib.asynccontextmanager
async def serve(database_url: str, **overrides: Any) -> AsyncIterator[Client]:
    async with SameLoopClient(app=create_app(make_settings(database_url, **overrides))) as client:
        yield client


async def test_requests_are_counted_by_route_template_never_by_id(client: Client, account: Account) -> None:
    tasks = [await create_task(client, account), await create_task(client, account)]
    before = await scrape(client)
    for task in tasks:
        assert (await client.get(f"{account.tasks_url}/{task['id']}", headers=account.headers)).status_code == 200
    after = await scrape(client)

    assert after.delta(before, REQUESTS, method="GET", path=TASK, status_code="200") == 2
    assert len(after.matching(REQUESTS, method="GET", path=TASK, status_code="200")) == 1  # one series
    assert after.delta(before, f"{DURATION}_count", method="GET", path=TASK, status_code="200") == 2
    assert after.delta(before, f"{DURATION}_sum", method="GET", path=TASK, status_code="200") > 0
    buckets = after.matching(f"{DURATION}_bucket", method="GET", path=TASK, status_code="200")
    assert {"0.005", "0.1", "1.0", "+Inf"} <= {b.labels["le"] for b in buckets}
    assert after.delta(before, f"{DURATION}_bucket", method="GET", path=TASK, status_code="200", le="+Inf") == 2
    assert not UUID.search(after.text)
    assert account.id not in after.text
    assert all(task["id"] not in after.text for task in tasks)


async def test_statuses_are_labels_and_middleware_errors_keep_theirs(client: Client, account: Account) -> None:
    missing = f"{account.tasks_url}/{uuid.uuid4()}"
    before = await scrape(client)
    assert (await client.get(missing, headers=account.headers)).status_code == 404
    assert (await client.get(missing)).status_code == 401  # raised by the JWT middleware, not the handler
    assert (await client.post(account.tasks_url, json={"title": 7}, headers=account.headers)).status_code == 422
    after = await scrape(client)

    assert after.delta(before, REQUESTS, method="GET", path=TASK, status_code="404") == 1
    assert after.delta(before, REQUESTS, method="GET", path=TASK, status_code="401") == 1
    assert after.delta(before, REQUESTS, method="POST", path=TASKS, status_code="422") == 1
    assert after.delta(before, REQUESTS, path=TASK, status_code="200") == 0
    assert after.delta(before, "todo_http_requests_error_total") == 0


async def test_unknown_routes_share_one_series_per_status(client: Client) -> None:
    before = await scrape(client)
    for _ in range(2):
        assert (await client.get(f"/api/v1/nothing/{uuid.uuid4()}")).status_code == 404
    assert (await client.delete("/api/v1/health")).status_code == 405
    after = await scrape(client)

    assert after.delta(before, UNMATCHED, status_code="404") == 2
    assert after.delta(before, UNMATCHED, status_code="405") == 1
    assert not UUID.search(after.text)
    assert "nothing" not in after.text
    assert after.delta(before, REQUESTS) == 0  # no route: not in the per-route family at all


async def test_in_flight_requests_are_counted_until_answered(client: Client, account: Account) -> None:
    release = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield b'{"title": "slow'
        await release.wait()  # the handler is waiting for the rest of the body
        yield b'"}'

    posting = asyncio.create_task(client.post(account.tasks_url, content=slow_body(), headers=account.headers))
    try:
        during: Scrape | None = None
        for _ in range(100):  # until the request is in the app (a few loop turns)
            during = await scrape(client)
            if during.value(IN_FLIGHT, method="POST", path=TASKS):
                break
            await asyncio.sleep(0.01)
        assert during is not None
        assert during.value(IN_FLIGHT, method="POST", path=TASKS) == 1
    finally:
        release.set()
        response = await asyncio.wait_for(posting, 10)
    assert response.status_code == 201, response.text
    after = await scrape(client)
    assert after.value(IN_FLIGHT, method="POST", path=TASKS) == 0
    assert after.delta(during, REQUESTS, method="POST", path=TASKS, status_code="201") == 1


async def test_db_pool_gauges_follow_checkouts(client: Client, account: Account) -> None:
    engine = client.app.state.context.engine
    # The gauge counts every engine of the process, and the test apps' webhook workers borrow a
    # connection for a moment several times a second: measure again (a bounded number of times)
    # until no borrow of theirs falls between the scrapes.
    # Each of the two checks is retried on its own: on a loaded machine a clean round for both at once
    # can take longer than the bound.
    followed = returned = False
    for _ in range(200):
        await asyncio.sleep(0.02)
        before = await scrape(client)
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            during = await scrape(client)
        await create_task(client, account)  # a request's own checkouts come back too
        after = await scrape(client)
        borrowed = before.value("todo_db_pool_checked_out")
        followed = followed or during.value("todo_db_pool_checked_out") == borrowed + 1
        returned = returned or after.value("todo_db_pool_checked_out") == borrowed
        if followed and returned:
            break

    assert followed, "the gauge never showed the held connection alone"
    assert returned, "the gauge never came back after the request"
    assert after.value("todo_db_pool_size") >= engine.sync_engine.pool.size() > 0


async def test_build_info(client: Client) -> None:
    info = (await scrape(client)).matching("todo_build_info")
    assert [(s.labels, s.value) for s in info] == [
        ({"version": __version__, "python_version": platform.python_version()}, 1.0)
    ]


async def test_login_failures_and_lockouts_come_from_the_audit_trail(client: Client, account: Account) -> None:
    before = await scrape(client)
    for _ in range(5):  # LOCKOUT_THRESHOLD
        response = await client.post(LOGIN, json={"email": account.email, "password": WRONG})
        assert response.status_code == 401
    response = await client.post(LOGIN, json={"email": account.email, "password": account.password})
    assert response.status_code == 423
    after = await scrape(client)

    assert after.delta(before, AUDIT, event="login_failed", outcome="failure") == 5
    assert after.delta(before, AUDIT, event="account_locked", outcome="blocked") == 1
    assert after.delta(before, AUDIT, event="login_blocked", outcome="blocked") == 1
    assert after.delta(before, AUDIT, event="login_succeeded") == 0
    assert after.delta(before, REQUESTS, method="POST", path=LOGIN, status_code="423") == 1


async def test_rate_limit_rejections_are_counted_by_rule(database_url: str) -> None:
    async with serve(database_url, rate_limit_enabled=True, rate_limit_login="2/minute") as client:
        before = await scrape(client)
        statuses = [
            (await client.post(LOGIN, json={"email": "rl@example.com", "password": WRONG})).status_code
            for _ in range(4)
        ]
        after = await scrape(client)

    assert statuses == [401, 401, 429, 429]
    assert after.delta(before, REJECTIONS, rule="login") == 2
    assert after.delta(before, REJECTIONS, rule="per_ip") == 0
    assert after.delta(before, AUDIT, event="rate_limited", outcome="blocked") == 1  # once per window
    assert after.delta(before, REQUESTS, method="POST", path=LOGIN, status_code="429") == 2  # not 200


async def test_the_endpoint_is_public_unlimited_uncounted_and_undocumented(database_url: str) -> None:
    async with serve(database_url, rate_limit_enabled=True, rate_limit_per_ip="2/minute") as client:
        responses = [await client.get(METRICS_PATH) for _ in range(4)]
        schema = (await client.get("/api/docs/openapi.json")).json()

    assert [r.status_code for r in responses] == [200] * 4  # no token, and over the per-IP limit
    assert all("ratelimit-limit" not in r.headers for r in responses)
    assert not Scrape(responses[-1].text).matching(REQUESTS, path=METRICS_PATH)
    assert not [path for path in schema["paths"] if "metrics" in path]


async def test_metrics_disabled_installs_nothing(database_url: str) -> None:
    before = Scrape(generate_latest(REGISTRY).decode())
    async with serve(database_url, metrics_enabled=False, rate_limit_enabled=True, rate_limit_login="1/minute") as c:
        assert (await c.get(METRICS_PATH)).status_code == 404
        statuses = [
            (await c.post(LOGIN, json={"email": "off@example.com", "password": WRONG})).status_code for _ in "ab"
        ]
        assert statuses == [401, 429]
        assert _RequestMetrics not in c.app.middleware
        context = c.app.state.context
        assert context.audit_log.on_record is None
        assert c.app.state.rate_limiter.on_rejected is None
    after = Scrape(generate_latest(REGISTRY).decode())

    assert after.delta(before, AUDIT) == 0
    assert after.delta(before, REJECTIONS) == 0
    assert after.delta(before, REQUESTS) == 0
    assert after.delta(before, UNMATCHED) == 0


# --- several workers: prometheus-client's multiprocess mode, on a real `todo-service run` --------


def _worker_counts(directory: Path, path: str) -> dict[int, float]:
    """Requests to ``path`` each worker wrote to its own file (``counter_<pid>.db``)."""
    counts: dict[int, float] = {}
    for file in directory.glob("counter_*.db"):
        metrics = MultiProcessCollector.merge([str(file)])  # type: ignore[no-untyped-call]
        samples = [s for m in metrics for s in m.samples if s.name == REQUESTS and s.labels.get("path") == path]
        counts[int(file.stem.removeprefix("counter_"))] = sum(s.value for s in samples)
    return counts


@contextlib.contextmanager
def two_workers(tmp_path: Path) -> Iterator[tuple[str, Path, int]]:
    """``todo-service run`` with two workers on a migrated SQLite file: (base URL, metrics dir, server pid)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'todo.db'}"
    migrate(url)
    directory = tmp_path / "prometheus"
    directory.mkdir()
    env = service_env(DATABASE_URL=url, PROMETHEUS_MULTIPROC_DIR=str(directory), RATE_LIMIT_ENABLED="false")
    with running_service("--web-concurrency", "2", cwd=tmp_path, env=env) as service:
        yield service.base_url, directory, service.process.pid


def test_two_workers_add_up_in_every_scrape(tmp_path: Path) -> None:
    with two_workers(tmp_path) as (base_url, directory, server_pid):

        def unauthenticated_get(_: int) -> int:  # a new connection each time: the workers share them out
            return httpx.get(f"{base_url}/api/v1/users/{uuid.uuid4()}/tasks/{uuid.uuid4()}", timeout=10).status_code

        sent, counts = 0, dict[int, float]()
        with ThreadPoolExecutor(8) as pool:
            for _ in range(25):  # until both workers have served some (usually the first round)
                assert set(pool.map(unauthenticated_get, range(40))) == {401}
                sent += 40
                counts = _worker_counts(directory, TASK)
                if len(counts) == 2 and all(counts.values()):
                    break
        deadline = time.monotonic() + 10  # a worker counts a request just after answering it
        while sum(counts.values()) < sent and time.monotonic() < deadline:
            time.sleep(0.05)
            counts = _worker_counts(directory, TASK)
        assert len(counts) == 2, counts
        assert all(counts.values()), counts
        assert server_pid not in counts
        assert sum(counts.values()) == sent

        scrapes = [Scrape(httpx.get(f"{base_url}{METRICS_PATH}", timeout=10).text) for _ in range(6)]
        for result in scrapes:  # whichever worker answers, it merges every worker's files
            assert result.value(REQUESTS, method="GET", path=TASK, status_code="401") == sent
            assert result.value(f"{DURATION}_count", path=TASK) == sent
            assert result.value(IN_FLIGHT, path=TASK) == 0
            assert result.value("todo_db_pool_size") == 2 * 5  # livesum over two live workers' pools
            assert [s.value for s in result.matching("todo_build_info", version=__version__)] == [1.0]
            assert not UUID.search(result.text)
        # Nothing borrowed once the requests are done. The workers' background jobs (webhooks,
        # reminders) borrow a connection for a moment now and then: a scrape can fall in one, so ask
        # again (a bounded number of times) for one that falls between them.
        borrowed = [scrape.value("todo_db_pool_checked_out") for scrape in scrapes]
        for _ in range(50):
            if 0 in borrowed:
                break
            time.sleep(0.05)
            borrowed.append(
                Scrape(httpx.get(f"{base_url}{METRICS_PATH}", timeout=10).text).value("todo_db_pool_checked_out")
            )
        assert 0 in borrowed, borrowed  # a leak would never come back to 0

    # Stopped: each worker removed its gauges (all "live" modes, mark_process_dead); the counters stay.
    deadline = time.monotonic() + 15
    while list(directory.glob("gauge_*")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not list(directory.glob("gauge_*"))
    assert len(list(directory.glob("counter_*.db"))) == 2


def test_an_unusable_multiprocess_dir_stops_the_start(tmp_path: Path) -> None:
    env = service_env(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'todo.db'}")
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "missing")
    result = run_console("run", "--port", str(free_port()), cwd=tmp_path, env=env, timeout=60)
    assert result.returncode == 1
    assert "invalid setting PROMETHEUS_MULTIPROC_DIR" in result.stderr
    assert "is not an existing, writable directory" in result.stderr
