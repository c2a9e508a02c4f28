"""The events of ``/ws`` field by field, in the original's order (reference §3.7, §4.3,
API.md): trade, order_status for maker and taker, order_book with its ``seq``, ticker; each
checked against what the REST API says about the same orders, trades, book and ticker."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import pytest

from tests.ws.support import TICKER_INTERVAL, Client, D, Server, User, serving

pytestmark = pytest.mark.asyncio

RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$")
DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")


async def rest_order(srv: Server, user: User, order_id: str) -> dict[str, Any]:
    r = await srv.http.get(f"/api/v1/orders/{order_id}", headers=user.headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def rest_trades(srv: Server) -> list[dict[str, Any]]:
    """The pair's trades, oldest first, without their ids (events carry none)."""
    r = await srv.http.get("/api/v1/trades/BTC-USDT", params={"limit": 1000})
    assert r.status_code == 200, r.text
    return [{"type": "trade", **{k: v for k, v in t.items() if k != "id"}}
            for t in reversed(r.json())]


async def rest_book(srv: Server) -> dict[str, Any]:
    r = await srv.http.get("/api/v1/orderbook/BTC-USDT")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def status(user: User, order: dict[str, Any]) -> dict[str, Any]:
    """The ``order_status`` event API.md describes for ``order`` (as REST shows it)."""
    return {"type": "order_status", "user_id": user.id, "order_id": order["id"],
            "status": order["status"], "quantity": order["quantity"],
            "remaining_quantity": order["remaining_quantity"], "symbol": order["symbol"],
            "side": order["side"], "order_type": order["order_type"],
            "price": order["price"]}


def book(seq: int, bids: list[tuple[str, str]], asks: list[tuple[str, str]]
         ) -> dict[str, Any]:
    return {"type": "order_book", "symbol": "BTC/USDT", "seq": seq, "snapshot": {
        "bids": [{"price": p, "quantity": q} for p, q in bids],
        "asks": [{"price": p, "quantity": q} for p, q in asks]}}


async def watcher(srv: Server, *users: User) -> Client:
    """One connection that sees everything about ``users``' orders: it authenticates as
    each in turn (a private subscription outlives a re-auth, as in the original), plus the
    pair's trades and book."""
    ws = await srv.connect()
    for user in users:
        await ws.auth(user)
        await ws.subscribe(f"orders:{user.id}")
    await ws.subscribe("trades:BTC/USDT", "orderbook:BTC/USDT")
    return ws


async def test_a_placement_sends_trades_maker_statuses_then_taker_status_then_book(
        database_url: str) -> None:
    async with serving(database_url) as srv:
        maker, taker = await srv.user(BTC="1"), await srv.user(USDT="1000")
        async with await watcher(srv, maker, taker) as ws:
            first = await srv.order(maker, "sell", "0.5", "100.5")
            first_open = await rest_order(srv, maker, first["order_id"])
            assert await ws.event() == status(maker, first_open)
            assert await ws.event() == book(1, [], [("100.50", "0.5000")])
            second = await srv.order(maker, "sell", "0.5", "101")
            assert (await ws.event())["status"] == "open"
            assert await ws.event() == book(2, [], [("100.50", "0.5000"),
                                                    ("101.00", "0.5000")])

            placed = await srv.order(taker, "buy", "0.7", "101")
            trades = await rest_trades(srv)
            assert [(t["price"], t["quantity"]) for t in trades] == [
                ("100.50", "0.5000"), ("101.00", "0.2000")]
            events = [await ws.event() for _ in range(6)]
            assert events == [
                trades[0], status(maker, await rest_order(srv, maker, first["order_id"])),
                trades[1], status(maker, await rest_order(srv, maker, second["order_id"])),
                status(taker, await rest_order(srv, taker, placed["order_id"])),
                book(3, [], [("101.00", "0.3000")])]
            # spelled out once, so the REST comparison above cannot hide a shared mistake
            assert events[0] == {"type": "trade", "symbol": "BTC/USDT", "price": "100.50",
                                 "quantity": "0.5000", "taker_side": "buy",
                                 "created_at": trades[0]["created_at"]}
            assert RFC3339_Z.match(events[0]["created_at"])
            assert {k: events[1][k] for k in ("status", "quantity", "remaining_quantity",
                                              "side", "order_type")} == {
                "status": "filled", "quantity": "0.5000", "remaining_quantity": "0.0000",
                "side": "sell", "order_type": "limit"}
            assert D(events[1]["price"]) == D("100.5")
            assert (events[3]["status"], events[3]["remaining_quantity"]) == (
                "partially_filled", "0.3000")
            assert (events[4]["status"], events[4]["quantity"],
                    events[4]["remaining_quantity"], events[4]["side"]) == (
                "filled", "0.7000", "0.0000", "buy")
            assert D(events[4]["price"]) == D(101)
            await ws.quiet(0.3)


async def test_market_buy_status_carries_budget_and_unspent_budget(database_url: str) -> None:
    async with serving(database_url) as srv:
        maker, taker = await srv.user(BTC="1"), await srv.user(USDT="1000")
        async with await watcher(srv, maker, taker) as ws:
            await srv.order(maker, "sell", "0.3", "100")
            await ws.event(), await ws.event()
            # 20 USDT buys 0.2 BTC exactly: filled, nothing unspent
            placed = await srv.order(taker, "buy", "20")
            trade, maker_status, taker_status, after = [await ws.event() for _ in range(4)]
            assert (trade["type"], trade["quantity"], maker_status["status"]) == (
                "trade", "0.2000", "partially_filled")
            assert taker_status == status(taker, await rest_order(srv, taker,
                                                                 placed["order_id"]))
            assert (taker_status["status"], D(taker_status["quantity"]),
                    D(taker_status["remaining_quantity"]), taker_status["order_type"],
                    taker_status["price"]) == ("filled", D(20), D(0), "market", None)
            assert after == book(2, [], [("100.00", "0.1000")])
            # 50 USDT meets only 0.1 BTC (10 USDT): the book runs out, 40 USDT unspent
            placed = await srv.order(taker, "buy", "50")
            trade, maker_status, taker_status, after = [await ws.event() for _ in range(4)]
            assert (trade["quantity"], maker_status["status"],
                    maker_status["remaining_quantity"]) == ("0.1000", "filled", "0.0000")
            assert taker_status == status(taker, await rest_order(srv, taker,
                                                                 placed["order_id"]))
            assert (taker_status["status"], D(taker_status["quantity"]),
                    D(taker_status["remaining_quantity"])) == ("cancelled", D(50), D(40))
            assert after == book(3, [], [])


async def test_cancel_sends_status_then_book(database_url: str) -> None:
    async with serving(database_url) as srv:
        maker, taker = await srv.user(BTC="1"), await srv.user(USDT="1000")
        async with await watcher(srv, maker) as ws:
            placed = await srv.order(maker, "sell", "0.5", "100")
            await ws.event(), await ws.event()
            await srv.order(taker, "buy", "0.2", "100")
            [await ws.event() for _ in range(3)]  # trade, maker status, book
            cancelled = await srv.cancel(maker, placed["order_id"])
            event = await ws.event()
            assert event == status(maker, cancelled)
            assert (event["status"], event["quantity"], event["remaining_quantity"]) == (
                "cancelled", "0.5000", "0.3000")  # remaining as it was (the original's)
            assert await ws.event() == book(3, [], [])
            await ws.quiet(0.3)


async def test_a_command_that_leaves_the_book_alone_sends_no_book_event(
        database_url: str) -> None:
    """A market order into an empty book changes no level: its taker gets its (cancelled)
    status, no ``order_book`` event is sent and ``seq`` does not move, so the next
    ``order_book`` event is still exactly one more than the last."""
    async with serving(database_url) as srv:
        alice, bob = await srv.user(USDT="1000"), await srv.user(BTC="1", USDT="1000")
        async with await watcher(srv, alice, bob) as ws:
            for side, quantity in (("buy", "50"), ("sell", "0.0100")):
                placed = await srv.order(bob, side, quantity)
                assert placed["status"] == "cancelled"
                event = await ws.event()
                assert (event["type"], event["order_id"], event["status"]) == (
                    "order_status", placed["order_id"], "cancelled")
            await srv.order(alice, "buy", "0.1", "90")
            await ws.event()
            assert await ws.event() == book(1, [("90.00", "0.1000")], [])
            # a limit IOC that cannot fill rests nowhere: no level changes either
            await srv.order(bob, "sell", "0.1", "95", time_in_force="IOC")
            assert (await ws.event())["status"] == "cancelled"
            assert (await rest_book(srv))["seq"] == 1
            await srv.order(bob, "sell", "0.1", "95")
            await ws.event()
            assert await ws.event() == book(2, [("90.00", "0.1000")], [("95.00", "0.1000")])
            await ws.quiet(0.3)


async def test_order_book_is_top_20_levels_aggregated_per_price(database_url: str) -> None:
    async with serving(database_url) as srv:
        maker = await srv.user(BTC="10", USDT="100000")
        for i in range(25):
            await srv.order(maker, "buy", "0.01", str(100 + i))
            await srv.order(maker, "sell", "0.02", str(200 + i))
        await srv.order(maker, "buy", "0.03", "110")  # joins the 110 level
        await srv.order(maker, "sell", "0.05", "201")
        async with await srv.connect() as ws:
            assert await ws.ask(action="subscribe", channel="orderbook:BTC/USDT") == {
                "type": "subscribed", "channel": "orderbook:BTC/USDT"}
            snapshot = await ws.event()
        bids = [(f"{p}.00", "0.0400" if p == 110 else "0.0100")
                for p in range(124, 104, -1)]
        asks = [(f"{p}.00", "0.0700" if p == 201 else "0.0200") for p in range(200, 220)]
        assert snapshot == book(52, bids, asks)
        rest = await rest_book(srv)
        assert (rest["bids"], rest["asks"], rest["seq"]) == (
            snapshot["snapshot"]["bids"], snapshot["snapshot"]["asks"], 52)


async def test_seq_grows_by_one_per_book_event_and_a_late_snapshot_lines_up(
        database_url: str) -> None:
    async with serving(database_url) as srv:
        alice, bob = await srv.user(BTC="5", USDT="100000"), await srv.user(BTC="5",
                                                                           USDT="100000")
        async with await srv.connect() as early:
            await early.send(action="subscribe", channel="orderbook:BTC/USDT")
            assert (await early.recv())["type"] == "subscribed"
            assert (await early.event())["seq"] == 0
            seen: list[dict[str, Any]] = []
            late: Client | None = None
            resting: list[tuple[User, str]] = []
            for step in range(60):
                kind = step % 6
                if kind in (0, 1, 2):  # alice bids 95..105, bob asks 100..110: some cross
                    user, side = (alice, "buy") if step % 2 else (bob, "sell")
                    price = str((95 if side == "buy" else 100) + (step * 7) % 11)
                    placed = await srv.order(user, side, "0.0100", price)
                    if placed["status"] in ("open", "partially_filled"):
                        resting.append((user, placed["order_id"]))
                elif kind == 3 and resting:
                    owner, order_id = resting.pop(0)
                    r = await srv.http.delete(f"/api/v1/orders/{order_id}",
                                              headers=owner.headers)
                    assert r.status_code in (200, 400), r.text  # 400: filled meanwhile
                elif kind == 4:  # market orders, which may find an empty side
                    await srv.order(*((alice, "buy", "2") if step % 4 else
                                      (bob, "sell", "0.0100")))
                else:
                    await srv.order(alice, "buy", "0.0050", "50", time_in_force="IOC")
                if step == 30:
                    late = await srv.connect()
                    await late.send(action="subscribe", channel="orderbook:BTC/USDT")
            final = await rest_book(srv)
            while not seen or seen[-1]["seq"] < final["seq"]:
                seen.append(await early.event())
            assert [e["seq"] for e in seen] == list(range(1, final["seq"] + 1))
            assert final["seq"] > 30
            last = seen[-1]["snapshot"]
            assert (last["bids"], last["asks"]) == (final["bids"], final["asks"])
            # the late subscriber's snapshot carries the seq of the events before it, and
            # what follows continues it without a gap
            assert late is not None
            async with late:
                assert (await late.recv())["type"] == "subscribed"
                snapshot = await late.event()
                start = snapshot["seq"]
                assert snapshot == seen[start - 1]
                rest = [await late.event() for _ in range(final["seq"] - start)]
                assert rest == seen[start:]
            await early.quiet(0.3)


async def test_ticker_follows_trades_and_equals_rest(database_url: str) -> None:
    async with serving(database_url) as srv:
        maker, taker = await srv.user(BTC="1"), await srv.user(USDT="10000")
        async with await srv.connect() as ws:
            await ws.subscribe("ticker:BTC/USDT", "ticker:ETH/USDT")
            await ws.quiet(3 * TICKER_INTERVAL)  # no trade yet: no ticker at all
            prices = [("100", "0.1"), ("120", "0.2"), ("90", "0.05")]
            for price, quantity in prices:
                await srv.order(maker, "sell", quantity, price)
                await srv.order(taker, "buy", quantity, price)
            traded = time.monotonic()
            event = await ws.event(timeout=2)
            assert time.monotonic() - traded < 5 * TICKER_INTERVAL + 0.5  # a couple of ticks
            r = await srv.http.get("/api/v1/ticker/BTC-USDT")
            assert r.status_code == 200
            assert event == {"type": "ticker", **r.json()}
            assert {k: D(v) for k, v in event.items() if k not in ("type", "symbol")} == {
                "last_price": D(90), "high_24h": D(120), "low_24h": D(90),
                "volume_24h": D("0.35"), "price_change_pct": D(-10)}
            assert all(DECIMAL.match(v) for k, v in event.items()
                       if k not in {"type", "symbol"})
            # more ticks: still BTC only (ETH has no trade in 24 h)
            for _ in range(3):
                assert (await ws.event(timeout=2))["symbol"] == "BTC/USDT"
            # a new trade shows in the next ticks
            await srv.order(maker, "sell", "0.1", "135")
            await srv.order(taker, "buy", "0.1", "135")
            for _ in range(10):
                event = await ws.event(timeout=2)
                if event["last_price"] == "135.00":
                    break
            assert (event["high_24h"], D(event["volume_24h"]), D(event["price_change_pct"])
                    ) == ("135.00", D("0.45"), D(35))


async def test_events_after_a_restart_continue_from_what_was_committed(
        database_url: str) -> None:
    async with serving(database_url) as srv:
        maker, taker = await srv.user(BTC="1", USDT="100"), await srv.user(USDT="1000")
        resting = await srv.order(maker, "sell", "0.5", "101")
        await srv.order(maker, "buy", "0.2", "99")
        await srv.order(taker, "buy", "0.1", "101")
        ticker_before = (await srv.http.get("/api/v1/ticker/BTC-USDT")).json()
    async with serving(database_url) as srv:
        async with await srv.connect() as ticks:
            await ticks.subscribe("ticker:BTC/USDT")
            assert await ticks.event(timeout=2) == {"type": "ticker", **ticker_before}
        async with await srv.connect() as ws:
            await ws.auth(maker)
            await ws.subscribe(f"orders:{maker.id}")
            await ws.send(action="subscribe", channel="orderbook:BTC/USDT")
            assert (await ws.recv())["type"] == "subscribed"
            # seq continues from the three commands before the restart (never back to 0)
            assert await ws.event() == book(3, [("99.00", "0.2000")], [("101.00", "0.4000")])
            await srv.order(taker, "buy", "0.4", "101")
            event = await ws.event()
            assert event == status(maker, await rest_order(srv, maker, resting["order_id"]))
            assert (event["status"], event["side"], event["order_type"], event["quantity"],
                    D(event["price"])) == ("filled", "sell", "limit", "0.5000", D(101))
            assert await ws.event() == book(4, [("99.00", "0.2000")], [])


async def test_a_pair_added_at_runtime_gets_its_snapshot_on_subscribe(
        database_url: str) -> None:
    async with serving(database_url) as srv:
        admin = await srv.user(role="admin")
        r = await srv.http.post("/api/v1/pairs", headers=admin.headers,
                                json={"base_asset": "ETH", "quote_asset": "BTC"})
        assert r.status_code == 201, r.text
        seller = await srv.user(ETH="2")
        async with await srv.connect() as ws:
            assert await ws.ask(action="subscribe", channel="orderbook:eth/btc") == {
                "type": "subscribed", "channel": "orderbook:ETH/BTC"}
            empty = {"type": "order_book", "symbol": "ETH/BTC", "seq": 0,
                     "snapshot": {"bids": [], "asks": []}}
            assert await ws.event() == empty
            await srv.order(seller, "sell", "1.5", "0.05", symbol="ETH/BTC")
            assert await ws.event() == {**empty, "seq": 1, "snapshot": {
                # added without steps: the finest grid (BTC's 8, ETH's 18 decimals)
                "bids": [], "asks": [{"price": "0.05000000",
                                      "quantity": "1.500000000000000000"}]}}


async def test_concurrent_placements_keep_seq_gapless_and_trades_in_commit_order(
        database_url: str) -> None:
    """Placements racing each other are committed in batches of several commands: the
    stream still steps ``seq`` by one per book change, ends on the committed book, and
    lists the trades in the order the trade history has them."""
    async with serving(database_url) as srv:
        buyers = [await srv.user(USDT="100000") for _ in range(4)]
        sellers = [await srv.user(BTC="10") for _ in range(4)]
        async with await srv.connect() as ws:
            await ws.send(action="subscribe", channel="orderbook:BTC/USDT")
            assert (await ws.recv())["type"] == "subscribed"
            assert (await ws.event())["seq"] == 0
            await ws.subscribe("trades:BTC/USDT")
            orders = [srv.order(buyers[i % 4], "buy", "0.01", str(95 + (i * 7) % 11))
                      if i % 2 else
                      srv.order(sellers[i % 4], "sell", "0.01", str(100 + (i * 5) % 9))
                      for i in range(200)]
            await asyncio.gather(*orders)
            final = await rest_book(srv)
            trades = await rest_trades(srv)
            assert trades  # the prices overlap: some orders crossed
            books: list[dict[str, Any]] = []
            seen: list[dict[str, Any]] = []
            while len(books) < final["seq"] or len(seen) < len(trades):
                event = await ws.event()
                (books if event["type"] == "order_book" else seen).append(event)
            assert [b["seq"] for b in books] == list(range(1, final["seq"] + 1))
            assert books[-1]["snapshot"] == {"bids": final["bids"], "asks": final["asks"]}
            assert seen == trades
            await ws.quiet(0.3)
        stats = await srv.call(srv.services.exchange.journal_stats())
        assert getattr(stats, "max_batch", 0) > 1  # batches did hold several commands
