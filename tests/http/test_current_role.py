"""Authorization follows the current role, not the token's claim (issue 15, item 3): a
demoted admin's old token is a user's token at once, over HTTP and WebSocket; a token
for a user that no longer exists is refused; ``exp`` must be a JSON number."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
import pytest
from jwt import api_jws as jws

from excentra.db.accounts import set_role_by_email
from excentra.http.app import create_app
from excentra.http.auth import Principal, Tokens
from excentra.http.services import UserRoles
from tests.http.conftest import FAST_PASSWORDS, Api, running_api, settings_for
from tests.ws.support import serving

pytestmark = pytest.mark.asyncio

NO_PERMISSION = (403, "You do not have permission to perform this action.")
SESSION_INVALID = (401, "Session invalid, please log in again")
NOT_LOGGED_IN = (401, "User not logged in")
ADMIN_ONLY = [
    ("GET", "/api/v1/admin/users", None),
    ("GET", "/api/v1/admin/stats", None),
    ("POST", "/api/v1/assets", {"symbol": "DOGE", "name": "Dogecoin", "decimals": 8}),
]


def error(r: Any) -> tuple[int, str]:
    return r.status_code, r.json()["error"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def signed(api: Api, **claims: Any) -> str:
    """A token signed with the server's secret, with exactly these claims (not recorded
    in the role map, as ``services.tokens.access`` would)."""
    return jwt.encode(claims, api.services.settings.jwt_secret, algorithm="HS256")


async def test_a_demoted_admins_old_token_loses_admin_rights_at_once(api: Api) -> None:
    demoted_id, demoted = await api.user(role="admin")
    _, other = await api.user(role="admin")
    for method, path, body in ADMIN_ONLY[:2]:
        r = await api.client.request(method, path, headers=demoted, json=body)
        assert r.status_code == 200, (path, r.text)
    r = await api.client.patch(f"/api/v1/admin/users/{demoted_id}/role", headers=other,
                               json={"role": "user"})
    assert (r.status_code, r.json()["role"]) == (200, "user")
    for method, path, body in ADMIN_ONLY:
        r = await api.client.request(method, path, headers=demoted, json=body)
        assert error(r) == NO_PERMISSION, path
    r = await api.client.patch(f"/api/v1/admin/users/{demoted_id}/role", headers=demoted,
                               json={"role": "admin"})
    assert error(r) == NO_PERMISSION  # no way back with the old token
    assets = (await api.client.get("/api/v1/assets")).json()
    assert "DOGE" not in {a["symbol"] for a in assets}
    # still a user
    r = await api.client.get("/api/v1/balances", headers=demoted)
    assert r.status_code == 200, r.text
    r = await api.client.get("/api/v1/users/me", headers=demoted)
    assert (r.status_code, r.json()["role"]) == (200, "user")
    # the other admin is unaffected
    r = await api.client.post("/api/v1/assets", headers=other, json=ADMIN_ONLY[2][2])
    assert r.status_code == 201, r.text


async def test_a_promotion_waits_for_the_next_token(api: Api) -> None:
    _, admin = await api.user(role="admin")
    user_id, user = await api.user()
    r = await api.client.patch(f"/api/v1/admin/users/{user_id}/role", headers=admin,
                               json={"role": "admin"})
    assert r.status_code == 200
    assert error(await api.client.get("/api/v1/admin/stats", headers=user)) == NO_PERMISSION
    fresh = bearer(api.services.tokens.access(user_id, "admin"))  # what login would issue
    assert (await api.client.get("/api/v1/admin/stats", headers=fresh)).status_code == 200


async def test_a_demotion_by_another_process_counts_on_admin_routes(api: Api) -> None:
    # `excentra users promote --role user` writes the row from another process: the
    # /admin routes read the role from the database, and correct the in-memory map
    admin_id, admin = await api.user(role="admin")
    _, boss = await api.user(email="boss2@example.com", role="admin")
    assert await set_role_by_email(api.services.db, "boss2@example.com", "user")
    assert error(await api.client.get("/api/v1/admin/stats", headers=boss)) == NO_PERMISSION
    r = await api.client.post("/api/v1/assets", headers=boss, json=ADMIN_ONLY[2][2])
    assert error(r) == NO_PERMISSION  # the map learnt it
    assert api.services.roles.get(admin_id) == "admin"
    assert (await api.client.get("/api/v1/admin/stats", headers=admin)).status_code == 200


async def test_a_token_for_a_user_that_does_not_exist_is_refused(api: Api) -> None:
    ghost = bearer(signed(api, user_id=str(uuid.uuid4()), role="admin",
                          exp=int(time.time()) + 900))
    for method, path, body in [*ADMIN_ONLY, ("GET", "/api/v1/balances", None),
                               ("GET", "/api/v1/orders", None),
                               ("GET", "/api/v1/users/me", None)]:
        r = await api.client.request(method, path, headers=ghost, json=body)
        assert error(r) == SESSION_INVALID, path


async def _delete_user(api: Api, user_id: str) -> None:
    db = api.services.db
    await db.execute("DELETE FROM refresh_tokens WHERE user_id = :id", {"id": uuid.UUID(user_id)})
    await db.execute("DELETE FROM users WHERE id = :id", {"id": uuid.UUID(user_id)})
    assert await db.fetch_val("SELECT COUNT(*) FROM users WHERE id = :id",
                              {"id": uuid.UUID(user_id)}) == 0


async def test_a_user_deleted_in_the_database_is_refused(api: Api, database_url: str) -> None:
    # A row deleted with SQL is seen by the routes that read it (/users/me, /admin),
    # which drop it from the map, and so by every route after that.
    user_id, user = await api.user()
    admin_id, admin = await api.user(role="admin")
    assert (await api.client.get("/api/v1/balances", headers=user)).status_code == 200
    await _delete_user(api, user_id)
    await _delete_user(api, admin_id)
    assert error(await api.client.get("/api/v1/users/me", headers=user)) == SESSION_INVALID
    assert error(await api.client.get("/api/v1/balances", headers=user)) == SESSION_INVALID
    assert error(await api.client.get("/api/v1/admin/stats", headers=admin)) == SESSION_INVALID
    r = await api.client.post("/api/v1/assets", headers=admin, json=ADMIN_ONLY[2][2])
    assert error(r) == SESSION_INVALID
    # and by a server started later (the map is loaded from the table)
    doomed_id, doomed = await api.user()
    await _delete_user(api, doomed_id)
    app = create_app(settings_for(database_url), passwords=FAST_PASSWORDS)
    async for again in running_api(app):
        r = await again.client.get("/api/v1/balances", headers=doomed)
        assert error(r) == SESSION_INVALID


@pytest.mark.parametrize("exp", ["9999999999", "4000000000.5", True, [4_000_000_000],
                                 {"n": 1}, None])
async def test_exp_must_be_a_number(api: Api, exp: object) -> None:
    user_id, _ = await api.user()
    token = signed(api, user_id=user_id, role="user", exp=exp)
    r = await api.client.get("/api/v1/balances", headers=bearer(token))
    assert error(r) == NOT_LOGGED_IN


@pytest.mark.parametrize("exp", [4_000_000_000, 4_000_000_000.5, 1.5e12])
async def test_a_numeric_exp_may_be_fractional(api: Api, exp: float) -> None:
    # RFC 7519: a NumericDate is a JSON number, "non-integer values can be represented"
    user_id, _ = await api.user()
    token = signed(api, user_id=user_id, role="user", exp=exp)
    r = await api.client.get("/api/v1/balances", headers=bearer(token))
    assert r.status_code == 200, r.text


async def test_a_not_finite_exp_is_refused() -> None:
    secret = "s" * 32
    tokens = Tokens(secret)
    for exp in ("Infinity", "NaN", "-Infinity"):
        # pyjwt's encoder would not write these (not JSON); its decoder reads them
        payload = f'{{"user_id": "{uuid.uuid4()}", "role": "user", "exp": {exp}}}'
        assert tokens.decode(jws.encode(payload.encode(), secret, algorithm="HS256")) is None


async def test_the_role_acted_with_is_the_lesser() -> None:
    roles = UserRoles()
    admin, user, system = (str(uuid.UUID(int=i)) for i in (1, 2, 3))
    roles.set(admin, "admin")
    roles.set(user, "user")
    roles.set(system, "system")
    assert roles.current(Principal(admin, "admin")) == Principal(admin, "admin")
    assert roles.current(Principal(admin, "user")) == Principal(admin, "user")
    assert roles.current(Principal(user, "admin")) == Principal(user, "user")
    assert roles.current(Principal(system, "admin")) == Principal(system, "user")
    assert roles.current(Principal(str(uuid.UUID(int=9)), "user")) is None
    roles.set(admin, None)
    assert roles.current(Principal(admin, "admin")) is None


async def test_websocket_auth_follows_the_current_role(database_url: str) -> None:
    async with serving(database_url) as srv:
        admin, other, victim = (await srv.user(role="admin"), await srv.user(role="admin"),
                                await srv.user())
        r = await srv.http.patch(f"/api/v1/admin/users/{admin.id}/role",
                                 headers=other.headers, json={"role": "user"})
        assert r.status_code == 200, r.text
        ghost_token = Tokens(srv.services.settings.jwt_secret).access(uuid.uuid4(), "user")
        async with await srv.connect() as ws:
            # WS grants admins nothing: a demoted admin is a user with its own channel only
            await ws.auth(admin)
            assert await ws.ask(action="subscribe", channel=f"orders:{victim.id}") == {
                "type": "error", "message": "Cannot access another user's channel"}
            await ws.subscribe(f"orders:{admin.id}")
        async with await srv.connect() as ws:
            assert await ws.ask(action="auth", token=ghost_token) == {
                "type": "error", "message": "Invalid or expired token"}
            assert await ws.ask(action="subscribe", channel=f"orders:{victim.id}") == {
                "type": "error", "message": "Authentication required for private channels"}
