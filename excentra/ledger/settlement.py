"""From engine events to ledger movements: what each fill and each order's end costs.

The money rule is ``excentra.engine.precision``'s: a trade moves ``R(C_i) − R(C_{i−1})``
quote minor units, where ``C_i`` is the exact cost (fine units) of its buy order's fills so
far — so settlement keeps, per open buy order on a grid with ``fine_per_unit > 1``, that
running exact cost (``spent``); on every other grid the amounts are exact and it keeps
nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from decimal import Decimal

from excentra.engine import (
    Event,
    OrderStatus,
    OrderType,
    OrderUpdated,
    PairSpec,
    Side,
    TradeExecuted,
)
from excentra.ids import new_id
from excentra.ledger.core import FEE_ACCOUNT, Ledger, Movement, fee_units


@dataclass(frozen=True, slots=True)
class PairTerms:
    """What settlement needs to know about a pair."""

    spec: PairSpec
    base: str
    quote: str
    maker_fee: Decimal = Decimal(0)
    taker_fee: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class OrderTerms:
    """What settlement needs to know about one order."""

    side: Side
    order_type: OrderType
    price: int | None
    """Limit price in ticks; ``None`` for market orders."""


def reservation(pair: PairTerms, side: Side, order_type: OrderType, price: int | None,
                lots: int, budget: int | None) -> tuple[str, int]:
    """The asset and amount an order must hold before it reaches the book."""
    spec = pair.spec
    if side is Side.SELL:
        return pair.base, spec.base_units(lots)
    if order_type is OrderType.MARKET:
        if budget is None:
            raise ValueError("a market buy is sized by its quote budget")
        return pair.quote, budget
    assert price is not None
    return pair.quote, spec.quote_units(price, lots)


def still_needed(pair: PairTerms, terms: OrderTerms, remaining: int, spent: int = 0) -> int:
    """What an open order's reservation must still cover for its ``remaining`` lots.

    For a buy whose fills so far cost ``spent`` fine units: ``⌈spent + remaining × limit⌉
    − R(spent)``, at least what the rest can still add to what it pays
    (``PairSpec.held_for``).
    """
    spec = pair.spec
    if terms.side is Side.SELL:
        return spec.base_units(remaining)
    assert terms.price is not None  # only limit orders stay open
    return spec.held_for(spent, terms.price, remaining)


@dataclass(frozen=True, slots=True)
class SettledTrade:
    """A trade with the id and money the journal records."""

    trade_id: str
    event: TradeExecuted
    buy_order_id: Hashable
    sell_order_id: Hashable
    buyer_id: str
    seller_id: str
    base: int
    quote: int
    buyer_fee: int
    """In base units (the buyer receives base)."""
    seller_fee: int
    """In quote units (the seller receives quote)."""


def settle(ledger: Ledger, pair: PairTerms, events: list[Event],
           terms_of: Callable[[Hashable], OrderTerms],
           new_id: Callable[[], str] = new_id, *,
           spent: dict[Hashable, int] | None = None,
           ) -> tuple[list[Movement], list[SettledTrade]]:
    """Apply one command's engine events to the ledger; return movements and trades.

    ``spent``: the running exact cost (fine units) of each open buy order's fills, kept
    across commands by the caller and updated here (only on grids that need it); an
    order's entry goes when it ends.
    """
    out: list[Movement] = []
    trades: list[SettledTrade] = []
    costs: dict[Hashable, int] = {} if spent is None else spent
    for e in events:
        if isinstance(e, TradeExecuted):
            trades.append(_trade(ledger, pair, e, new_id(), out, costs))
        elif isinstance(e, OrderUpdated):
            if e.status in (OrderStatus.FILLED, OrderStatus.CANCELLED):
                out += ledger.release(e.order_id)
                costs.pop(e.order_id, None)
            else:
                keep = still_needed(pair, terms_of(e.order_id), e.remaining,
                                    costs.get(e.order_id, 0))
                out += ledger.release(e.order_id, keep)
    return out, trades


def _trade(ledger: Ledger, pair: PairTerms, e: TradeExecuted, trade_id: str,
           out: list[Movement], spent: dict[Hashable, int]) -> SettledTrade:
    taker_buys = e.taker_side is Side.BUY
    if taker_buys:
        buy, sell = e.taker_order_id, e.maker_order_id
        buyer, seller = e.taker_user_id, e.maker_user_id
    else:
        buy, sell = e.maker_order_id, e.taker_order_id
        buyer, seller = e.maker_user_id, e.taker_user_id
    spec = pair.spec
    base, quote = spec.base_units(e.quantity), e.quote
    if spec.fine_per_unit != 1:  # the rounding rule, on the buy order's running cost
        before = spent.get(buy, 0)
        quote = spec.buyer_pays(before, e.quote)
        spent[buy] = before + e.quote
    buyer_fee = fee_units(base, pair.taker_fee if taker_buys else pair.maker_fee)
    seller_fee = fee_units(quote, pair.maker_fee if taker_buys else pair.taker_fee)
    ledger.spend(out, buy, quote, "trade", trade_id)
    ledger.spend(out, sell, base, "trade", trade_id)
    ledger.credit(out, str(buyer), pair.base, base - buyer_fee, "trade", trade_id)
    ledger.credit(out, str(seller), pair.quote, quote - seller_fee, "trade", trade_id)
    ledger.credit(out, FEE_ACCOUNT, pair.base, buyer_fee, "fee", trade_id)
    ledger.credit(out, FEE_ACCOUNT, pair.quote, seller_fee, "fee", trade_id)
    return SettledTrade(trade_id, e, buy, sell, str(buyer), str(seller), base, quote,
                        buyer_fee, seller_fee)
