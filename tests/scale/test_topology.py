"""The scaled-out topology, for real: nginx over three ``todo-service run`` replicas, one PostgreSQL
behind PgBouncer (transaction mode, ``DATABASE_PGBOUNCER``), one Redis for the rate limits.

Each check is made across replicas: a rate limit and a lockout count once for all of them, an
Idempotency-Key sent to two replicas creates one task, an SSE stream on one replica gets the write
made on another, a webhook event is delivered once although every replica runs a delivery worker,
and a replica SIGKILLed under load loses no write it acknowledged. Everything listens on loopback;
every loop is bounded in count and time. ``just scale-test`` runs this module and prints its figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.factories import PASSWORD
from tests.integration.test_events_sse import User, stream
from tests.processes import run_console, running_service, service_env, stop
from tests.scale.servers import nginx, pgbouncer
from tests.servers import fresh_postgres_database, redis_server
from tests.webhook_receiver import webhook_receiver

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from tests.processes import LiveService
    from tests.scale.servers import Nginx, PgBouncer
    from tests.webhook_receiver import Receiver

REPLICAS = 3
LOGIN_LIMIT = 6  # logins per client IP and minute, counted in Redis for every replica
LOCKOUT_THRESHOLD = 3
LOAD_REQUESTS = 240  # creates sent while a replica is killed
LOAD_CLIENTS = 8
KILL_AFTER = 60  # acknowledged creates before the SIGKILL


@dataclass
class Topology:
    """The running replicas, the balancer before them and what they share."""

    replicas: list[LiveService]
    victim: LiveService  # a fourth replica, behind its own nginx, for the SIGKILL test only
    balancer: Nginx
    bouncer: PgBouncer
    env: dict[str, str]
    receiver: Receiver
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def urls(self) -> list[str]:
        return [replica.base_url for replica in self.replicas]


def _upstream(base_url: str) -> str:
    return base_url.removeprefix("http://")


@pytest.fixture(scope="module")
async def topology(postgres_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Topology]:
    """The whole topology, started once for the module (the replicas side by side), stopped after it."""
    name = f"todo_scale_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    direct = await fresh_postgres_database(postgres_admin_url, name)
    workdir = tmp_path_factory.mktemp("scale")
    began = time.monotonic()
    with contextlib.ExitStack() as stack:
        bouncer = stack.enter_context(pgbouncer(postgres_admin_url, pool_mode="transaction", pool_size=8))
        redis = stack.enter_context(redis_server())
        receiver = stack.enter_context(webhook_receiver())
        env = service_env(
            DATABASE_URL=bouncer.url(direct),
            DATABASE_PGBOUNCER="true",
            DATABASE_DIRECT_URL=direct,
            DB_POOL_SIZE="10",
            DB_MAX_OVERFLOW="0",
            REDIS_URL=redis.url,
            # A loaded CI machine can take longer than the 0.25 s default: the limiter would fail open.
            REDIS_TIMEOUT="5",
            RATE_LIMIT_ENABLED="true",
            RATE_LIMIT_LOGIN=f"{LOGIN_LIMIT}/minute",
            RATE_LIMIT_REGISTER="1000/minute",
            RATE_LIMIT_PER_IP="100000/minute",
            RATE_LIMIT_PER_USER="100000/minute",
            LOCKOUT_THRESHOLD=str(LOCKOUT_THRESHOLD),
            TRUSTED_PROXIES="127.0.0.1",  # nginx, and the tests' direct calls that name a client
            EVENTS_POLL_SECONDS="60",  # an event within seconds came through NOTIFY
            WEBHOOK_ALLOW_PRIVATE_TARGETS="true",
            WEBHOOK_POLL_INTERVAL_SECONDS="0.1",
            WEBHOOK_BACKOFF_BASE_SECONDS="0.2",
            WEBHOOK_BACKOFF_MAX_SECONDS="0.4",
        )
        migration = run_console("database", "upgrade", "--no-prompt", cwd=workdir, env={**env, "DATABASE_URL": direct})
        assert migration.returncode == 0, migration.stdout + migration.stderr
        with ThreadPoolExecutor(REPLICAS + 1) as pool:  # they start side by side
            starting = [
                pool.submit(stack.enter_context, running_service(cwd=workdir, env=env)) for _ in range(REPLICAS + 1)
            ]
        *replicas, victim = [started.result() for started in starting]
        balancer = stack.enter_context(nginx([_upstream(replica.base_url) for replica in replicas]))
        topology = Topology(replicas, victim, balancer, bouncer, env, receiver)
        topology.figures["start_seconds"] = f"{time.monotonic() - began:.1f}"
        yield topology
        for replica in [*replicas, victim]:  # every replica drains at once; the stack then waits for each
            with contextlib.suppress(ProcessLookupError):
                os.killpg(replica.process.pid, signal.SIGTERM)
        for replica in replicas:
            assert "Traceback" not in replica.output(), replica.output()[-3000:]
        if topology.figures:
            print("\nscale-test figures:", ", ".join(f"{k}={v}" for k, v in topology.figures.items()))  # noqa: T201


@pytest.fixture
async def clients(topology: Topology) -> AsyncIterator[list[httpx.AsyncClient]]:
    """One client per replica (direct), then one through nginx, last."""
    async with contextlib.AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=20))
            for url in [*topology.urls, topology.balancer.base_url]
        ]


async def _register(http: httpx.AsyncClient) -> tuple[User, str]:
    email = f"{uuid.uuid4().hex}@example.com"
    body = {"email": email, "password": PASSWORD, "first_name": "Scale", "last_name": "Out"}
    answer = await http.post("/api/v1/auth/register", json=body)
    assert answer.status_code == 201, answer.text
    data = answer.json()
    return User(id=data["user"]["id"], auth={"Authorization": f"Bearer {data['access_token']}"}), email


def _as_client(address: str) -> dict[str, str]:
    # The replicas trust 127.0.0.1 as a proxy: this names the client, so each check has counters of its own.
    return {"X-Forwarded-For": address}


async def test_the_login_rate_limit_counts_once_across_replicas(
    topology: Topology, clients: list[httpx.AsyncClient]
) -> None:
    replicas, balancer = clients[:REPLICAS], clients[-1]
    _, email = await _register(replicas[0])
    login = {"email": email, "password": PASSWORD}
    # LOGIN_LIMIT + 1 logins from one client, each to the next replica in turn: exactly one 429.
    direct = [
        (
            await replicas[n % REPLICAS].post("/api/v1/auth/login", json=login, headers=_as_client("127.0.0.21"))
        ).status_code
        for n in range(LOGIN_LIMIT + 1)
    ]
    assert direct == [200] * LOGIN_LIMIT + [429]
    # The same through nginx, which spreads them over the replicas itself.
    logged = len(topology.balancer.upstreams())
    balanced = [
        (await balancer.post("/api/v1/auth/login", json=login, headers=_as_client("127.0.0.22"))).status_code
        for _ in range(LOGIN_LIMIT + 1)
    ]
    assert balanced == [200] * LOGIN_LIMIT + [429]
    spread = set(topology.balancer.upstreams()[logged:])
    assert spread == {_upstream(url) for url in topology.urls}
    topology.figures["rate_limit"] = f"{2 * (LOGIN_LIMIT + 1)} logins over {REPLICAS} replicas, 2 x 429"


async def test_a_lockout_holds_on_every_replica(clients: list[httpx.AsyncClient]) -> None:
    replicas = clients[:REPLICAS]
    _, email = await _register(replicas[0])
    wrong = {"email": email, "password": "Wrong-Horse-42"}
    failures = [
        (
            await replicas[n % REPLICAS].post("/api/v1/auth/login", json=wrong, headers=_as_client("127.0.0.31"))
        ).status_code
        for n in range(LOCKOUT_THRESHOLD)
    ]
    assert failures == [401] * LOCKOUT_THRESHOLD
    right = {"email": email, "password": PASSWORD}
    for n, replica in enumerate(replicas):  # the right password, from other clients, on every replica
        answer = await replica.post("/api/v1/auth/login", json=right, headers=_as_client(f"127.0.0.{32 + n}"))
        assert (answer.status_code, answer.json()["error_code"]) == (423, "ACCOUNT_LOCKED")


async def test_an_idempotency_key_holds_across_replicas(clients: list[httpx.AsyncClient]) -> None:
    first, second = clients[0], clients[1]
    user, _ = await _register(first)
    keyed = {**user.auth, "Idempotency-Key": uuid.uuid4().hex}
    once = await first.post(user.tasks, json={"title": "once"}, headers=keyed)
    again = await second.post(user.tasks, json={"title": "once"}, headers=keyed)
    assert (once.status_code, again.status_code) == (201, 201)
    assert again.json() == once.json()
    # At the same time on two replicas: one does the work, the other waits its turn (409) or replays.
    raced = {**user.auth, "Idempotency-Key": uuid.uuid4().hex}
    answers = await asyncio.gather(*(http.post(user.tasks, json={"title": "raced"}, headers=raced) for http in clients))
    assert {answer.status_code for answer in answers} <= {201, 409}
    created = {answer.json()["id"] for answer in answers if answer.status_code == 201}
    assert len(created) == 1
    listing = (await first.get(user.tasks, params={"limit": "100"}, headers=user.auth)).json()
    assert sorted(task["title"] for task in listing["items"]) == ["once", "raced"]


async def test_a_write_on_one_replica_reaches_a_stream_on_another(clients: list[httpx.AsyncClient]) -> None:
    on_a, on_b, balancer = clients[0], clients[1], clients[-1]
    user, _ = await _register(on_a)
    async with stream(on_a, f"{user.tasks}/events", headers=user.auth) as events:
        for n in range(3):
            started = time.monotonic()
            created = (await on_b.post(user.tasks, json={"title": f"via B {n}"}, headers=user.auth)).json()
            event = await events.next(10)
            assert event.data["task"] == created
            assert time.monotonic() - started < 10  # NOTIFY, not the 60 s poll
    async with stream(balancer, f"{user.tasks}/events", headers=user.auth, params={"cursor": event.id or ""}) as events:
        created = (await clients[2].post(user.tasks, json={"title": "via C"}, headers=user.auth)).json()
        assert (await events.next(10)).data["task"] == created  # through nginx, unbuffered


async def test_a_webhook_event_is_delivered_once_not_once_per_replica(
    topology: Topology, clients: list[httpx.AsyncClient]
) -> None:
    receiver = topology.receiver
    user, _ = await _register(clients[0])
    path = f"/api/v1/users/{user.id}/webhooks"
    hook = await clients[0].post(path, json={"url": receiver.url, "events": ["task.upserted"]}, headers=user.auth)
    assert hook.status_code == 201, hook.text
    writes = 12
    for n in range(writes):
        answer = await clients[n % REPLICAS].post(user.tasks, json={"title": f"hooked {n}"}, headers=user.auth)
        assert answer.status_code == 201
    mine = await receiver.wait_for(writes, seconds=30, where=lambda got: user.id in got.body.decode())
    await asyncio.sleep(2)  # any second delivery of an event (a worker per replica) would arrive by now
    mine = [got for got in receiver.requests if user.id in got.body.decode()]
    ids = [got.headers["webhook-id"] for got in mine]
    assert len(ids) == writes
    assert len(set(ids)) == writes
    topology.figures["webhooks"] = f"{writes} events, {len(ids)} deliveries by {REPLICAS} workers"


async def test_a_replica_killed_under_load_loses_no_acknowledged_write(topology: Topology) -> None:
    victim = topology.victim
    upstreams = [*(_upstream(url) for url in topology.urls[:2]), _upstream(victim.base_url)]
    with nginx(upstreams) as balancer:
        async with httpx.AsyncClient(base_url=balancer.base_url, timeout=10) as http:
            user, _ = await _register(http)
            outcome = await _load(http, user, victim)
            # Every 201 is readable, on each surviving replica; no create was done twice.
            for task_id, title in outcome.acked.items():
                for url in topology.urls[:2]:
                    read = await http.get(f"{url}{user.tasks}/{task_id}", headers=user.auth)
                    assert (read.status_code, read.json()["title"]) == (200, title)
            titles = await _titles(http, user)
        hits = balancer.upstreams()
    assert len(titles) == len(set(titles)), "a create was done twice"
    assert set(outcome.acked.values()) <= set(titles)
    assert len(titles) <= LOAD_REQUESTS
    assert hits.count(_upstream(victim.base_url)) > 0  # the victim did take part
    topology.figures.update(
        load_requests=LOAD_REQUESTS,
        load_seconds=f"{outcome.seconds:.1f}",
        acked=len(outcome.acked),
        failed=outcome.failed,
        acked_readable=len(outcome.acked),
        tasks_stored=len(titles),
    )


async def _titles(http: httpx.AsyncClient, user: User) -> list[str]:
    """The titles of every task of ``user``, page by page."""
    titles: list[str] = []
    for page in range(1, LOAD_REQUESTS // 100 + 2):
        answer = await http.get(user.tasks, params={"limit": "100", "page": str(page)}, headers=user.auth)
        assert answer.status_code == 200, answer.text
        titles += [task["title"] for task in answer.json()["items"]]
    return titles


@dataclass
class Outcome:
    acked: dict[str, str] = field(default_factory=dict)  # task id -> title, for every 201
    failed: int = 0  # 502s and broken connections: not acknowledged
    seconds: float = 0.0


async def _load(http: httpx.AsyncClient, user: User, victim: LiveService) -> Outcome:
    """LOAD_REQUESTS creates from LOAD_CLIENTS clients through nginx; SIGKILL the victim after KILL_AFTER acks."""
    outcome = Outcome()
    queue = iter(range(LOAD_REQUESTS))
    killed = asyncio.Event()

    async def client() -> None:
        for n in queue:
            title = f"load {n}"
            headers = {**user.auth, "Idempotency-Key": f"load-{n}"}
            try:
                answer = await http.post(user.tasks, json={"title": title}, headers=headers)
            except httpx.TransportError:
                outcome.failed += 1
                continue
            if answer.status_code == 201:
                outcome.acked[answer.json()["id"]] = title
            else:
                assert answer.status_code in {502, 503, 504}, answer.text
                outcome.failed += 1
            if len(outcome.acked) >= KILL_AFTER and not killed.is_set():
                killed.set()
                assert stop(victim, signal.SIGKILL, timeout=10) == -signal.SIGKILL

    started = time.monotonic()
    async with asyncio.timeout(120):
        await asyncio.gather(*(client() for _ in range(LOAD_CLIENTS)))
    outcome.seconds = time.monotonic() - started
    assert killed.is_set()
    return outcome
