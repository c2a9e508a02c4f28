"""Hostile input: every malformed, oversized or absurd request gets a 4xx JSON error and
writes nothing (API.md "Bad input", DESIGN invariant 8)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.http.conftest import Api

pytestmark = pytest.mark.asyncio

ORDERS = "/api/v1/orders"
GOOD = {"symbol": "BTC/USDT", "side": "buy", "order_type": "limit", "price": "100",
        "quantity": "0.01"}


async def nothing_written(api: Api, headers: dict[str, str]) -> None:
    orders = await api.client.get(ORDERS, headers=headers)
    assert orders.json()["total"] == 0
    r = await api.client.get("/api/v1/balances", headers=headers)
    assert {b["asset"]: (Decimal(b["available"]), Decimal(b["held"])) for b in r.json()} == {
        "USDT": (Decimal(1000), 0)}


RAW_BODIES: list[tuple[bytes, int]] = [
    (b"", 400), (b"{", 400), (b"[1,2", 400), (b"nul", 400), (b"\xff\xfe", 400),
    (b'{"symbol": "BTC/USDT", "price": NaN}', 400),
    (b'{"symbol": "BTC/USDT", "price": Infinity}', 400),
    (b'{"symbol": "BTC/USDT", "price": -Infinity}', 400),
    (b"[]", 422), (b'"text"', 422), (b"42", 422), (b"null", 422),
    (b"[" * 60_000, 400), (b"[" * 100_000, 413),
]


@pytest.mark.parametrize(("raw", "status"), RAW_BODIES,
                         ids=[f"raw{i}" for i in range(len(RAW_BODIES))])
async def test_malformed_json(api: Api, raw: bytes, status: int) -> None:
    _, user = await api.funded(USDT="1000")
    r = await api.client.post(ORDERS, headers={**user, "content-type": "application/json"},
                              content=raw)
    assert r.status_code == status, r.text
    assert isinstance(r.json()["error"], str)
    await nothing_written(api, user)


def with_(**changes: Any) -> dict[str, Any]:
    body = {**GOOD, **changes}
    return {k: v for k, v in body.items() if v is not ...}


SHAPES: list[tuple[dict[str, Any], int]] = [
    (with_(symbol=...), 422), (with_(side=...), 422), (with_(quantity=...), 422),
    (with_(side="hold"), 422), (with_(order_type="stop"), 422), (with_(side=1), 422),
    (with_(symbol=["BTC/USDT"]), 422), (with_(symbol=None), 422), (with_(quantity=True), 422),
    (with_(quantity={"v": 1}), 422), (with_(price="abc"), 422), (with_(price=""), 422),
    (with_(price="1,5"), 422), (with_(quantity="0x10"), 422), (with_(post_only="yes"), 422),
    (with_(time_in_force="GTD"), 422), (with_(client_order_id="x" * 37), 422),
    (with_(symbol="B" * 44), 422),
    (with_(price="NaN"), 400), (with_(price="Infinity"), 400), (with_(price="-inf"), 400),
    (with_(price="1e3"), 400), (with_(quantity="1E-2"), 400), (with_(price=1e20), 400),
    (with_(price="1" + "0" * 16), 400), (with_(quantity=10**16), 400),
    (with_(quantity="9" * 400), 400), (with_(price="0." + "0" * 30 + "1"), 422),
    (with_(quantity="0"), 400), (with_(quantity="-0.01"), 400), (with_(price="-100"), 400),
    (with_(symbol="../../etc/passwd"), 400), (with_(symbol="BTC/USDT/.."), 400),
    (with_(symbol="BTC/ZZZ"), 422), (with_(symbol=" / "), 400), (with_(symbol="BTC\x00/USDT"), 400),
]


@pytest.mark.parametrize(("body", "status"), SHAPES, ids=[f"shape{i}" for i in range(len(SHAPES))])
async def test_bad_order_bodies(api: Api, body: dict[str, Any], status: int) -> None:
    _, user = await api.funded(USDT="1000")
    r = await api.client.post(ORDERS, headers=user, json=body)
    assert r.status_code == status, r.text
    assert isinstance(r.json()["error"], str)
    assert r.json()["error"]
    await nothing_written(api, user)


async def test_wrong_content_type_and_huge_body(api: Api) -> None:
    _, user = await api.funded(USDT="1000")
    r = await api.client.post(ORDERS, headers={**user, "content-type": "text/plain"},
                              content=b'{"symbol": "BTC/USDT"}')
    assert r.status_code == 415
    assert "Content-Type" in r.json()["error"]
    r = await api.client.post(ORDERS, headers=user,
                              json={**GOOD, "pad": "x" * 100_000})
    assert r.status_code == 413
    await nothing_written(api, user)


@pytest.mark.parametrize("path", [
    "/api/v1/orderbook/..%2F..%2Fetc%2Fpasswd", "/api/v1/orderbook/%00", "/api/v1/nowhere",
    "/api/v1/balances/..%2F..", "/api/v1/orders/..%2Fusers", "/../../etc/passwd",
    "/api/v1/trades/" + "A" * 5000,
])
async def test_odd_paths_are_json_4xx(api: Api, path: str) -> None:
    _, user = await api.funded(USDT="1000")
    r = await api.client.get(path, headers=user)
    assert 400 <= r.status_code < 500, (path, r.status_code, r.text)
    assert isinstance(r.json()["error"], str)


async def test_unknown_route_and_wrong_method_use_the_envelope(api: Api) -> None:
    r = await api.client.get("/api/v1/nothing-here")
    assert (r.status_code, r.json()) == (404, {"error": "Not Found"})
    r = await api.client.put(ORDERS)
    assert (r.status_code, r.json()) == (405, {"error": "Method Not Allowed"})
