"""Text and amount input (issue 15, items 5 and 8): a NUL, a lone surrogate or a control
character in any string field is a 400 naming the field, never a 500; amounts must be in
the schema's one form; the schema states what the server enforces."""

from __future__ import annotations

import json
import logging
import random
import re
from decimal import Decimal
from typing import Any

import pytest

from excentra.http import fields
from excentra.http.errors import ApiError
from excentra.http.routes.assets import NAME_PATTERN
from excentra.http.routes.auth import EMAIL_PATTERN, valid_email
from excentra.http.routes.users import PASSWORD_RULES, USERNAME_RULES, check_update
from excentra.http.symbols import ASSET_PATTERN, FILTER_PATTERN, SLASH_PATTERN
from tests.http.conftest import Api

pytestmark = pytest.mark.asyncio

BAD_TEXT = {"nul": "a\x00b", "surrogate": "a\ud800b", "escape": "a\x1bb", "c1": "a\x85b",
            "del": "a\x7fb"}
ORDER = {"symbol": "BTC/USDT", "side": "buy", "order_type": "limit", "price": "100",
         "quantity": "0.01"}


def no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


async def refused(api: Api, caplog: pytest.LogCaptureFixture, method: str, path: str,
                  headers: dict[str, str], body: dict[str, Any], field: str) -> None:
    # ASCII JSON: a lone surrogate travels as its escape, as a hostile client sends it.
    r = await api.client.request(method, path, content=json.dumps(body).encode(),
                                 headers={**headers, "content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert field in r.json()["error"], r.text
    no_errors_logged(caplog)


@pytest.mark.parametrize("text", BAD_TEXT.values(), ids=BAD_TEXT.keys())
async def test_bad_text_in_user_fields(api: Api, caplog: pytest.LogCaptureFixture,
                                       text: str) -> None:
    caplog.set_level(logging.INFO)
    _, user = await api.funded(USDT="1000")
    await refused(api, caplog, "POST", "/api/v1/orders", user,
                  {**ORDER, "client_order_id": text}, "client_order_id")
    await refused(api, caplog, "POST", "/api/v1/balances/deposit", user,
                  {"asset": f"USDT{text}", "amount": "1"}, "asset")
    await refused(api, caplog, "POST", "/api/v1/balances/withdraw", user,
                  {"asset": text, "amount": "1"}, "asset")
    await refused(api, caplog, "POST", "/api/v1/auth/forgot-password", {},
                  {"email": f"a{text}@example.com"}, "email")
    await refused(api, caplog, "POST", "/api/v1/auth/register", {},
                  {"email": f"a{text}@example.com", "password": "password123"},
                  "Invalid email address")  # the original's message for a bad e-mail
    await refused(api, caplog, "POST", "/api/v1/auth/register", {},
                  {"email": "fine@example.com", "password": f"password{text}"}, "password")
    await refused(api, caplog, "POST", "/api/v1/auth/login", {},
                  {"email": "fine@example.com", "password": f"password{text}"}, "password")
    await refused(api, caplog, "PATCH", "/api/v1/users/me", user,
                  {"username": f"name{text}"}, "username")
    _, admin = await api.user(role="admin")
    await refused(api, caplog, "POST", "/api/v1/assets", admin,
                  {"symbol": "COIN", "name": f"Coin{text}", "decimals": 8}, "name")
    await refused(api, caplog, "POST", "/api/v1/pairs", admin,
                  {"base_asset": text, "quote_asset": "USDT"}, "base_asset")
    r = await api.client.get("/api/v1/balances", headers=user)
    assert {b["asset"]: Decimal(b["available"]) for b in r.json()} == {"USDT": 1000}


@pytest.mark.parametrize("raw", [
    b'{"asset": "\\ud800", "amount": "1"}', b'{"asset": "USDT", "amount": "\\udfff"}',
    b'{"asset": "\\u0000", "amount": "1"}', b'{"asset": "\xed\xa0\x80", "amount": "1"}',
], ids=["lone-high", "lone-low-amount", "nul-escape", "cesu-bytes"])
async def test_raw_json_escapes(api: Api, caplog: pytest.LogCaptureFixture,
                                raw: bytes) -> None:
    _, user = await api.funded(USDT="1000")
    r = await api.client.post("/api/v1/balances/deposit", content=raw,
                              headers={**user, "content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert isinstance(r.json()["error"], str)
    no_errors_logged(caplog)


async def test_bad_text_in_parameters(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    _, user = await api.funded(USDT="1000")
    for path in ("/api/v1/balances/US%00DT", "/api/v1/orders?pair=BTC%00-USDT",
                 "/api/v1/orders?status=open%1b", "/api/v1/pairs/BTC%00-USDT"):
        r = await api.client.get(path, headers=user)
        assert r.status_code == 400, (path, r.text)
        assert "control characters" in r.json()["error"]
    no_errors_logged(caplog)


MALFORMED = [" 1", "1 ", "1.", ".5", "0.1e1", "\u0661\u0662", "+1", "1\u00a0", "-.5", "0x1"]


@pytest.mark.parametrize("amount", MALFORMED)
async def test_amounts_in_the_one_form(api: Api, amount: str) -> None:
    _, user = await api.funded(USDT="1000", BTC="0.05")
    for path in ("/api/v1/balances/deposit", "/api/v1/balances/withdraw"):
        r = await api.client.post(path, headers=user, json={"asset": "USDT", "amount": amount})
        assert 400 <= r.status_code < 500, (path, r.text)
        assert "amount" in r.json()["error"], (path, r.text)
    for name in ("price", "quantity"):
        r = await api.client.post("/api/v1/orders", headers=user,
                                  json={**ORDER, name: amount})
        assert 400 <= r.status_code < 500, (name, r.text)
        assert name in r.json()["error"], (name, r.text)
    r = await api.client.get("/api/v1/balances", headers=user)
    assert {b["asset"]: Decimal(b["available"]) for b in r.json()} == {
        "USDT": 1000, "BTC": Decimal("0.05")}


@pytest.mark.parametrize("amount", [" 1", "1.", ".5", "0.1e1", "\u0661\u0662", "+1"])
async def test_number_like_amounts_are_400(api: Api, amount: str) -> None:
    _, user = await api.funded(USDT="1000")
    r = await api.client.post("/api/v1/balances/deposit", headers=user,
                              json={"asset": "USDT", "amount": amount})
    assert r.status_code == 400, r.text
    assert r.json()["error"].startswith("amount must be a plain decimal number")


@pytest.mark.parametrize(("raw", "credited"), [
    (b"0.1e1", "1"), (b"1E2", "100"), (b"1e-2", "0.01"), (b"5E-6", "0.000005")])
async def test_json_numbers_with_exponent_are_their_exact_value(
        api: Api, raw: bytes, credited: str) -> None:
    """What float serialisers write (``1e-05``, JavaScript's ``1e-7``) is a JSON number like
    any other: read exactly, never through a float."""
    _, user = await api.user()
    r = await api.client.post("/api/v1/balances/deposit",
                              headers={**user, "content-type": "application/json"},
                              content=b'{"asset": "USDT", "amount": ' + raw + b"}")
    assert r.status_code == 200, r.text
    assert Decimal(r.json()["available"]) == Decimal(credited)


@pytest.mark.parametrize(("raw", "status", "message"), [
    (b"1e16", 400, "amount is too large (at most 10^15)"),
    (b"1e999999999", 400, "amount is too large (at most 10^15)"),
    (b"1e-70000", 400, "amount has too many decimal places"),
    (b"1e-7", 422, "amount has more decimal places than USDT allows (6 decimals)"),
])
async def test_json_numbers_with_exponent_keep_the_amount_rules(
        api: Api, raw: bytes, status: int, message: str) -> None:
    _, user = await api.user()
    r = await api.client.post("/api/v1/balances/deposit",
                              headers={**user, "content-type": "application/json"},
                              content=b'{"asset": "USDT", "amount": ' + raw + b"}")
    assert (r.status_code, r.json()) == (status, {"error": message})


@pytest.mark.parametrize("amount", ["0", "-0", "0.00", 0, "-0.0"])
async def test_withdraw_of_nothing_is_refused(api: Api, amount: Any) -> None:
    _, user = await api.funded(USDT="1000")
    for path in ("/api/v1/balances/withdraw", "/api/v1/balances/deposit"):
        r = await api.client.post(path, headers=user, json={"asset": "USDT", "amount": amount})
        assert (r.status_code, r.json()) == (400, {"error": "Amount must be greater than zero"})


@pytest.mark.parametrize("amount", ["12", "0.5", "-1", 7, "0.00000001"])
async def test_valid_amounts_still_accepted(api: Api, amount: Any) -> None:
    _, user = await api.funded(USDT="1000", BTC="0.05")
    asset = "BTC" if amount == "0.00000001" else "USDT"
    r = await api.client.post("/api/v1/balances/withdraw", headers=user,
                              json={"asset": asset, "amount": amount})
    if amount == "-1":
        assert (r.status_code, r.json()["error"]) == (400, "Amount cannot be less than Zero")
        return
    assert r.status_code == 200, r.text
    r = await api.client.post("/api/v1/balances/deposit", headers=user,
                              json={"asset": asset, "amount": amount})
    assert r.status_code == 200, r.text
    order = await api.client.post("/api/v1/orders", headers=user,
                                  json={**ORDER, "price": 100.5, "quantity": "0.01"})
    assert order.status_code == 200, order.text


async def test_json_fraction_amount(api: Api) -> None:
    _, user = await api.funded()
    r = await api.client.post("/api/v1/balances/deposit",
                              headers={**user, "content-type": "application/json"},
                              content=b'{"asset": " usdt ", "amount": 2.50}')
    assert (r.status_code, r.json()["asset"], Decimal(r.json()["available"])) == (
        200, "USDT", Decimal("2.5"))


async def test_empty_and_odd_symbols_refused(api: Api) -> None:
    _, user = await api.funded(USDT="1000")
    _, admin = await api.user(role="admin")
    for symbol in ("", " ", "BTC/", "/USDT", "BTC/USDT\u00a0", "\u00df/USDT"):
        r = await api.client.post("/api/v1/orders", headers=user, json={**ORDER,
                                                                        "symbol": symbol})
        assert r.status_code == 400, (symbol, r.text)
    for asset in ("", " ", "\u00df", "\u00a0USDT"):
        r = await api.client.post("/api/v1/balances/deposit", headers=user,
                                  json={"asset": asset, "amount": "1"})
        assert 400 <= r.status_code < 500, (asset, r.text)
        r = await api.client.post("/api/v1/pairs", headers=admin,
                                  json={"base_asset": asset, "quote_asset": "USDT"})
        assert r.status_code == 400, (asset, r.text)
        r = await api.client.post("/api/v1/assets", headers=admin,
                                  json={"symbol": asset, "name": "Coin", "decimals": 8})
        assert r.status_code == 400, (asset, r.text)


async def test_the_schema_states_the_rules(api: Api) -> None:
    spec = (await api.client.get("/api-docs/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    order = schemas["PlaceOrderRequest"]["properties"]
    assert order["symbol"]["pattern"] == SLASH_PATTERN
    assert order["client_order_id"]["pattern"] == fields.TEXT_PATTERN
    assert order["price"]["maximum"] == 10**15  # a JSON number's bound, as the pattern's
    assert order["quantity"]["pattern"] == fields.POSITIVE_DECIMAL_PATTERN  # and above zero
    assert schemas["BalanceRequest"]["properties"]["asset"]["pattern"] == ASSET_PATTERN
    assert schemas["RegisterRequest"]["properties"]["email"]["pattern"] == EMAIL_PATTERN
    assert schemas["RegisterRequest"]["properties"]["password"]["minLength"] == 8
    assert schemas["AddAssetRequest"]["properties"]["name"]["pattern"] == NAME_PATTERN
    params = {p["name"]: p for p in spec["paths"]["/api/v1/orders"]["get"]["parameters"]}
    assert params["pair"]["schema"]["pattern"] == FILTER_PATTERN
    # a list of the statuses (issue 13: the schema says what the server takes)
    assert re.fullmatch(params["status"]["schema"]["pattern"], " OPEN,filled ")
    assert not re.search(params["status"]["schema"]["pattern"], "open\x1b")


async def test_patterns_agree_with_the_checks() -> None:
    text = re.compile(fields.TEXT_PATTERN)
    for bad in BAD_TEXT.values():
        assert not text.search(bad) or bad == BAD_TEXT["surrogate"]
        assert fields.text_problem(bad)
    fine = "any printable text, \u00fcml\u00e4ut, \u20ac"
    assert text.search(fine)
    assert fields.text_problem(fine) is None
    email = re.compile(EMAIL_PATTERN)
    for address in ("a@b.c", "a@b", "a@@b.c", "@b.c", "a@.b.c", "a@b..c", "a b@c.d",
                    "a@b.c.", "\u00fc@\u00df.de", "a\x00@b.c", "a\u200b@b.c", "a@b\u202e.c",
                    "\ufeffa@b.c", "\U000dafb5@b.c", "a\u3000@b.c"):
        assert bool(email.search(address)) == valid_email(address), address
    decimal = re.compile(fields.DECIMAL_PATTERN)
    for amount in [*MALFORMED, "1", "-0", "0.50", "12345678.12345678", "1000000000000000",
                   "-1000000000000000.000", "1000000000000000.01", "9999999999999999",
                   "00000000000000000000001"]:
        ok = bool(decimal.search(amount))
        try:
            fields.parse_decimal("amount", amount)
            parsed = True
        except (ApiError, fields.ShapeError):
            parsed = False
        assert ok == parsed, amount


async def test_the_update_patterns_agree_with_check_update() -> None:
    """PATCH /users/me: the schema's password and username patterns take exactly what
    ``check_update`` takes (whitespace around, trimmed lengths, ASCII usernames)."""
    rng = random.Random(7)
    alphabet = [" ", "\u00a0", "\u2003", "\u3000", "\u2028", "\ufeff", "a", "Z", "_", "1",
                "\u00e9", "-", "\U000dafb5"]
    password = re.compile(PASSWORD_RULES["pattern"])
    username = re.compile(USERNAME_RULES["pattern"])

    def accepted(name: str | None, secret: str | None) -> bool:
        try:
            check_update(name, secret, secret)
        except ApiError:
            return False
        return True

    for _ in range(20_000):
        size = rng.choice([rng.randint(0, 12), rng.randint(45, 135)])
        text = "".join(rng.choice(alphabet) for _ in range(size))
        assert (bool(password.search(text)) and len(text) <= 128) == accepted(None, text), \
            repr(text)
        assert (bool(username.search(text)) and len(text) <= 50) == accepted(text, None), \
            repr(text)
