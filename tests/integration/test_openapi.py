"""The OpenAPI docs: three renderers, and a schema that documents every route and every error body."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.factories import Client

SCHEMA_URL = "/api/docs/openapi.json"
ERROR_BODY_REF = "#/components/schemas/ErrorBody"
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


@dataclass(frozen=True)
class Operation:
    """One route of the contract, as the schema must document it."""

    method: str
    path: str
    success: str
    public: bool = False
    body: bool = False
    owned: bool = False  # under /users/{user_id}: 403 for someone else's id, 404 for a missing task

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.path}"


TASKS = "/api/v1/users/{user_id}/tasks"
CONTRACT = [
    Operation("post", "/api/v1/auth/register", "201", public=True, body=True),
    Operation("post", "/api/v1/auth/login", "200", public=True, body=True),
    Operation("post", "/api/v1/auth/logout", "200"),
    Operation("get", "/api/v1/users/me", "200"),
    Operation("put", "/api/v1/users/me", "200", body=True),
    Operation("get", TASKS, "200", owned=True),
    Operation("post", TASKS, "201", body=True, owned=True),
    Operation("get", TASKS + "/{task_id}", "200", owned=True),
    Operation("put", TASKS + "/{task_id}", "200", body=True, owned=True),
    Operation("delete", TASKS + "/{task_id}", "200", owned=True),
    Operation("patch", TASKS + "/{task_id}/complete", "200", body=True, owned=True),
    Operation("get", TASKS + "/changes", "200", owned=True),
    Operation("post", TASKS + "/batch", "200", body=True, owned=True),
    Operation("get", "/api/v1/health", "200", public=True),
    Operation("get", "/api/v1/health/ready", "200", public=True),
]


async def fetch_schema(client: Client) -> dict[str, Any]:
    response = await client.get(SCHEMA_URL)
    assert response.status_code == 200, response.text
    return dict(response.json())


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Every (method, path, operation) in the schema."""
    return [
        (method, path, op)
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if method in HTTP_METHODS
    ]


def resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Follow a local ``$ref`` (one level is all this schema uses)."""
    ref = node.get("$ref")
    if ref is None:
        return node
    target: dict[str, Any] = schema
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return target


@pytest.mark.parametrize(
    ("path", "marker"),
    [("/api/docs", "scalar"), ("/api/docs/swagger", "swagger-ui"), ("/api/docs/redoc", "redoc")],
)
async def test_docs_pages_are_html(client: Client, path: str, marker: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "<html" in response.text.lower()
    assert marker in response.text.lower()
    assert "Todo Service API" in response.text


async def test_schema_is_openapi_3(client: Client) -> None:
    response = await client.get(SCHEMA_URL)
    assert response.status_code == 200
    assert "json" in response.headers["content-type"]
    schema = response.json()
    assert str(schema["openapi"]).startswith("3.")
    assert schema["info"]["title"]
    assert schema["info"]["version"]


@pytest.mark.parametrize("operation", CONTRACT, ids=str)
async def test_contract_route_is_documented(client: Client, operation: Operation) -> None:
    schema = await fetch_schema(client)
    assert operation.path in schema["paths"], sorted(schema["paths"])
    op = schema["paths"][operation.path].get(operation.method)
    assert op is not None, f"{operation} is missing"
    success = op["responses"].get(operation.success)
    assert success is not None, sorted(op["responses"])
    assert success["content"]["application/json"]["schema"] != {"$ref": ERROR_BODY_REF}
    for name in ("user_id", "task_id"):
        if "{" + name + "}" in operation.path:
            params = {(p["name"], p["in"]) for p in op.get("parameters", [])}
            assert (name, "path") in params


@pytest.mark.parametrize("operation", CONTRACT, ids=str)
async def test_contract_route_documents_its_errors(client: Client, operation: Operation) -> None:
    responses = (await fetch_schema(client))["paths"][operation.path][operation.method]["responses"]
    # The probes touch nothing that could fail unexpectedly: readiness answers 503, liveness only 200.
    expected = set() if operation.path.startswith("/api/v1/health") else {"500"}
    if not operation.public:
        expected |= {"401"}
    if operation.body:
        expected |= {"400", "413", "422"}
    if operation.owned:
        expected |= {"403", "404"}
    if operation.path.endswith("/ready"):
        expected |= {"503"}
    if operation.path.endswith("/register"):
        expected |= {"409"}
    if operation.path.endswith("/login"):
        expected |= {"401"}
    assert expected <= set(responses), f"{operation} lacks {sorted(expected - set(responses))}"


@pytest.mark.parametrize("operation", CONTRACT, ids=str)
async def test_public_and_protected_routes_are_marked(client: Client, operation: Operation) -> None:
    schema = await fetch_schema(client)
    op = schema["paths"][operation.path][operation.method]
    effective = op.get("security", schema.get("security"))
    if operation.public:
        assert op.get("security") == [{}]
        return
    assert effective, f"{operation} is not secured"
    schemes = schema["components"]["securitySchemes"]
    for requirement in effective:
        assert requirement, f"{operation} allows anonymous access"
        for name in requirement:
            assert schemes[name]["type"] == "http"
            assert schemes[name]["scheme"].lower() == "bearer"


async def test_every_error_response_uses_the_error_body_with_examples(client: Client) -> None:
    schema = await fetch_schema(client)
    problems: list[str] = []
    for method, path, op in operations(schema):
        for status, response in op["responses"].items():
            if int(status) < 400:
                continue
            where = f"{method.upper()} {path} {status}"
            content = response.get("content", {}).get("application/json")
            if content is None or content.get("schema") != {"$ref": ERROR_BODY_REF}:
                problems.append(f"{where}: not ErrorBody")
                continue
            examples = list(content.get("examples", {}).values())
            if not examples:
                problems.append(f"{where}: no example")
            for example in examples:
                value = example.get("value", {})
                if not isinstance(value.get("error_code"), str) or value.get("status_code") != int(status):
                    problems.append(f"{where}: example {value!r}")
    assert not problems, "\n".join(problems)


async def test_error_body_schema_matches_the_contract(client: Client) -> None:
    error_body = (await fetch_schema(client))["components"]["schemas"]["ErrorBody"]
    assert set(error_body["properties"]) == {
        "detail",
        "error_code",
        "timestamp",
        "path",
        "status_code",
        "errors",
        "operation",
    }
    assert set(error_body["required"]) == {"detail", "error_code", "timestamp", "path", "status_code"}


async def test_no_response_uses_litestars_default_error_shape(client: Client) -> None:
    schema = await fetch_schema(client)
    offenders = [
        f"{method.upper()} {path} {status}"
        for method, path, op in operations(schema)
        for status, response in op["responses"].items()
        for content in response.get("content", {}).values()
        if "extra" in resolve(schema, content.get("schema", {})).get("properties", {})
    ]
    assert not offenders
    components = schema["components"]["schemas"].values()
    assert not [c for c in components if {"status_code", "detail", "extra"} <= set(c.get("properties", {}))]


async def test_docs_routes_are_not_in_the_schema(client: Client) -> None:
    schema = await fetch_schema(client)
    assert schema["paths"]
    assert not [path for path in schema["paths"] if path.startswith("/api/docs")]


# Sync: each route documents its conditional and idempotency headers and the answers they lead to.
SYNC = [
    ("get", TASKS, {"If-None-Match"}, {"304"}),
    ("get", TASKS + "/{task_id}", {"If-None-Match"}, {"304"}),
    ("put", TASKS + "/{task_id}", {"If-Match"}, {"412"}),
    ("patch", TASKS + "/{task_id}/complete", {"If-Match"}, {"412"}),
    ("delete", TASKS + "/{task_id}", {"If-Match"}, {"412"}),
    ("post", TASKS, {"Idempotency-Key"}, {"409", "422"}),
    ("post", TASKS + "/batch", {"Idempotency-Key"}, {"409", "412", "422"}),
    ("get", TASKS + "/changes", set(), {"410", "422"}),
]


@pytest.mark.parametrize(("method", "path", "headers", "statuses"), SYNC, ids=[f"{m} {p}" for m, p, _, _ in SYNC])
async def test_sync_headers_and_answers_are_documented(
    client: Client, method: str, path: str, headers: set[str], statuses: set[str]
) -> None:
    operation = (await fetch_schema(client))["paths"][path][method]
    documented = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
    assert headers <= documented, sorted(documented)
    assert statuses <= set(operation["responses"]), sorted(operation["responses"])
    codes = {
        example["value"]["error_code"]
        for status in statuses - {"304"}
        for example in operation["responses"][status]["content"]["application/json"]["examples"].values()
    }
    expected = {"412": "PRECONDITION_FAILED", "409": "IDEMPOTENCY_KEY_IN_USE", "410": "CURSOR_EXPIRED"}
    assert {code for status, code in expected.items() if status in statuses} <= codes
    if "304" in statuses:
        assert "content" not in operation["responses"]["304"]
