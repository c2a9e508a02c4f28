"""The subscribers of ``excentra bench ws``: client processes, each an asyncio loop with
its share of the WebSocket connections, reporting counts, ``seq`` gaps, trade latencies
and their own CPU time back to the bench through a pipe.

Protocol with the bench (pickled tuples): the process sends ``("ready", subscribed,
errors)`` once every connection is subscribed (or failed); then receives ``("go",)`` when
the order flow starts and ``("drain", orders, trades, deadline)`` when it ended, waits
until each open connection has every event (or the deadline), and sends ``("stats",
{...})``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import time
from array import array
from datetime import datetime
from multiprocessing.connection import Connection as Pipe
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

SYMBOL = "BTC/USDT"
CHANNELS = (f"trades:{SYMBOL}", f"orderbook:{SYMBOL}")
ACKS = len(CHANNELS) + 1
"""Messages that make a subscriber ready: one ``subscribed`` per channel + the snapshot."""
TOO_SLOW = 1008
CONNECTING = 50
"""Connections a client process opens at once."""


class Subscriber:
    """One WebSocket connection: counts events, checks ``seq``, times trades."""

    def __init__(self, latencies: array[float], arrivals: dict[str, list[float]]) -> None:
        self.latencies = latencies
        self.arrivals = arrivals
        """Per trade (its ``created_at``): this process's first and last receipt."""
        self.acks = 0
        self.seq = -1
        self.book = self.trades = self.gaps = 0
        self.close_code: int | None = None
        self.error: str | None = None
        self.last = 0.0

    async def run(self, url: str, gate: asyncio.Semaphore, library: bool) -> None:
        try:
            await (self._library(url, gate) if library else self._raw(url, gate))
        except Exception as exc:  # a failed connection is reported, not raised
            self.error = repr(exc)
        finally:
            if self.close_code is None:
                self.close_code = -1

    async def _raw(self, url: str, gate: asyncio.Semaphore) -> None:
        async with gate:
            host, port = urlsplit(url).netloc.split(":")
            _, reader = await asyncio.get_running_loop().create_connection(
                lambda: Reader(self, url), host, int(port))
        await reader.done

    async def _library(self, url: str, gate: asyncio.Semaphore) -> None:
        async with gate:
            ws: ClientConnection = await connect(url, compression=None, ping_interval=None,
                                                 open_timeout=60, close_timeout=2)
            for text in subscriptions():
                await ws.send(text)
        try:
            async for message in ws:
                self.on_message(message)
        except ConnectionClosed:
            pass
        self.close_code = ws.close_code

    def on_message(self, text: str | bytes) -> None:
        now = time.time()
        msg = json.loads(text)
        if msg["type"] != "event":
            self.acks += msg["type"] == "subscribed"
            if msg["type"] == "error":
                self.error = str(msg)
            return
        data = msg["data"]
        if data["type"] == "trade":
            self.trades += 1
            stamp = data["created_at"]
            self.latencies.append(now - datetime.fromisoformat(stamp).timestamp())
            seen = self.arrivals.get(stamp)
            if seen is None:
                self.arrivals[stamp] = [now, now]
            else:  # one loop: receipts come in time order
                seen[1] = now
        elif data["type"] == "order_book":
            seq = data["seq"]
            if self.acks < ACKS:  # the snapshot sent on subscribe
                self.acks += 1
            else:
                self.book += 1
                self.gaps += seq != self.seq + 1
            self.seq = seq
        self.last = now

    @property
    def ready(self) -> bool:
        return self.acks >= ACKS

    @property
    def closed(self) -> bool:
        return self.close_code is not None


def subscriptions() -> list[str]:
    return [json.dumps({"action": "subscribe", "channel": c}) for c in CHANNELS]


class Reader(asyncio.Protocol):
    """A minimal WebSocket client (RFC 6455) for one subscriber: the server's frames are
    unmasked and never fragmented, so reading one is a few slices. With the ``websockets``
    client, its per-message machinery took more CPU than the server's sending (see
    bench/RESULTS.md), and the bench measured the clients."""

    def __init__(self, sub: Subscriber, url: str) -> None:
        self.sub, self.url = sub, urlsplit(url)
        self.buffer = bytearray()
        self.open = False
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(f"GET {self.url.path} HTTP/1.1\r\nHost: {self.url.netloc}\r\n"
                        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: "
                        f"{key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        if not self.open:  # the 101 answer; subscribe only after it (as any client does)
            head = buf.find(b"\r\n\r\n")
            if head < 0:
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                self.sub.error = f"handshake refused: {bytes(buf[:40])!r}"
                self.transport.close()
                return
            del buf[:head + 4]
            self.open = True
            self.transport.write(b"".join(frame(0x1, t.encode()) for t in subscriptions()))
        pos, end = 0, len(buf)
        while end - pos >= 2:  # whole frames only; a partial one waits for more data
            size, start = buf[pos + 1] & 0x7F, pos + 2
            if size >= 126:  # a 16- or 64-bit length; a partial header puts start past end
                start = pos + (4 if size == 126 else 10)
                size = int.from_bytes(buf[pos + 2:start], "big")
            if start + size > end:
                break
            opcode, pos = buf[pos] & 0x0F, start + size
            if opcode == 0x1:
                self.sub.on_message(buf[start:pos].decode())
            elif opcode == 0x9:
                self.transport.write(frame(0xA, bytes(buf[start:pos])))
            elif opcode == 0x8:
                self.sub.close_code = int.from_bytes(buf[start:start + 2], "big") or 1005
                self.transport.close()
        del buf[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


def frame(opcode: int, payload: bytes) -> bytes:
    """A client's frame: final, masked (RFC 6455 §5.3), payload < 64 KiB."""
    mask = os.urandom(4)
    size = bytes([0x80 | len(payload)]) if len(payload) < 126 else (
        bytes([0x80 | 126]) + len(payload).to_bytes(2, "big"))
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode]) + size + mask + masked


def client_process(pipe: Pipe, url: str, count: int, library: bool) -> None:
    """A client process's entry point (spawned): ``count`` subscribers on one loop."""
    with contextlib.suppress(EOFError, BrokenPipeError):  # the bench ended early: go too
        asyncio.run(_clients(pipe, url, count, library))


async def _clients(pipe: Pipe, url: str, count: int, library: bool) -> None:
    latencies: array[float] = array("d")
    arrivals: dict[str, list[float]] = {}
    subs = [Subscriber(latencies, arrivals) for _ in range(count)]
    gate = asyncio.Semaphore(CONNECTING)
    running = [asyncio.create_task(s.run(url, gate, library)) for s in subs]
    while not all(s.ready or s.closed for s in subs):
        await asyncio.sleep(0.05)
    errors = [s.error for s in subs if s.error][:3]
    pipe.send(("ready", sum(s.ready and not s.closed for s in subs), errors))
    await asyncio.to_thread(pipe.recv)  # "go"
    cpu = time.process_time()
    _, books, trades, deadline = await asyncio.to_thread(pipe.recv)  # "drain"
    while time.time() < deadline and not all(
            s.closed or (s.book >= books and s.trades >= trades) for s in subs):
        await asyncio.sleep(0.05)
    cpu = time.process_time() - cpu
    live = [s for s in subs if s.ready and not s.closed]
    pipe.send(("stats", {
        "delivered": sum(s.book + s.trades for s in subs),
        "slow_closed": sum(s.close_code == TOO_SLOW for s in subs),
        "other_closed": sum(s.closed and s.close_code != TOO_SLOW for s in subs),
        "missing": sum(max(books - s.book, 0) + max(trades - s.trades, 0) for s in live),
        "gaps": sum(s.gaps for s in subs),
        "last": max((s.last for s in subs), default=0.0),
        "cpu": cpu, "latencies": latencies.tobytes(), "arrivals": arrivals}))
    for task in running:  # the process ends here; the OS closes the sockets
        task.cancel()
