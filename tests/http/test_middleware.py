"""Cross-cutting HTTP behaviour: request ids, CORS for the frontend, rate-limit headers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from excentra.http.app import create_app
from excentra.http.ratelimit import DEFAULT_POLICIES, Policy
from tests.http.conftest import FAST_PASSWORDS, Api, running_api, settings_for

pytestmark = pytest.mark.asyncio

FRONT = "http://localhost:3001"


async def test_request_id_is_reused_or_generated(api: Api) -> None:
    r = await api.client.get("/api/v1/orders", headers={"x-request-id": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r1, r2 = await api.client.get("/api/v1/orders"), await api.client.get("/api/v1/nowhere")
    assert len(r1.headers["x-request-id"]) == 36
    assert r1.headers["x-request-id"] != r2.headers["x-request-id"]


async def test_cors_preflight_allows_the_frontend_with_credentials(api: Api) -> None:
    r = await api.client.options("/api/v1/auth/refresh", headers={
        "Origin": FRONT, "Access-Control-Request-Method": "PATCH",
        "Access-Control-Request-Headers": "content-type,authorization"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == FRONT
    assert r.headers["access-control-allow-credentials"] == "true"
    assert "PATCH" in r.headers["access-control-allow-methods"]
    r = await api.client.get("/api/v1/orders", headers={"Origin": FRONT})
    assert r.headers["access-control-allow-origin"] == FRONT
    r = await api.client.options("/api/v1/orders", headers={
        "Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
    assert r.status_code == 400
    assert "access-control-allow-origin" not in r.headers


@pytest_asyncio.fixture
async def limited(database_url: str) -> AsyncIterator[Api]:
    policies = {**DEFAULT_POLICIES, "orders": Policy(3, 60)}
    app = create_app(settings_for(database_url, rate_limits=policies),
                     passwords=FAST_PASSWORDS)
    async for running in running_api(app):
        yield running


async def test_order_rate_limit_per_user_with_headers(limited: Api) -> None:
    _, alice = await limited.funded(USDT="1000")
    _, bob = await limited.funded(USDT="1000")
    bad = {"symbol": "BTC/USDT", "side": "buy", "order_type": "limit", "price": "0",
           "quantity": "1"}
    remaining = []
    for _ in range(3):
        r = await limited.client.post("/api/v1/orders", headers=alice, json=bad)
        assert r.status_code == 400  # validated after the count, so it counts
        assert r.headers["x-ratelimit-limit"] == "3"
        remaining.append(r.headers["x-ratelimit-remaining"])
    assert remaining == ["2", "1", "0"]
    r = await limited.client.post("/api/v1/orders", headers=alice, json=bad)
    assert r.status_code == 429
    assert r.json() == {"error": "rate limit exceeded, try again after: 0 mins"}
    assert 1 <= int(r.headers["retry-after"]) <= 60
    assert 0 <= int(r.headers["x-ratelimit-reset"]) <= 60
    r = await limited.client.post("/api/v1/orders", headers=bob, json=bad)
    assert r.status_code == 400  # another identity has its own window
    r = await limited.client.get("/api/v1/orders", headers=alice)
    assert r.status_code == 200  # unlimited route
    assert "x-ratelimit-limit" not in r.headers


async def test_public_market_reads_are_limited_per_ip(database_url: str) -> None:
    policies = {**DEFAULT_POLICIES, "candles": Policy(2, 60)}
    app = create_app(settings_for(database_url, rate_limits=policies),
                     passwords=FAST_PASSWORDS)
    async for api in running_api(app):
        for _ in range(2):
            r = await api.client.get("/api/v1/candles/BTC-USDT")
            assert (r.status_code, r.json()) == (200, [])
        r = await api.client.get("/api/v1/candles/BTC-USDT")
        assert r.status_code == 429
        assert r.headers["x-ratelimit-remaining"] == "0"
        r = await api.client.get("/api/v1/candles/BTC-USDT",
                                 headers={"X-Forwarded-For": "203.0.113.9"})
        assert r.status_code == 200  # another client behind the trusted proxy (loopback)


async def test_405_lists_every_method_of_the_path(api: Api) -> None:
    """Starlette names only the first route of a path; the answer names all of them."""
    for path, methods in (("/api/v1/orders", {"GET", "HEAD", "POST"}),
                          ("/api/v1/users/me", {"GET", "HEAD", "PATCH"}),
                          ("/health", {"GET", "HEAD"})):
        r = await api.client.request("PUT", path)
        assert r.status_code == 405, path
        assert set(r.headers["allow"].split(", ")) == methods, path
        assert r.json() == {"error": "Method Not Allowed"}
