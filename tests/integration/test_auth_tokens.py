"""Every kind of bad bearer token answers 401 with the error body and a Bearer challenge."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import TYPE_CHECKING, Any
from uuid import UUID

import jwt
import pytest
from sqlalchemy import update

from tests.factories import TEST_SECRET, Account, Client
from todo_service.db.models import User

if TYPE_CHECKING:
    from httpx import Response
    from sqlalchemy.ext.asyncio import AsyncEngine

ME = "/api/v1/users/me"
OTHER_SECRET = "another-signing-key-fedcba9876543210fedcba9876543210"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def claims_of(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, TEST_SECRET, algorithms=["HS256"]))


def sign(claims: dict[str, Any], *, key: str = TEST_SECRET, algorithm: str = "HS256") -> str:
    """A JWT signed by hand (PyJWT warns about short keys for HS384/HS512)."""
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[algorithm]
    signing_input = f"{b64(json.dumps({'alg': algorithm, 'typ': 'JWT'}).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(key.encode(), signing_input.encode(), digest).digest()
    return f"{signing_input}.{b64(signature)}"


def fresh_claims(account: Account, **changes: Any) -> dict[str, Any]:
    """The claims of ``account``'s token, re-dated to now, with ``changes`` (``...`` drops a claim)."""
    now = int(time.time())
    claims = {**claims_of(account.token), "iat": now, "exp": now + 600, "jti": uuid.uuid4().hex, **changes}
    return {key: value for key, value in claims.items() if value is not ...}


def assert_401(response: Response, error_code: str) -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["error_code"] == error_code
    assert body["status_code"] == 401
    assert body["path"] == response.request.url.path
    assert body["detail"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "Traceback" not in response.text


async def me(client: Client, authorization: str) -> Response:
    return await client.get(ME, headers={"Authorization": authorization})


async def test_issued_token_is_hs256_with_the_documented_claims(client: Client, account: Account) -> None:
    header = jwt.get_unverified_header(account.token)
    claims = claims_of(account.token)

    assert header["alg"] == "HS256"
    assert claims["sub"] == account.id
    assert claims["jti"]
    UUID(claims["sid"])
    assert isinstance(claims["iat"], int)
    assert claims["exp"] - claims["iat"] == 1800
    assert abs(claims["iat"] - time.time()) < 60


async def test_a_correctly_crafted_token_is_accepted(client: Client, account: Account) -> None:
    """The control for the tests below: only what each one breaks makes its token fail."""
    response = await me(client, f"Bearer {sign(fresh_claims(account))}")

    assert response.status_code == 200, response.text
    assert response.json()["id"] == account.id


async def test_bearer_scheme_is_case_insensitive(client: Client, account: Account) -> None:
    assert (await me(client, f"bearer {account.token}")).status_code == 200


async def test_no_authorization_header_is_not_authenticated(client: Client, account: Account) -> None:
    for response in (
        await client.get(ME),
        await client.get(account.tasks_url),
        await client.post(account.tasks_url, json={"title": "x"}),
    ):
        assert_401(response, "NOT_AUTHENTICATED")
        assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param("Bearer garbage", id="garbage"),
        pytest.param("Bearer a.b.c", id="three-garbage-parts"),
    ],
)
async def test_garbage_is_an_invalid_token(client: Client, authorization: str) -> None:
    response = await me(client, authorization)

    assert_401(response, "INVALID_TOKEN")
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param("Bearer ", id="empty-token"),
        pytest.param("Bearer", id="scheme-only"),
        pytest.param("Basic dXNlcjpwYXNzd29yZA==", id="basic-credentials"),
    ],
)
async def test_no_bearer_token_is_not_authenticated(client: Client, authorization: str) -> None:
    """Without bearer credentials there is nothing to validate (RFC 6750: a bare challenge)."""
    response = await me(client, authorization)

    assert_401(response, "NOT_AUTHENTICATED")
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_a_token_without_a_scheme_is_refused(client: Client, account: Account) -> None:
    assert_401(await me(client, account.token), "NOT_AUTHENTICATED")


@pytest.mark.parametrize("scheme", ["Token", "Basic", "JWT"])
async def test_a_valid_token_under_another_scheme_is_refused(client: Client, account: Account, scheme: str) -> None:
    response = await me(client, f"{scheme} {account.token}")

    assert_401(response, "NOT_AUTHENTICATED")
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_tampered_payload_is_an_invalid_token(client: Client, account: Account, other_account: Account) -> None:
    header, payload, signature = account.token.split(".")
    claims = json.loads(unb64(payload))
    claims["sub"] = other_account.id

    forged = f"{header}.{b64(json.dumps(claims).encode())}.{signature}"

    assert_401(await me(client, f"Bearer {forged}"), "INVALID_TOKEN")


async def test_tampered_signature_is_an_invalid_token(client: Client, account: Account) -> None:
    header, payload, signature = account.token.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]

    assert_401(await me(client, f"Bearer {header}.{payload}.{flipped}"), "INVALID_TOKEN")


async def test_token_signed_with_another_secret_is_invalid(client: Client, account: Account) -> None:
    assert_401(await me(client, f"Bearer {sign(fresh_claims(account), key=OTHER_SECRET)}"), "INVALID_TOKEN")


async def test_unsigned_alg_none_token_is_invalid(client: Client, account: Account) -> None:
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = b64(json.dumps(fresh_claims(account)).encode())

    assert_401(await me(client, f"Bearer {header}.{payload}."), "INVALID_TOKEN")


@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
async def test_other_hmac_algorithms_are_refused_even_with_the_right_secret(
    client: Client, account: Account, algorithm: str
) -> None:
    assert_401(await me(client, f"Bearer {sign(fresh_claims(account), algorithm=algorithm)}"), "INVALID_TOKEN")


async def test_expired_token_is_token_expired(client: Client, account: Account) -> None:
    now = int(time.time())
    expired = sign(fresh_claims(account, iat=now - 3600, exp=now - 60))

    response = await me(client, f"Bearer {expired}")

    assert_401(response, "TOKEN_EXPIRED")
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


async def test_token_used_before_nbf_is_invalid(client: Client, account: Account) -> None:
    assert_401(await me(client, f"Bearer {sign(fresh_claims(account, nbf=int(time.time()) + 600))}"), "INVALID_TOKEN")


async def test_token_issued_in_the_future_is_invalid(client: Client, account: Account) -> None:
    assert_401(await me(client, f"Bearer {sign(fresh_claims(account, iat=int(time.time()) + 300))}"), "INVALID_TOKEN")


@pytest.mark.parametrize("claim", ["jti", "sid", "iat", "exp", "sub"])
async def test_token_missing_a_claim_is_invalid(client: Client, account: Account, claim: str) -> None:
    token = sign(fresh_claims(account, **{claim: ...}))

    assert_401(await me(client, f"Bearer {token}"), "INVALID_TOKEN")


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"sub": "not-a-uuid"}, id="sub-not-uuid"),
        pytest.param({"sub": ""}, id="sub-empty"),
        pytest.param({"sub": 42}, id="sub-a-number"),
        pytest.param({"sid": "not-a-uuid"}, id="sid-not-uuid"),
        pytest.param({"sid": 42}, id="sid-a-number"),
        pytest.param({"exp": "tomorrow"}, id="exp-not-a-number"),
        pytest.param({"iat": "today"}, id="iat-not-a-number"),
    ],
)
async def test_token_with_malformed_claims_is_invalid(
    client: Client, account: Account, changes: dict[str, Any]
) -> None:
    assert_401(await me(client, f"Bearer {sign(fresh_claims(account, **changes))}"), "INVALID_TOKEN")


async def test_validly_signed_token_of_a_user_that_does_not_exist_is_revoked(client: Client, account: Account) -> None:
    token = sign(fresh_claims(account, sub=str(uuid.uuid4()), sid=str(uuid.uuid4())))

    assert_401(await me(client, f"Bearer {token}"), "TOKEN_REVOKED")


async def test_validly_signed_token_with_an_unknown_session_is_revoked(client: Client, account: Account) -> None:
    assert_401(await me(client, f"Bearer {sign(fresh_claims(account, sid=str(uuid.uuid4())))}"), "TOKEN_REVOKED")


async def test_another_users_session_under_my_id_is_revoked(
    client: Client, account: Account, other_account: Account
) -> None:
    token = sign(fresh_claims(account, sid=claims_of(other_account.token)["sid"]))

    assert_401(await me(client, f"Bearer {token}"), "TOKEN_REVOKED")
    assert (await me(client, f"Bearer {other_account.token}")).status_code == 200


async def test_deactivated_users_token_stops_working_at_once(
    client: Client, account: Account, db_engine: AsyncEngine
) -> None:
    assert (await client.get(ME, headers=account.headers)).status_code == 200
    async with db_engine.begin() as connection:
        await connection.execute(update(User).where(User.id == UUID(account.id)).values(is_active=False))

    assert_401(await client.get(ME, headers=account.headers), "INVALID_TOKEN")
    assert_401(await client.get(account.tasks_url, headers=account.headers), "INVALID_TOKEN")
    assert_401(await client.post(account.tasks_url, json={"title": "x"}, headers=account.headers), "INVALID_TOKEN")
    assert_401(await client.put(ME, json={"first_name": "X"}, headers=account.headers), "INVALID_TOKEN")


async def test_public_routes_ignore_a_bad_token(client: Client) -> None:
    response = await client.get("/api/v1/health", headers={"Authorization": "Bearer garbage"})

    assert response.status_code == 200, response.text
