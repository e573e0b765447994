"""A task created in a list while the list is being deleted: it never lands in a deleted list (PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import text

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from tests.factories import Account, Client


async def test_a_task_sent_to_a_list_being_deleted_is_a_422_not_a_500(
    client: Client, account: Account, db_engine: AsyncEngine, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite runs one writer at a time")
    lists_url = f"/api/v1/users/{account.id}/lists"
    doomed = (await client.post(lists_url, json={"name": "Doomed"}, headers=account.headers)).json()
    owner = uuid.UUID(account.id)
    async with db_engine.connect() as deleting:
        # The list's deletion, under way: its tasks moved and the row deleted, not yet committed.
        transaction = await deleting.begin()
        await deleting.execute(
            text(
                "UPDATE tasks SET list_id = (SELECT id FROM task_lists WHERE user_id = :o AND is_default) "
                "WHERE list_id = :l"
            ),
            {"o": owner, "l": uuid.UUID(doomed["id"])},
        )
        await deleting.execute(text("DELETE FROM task_lists WHERE id = :l"), {"l": uuid.UUID(doomed["id"])})
        create = asyncio.create_task(
            client.post(account.tasks_url, json={"title": "late", "list_id": doomed["id"]}, headers=account.headers)
        )
        await asyncio.sleep(0.5)
        assert not create.done()  # waiting on the deleted list's row lock
        await transaction.commit()
    response = await asyncio.wait_for(create, timeout=10)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "list_id"
    assert (await client.get(account.tasks_url, headers=account.headers)).json()["total"] == 0


async def test_two_labels_renamed_to_one_name_at_once_is_a_409_not_a_500(
    client: Client, account: Account, db_engine: AsyncEngine, backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite runs one writer at a time")
    labels_url = f"/api/v1/users/{account.id}/labels"
    first = (await client.post(labels_url, json={"name": "One", "color": "#111111"}, headers=account.headers)).json()
    second = (await client.post(labels_url, json={"name": "Two", "color": "#222222"}, headers=account.headers)).json()
    async with db_engine.connect() as renaming:
        # The first rename, under way: the name taken, not yet committed (the second cannot see it).
        transaction = await renaming.begin()
        await renaming.execute(
            text("UPDATE labels SET name = 'Same', name_key = 'same' WHERE id = :l"), {"l": uuid.UUID(first["id"])}
        )
        rename = asyncio.create_task(
            client.patch(f"{labels_url}/{second['id']}", json={"name": "same"}, headers=account.headers)
        )
        await asyncio.sleep(0.5)
        assert not rename.done()  # waiting on the unique index's uncommitted entry
        await transaction.commit()
    response = await asyncio.wait_for(rename, timeout=10)
    assert response.status_code == 409, response.text
    assert response.json()["error_code"] == "LABEL_NAME_TAKEN"
    names = {label["name"] for label in (await client.get(labels_url, headers=account.headers)).json()["items"]}
    assert names == {"Same", "Two"}
