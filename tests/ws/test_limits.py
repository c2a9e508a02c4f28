"""WebSocket limits (issue 15, item 4): no subscription to a pair that does not exist, a cap
on channels per connection (lower before authenticating), and a cap on connections per
client address — each refusal a clear error, the connection (or the others) unharmed."""

from __future__ import annotations

import pytest
from websockets.exceptions import ConnectionClosed

from excentra.http.ws.endpoint import ANONYMOUS_SUBSCRIPTIONS, MAX_SUBSCRIPTIONS
from tests.ws.support import Client, serving

pytestmark = pytest.mark.asyncio


async def test_a_pair_that_does_not_exist_cannot_be_subscribed(sqlite_url: str) -> None:
    async with serving(sqlite_url) as srv, await srv.connect() as ws:
        for channel in ("ticker:DOGE/USDT", "orderbook:ABC/XYZ", "trades:BTC/EUR"):
            answer = await ws.ask(action="subscribe", channel=channel)
            assert answer["type"] == "error", answer
            assert answer["message"].startswith("Unknown trading pair"), answer
        await ws.subscribe("ticker:BTC/USDT")  # a real one still works


async def test_subscriptions_per_connection_are_capped_higher_once_authenticated(
        sqlite_url: str) -> None:
    async with serving(sqlite_url) as srv:
        admin = await srv.user(role="admin")
        symbols = []
        for n in range(MAX_SUBSCRIPTIONS // 2 + 1):  # two channels each: one too many
            code = f"T{n}"
            r = await srv.http.post("/api/v1/assets", headers=admin.headers, json={
                "symbol": code, "name": code, "decimals": 6})
            assert r.status_code in (200, 201), r.text
            r = await srv.http.post("/api/v1/pairs", headers=admin.headers, json={
                "base_asset": code, "quote_asset": "USDT"})
            assert r.status_code in (200, 201), r.text
            symbols.append(f"{code}/USDT")
        channels = [f"{kind}:{s}" for s in symbols for kind in ("ticker", "trades")]
        async with await srv.connect() as ws:
            for channel in channels[:ANONYMOUS_SUBSCRIPTIONS]:
                await ws.subscribe(channel)
            refused = await ws.ask(action="subscribe",
                                   channel=channels[ANONYMOUS_SUBSCRIPTIONS])
            assert refused["type"] == "error", refused
            assert "authenticate for more" in refused["message"], refused
            await ws.subscribe(channels[0])  # one it has: not one more
            user = await srv.user()
            await ws.auth(user)
            for channel in channels[ANONYMOUS_SUBSCRIPTIONS:MAX_SUBSCRIPTIONS]:
                await ws.subscribe(channel)
            refused = await ws.ask(action="subscribe", channel=channels[MAX_SUBSCRIPTIONS])
            assert refused["type"] == "error", refused
            assert f"at most {MAX_SUBSCRIPTIONS}" in refused["message"], refused
            await ws.send(action="unsubscribe", channel=channels[0])
            assert (await ws.recv())["type"] == "unsubscribed"
            await ws.subscribe(channels[MAX_SUBSCRIPTIONS])  # room again


async def test_connections_per_address_are_capped(sqlite_url: str) -> None:
    async with serving(sqlite_url, ws_max_connections_per_ip=3) as srv:
        clients: list[Client] = [await srv.connect() for _ in range(3)]
        try:
            for c in clients:
                await c.subscribe("ticker:BTC/USDT")
            extra = await srv.connect()
            with pytest.raises(ConnectionClosed) as closed:
                await extra.recv()
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1008
            assert closed.value.rcvd.reason == "Too many connections from your address"
            await clients.pop().ws.close()  # one leaves: room for one more
            for _ in range(50):
                again = await srv.connect()
                try:
                    answer = await again.ask(action="subscribe", channel="ticker:ETH/USDT")
                except ConnectionClosed:
                    continue  # the server had not seen the close yet
                assert answer == {"type": "subscribed", "channel": "ticker:ETH/USDT"}
                clients.append(again)
                break
            else:
                pytest.fail("no room after a connection left")
        finally:
            for c in clients:
                await c.ws.close()
