"""Read-your-writes over real sockets, on both databases: ``excentra serve`` with its
projector running, and concurrent clients (one HTTP connection pool each) that read right
after every write they got an answer to.

The tables the reads query are written by the projector after the acknowledgement, so
each read is a race the server must win by waiting (``excentra.actors.watermarks``):

* after a placement's 200, the placer's ``GET /orders`` lists the order with the
  acknowledged status or a later one, its ``GET /balances`` shows exactly the funds the
  client's own bookkeeping says it has left, and its ``GET /trades/me`` has every trade
  the placement's answer listed;
* after a taker's 200, the makers whose resting orders the taker must have consumed read
  those orders filled (the trades that filled them were logged before the answer; the
  makers' reads begin after it).

Any read that shows less is a stale read; the test counts them (zero allowed) and every
5xx (none allowed). How long reads took, and the server's own count of reads that
waited, are printed, never asserted. Prices and sizes are random, seeded (printed;
``EXCENTRA_RYW_SEED`` replays them).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from excentra.db import Database
from excentra.db.audit import audit
from tests.e2e.test_crash import _LATER
from tests.e2e.test_serve import _wait_healthy, child_env, free_port, ok, start_serve

D = Decimal
pytestmark = [pytest.mark.slow, pytest.mark.asyncio]
SEED = int(os.environ.get("EXCENTRA_RYW_SEED") or random.SystemRandom().randrange(10**9))
SYMBOL = "BTC/USDT"
CLIENTS = 12
"""Half buy, half sell: nobody crosses their own orders; every trade is between two."""
ROUNDS = 12
LOT = D("0.001")
SWEEPS = 0.25
"""The share of placements that take every crossing level and rest: their makers' orders
are all filled by them (``_must_be_filled``)."""
OPEN = ("open", "partially_filled")


@dataclass(frozen=True)
class Resting:
    """An order the book held when its placement was answered."""

    order_id: str
    side: str
    price: Decimal
    maker: dict[str, str]
    """the maker's auth headers"""


@dataclass
class Run:
    """What the clients saw, shared by all of them (one event loop: no locks)."""

    resting: dict[str, Resting] = field(default_factory=dict)
    statuses: Counter[int] = field(default_factory=Counter)
    reads: Counter[str] = field(default_factory=Counter)
    stale: list[str] = field(default_factory=list)
    took: list[float] = field(default_factory=list)
    trades: int = 0

    async def read(self, c: httpx.AsyncClient, kind: str, url: str,
                   headers: dict[str, str], **params: Any) -> Any:
        """A timed GET; its JSON body (``None`` when not 200)."""
        started = time.perf_counter()
        r = await c.get(url, headers=headers, params=params)
        self.took.append(time.perf_counter() - started)
        self.statuses[r.status_code] += 1
        self.reads[kind] += 1
        return r.json() if r.status_code == 200 else None


@dataclass
class Client:
    """One trader on its own connections, keeping its own books: the available balance
    of the asset it pays with (buyers USDT, sellers BTC) moves only by its own commands
    (makers' fills are paid from what the order held), so it is known exactly."""

    index: int
    http: httpx.AsyncClient
    headers: dict[str, str]
    side: str
    pays: str
    available: Decimal = field(default_factory=Decimal)
    taken: Counter[tuple[str, Decimal, Decimal]] = field(default_factory=Counter)
    """(side, price, quantity) of every trade this client's placements answered"""


async def _client(base_url: str, index: int) -> Client:
    http = httpx.AsyncClient(base_url=base_url, timeout=30)
    token = (await ok(await http.post("/api/v1/auth/register", json={
        "email": f"ryw{index}-{uuid.uuid4().hex[:6]}@example.com",
        "password": "password123"}), 201))["access_token"]
    side = "buy" if index % 2 else "sell"
    c = Client(index, http, {"Authorization": f"Bearer {token}"}, side,
               "USDT" if side == "buy" else "BTC")
    funded = await ok(await http.post("/api/v1/balances/deposit", headers=c.headers,
                                      json={"asset": c.pays, "amount": "1000"}))
    c.available = D(funded["available"])
    return c


def _must_be_filled(c: Client, price: Decimal, answer: dict[str, Any],
                    before: list[Resting]) -> list[Resting]:
    """The resting orders of the other side, on the book before this placement, that it
    proves consumed: all those crossing its price if it came to rest (nothing crossing
    was left), else those strictly better than its worst trade (levels are taken whole,
    best first)."""
    sign = 1 if c.side == "buy" else -1  # better for the taker: lower asks, higher bids
    if answer["status"] in OPEN:
        bound, inclusive = price, True
    elif answer["trades"]:
        prices = [D(t["price"]) for t in answer["trades"]]
        bound, inclusive = (max(prices) if c.side == "buy" else min(prices)), False
    else:
        return []
    return [r for r in before if r.side != c.side
            and (sign * r.price < sign * bound or (inclusive and r.price == bound))]


async def _trade(c: Client, rng: random.Random, run: Run) -> None:
    for n in range(ROUNDS):
        if rng.random() < SWEEPS:  # through every level the other side may rest at
            price, quantity = D(103 if c.side == "buy" else 97), LOT * 10
        else:
            price = D(100 + rng.randrange(-3, 3) + (1 if c.side == "sell" else 0))
            quantity = LOT * rng.randint(1, 3)
        before = list(run.resting.values())
        r = await c.http.post("/api/v1/orders", headers=c.headers, json={
            "symbol": SYMBOL, "side": c.side, "order_type": "limit", "price": str(price),
            "quantity": str(quantity), "client_order_id": f"r{c.index}-{n}"})
        run.statuses[r.status_code] += 1
        assert r.status_code == 200, r.text
        answer = r.json()
        order_id, trades = answer["order_id"], answer["trades"]
        run.trades += len(trades)
        c.taken.update((c.side, D(t["price"]), D(t["quantity"])) for t in trades)
        if c.side == "buy":  # holds price × remainder, pays each trade at its price
            rest = D(answer["remaining_quantity"]) if answer["status"] in OPEN else D(0)
            c.available -= price * rest + sum(
                (D(t["price"]) * D(t["quantity"]) for t in trades), D(0))
        else:  # holds the whole quantity, fills are paid from the hold
            c.available -= quantity
        if answer["status"] in OPEN:
            run.resting[order_id] = Resting(order_id, c.side, price, c.headers)
        # Right after the answer, on the connection that carried it (a new one would
        # give the projection time): each read races it, a different one first each round.
        filled = _must_be_filled(c, price, answer, before)
        checks = [_check_orders, _check_balances, _check_trades, _check_makers]
        for check in checks[n % 4:] + checks[:n % 4]:
            await check(c, run, answer, filled)


async def _check_orders(c: Client, run: Run, answer: dict[str, Any], _: object) -> None:
    """The placer's orders show the placement, as answered or later."""
    orders = await run.read(c.http, "orders", "/api/v1/orders", c.headers, limit=1000)
    if orders is not None:
        assert orders["total"] <= 1000  # the page holds them all
        listed = {o["id"]: o for o in orders["data"]}.get(answer["order_id"])
        if (listed is None or listed["status"] not in _LATER[answer["status"]]
                or D(listed["filled_quantity"]) < D(answer["filled_quantity"])):
            run.stale.append(f"orders: {listed} after {answer}")


async def _check_balances(c: Client, run: Run, answer: dict[str, Any], _: object) -> None:
    """The placer's balance is what its own bookkeeping says after the placement."""
    balances = await run.read(c.http, "balances", "/api/v1/balances", c.headers)
    if balances is not None:
        shown = {b["asset"]: D(b["available"]) for b in balances}.get(c.pays)
        if shown != c.available:
            run.stale.append(f"balances: {c.pays} available {shown}, expected "
                             f"{c.available} after {answer}")


async def _check_trades(c: Client, run: Run, answer: dict[str, Any], _: object) -> None:
    """The placer's trades include every trade its placements were answered with."""
    trades = await run.read(c.http, "trades", "/api/v1/trades/me", c.headers, limit=1000)
    if trades is not None:
        assert trades["total"] <= 1000
        mine = Counter((t["side"], D(t["price"]), D(t["quantity"])) for t in trades["data"])
        if mine & c.taken != c.taken:  # a maker's fills may add to these, never take away
            run.stale.append(f"trades/me lacks {c.taken - mine} after {answer}")


async def _check_makers(c: Client, run: Run, answer: dict[str, Any],
                        filled: list[Resting]) -> None:
    """The makers whose orders the placement consumed read them filled."""
    for resting in filled:
        order = await run.read(c.http, "maker order", f"/api/v1/orders/{resting.order_id}",
                               resting.maker)
        if order is not None and order["status"] != "filled":
            run.stale.append(f"maker's order {resting.order_id} at {resting.price} reads "
                             f"{order['status']} after {answer}")
        run.resting.pop(resting.order_id, None)


def _metric(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


async def test_every_read_after_an_answer_shows_the_answered_write(
        database_url: str, tmp_path: Path) -> None:
    print(f"read-your-writes seed={SEED} (EXCENTRA_RYW_SEED replays it)")
    rng = random.Random(SEED)
    env = {**child_env(database_url), "RATE_LIMITS": "off", "DEPOSIT_LIMITS": "none"}
    server = start_serve(env, tmp_path, free_port(), 0)
    clients: list[Client] = []
    try:
        await _wait_healthy(server)
        clients = list(await asyncio.gather(*(_client(server.base_url, i)
                                              for i in range(CLIENTS))))
        run = Run()
        await asyncio.gather(*(_trade(c, random.Random(rng.random()), run)
                               for c in clients))

        took = sorted(run.took)
        print(f"reads: {dict(run.reads)}, p50 {took[len(took) // 2] * 1000:.1f} ms, "
              f"p99 {took[int(len(took) * 0.99)] * 1000:.1f} ms; trades {run.trades}")
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as c:
            metrics = (await c.get("/metrics")).text
        print(f"server: excentra_read_waits {_metric(metrics, 'excentra_read_waits_total')}, "
              f"excentra_read_wait_p99_seconds "
              f"{_metric(metrics, 'excentra_read_wait_p99_seconds')}")

        assert run.stale == [], f"{len(run.stale)} stale reads: {run.stale[:5]}"
        assert set(run.statuses) == {200}, run.statuses  # no 5xx, nor any other refusal
        # Not vacuous: trades happened, and makers read the orders they filled.
        assert run.trades >= CLIENTS, run.trades
        assert run.reads["maker order"] >= CLIENTS, run.reads
        async with Database(database_url) as db:
            assert await audit(db) == []
    finally:
        for client in clients:
            await client.http.aclose()
        if server.process.poll() is None:
            server.process.send_signal(signal.SIGTERM)
            server.process.wait(15)
