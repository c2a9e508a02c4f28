"""The authorization matrix: every route of the app × every kind of caller → the class of
status it must get, on both databases.

The callers: nobody, a user (the owner of the resources), another user acting on the
owner's resources, an admin, an admin demoted after its token was issued, a suspended
user, and a user whose row was deleted with SQL while its token is still valid. Where a
route acts on a resource (an order), each caller acts on its own, except ``other`` (and
those refused before any lookup), who acts on the owner's. A list must not show another
user's resources (checked for ``other``).

The routes come from the app itself: a route without a row in ``MATRIX`` fails
``test_every_route_has_a_row``, so a new endpoint cannot be forgotten.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute

from excentra.http.app import create_app
from tests.http.conftest import Api, settings_for

IDENTITIES = ("anonymous", "user", "other", "admin", "demoted", "suspended", "deleted")
PASSWORD = "password123"

PUBLIC = dict.fromkeys(IDENTITIES, "2xx")
NO_TRADES = dict.fromkeys(IDENTITIES, "404")
"""A public read about a pair without trades (the contract's 404): the same for all."""
READ = {"anonymous": "401", "user": "2xx", "other": "2xx", "admin": "2xx",
        "demoted": "2xx", "suspended": "2xx", "deleted": "401"}
"""A user route that only reads: a suspended user still reads (API.md)."""
WRITE = {**READ, "suspended": "403"}
"""A user route that changes state: refused to a suspended user."""
OWN_READ = {**READ, "other": "404"}
OWN_WRITE = {**WRITE, "other": "404"}
"""On one resource: another user's is not found (no existence leak, API.md)."""
ADMIN = {"anonymous": "401", "user": "403", "other": "403", "admin": "2xx",
         "demoted": "403", "suspended": "403", "deleted": "401"}
CREDENTIALS = {"anonymous": "401", "user": "2xx", "other": "2xx", "admin": "2xx",
               "demoted": "2xx", "suspended": "403", "deleted": "401"}
"""Login and refresh with the caller's own password or refresh cookie."""
LOGOUT = {**CREDENTIALS, "suspended": "2xx"}
"""Ending a session is allowed to a suspended user (its refresh tokens are already
revoked: logging out of one is a no-op, 204)."""
PASSED = "authorized"
"""Past authorization (not 401/403, not 5xx): the answer depends on data this matrix does
not set up (no chain is configured, so on-chain custody answers 400 to everyone let in)."""


def on_chain(expected: dict[str, str]) -> dict[str, str]:
    return {who: PASSED if status == "2xx" else status for who, status in expected.items()}


@dataclass
class World:
    """The callers and what they own, made before the demotion, suspension, deletion."""

    api: Api
    boss: dict[str, str]
    """An admin that is none of the callers: it demotes, suspends, and sets up rows."""
    ids: dict[str, str] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)
    refresh: dict[str, dict[str, str]] = field(default_factory=dict)
    """Each caller's refresh cookies: one session to refresh, one to log out."""
    orders: dict[str, list[str]] = field(default_factory=dict)
    """Two open orders each: the first read, the second cancelled by its row."""
    owner_secrets: list[str] = field(default_factory=list)
    """Ids of the owner's resources, which no other caller's list may contain."""

    tokens: dict[str, str] = field(default_factory=dict)
    """Access tokens issued before the state changes (the demoted one says admin)."""

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"} if who in self.tokens else {}

    def owner_of(self, who: str) -> str:
        """Whose resource the caller acts on."""
        return who if who in self.orders and who != "other" else "user"


Request = tuple[str, str, Any, dict[str, str]]
"""method, path, JSON body (or None), extra headers."""
Build = Callable[[World, str], Awaitable[Request]]


@dataclass(frozen=True)
class Row:
    build: Build
    expected: dict[str, str]
    lists_private: bool = False
    """A list of the caller's own things: checked for leaks of the owner's."""


def fixed(method: str, path: str, body: Any = None) -> Build:
    async def build(_world: World, _who: str) -> Request:
        return method, path, body, {}
    return build


def _fresh() -> str:
    return uuid.uuid4().hex[:8]


async def _order(world: World, who: str, index: int) -> Request:
    return "", f"/api/v1/orders/{world.orders[world.owner_of(who)][index]}", None, {}


async def get_order(world: World, who: str) -> Request:
    _, path, _, _ = await _order(world, who, 0)
    return "GET", path, None, {}


async def cancel_order(world: World, who: str) -> Request:
    _, path, _, _ = await _order(world, who, 1)
    return "DELETE", path, None, {}


async def register(_world: World, _who: str) -> Request:
    return "POST", "/api/v1/auth/register", {"email": f"new-{_fresh()}@example.com",
                                             "password": PASSWORD}, {}


async def login(world: World, who: str) -> Request:
    email = world.emails.get(who, "nobody@example.com")
    return "POST", "/api/v1/auth/login", {"email": email, "password": PASSWORD}, {}


def session(action: str) -> Build:
    """Refresh or logout with the caller's own refresh cookie (one session each)."""
    async def build(world: World, who: str) -> Request:
        raw = world.refresh.get(who, {}).get(action)
        cookie = {"Cookie": f"refresh_token={raw}"} if raw else {}
        return "POST", f"/api/v1/auth/{action}", None, cookie
    return build


async def rename(_world: World, _who: str) -> Request:
    return "PATCH", "/api/v1/users/me", {"username": f"name_{_fresh()}"}, {}


async def add_asset(_world: World, _who: str) -> Request:
    symbol = "Z" + _fresh()[:6].upper()
    return "POST", "/api/v1/assets", {"symbol": symbol, "name": symbol, "decimals": 6}, {}


async def add_pair(world: World, _who: str) -> Request:
    _, _, asset, _ = await add_asset(world, _who)
    r = await world.api.client.post("/api/v1/assets", headers=world.boss, json=asset)
    assert r.status_code == 201, r.text
    return "POST", "/api/v1/pairs", {"base_asset": asset["symbol"], "quote_asset": "USDT"}, {}


async def _target(world: World) -> str:
    """A user made for one admin action (never one of the callers)."""
    user_id, _ = await world.api.user(email=f"target-{_fresh()}@example.com")
    return user_id


async def suspend(world: World, _who: str) -> Request:
    return ("PATCH", f"/api/v1/admin/users/{await _target(world)}/suspend",
            {"suspended": True}, {})


async def set_role(world: World, _who: str) -> Request:
    return ("PATCH", f"/api/v1/admin/users/{await _target(world)}/role",
            {"role": "user"}, {})


def review(action: str) -> Build:
    async def build(world: World, _who: str) -> Request:
        target = world.owner_secrets[-1]  # the owner's (simulated) withdrawal
        body = {"reason": "no"} if action == "reject" else None
        return "POST", f"/api/v1/admin/withdrawals/{target}/{action}", body, {}
    return build


V1 = "/api/v1"
MATRIX: dict[tuple[str, str], Row] = {
    ("GET", "/health"): Row(fixed("GET", "/health"), PUBLIC),
    ("GET", "/metrics"): Row(fixed("GET", "/metrics"), PUBLIC),
    ("GET", "/api-docs/openapi.json"): Row(fixed("GET", "/api-docs/openapi.json"), PUBLIC),
    ("GET", "/docs"): Row(fixed("GET", "/docs"), PUBLIC),
    ("GET", "/docs/assets"): Row(fixed("GET", "/docs/assets/swagger-ui.css"), PUBLIC),
    ("POST", f"{V1}/auth/register"): Row(register, PUBLIC),
    ("POST", f"{V1}/auth/login"): Row(login, CREDENTIALS),
    ("POST", f"{V1}/auth/refresh"): Row(session("refresh"), CREDENTIALS),
    ("POST", f"{V1}/auth/logout"): Row(session("logout"), LOGOUT),
    ("POST", f"{V1}/auth/forgot-password"): Row(fixed(
        "POST", f"{V1}/auth/forgot-password", {"email": "someone@example.com"}), PUBLIC),
    ("POST", f"{V1}/auth/reset-password"): Row(fixed(
        "POST", f"{V1}/auth/reset-password", {"token": "f" * 128, "new_password": PASSWORD}),
        dict.fromkeys(IDENTITIES, "400")),  # nobody holds a reset token: the same answer
    ("GET", f"{V1}/users/me"): Row(fixed("GET", f"{V1}/users/me"), READ),
    ("PATCH", f"{V1}/users/me"): Row(rename, WRITE),
    ("GET", f"{V1}/balances"): Row(fixed("GET", f"{V1}/balances"), READ),
    ("POST", f"{V1}/balances/deposit"): Row(fixed(
        "POST", f"{V1}/balances/deposit", {"asset": "USDT", "amount": "1"}), WRITE),
    ("POST", f"{V1}/balances/withdraw"): Row(fixed(
        "POST", f"{V1}/balances/withdraw", {"asset": "USDT", "amount": "1"}), WRITE),
    ("GET", f"{V1}/balances/{{asset}}"): Row(fixed("GET", f"{V1}/balances/USDT"), READ),
    ("POST", f"{V1}/orders"): Row(fixed("POST", f"{V1}/orders", {
        "symbol": "BTC/USDT", "side": "buy", "order_type": "limit", "price": "1",
        "quantity": "0.001"}), WRITE),
    ("GET", f"{V1}/orders"): Row(fixed("GET", f"{V1}/orders"), READ, lists_private=True),
    ("GET", f"{V1}/orders/{{order_id}}"): Row(get_order, OWN_READ),
    ("DELETE", f"{V1}/orders/{{order_id}}"): Row(cancel_order, OWN_WRITE),
    ("GET", f"{V1}/trades/me"): Row(fixed("GET", f"{V1}/trades/me"), READ,
                                    lists_private=True),
    ("GET", f"{V1}/trades/{{symbol}}"): Row(fixed("GET", f"{V1}/trades/BTC-USDT"), PUBLIC),
    ("GET", f"{V1}/orderbook/{{symbol}}"): Row(fixed("GET", f"{V1}/orderbook/BTC-USDT"),
                                               PUBLIC),
    ("GET", f"{V1}/ticker"): Row(fixed("GET", f"{V1}/ticker"), PUBLIC),
    ("GET", f"{V1}/ticker/{{symbol}}"): Row(fixed("GET", f"{V1}/ticker/BTC-USDT"),
                                            NO_TRADES),
    ("GET", f"{V1}/candles/{{symbol}}"): Row(fixed("GET", f"{V1}/candles/BTC-USDT"), PUBLIC),
    ("GET", f"{V1}/pairs/active"): Row(fixed("GET", f"{V1}/pairs/active"), PUBLIC),
    ("GET", f"{V1}/pairs"): Row(fixed("GET", f"{V1}/pairs"), ADMIN),
    ("POST", f"{V1}/pairs"): Row(add_pair, ADMIN),
    ("GET", f"{V1}/pairs/{{symbol}}"): Row(fixed("GET", f"{V1}/pairs/BTC-USDT"), PUBLIC),
    ("PATCH", f"{V1}/pairs/{{symbol}}"): Row(fixed("PATCH", f"{V1}/pairs/SOL-USDT",
                                                   {"is_active": True}), ADMIN),
    ("GET", f"{V1}/assets"): Row(fixed("GET", f"{V1}/assets"), PUBLIC),
    ("POST", f"{V1}/assets"): Row(add_asset, ADMIN),
    ("GET", f"{V1}/admin/users"): Row(fixed("GET", f"{V1}/admin/users"), ADMIN),
    ("PATCH", f"{V1}/admin/users/{{user_id}}/suspend"): Row(suspend, ADMIN),
    ("PATCH", f"{V1}/admin/users/{{user_id}}/role"): Row(set_role, ADMIN),
    ("GET", f"{V1}/admin/stats"): Row(fixed("GET", f"{V1}/admin/stats"), ADMIN),
    ("GET", f"{V1}/deposits/address"): Row(fixed("GET", f"{V1}/deposits/address?asset=ETH"),
                                           on_chain(READ)),
    ("GET", f"{V1}/deposits"): Row(fixed("GET", f"{V1}/deposits"), READ, lists_private=True),
    ("POST", f"{V1}/withdrawals"): Row(fixed("POST", f"{V1}/withdrawals", {
        "asset": "ETH", "amount": "0.1",
        "address": "0x" + "12" * 20}), on_chain(WRITE)),
    ("GET", f"{V1}/withdrawals"): Row(fixed("GET", f"{V1}/withdrawals"), READ,
                                      lists_private=True),
    ("GET", f"{V1}/admin/deposits"): Row(fixed("GET", f"{V1}/admin/deposits"), ADMIN),
    ("GET", f"{V1}/admin/withdrawals"): Row(fixed("GET", f"{V1}/admin/withdrawals"), ADMIN),
    ("POST", f"{V1}/admin/withdrawals/{{withdrawal_id}}/approve"): Row(review("approve"),
                                                                      on_chain(ADMIN)),
    ("POST", f"{V1}/admin/withdrawals/{{withdrawal_id}}/reject"): Row(review("reject"),
                                                                     on_chain(ADMIN)),
}
WEBSOCKET = {"/ws"}
"""WebSocket routes: their authorization (anonymous, garbage, demoted and deleted tokens) is
tried by ``test_ws_fuzz`` and ``tests/http/test_current_role`` over a real socket."""


def route_keys(routes: list[BaseRoute]) -> set[tuple[str, str]]:
    keys: set[tuple[str, str]] = set()
    for route in routes:
        if isinstance(route, Route):
            path = route.path.replace(":path}", "}")
            keys |= {(m, path) for m in (route.methods or set()) - {"HEAD"}}
        elif isinstance(route, Mount):
            keys.add(("GET", route.path))
        elif isinstance(route, WebSocketRoute):
            keys.add(("WS", route.path))
        else:
            keys.add(("?", repr(route)))
    return keys


def test_every_route_has_a_row(tmp_path: Path) -> None:
    app = create_app(settings_for(f"sqlite:///{tmp_path / 'unused.db'}"))  # not started
    keys = route_keys(app.routes)
    rows = set(MATRIX) | {("WS", p) for p in WEBSOCKET}
    assert keys - rows == set(), "routes without a row in the authorization matrix"
    assert rows - keys == set(), "rows for routes that do not exist"


def status_class(status: int) -> str:
    if 200 <= status < 300:
        return "2xx"
    if status in (401, 403) or status >= 500:
        return str(status)
    return PASSED if status != 404 else "404"


def matches(expected: str, status: int) -> bool:
    got = status_class(status)
    if expected == PASSED:
        return got in (PASSED, "404", "2xx")
    if expected == "400":
        return status == 400
    return got == expected


async def _login(world: World, who: str) -> None:
    for action in ("refresh", "logout"):
        r = await world.api.client.post("/api/v1/auth/login", json={
            "email": world.emails[who], "password": PASSWORD})
        assert r.status_code == 200, r.text
        world.refresh.setdefault(who, {})[action] = r.cookies["refresh_token"]
        world.api.client.cookies.clear()


async def _place(world: World, who: str) -> str:
    r = await world.api.client.post("/api/v1/orders", headers=world.headers(who), json={
        "symbol": "BTC/USDT", "side": "buy", "order_type": "limit", "price": "1",
        "quantity": "0.001"})
    assert r.status_code == 200, r.text
    order_id: str = r.json()["order_id"]
    return order_id


async def make_world(api: Api) -> World:
    _, boss = await api.user(email="boss@example.com", role="admin")
    world = World(api, boss)
    for who in IDENTITIES[1:]:
        email = f"{who}@example.com"
        role = "admin" if who in ("admin", "demoted") else "user"
        user_id, _ = await api.user(email, role, PASSWORD)
        world.ids[who], world.emails[who] = user_id, email
        world.tokens[who] = api.services.tokens.access(user_id, role)
        await _login(world, who)
        if who != "deleted":
            for asset, amount in (("USDT", "100"), ("BTC", "1")):
                outcome = await api.services.exchange.deposit(user_id, asset, Decimal(amount))
                assert isinstance(outcome, dict), outcome
        if who not in ("other", "deleted"):
            world.orders[who] = [await _place(world, who), await _place(world, who)]
    world.owner_secrets.extend(world.orders["user"])
    r = await api.client.post("/api/v1/balances/withdraw", headers=world.headers("user"),
                              json={"asset": "USDT", "amount": "1"})
    assert r.status_code == 200, r.text
    r = await api.client.get("/api/v1/withdrawals", headers=world.headers("user"))
    assert r.status_code == 200, r.text
    world.owner_secrets.extend(w["id"] for w in r.json()["data"])
    assert len(world.owner_secrets) == 3, world.owner_secrets  # two orders, a withdrawal
    await _change_states(world)
    return world


async def _change_states(world: World) -> None:
    api = world.api
    r = await api.client.patch(f"/api/v1/admin/users/{world.ids['demoted']}/role",
                               headers=world.boss, json={"role": "user"})
    assert r.status_code == 200, r.text
    r = await api.client.patch(f"/api/v1/admin/users/{world.ids['suspended']}/suspend",
                               headers=world.boss, json={"suspended": True})
    assert r.status_code == 200, r.text
    deleted = {"id": uuid.UUID(world.ids["deleted"])}
    await api.services.db.execute("DELETE FROM refresh_tokens WHERE user_id = :id", deleted)
    await api.services.db.execute("DELETE FROM balances WHERE user_id = :id", deleted)
    await api.services.db.execute("DELETE FROM users WHERE id = :id", deleted)


@pytest.mark.asyncio
async def test_every_route_answers_every_caller_as_it_must(api: Api) -> None:
    world = await make_world(api)
    wrong: list[str] = []
    for (method, path), row in MATRIX.items():
        for who in IDENTITIES:
            verb, url, body, extra = await row.build(world, who)
            r = await api.client.request(verb, url, json=body,
                                         headers={**world.headers(who), **extra})
            api.client.cookies.clear()
            expected = row.expected[who]
            if not matches(expected, r.status_code):
                wrong.append(f"{who:9} {method} {path} ({verb} {url}): expected {expected}, "
                             f"got {r.status_code} {r.text[:160]}")
            elif who == "other" and row.lists_private:
                leaked = [s for s in world.owner_secrets if s in r.text]
                if leaked:
                    wrong.append(f"other     {verb} {url} shows the owner's {leaked}")
    assert not wrong, "\n".join(wrong)
