"""``GET /health`` (reference §1.11) and ``GET /metrics`` (API.md): the health shape, the
degraded answer when the database fails or hangs, and Prometheus text that counts what
the server did."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from excentra.actors.book import InjectFault
from excentra.db import DatabaseError
from excentra.http.metrics import Metrics
from excentra.http.metrics_middleware import MetricsMiddleware
from excentra.http.routes import health
from tests.http.conftest import Api

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(api: Api) -> Samples:
    r = await api.client.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return samples(r.text)


def samples(text: str) -> Samples:
    """Every sample of a Prometheus text exposition (parsing fails on malformed text)."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


async def place(api: Api, headers: dict[str, str], side: str, price: str,
                quantity: str) -> None:
    r = await api.client.post("/api/v1/orders", headers=headers, json={
        "symbol": "BTC/USDT", "side": side, "order_type": "limit", "price": price,
        "quantity": quantity})
    assert r.status_code == 200, r.text


@pytest.mark.asyncio
async def test_health_says_when_a_book_or_the_core_is_being_rebuilt(api: Api) -> None:
    """A book being rebuilt degrades its pair only (the node still serves: 200); a
    whole-core rebuild refuses every command, so the node is not serving (503)."""
    sv = api.services.exchange.supervisor
    assert sv is not None
    assert sv.actors is not None
    sv.books_down.add("BTC/USDT")  # as the supervisor marks it while rebuilding
    r = await api.client.get("/health")
    assert (r.status_code, r.json()["status"], r.json()["core"]) == (
        200, "degraded", {"recovering": False, "books_down": ["BTC/USDT"]})
    sv.books_down.clear()
    sv.recovering = True
    r = await api.client.get("/health")
    assert (r.status_code, r.json()["status"], r.json()["core"]["recovering"]) == (
        503, "degraded", True)
    sv.recovering = False
    # A real book death: rebuilt alone, counted by scope in /metrics.
    sv.actors.books["BTC/USDT"].tell(InjectFault())
    for _ in range(500):
        if sv.book_recoveries:
            break
        await asyncio.sleep(0.01)
    await sv.wait_recovered()
    assert (await api.client.get("/health")).json()["core"] == {"recovering": False,
                                                                "books_down": []}
    found = await scrape(api)
    assert found[("excentra_actor_recoveries_total", (("scope", "book"),))] == 1
    assert found[("excentra_actor_recoveries_total", (("scope", "core"),))] == 0


@pytest.mark.asyncio
async def test_health_reports_ok_and_the_counters(api: Api) -> None:
    r = await api.client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"status", "db", "uptime_seconds", "ws_connections",
                         "orders_processed", "core", "log"}
    assert body["core"] == {"recovering": False, "books_down": []}
    assert set(body["log"]) == {"logged", "projected", "lag", "lag_p99", "stalled"}
    assert body["log"]["stalled"] is False
    assert (body["status"], body["db"], body["ws_connections"],
            body["orders_processed"]) == ("ok", True, 0, 0)
    assert isinstance(body["uptime_seconds"], int)
    _, buyer = await api.funded(USDT="100")
    await place(api, buyer, "buy", "10", "1")
    after = (await api.client.get("/health")).json()
    assert after["orders_processed"] == 1
    # the deposit and the order are in the log; the tables show them once projected
    assert after["log"]["logged"] >= body["log"]["logged"] + 2
    await api.client.get("/api/v1/orders", headers=buyer)  # waits for its writes
    assert (await api.client.get("/health")).json()["log"]["projected"] >= \
        after["log"]["logged"]


@pytest.mark.asyncio
async def test_health_is_degraded_when_the_database_fails_or_hangs(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*_args: Any, **_kw: Any) -> Any:
        raise DatabaseError("connection refused")

    async def hanging(*_args: Any, **_kw: Any) -> Any:
        await asyncio.sleep(5)

    monkeypatch.setattr(health, "DB_TIMEOUT", 0.05)
    for fault in (broken, hanging):
        monkeypatch.setattr(api.services.db, "fetch_val", fault)
        r = await api.client.get("/health")
        assert r.status_code == 503, fault
        body = r.json()
        assert {k: body[k] for k in ("status", "db", "ws_connections", "orders_processed")
                } == {"status": "degraded", "db": False, "ws_connections": 0,
                      "orders_processed": 0}
        assert isinstance(body["uptime_seconds"], int)
    monkeypatch.undo()
    assert (await api.client.get("/health")).status_code == 200


@pytest.mark.asyncio
async def test_metrics_count_orders_trades_and_requests(api: Api) -> None:
    before = await scrape(api)
    assert before.get(("excentra_orders_total", (("outcome", "placed"),)), 0) == 0  # no series yet
    _, seller = await api.funded(BTC="0.05")
    _, buyer = await api.funded(USDT="1000")
    await place(api, seller, "sell", "10000", "0.05")
    await place(api, buyer, "buy", "10000", "0.02")
    r = await api.client.post("/api/v1/orders", headers=buyer, json={
        "symbol": "BTC/USDT", "side": "buy", "order_type": "limit", "price": "10000",
        "quantity": "1"})
    assert r.status_code == 422
    await api.client.get("/api/v1/no-such-route")
    after = await scrape(api)
    assert after[("excentra_orders_total", (("outcome", "placed"),))] == 2
    assert after[("excentra_orders_total", (("outcome", "rejected"),))] == 1
    route = "POST /api/v1/orders"
    assert after[("excentra_http_requests_total", (("route", route), ("status", "200")))] == 2
    assert after[("excentra_http_requests_total", (("route", route), ("status", "422")))] == 1
    assert after[("excentra_http_request_seconds_count", (("route", route),))] == 3
    assert after[("excentra_http_requests_total",
                  (("route", "unmatched"), ("status", "404")))] == 1
    assert after[("excentra_http_requests_total",
                  (("route", "GET /metrics"), ("status", "200")))] == 1  # the first scrape
    assert after[("excentra_ws_connections", ())] == 0
    assert after[("excentra_actor_mailbox_depth", (("actor", "ledger"),))] >= 0
    assert ("excentra_actor_mailbox_depth", (("actor", "book:BTC/USDT"),)) in after
    # the journal committed the deposits and orders: its mean batch is a real figure
    assert api.services.journal_mean_batch >= 1
    assert after[("excentra_journal_mean_batch", ())] >= 1


@pytest.mark.asyncio
async def test_route_labels_are_templates_not_paths() -> None:
    """The middleware alone, on a tiny app: ids in paths never become label values."""
    metrics = Metrics(dict)

    async def item(_request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    async def boom(_request: Request) -> PlainTextResponse:
        raise RuntimeError("bug")

    inner = Starlette(routes=[Route("/items/{item_id}", item, methods=["GET"]),
                              Route("/boom", boom)])

    async def with_services(scope: Any, receive: Any, send: Any) -> None:
        scope.setdefault("state", {})["services"] = type("S", (), {"metrics": metrics})
        await MetricsMiddleware(inner)(scope, receive, send)

    transport = httpx.ASGITransport(app=with_services, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for path in ("/items/1", "/items/2", "/items/3"):
            assert (await client.get(path)).status_code == 200
        assert (await client.request("BREW", "/items/4")).status_code == 405
        assert (await client.get("/boom")).status_code == 500
    got = samples(metrics.render().decode())
    assert got[("excentra_http_requests_total",
                (("route", "GET /items/{item_id}"), ("status", "200")))] == 3
    assert got[("excentra_http_requests_total",
                (("route", "/items/{item_id}"), ("status", "405")))] == 1
    assert got[("excentra_http_requests_total",
                (("route", "GET /boom"), ("status", "500")))] == 1
    assert not [k for k in got if any(v in ("/items/1", "/items/2") for _, v in k[1])]
