"""Webhooks end to end on each database: registration, signed delivery to a real receiver, retries,
the attempts listing, refused targets, redirects, oversized answers, disabling, rotation, ownership."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import func, select, update

from tests.webhook_receiver import Receiver, webhook_receiver
from todo_service.webhooks.models import Webhook, WebhookAttempt, WebhookDelivery

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlalchemy.ext.asyncio import AsyncEngine

    from tests.factories import Account, Client

BOTH = ["task.upserted", "task.deleted"]


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Standard Webhooks verification, written here independently of the service's signing module."""
    key = base64.b64decode(secret[len("whsec_") :])
    signed = headers["webhook-id"].encode() + b"." + headers["webhook-timestamp"].encode() + b"." + body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(expected, each) for each in headers["webhook-signature"].split())


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver() as found:
        yield found


async def make_webhook(client: Client, account: Account, url: str, events: list[str] | None = None) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/users/{account.id}/webhooks", json={"url": url, "events": events or BOTH}, headers=account.headers
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def make_task(client: Client, account: Account, title: str = "Write the guide") -> dict[str, Any]:
    response = await client.post(f"/api/v1/users/{account.id}/tasks", json={"title": title}, headers=account.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def deliveries(client: Client, account: Account, webhook_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/v1/users/{account.id}/webhooks/{webhook_id}/deliveries", headers=account.headers)
    assert response.status_code == 200, response.text
    return list(response.json())


async def settled(client: Client, account: Account, webhook_id: str, count: int = 1) -> list[dict[str, Any]]:
    """The deliveries once ``count`` of them are no longer pending (bounded: 20 s)."""
    for _ in range(400):
        found = await deliveries(client, account, webhook_id)
        if len([d for d in found if d["status"] != "pending"]) >= count:
            return found
        await asyncio.sleep(0.05)
    msg = f"deliveries did not settle: {found}"
    raise AssertionError(msg)


async def test_registration_shows_the_secret_once(client: Client, account: Account, receiver: Receiver) -> None:
    created = await make_webhook(client, account, receiver.url, ["task.deleted"])
    assert created["secret"].startswith("whsec_")
    assert len(base64.b64decode(created["secret"][6:])) == 32
    assert created["events"] == ["task.deleted"]
    assert created["enabled"] is True
    one = await client.get(f"/api/v1/users/{account.id}/webhooks/{created['id']}", headers=account.headers)
    listing = await client.get(f"/api/v1/users/{account.id}/webhooks", headers=account.headers)
    assert one.status_code == 200
    assert "secret" not in one.json()
    assert created["secret"] not in one.text + listing.text
    assert [w["id"] for w in listing.json()] == [created["id"]]
    assert one.json()["disabled_reason"] is None


async def test_a_change_is_delivered_signed_with_its_state_at_that_time(
    client: Client, account: Account, receiver: Receiver
) -> None:
    webhook = await make_webhook(client, account, receiver.url)
    task = await make_task(client, account)
    edited = await client.put(
        f"/api/v1/users/{account.id}/tasks/{task['id']}", json={"title": "Edited"}, headers=account.headers
    )
    assert edited.status_code == 200
    gone = await client.delete(f"/api/v1/users/{account.id}/tasks/{task['id']}", headers=account.headers)
    assert gone.status_code == 200
    got = await receiver.wait_for(3)
    assert all(verify(webhook["secret"], r.headers, r.body) for r in got)
    assert not verify(webhook["secret"], {**got[0].headers, "webhook-timestamp": "1"}, got[0].body)
    bodies = sorted((json.loads(r.body) for r in got), key=lambda b: b["timestamp"])
    assert [b["type"] for b in bodies] == ["task.upserted", "task.upserted", "task.deleted"]
    # Each upsert carries the task as that change left it, as the API showed it then.
    assert bodies[0]["data"]["task"]["title"] == "Write the guide"
    assert bodies[0]["data"]["task"]["etag"] == task["etag"]
    assert bodies[1]["data"]["task"]["title"] == "Edited"
    assert bodies[1]["data"]["task"]["etag"] == edited.json()["etag"]
    for key in ("id", "user_id", "completed", "priority", "description", "due_date"):
        assert bodies[1]["data"]["task"][key] == edited.json()[key]
    assert datetime.fromisoformat(bodies[1]["data"]["task"]["updated_at"]) == datetime.fromisoformat(
        edited.json()["updated_at"]
    )
    assert bodies[2]["data"]["task_id"] == task["id"]
    assert got[0].headers["content-type"] == "application/json"
    assert len({r.headers["webhook-id"] for r in got}) == 3


async def test_a_failing_receiver_gets_the_same_event_id_until_it_succeeds(
    client: Client, account: Account, receiver: Receiver
) -> None:
    receiver.statuses = [500, 503]
    webhook = await make_webhook(client, account, receiver.url)
    await make_task(client, account)
    got = await receiver.wait_for(3)
    assert len({r.headers["webhook-id"] for r in got}) == 1
    assert len({r.body for r in got}) == 1
    assert all(verify(webhook["secret"], r.headers, r.body) for r in got)
    [delivery] = await settled(client, account, webhook["id"])
    assert delivery["id"] == got[0].headers["webhook-id"]
    assert delivery["status"] == "delivered"
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 503, 200]
    assert all(a["latency_ms"] >= 0 for a in delivery["attempts"])
    # Backoff: the second retry waited longer than half the doubled base (0.2 s, then 0.4 s capped).
    assert got[2].at - got[1].at >= 0.19


async def test_no_event_without_a_change_nor_for_a_rolled_back_one(
    client: Client, account: Account, receiver: Receiver, db_engine: AsyncEngine
) -> None:
    webhook = await make_webhook(client, account, receiver.url)
    task = await make_task(client, account)
    # The same title again changes nothing: the statement runs, but no event.
    same = await client.put(
        f"/api/v1/users/{account.id}/tasks/{task['id']}", json={"title": task["title"]}, headers=account.headers
    )
    assert same.status_code == 200
    # A batch whose second operation fails commits nothing: its first operation's event is not kept either.
    batch = await client.post(
        f"/api/v1/users/{account.id}/tasks/batch",
        json={"operations": [{"op": "create", "title": "never"}, {"op": "delete", "task_id": task["user_id"]}]},
        headers=account.headers,
    )
    assert batch.status_code == 404, batch.text
    await settled(client, account, webhook["id"])
    async with db_engine.connect() as connection:
        count = await connection.scalar(select(func.count()).select_from(WebhookDelivery))
    assert count == 1
    assert len(receiver.requests) == 1


async def test_a_webhook_deleted_while_its_delivery_is_on_the_wire_fails_nothing(
    client: Client, account: Account, receiver: Receiver, db_engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="todo_service.webhooks")
    receiver.pause = 0.5  # the receiver holds the request while the webhook is deleted
    webhook = await make_webhook(client, account, receiver.url, ["task.upserted"])
    await make_task(client, account)
    for _ in range(200):  # bounded: until the attempt is on the wire
        if sum(receiver.in_flight.values()):
            break
        await asyncio.sleep(0.01)
    assert sum(receiver.in_flight.values()) == 1
    deleted = await client.delete(f"/api/v1/users/{account.id}/webhooks/{webhook['id']}", headers=account.headers)
    assert deleted.status_code == 200, deleted.text
    [got] = await receiver.wait_for(1)  # answered: the worker records the attempt of a delivery that is gone
    delivery_id = got.headers["webhook-id"]
    await asyncio.sleep(0.3)

    logged = [r for r in caplog.records if r.name.startswith("todo_service.webhooks")]
    assert [(r.levelno, r.getMessage()) for r in logged] == [
        (logging.INFO, f"webhook delivery {delivery_id}: deleted with its webhook during the attempt")
    ]
    async with db_engine.connect() as connection:
        assert await connection.scalar(select(func.count()).select_from(WebhookAttempt)) == 0
    # And the worker goes on: the next webhook gets its event.
    receiver.pause = 0
    await make_webhook(client, account, receiver.url, ["task.upserted"])
    await make_task(client, account, "Next")
    await receiver.wait_for(2)


async def test_subscriptions_choose_the_events(client: Client, account: Account, receiver: Receiver) -> None:
    webhook = await make_webhook(client, account, receiver.url, ["task.deleted"])
    task = await make_task(client, account)
    await client.delete(f"/api/v1/users/{account.id}/tasks/{task['id']}", headers=account.headers)
    [got] = await receiver.wait_for(1)
    assert json.loads(got.body)["type"] == "task.deleted"
    [delivery] = await settled(client, account, webhook["id"])
    assert delivery["event"] == "task.deleted"


async def test_redirects_are_not_followed(client: Client, account: Account) -> None:
    with webhook_receiver() as first, webhook_receiver() as elsewhere:
        first.redirect_to = elsewhere.url
        webhook = await make_webhook(client, account, first.url)
        await make_task(client, account)
        await first.wait_for(1)
        found = await deliveries(client, account, webhook["id"])
        for _ in range(100):
            if found[0]["attempts"]:
                break
            await asyncio.sleep(0.05)
            found = await deliveries(client, account, webhook["id"])
        attempt = found[0]["attempts"][0]
        assert attempt["status_code"] == 307
        assert attempt["error"] == "redirects are not followed"
        assert found[0]["status"] == "pending"
        assert elsewhere.requests == []


async def test_an_oversized_answer_is_cut_at_64_kib(client: Client, account: Account, receiver: Receiver) -> None:
    receiver.body_size = 1024 * 1024
    webhook = await make_webhook(client, account, receiver.url)
    await make_task(client, account)
    [delivery] = await settled(client, account, webhook["id"])
    assert delivery["status"] == "delivered"
    assert [a["response_bytes"] for a in delivery["attempts"]] == [64 * 1024]


async def test_a_webhook_failing_past_the_window_is_disabled(
    client: Client, account: Account, receiver: Receiver, db_engine: AsyncEngine
) -> None:
    receiver.statuses = [500] * 1000
    webhook = await make_webhook(client, account, receiver.url)
    await make_task(client, account)
    await receiver.wait_for(1)
    # It has been failing for 4 days (the window is 3): the next failure disables it.
    async with db_engine.begin() as connection:
        await connection.execute(update(Webhook).values(failing_since=datetime.now(UTC) - timedelta(days=4)))
    for _ in range(200):
        read = (
            await client.get(f"/api/v1/users/{account.id}/webhooks/{webhook['id']}", headers=account.headers)
        ).json()
        if not read["enabled"]:
            break
        await asyncio.sleep(0.05)
    assert read["enabled"] is False
    assert read["disabled_at"] is not None
    assert "failed continuously" in read["disabled_reason"]
    assert "HTTP 500" in read["disabled_reason"]
    # Disabled: nothing more is attempted, and new changes are not queued for it.
    await asyncio.sleep(0.5)
    seen = len(receiver.requests)
    await make_task(client, account, "after")
    await asyncio.sleep(0.5)
    assert len(receiver.requests) == seen
    assert len(await deliveries(client, account, webhook["id"])) == 1


async def test_an_event_is_given_up_after_the_retry_window(
    client: Client, account: Account, receiver: Receiver, db_engine: AsyncEngine
) -> None:
    receiver.statuses = [500] * 1000
    webhook = await make_webhook(client, account, receiver.url)
    await make_task(client, account)
    await receiver.wait_for(1)
    async with db_engine.begin() as connection:
        await connection.execute(update(WebhookDelivery).values(created_at=datetime.now(UTC) - timedelta(hours=25)))
    [delivery] = await settled(client, account, webhook["id"])
    assert delivery["status"] == "failed"
    assert delivery["next_attempt_at"] is None
    assert {a["status_code"] for a in delivery["attempts"]} == {500}


async def test_rotation_signs_with_the_new_secret_only(client: Client, account: Account, receiver: Receiver) -> None:
    webhook = await make_webhook(client, account, receiver.url)
    path = f"/api/v1/users/{account.id}/webhooks/{webhook['id']}"
    rotated = await client.post(f"{path}/rotate-secret", headers=account.headers)
    assert rotated.status_code == 200
    secret = rotated.json()["secret"]
    assert secret.startswith("whsec_")
    assert secret != webhook["secret"]
    assert secret not in (await client.get(path, headers=account.headers)).text
    ping = await client.post(f"{path}/test", headers=account.headers)
    assert ping.status_code == 202
    [got] = await receiver.wait_for(1)
    assert got.headers["webhook-id"] == ping.json()["delivery_id"]
    assert json.loads(got.body) == {
        "type": "webhook.ping",
        "timestamp": json.loads(got.body)["timestamp"],
        "data": {"webhook_id": webhook["id"]},
    }
    assert verify(secret, got.headers, got.body)
    assert not verify(webhook["secret"], got.headers, got.body)


async def test_webhooks_are_owner_scoped(
    client: Client, account: Account, other_account: Account, receiver: Receiver
) -> None:
    webhook = await make_webhook(client, account, receiver.url)
    mine = f"/api/v1/users/{account.id}/webhooks"
    theirs = f"/api/v1/users/{other_account.id}/webhooks"
    assert (await client.get(mine, headers=other_account.headers)).status_code == 403
    assert (
        await client.post(mine, json={"url": receiver.url, "events": BOTH}, headers=other_account.headers)
    ).status_code == 403
    assert (await client.get(theirs, headers=other_account.headers)).json() == []
    for method, suffix in (
        ("GET", ""),
        ("DELETE", ""),
        ("POST", "/rotate-secret"),
        ("POST", "/test"),
        ("GET", "/deliveries"),
    ):
        answer = await client.request(method, f"{theirs}/{webhook['id']}{suffix}", headers=other_account.headers)
        assert answer.status_code == 404, (method, suffix)
        assert answer.json()["error_code"] == "WEBHOOK_NOT_FOUND"
    # Their tasks make no event for my webhook.
    await make_task(client, other_account)
    deleted = await client.delete(f"{mine}/{webhook['id']}", headers=account.headers)
    assert deleted.status_code == 200
    assert (await client.get(f"{mine}/{webhook['id']}", headers=account.headers)).status_code == 404
    assert receiver.requests == []


async def test_bad_bodies_and_refused_schemes(client: Client, account: Account) -> None:
    path = f"/api/v1/users/{account.id}/webhooks"
    for body in (
        {"url": "http://127.0.0.1/", "events": []},
        {"url": "http://127.0.0.1/", "events": ["task.eaten"]},
        {"url": "http://127.0.0.1/"},
    ):
        answer = await client.post(path, json=body, headers=account.headers)
        assert answer.status_code == 422, body
        assert answer.json()["error_code"] == "VALIDATION_ERROR"
    for url in ("ftp://127.0.0.1/", "http://user:pw@127.0.0.1/", "http://169.254.169.254/latest", "http://0.0.0.0/"):
        answer = await client.post(path, json={"url": url, "events": BOTH}, headers=account.headers)
        assert answer.status_code == 422, url
        assert answer.json()["error_code"] == "WEBHOOK_TARGET_REFUSED"


async def test_the_schema_describes_the_payloads_as_openapi_webhooks(client: Client) -> None:
    schema = (await client.get("/api/docs/openapi.json")).json()
    assert schema["openapi"].startswith("3.1")
    assert set(schema["webhooks"]) == {"task.upserted", "task.deleted", "task.reminder", "webhook.ping"}
    upserted = schema["webhooks"]["task.upserted"]["post"]
    body = upserted["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["required"]) == {"type", "timestamp", "data"}
    assert body["properties"]["data"]["properties"]["task"] == {"$ref": "#/components/schemas/TaskRead"}
    assert "TaskRead" in schema["components"]["schemas"]
    assert {p["name"] for p in upserted["parameters"]} == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    deleted = schema["webhooks"]["task.deleted"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(deleted["properties"]["data"]["required"]) == {"task_id", "deleted_at"}
    assert "/api/v1/users/{user_id}/webhooks/{webhook_id}/rotate-secret" in schema["paths"]
