"""Subscriptions and who gets what (reference §4.4, API.md): ``orders:{id}`` needs that
user's token, each side of a trade hears only about its own order, unsubscribing stops
delivery, and suspending a user ends its private subscriptions at once."""

from __future__ import annotations

import pytest

from tests.ws.support import Client, Server, User, serving

pytestmark = pytest.mark.asyncio

AUTH_REQUIRED = {"type": "error", "message": "Authentication required for private channels"}
NOT_YOURS = {"type": "error", "message": "Cannot access another user's channel"}


async def private(srv: Server, user: User) -> Client:
    ws = await srv.connect()
    await ws.auth(user)
    await ws.subscribe(f"orders:{user.id}")
    return ws


async def trade(srv: Server, maker: User, taker: User, price: str = "100") -> None:
    await srv.order(maker, "sell", "0.01", price)
    await srv.order(taker, "buy", "0.01", price)


async def test_private_channels_need_the_owners_token(database_url: str) -> None:
    async with serving(database_url) as srv:
        alice, bob = await srv.user(), await srv.user()
        async with await srv.connect() as ws:
            for action in ("subscribe", "unsubscribe"):
                assert await ws.ask(action=action, channel=f"orders:{alice.id}") == (
                    AUTH_REQUIRED)
            await ws.auth(bob)
            for action in ("subscribe", "unsubscribe"):
                assert await ws.ask(action=action, channel=f"orders:{alice.id}") == NOT_YOURS
                assert await ws.ask(action=action,
                                    channel=f"orders:{alice.id.upper()}") == NOT_YOURS


async def test_maker_and_taker_each_hear_only_their_own_order(database_url: str) -> None:
    async with serving(database_url) as srv:
        maker, taker = await srv.user(BTC="1"), await srv.user(USDT="1000")
        bystander = await srv.user()
        async with await private(srv, maker) as m, await private(srv, taker) as t, \
                await private(srv, bystander) as b:
            sell = await srv.order(maker, "sell", "0.01", "100")
            opened = await m.event()
            assert (opened["order_id"], opened["status"]) == (sell["order_id"], "open")
            buy = await srv.order(taker, "buy", "0.01", "100")
            filled = await m.event()
            assert (filled["user_id"], filled["order_id"], filled["status"]) == (
                maker.id, sell["order_id"], "filled")
            taken = await t.event()
            assert (taken["user_id"], taken["order_id"], taken["status"]) == (
                taker.id, buy["order_id"], "filled")
            for ws in (m, t, b):
                await ws.quiet(0.3)


async def test_unsubscribe_stops_delivery(database_url: str) -> None:
    async with serving(database_url) as srv:
        maker, taker = await srv.user(BTC="1"), await srv.user(USDT="1000")
        async with await private(srv, maker) as leaving, await srv.connect() as staying:
            await leaving.subscribe("trades:BTC/USDT", "orderbook:BTC/USDT")
            await leaving.subscribe("trades:BTC/USDT")  # twice: still one delivery
            await staying.subscribe("trades:BTC/USDT")
            await trade(srv, maker, taker, "100")
            kinds = [(await leaving.event())["type"] for _ in range(5)]
            assert kinds == ["order_status", "order_book", "trade", "order_status",
                             "order_book"]
            assert (await staying.event())["price"] == "100.00"
            for channel in ("trades:BTC/USDT", "orderbook:BTC/USDT"):
                assert await leaving.ask(action="unsubscribe", channel=channel) == {
                    "type": "unsubscribed", "channel": channel}
            await leaving.send(action="unsubscribe", channel=f"orders:{maker.id}")
            await trade(srv, maker, taker, "101")
            assert (await staying.event())["price"] == "101.00"
            await leaving.quiet(0.3)
            await staying.quiet(0.1)


async def test_suspension_ends_private_subscriptions(database_url: str) -> None:
    async with serving(database_url) as srv:
        admin = await srv.user(role="admin")
        maker, taker = await srv.user(BTC="1"), await srv.user(USDT="1000")
        await srv.order(maker, "sell", "0.01", "100")  # rests through the suspension
        async with await private(srv, maker) as first, await private(srv, maker) as second:
            await first.subscribe("trades:BTC/USDT")
            r = await srv.http.patch(f"/api/v1/admin/users/{maker.id}/suspend",
                                     headers=admin.headers, json={"suspended": True})
            assert r.status_code == 200, r.text
            channel = f"orders:{maker.id}"
            for ws in (first, second):
                assert await ws.recv() == {"type": "error", "message": "Account suspended",
                                           "channel": channel}
                assert await ws.recv() == {"type": "unsubscribed", "channel": channel}
            # its resting order still trades; the public channel still delivers, the
            # private one no longer does
            await srv.order(taker, "buy", "0.01", "100")
            assert (await first.event())["type"] == "trade"
            await first.quiet(0.3)
            await second.quiet(0.1)
            assert await first.ask(action="subscribe", channel=channel) == {
                "type": "error", "message": "Account suspended"}
            await first.send(action="unsubscribe", channel=channel)  # leaving stays silent
            await first.quiet(0.2)
            # reinstated: it may subscribe again
            r = await srv.http.patch(f"/api/v1/admin/users/{maker.id}/suspend",
                                     headers=admin.headers, json={"suspended": False})
            assert r.status_code == 200, r.text
            await second.subscribe(channel)
            await srv.order(maker, "sell", "0.01", "100")
            assert (await second.event())["status"] == "open"
