"""Deleting a list moves its tasks after the target list's own, in their order: no clash, no interleaving.

Positions are ranks among siblings (the tasks of one list and parent). Two lists can hold the same
keys (a move to the first place of a one-task list takes ``n0``; rebalanced groups start at ``n0``),
and keys made from creation instants interleave. Before, the moved tasks kept their keys: the same
key twice in the target met the siblings' unique index (a 500 and nothing deleted), and otherwise
the moved tasks were shuffled in among the target's by creation time.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tests.factories import create_task
from tests.integration.test_tasks_order import move
from todo_service.tasks.ranks import is_key, key_between, spread, time_key

if TYPE_CHECKING:
    from tests.factories import Account, Client


def lists_url(account: Account) -> str:
    return f"/api/v1/users/{account.id}/lists"


async def new_list(client: Client, account: Account, name: str) -> str:
    response = await client.post(lists_url(account), json={"name": name}, headers=account.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def inbox(client: Client, account: Account) -> str:
    response = await client.get(lists_url(account), headers=account.headers)
    (found,) = [item["id"] for item in response.json()["items"] if item["is_default"]]
    return str(found)


async def delete_list(client: Client, account: Account, list_id: str, **params: str) -> None:
    response = await client.delete(f"{lists_url(account)}/{list_id}", params=params, headers=account.headers)
    assert response.status_code == 200, response.text


async def positions(client: Client, account: Account, list_id: str) -> list[tuple[str, str]]:
    query: dict[str, str | int] = {"list_id": list_id, "top_level": "true", "sort": "position", "limit": 100}
    response = await client.get(account.tasks_url, params=query, headers=account.headers)
    assert response.status_code == 200, response.text
    return [(task["title"], task["position"]) for task in response.json()["items"]]


async def first(client: Client, account: Account, task: dict[str, Any]) -> str:
    response = await move(client, account, task, after=None)
    assert response.status_code == 200, response.text
    return str(response.json()["position"])


async def test_tasks_with_the_same_keys_as_the_targets_move_without_a_clash(client: Client, account: Account) -> None:
    source, target = await new_list(client, account, "Old"), await new_list(client, account, "New")
    mine = await create_task(client, account, title="old one", list_id=source)
    theirs = await create_task(client, account, title="new one", list_id=target)
    # Each the only task of its list, moved to the first place: both take the same key.
    assert await first(client, account, mine) == await first(client, account, theirs)

    await delete_list(client, account, source, to=target)
    listed = await positions(client, account, target)
    assert [title for title, _ in listed] == ["new one", "old one"]
    assert len({key for _, key in listed}) == len(listed)


async def test_moved_tasks_go_after_the_targets_in_their_own_order(client: Client, account: Account) -> None:
    source = await new_list(client, account, "Old")
    target = await inbox(client, account)
    # Created alternately, so that creation-time keys would interleave the two lists.
    for n in range(3):
        await create_task(client, account, title=f"inbox {n}")
        await create_task(client, account, title=f"old {n}", list_id=source)
    # The source's own manual order: old 2 first.
    assert [title for title, _ in await positions(client, account, source)] == ["old 0", "old 1", "old 2"]
    found = await client.get(account.tasks_url, params={"search": "old 2"}, headers=account.headers)
    (last,) = found.json()["items"]
    await first(client, account, last)
    child = await create_task(client, account, title="old 2 child", parent_id=last["id"])

    await delete_list(client, account, source)  # to the Inbox
    listed = await positions(client, account, target)
    assert [title for title, _ in listed] == ["inbox 0", "inbox 1", "inbox 2", "old 2", "old 0", "old 1"]
    keys = [key for _, key in listed]
    assert keys == sorted(keys)
    assert len(set(keys)) == len(keys)
    # A subtask keeps its place under its parent (its siblings moved with it).
    response = await client.get(f"{account.tasks_url}/{child['id']}", headers=account.headers)
    assert (response.json()["list_id"], response.json()["position"]) == (target, child["position"])
    # New tasks still go last.
    await create_task(client, account, title="later")
    assert [title for title, _ in await positions(client, account, target)][-1] == "later"


async def test_a_task_trashed_with_its_list_comes_back_last_in_the_inbox(client: Client, account: Account) -> None:
    source = await new_list(client, account, "Old")
    target = await inbox(client, account)
    kept = await create_task(client, account, title="kept")
    gone = await create_task(client, account, title="gone", list_id=source)
    assert await first(client, account, gone) == await first(client, account, kept)
    await delete_list(client, account, source, tasks="delete")
    restored = await client.post(f"{account.tasks_url}/{gone['id']}/restore", headers=account.headers)
    assert restored.status_code == 200, restored.text
    assert [title for title, _ in await positions(client, account, target)] == ["kept", "gone"]


async def test_moving_many_tasks_keeps_keys_short_and_ordered(client: Client, account: Account) -> None:
    source = await new_list(client, account, "Old")
    target = await inbox(client, account)
    await create_task(client, account, title="inbox")
    for n in range(40):
        await create_task(client, account, title=f"old {n:02}", list_id=source)
    await delete_list(client, account, source)
    listed = await positions(client, account, target)
    assert [title for title, _ in listed] == ["inbox", *(f"old {n:02}" for n in range(40))]
    assert all(len(key) <= 24 for _, key in listed)


async def test_lists_merged_one_after_another_keep_short_keys_in_merge_order(client: Client, account: Account) -> None:
    target = await inbox(client, account)
    await create_task(client, account, title="inbox")
    for n in range(8):  # each merge's tasks go after the last merge's: the keys must not grow
        source = await new_list(client, account, f"List {n}")
        await create_task(client, account, title=f"merged {n}", list_id=source)
        await delete_list(client, account, source)
    listed = await positions(client, account, target)
    assert [title for title, _ in listed] == ["inbox", *(f"merged {n}" for n in range(8))]
    assert max(len(key) for _, key in listed) <= 24, listed


def test_a_moved_key_keeps_its_order_and_stays_a_rank() -> None:
    """What the list deletion's statement does to a top-level key: ``after`` + the key without trailing zeros."""
    rng = random.Random(14)  # noqa: S311  (repeatable test data, not a secret)
    keys = {*spread(80), "n0", "a" + "z" * 13, time_key(datetime.now(UTC)) + "a1"}
    pool = sorted(keys)
    for _ in range(400):  # keys between neighbours, some with zeros inside their fractions (n00i, ...)
        low = rng.randrange(len(pool) - 1)
        pool.insert(low + 1, key_between(pool[low], pool[low + 1]))
    pool.append(key_between(None, pool[0]))
    ordered = sorted(set(pool))
    assert any("00" in key[2:] for key in ordered)
    for after in ("n0", key_between(max(ordered), None), key_between(time_key(datetime.now(UTC)), None)):
        moved = [after + key.rstrip("0") for key in ordered]
        assert all(is_key(key) for key in moved), after
        assert moved == sorted(moved)
        assert len(set(moved)) == len(moved)
        assert all(key > after for key in moved)
