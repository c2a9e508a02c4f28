"""The engine benchmark's order flow: a seeded generator and its CSV format.

One pair quoted around 50,000.00 (prices with 2 decimals, quantities with 4), by default
200,000 operations: 60 % limit orders, 10 % market orders, 30 % cancels. Every order
belongs to a different user, so self-trade prevention never triggers. The same seed and
options give the same bytes: every choice comes from ``random.Random(seed).random()``
(the Mersenne Twister, whose stream Python keeps stable across versions).

Format, one operation a line (lines starting with ``#`` or ``op,`` are headers):

* ``L,<new id>,B|S,<price>,<qty>``: a limit order, good till cancelled;
* ``M,<new id>,B|S,,<qty>``: a market order sized in base quantity, its unfilled rest
  dropped (immediate or cancel);
* ``C,<id>,,,``: cancel that order; a no-op if it is unknown or already finished.

New ids are 1, 2, 3 … in file order. A cancel picks uniformly among the orders resting
at that moment (the generator replays its own flow through the baseline book, on integer
ticks, to know which). Most limit orders rest away from the middle (an exponential
distance, mean 15.00); a quarter of them cross it by up to 5.00 and trade. The middle
wanders by a cent at a time. With the defaults: about 70,500 trades and a book of about
10,000 orders on 5,500 levels at the end, close to the flow other engines are often
measured with, so that ratios to the baseline stay comparable.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Container
from dataclasses import dataclass
from decimal import Decimal

from excentra.bench.baseline import Book

LIMIT, MARKET, CANCEL = 0, 1, 2
"""The operation kinds of a parsed row."""

Row = tuple[int, int, bool, Decimal | None, Decimal | None]
"""A parsed operation: kind, order id, is a buy, price (limits), quantity (not cancels)."""

HEADER = "op,id,side,price,qty\n"


@dataclass(frozen=True, slots=True)
class Flow:
    """The shape of the generated order flow (all prices in cents, quantities in 1e-4)."""

    n: int = 200_000
    """Operations in the file."""
    seed: int = 42
    """The generator's seed."""
    limit_share: float = 0.60
    """Share of limit orders."""
    market_share: float = 0.10
    """Share of market orders; the rest are cancels."""
    start_cents: int = 5_000_000
    """Where the middle starts: 50,000.00."""
    step_cents: int = 1
    """The middle moves by this much up, down or not at all before each operation."""
    passive_mean_cents: int = 1_500
    """Mean distance of a resting limit order from the middle."""
    crossing_share: float = 0.25
    """Share of limit orders priced through the middle (they trade)."""
    crossing_max_cents: int = 500
    """How far through the middle a crossing order may go."""
    max_limit_lots: int = 2_500
    """Largest limit order: 0.2500."""
    max_market_lots: int = 1_000
    """Largest market order: 0.1000."""


def generate(flow: Flow = Flow()) -> str:
    """The workload as CSV text (deterministic in ``flow``)."""
    rng = random.Random(flow.seed)  # noqa: S311 (a reproducible flow, not a secret)
    draw = rng.random
    book = Book()  # on integer ticks: which orders still rest, for the cancels to aim at
    mid = flow.start_cents
    placed: list[int] = []  # limit orders not cancelled (some filled meanwhile)
    lines = [f"# excentra engine workload n={flow.n} seed={flow.seed}\n", HEADER]
    next_id = 1
    for _ in range(flow.n):
        mid += (int(draw() * 3) - 1) * flow.step_cents
        r = draw()
        if r >= flow.limit_share + flow.market_share:
            target = _resting_pick(draw, placed, book.orders)
            if target is not None:
                book.cancel(target)
                lines.append(f"C,{target},,,\n")
                continue
            r = 0.0  # nothing rests: place a limit order instead
        buy = draw() < 0.5
        side = "B" if buy else "S"
        if r < flow.limit_share:
            price = _limit_price(flow, draw, mid, buy)
            lots = 1 + int(draw() * flow.max_limit_lots)
            book.limit(next_id, buy, price, lots)
            lines.append(f"L,{next_id},{side},{_cents(price)},{_lots(lots)}\n")
            placed.append(next_id)
        else:
            lots = 1 + int(draw() * flow.max_market_lots)
            book.market(buy, lots)
            lines.append(f"M,{next_id},{side},,{_lots(lots)}\n")
        next_id += 1
    return "".join(lines)


def _resting_pick(draw: Callable[[], float], placed: list[int],
                  resting: Container[int]) -> int | None:
    """A uniformly drawn order that still rests, taken out of ``placed``; filled orders
    drawn on the way are dropped from it (they can never be cancelled)."""
    while placed:
        pick = int(draw() * len(placed))
        placed[pick], placed[-1] = placed[-1], placed[pick]
        oid = placed.pop()
        if oid in resting:
            return oid
    return None


def _limit_price(flow: Flow, draw: Callable[[], float], mid: int, buy: bool) -> int:
    if draw() < flow.crossing_share:
        away = -int(draw() * (flow.crossing_max_cents + 1))
    else:
        away = int(-math.log(1.0 - draw()) * flow.passive_mean_cents)
    return max(1, mid - away if buy else mid + away)


def _cents(value: int) -> str:
    return f"{value // 100}.{value % 100:02d}"


def _lots(value: int) -> str:
    return f"{value // 10_000}.{value % 10_000:04d}"


def parse(text: str) -> list[Row]:
    """The operations of a workload file (ours or any file in the same format)."""
    rows: list[Row] = []
    for line in text.splitlines():
        if not line or line.startswith(("#", "op,")):
            continue
        op, oid, side, price, qty = line.split(",")
        if op == "L":
            rows.append((LIMIT, int(oid), side == "B", Decimal(price), Decimal(qty)))
        elif op == "M":
            rows.append((MARKET, int(oid), side == "B", None, Decimal(qty)))
        elif op == "C":
            rows.append((CANCEL, int(oid), False, None, None))
        else:
            raise ValueError(f"not a workload line: {line!r}")
    return rows
