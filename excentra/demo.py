"""``excentra demo <name>``: short, narrated runs of parts of the exchange.

``engine``: a few users trade BTC/USDT on one order book; every event is printed, then the
book. It needs nothing but the package (no database, no network).
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from decimal import Decimal

from excentra.engine import (
    Event,
    LevelChanged,
    OrderAccepted,
    OrderBook,
    OrderRejected,
    OrderUpdated,
    PairSpec,
    Side,
    StpMode,
    TimeInForce,
    TradeExecuted,
)

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


DEMOS = {"engine": engine_demo}


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="excentra demo", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name", choices=sorted(DEMOS))
    DEMOS[ap.parse_args(argv).name]()
