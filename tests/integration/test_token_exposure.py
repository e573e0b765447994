"""No token travels in a URL (path or query string), none is accepted from one, and none is logged.

Tokens go in exactly two places: JSON bodies (login, register and refresh answers; the refresh
request) and the ``Authorization`` header. The logs are checked at their chattiest (DEBUG, SQL
echo on) through a whole session: login, refresh, an authenticated request, logout, and the
refusals after it.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any

import pytest

from tests.factories import PASSWORD, SameLoopClient, make_settings, register
from todo_service.app import create_app

if TYPE_CHECKING:
    from httpx import Response

    from tests.factories import Account, Client

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/users/me"
TOKEN_LIKE = re.compile(r"token|jwt|bearer|refresh|access|auth|session", re.IGNORECASE)
METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def ok(response: Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return dict(response.json())


def secret_texts(tokens: list[str]) -> list[str]:
    """Each token, its JWT signature alone, and the SHA-256 the database keeps of refresh tokens."""
    texts = []
    for token in tokens:
        texts += [token, hashlib.sha256(token.encode()).hexdigest()]
        if token.count(".") == 2:  # a JWT: its signature identifies it too
            texts.append(token.rsplit(".", 1)[1])
    return texts


@pytest.mark.usefixtures("preserved_logging")
async def test_no_token_appears_in_any_log_line_of_a_whole_session(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(database_url, log_format="json", log_level="DEBUG", db_echo=True)
    async with SameLoopClient(app=create_app(settings)) as client:
        account = await register(client)
        logged_in = ok(await client.post(LOGIN, json={"email": account.email, "password": PASSWORD}))
        refreshed = ok(await client.post(REFRESH, json={"refresh_token": logged_in["refresh_token"]}))
        ok(await client.get(ME, headers=bearer(refreshed["access_token"])))
        ok(await client.post(LOGOUT, headers=bearer(refreshed["access_token"])))
        # Refusals log too: the logged-out session's tokens, and a token sent under the wrong scheme.
        assert (await client.get(ME, headers=bearer(refreshed["access_token"]))).status_code == 401
        assert (await client.post(REFRESH, json={"refresh_token": refreshed["refresh_token"]})).status_code == 401
        wrong_scheme = {"Authorization": f"Basic {logged_in['access_token']}"}
        assert (await client.get(ME, headers=wrong_scheme)).status_code == 401
    captured = capsys.readouterr()
    output = captured.out + captured.err

    assert "todo_service.access" in output  # the logs were captured, at DEBUG, with SQL echo
    assert "SELECT" in output
    tokens = [account.token, logged_in["access_token"], logged_in["refresh_token"]]
    tokens += [refreshed["access_token"], refreshed["refresh_token"]]
    for text in secret_texts(tokens):
        assert text not in output
    assert PASSWORD not in output
    assert "$argon2" not in output  # nor the password's hash


async def test_the_schema_has_no_token_parameter_in_a_path_query_or_cookie(client: Client) -> None:
    schema = (await client.get("/api/docs/openapi.json")).json()

    located: list[tuple[str, str, str]] = []
    for path, item in schema["paths"].items():
        operations = [operation for method, operation in item.items() if method in METHODS]
        parameters = [*item.get("parameters", []), *(p for op in operations for p in op.get("parameters", []))]
        located.extend((path, parameter["in"], parameter["name"]) for parameter in parameters)
    assert located, "the schema lists parameters (the walk found them)"
    assert not [(path, where, name) for path, where, name in located if TOKEN_LIKE.search(name)], located
    assert {where for _, where, _ in located} <= {"path", "query", "header"}
    schemes = schema["components"]["securitySchemes"]
    assert schemes, "the bearer scheme is documented"
    for scheme in schemes.values():
        assert (scheme["type"], scheme.get("scheme", "").lower()) == ("http", "bearer"), scheme
    # The refresh token is asked for in the JSON body only.
    refresh = schema["paths"][REFRESH]["post"]
    assert "parameters" not in refresh or not refresh["parameters"]
    assert list(refresh["requestBody"]["content"]) == ["application/json"]


@pytest.mark.parametrize("name", ["access_token", "token", "jwt", "authorization", "bearer"])
async def test_an_access_token_in_the_query_string_is_not_accepted(client: Client, account: Account, name: str) -> None:
    response = await client.get(ME, params={name: account.token})

    assert response.status_code == 401, response.text
    assert response.json()["error_code"] == "NOT_AUTHENTICATED"
    assert ok(await client.get(ME, headers=account.headers))["id"] == account.id


async def test_a_refresh_token_in_the_query_string_is_not_accepted(client: Client) -> None:
    account = await register(client)
    logged_in = ok(await client.post(LOGIN, json={"email": account.email, "password": PASSWORD}))

    response = await client.post(REFRESH, params={"refresh_token": logged_in["refresh_token"]})

    assert response.status_code in {400, 422}, response.text
    assert "access_token" not in response.json()
    # The token was not spent by the refused request: the body still exchanges it.
    assert ok(await client.post(REFRESH, json={"refresh_token": logged_in["refresh_token"]}))["access_token"]
