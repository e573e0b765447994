"""The OpenAPI schema shows the lists, labels, trash and the list route's new filters, with their bounds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.integration.test_openapi import fetch_schema, resolve

if TYPE_CHECKING:
    from tests.factories import Client

USER = "/api/v1/users/{user_id}"
OPERATIONS = {
    f"{USER}/lists": {"get", "post"},
    f"{USER}/lists/{{list_id}}": {"get", "patch", "delete"},
    f"{USER}/labels": {"get", "post"},
    f"{USER}/labels/{{label_id}}": {"get", "patch", "delete"},
    f"{USER}/tasks/trash": {"get"},
    f"{USER}/tasks/{{task_id}}/restore": {"post"},
}


def query_parameters(schema: dict[str, Any], path: str, method: str) -> dict[str, dict[str, Any]]:
    operation = schema["paths"][path][method]
    return {p["name"]: p["schema"] for p in operation.get("parameters", []) if p["in"] == "query"}


def variants(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [node, *node.get("oneOf", [])]


async def test_the_new_resources_are_documented(client: Client) -> None:
    schema = await fetch_schema(client)
    for path, methods in OPERATIONS.items():
        assert path in schema["paths"], path
        assert methods <= set(schema["paths"][path]), (path, sorted(schema["paths"][path]))
    errors = schema["paths"][f"{USER}/lists/{{list_id}}"]["delete"]["responses"]
    assert "409" in errors
    assert "409" in schema["paths"][f"{USER}/labels"]["post"]["responses"]


async def test_the_list_routes_filters_have_types_and_bounds(client: Client) -> None:
    schema = await fetch_schema(client)
    params = query_parameters(schema, f"{USER}/tasks", "get")
    assert any(v.get("format") == "uuid" for v in variants(params["list_id"]))
    (labels,) = [v for v in variants(params["label"]) if v.get("type") == "array"]
    assert {**params["label"], **labels}["maxItems"] == 20  # Litestar puts the bound beside the oneOf
    assert resolve(schema, labels["items"]).get("format") == "uuid"
    assert set(params["label_match"]["enum"]) == {"any", "all"}
    assert any(v.get("format") == "date-time" for v in variants(params["completed_since"]))
    deletion = query_parameters(schema, f"{USER}/tasks/{{task_id}}", "delete")
    assert deletion["permanent"]["type"] == "boolean"
    list_deletion = query_parameters(schema, f"{USER}/lists/{{list_id}}", "delete")
    assert set(list_deletion["tasks"]["enum"]) == {"move", "delete"}


async def test_a_task_shows_its_list_and_labels(client: Client) -> None:
    schema = await fetch_schema(client)
    task = resolve(schema, {"$ref": "#/components/schemas/TaskRead"})
    assert {"list_id", "label_ids"} <= set(task["properties"])
    assert {"list_id", "label_ids"} <= set(task["required"])
