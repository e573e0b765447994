from tests.factories import Account, Client, create_task


async def test_register_create_list(client: Client, account: Account) -> None:
    task = await create_task(client, account, priority="high")
    response = await client.get(account.tasks_url, headers=account.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["total"] == 1
    assert body["items"][0]["id"] == task["id"]
