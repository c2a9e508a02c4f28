"""``/api/v1/auth``: register, login, refresh (rotation, reuse, expiry, races), logout, the
refresh cookie, suspension, the system user, rate limits by client IP, the token sweep."""

from __future__ import annotations

import asyncio
import time
import uuid
from http.cookies import SimpleCookie
from typing import Any

import httpx
import jwt
import pytest

from excentra.db import accounts
from excentra.http.app import create_app
from excentra.http.auth import token_hash
from excentra.http.ratelimit import DEFAULT_POLICIES
from excentra.http.routes.auth import (
    INVALID_REFRESH,
    SWEEP_INTERVAL,
    sweep_refresh_tokens,
    valid_email,
)
from excentra.http.sessions import RefreshGrace
from tests.http.conftest import FAST_PASSWORDS, Api, running_api, settings_for
from tests.live import live_server

pytestmark = pytest.mark.asyncio

SECRET = settings_for("sqlite:///unused").jwt_secret
PASSWORD = "password123"
SYSTEM_EMAIL = "system@excentra.com"


# -- helpers -------------------------------------------------------------------------------


def session_cookie(response: httpx.Response) -> Any:
    """The ``refresh_token`` morsel of the response's ``Set-Cookie``."""
    [header] = [h for h in response.headers.get_list("set-cookie")
                if h.startswith("refresh_token=")]
    jar: SimpleCookie = SimpleCookie()
    jar.load(header)
    return jar["refresh_token"]


async def post(api: Api, path: str, *, json: Any = None, cookie: str | None = None,
               headers: dict[str, str] | None = None) -> httpx.Response:
    """POST with an explicit refresh cookie (or none); the client's jar stays empty so
    every test says which token it presents."""
    sent = dict(headers or {})
    if cookie is not None:
        sent["Cookie"] = f"refresh_token={cookie}"
    response = await api.client.post(f"/api/v1/auth/{path}", json=json, headers=sent)
    api.client.cookies.clear()
    return response


async def register(api: Api, email: str, password: str = PASSWORD) -> httpx.Response:
    return await post(api, "register", json={"email": email, "password": password})


async def login(api: Api, email: str, password: str = PASSWORD) -> httpx.Response:
    return await post(api, "login", json={"email": email, "password": password})


def claims(response: httpx.Response) -> dict[str, Any]:
    token = response.json()["access_token"]
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    decoded: dict[str, Any] = jwt.decode(token, SECRET, algorithms=["HS256"])
    return decoded


async def token_rows(api: Api, user_id: str) -> list[dict[str, Any]]:
    return await api.services.db.fetch_all(
        "SELECT token_hash, used_at FROM refresh_tokens WHERE user_id = :u",
        {"u": uuid.UUID(user_id)})


# -- register ------------------------------------------------------------------------------


async def test_register_issues_tokens_and_a_session_cookie(api: Api) -> None:
    before = int(time.time())
    r = await register(api, "Alice@Example.COM")
    assert r.status_code == 201, r.text
    assert set(r.json()) == {"access_token"}
    got = claims(r)
    assert set(got) == {"user_id", "role", "exp"}
    assert got["role"] == "user"
    assert before + 900 <= got["exp"] <= int(time.time()) + 900
    row = await accounts.user_by_id(api.services.db, got["user_id"])
    assert row is not None
    assert (row["email"], row["role"], row["username"], row["is_suspended"]) == (
        "alice@example.com", "user", None, False)
    cookie = session_cookie(r)
    assert len(cookie.value) == 128
    assert cookie["path"] == "/api/v1/auth"
    assert cookie["httponly"] is True
    assert not cookie["secure"]
    assert not cookie["samesite"]
    assert not cookie["max-age"]
    assert not cookie["expires"]
    [stored] = await token_rows(api, got["user_id"])
    assert stored["token_hash"] == token_hash(cookie.value)  # only the digest is stored
    assert stored["used_at"] is None


@pytest.mark.parametrize(("email", "password", "message"), [
    ("not-an-email", PASSWORD, "Invalid email address"),
    ("@example.com", PASSWORD, "Invalid email address"),
    ("a@b@example.com", PASSWORD, "Invalid email address"),
    ("a@localhost", PASSWORD, "Invalid email address"),
    ("a@example..com", PASSWORD, "Invalid email address"),
    ("a b@example.com", PASSWORD, "Invalid email address"),
    ("a@example.com\n", PASSWORD, "Invalid email address"),
    ("a" * 244 + "@example.com", PASSWORD, "Invalid email address"),
    ("a@example.com", "1234567", "Password should be at least 8 characters"),
    ("a@example.com", "x" * 129, "Password should be at most 128 characters"),
    ("nope", "short", "Invalid email address; Password should be at least 8 characters"),
])
async def test_register_validation(api: Api, email: str, password: str, message: str) -> None:
    r = await register(api, email, password)
    assert (r.status_code, r.json()) == (400, {"error": message})


async def test_register_accepts_the_limits(api: Api) -> None:
    assert valid_email("a" * 243 + "@example.com")  # 255 characters
    r = await register(api, "a" * 243 + "@example.com", "x" * 128)
    assert r.status_code == 201, r.text
    r = await register(api, "b@example.com", "12345678")
    assert r.status_code == 201, r.text


async def test_register_duplicate_email_any_case(api: Api) -> None:
    assert (await register(api, "bob@example.com")).status_code == 201
    for email in ("bob@example.com", "BOB@Example.com"):
        r = await register(api, email)
        assert (r.status_code, r.json()) == (409, {"error": "Email already registered"})
    count = await api.services.db.fetch_val(
        "SELECT COUNT(*) FROM users WHERE email = :e", {"e": "bob@example.com"}, as_type=int)
    assert count == 1


async def test_register_body_shape_errors(api: Api) -> None:
    r = await api.client.post("/api/v1/auth/register", content=b"{bad",
                              headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"].startswith("Failed to parse the request body as JSON")
    r = await post(api, "register", json={"email": "c@example.com"})
    assert r.status_code == 422
    assert "missing field `password`" in r.json()["error"]
    r = await post(api, "register", json={"email": 5, "password": PASSWORD})
    assert r.status_code == 422


# -- login ---------------------------------------------------------------------------------


async def test_login_is_case_insensitive_and_opens_another_session(api: Api) -> None:
    user_id = claims(await register(api, "carol@example.com"))["user_id"]
    r = await login(api, "CAROL@Example.com")
    assert r.status_code == 200, r.text
    got = claims(r)
    assert got["user_id"] == user_id
    assert got["role"] == "user"
    assert len(session_cookie(r).value) == 128
    assert len(await token_rows(api, user_id)) == 2


async def test_login_failures(api: Api) -> None:
    await register(api, "dave@example.com")
    for email, password in (("dave@example.com", "wrong-password"),
                            ("nobody@example.com", PASSWORD)):
        r = await login(api, email, password)
        assert (r.status_code, r.json()) == (401, {"error": "Invalid email or password"})
        assert "set-cookie" not in r.headers
    r = await login(api, "dave@example.com", "short")  # validation first, as the original
    assert (r.status_code, r.json()) == (400, {"error": "Password should be at least 8 "
                                                        "characters"})
    r = await login(api, "dave", PASSWORD)
    assert (r.status_code, r.json()) == (400, {"error": "Invalid email address"})


async def test_system_user_cannot_log_in(api: Api) -> None:
    for password in ("", "anything-at-all"):
        r = await login(api, SYSTEM_EMAIL, password or "12345678")
        assert (r.status_code, r.json()) == (401, {"error": "Invalid email or password"})
    # Not even with a hash planted: the role alone refuses.
    await api.services.db.execute(
        "UPDATE users SET password_hash = :h WHERE email = :e",
        {"h": await FAST_PASSWORDS.hash(PASSWORD), "e": SYSTEM_EMAIL})
    r = await login(api, SYSTEM_EMAIL)
    assert (r.status_code, r.json()) == (401, {"error": "Invalid email or password"})


async def suspend(api: Api, user_id: str) -> None:
    row = await accounts.set_suspended(api.services.db, user_id, True)
    assert row is not None
    assert row["is_suspended"] is True
    api.services.suspended.set(user_id, True)


async def test_suspended_user_cannot_log_in_or_refresh(api: Api) -> None:
    r = await register(api, "erin@example.com")
    user_id, cookie = claims(r)["user_id"], session_cookie(r).value
    await suspend(api, user_id)
    r = await login(api, "erin@example.com")
    assert (r.status_code, r.json()) == (403, {"error": "Account suspended"})
    r = await login(api, "erin@example.com", "wrong-password")  # no probing
    assert (r.status_code, r.json()) == (401, {"error": "Invalid email or password"})
    r = await post(api, "refresh", cookie=cookie)
    assert (r.status_code, r.json()) == (403, {"error": "Account suspended"})
    # Lifting the suspension restores both (the refused refresh did not consume the token).
    await accounts.set_suspended(api.services.db, user_id, None)
    api.services.suspended.set(user_id, False)
    assert (await post(api, "refresh", cookie=cookie)).status_code == 200
    assert (await login(api, "erin@example.com")).status_code == 200


# -- refresh -------------------------------------------------------------------------------


async def test_refresh_rotates_and_detects_reuse(api: Api) -> None:
    api.services.refresh_grace = RefreshGrace(0)  # strict: no grace for a repeat
    r = await register(api, "frank@example.com")
    user_id, first = claims(r)["user_id"], session_cookie(r).value
    other = session_cookie(await login(api, "frank@example.com")).value  # a 2nd session
    r = await post(api, "refresh", cookie=first)
    assert r.status_code == 200, r.text
    got = claims(r)
    assert set(got) == {"user_id", "role", "exp"}
    assert (got["user_id"], got["role"]) == (user_id, "user")
    assert abs(got["exp"] - (time.time() + 900)) <= 5
    second = session_cookie(r)
    assert second.value != first
    assert (second["path"], second["httponly"]) == ("/api/v1/auth", True)
    # The old token again: reuse → every session of the user is gone.
    r = await post(api, "refresh", cookie=first)
    assert r.status_code == 401
    assert r.json() == {"error": "Session invalidated, please log in again"}
    assert await token_rows(api, user_id) == []
    for token in (second.value, other):
        r = await post(api, "refresh", cookie=token)
        assert (r.status_code, r.json()) == (
            401, {"error": "Invalid or expired refresh token, please log in again"})


async def test_refresh_mints_the_current_role(api: Api) -> None:
    r = await register(api, "grace@example.com")
    user_id, cookie = claims(r)["user_id"], session_cookie(r).value
    assert await accounts.set_role(api.services.db, user_id, "admin") is not None
    r = await post(api, "refresh", cookie=cookie)
    assert r.status_code == 200, r.text
    assert claims(r)["role"] == "admin"


async def test_refresh_without_or_with_unknown_cookie(api: Api) -> None:
    r = await post(api, "refresh")
    assert (r.status_code, r.json()) == (401, {"error": "No refresh token"})
    r = await post(api, "refresh", cookie="f" * 128)
    assert (r.status_code, r.json()) == (
        401, {"error": "Invalid or expired refresh token, please log in again"})


async def test_expired_refresh_token_is_refused_and_deleted(api: Api) -> None:
    r = await register(api, "heidi@example.com")
    user_id, cookie = claims(r)["user_id"], session_cookie(r).value
    await api.services.db.execute(
        "UPDATE refresh_tokens SET expires_at = :t WHERE token_hash = :h",
        {"t": accounts.now().replace(year=2020), "h": token_hash(cookie)})
    r = await post(api, "refresh", cookie=cookie)
    assert (r.status_code, r.json()) == (
        401, {"error": "Invalid or expired refresh token, please log in again"})
    assert await token_rows(api, user_id) == []


async def test_concurrent_refreshes_share_one_rotation_within_the_grace(api: Api) -> None:
    """Two tabs (or React's development mode) refreshing at once with one cookie: one
    rotation, every request answered 200 with the same new cookie, no session revoked."""
    r = await register(api, "tabs@example.com")
    user_id, cookie = claims(r)["user_id"], session_cookie(r).value
    replies = await asyncio.gather(*[
        api.client.post("/api/v1/auth/refresh", headers={"Cookie": f"refresh_token={cookie}"})
        for _ in range(6)])
    api.client.cookies.clear()
    assert [reply.status_code for reply in replies] == [200] * 6, [r.text for r in replies]
    successors = {session_cookie(reply).value for reply in replies}
    assert len(successors) == 1
    assert successors != {cookie}
    rows = await token_rows(api, user_id)
    assert len(rows) == 2  # the rotated one and its single successor
    (successor,) = successors
    r = await post(api, "refresh", cookie=successor)  # the shared successor works
    assert r.status_code == 200, r.text


async def test_a_reuse_after_the_grace_still_revokes_every_session(api: Api) -> None:
    api.services.refresh_grace = RefreshGrace(0.2)
    r = await register(api, "late@example.com")
    user_id, first = claims(r)["user_id"], session_cookie(r).value
    r = await post(api, "refresh", cookie=first)
    second = session_cookie(r).value
    r = await post(api, "refresh", cookie=first)  # within the grace: the same successor
    assert (r.status_code, session_cookie(r).value) == (200, second)
    await asyncio.sleep(0.3)
    r = await post(api, "refresh", cookie=first)  # after it: a reuse
    assert (r.status_code, r.json()) == (401, {"error": "Session invalidated, please log in "
                                                        "again"})
    assert await token_rows(api, user_id) == []


async def test_concurrent_refreshes_with_one_token_exactly_one_wins(api: Api) -> None:
    api.services.refresh_grace = RefreshGrace(0)  # strict
    r = await register(api, "ivan@example.com")
    cookie = session_cookie(r).value
    replies = await asyncio.gather(*[
        api.client.post("/api/v1/auth/refresh", headers={"Cookie": f"refresh_token={cookie}"})
        for _ in range(6)])
    api.client.cookies.clear()
    statuses = sorted(reply.status_code for reply in replies)
    assert statuses == [200, 401, 401, 401, 401, 401]
    # A loser that finds the token used detects the reuse and deletes all the user's
    # tokens (the original's rule); a loser arriving after that finds no token at all.
    # Which losers see which depends on timing; at least one must detect the reuse.
    errors = [reply.json()["error"] for reply in replies if reply.status_code == 401]
    assert set(errors) <= {"Session invalidated, please log in again", INVALID_REFRESH}
    assert "Session invalidated, please log in again" in errors


# -- logout --------------------------------------------------------------------------------


async def test_logout_ends_the_session(api: Api) -> None:
    r = await register(api, "judy@example.com")
    user_id, cookie = claims(r)["user_id"], session_cookie(r).value
    other = session_cookie(await login(api, "judy@example.com")).value
    r = await post(api, "logout", cookie=cookie)
    assert r.status_code == 204
    assert r.content == b""
    assert "content-type" not in r.headers
    removal = session_cookie(r)
    assert removal.value == ""
    assert removal["max-age"] == "0"
    assert removal["path"] == "/api/v1/auth"
    assert removal["httponly"] is True
    [left] = await token_rows(api, user_id)  # only the other session's token remains
    assert left["token_hash"] == token_hash(other)
    r = await post(api, "refresh", cookie=cookie)
    assert r.status_code == 401
    assert r.json()["error"] == "Invalid or expired refresh token, please log in again"
    r = await post(api, "logout", cookie=cookie)
    assert (r.status_code, r.json()) == (
        401, {"error": "Invalid or expired refresh token, please log in again"})
    r = await post(api, "logout")
    assert (r.status_code, r.json()) == (401, {"error": "No refresh token"})


async def test_cookie_secure_and_samesite_when_configured(database_url: str) -> None:
    app = create_app(settings_for(database_url, cookie_secure=True, cookie_samesite="none"),
                     passwords=FAST_PASSWORDS)
    async for api in running_api(app):
        r = await register(api, "ken@example.com")
        header = r.headers["set-cookie"]
        cookie = session_cookie(r)
        assert cookie["secure"] is True
        assert cookie["samesite"] == "none"
        assert "HttpOnly" in header
        assert "Path=/api/v1/auth" in header
        assert "Max-Age" not in header
        r = await post(api, "refresh", cookie=cookie.value)
        assert session_cookie(r)["secure"] is True
        r = await post(api, "logout", cookie=session_cookie(r).value)
        removal = session_cookie(r)
        assert (removal["secure"], removal["samesite"], removal["max-age"]) == (
            True, "none", "0")


# -- rate limits ---------------------------------------------------------------------------


def assert_limited(r: httpx.Response, limit: int, window: int) -> None:
    assert r.status_code == 429
    assert r.json()["error"] == f"rate limit exceeded, try again after: {window // 60 - 1} mins"
    assert r.headers["x-ratelimit-limit"] == str(limit)
    assert r.headers["x-ratelimit-remaining"] == "0"
    assert window - 5 <= int(r.headers["x-ratelimit-reset"]) <= window
    assert window - 5 <= int(r.headers["retry-after"]) <= window


async def test_login_and_register_limits_by_ip(database_url: str) -> None:
    app = create_app(settings_for(database_url, rate_limits=DEFAULT_POLICIES),
                     passwords=FAST_PASSWORDS)
    async for api in running_api(app):
        for i in range(10):  # failed logins count too
            r = await login(api, "nobody@example.com", "wrong-password")
            assert r.status_code == 401
            assert r.headers["x-ratelimit-limit"] == "10"
            assert r.headers["x-ratelimit-remaining"] == str(9 - i)
        assert_limited(await login(api, "nobody@example.com"), 10, 900)
        # The limit is checked before validation: a malformed login is limited too.
        assert_limited(await login(api, "bad", "short"), 10, 900)
        # Behind a trusted proxy (the test client's 127.0.0.1), X-Forwarded-For is the IP.
        far = {"X-Forwarded-For": "203.0.113.7, 127.0.0.1"}
        r = await post(api, "login", headers=far,
                       json={"email": "nobody@example.com", "password": "wrong-password"})
        assert (r.status_code, r.headers["x-ratelimit-remaining"]) == (401, "9")
        for i in range(5):
            r = await register(api, f"r{i}@example.com")
            assert r.status_code == 201
            assert r.headers["x-ratelimit-remaining"] == str(4 - i)
        assert_limited(await register(api, "r9@example.com"), 5, 3600)
        r = await post(api, "register", headers=far,
                       json={"email": "r9@example.com", "password": PASSWORD})
        assert r.status_code == 201


async def test_forwarded_for_ignored_without_trusted_proxy(database_url: str) -> None:
    app = create_app(settings_for(database_url, rate_limits=DEFAULT_POLICIES,
                                   trusted_proxies=()), passwords=FAST_PASSWORDS)
    async for api in running_api(app):
        for i in range(10):
            r = await post(api, "login", headers={"X-Forwarded-For": f"198.51.100.{i}"},
                           json={"email": "nobody@example.com", "password": "whatever1"})
            assert r.status_code == 401
        r = await post(api, "login", headers={"X-Forwarded-For": "198.51.100.99"},
                       json={"email": "nobody@example.com", "password": "whatever1"})
        assert_limited(r, 10, 900)


# -- housekeeping --------------------------------------------------------------------------


async def test_sweep_deletes_expired_tokens_at_start(api: Api) -> None:
    assert SWEEP_INTERVAL == 24 * 3600
    r = await register(api, "leo@example.com")
    user_id, live = claims(r)["user_id"], session_cookie(r).value
    await accounts.add_refresh_token(api.services.db, user_id, "dead", -60)
    await accounts.add_reset_token(api.services.db, user_id, "dead-reset", -60)
    stop = await sweep_refresh_tokens(api.services)
    try:
        [left] = await token_rows(api, user_id)
        assert left["token_hash"] == token_hash(live)
        count = await api.services.db.fetch_val(
            "SELECT COUNT(*) FROM password_reset_tokens", as_type=int)
        assert count == 0
    finally:
        await stop()


async def test_sweep_repeats_on_its_interval(api: Api, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    from excentra.http.routes import auth as auth_routes

    monkeypatch.setattr(auth_routes, "SWEEP_INTERVAL", 0.05)
    user_id = claims(await register(api, "mia@example.com"))["user_id"]
    stop = await sweep_refresh_tokens(api.services)
    try:
        await accounts.add_refresh_token(api.services.db, user_id, "dead", -60)
        for _ in range(100):
            if len(await token_rows(api, user_id)) == 1:
                break
            await asyncio.sleep(0.05)
        assert len(await token_rows(api, user_id)) == 1
    finally:
        await stop()


async def test_concurrent_refreshes_over_real_sockets_share_one_rotation(
        database_url: str) -> None:
    """The grace over real TCP connections (a browser's tabs): six clients, each on its
    own connection, refresh at once with one cookie."""
    app = create_app(settings_for(database_url), passwords=FAST_PASSWORDS)
    with live_server(app) as (base, _services):
        async with httpx.AsyncClient(base_url=base) as c:
            r = await c.post("/api/v1/auth/register", json={
                "email": "sockets@example.com", "password": "password123"})
            assert r.status_code == 201, r.text
            cookie = r.cookies["refresh_token"]
        clients = [httpx.AsyncClient(base_url=base) for _ in range(6)]
        try:
            replies = await asyncio.gather(*[
                c.post("/api/v1/auth/refresh", headers={"Cookie": f"refresh_token={cookie}"})
                for c in clients])
        finally:
            for c in clients:
                await c.aclose()
    assert [r.status_code for r in replies] == [200] * 6, [r.text for r in replies]
    assert len({r.cookies["refresh_token"] for r in replies}) == 1
