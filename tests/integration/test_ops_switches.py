"""Production switches: the docs UIs off (``DOCS_ENABLED``), ``/metrics`` behind a token (``METRICS_TOKEN``)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import pytest

from tests.factories import Client, SameLoopClient, make_settings, register
from tests.integration.test_errors import assert_error
from todo_service.app import create_app

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

DOCS = ("/api/docs", "/api/docs/swagger", "/api/docs/redoc", "/api/docs/openapi.json")
METRICS = "/metrics"
TOKEN = "scrape-token-0123456789abcdef"


@contextlib.asynccontextmanager
async def serve(database_url: str, **overrides: Any) -> AsyncIterator[Client]:
    async with SameLoopClient(app=create_app(make_settings(database_url, **overrides))) as client:
        yield client


@pytest.mark.parametrize("path", DOCS)
async def test_docs_are_served_by_default(client: Client, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    expected = "application/vnd.oai.openapi+json" if path.endswith(".json") else "text/html"
    assert response.headers["content-type"].startswith(expected)


async def test_docs_disabled_answers_404_in_the_error_body(database_url: str) -> None:
    async with serve(database_url, docs_enabled=False) as client:
        for path in DOCS:
            assert_error(await client.get(path), 404, "NOT_FOUND", path)
        assert (await client.get("/api/v1/health")).status_code == 200  # the API itself is untouched


async def test_metrics_are_open_without_a_token_setting(client: Client) -> None:
    response = await client.get(METRICS)
    assert response.status_code == 200
    assert "todo_build_info" in response.text


async def test_metrics_token_is_required_when_set(database_url: str) -> None:
    async with serve(database_url, metrics_token=TOKEN) as client:
        account = await register(client)  # a valid JWT of the service opens nothing here
        refused = {
            "none": (await client.get(METRICS), "NOT_AUTHENTICATED"),
            "basic": (await client.get(METRICS, headers={"Authorization": f"Basic {TOKEN}"}), "NOT_AUTHENTICATED"),
            "empty": (await client.get(METRICS, headers={"Authorization": "Bearer "}), "NOT_AUTHENTICATED"),
            "wrong": (await client.get(METRICS, headers={"Authorization": f"Bearer {TOKEN}x"}), "INVALID_TOKEN"),
            "prefix": (await client.get(METRICS, headers={"Authorization": f"Bearer {TOKEN[:-1]}"}), "INVALID_TOKEN"),
            "jwt": (await client.get(METRICS, headers=account.headers), "INVALID_TOKEN"),
        }
        allowed = await client.get(METRICS, headers={"Authorization": f"Bearer {TOKEN}"})
        lower = await client.get(METRICS, headers={"Authorization": f"bearer {TOKEN}"})
    for name, (response, code) in refused.items():
        body = assert_error(response, 401, code, METRICS)
        assert TOKEN not in response.text, name
        assert response.headers["www-authenticate"].startswith("Bearer"), name
        assert "todo_build_info" not in body["detail"]
    assert allowed.status_code == 200, allowed.text
    assert "todo_build_info" in allowed.text
    assert lower.status_code == 200  # the scheme is case-insensitive (RFC 9110)
