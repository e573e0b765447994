"""ETags and conditional requests on the task routes: 304 for a current tag, 412 for a stale one."""

from __future__ import annotations

from typing import Any

from tests.factories import Account, Client, create_task, register


def task_url(account: Account, task: dict[str, Any]) -> str:
    return f"{account.tasks_url}/{task['id']}"


async def test_a_task_answers_a_strong_etag_equal_to_its_etag_field(client: Client, account: Account) -> None:
    task = await create_task(client, account)
    response = await client.get(task_url(account, task), headers=account.headers)
    assert response.status_code == 200
    etag = response.headers["etag"]
    assert etag.startswith('"')
    assert etag.endswith('"')
    assert not etag.startswith("W/")
    assert response.json()["etag"] == etag == task["etag"]


async def test_if_none_match_with_the_current_tag_answers_304_without_a_body(client: Client, account: Account) -> None:
    task = await create_task(client, account)
    headers = {**account.headers, "If-None-Match": task["etag"]}
    response = await client.get(task_url(account, task), headers=headers)
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == task["etag"]
    # A list of tags, or the weak form of ours, matches too (If-None-Match compares weakly).
    for value in (f'"nope", {task["etag"]}', f"W/{task['etag']}"):
        response = await client.get(task_url(account, task), headers={**account.headers, "If-None-Match": value})
        assert response.status_code == 304, value


async def test_every_change_gives_a_new_etag_and_a_no_op_keeps_it(client: Client, account: Account) -> None:
    task = await create_task(client, account, title="first")
    url = task_url(account, task)
    changed = (await client.put(url, json={"title": "second"}, headers=account.headers)).json()
    assert changed["etag"] != task["etag"]
    completed = await client.patch(f"{url}/complete", json={"completed": True}, headers=account.headers)
    assert completed.headers["etag"] == completed.json()["etag"] != changed["etag"]
    # Completing a completed task changes nothing: same tag.
    again = await client.patch(f"{url}/complete", json={"completed": True}, headers=account.headers)
    assert again.json()["etag"] == completed.json()["etag"]
    # The old tag no longer answers 304.
    stale = await client.get(url, headers={**account.headers, "If-None-Match": task["etag"]})
    assert stale.status_code == 200


async def test_a_stale_if_match_is_412_and_changes_nothing(client: Client, account: Account) -> None:
    task = await create_task(client, account, title="kept")
    url = task_url(account, task)
    current = (await client.put(url, json={"priority": "high"}, headers=account.headers)).json()
    stale = {**account.headers, "If-Match": task["etag"]}
    for response in (
        await client.put(url, json={"title": "lost"}, headers=stale),
        await client.patch(f"{url}/complete", json={"completed": True}, headers=stale),
        await client.delete(url, headers=stale),
    ):
        assert response.status_code == 412, response.text
        body = response.json()
        assert body["error_code"] == "PRECONDITION_FAILED"
        assert set(body) >= {"detail", "error_code", "timestamp", "path", "status_code"}
        assert response.headers["etag"] == current["etag"]
    after = (await client.get(url, headers=account.headers)).json()
    assert after == current


async def test_the_current_if_match_or_a_star_or_none_lets_the_write_through(client: Client, account: Account) -> None:
    task = await create_task(client, account)
    url = task_url(account, task)
    first = await client.put(url, json={"title": "one"}, headers={**account.headers, "If-Match": task["etag"]})
    assert first.status_code == 200
    second = await client.put(url, json={"title": "two"}, headers={**account.headers, "If-Match": "*"})
    assert second.status_code == 200
    listed = f'"0", {second.json()["etag"]}'
    third = await client.patch(
        f"{url}/complete", json={"completed": True}, headers={**account.headers, "If-Match": listed}
    )
    assert third.status_code == 200
    deleted = await client.delete(url, headers={**account.headers, "If-Match": third.json()["etag"]})
    assert deleted.status_code == 200


async def test_if_match_on_a_missing_or_foreign_task_is_still_404(client: Client, account: Account) -> None:
    other = await register(client)
    theirs = await create_task(client, other)
    response = await client.put(
        f"{account.tasks_url}/{theirs['id']}",
        json={"title": "x"},
        headers={**account.headers, "If-Match": theirs["etag"]},
    )
    assert response.status_code == 404
    assert response.json()["error_code"] == "TASK_NOT_FOUND"
    # Their own path is not ours: 403, whatever the precondition.
    response = await client.put(
        f"{other.tasks_url}/{theirs['id']}", json={"title": "x"}, headers={**account.headers, "If-Match": '"1"'}
    )
    assert response.status_code == 403


async def test_a_malformed_if_match_matches_nothing(client: Client, account: Account) -> None:
    task = await create_task(client, account)
    # 9223372036854775808 is one past BIGINT: no revision of ours, and no overflow in the database.
    for value in ("garbage", '"abc"', "W/", '"' + "9" * 30 + '"', '"9223372036854775808"', '"' + "9" * 21 + '"'):
        response = await client.delete(task_url(account, task), headers={**account.headers, "If-Match": value})
        assert response.status_code == 412, value


async def test_a_deleted_task_answers_404_everywhere(client: Client, account: Account) -> None:
    task = await create_task(client, account)
    url = task_url(account, task)
    assert (await client.delete(url, headers=account.headers)).status_code == 200
    assert (await client.get(url, headers=account.headers)).status_code == 404
    assert (await client.put(url, json={"title": "x"}, headers=account.headers)).status_code == 404
    assert (await client.patch(f"{url}/complete", json={"completed": True}, headers=account.headers)).status_code == 404
    assert (await client.delete(url, headers=account.headers)).status_code == 404
    listing = (await client.get(account.tasks_url, headers=account.headers)).json()
    assert listing["total"] == 0
    assert listing["items"] == []


async def test_a_list_page_answers_an_etag_and_304_while_nothing_in_it_changed(
    client: Client, account: Account
) -> None:
    first = await create_task(client, account)
    await create_task(client, account)
    url = f"{account.tasks_url}?limit=1&sort=created_at"
    page = await client.get(url, headers=account.headers)
    etag = page.headers["etag"]
    conditional = {**account.headers, "If-None-Match": etag}
    assert (await client.get(url, headers=conditional)).status_code == 304
    # A change to the task on the page: a new page.
    await client.put(f"{account.tasks_url}/{first['id']}", json={"title": "new"}, headers=account.headers)
    changed = await client.get(url, headers=conditional)
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    # A new task changes the total, so the page's body and tag change too.
    etag = changed.headers["etag"]
    await create_task(client, account)
    assert (await client.get(url, headers={**account.headers, "If-None-Match": etag})).status_code == 200


async def test_a_put_may_send_back_the_etag_it_read(client: Client, account: Account) -> None:
    task = await create_task(client, account)
    url = task_url(account, task)
    response = await client.put(url, json={**task, "title": "renamed"}, headers=account.headers)
    assert response.status_code == 200, response.text
    wrong = await client.put(url, json={"etag": '"1"', "title": "x"}, headers=account.headers)
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["field"] == "etag"
