"""``/api/v1/admin`` (reference §1.10, API.md): users with balances, suspension (enforced,
toggled without a body, refresh tokens revoked), roles, stats after real trades."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from excentra.db.admin import volume_since
from tests.http.conftest import Api

pytestmark = pytest.mark.asyncio

D = Decimal
SYSTEM = "00000000-0000-0000-0000-000000000001"
UNKNOWN = "5f0c7a52-3f41-4b1e-9a51-0d7c2bd1e0aa"
NO_PERMISSION = "You do not have permission to perform this action."
INVALID_REFRESH = "Invalid or expired refresh token, please log in again"

ENDPOINTS = [
    ("GET", "/api/v1/admin/users", None),
    ("PATCH", f"/api/v1/admin/users/{SYSTEM}/suspend", {"suspended": True}),
    ("PATCH", f"/api/v1/admin/users/{SYSTEM}/role", {"role": "admin"}),
    ("GET", "/api/v1/admin/stats", None),
]


async def admin(api: Api) -> dict[str, str]:
    _, headers = await api.user(role="admin")
    return headers


async def order(api: Api, headers: dict[str, str], side: str, price: str, quantity: str,
                symbol: str = "BTC/USDT") -> dict[str, Any]:
    r = await api.client.post("/api/v1/orders", headers=headers, json={
        "symbol": symbol, "side": side, "order_type": "limit", "price": price,
        "quantity": quantity})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_every_admin_route_wants_an_admin_token(api: Api) -> None:
    _, user = await api.user()
    for method, path, body in ENDPOINTS:
        r = await api.client.request(method, path, json=body)
        assert (r.status_code, r.json()) == (401, {"error": "No authorization header"}), path
        r = await api.client.request(method, path, json=body, headers=user)
        assert (r.status_code, r.json()) == (403, {"error": NO_PERMISSION}), path
    r = await api.client.get("/api/v1/admin/stats",
                             headers={"Authorization": "Bearer not-a-jwt"})
    assert (r.status_code, r.json()) == (401, {"error": "User not logged in"})
    # nothing changed on the way
    r = await api.client.get("/api/v1/users/me", headers=user)
    assert r.json()["role"] == "user"
    assert not api.services.suspended.contains(SYSTEM)


async def test_users_page_lists_everyone_with_balances(api: Api) -> None:
    admin_id, headers = await api.user(role="admin")
    await asyncio.sleep(0.002)  # created_at has millisecond resolution: "newest" must be one
    funded_id, _ = await api.funded(USDT="1000", BTC="0.05")
    r = await api.client.get("/api/v1/admin/users", headers=headers,
                             params={"order": "asc", "limit": 1})
    assert r.status_code == 200, r.text
    page = r.json()
    # the 2 made; the system accounts (market maker, fees) are not users (issue 13)
    assert (page["page"], page["limit"], page["total"]) == (1, 1, 2)
    (first,) = page["data"]
    assert (first["id"], first["role"], first["is_suspended"], first["username"],
            first["balances"]) == (admin_id, "admin", False, None, [])
    assert set(first) == {"id", "email", "role", "username", "is_suspended", "created_at",
                          "updated_at", "balances"}
    r = await api.client.get("/api/v1/admin/users", headers=headers)  # default: newest first
    newest = r.json()["data"][0]
    assert newest["id"] == funded_id
    assert [(b["asset"], D(b["available"]), D(b["held"])) for b in newest["balances"]] == [
        ("BTC", D("0.05"), 0), ("USDT", D(1000), 0)]
    assert r.json()["data"][1]["balances"] == []  # the admin: no balance rows
    r = await api.client.get("/api/v1/admin/users", headers=headers,
                             params={"order": "asc", "limit": 2, "page": 2})
    assert (r.json()["data"], r.json()["total"]) == ([], 2)
    for bad in ({"limit": 0}, {"page": 0}, {"order": "up"}):
        r = await api.client.get("/api/v1/admin/users", headers=headers, params=bad)
        assert r.status_code == 400, bad


async def test_suspension_is_enforced_toggled_and_revokes_sessions(api: Api) -> None:
    headers = await admin(api)
    user_id, _ = await api.user(email="trader@example.com", password="password123")
    r = await api.client.post("/api/v1/auth/login", json={"email": "trader@example.com",
                                                          "password": "password123"})
    assert r.status_code == 200, r.text
    user = {"Authorization": f"Bearer {r.json()['access_token']}"}
    r = await api.client.post("/api/v1/balances/deposit", headers=user,
                              json={"asset": "USDT", "amount": "100"})
    assert r.status_code == 200, r.text
    resting = await order(api, user, "buy", "10", "1")
    r = await api.client.post("/api/v1/auth/refresh")  # the session works (and rotates)
    assert r.status_code == 200, r.text
    assert await _refresh_tokens(api, user_id) == 2  # the used one and its successor

    r = await api.client.patch(f"/api/v1/admin/users/{user_id}/suspend", headers=headers)
    assert r.status_code == 200, r.text  # no body at all: toggles
    assert (r.json()["id"], r.json()["is_suspended"]) == (user_id, True)
    assert api.services.suspended.contains(user_id)
    assert await _live_refresh_tokens(api, user_id) == 0  # expired, kept while suspended

    r = await api.client.post("/api/v1/orders", headers=user, json={
        "symbol": "BTC/USDT", "side": "buy", "order_type": "limit", "price": "10",
        "quantity": "1"})
    assert (r.status_code, r.json()) == (403, {"error": "Account suspended"})
    r = await api.client.post("/api/v1/balances/deposit", headers=user,
                              json={"asset": "USDT", "amount": "1"})
    assert (r.status_code, r.json()) == (403, {"error": "Account suspended"})
    r = await api.client.post("/api/v1/auth/refresh")  # the session's cookie: revoked, and
    assert (r.status_code, r.json()) == (403, {"error": "Account suspended"})  # says why
    r = await api.client.post("/api/v1/auth/login", json={"email": "trader@example.com",
                                                          "password": "password123"})
    assert (r.status_code, r.json()) == (403, {"error": "Account suspended"})
    r = await api.client.get("/api/v1/balances", headers=user)  # reads still work
    assert r.status_code == 200
    assert [(b["asset"], D(b["available"]), D(b["held"])) for b in r.json()] == [
        ("USDT", D(90), D(10))]
    r = await api.client.get(f"/api/v1/orders/{resting['order_id']}", headers=user)
    assert (r.status_code, r.json()["status"]) == (200, "open")  # resting orders stay

    r = await api.client.patch(f"/api/v1/admin/users/{user_id}/suspend", headers=headers,
                               content=b"")  # an empty body toggles too
    assert (r.status_code, r.json()["is_suspended"]) == (200, False)
    assert not api.services.suspended.contains(user_id)
    r = await api.client.post("/api/v1/auth/refresh")  # revoked for good
    assert (r.status_code, r.json()) == (401, {"error": INVALID_REFRESH})
    await order(api, user, "buy", "10", "1")  # trading again (its access token still lives)

    for flag in (True, True, False, False):  # an explicit flag sets, never toggles
        r = await api.client.patch(f"/api/v1/admin/users/{user_id}/suspend",
                                   headers=headers, json={"suspended": flag})
        assert (r.status_code, r.json()["is_suspended"]) == (200, flag)
        assert api.services.suspended.contains(user_id) is flag
    r = await api.client.patch(f"/api/v1/admin/users/{user_id}/suspend", headers=headers,
                               json={})
    assert r.json()["is_suspended"] is True


async def _live_refresh_tokens(api: Api, user_id: str) -> int:
    count = await api.services.db.fetch_val(
        "SELECT COUNT(*) FROM refresh_tokens WHERE user_id = :u AND expires_at > :now",
        {"u": uuid.UUID(user_id), "now": datetime.now(UTC)}, as_type=int)
    return int(count)


async def _refresh_tokens(api: Api, user_id: str) -> int:
    count = await api.services.db.fetch_val(
        "SELECT COUNT(*) FROM refresh_tokens WHERE user_id = :u",
        {"u": uuid.UUID(user_id)}, as_type=int)
    return int(count)


async def test_suspend_errors(api: Api) -> None:
    headers = await admin(api)
    r = await api.client.patch(f"/api/v1/admin/users/{UNKNOWN}/suspend", headers=headers)
    assert (r.status_code, r.json()) == (404, {"error": f"User `{UNKNOWN}` not found"})
    r = await api.client.patch(f"/api/v1/admin/users/{UNKNOWN}/suspend", headers=headers,
                               json={"suspended": True})
    assert (r.status_code, r.json()) == (404, {"error": f"User `{UNKNOWN}` not found"})
    r = await api.client.patch("/api/v1/admin/users/42/suspend", headers=headers)
    assert r.status_code == 400
    r = await api.client.patch(f"/api/v1/admin/users/{SYSTEM}/suspend", headers=headers,
                               json={"suspended": "yes"})
    assert r.status_code == 422
    assert not api.services.suspended.contains(SYSTEM)


async def test_role_change(api: Api) -> None:
    headers = await admin(api)
    user_id, user = await api.user()
    r = await api.client.patch(f"/api/v1/admin/users/{user_id}/role", headers=headers,
                               json={"role": "admin"})
    assert r.status_code == 200, r.text
    assert (r.json()["id"], r.json()["role"]) == (user_id, "admin")
    # the claim decides (reference §1.10): the old token stays a user's until renewed
    r = await api.client.get("/api/v1/admin/stats", headers=user)
    assert r.status_code == 403
    fresh = {"Authorization": f"Bearer {api.services.tokens.access(user_id, 'admin')}"}
    r = await api.client.get("/api/v1/admin/stats", headers=fresh)
    assert r.status_code == 200
    r = await api.client.get("/api/v1/users/me", headers=user)
    assert r.json()["role"] == "admin"
    r = await api.client.patch(f"/api/v1/admin/users/{user_id}/role", headers=headers,
                               json={"role": "user"})
    assert (r.status_code, r.json()["role"]) == (200, "user")
    r = await api.client.patch(f"/api/v1/admin/users/{UNKNOWN}/role", headers=headers,
                               json={"role": "admin"})
    assert (r.status_code, r.json()) == (404, {"error": f"User `{UNKNOWN}` not found"})
    # "system" is for the exchange's own accounts only (issue 13)
    for bad in ({"role": "root"}, {}, {"role": None}, {"role": "system"}):
        r = await api.client.patch(f"/api/v1/admin/users/{user_id}/role", headers=headers,
                                   json=bad)
        assert r.status_code == 422, bad
    r = await api.client.patch(f"/api/v1/admin/users/{user_id}/role", headers=headers)
    assert r.status_code == 415  # the body is required here


async def test_stats_count_real_trades(api: Api) -> None:
    headers = await admin(api)
    r = await api.client.get("/api/v1/admin/stats", headers=headers)
    assert r.status_code == 200, r.text
    before = r.json()
    assert (before["total_users"], before["total_trades"], before["orders_processed"],
            before["active_ws_connections"], before["volume_24h"]) == (1, 0, 0, 0, [])
    _, seller = await api.funded(BTC="0.05", ETH="0.5")
    _, buyer = await api.funded(USDT="1000")
    await order(api, seller, "sell", "10000", "0.05")
    await order(api, buyer, "buy", "10000", "0.02")   # trade 1
    await order(api, buyer, "buy", "10001", "0.01")   # trade 2, at the resting 10000
    await order(api, seller, "sell", "1000", "0.3", "ETH/USDT")
    await order(api, buyer, "buy", "1000", "0.25", "ETH/USDT")  # trade 3
    r = await api.client.post("/api/v1/orders", headers=buyer, json={
        "symbol": "BTC/USDT", "side": "buy", "order_type": "limit", "price": "10000",
        "quantity": "1"})
    assert r.status_code == 422  # refused: not counted as processed
    r = await api.client.get("/api/v1/admin/stats", headers=headers)
    stats = r.json()
    assert (stats["total_users"], stats["total_trades"], stats["orders_processed"],
            stats["active_ws_connections"]) == (3, 3, 5, 0)
    assert [(v["symbol"], D(v["volume"])) for v in stats["volume_24h"]] == [
        ("BTC/USDT", D("0.03")), ("ETH/USDT", D("0.25"))]
    assert isinstance(stats["uptime_seconds"], int)
    assert stats["uptime_seconds"] >= 0
    # the 24 h window is a real filter: nothing traded after now
    later = await volume_since(api.services.db, datetime.now(UTC) + timedelta(seconds=5))
    assert later == []
