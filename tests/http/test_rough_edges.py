"""Issue 13, "The API's rough edges" (and issue 15 item 8): configurable and documented
deposit caps, orders written at their pair's scale, amounts in the schema's form only,
``Idempotency-Key`` documented, RFC 6750 challenges on 401, system accounts that are not
users, a suspended user's refresh, and a schema that refuses what the server refuses."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import jsonschema_rs
import pytest
import pytest_asyncio

from excentra.db import accounts
from excentra.http.app import create_app
from excentra.http.auth import Tokens
from excentra.http.config import DEFAULT_DEPOSIT_LIMITS, Settings, parse_deposit_limits
from tests.http.conftest import FAST_PASSWORDS, Api, running_api, settings_for

pytestmark = pytest.mark.asyncio

D = Decimal
DEPOSIT = "/api/v1/balances/deposit"
ORDERS = "/api/v1/orders"
SYSTEM = "00000000-0000-0000-0000-000000000001"
FEES = "00000000-0000-0000-0000-000000000002"


async def spec_of(api: Api) -> dict[str, Any]:
    r = await api.client.get("/api-docs/openapi.json")
    assert r.status_code == 200
    spec: dict[str, Any] = r.json()
    return spec


# -- 1. deposit caps ------------------------------------------------------------------------


async def test_deposit_limits_default_to_the_originals_and_parse_strictly() -> None:
    assert Settings.from_env({}).deposit_limits == DEFAULT_DEPOSIT_LIMITS == {
        "USDT": D(1000), "BTC": D("0.05"), "ETH": D("0.5"), "SOL": D(5)}
    assert Settings.from_env({"DEPOSIT_LIMITS": "  "}).deposit_limits == DEFAULT_DEPOSIT_LIMITS
    assert Settings.from_env({"DEPOSIT_LIMITS": "None"}).deposit_limits == {}
    env = {"DEPOSIT_LIMITS": "USDT=250, BTC = 0.010"}
    assert Settings.from_env(env).deposit_limits == {"USDT": D(250), "BTC": D("0.010")}
    for bad in ("USDT", "USDT=", "=5", "usdt=5", "USDT=abc", "USDT=0", "USDT=0.000",
                "USDT=-1", "USDT=+1", "USDT=1e3", "USDT=1.", "USDT=.5", "USDT=NaN",
                "USDT=1,,BTC=2", "USDT=1;BTC=2", "TOOLONGASSET1=1", "USDT=\u0661"):
        with pytest.raises(ValueError, match="DEPOSIT_LIMITS item"):
            parse_deposit_limits(bad)
    with pytest.raises(ValueError, match="names USDT twice"):
        parse_deposit_limits("USDT=1, USDT=2")


@pytest_asyncio.fixture
async def capped(database_url: str) -> AsyncIterator[Api]:
    """An app whose only cap is USDT 10 (BTC, capped by default, is not here)."""
    settings = settings_for(database_url, deposit_limits=parse_deposit_limits("USDT=10"))
    async for running in running_api(create_app(settings, passwords=FAST_PASSWORDS)):
        yield running


async def deposit(api: Api, headers: dict[str, str], asset: str, amount: str,
                  **extra: str) -> tuple[int, dict[str, Any]]:
    r = await api.client.post(DEPOSIT, headers={**headers, **extra},
                              json={"asset": asset, "amount": amount})
    return r.status_code, r.json()


async def test_configured_caps_are_applied(capped: Api) -> None:
    _, headers = await capped.user()
    assert (await deposit(capped, headers, "USDT", "10"))[0] == 200
    assert await deposit(capped, headers, "USDT", "10.01") == (
        400, {"error": "Maximum deposit for USDT is 10"})
    status, body = await deposit(capped, headers, "BTC", "3")  # not listed: no cap
    assert (status, D(body["available"])) == (200, D(3))


async def test_default_caps_keep_the_originals_message_and_cannot_be_dodged(api: Api) -> None:
    _, headers = await api.user()
    assert await deposit(api, headers, "BTC", "0.06") == (
        400, {"error": "Maximum deposit for BTC is 0.05"})
    # the original looked the cap up before trimming: " btc " escaped it
    assert await deposit(api, headers, " btc ", "0.06") == (
        400, {"error": "Maximum deposit for BTC is 0.05"})
    assert (await deposit(api, headers, "btc", "0.05"))[0] == 200


async def test_the_openapi_document_states_the_configured_caps(capped: Api) -> None:
    op = (await spec_of(capped))["paths"][DEPOSIT]["post"]
    assert "DEPOSIT_LIMITS" in op["description"]
    assert "USDT 10" in op["description"]
    assert "BTC" not in op["description"]
    assert "Maximum deposit for ASSET is CAP" in op["responses"]["400"]["description"]
    assert "USDT 10" in op["responses"]["400"]["description"]


async def test_the_default_document_lists_the_default_caps(api: Api) -> None:
    op = (await spec_of(api))["paths"][DEPOSIT]["post"]
    assert "BTC 0.05, ETH 0.5, SOL 5, USDT 1000" in op["description"]


# -- 2. orders at their pair's scale ---------------------------------------------------------


async def test_orders_are_written_at_the_pairs_scale_everywhere(api: Api) -> None:
    _, buyer = await api.funded(USDT="1000")
    _, seller = await api.funded(BTC="0.05")
    placed = await api.limit(buyer, "buy", "500", "0.01")  # sent as "500" and "0.01"
    await api.limit(seller, "sell", "500.0", "0.005")
    book = (await api.client.get("/api/v1/orderbook/BTC-USDT")).json()
    trade = (await api.client.get("/api/v1/trades/BTC-USDT")).json()[0]
    assert book["bids"] == [{"price": "500.00", "quantity": "0.0050"}]
    assert (trade["price"], trade["quantity"]) == ("500.00", "0.0050")
    scaled = {"price": "500.00", "quantity": "0.0100", "remaining_quantity": "0.0050",
              "filled_quantity": "0.0050"}
    listed = (await api.client.get(ORDERS, headers=buyer)).json()["data"][0]
    one = (await api.client.get(f"{ORDERS}/{placed['order_id']}", headers=buyer)).json()
    cancelled = (await api.client.delete(f"{ORDERS}/{placed['order_id']}",
                                         headers=buyer)).json()
    after = (await api.client.get(f"{ORDERS}/{placed['order_id']}", headers=buyer)).json()
    for shown in (listed, one, cancelled, after):
        assert {k: shown[k] for k in scaled} == scaled, shown
    assert (placed["filled_quantity"], placed["remaining_quantity"]) == ("0.0000", "0.0100")


async def test_a_market_buy_shows_its_budget_at_the_quote_scale(api: Api) -> None:
    _, seller = await api.funded(BTC="0.05")
    _, buyer = await api.funded(USDT="1000")
    await api.limit(seller, "sell", "1000", "0.05")
    r = await api.client.post(ORDERS, headers=buyer, json={
        "symbol": "BTC/USDT", "side": "buy", "order_type": "market", "quantity": "20"})
    assert r.status_code == 200, r.text
    shown = (await api.client.get(f"{ORDERS}/{r.json()['order_id']}", headers=buyer)).json()
    assert (shown["price"], shown["quantity"], shown["filled_quantity"]) == (
        None, "20.000000", "0.0200")


# -- 3. amounts only in the schema's form ---------------------------------------------------


async def test_padded_or_signed_amounts_are_refused(api: Api) -> None:
    _, headers = await api.funded(USDT="1000")
    for price in (" 500", "500 ", "+500", "\t500", "500\u00a0"):
        r = await api.client.post(ORDERS, headers=headers, json={
            "symbol": "BTC/USDT", "side": "buy", "order_type": "limit", "price": price,
            "quantity": "0.01"})
        assert r.status_code == 400, (price, r.text)
        assert "price" in r.json()["error"], price
    status, _ = await deposit(api, headers, "USDT", " 1")
    assert status == 400
    assert (await api.client.get(ORDERS, headers=headers)).json()["total"] == 0


# -- 4. Idempotency-Key ----------------------------------------------------------------------


async def test_idempotency_key_is_documented_where_it_is_honoured(api: Api) -> None:
    paths = (await spec_of(api))["paths"]
    for path in (DEPOSIT, "/api/v1/balances/withdraw", "/api/v1/withdrawals"):
        params = {p["name"]: p for p in paths[path]["post"].get("parameters", [])}
        key = params["Idempotency-Key"]
        assert (key["in"], key["required"]) == ("header", False), path
        assert key["schema"]["maxLength"] == 200
    assert "Idempotency-Key" not in str(paths[ORDERS]["post"])  # orders: client_order_id


async def test_idempotency_key_is_honoured_and_checked(api: Api) -> None:
    _, headers = await api.user()
    key = {"Idempotency-Key": f"dep-{uuid.uuid4()}"}
    first = await deposit(api, headers, "USDT", "5", **key)
    again = await deposit(api, headers, "USDT", "5", **key)
    assert first == again == (200, {"asset": "USDT", "available": "5.000000",
                                    "held": "0.000000"})
    for bad in ("has space", "x" * 201, ""):
        status, body = await deposit(api, headers, "USDT", "5", **{"Idempotency-Key": bad})
        assert status == 400, bad
        assert "Idempotency-Key" in body["error"]
    r = await api.client.options(DEPOSIT, headers={
        "Origin": "http://localhost:3001", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,authorization,idempotency-key"})
    assert r.status_code == 200  # a browser may send it cross-origin


# -- 5. RFC 6750 challenges ------------------------------------------------------------------


async def test_401s_carry_a_bearer_challenge(api: Api) -> None:
    user_id, good = await api.user()
    expired = Tokens("test-secret-" + "x" * 32, ttl=-3600).access(user_id, "user")
    cases = [
        ({}, "No authorization header", "Bearer"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "Invalid Bearer token", "Bearer"),
        ({"Authorization": f"Bearer {expired}"}, "User not logged in",
         'Bearer error="invalid_token", error_description="The access token expired"'),
        ({"Authorization": "Bearer not-a-jwt"}, "User not logged in",
         'Bearer error="invalid_token", error_description="The access token is malformed, '
         'wrongly signed or lacks a claim"'),
        ({"Authorization": "Bearer"}, "Invalid Bearer token",
         'Bearer error="invalid_request", error_description="No token after Bearer"'),
    ]
    for path in ("/api/v1/users/me", "/api/v1/admin/stats"):
        for headers, message, challenge in cases:
            r = await api.client.get(path, headers=headers)
            assert (r.status_code, r.json()) == (401, {"error": message}), headers
            assert r.headers["www-authenticate"] == challenge, headers
    for scheme in ("bearer", "BEARER", "Bearer"):  # case-insensitive (RFC 9110 §11.1)
        token = good["Authorization"].split(" ", 1)[1]
        r = await api.client.get("/api/v1/users/me",
                                 headers={"Authorization": f"{scheme} {token}"})
        assert r.status_code == 200, scheme
        assert "www-authenticate" not in r.headers


async def test_a_deleted_users_token_is_an_invalid_token(api: Api) -> None:
    user_id, headers = await api.user()
    await api.services.db.execute("DELETE FROM users WHERE id = :id",
                                  {"id": uuid.UUID(user_id)})
    api.services.roles.set(user_id, None)
    r = await api.client.get("/api/v1/users/me", headers=headers)
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith('Bearer error="invalid_token"')


async def test_the_challenge_is_documented(api: Api) -> None:
    paths = (await spec_of(api))["paths"]
    header = paths["/api/v1/users/me"]["get"]["responses"]["401"]["headers"]
    assert header["WWW-Authenticate"]["required"] is True
    assert "headers" not in paths["/api/v1/auth/login"]["post"]["responses"]["401"]


# -- 6. system accounts are not users -------------------------------------------------------


async def test_system_accounts_are_not_listed_counted_or_managed(api: Api) -> None:
    admin_id, admin = await api.user(role="admin")
    user_id, _ = await api.user()
    r = await api.client.get("/api/v1/admin/users", headers=admin, params={"limit": 1000})
    page = r.json()
    assert {u["id"] for u in page["data"]} == {admin_id, user_id}
    assert page["total"] == 2
    assert all(u["role"] != "system" for u in page["data"])
    stats = (await api.client.get("/api/v1/admin/stats", headers=admin)).json()
    assert stats["total_users"] == 2
    for system_id in (SYSTEM, FEES):
        for action, body in (("suspend", {"suspended": True}), ("role", {"role": "admin"})):
            r = await api.client.patch(f"/api/v1/admin/users/{system_id}/{action}",
                                       headers=admin, json=body)
            assert (r.status_code, r.json()) == (
                404, {"error": f"User `{system_id}` not found"}), (system_id, action)
        row = await accounts.user_by_id(api.services.db, system_id)  # kept in the database
        assert row is not None
        assert (row["role"], row["is_suspended"]) == ("system", False)


async def test_system_accounts_cannot_log_in(api: Api) -> None:
    for email in ("system@excentra.com", "fees@excentra.com", "FEES@excentra.com"):
        for password in ("", "password123"):
            r = await api.client.post("/api/v1/auth/login",
                                      json={"email": email, "password": password})
            assert r.status_code in (400, 401), (email, password)
            assert "access_token" not in r.json()


# -- 7. a suspended user's refresh, and 405 --------------------------------------------------


async def test_a_suspended_users_refresh_is_403_and_stays_revoked(api: Api) -> None:
    _, admin = await api.user(role="admin")
    r = await api.client.post("/api/v1/auth/register", json={
        "email": "sus@example.com", "password": "password123"})
    assert r.status_code == 201, r.text
    cookie = r.cookies["refresh_token"]
    me = (await api.client.get("/api/v1/users/me", headers={
        "Authorization": f"Bearer {r.json()['access_token']}"})).json()
    r = await api.client.patch(f"/api/v1/admin/users/{me['id']}/suspend", headers=admin,
                               json={"suspended": True})
    assert r.status_code == 200, r.text
    api.client.cookies.clear()
    refresh = {"Cookie": f"refresh_token={cookie}"}
    for _ in range(2):  # refused, not consumed, not treated as a reuse
        r = await api.client.post("/api/v1/auth/refresh", headers=refresh)
        assert (r.status_code, r.json()) == (403, {"error": "Account suspended"})
    await accounts.sweep_expired_tokens(api.services.db)  # the daily sweep keeps it
    r = await api.client.post("/api/v1/auth/refresh", headers=refresh)
    assert (r.status_code, r.json()) == (403, {"error": "Account suspended"})
    r = await api.client.patch(f"/api/v1/admin/users/{me['id']}/suspend", headers=admin,
                               json={"suspended": False})
    assert r.status_code == 200
    r = await api.client.post("/api/v1/auth/refresh", headers=refresh)  # revoked for good
    assert r.status_code == 401
    r = await api.client.post("/api/v1/auth/login", json={
        "email": "sus@example.com", "password": "password123"})
    assert r.status_code == 200


async def test_405_names_every_method_of_a_parameterised_path(api: Api) -> None:
    order_path = f"{ORDERS}/{uuid.uuid4()}"
    for path, methods in ((order_path, {"DELETE", "GET", "HEAD"}),
                          ("/api/v1/pairs/BTC-USDT", {"GET", "HEAD", "PATCH"})):
        r = await api.client.request("PUT", path)
        assert r.status_code == 405, path
        assert set(r.headers["allow"].split(", ")) == methods, path


@pytest.mark.parametrize(("method", "path", "methods"), [
    ("PATCH", "/api/v1/pairs/active", {"GET", "HEAD"}),      # not PATCH /pairs/{symbol}
    ("OPTIONS", "/api/v1/balances/deposit", {"POST"}),       # not GET /balances/{asset}
    ("GET", "/api/v1/balances/deposit", {"POST"}),
    ("GET", "/api/v1/balances/withdraw", {"POST"}),
    ("DELETE", "/api/v1/trades/me", {"GET", "HEAD"}),
])
async def test_a_static_path_owns_its_methods(api: Api, method: str, path: str,
                                              methods: set[str]) -> None:
    """A static path never falls through to the templated route beside it: another method
    there is a 405 that lists the static path's methods alone."""
    _, headers = await api.user(role="admin")  # past any role check a handler would make
    r = await api.client.request(method, path, headers=headers)
    assert (r.status_code, r.json()) == (405, {"error": "Method Not Allowed"}), path
    assert set(r.headers["allow"].split(", ")) == methods, path


# -- 8. the schema refuses what the server refuses ------------------------------------------


def valid(schema: dict[str, Any], value: Any) -> bool:
    return bool(jsonschema_rs.Draft202012Validator(schema).is_valid(value))


async def test_the_schema_and_the_server_agree_on_edge_values(api: Api) -> None:
    spec = await spec_of(api)
    schemas = spec["components"]["schemas"]
    order = schemas["PlaceOrderRequest"]["properties"]
    _, headers = await api.funded(USDT="1000")
    base = {"symbol": "BTC/USDT", "side": "buy", "order_type": "limit", "price": "500",
            "quantity": "0.01"}
    for field, value in (("symbol", ""), ("symbol", "BTCUSDT"), ("price", "0"),
                         ("price", 0), ("price", "-1"), ("quantity", "0.0"),
                         ("quantity", 0.0), ("price", " 500")):
        assert not valid(order[field], value), (field, value)
        r = await api.client.post(ORDERS, headers=headers, json={**base, field: value})
        assert r.status_code == 400, (field, value, r.text)
    for field, value in (("price", "500"), ("price", "0.01"), ("quantity", "0.0001")):
        assert valid(order[field], value), (field, value)
    amount = schemas["BalanceRequest"]["properties"]["amount"]
    for value in ("0", "-5", 0):
        assert not valid(amount, value)
        assert (await deposit(api, headers, "USDT", str(value)))[0] == 400
    update = schemas["UpdateUserRequest"]
    for body in ({}, {"username": None}):
        assert not valid(update, body)
        r = await api.client.patch("/api/v1/users/me", headers=headers, json=body)
        assert (r.status_code, r.json()) == (400, {"error": "Request body cannot be empty"})
    assert valid(update, {"username": "someone"})
    for path in ("/api/v1/trades/{symbol}", "/api/v1/orderbook/{symbol}",
                 "/api/v1/candles/{symbol}"):
        (symbol,) = [p for p in spec["paths"][path]["get"]["parameters"]
                     if p["name"] == "symbol"]
        assert not valid(symbol["schema"], "0"), path
        assert not valid(symbol["schema"], ""), path
        assert valid(symbol["schema"], "BTC-USDT"), path
        r = await api.client.get(path.replace("{symbol}", "0"))
        assert r.status_code == 400, path
    role = schemas["UpdateUserRoleRequest"]["properties"]["role"]
    assert role["enum"] == ["user", "admin"]


async def test_status_lists_and_asset_filters_follow_their_patterns(api: Api) -> None:
    spec = await spec_of(api)
    _, headers = await api.user()
    status = next(p for p in spec["paths"][ORDERS]["get"]["parameters"]
                  if p["name"] == "status")["schema"]
    for text, accepted in (("open", True), ("OPEN", True), (" open , Filled ", True),
                           ("open,,cancelled", True), ("", True), ("partially_filled", True),
                           ("foo", False), ("open;filled", False), ("open\u00a0", False),
                           ("\u212aopen", False), ("opened", False)):
        assert valid(status, text) is accepted, text
        r = await api.client.get(ORDERS, headers=headers, params={"status": text})
        assert (r.status_code == 200) is accepted, (text, r.text)
    paths = spec["paths"]
    address = {p["name"]: p for p in paths["/api/v1/deposits/address"]["get"]["parameters"]}
    assert address["asset"]["required"] is True
    withdraw = spec["components"]["schemas"]["WithdrawalRequest"]["properties"]["asset"]
    for text in ("", "   ", "E\u0301TH", "ETH/USDT"):
        assert not valid(withdraw, text), text
        r = await api.client.post("/api/v1/withdrawals", headers=headers, json={
            "asset": text, "amount": "1", "address": "0x" + "1" * 40})
        assert r.status_code == 400, (text, r.text)
    asset = {p["name"]: p for p in paths["/api/v1/withdrawals"]["get"]["parameters"]}["asset"]
    assert not valid(asset["schema"], "\u0130")
    r = await api.client.get("/api/v1/withdrawals", headers=headers, params={"asset": "\u0130"})
    assert r.status_code == 400


async def test_the_order_schema_knows_what_limit_and_market_orders_need(api: Api) -> None:
    spec = await spec_of(api)
    order = spec["components"]["schemas"]["PlaceOrderRequest"]
    _, headers = await api.funded(USDT="1000")
    limit = {"symbol": "BTC/USDT", "side": "buy", "order_type": "limit", "quantity": "0.01"}
    market = {**limit, "order_type": "market", "quantity": "10"}
    for body in ({**limit}, {**limit, "price": None}, {**market, "price": "500"},
                 {**market, "time_in_force": "IOC"}, {**market, "post_only": True}):
        assert not valid(order, body), body
        r = await api.client.post(ORDERS, headers=headers, json=body)
        assert r.status_code == 400, (body, r.text)
    for body in ({**limit, "price": "500"}, {**market, "post_only": False}):
        assert valid(order, body), body


async def test_every_401_of_a_protected_route_carries_a_challenge(api: Api) -> None:
    _, headers = await api.user(password="password123")
    r = await api.client.patch("/api/v1/users/me", headers=headers, json={
        "current_password": "wrong-password", "new_password": "password456"})
    assert (r.status_code, r.json()) == (401, {"error": "Current password is incorrect"})
    assert r.headers["www-authenticate"] == "Bearer"  # the token itself is fine
