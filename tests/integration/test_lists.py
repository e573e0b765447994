"""Lists: every user has an Inbox, CRUD, tasks belong to one list, deleting a list moves or trashes its tasks."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from tests.factories import create_task, register

if TYPE_CHECKING:
    from tests.factories import Account, Client


def lists_url(account: Account) -> str:
    return f"/api/v1/users/{account.id}/lists"


async def create_list(client: Client, account: Account, name: str) -> dict[str, Any]:
    response = await client.post(lists_url(account), json={"name": name}, headers=account.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def inbox_of(client: Client, account: Account) -> dict[str, Any]:
    response = await client.get(lists_url(account), headers=account.headers)
    assert response.status_code == 200, response.text
    (inbox,) = [item for item in response.json()["items"] if item["is_default"]]
    return dict(inbox)


async def titles_in(client: Client, account: Account, list_id: str) -> list[str]:
    response = await client.get(account.tasks_url, params={"list_id": list_id}, headers=account.headers)
    assert response.status_code == 200, response.text
    return sorted(item["title"] for item in response.json()["items"])


async def test_a_new_user_has_one_list_the_inbox(client: Client, account: Account) -> None:
    response = await client.get(lists_url(account), headers=account.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 1
    (inbox,) = body["items"]
    assert (inbox["name"], inbox["is_default"], inbox["user_id"]) == ("Inbox", True, account.id)
    assert inbox["etag"] == '"1"'


async def test_a_task_goes_to_the_inbox_unless_it_names_a_list(client: Client, account: Account) -> None:
    inbox = await inbox_of(client, account)
    groceries = await create_list(client, account, "Groceries")
    plain = await create_task(client, account, title="Plain")
    milk = await create_task(client, account, title="Milk", list_id=groceries["id"])
    assert plain["list_id"] == inbox["id"]
    assert milk["list_id"] == groceries["id"]
    assert await titles_in(client, account, groceries["id"]) == ["Milk"]
    assert await titles_in(client, account, inbox["id"]) == ["Plain"]
    # Unfiltered, the route lists every task as before.
    response = await client.get(account.tasks_url, headers=account.headers)
    assert response.json()["total"] == 2


async def test_a_task_cannot_go_to_someone_elses_list(client: Client, account: Account, other_account: Account) -> None:
    theirs = await create_list(client, other_account, "Theirs")
    for list_id in (theirs["id"], str(uuid.uuid4())):
        response = await client.post(
            account.tasks_url, json={"title": "x", "list_id": list_id}, headers=account.headers
        )
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == "list_id"
    task = await create_task(client, account)
    response = await client.put(
        f"{account.tasks_url}/{task['id']}", json={"list_id": theirs["id"]}, headers=account.headers
    )
    assert response.status_code == 422
    # Filtering by someone else's list shows nothing of theirs.
    await create_task(client, other_account, list_id=theirs["id"])
    assert await titles_in(client, account, theirs["id"]) == []


async def test_moving_a_task_between_lists_changes_its_etag(client: Client, account: Account) -> None:
    work = await create_list(client, account, "Work")
    task = await create_task(client, account, title="Report")
    response = await client.put(
        f"{account.tasks_url}/{task['id']}",
        json={"list_id": work["id"]},
        headers={**account.headers, "If-Match": task["etag"]},
    )
    assert response.status_code == 200, response.text
    assert response.json()["list_id"] == work["id"]
    assert response.json()["etag"] != task["etag"]
    assert await titles_in(client, account, work["id"]) == ["Report"]


async def test_rename_read_and_conditional_requests(client: Client, account: Account) -> None:
    made = await create_list(client, account, "Hobbies")
    url = f"{lists_url(account)}/{made['id']}"
    response = await client.get(url, headers={**account.headers, "If-None-Match": made["etag"]})
    assert response.status_code == 304
    response = await client.patch(url, json={"name": "Hobby"}, headers={**account.headers, "If-Match": made["etag"]})
    assert response.status_code == 200
    assert (response.json()["name"], response.json()["etag"]) == ("Hobby", '"2"')
    stale = await client.patch(url, json={"name": "Again"}, headers={**account.headers, "If-Match": made["etag"]})
    assert stale.status_code == 412
    assert stale.headers["ETag"] == '"2"'
    inbox = await inbox_of(client, account)
    renamed = await client.patch(
        f"{lists_url(account)}/{inbox['id']}", json={"name": "Eingang"}, headers=account.headers
    )
    assert (renamed.status_code, renamed.json()["is_default"]) == (200, True)


async def test_the_inbox_cannot_be_deleted(client: Client, account: Account) -> None:
    inbox = await inbox_of(client, account)
    response = await client.delete(f"{lists_url(account)}/{inbox['id']}", headers=account.headers)
    assert response.status_code == 409
    assert response.json()["error_code"] == "DEFAULT_LIST"


async def test_deleting_a_list_moves_its_tasks_to_the_inbox_by_default(client: Client, account: Account) -> None:
    inbox = await inbox_of(client, account)
    doomed = await create_list(client, account, "Doomed")
    await create_task(client, account, title="A", list_id=doomed["id"])
    await create_task(client, account, title="B", list_id=doomed["id"])
    response = await client.delete(f"{lists_url(account)}/{doomed['id']}", headers=account.headers)
    assert response.status_code == 200, response.text
    assert "2 task(s) moved" in response.json()["message"]
    assert await titles_in(client, account, inbox["id"]) == ["A", "B"]
    gone = await client.get(f"{lists_url(account)}/{doomed['id']}", headers=account.headers)
    assert (gone.status_code, gone.json()["error_code"]) == (404, "LIST_NOT_FOUND")


async def test_deleting_a_list_can_move_its_tasks_to_another(client: Client, account: Account) -> None:
    source = await create_list(client, account, "Source")
    target = await create_list(client, account, "Target")
    task = await create_task(client, account, title="Moved", list_id=source["id"])
    response = await client.delete(
        f"{lists_url(account)}/{source['id']}",
        params={"tasks": "move", "to": target["id"]},
        headers=account.headers,
    )
    assert response.status_code == 200, response.text
    assert await titles_in(client, account, target["id"]) == ["Moved"]
    moved = (await client.get(f"{account.tasks_url}/{task['id']}", headers=account.headers)).json()
    assert moved["etag"] != task["etag"]  # sync clients see the move


async def test_deleting_a_list_can_trash_its_tasks(client: Client, account: Account) -> None:
    inbox = await inbox_of(client, account)
    doomed = await create_list(client, account, "Doomed")
    task = await create_task(client, account, title="Trashed", list_id=doomed["id"])
    response = await client.delete(
        f"{lists_url(account)}/{doomed['id']}", params={"tasks": "delete"}, headers=account.headers
    )
    assert response.status_code == 200, response.text
    assert (await client.get(f"{account.tasks_url}/{task['id']}", headers=account.headers)).status_code == 404
    trash = (await client.get(f"{account.tasks_url}/trash", headers=account.headers)).json()
    assert [item["id"] for item in trash["items"]] == [task["id"]]
    restored = await client.post(f"{account.tasks_url}/{task['id']}/restore", headers=account.headers)
    assert (restored.status_code, restored.json()["list_id"]) == (200, inbox["id"])


async def test_a_bad_target_list_is_a_422(client: Client, account: Account, other_account: Account) -> None:
    source = await create_list(client, account, "Source")
    theirs = await create_list(client, other_account, "Theirs")
    url = f"{lists_url(account)}/{source['id']}"
    for params in ({"to": theirs["id"]}, {"to": source["id"]}, {"tasks": "delete", "to": source["id"]}):
        response = await client.delete(url, params=params, headers=account.headers)
        assert response.status_code == 422, params
        assert response.json()["errors"][0]["field"] == "to"
    assert (await client.get(url, headers=account.headers)).status_code == 200  # nothing happened


async def test_another_users_lists_answer_404_or_403(client: Client, account: Account, other_account: Account) -> None:
    theirs = await create_list(client, other_account, "Theirs")
    response = await client.get(f"{lists_url(other_account)}/{theirs['id']}", headers=account.headers)
    assert response.status_code == 403
    response = await client.get(f"{lists_url(account)}/{theirs['id']}", headers=account.headers)
    assert response.status_code == 404
    response = await client.delete(f"{lists_url(account)}/{theirs['id']}", headers=account.headers)
    assert response.status_code == 404


async def test_creating_a_list_honours_an_idempotency_key(client: Client) -> None:
    account = await register(client)
    headers = {**account.headers, "Idempotency-Key": "list-1"}
    first = await client.post(lists_url(account), json={"name": "Once"}, headers=headers)
    again = await client.post(lists_url(account), json={"name": "Once"}, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert first.json() == again.json()
    listed = (await client.get(lists_url(account), headers=account.headers)).json()
    assert listed["total"] == 2  # the Inbox and one "Once"


async def test_list_names_are_validated(client: Client, account: Account) -> None:
    for body in (
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 101},
        {"name": 3},
        {},
        {"name": "ok", "is_default": True},
    ):
        response = await client.post(lists_url(account), json=body, headers=account.headers)
        assert response.status_code == 422, body
