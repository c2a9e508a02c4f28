"""Fan-out under load (API.md): only committed events leave the server; a hundred readers
each get every trade in order while a client that never reads is cut off with 1008 and
slows nobody; a burst larger than the queue limit is not mistaken for a slow reader."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from excentra.engine import OrderType, Side
from excentra.http.ws import endpoint
from tests.ws.support import Client, D, Server, User, serving

pytestmark = pytest.mark.asyncio


async def engine_book(srv: Server) -> dict[str, Any]:
    """The book as matched in memory, committed or not (REST shows committed state)."""
    book = await srv.call(srv.services.exchange.snapshot("BTC/USDT"))
    assert isinstance(book, dict), book
    return book


async def until(check: Callable[[], bool | Awaitable[bool]], timeout: float = 10) -> float:
    """Wait for ``check``; how long it took."""
    started = time.monotonic()
    while True:
        done = check()
        if done if isinstance(done, bool) else await done:
            return time.monotonic() - started
        assert time.monotonic() - started < timeout, "condition not reached in time"
        await asyncio.sleep(0.01)


async def test_only_committed_events_are_sent(database_url: str) -> None:
    async with serving(database_url) as srv:
        maker, taker = await srv.user(BTC="1"), await srv.user(USDT="1000")
        async with await srv.connect() as ws:
            for user in (maker, taker):
                await ws.auth(user)
                await ws.subscribe(f"orders:{user.id}")
            await ws.subscribe("trades:BTC/USDT", "orderbook:BTC/USDT")
            srv.hold_journal()
            try:
                sell = asyncio.create_task(srv.order(maker, "sell", "0.01", "100"))

                async def resting() -> bool:
                    return bool((await engine_book(srv))["asks"])

                await until(resting)  # matched in memory, not yet durable
                buy = asyncio.create_task(srv.order(taker, "buy", "0.01", "100"))

                async def taken() -> bool:
                    return not (await engine_book(srv))["asks"]

                await until(taken)
                await ws.quiet(0.5)
                assert not sell.done()  # no reply before durable
                assert not buy.done()
                rest = (await srv.http.get("/api/v1/orderbook/BTC-USDT")).json()
                assert (rest["asks"], rest["seq"]) == ([], 0)  # nor a committed book
            finally:
                srv.release_journal()
            placed, bought = await sell, await buy
            events = [await ws.event() for _ in range(6)]
            assert [(e["type"], e.get("order_id"), e.get("status"), e.get("seq"))
                    for e in events] == [
                ("order_status", placed["order_id"], "open", None),
                ("order_book", None, None, 1),
                ("trade", None, None, None),
                ("order_status", placed["order_id"], "filled", None),
                ("order_status", bought["order_id"], "filled", None),
                ("order_book", None, None, 2)]
            await ws.quiet(0.2)


async def read_into(client: Client, out: list[dict[str, Any]], count: int) -> None:
    while len(out) < count:
        out.append(await client.event(timeout=30))


async def place_many(srv: Server, user: User, side: Side, orders: list[tuple[str, str]]
                     ) -> list[Any]:
    """Limit orders straight through the exchange (no HTTP: setup at volume)."""
    exchange = srv.services.exchange
    outcomes = await asyncio.gather(*(srv.call(exchange.place_order(
        user.id, "BTC/USDT", side, OrderType.LIMIT, price=D(price), quantity=D(quantity)))
        for price, quantity in orders))
    assert all(isinstance(o, dict) for o in outcomes), outcomes[:3]
    return outcomes


async def churn_book(srv: Server, user: User, commands: int) -> None:
    """``commands`` book changes without trades: asks placed and cancelled inside the top
    20 levels, so every ``order_book`` event is a full, wide snapshot."""
    exchange = srv.services.exchange
    for start in range(0, commands // 2, 100):
        placed = await place_many(srv, user, Side.SELL,
                                  [(f"{500_000 + i % 20}.01", "7777.7777")
                                   for i in range(start, start + 100)])
        await asyncio.gather(*(srv.call(exchange.cancel_order(user.id, o["order_id"]))
                               for o in placed))


async def drain(ws: websockets.ClientConnection) -> None:
    """Read until the connection ends (raises ``ConnectionClosed``)."""
    while True:
        await asyncio.wait_for(ws.recv(), 10)


async def slow_client(srv: Server) -> websockets.ClientConnection:
    """A client that reads nothing: a tiny receive buffer and a one-message inbox, so the
    server's kernel buffer, then its transport, then its queue fill up."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", int(srv.base.rsplit(":", 1)[1])))
    return await websockets.connect(srv.ws_url, sock=sock, max_queue=1, ping_interval=None)


async def test_hundred_readers_get_every_trade_while_a_reader_that_never_reads_is_cut_off(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(endpoint, "QUEUE_LIMIT", 64)
    async with serving(sqlite_url) as srv:
        maker, taker = await srv.user(BTC="1000000"), await srv.user(USDT="100000000")
        await place_many(srv, taker, Side.BUY, [(f"{10 + i}.01", "7777.7777")
                                                for i in range(20)])  # wide bids
        readers = [await srv.connect() for _ in range(100)]
        for reader in readers:
            await reader.subscribe("trades:BTC/USDT")
        assert {getattr(peer, "queue_limit", None)
                for peer in srv.hub.channels["trades:BTC/USDT"]} == {64}  # patch took
        slow = await slow_client(srv)
        for channel in ("trades:BTC/USDT", "orderbook:BTC/USDT"):
            await slow.send(f'{{"action": "subscribe", "channel": "{channel}"}}')
        rounds, per_round = 8, 25
        streams: list[list[dict[str, Any]]] = [[] for _ in readers]
        reading = [asyncio.create_task(read_into(r, out, rounds * per_round))
                   for r, out in zip(readers, streams, strict=True)]
        lags: list[float] = []

        def have(count: int) -> Callable[[], bool]:
            return lambda: all(len(out) >= count for out in streams)

        for n in range(rounds):
            await place_many(srv, maker, Side.SELL, [(f"{100 + n}.{i:02d}", "0.0001")
                                                     for i in range(per_round)])
            await srv.order(taker, "buy", str(Decimal("0.0001") * per_round), f"{101 + n}")
            # every reader has the round's trades soon, stalled slow client or not
            lags.append(await until(have((n + 1) * per_round)))
            await churn_book(srv, maker, 600)  # only the slow client gets these
        await asyncio.gather(*reading)
        assert srv.hub.dropped_peers == 1  # the slow one was cut off during the rounds
        assert max(lags) < 2, lags
        r = await srv.http.get("/api/v1/trades/BTC-USDT", params={"limit": 1000})
        expected = [{"type": "trade", **{k: v for k, v in t.items() if k != "id"}}
                    for t in reversed(r.json())]
        assert len(expected) == rounds * per_round
        assert all(stream == expected for stream in streams)
        assert [t["price"] for t in expected[:3]] == ["100.00", "100.01", "100.02"]
        # talking does not save it, nor does it lose its close code
        await slow.send('{"action": "subscribe", "channel": "ticker:BTC/USDT"}')
        with pytest.raises(ConnectionClosed):
            await drain(slow)
        assert (slow.close_code, slow.close_reason) == (1008, "Client cannot keep up")
        for reader in readers:
            await reader.ws.close()


async def test_a_burst_bigger_than_the_queue_limit_does_not_drop_a_reader(
        sqlite_url: str) -> None:
    """One placement that sweeps more makers than ``QUEUE_LIMIT`` queues that many trades
    for each subscriber at once; a client that reads them all is not a slow client."""
    async with serving(sqlite_url) as srv:
        makers = endpoint.QUEUE_LIMIT + 100
        maker, taker = await srv.user(BTC="10"), await srv.user(USDT="1000000")
        async with await srv.connect() as reader:
            await reader.subscribe("trades:BTC/USDT", "orderbook:BTC/USDT")
            await place_many(srv, maker, Side.SELL, [("100", "0.0001")] * makers)
            for _ in range(makers):  # each resting order is a book change
                await reader.event()
            await srv.order(taker, "buy", str(Decimal("0.0001") * makers), "100")
            trades = [await reader.event() for _ in range(makers)]
            assert {t["type"] for t in trades} == {"trade"}
            assert (await reader.event())["snapshot"] == {"bids": [], "asks": []}
            assert srv.hub.dropped_peers == 0
