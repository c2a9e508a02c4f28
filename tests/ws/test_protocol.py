"""The ``/ws`` protocol over a real socket (reference §4.1–4.3, API.md): every client action
and the server's answer, every channel parse error, malformed and oversized frames, and the
connection counter. The backend does not matter here: SQLite only."""

from __future__ import annotations

import asyncio
import json
import uuid

import jwt
import pytest
from websockets.exceptions import ConnectionClosed

from excentra.http.ws.channels import parse_channel
from excentra.http.ws.endpoint import MAX_MESSAGE
from tests.ws.support import Client, Server, serving

pytestmark = pytest.mark.asyncio

INVALID = {"type": "error", "message": "Invalid message format"}
SECRET = "test-secret-" + "x" * 32
"""``settings_for``'s JWT secret."""


def error(message: str) -> dict[str, str]:
    return {"type": "error", "message": message}


async def assert_responsive(client: Client) -> None:
    """The connection still answers, and nothing else was waiting before the answer."""
    answer = await client.ask(action="subscribe", channel="ticker:SOL/USDT")
    assert answer == {"type": "subscribed", "channel": "ticker:SOL/USDT"}


async def test_auth_binds_the_connection_and_a_bad_token_keeps_the_previous_one(
        sqlite_url: str) -> None:
    async with serving(sqlite_url) as srv:
        alice, bob = await srv.user(), await srv.user()
        expired = jwt.encode({"user_id": alice.id, "role": "user", "exp": 1}, SECRET,
                             algorithm="HS256")
        forged = jwt.encode({"user_id": alice.id, "role": "user", "exp": 4_000_000_000},
                            "another-secret-" + "y" * 32, algorithm="HS256")
        async with await srv.connect() as ws:
            for token in ("not-a-jwt", "", expired, forged):
                assert await ws.ask(action="auth", token=token) == error(
                    "Invalid or expired token"), token
            assert await ws.ask(action="subscribe", channel=f"orders:{alice.id}") == error(
                "Authentication required for private channels")
            await ws.auth(alice)
            assert await ws.ask(action="auth", token=forged) == error(
                "Invalid or expired token")
            # still alice
            await ws.subscribe(f"orders:{alice.id}")
            # re-auth rebinds: alice's channel is now someone else's
            await ws.auth(bob)
            assert await ws.ask(action="subscribe", channel=f"orders:{alice.id}") == error(
                "Cannot access another user's channel")
            await ws.subscribe(f"orders:{bob.id}")


@pytest.mark.parametrize(("sent", "normalised"), [
    ("orderbook: btc/usdt", "orderbook:BTC/USDT"),
    ("trades:eth / usdt ", "trades:ETH/USDT"),
    ("ticker:Sol/Usdt", "ticker:SOL/USDT"),
])
async def test_subscribe_and_unsubscribe_acknowledge_the_normalised_channel(
        sqlite_url: str, sent: str, normalised: str) -> None:
    async with serving(sqlite_url) as srv, await srv.connect() as ws:
        assert await ws.ask(action="subscribe", channel=sent) == {
            "type": "subscribed", "channel": normalised}
        if normalised.startswith("orderbook:"):  # API.md: a snapshot follows at once
            snapshot = await ws.event()
            assert (snapshot["type"], snapshot["symbol"]) == ("order_book", "BTC/USDT")
        assert await ws.ask(action="unsubscribe", channel=sent) == {
            "type": "unsubscribed", "channel": normalised}
        # unsubscribing what is not subscribed is acknowledged all the same
        assert await ws.ask(action="unsubscribe", channel=sent) == {
            "type": "unsubscribed", "channel": normalised}


async def test_private_channel_is_normalised_and_its_unsubscribe_is_silent(
        sqlite_url: str) -> None:
    async with serving(sqlite_url) as srv:
        alice = await srv.user()
        async with await srv.connect() as ws:
            await ws.auth(alice)
            assert await ws.ask(action="subscribe",
                                channel=f"orders: {alice.id.upper()}") == {
                "type": "subscribed", "channel": f"orders:{alice.id}"}
            await ws.send(action="unsubscribe", channel=f"orders:{alice.id}")
            await assert_responsive(ws)  # no "unsubscribed" came first


@pytest.mark.parametrize(("channel", "message"), [
    ("trades", "Invalid ws channel e.g `trades:BTC-USDT`"),
    ("", "Invalid ws channel e.g `trades:BTC-USDT`"),
    ("candles:BTC/USDT", "Unsupported Channel"),
    ("Trades:BTC/USDT", "Unsupported Channel"),
    ("trades:BTC-USDT", "Invalid asset symbol, expected e.g `BTC/USDT`"),
    ("orderbook:BTC/USDT/ETH", "Invalid asset symbol, expected e.g `BTC/USDT`"),
    ("ticker:BTC", "Invalid asset symbol, expected e.g `BTC/USDT`"),
    ("trades:", "Symbol can not be empty"),
    ("orderbook:   ", "Symbol can not be empty"),
    ("orders:not-a-uuid", "Invalid user ID in orders channel: not-a-uuid"),
    ("orders:", "Invalid user ID in orders channel: "),
    ("orders:1234", "Invalid user ID in orders channel: 1234"),
])
async def test_channel_parse_errors(sqlite_url: str, channel: str, message: str) -> None:
    async with serving(sqlite_url) as srv, await srv.connect() as ws:
        for action in ("subscribe", "unsubscribe"):
            assert await ws.ask(action=action, channel=channel) == error(message), action
        await assert_responsive(ws)


async def test_malformed_messages_are_invalid_message_format(sqlite_url: str) -> None:
    too_long = json.dumps({"action": "subscribe",
                           "channel": "trades:BTC/USDT" + " " * MAX_MESSAGE})
    malformed = [
        "not json", "{", "[]", '["subscribe"]', '"subscribe"', "42", "null", "true",
        "{}", '{"action": "dance", "channel": "trades:BTC/USDT"}',
        '{"action": "subscribe"}', '{"channel": "trades:BTC/USDT"}',
        '{"action": "unsubscribe", "token": "trades:BTC/USDT"}', '{"action": "auth"}',
        '{"action": "auth", "channel": "x"}', '{"action": "auth", "token": 42}',
        '{"action": "subscribe", "channel": null}', '{"action": "subscribe", "channel": 7}',
        '{"action": "SUBSCRIBE", "channel": "trades:BTC/USDT"}',
        '{"action": ["subscribe"], "channel": "trades:BTC/USDT"}',
        "[" * 2000 + "]" * 2000, too_long,
    ]
    async with serving(sqlite_url) as srv, await srv.connect() as ws:
        for text in malformed:
            await ws.ws.send(text)
            assert await ws.recv() == INVALID, text[:80]
        # extra fields are ignored, as serde does
        assert await ws.ask(action="subscribe", channel="trades:BTC/USDT", extra=1) == {
            "type": "subscribed", "channel": "trades:BTC/USDT"}
        await assert_responsive(ws)


async def test_binary_frames_are_ignored(sqlite_url: str) -> None:
    async with serving(sqlite_url) as srv, await srv.connect() as ws:
        await ws.ws.send(json.dumps({"action": "subscribe",
                                     "channel": "trades:BTC/USDT"}).encode())
        await ws.ws.send(b"\x00\xff garbage")
        await assert_responsive(ws)  # the first answer is to the text frame


async def test_oversized_frame_closes_that_connection_only(sqlite_url: str) -> None:
    async with serving(sqlite_url) as srv:
        maker, taker = await srv.user(BTC="1"), await srv.user(USDT="1000")
        async with await srv.connect() as big, await srv.connect() as other:
            await other.subscribe("trades:BTC/USDT")
            await big.subscribe("trades:BTC/USDT")
            await big.ws.send("x" * (64 * 1024 + 1))
            with pytest.raises(ConnectionClosed):
                await big.recv()
            assert big.ws.close_code == 1009
            # the server goes on serving the other client, and new ones
            await srv.order(maker, "sell", "0.01", "100")
            await srv.order(taker, "buy", "0.01", "100")
            trade = await other.event()
            assert (trade["type"], trade["price"]) == ("trade", "100.00")
            async with await srv.connect() as late:
                await assert_responsive(late)
        # a frame of exactly the limit is read (and is merely a malformed message)
        async with await srv.connect() as edge:
            await edge.ws.send("y" * (64 * 1024))
            assert await edge.recv() == INVALID


async def wait_for_count(srv: Server, expected: int) -> None:
    for _ in range(200):
        if srv.services.counters.ws_connections == expected:
            break
        await asyncio.sleep(0.02)
    assert srv.services.counters.ws_connections == expected
    health = (await srv.http.get("/health")).json()
    assert health["ws_connections"] == expected


async def test_ws_connections_counts_open_sockets(sqlite_url: str) -> None:
    async with serving(sqlite_url) as srv:
        await wait_for_count(srv, 0)
        a, b, c = await srv.connect(), await srv.connect(), await srv.connect()
        await wait_for_count(srv, 3)
        await a.ws.close()
        await wait_for_count(srv, 2)
        await b.ws.close(code=4000)
        c.ws.transport.abort()  # a peer that vanishes without a close frame
        await wait_for_count(srv, 0)
        async with await srv.connect():
            await wait_for_count(srv, 1)
        await wait_for_count(srv, 0)


async def test_a_uuid_in_any_form_names_the_same_channel() -> None:
    # unit-sized: the live tests above cover the wiring
    uid = uuid.uuid4()
    for form in (str(uid), str(uid).upper(), uid.hex, f"{{{uid}}}", f" {uid} "):
        assert parse_channel(f"orders:{form}").name == f"orders:{uid}"
