"""Keep-alive (API.md): the server pings every ``ping_interval`` and drops a peer that does
not answer within as long again; a peer that answers stays. Here the interval is 0.5 s."""

from __future__ import annotations

import asyncio
import base64
import os
import time

import pytest

from excentra.http.ws import uvicorn_options
from tests.ws.support import Server, serving

pytestmark = pytest.mark.asyncio

PING = 0x9
CLOSE = 0x8


async def handshake_only(srv: Server) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw TCP client that completes the WebSocket handshake and then says nothing."""
    host, port = srv.base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                 f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                 f"Sec-WebSocket-Version: 13\r\n\r\n".encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


async def frames(reader: asyncio.StreamReader, timeout: float) -> list[tuple[int, bytes]]:
    """The (unmasked) server frames until the server closes the TCP connection."""
    seen: list[tuple[int, bytes]] = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            head = await asyncio.wait_for(reader.readexactly(2),
                                          deadline - time.monotonic())
        except asyncio.IncompleteReadError:
            return seen
        length = head[1] & 0x7F
        assert length < 126  # control frames only here
        seen.append((head[0] & 0x0F, await reader.readexactly(length)))


async def connections(srv: Server) -> tuple[int, int]:
    health = (await srv.http.get("/health")).json()
    return srv.services.counters.ws_connections, health["ws_connections"]


async def test_a_peer_that_never_answers_pings_is_dropped(sqlite_url: str) -> None:
    async with serving(sqlite_url, ping_interval=0.5) as srv:
        async with await srv.connect() as alive:  # answers pings (the library does)
            assert await connections(srv) == (1, 1)
            reader, writer = await handshake_only(srv)
            assert await connections(srv) == (2, 2)
            started = time.monotonic()
            seen = await frames(reader, timeout=5)
            elapsed = time.monotonic() - started
            writer.close()
            assert seen[0][0] == PING
            assert len(seen[0][1]) == 4  # uvicorn's ping payload
            if len(seen) > 1:  # a close frame may precede the TCP close
                assert seen[-1] == (CLOSE, (1011).to_bytes(2, "big") + b"keepalive ping timeout")
            assert 0.9 <= elapsed < 3, elapsed  # one interval to the ping, one to give up
            for _ in range(100):
                if await connections(srv) == (1, 1):
                    break
                await asyncio.sleep(0.02)
            assert await connections(srv) == (1, 1)
            # the client that answers has outlived several pings and still talks
            assert await alive.ask(action="subscribe", channel="trades:BTC/USDT") == {
                "type": "subscribed", "channel": "trades:BTC/USDT"}
        for _ in range(100):
            if await connections(srv) == (0, 0):
                break
            await asyncio.sleep(0.02)
        assert await connections(srv) == (0, 0)


async def test_served_with_twenty_second_pings_and_a_64_kib_frame_limit() -> None:
    # ``excentra serve`` passes these to uvicorn; the live tests above use a short interval
    options = uvicorn_options()
    assert (options["ws_ping_interval"], options["ws_ping_timeout"],
            options["ws_max_size"]) == (20.0, 20.0, 64 * 1024)
