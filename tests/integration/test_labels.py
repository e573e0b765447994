"""Labels: CRUD, names unique per user case-insensitively, colours, tasks carrying label_ids, the any/all filter."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from tests.factories import create_task

if TYPE_CHECKING:
    from tests.factories import Account, Client


def labels_url(account: Account) -> str:
    return f"/api/v1/users/{account.id}/labels"


async def create_label(client: Client, account: Account, name: str, **fields: Any) -> dict[str, Any]:
    response = await client.post(labels_url(account), json={"name": name, **fields}, headers=account.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def titles(client: Client, account: Account, params: Any) -> list[str]:
    response = await client.get(account.tasks_url, params=params, headers=account.headers)
    assert response.status_code == 200, response.text
    return sorted(item["title"] for item in response.json()["items"])


async def test_create_read_list_and_defaults(client: Client, account: Account) -> None:
    made = await create_label(client, account, "Errands", color="#3B82F6")
    assert (made["name"], made["color"], made["user_id"], made["etag"]) == ("Errands", "#3b82f6", account.id, '"1"')
    plain = await create_label(client, account, "home")
    assert plain["color"] == "#808080"
    listed = (await client.get(labels_url(account), headers=account.headers)).json()
    assert [item["name"] for item in listed["items"]] == ["Errands", "home"]  # by name, case-insensitively
    one = await client.get(f"{labels_url(account)}/{made['id']}", headers=account.headers)
    assert (one.status_code, one.headers["ETag"]) == (200, '"1"')


async def test_names_are_unique_per_user_case_insensitively(
    client: Client, account: Account, other_account: Account
) -> None:
    await create_label(client, account, "Straße")
    for name in ("straße", "STRASSE", "Straße"):
        response = await client.post(labels_url(account), json={"name": name}, headers=account.headers)
        assert response.status_code == 409, name
        assert response.json()["error_code"] == "LABEL_NAME_TAKEN"
    await create_label(client, other_account, "strasse")  # another user's names are theirs
    other = await create_label(client, account, "Park")
    response = await client.patch(
        f"{labels_url(account)}/{other['id']}", json={"name": "STRASSE"}, headers=account.headers
    )
    assert (response.status_code, response.json()["error_code"]) == (409, "LABEL_NAME_TAKEN")
    # Renaming to its own name in another case is fine.
    response = await client.patch(
        f"{labels_url(account)}/{other['id']}", json={"name": "PARK"}, headers=account.headers
    )
    assert (response.status_code, response.json()["name"], response.json()["etag"]) == (200, "PARK", '"2"')


async def test_colours_are_validated(client: Client, account: Account) -> None:
    for color in ("red", "#12345", "#1234567", "#gggggg", 123, None):
        response = await client.post(labels_url(account), json={"name": "x", "color": color}, headers=account.headers)
        assert response.status_code == 422, color
        assert response.json()["errors"][0]["field"] == "color"


async def test_recolour_with_if_match(client: Client, account: Account) -> None:
    made = await create_label(client, account, "Urgent")
    url = f"{labels_url(account)}/{made['id']}"
    changed = await client.patch(url, json={"color": "#FF0000"}, headers={**account.headers, "If-Match": '"1"'})
    assert (changed.status_code, changed.json()["color"], changed.json()["name"]) == (200, "#ff0000", "Urgent")
    stale = await client.patch(url, json={"color": "#00ff00"}, headers={**account.headers, "If-Match": '"1"'})
    assert (stale.status_code, stale.headers["ETag"]) == (412, '"2"')


async def test_an_empty_patch_answers_the_label_as_it_is(client: Client, account: Account) -> None:
    made = await create_label(client, account, "Later", color="#00aa00")
    url = f"{labels_url(account)}/{made['id']}"
    same = await client.patch(url, json={}, headers={**account.headers, "If-Match": '"1"'})
    assert (same.status_code, same.json()["name"], same.json()["color"], same.headers["ETag"]) == (
        200,
        "Later",
        "#00aa00",
        '"1"',
    )
    too_large = await client.patch(url, json={}, headers={**account.headers, "If-Match": '"9223372036854775808"'})
    assert too_large.status_code == 412


async def test_tasks_carry_label_ids(client: Client, account: Account) -> None:
    home = await create_label(client, account, "home")
    work = await create_label(client, account, "work")
    task = await create_task(client, account, title="Both", label_ids=[work["id"], home["id"], home["id"]])
    assert task["label_ids"] == sorted([home["id"], work["id"]], key=uuid.UUID)
    read = (await client.get(f"{account.tasks_url}/{task['id']}", headers=account.headers)).json()
    assert read["label_ids"] == task["label_ids"]
    plain = await create_task(client, account, title="None")
    assert plain["label_ids"] == []
    # A PUT replaces the set; the ETag moves.
    response = await client.put(
        f"{account.tasks_url}/{task['id']}", json={"label_ids": [home["id"]]}, headers=account.headers
    )
    assert (response.status_code, response.json()["label_ids"]) == (200, [home["id"]])
    assert response.json()["etag"] != task["etag"]
    # The same set again changes nothing, ETag included.
    again = await client.put(
        f"{account.tasks_url}/{task['id']}", json={"label_ids": [home["id"]]}, headers=account.headers
    )
    assert again.json()["etag"] == response.json()["etag"]


async def test_a_task_cannot_carry_someone_elses_label(
    client: Client, account: Account, other_account: Account
) -> None:
    theirs = await create_label(client, other_account, "theirs")
    for label_ids in ([theirs["id"]], [str(uuid.uuid4())]):
        response = await client.post(
            account.tasks_url, json={"title": "x", "label_ids": label_ids}, headers=account.headers
        )
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == "label_ids"
    assert (await client.get(account.tasks_url, headers=account.headers)).json()["total"] == 0  # nothing kept
    response = await client.post(
        account.tasks_url,
        json={"title": "x", "label_ids": [str(uuid.uuid4()) for _ in range(21)]},
        headers=account.headers,
    )
    assert response.status_code == 422


async def test_the_label_filter_any_and_all(client: Client, account: Account) -> None:
    a = await create_label(client, account, "a")
    b = await create_label(client, account, "b")
    await create_task(client, account, title="A", label_ids=[a["id"]])
    await create_task(client, account, title="B", label_ids=[b["id"]])
    await create_task(client, account, title="AB", label_ids=[a["id"], b["id"]])
    await create_task(client, account, title="none")
    both = [("label", a["id"]), ("label", b["id"])]
    assert await titles(client, account, both) == ["A", "AB", "B"]
    assert await titles(client, account, [*both, ("label_match", "any")]) == ["A", "AB", "B"]
    assert await titles(client, account, [*both, ("label_match", "all")]) == ["AB"]
    assert await titles(client, account, {"label": a["id"]}) == ["A", "AB"]
    page = (await client.get(account.tasks_url, params=[*both, ("label_match", "all")], headers=account.headers)).json()
    assert page["total"] == 1
    bad = await client.get(account.tasks_url, params={"label_match": "some"}, headers=account.headers)
    assert bad.status_code == 422


async def test_deleting_a_label_takes_it_off_its_tasks(client: Client, account: Account) -> None:
    gone = await create_label(client, account, "gone")
    kept = await create_label(client, account, "kept")
    task = await create_task(client, account, label_ids=[gone["id"], kept["id"]])
    response = await client.delete(f"{labels_url(account)}/{gone['id']}", headers=account.headers)
    assert response.status_code == 200, response.text
    assert "1 task(s)" in response.json()["message"]
    read = (await client.get(f"{account.tasks_url}/{task['id']}", headers=account.headers)).json()
    assert read["label_ids"] == [kept["id"]]
    assert read["etag"] != task["etag"]  # sync clients see the change
    missing = await client.get(f"{labels_url(account)}/{gone['id']}", headers=account.headers)
    assert (missing.status_code, missing.json()["error_code"]) == (404, "LABEL_NOT_FOUND")
    again = await client.delete(f"{labels_url(account)}/{gone['id']}", headers=account.headers)
    assert again.status_code == 404


async def test_another_users_labels(client: Client, account: Account, other_account: Account) -> None:
    theirs = await create_label(client, other_account, "theirs")
    assert (await client.get(labels_url(other_account), headers=account.headers)).status_code == 403
    response = await client.get(f"{labels_url(account)}/{theirs['id']}", headers=account.headers)
    assert response.status_code == 404
    response = await client.patch(
        f"{labels_url(account)}/{theirs['id']}", json={"name": "mine"}, headers=account.headers
    )
    assert response.status_code == 404
