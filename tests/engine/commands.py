"""Random command sequences for property-based and differential tests of order books."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from excentra.engine import Event, Side, StpMode, TimeInForce

USERS = ["u0", "u1", "u2", "u3"]


@dataclass(frozen=True)
class Limit:
    oid: int
    user: str
    side: Side
    price: Decimal
    quantity: Decimal
    tif: TimeInForce
    post_only: bool
    stp: StpMode


@dataclass(frozen=True)
class Market:
    oid: int
    user: str
    side: Side
    quantity: Decimal | None
    budget: Decimal | None
    stp: StpMode


@dataclass(frozen=True)
class Cancel:
    oid: int
    user: str | None


Command = Limit | Market | Cancel

# Prices around 100.00 in ticks of 0.01 (sometimes off the grid), quantities in lots of
# 0.0001 (sometimes off the lot or not positive): the book crosses, partially fills and
# self-trades often.
prices = st.one_of(
    st.integers(9_990, 10_010).map(lambda t: Decimal(t).scaleb(-2)),
    st.sampled_from([Decimal("100.005"), Decimal("0"), Decimal("-1")]),
)
quantities = st.one_of(
    st.integers(1, 40_000).map(lambda lots: Decimal(lots).scaleb(-4)),
    st.sampled_from([Decimal("0.00001"), Decimal("0")]),
)
budgets = st.integers(1, 5_000_000_000).map(lambda units: Decimal(units).scaleb(-6))
tifs = st.sampled_from([TimeInForce.GTC] * 4 + [TimeInForce.IOC, TimeInForce.FOK])
stps = st.sampled_from([StpMode.EXPIRE_TAKER] * 2 + [StpMode.EXPIRE_MAKER,
                                                     StpMode.EXPIRE_BOTH])


@st.composite
def command_lists(draw: Any, max_size: int = 60) -> list[Command]:
    return draw_commands(draw, draw(st.integers(1, max_size)), prices, quantities, budgets)


def draw_commands(draw: Any, n: int, prices: Any, quantities: Any, budgets: Any,
                  cancel_weight: int = 3) -> list[Command]:
    """``n`` commands: limit (weight 6), market (2, buys by budget half the time) and
    cancel (``cancel_weight``) of an earlier order or this unused id, drawn from the given
    price, quantity and budget strategies."""
    cmds: list[Command] = []
    for oid in range(1, n + 1):
        kind = draw(st.sampled_from(["limit"] * 6 + ["market"] * 2
                                    + ["cancel"] * cancel_weight))
        user = draw(st.sampled_from(USERS))
        side = draw(st.sampled_from([Side.BUY, Side.SELL]))
        if kind == "limit":
            cmds.append(Limit(oid, user, side, draw(prices), draw(quantities), draw(tifs),
                              draw(st.booleans()) and draw(st.booleans()), draw(stps)))
        elif kind == "market":
            by_budget = side is Side.BUY and draw(st.booleans())
            cmds.append(Market(oid, user, side, None if by_budget else draw(quantities),
                               draw(budgets) if by_budget else None, draw(stps)))
        else:
            target = draw(st.integers(1, oid))  # earlier order, or this unused id
            cmds.append(Cancel(target, draw(st.sampled_from([None, user]))))
    return cmds


def apply(book: Any, cmd: Command) -> list[Event]:
    """Run one command on any book with the OrderBook interface."""
    if isinstance(cmd, Limit):
        return book.place_limit(cmd.oid, cmd.user, cmd.side, cmd.price, cmd.quantity,  # type: ignore[no-any-return]
                                cmd.tif, cmd.post_only, cmd.stp)
    if isinstance(cmd, Market):
        return book.place_market(cmd.oid, cmd.user, cmd.side, cmd.quantity, cmd.budget,  # type: ignore[no-any-return]
                                 cmd.stp)
    return book.cancel(cmd.oid, cmd.user)  # type: ignore[no-any-return]
