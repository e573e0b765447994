"""The list and label collections answer an ETag per page: 304 while nothing in the page changed, else 200.

A sync client polls ``GET .../lists`` and ``GET .../labels`` with ``If-None-Match`` (they are not in
the task change feed); a create, a rename (or recolour) and a delete each give the page a new tag,
whichever of the user's sessions (devices) made the change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.factories import login
from tests.integration.test_openapi import fetch_schema

if TYPE_CHECKING:
    from tests.factories import Account, Client

COLLECTIONS = ("lists", "labels")


def url(account: Account, collection: str) -> str:
    return f"/api/v1/users/{account.id}/{collection}"


async def read(client: Client, account: Account, collection: str, **params: Any) -> tuple[str, dict[str, Any]]:
    response = await client.get(url(account, collection), params=params, headers=account.headers)
    assert response.status_code == 200, response.text
    etag = response.headers["etag"]
    assert etag.startswith('"')
    assert etag.endswith('"')
    return etag, dict(response.json())


async def poll(client: Client, headers: dict[str, str], path: str, etag: str, **params: Any) -> int:
    """The status of a conditional read with ``If-None-Match: etag`` (304: unchanged, no body, our tag in it)."""
    response = await client.get(path, params=params, headers={**headers, "If-None-Match": etag})
    if response.status_code == 304:
        assert response.content == b""
        assert response.headers["etag"] in etag
    return response.status_code


async def add(client: Client, account: Account, collection: str, name: str) -> dict[str, Any]:
    response = await client.post(url(account, collection), json={"name": name}, headers=account.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


@pytest.mark.parametrize("collection", COLLECTIONS)
async def test_an_unchanged_page_answers_304_and_each_change_a_new_etag(
    client: Client, account: Account, collection: str
) -> None:
    path = url(account, collection)
    first = await add(client, account, collection, "Errands")
    etag, body = await read(client, account, collection)
    # Unchanged: 304, however often; a list of tags or the weak form of ours match too.
    for value in (etag, f'"nope", {etag}', f"W/{etag}"):
        assert await poll(client, account.headers, path, value) == 304, value
    assert await poll(client, account.headers, path, '"something else"') == 200
    seen = {etag}

    # Created: the total and the items change.
    await add(client, account, collection, "Work")
    assert await poll(client, account.headers, path, etag) == 200
    etag, after_create = await read(client, account, collection)
    assert after_create["total"] == body["total"] + 1
    assert etag not in seen
    seen.add(etag)

    # Renamed: the same total, one item's tag moved.
    item_url = f"{path}/{first['id']}"
    response = await client.patch(item_url, json={"name": "Chores"}, headers=account.headers)
    assert response.status_code == 200, response.text
    assert await poll(client, account.headers, path, etag) == 200
    etag, after_rename = await read(client, account, collection)
    assert after_rename["total"] == after_create["total"]
    assert "Chores" in {item["name"] for item in after_rename["items"]}
    assert etag not in seen
    seen.add(etag)

    # A rename to the same name changes nothing: the tag stays.
    response = await client.patch(item_url, json={"name": "Chores"}, headers=account.headers)
    assert response.status_code == 200, response.text
    assert await poll(client, account.headers, path, etag) == 304

    # Deleted: the total drops.
    response = await client.delete(item_url, headers=account.headers)
    assert response.status_code == 200, response.text
    assert await poll(client, account.headers, path, etag) == 200
    etag, after_delete = await read(client, account, collection)
    assert after_delete["total"] == after_create["total"] - 1
    assert etag not in seen
    assert await poll(client, account.headers, path, etag) == 304


async def test_a_recoloured_label_changes_the_page(client: Client, account: Account) -> None:
    label = await add(client, account, "labels", "Urgent")
    path = url(account, "labels")
    etag, _ = await read(client, account, "labels")
    response = await client.patch(f"{path}/{label['id']}", json={"color": "#FF0000"}, headers=account.headers)
    assert response.status_code == 200, response.text
    assert await poll(client, account.headers, path, etag) == 200
    new_etag, body = await read(client, account, "labels")
    assert new_etag != etag
    assert body["items"][0]["color"] == "#ff0000"


@pytest.mark.parametrize("collection", COLLECTIONS)
async def test_a_change_by_another_session_of_the_user_is_seen(
    client: Client, account: Account, collection: str
) -> None:
    path = url(account, collection)
    phone = {"Authorization": f"Bearer {await login(client, account.email, account.password)}"}
    mine = await add(client, account, collection, "Shared")
    etag, _ = await read(client, account, collection)
    assert await poll(client, phone, path, etag) == 304  # the same page for either session

    # The other device renames it, then deletes it; this one's poll notices each time.
    response = await client.patch(f"{path}/{mine['id']}", json={"name": "Renamed"}, headers=phone)
    assert response.status_code == 200, response.text
    assert await poll(client, account.headers, path, etag) == 200
    etag, body = await read(client, account, collection)
    assert "Renamed" in {item["name"] for item in body["items"]}
    response = await client.post(path, json={"name": "From the phone"}, headers=phone)
    assert response.status_code == 201, response.text
    assert await poll(client, account.headers, path, etag) == 200
    etag, _ = await read(client, account, collection)
    response = await client.delete(f"{path}/{mine['id']}", headers=phone)
    assert response.status_code == 200, response.text
    assert await poll(client, account.headers, path, etag) == 200


@pytest.mark.parametrize("collection", COLLECTIONS)
async def test_the_tag_is_per_page_and_per_user(
    client: Client, account: Account, other_account: Account, collection: str
) -> None:
    for name in ("A", "B", "C"):
        await add(client, account, collection, name)
    path = url(account, collection)
    first, page_one = await read(client, account, collection, limit=2)
    second, page_two = await read(client, account, collection, limit=2, page=2)
    assert first != second
    assert page_one["items"] != page_two["items"]
    assert await poll(client, account.headers, path, first, limit=2, page=2) == 200
    assert await poll(client, account.headers, path, first, limit=2) == 304
    # A change on page 2 only still moves page 1's tag: the total is in every page.
    last = page_two["items"][-1]
    response = await client.delete(f"{path}/{last['id']}", headers=account.headers)
    assert response.status_code == 200, response.text
    assert await poll(client, account.headers, path, first, limit=2) == 200
    # Another user's page never matches ours, and a tag does not get them past the refusal.
    theirs, _ = await read(client, other_account, collection)
    assert theirs != first
    response = await client.get(path, headers={**other_account.headers, "If-None-Match": first})
    assert response.status_code == 403
    assert response.json()["error_code"] == "FORBIDDEN"


@pytest.mark.parametrize("collection", COLLECTIONS)
async def test_the_304_and_the_etag_are_in_the_schema(client: Client, collection: str) -> None:
    schema = await fetch_schema(client)
    operation = schema["paths"][f"/api/v1/users/{{user_id}}/{collection}"]["get"]
    assert "304" in operation["responses"]
    assert "ETag" in operation["responses"]["200"]["headers"]
    assert "If-None-Match" in {p["name"] for p in operation["parameters"] if p["in"] == "header"}
