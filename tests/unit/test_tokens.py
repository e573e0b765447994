"""Access tokens: HS256 JWTs with sub, jti, iat, exp and sid, checked by Litestar's JWT auth."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from litestar.middleware.authentication import AuthenticationResult
from litestar.testing import RequestFactory

from tests.factories import TEST_SECRET
from todo_service.core.errors import InvalidToken, NotAuthenticated, TokenExpired
from todo_service.security.access import Caller
from todo_service.security.tokens import (
    AccessToken,
    BearerTokenMiddleware,
    IssuedToken,
    TokenIssuer,
    VerifiedTokens,
    build_jwt_auth,
    caller_from_token,
)

THIRTY_MINUTES = timedelta(minutes=30)


def decode(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, TEST_SECRET, algorithms=["HS256"]))


def access_token(sub: str, sid: str | None, jti: str = "a-jti") -> AccessToken:
    return AccessToken(exp=datetime.now(UTC) + THIRTY_MINUTES, sub=sub, jti=jti, sid=sid)


def test_build_jwt_auth_configures_hs256_bearer_tokens() -> None:
    auth = build_jwt_auth(TEST_SECRET, THIRTY_MINUTES)

    assert auth.algorithm == "HS256"
    assert auth.token_secret == TEST_SECRET
    assert auth.default_token_expiration == THIRTY_MINUTES
    assert auth.token_cls is AccessToken
    assert auth.retrieve_user_handler is caller_from_token
    assert set(auth.require_claims or ()) >= {"iat", "jti", "sid"}
    assert auth.exclude_opt_key == "exclude_from_auth"
    assert auth.auth_header == "Authorization"


def test_issuer_signs_a_token_with_the_documented_claims() -> None:
    issuer = TokenIssuer(build_jwt_auth(TEST_SECRET, THIRTY_MINUTES))
    user_id, session_id = uuid.uuid4(), uuid.uuid4()

    issued = issuer.issue(user_id, session_id)

    assert isinstance(issued, IssuedToken)
    assert issued.expires_in == 1800
    assert jwt.get_unverified_header(issued.access_token)["alg"] == "HS256"
    claims = decode(issued.access_token)
    assert claims["sub"] == str(user_id)
    assert claims["sid"] == str(session_id)
    assert len(claims["jti"]) == 32
    int(claims["jti"], 16)
    assert claims["exp"] - claims["iat"] == 1800
    assert abs(claims["iat"] - time.time()) < 5


def test_issuer_follows_the_configured_lifetime() -> None:
    issuer = TokenIssuer(build_jwt_auth(TEST_SECRET, timedelta(minutes=5)))

    issued = issuer.issue(uuid.uuid4(), uuid.uuid4())

    assert issuer.ttl_seconds == 300
    assert issued.expires_in == 300
    claims = decode(issued.access_token)
    assert claims["exp"] - claims["iat"] == 300


def test_every_token_has_its_own_jti() -> None:
    issuer = TokenIssuer(build_jwt_auth(TEST_SECRET, THIRTY_MINUTES))
    user_id, session_id = uuid.uuid4(), uuid.uuid4()

    jtis = {decode(issuer.issue(user_id, session_id).access_token)["jti"] for _ in range(5)}

    assert len(jtis) == 5


def test_issued_tokens_are_not_valid_under_another_secret() -> None:
    issued = TokenIssuer(build_jwt_auth(TEST_SECRET, THIRTY_MINUTES)).issue(uuid.uuid4(), uuid.uuid4())

    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(issued.access_token, TEST_SECRET[::-1], algorithms=["HS256"])


def test_issued_token_decodes_into_an_access_token_with_its_session() -> None:
    auth = build_jwt_auth(TEST_SECRET, THIRTY_MINUTES)
    session_id = uuid.uuid4()
    issued = TokenIssuer(auth).issue(uuid.uuid4(), session_id)

    token = AccessToken.decode(issued.access_token, TEST_SECRET, "HS256", require_claims=auth.require_claims)

    assert token.sid == str(session_id)


async def test_caller_from_token_reads_the_user_and_session_ids() -> None:
    user_id, session_id = uuid.uuid4(), uuid.uuid4()

    caller = await caller_from_token(access_token(str(user_id), str(session_id), jti="j-1"), RequestFactory().get())

    assert caller == Caller(user_id=user_id, session_id=session_id)


@pytest.mark.parametrize(
    ("sub", "sid"),
    [
        pytest.param("not-a-uuid", str(uuid.uuid4()), id="sub-not-uuid"),
        pytest.param(str(uuid.uuid4()), "not-a-uuid", id="sid-not-uuid"),
        pytest.param(str(uuid.uuid4()), None, id="sid-missing"),
        pytest.param("12345", "67890", id="both-numbers"),
    ],
)
async def test_caller_from_token_rejects_ids_that_are_not_uuids(sub: str, sid: str | None) -> None:
    with pytest.raises(InvalidToken) as caught:
        await caller_from_token(access_token(sub, sid), RequestFactory().get())

    assert caught.value.status_code == 401
    assert caught.value.error_code == "INVALID_TOKEN"


# --- verified tokens, kept until they expire --------------------------------------------------------


def verified_result(exp: datetime, sub: str = "u") -> AuthenticationResult:
    token = AccessToken(exp=exp, sub=sub, jti="j", sid="s")
    return AuthenticationResult(user=Caller(uuid.uuid4(), uuid.uuid4()), auth=token)


def test_a_verified_token_is_kept_until_its_exp() -> None:
    store = VerifiedTokens()
    result = verified_result(datetime.now(UTC) + THIRTY_MINUTES)
    store.put("token-a", result)
    assert store.get("token-a") is result
    assert store.get("token-b") is None  # only the exact text


def test_an_expired_token_is_dropped_not_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    store = VerifiedTokens()
    exp = datetime.now(UTC) + timedelta(seconds=60)
    store.put("token", verified_result(exp))
    later = exp.timestamp()  # exp itself: PyJWT calls the token expired from that second on
    monkeypatch.setattr(time, "time", lambda: later)
    assert store.get("token") is None
    assert store._entries == {}


def test_the_oldest_token_makes_room_when_full() -> None:
    store = VerifiedTokens(size=2)
    exp = datetime.now(UTC) + THIRTY_MINUTES
    for name in ("first", "second", "third"):
        store.put(name, verified_result(exp))
    assert [store.get(name) is not None for name in ("first", "second", "third")] == [False, True, True]


def test_each_app_keeps_its_own_verified_tokens() -> None:
    one, two = build_jwt_auth(TEST_SECRET, THIRTY_MINUTES), build_jwt_auth("another-" + TEST_SECRET, THIRTY_MINUTES)
    first, second = one.middleware, two.middleware
    assert first.middleware is second.middleware is BearerTokenMiddleware
    assert first.kwargs["verified"] is one.verified_tokens
    assert second.kwargs["verified"] is two.verified_tokens
    assert one.verified_tokens is not two.verified_tokens


# --- what the bearer middleware answers -------------------------------------------------------------


def bearer_middleware() -> BearerTokenMiddleware:
    async def app(*_: Any) -> None:
        return None

    middleware = build_jwt_auth(TEST_SECRET, THIRTY_MINUTES).middleware(app)
    assert isinstance(middleware, BearerTokenMiddleware)
    return middleware


def signed(exp: datetime) -> str:
    claims = {"sub": str(uuid.uuid4()), "sid": str(uuid.uuid4()), "jti": "j", "iat": int(time.time()) - 7200}
    return jwt.encode({**claims, "exp": int(exp.timestamp())}, TEST_SECRET, algorithm="HS256")


@pytest.mark.parametrize(
    ("authorization", "error"),
    [
        pytest.param(None, NotAuthenticated, id="no-header"),
        pytest.param("Basic abc", NotAuthenticated, id="other-scheme"),
        pytest.param("Bearer ", NotAuthenticated, id="empty"),
        pytest.param("Bearer not.a.jwt", InvalidToken, id="garbage"),
        pytest.param(f"Bearer {signed(datetime.now(UTC) - timedelta(hours=1))}", TokenExpired, id="expired"),
    ],
)
async def test_the_bearer_middleware_raises_the_contract_errors(
    authorization: str | None, error: type[Exception]
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    with pytest.raises(error):
        await bearer_middleware().authenticate_request(RequestFactory().get(headers=headers))


async def test_a_valid_token_is_verified_once_per_app() -> None:
    middleware = bearer_middleware()
    token = signed(datetime.now(UTC) + THIRTY_MINUTES)
    request = RequestFactory().get(headers={"Authorization": f"Bearer {token}"})
    first = await middleware.authenticate_request(request)
    assert middleware.verified.get(token) is first
    assert await middleware.authenticate_request(request) is first
