"""Strict input (the contract's section of that name): no coercion, every error at once, never a 500."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import PASSWORD, Account, Client

EDGES = ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00")
FOLDING_EMAIL = "İ" * 200 + "@x.com"  # 206 characters; 406 once lower-cased


def errors_of(body: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {error["field"]: (error["message"], error["source"]) for error in body["errors"]}


async def test_a_body_is_not_coerced_and_every_failing_field_is_listed(client: Client, account: Account) -> None:
    body = {"title": "x", "completed": "true", "due_date": 1893456000, "priority": "soon", "colour": 1, "x": 2}
    response = await client.post(account.tasks_url, json=body, headers=account.headers)

    assert response.status_code == 422
    assert response.json()["error_code"] == "VALIDATION_ERROR"
    assert errors_of(response.json()) == {
        "colour": ("is not a field of this request", "body"),
        "x": ("is not a field of this request", "body"),
        "completed": ("must be true or false", "body"),
        "priority": ("must be one of low, medium, high, urgent", "body"),
        "due_date": ("must be an ISO 8601 date and time with a UTC offset, like 2030-01-31T17:00:00Z or null", "body"),
    }
    assert response.json()["detail"] == "Invalid colour: is not a field of this request (and 4 more)"
    listed = await client.get(account.tasks_url, headers=account.headers)
    assert listed.json()["total"] == 0


@pytest.mark.parametrize("flag", [0, 1, "1", "true", "false", None])
async def test_completed_must_be_a_json_boolean(client: Client, account: Account, flag: object) -> None:
    response = await client.post(account.tasks_url, json={"title": "t", "completed": flag}, headers=account.headers)

    assert response.status_code == 422
    assert errors_of(response.json()) == {"completed": ("must be true or false", "body")}


async def test_messages_carry_no_library_wording(client: Client, account: Account) -> None:
    body = {"title": "x" * 256, "description": 5}
    response = await client.post(account.tasks_url, json=body, headers=account.headers)

    assert errors_of(response.json()) == {
        "title": ("must be a string of 1 to 255 characters that is not blank, without NUL characters", "body"),
        "description": ("must be a string of at most 1000 characters without NUL characters or null", "body"),
    }
    assert not any(mark in response.text for mark in ("`", "$.", "Expected", "NoneType", "regex"))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/auth/register"),
        ("POST", "/api/v1/auth/login"),
        ("POST", "/api/v1/auth/refresh"),
        ("PUT", "/api/v1/users/me"),
        ("POST", "{tasks}"),
        ("PATCH", "{tasks}/00000000-0000-0000-0000-000000000000/complete"),
    ],
)
async def test_a_body_that_is_not_utf8_is_a_400(client: Client, account: Account, method: str, path: str) -> None:
    url = path.format(tasks=account.tasks_url)
    response = await client.request(
        method, url, content=b'{"title": "\xff\xfe"}', headers={**account.headers, "Content-Type": "application/json"}
    )

    assert response.status_code == 400
    assert response.json()["error_code"] == "MALFORMED_REQUEST"
    assert response.json()["detail"] == "The request body is not valid UTF-8"


@pytest.mark.parametrize("edge", EDGES)
async def test_datetimes_at_the_edge_of_the_range_are_a_422(client: Client, account: Account, edge: str) -> None:
    created = await client.post(account.tasks_url, json={"title": "t", "due_date": edge}, headers=account.headers)
    listed = await client.get(account.tasks_url, params={"due_before": edge}, headers=account.headers)

    assert created.status_code == 422
    assert errors_of(created.json()) == {"due_date": ("is out of range", "body")}
    assert listed.status_code == 422
    assert errors_of(listed.json()) == {"due_before": ("is out of range", "query")}


async def test_an_email_too_long_once_lower_cased_is_a_422(client: Client, account: Account) -> None:
    expected = {"email": ("must be at most 255 characters once lower-cased", "body")}
    registered = await client.post(
        "/api/v1/auth/register",
        json={"email": FOLDING_EMAIL, "password": PASSWORD, "first_name": "A", "last_name": "B"},
    )
    changed = await client.put("/api/v1/users/me", json={"email": FOLDING_EMAIL}, headers=account.headers)

    assert registered.status_code == 422
    assert errors_of(registered.json()) == expected
    assert changed.status_code == 422
    assert errors_of(changed.json()) == expected
    me = await client.get("/api/v1/users/me", headers=account.headers)
    assert me.json()["email"] == account.email


async def test_unknown_repeated_and_invalid_query_parameters_are_named(client: Client, account: Account) -> None:
    query = "complete=true&page=2&page=3&limit=0&completed=1"
    response = await client.get(f"{account.tasks_url}?{query}", headers=account.headers)

    assert response.status_code == 422
    assert errors_of(response.json()) == {
        "complete": ("is not a parameter of this route", "query"),
        "page": ("must be given once", "query"),
        "limit": ("must be an integer from 1 to 100", "query"),
        "completed": ("must be true or false", "query"),
    }


async def test_a_huge_page_number_is_a_422(client: Client, account: Account) -> None:
    response = await client.get(account.tasks_url, params={"page": str(2**70)}, headers=account.headers)

    assert response.status_code == 422
    assert errors_of(response.json()) == {"page": ("must be an integer from 1 to 1,000,000", "query")}


async def test_a_route_without_query_parameters_refuses_any(client: Client, account: Account) -> None:
    response = await client.get("/api/v1/users/me", params={"verbose": "1"}, headers=account.headers)

    assert response.status_code == 422
    assert errors_of(response.json()) == {"verbose": ("is not a parameter of this route", "query")}


async def test_valid_queries_still_work(client: Client, account: Account) -> None:
    response = await client.get(
        account.tasks_url,
        params={"completed": "false", "page": "1", "limit": "5", "due_before": "2030-01-01T00:00:00Z"},
        headers=account.headers,
    )

    assert response.status_code == 200, response.text
    assert response.json()["limit"] == 5


def _resolve(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


async def test_the_schema_says_the_same(client: Client) -> None:
    document = (await client.get("/api/docs/openapi.json")).json()
    bodies, parameters = 0, 0
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if not isinstance(operation, dict):
                continue
            if body := operation.get("requestBody"):
                schema = _resolve(body["content"]["application/json"]["schema"], document)
                assert schema["additionalProperties"] is False, (method, path)
                assert schema["properties"], (method, path)
                bodies += 1
            for parameter in operation.get("parameters", []):
                if parameter["in"] != "query":
                    continue
                schema = parameter["schema"]
                kinds = [schema, *schema.get("oneOf", [])]
                assert any("type" in kind or "$ref" in kind for kind in kinds), (path, parameter["name"])
                typed = [kind for kind in kinds if kind.get("type") in {"integer", "string"}]
                for variant in typed:
                    kind = {**schema, **variant}  # bounds may sit beside a oneOf
                    if kind["type"] == "integer":
                        assert {"minimum", "maximum"} <= kind.keys(), (path, parameter["name"])
                    elif not {"format", "enum"} & kind.keys():
                        assert "maxLength" in kind or "pattern" in kind, (path, parameter["name"])
                parameters += 1
    assert bodies >= 8
    assert parameters >= 10


async def test_a_write_that_changes_nothing_leaves_updated_at(client: Client, account: Account) -> None:
    created = await client.post(account.tasks_url, json={"title": "t"}, headers=account.headers)
    url = f"{account.tasks_url}/{created.json()['id']}"
    done = (await client.patch(f"{url}/complete", json={"completed": True}, headers=account.headers)).json()

    again = await client.patch(f"{url}/complete", json={"completed": True}, headers=account.headers)
    same = await client.put(url, json={"title": "t", "priority": "medium"}, headers=account.headers)
    changed = await client.put(url, json={"title": "u"}, headers=account.headers)

    assert again.status_code == 200
    assert again.json() == done
    assert same.json() == done
    assert changed.json()["updated_at"] > done["updated_at"]
    assert changed.json()["completed_at"] == done["completed_at"]


async def test_a_put_of_what_a_get_returned_succeeds(client: Client, account: Account) -> None:
    created = await client.post(account.tasks_url, json={"title": "t"}, headers=account.headers)
    url = f"{account.tasks_url}/{created.json()['id']}"
    task = (await client.get(url, headers=account.headers)).json()

    same = await client.put(url, json={**task, "title": "renamed"}, headers=account.headers)
    forged = await client.put(
        url,
        json={**same.json(), "id": "00000000-0000-0000-0000-000000000000", "created_at": "2020-01-01T00:00:00Z"},
        headers=account.headers,
    )

    assert same.status_code == 200, same.text
    assert same.json()["title"] == "renamed"
    assert same.json()["id"] == task["id"]
    assert forged.status_code == 422
    assert errors_of(forged.json()) == {
        "id": ("is read-only and differs from the task", "body"),
        "created_at": ("is read-only and differs from the task", "body"),
    }
    assert (await client.get(url, headers=account.headers)).json()["title"] == "renamed"
