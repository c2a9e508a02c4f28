"""``excentra demo <name>``: short, narrated runs of parts of the exchange.

``engine``: a few users trade BTC/USDT on one order book; every event is printed, then the
book. It needs nothing but the package (no database, no network).

``supervisor``: the actor core on a fresh SQLite database (or ``DATABASE_URL``): orders
flow, a fault kills the BTC/USDT book actor mid-flow, the supervisor rebuilds the core
from the database, and the demo shows the book intact and every acknowledged order there.

``chain``: deposits, trading and withdrawals on an in-process Ethereum chain (see
``excentra.demo_chain``).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import tempfile
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from excentra.actors.book import InjectFault
from excentra.actors.bridge import Rejected
from excentra.db.audit import audit
from excentra.db.state import open_levels
from excentra.db.users import create_user
from excentra.engine import (
    Event,
    LevelChanged,
    OrderAccepted,
    OrderBook,
    OrderRejected,
    OrderType,
    OrderUpdated,
    PairSpec,
    Side,
    StpMode,
    TimeInForce,
    TradeExecuted,
)
from excentra.exchange import Exchange

log = logging.getLogger("excentra.demo")


def describe(spec: PairSpec, event: Event) -> str:
    """One line per event, in the units a trader reads."""
    px, qty = spec.price, spec.quantity
    match event:
        case OrderAccepted(order_id=oid, side=side, order_type=kind, price=p, quantity=q,
                           budget=b):
            size = f"{qty(q)}" if b is None else f"budget {spec.quote_amount(b)}"
            at = "" if p is None else f" @ {px(p)}"
            return f"accepted  {oid}: {kind} {side} {size}{at}"
        case TradeExecuted(maker_order_id=m, taker_order_id=t, price=p, quantity=q, quote=v):
            return f"trade     {t} took {qty(q)} from {m} @ {px(p)} = {spec.quote_amount(v)}"
        case OrderUpdated(order_id=oid, status=status, filled=f, remaining=r, reason=why):
            tail = f" ({why})" if why else ""
            return f"status    {oid}: {status} filled {qty(f)} open {qty(r)}{tail}"
        case LevelChanged(seq=seq, side=side, price=p, quantity=q, orders=n):
            return f"level     #{seq} {side} {px(p)}: {qty(q)} in {n} order(s)"
        case OrderRejected(order_id=oid, code=code):
            return f"rejected  {oid}: {code}"
    raise AssertionError(event)


def engine_demo() -> None:
    spec = PairSpec.derive("BTC/USDT", base_decimals=8, quote_decimals=6)
    book = OrderBook(spec)
    d = Decimal
    script: list[tuple[str, Callable[[], list[Event]]]] = [
        ("alice rests two asks", lambda: book.place_limit("a1", "alice", Side.SELL,
                                                          d("50000"), d("0.5"))),
        ("", lambda: book.place_limit("a2", "alice", Side.SELL, d("50010"), d("1"))),
        ("bob bids below the ask", lambda: book.place_limit("b1", "bob", Side.BUY,
                                                            d("49990"), d("0.3"))),
        ("carol buys through two levels (price improvement: she pays the makers' prices)",
         lambda: book.place_limit("c1", "carol", Side.BUY, d("50020"), d("0.8"))),
        ("dave spends a 10,000 USDT budget at market",
         lambda: book.place_market("d1", "dave", Side.BUY, budget=d("10000"))),
        ("alice sells into her own bid? self-trade prevention expires the maker",
         lambda: book.place_limit("a3", "alice", Side.BUY, d("49995"), d("0.1"))),
        ("", lambda: book.place_limit("a4", "alice", Side.SELL, d("49990"), d("0.2"),
                                      TimeInForce.IOC, stp=StpMode.EXPIRE_MAKER)),
        ("an off-tick price is rejected", lambda: book.place_limit(
            "e1", "erin", Side.BUY, d("49990.005"), d("1"))),
        ("bob cancels", lambda: book.cancel("b1", "bob")),
    ]
    for title, step in script:
        if title:
            print(f"\n## {title}")
        for event in step():
            print("  " + describe(spec, event))
    snap = book.snapshot()
    print(f"\nbook after seq {snap.seq}:")
    for level in reversed(snap.asks):
        print(f"  ask {spec.price(level.price):>10}  {spec.quantity(level.quantity)}")
    for level in snap.bids:
        print(f"  bid {spec.price(level.price):>10}  {spec.quantity(level.quantity)}")
    book.validate()
    log.info("engine demo done", extra={"seq": book.seq, "state_hash": book.state_hash()})


def supervisor_demo() -> None:
    asyncio.run(_supervisor_demo())


async def _supervisor_demo() -> None:
    with tempfile.TemporaryDirectory(prefix="excentra-demo-") as tmp:
        url = os.environ.get("DATABASE_URL") or f"sqlite:///{tmp}/demo.db"
        exchange = Exchange(url)
        await exchange.start()
        try:
            await _run_fault(exchange)
        finally:
            await exchange.stop()


def _levels(side: list[dict[str, str]]) -> list[tuple[Decimal, Decimal]]:
    """Snapshot levels as numbers (stored prices keep the scale they were given in)."""
    return [(Decimal(lv["price"]), Decimal(lv["quantity"])) for lv in side]


def _snapshot(outcome: dict[str, Any] | Rejected) -> dict[str, Any]:
    if isinstance(outcome, Rejected):
        raise SystemExit(f"snapshot refused: {outcome.code}")
    return outcome


async def _run_fault(exchange: Exchange) -> None:
    d, sv = Decimal, exchange.supervisor
    assert sv is not None
    rejected, fault = Rejected, InjectFault
    users = [str(await create_user(exchange.db, f"trader{i}@demo.test")) for i in range(4)]
    for u in users:
        await exchange.deposit(u, "USDT", d("1000000"))
        await exchange.deposit(u, "BTC", d("10"))
        await exchange.deposit(u, "ETH", d("100"))

    async def order(i: int) -> Any:
        side = Side.BUY if i % 2 else Side.SELL
        price = d(50000 + (-(i % 7) if side is Side.BUY else i % 7 + 1))
        return await exchange.place_order(users[i % 4], "BTC/USDT", side, OrderType.LIMIT,
                                          price=price, quantity=d("0.01"),
                                          client_order_id=f"demo-{i}")

    acked = [r for r in await asyncio.gather(*(order(i) for i in range(40)))
             if not isinstance(r, rejected)]
    before = _snapshot(await exchange.snapshot("BTC/USDT"))
    print(f"placed {len(acked)} orders; book seq {before['seq']}, "
          f"state {before['state_hash'][:16]}…")
    print("injecting a fault into the BTC/USDT book actor while 20 more orders are in flight")
    in_flight = [asyncio.ensure_future(order(i)) for i in range(40, 60)]

    async def eth_order(i: int) -> Any:  # another pair, trading on through the fault
        side = Side.BUY if i % 2 else Side.SELL
        price = d(3000 + (-(i % 5) if side is Side.BUY else i % 5 + 1))
        return await exchange.place_order(users[i % 4], "ETH/USDT", side, OrderType.LIMIT,
                                          price=price, quantity=d("0.1"))

    other_pair = [asyncio.ensure_future(eth_order(i)) for i in range(40)]
    # let a few of them complete first, so the fault hits mid-flow
    await asyncio.wait(in_flight[:3], return_when=asyncio.ALL_COMPLETED)
    assert sv.actors is not None
    sv.actors.books["BTC/USDT"].tell(fault("demo: simulated bug in the book actor"))
    outcomes = await asyncio.gather(*in_flight)
    eth = await asyncio.gather(*other_pair)
    while sv.book_recoveries == 0:
        await asyncio.sleep(0.05)
    failed = sum(isinstance(r, rejected) for r in outcomes)
    print(f"in-flight orders: {len(outcomes) - failed} acknowledged, {failed} answered "
          f"503 (not executed; safe to retry)")
    acked += [r for r in outcomes if not isinstance(r, rejected)]
    eth_refused = sum(isinstance(r, rejected) for r in eth)
    print(f"ETH/USDT meanwhile (its own book actor): {len(eth) - eth_refused} of {len(eth)} "
          f"orders acknowledged, {eth_refused} refused")
    after = _snapshot(await exchange.snapshot("BTC/USDT", depth=1000))
    stored = await open_levels(exchange.db, "BTC/USDT")
    intact = stored == {"bids": _levels(after["bids"]), "asks": _levels(after["asks"])}
    print(f"supervisor rebuilt the BTC/USDT book alone ({sv.book_recoveries} book "
          f"recovery, {sv.recoveries} whole-core); book seq {after['seq']}, "
          f"state {after['state_hash'][:16]}…; equals the open orders in the database: "
          f"{intact}")
    ids = {r["order_id"] for r in acked}
    rows = await exchange.db.fetch_all("SELECT id FROM orders")
    missing = ids - {str(r["id"]) for r in rows}
    print(f"acknowledged orders missing from the database: {len(missing)}")
    retried = await asyncio.gather(*(order(i) for i in range(40, 60)))
    rows = await exchange.db.fetch_all(
        "SELECT client_order_id FROM orders WHERE client_order_id IS NOT NULL")
    twice = len(rows) - len({r["client_order_id"] for r in rows})
    print(f"retried the 20 in-flight orders with the same client_order_id: "
          f"{sum(not isinstance(r, rejected) for r in retried)} acknowledged; "
          f"orders placed twice: {twice}")
    problems = await audit(exchange.db)
    print("ledger audit:", problems if problems else "balanced")
    if missing or problems or twice or not intact or eth_refused or sv.recoveries:
        raise SystemExit("supervisor demo: something acknowledged was lost")


def chain_demo() -> None:
    from excentra.demo_chain import chain_demo as run  # noqa: PLC0415 (loads py-evm)

    run()


DEMOS = {"engine": engine_demo, "supervisor": supervisor_demo, "chain": chain_demo}


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="excentra demo", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name", choices=sorted(DEMOS))
    DEMOS[ap.parse_args(argv).name]()
