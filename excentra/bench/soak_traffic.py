"""The traffic of ``excentra bench soak``: traders, readers and WebSocket subscribers, all
on this process's event loop, each counting into one ``Tally``.

A trader is one user on one keep-alive connection (``bench.http.Connection``: httpx costs
~1 ms of CPU per request, which on the 2-core machine would take the server's share). It
places limit orders a few ticks either side of a fixed mid price (so about half cross and
trade), cancels its own resting ones (keeping at most ``MAX_RESTING``: the book stays
small), sends market orders, makes small deposits and withdrawals (so conservation has
both directions to check), and reads: the order book, recent trades, the ticker, its
orders and its balances. Subscribers follow the public channels, and the even-numbered
ones also their trader's private channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import statistics
import time
from array import array
from collections import Counter, deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from excentra.bench.http import Connection, token

SYMBOL = "BTC/USDT"
PATH_SYMBOL = SYMBOL.replace("/", "-")
MID = Decimal("100.00")
TICK = Decimal("0.01")
SPREAD_TICKS = 5
"""Limit prices are MID ± up to this many ticks: buys and sells overlap, so orders trade."""
LOT = Decimal("0.0001")
MAX_RESTING = 8
"""Resting orders a trader keeps before it cancels instead of placing."""
PUBLIC_CHANNELS = tuple(f"{c}:{SYMBOL}" for c in ("trades", "orderbook", "ticker"))

# (kind, weight): what a trader does next, drawn at random by weight.
MIX: tuple[tuple[str, int], ...] = (
    ("limit", 40), ("cancel", 18), ("market", 8), ("deposit", 2), ("withdraw", 2),
    ("orderbook", 8), ("trades", 6), ("ticker", 6), ("orders", 5), ("balances", 5))
KINDS = tuple(k for k, _ in MIX)


@dataclass
class Tally:
    """What every client did so far (one event loop: no locks)."""

    ok: Counter[str] = field(default_factory=Counter)
    """2xx answers by kind."""
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    """Every other answer by (kind, status)."""
    samples: dict[tuple[str, int], str] = field(default_factory=dict)
    """The first body of each (kind, status) of ``statuses``: what the error says."""
    transport: Counter[str] = field(default_factory=Counter)
    """Requests with no answer (connection refused, reset, closed mid-response)."""
    latencies: dict[str, array[float]] = field(
        default_factory=lambda: {k: array("d") for k in KINDS})
    """Seconds per answered request, by kind."""
    ws_events: int = 0
    ws_errors: Counter[str] = field(default_factory=Counter)
    """WebSocket trouble: ``error`` replies, closes by the server (by code), failures."""

    @property
    def ops(self) -> int:
        return sum(self.ok.values()) + sum(self.statuses.values())

    @property
    def server_errors(self) -> int:
        return sum(n for (_, status), n in self.statuses.items() if status >= 500)


def cuts(values: array[float]) -> tuple[float, float]:
    """(p50, p99) in milliseconds; NaN with fewer than two values."""
    if len(values) < 2:
        return float("nan"), float("nan")
    q = statistics.quantiles(sorted(values), n=100, method="inclusive")
    return q[49] * 1e3, q[98] * 1e3


def request(method: str, path: str, host: str, auth: str, body: Any = None) -> bytes:
    """One raw HTTP/1.1 request (keep-alive) with the user's bearer token."""
    data = b"" if body is None else json.dumps(body).encode()
    head = (f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {auth}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n")
    return head.encode() + data


class Trader:
    """One user's loop of mixed requests until ``stop`` is set."""

    def __init__(self, base: str, user: str, seed: int, tally: Tally) -> None:
        self.base, self.host = base, base.removeprefix("http://")
        self.auth = token(user)
        self.rng = random.Random(seed)  # noqa: S311 (a workload, not a secret)
        self.tally = tally
        self.resting: deque[tuple[str, str, Decimal]] = deque()
        """(order id, side, price) of its orders that rested, oldest first (some may have
        been filled since: a cancel then gets 400)."""
        self.conn: Connection | None = None

    async def run(self, stop: asyncio.Event) -> None:
        kinds, weights = zip(*MIX, strict=True)
        try:
            while not stop.is_set():
                kind = self.rng.choices(kinds, weights)[0]
                if kind == "limit" and len(self.resting) >= MAX_RESTING:
                    kind = "cancel"
                await self._one(kind)
        finally:
            if self.conn is not None:
                self.conn.close()

    async def _one(self, kind: str) -> None:
        kind, method, path, body = self._what(kind)
        if method == "":
            return
        if self.conn is None:
            try:
                self.conn = await Connection.open(self.base)
            except OSError:
                self.tally.transport[kind] += 1
                await asyncio.sleep(0.1)  # the server is gone or refusing: do not spin
                return
        raw = request(method, path, self.host, self.auth, body)
        started = time.perf_counter()
        try:
            status, answer = await self.conn.request(raw)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            self.tally.transport[kind] += 1
            self.conn.close()
            self.conn = None
            return
        if 200 <= status < 300:
            self.tally.ok[kind] += 1
            self.tally.latencies[kind].append(time.perf_counter() - started)
            if kind == "limit":
                placed = json.loads(answer)
                if placed["status"] in ("open", "partially_filled"):
                    self.resting.append((placed["order_id"], body["side"],
                                         Decimal(body["price"])))
        else:
            self.tally.statuses[(kind, status)] += 1
            self.tally.samples.setdefault((kind, status), answer[:200].decode(errors="replace"))

    def _what(self, kind: str) -> tuple[str, str, str, Any]:
        """(kind, method, path, body) of the next request; method "" for none. A limit
        order that would cross the trader's own resting one (refused: 400) becomes the
        cancel of that one."""
        rng, api = self.rng, "/api/v1"
        side = rng.choice(("buy", "sell"))
        if kind == "limit":
            price = MID + TICK * rng.randint(-SPREAD_TICKS, SPREAD_TICKS)
            mine = next((r for r in self.resting if r[1] != side and (
                r[2] <= price if side == "buy" else r[2] >= price)), None)
            if mine is None:
                return kind, "POST", f"{api}/orders", {
                    "symbol": SYMBOL, "side": side, "order_type": "limit",
                    "price": str(price), "quantity": str(LOT * rng.randint(1, 5))}
            self.resting.remove(mine)
            return "cancel", "DELETE", f"{api}/orders/{mine[0]}", None
        if kind == "cancel":
            if not self.resting:
                return kind, "", "", None
            return kind, "DELETE", f"{api}/orders/{self.resting.popleft()[0]}", None
        if kind == "market":  # a market buy's quantity is its quote budget
            quantity = MID * LOT * 2 if side == "buy" else LOT * 2
            return kind, "POST", f"{api}/orders", {
                "symbol": SYMBOL, "side": side, "order_type": "market",
                "quantity": str(quantity)}
        if kind in ("deposit", "withdraw"):
            asset = rng.choice(("USDT", "BTC"))
            amount = {"USDT": ("5", "1"), "BTC": ("0.005", "0.001")}[asset][kind == "withdraw"]
            return kind, "POST", f"{api}/balances/{kind}", {"asset": asset, "amount": amount}
        return kind, "GET", {
            "orderbook": f"{api}/orderbook/{PATH_SYMBOL}?levels=20",
            "trades": f"{api}/trades/{PATH_SYMBOL}?limit=50",
            "ticker": f"{api}/ticker/{PATH_SYMBOL}",
            "orders": f"{api}/orders?limit=20",
            "balances": f"{api}/balances"}[kind], None


async def subscriber(ws_url: str, user: str | None, tally: Tally, stop: asyncio.Event) -> None:
    """Follow the public channels (and ``user``'s private one) until ``stop``; reconnect
    after a close, counting it."""
    channels = [*PUBLIC_CHANNELS, *([f"orders:{user}"] if user else [])]
    while not stop.is_set():
        try:
            async with connect(ws_url, compression=None, open_timeout=30,
                               close_timeout=2) as ws:
                if user is not None:
                    await ws.send(json.dumps({"action": "auth", "token": token(user)}))
                for channel in channels:
                    await ws.send(json.dumps({"action": "subscribe", "channel": channel}))
                await _receive(ws, tally, stop)
                if stop.is_set():
                    return
                tally.ws_errors[f"closed {ws.close_code}"] += 1
        except (OSError, TimeoutError, WebSocketException) as exc:
            if stop.is_set():
                return
            tally.ws_errors[type(exc).__name__] += 1
        with contextlib.suppress(TimeoutError):  # pause before reconnecting
            await asyncio.wait_for(stop.wait(), 1.0)


async def _receive(ws: Any, tally: Tally, stop: asyncio.Event) -> None:
    """Count events until the connection closes or ``stop`` is set."""
    stopping = asyncio.ensure_future(stop.wait())
    try:
        while True:
            receiving = asyncio.ensure_future(ws.recv())
            done, _ = await asyncio.wait({receiving, stopping},
                                         return_when=asyncio.FIRST_COMPLETED)
            if receiving not in done:
                receiving.cancel()
                return
            try:
                message = json.loads(receiving.result())
            except WebSocketException:
                return  # closed: the caller counts it
            if message.get("type") == "event":
                tally.ws_events += 1
            elif message.get("type") == "error":
                tally.ws_errors[f"error: {message.get('message')}"] += 1
    finally:
        stopping.cancel()
