"""A synchronous exchange for ledger tests: clearing + books, wired as the actors wire them.

new order -> ``clearing.open`` (reserve) -> the pair's book -> ``abandon`` if the book
refused it, else ``clearing.settle``; cancels -> book -> ``settle`` unless refused.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable
from dataclasses import dataclass, field
from decimal import Decimal

from excentra.engine import (
    Event,
    OrderBook,
    OrderRejected,
    OrderType,
    PairSpec,
    RejectCode,
    Side,
    StpMode,
    TimeInForce,
)
from excentra.ledger import FEE_ACCOUNT, PairTerms, SettledTrade
from excentra.ledger.clearing import Clearing, NewOrder

D = Decimal
BUY, SELL = Side.BUY, Side.SELL
BTC_USDT = "BTC/USDT"
ETH_USDT = "ETH/USDT"


@dataclass
class Venue:
    """Clearing plus one ``OrderBook`` per pair."""

    clearing: Clearing = field(default_factory=Clearing)
    books: dict[str, OrderBook] = field(default_factory=dict)
    trades: list[SettledTrade] = field(default_factory=list)

    def add_pair(self, terms: PairTerms) -> None:
        self.clearing.add_pair(terms)
        self.books[terms.spec.symbol] = OrderBook(terms.spec)

    def submit(self, order: NewOrder) -> list[Event] | RejectCode:
        """Run a new order through the pipeline: its events, or the clearing's rejection."""
        opened = self.clearing.open(order)
        if isinstance(opened, RejectCode):
            return opened
        book = self.books[order.symbol]
        if order.order_type is OrderType.LIMIT:
            assert order.price is not None
            assert order.quantity is not None
            events = book.place_limit(order.order_id, order.user_id, order.side, order.price,
                                      order.quantity, order.time_in_force, order.post_only,
                                      order.stp)
        else:
            events = book.place_market(order.order_id, order.user_id, order.side,
                                       quantity=order.quantity, budget=order.budget,
                                       stp=order.stp)
        if isinstance(events[0], OrderRejected):
            self.clearing.abandon(order.order_id)
        else:
            self.trades += self.clearing.settle(order.symbol, events)[1]
        return events

    def cancel(self, symbol: str, order_id: Hashable, user_id: str | None) -> list[Event]:
        events = self.books[symbol].cancel(order_id, user_id)
        if not isinstance(events[0], OrderRejected):
            self.clearing.settle(symbol, events)
        return events

    def deposit(self, user_id: str, asset: str, amount: str | Decimal) -> None:
        result = self.clearing.deposit(user_id, asset, D(amount), f"dep-{user_id}-{amount}")
        assert not isinstance(result, RejectCode), result

    # -- reading ---------------------------------------------------------------------------

    def available(self, user_id: str, asset: str) -> int:
        return self.clearing.ledger.balance(user_id, asset).available

    def held(self, user_id: str, asset: str) -> int:
        return self.clearing.ledger.balance(user_id, asset).held

    def totals(self) -> dict[str, int]:
        """Per asset: the sum of ``available + held`` over every account (fees included)."""
        out: dict[str, int] = defaultdict(int)
        for (_, asset), b in self.clearing.ledger.balances.items():
            out[asset] += b.available + b.held
        return dict(out)

    def fees(self, asset: str) -> int:
        return self.available(FEE_ACCOUNT, asset)


def btc_usdt_terms(maker_fee: str = "0", taker_fee: str = "0") -> PairTerms:
    return PairTerms(PairSpec.derive(BTC_USDT, 8, 6), "BTC", "USDT",
                     maker_fee=D(maker_fee), taker_fee=D(taker_fee))


def eth_usdt_terms(maker_fee: str = "0", taker_fee: str = "0") -> PairTerms:
    return PairTerms(PairSpec.derive(ETH_USDT, 18, 6), "ETH", "USDT",
                     maker_fee=D(maker_fee), taker_fee=D(taker_fee))


def venue(maker_fee: str = "0", taker_fee: str = "0") -> Venue:
    """BTC (8), ETH (18), USDT (6); the pair BTC/USDT with the given fees."""
    v = Venue()
    v.clearing.add_asset("BTC", 8)
    v.clearing.add_asset("USDT", 6)
    v.clearing.add_asset("ETH", 18)
    v.add_pair(btc_usdt_terms(maker_fee, taker_fee))
    return v


def limit(order_id: str, user_id: str, side: Side, price: str, quantity: str,
          symbol: str = BTC_USDT, tif: TimeInForce = TimeInForce.GTC, post_only: bool = False,
          stp: StpMode = StpMode.EXPIRE_TAKER) -> NewOrder:
    return NewOrder(order_id, user_id, symbol, side, OrderType.LIMIT, price=D(price),
                    quantity=D(quantity), time_in_force=tif, post_only=post_only, stp=stp)


def market_buy(order_id: str, user_id: str, budget: str, symbol: str = BTC_USDT,
               stp: StpMode = StpMode.EXPIRE_TAKER) -> NewOrder:
    return NewOrder(order_id, user_id, symbol, BUY, OrderType.MARKET, budget=D(budget),
                    stp=stp)


def market_sell(order_id: str, user_id: str, quantity: str, symbol: str = BTC_USDT,
                stp: StpMode = StpMode.EXPIRE_TAKER) -> NewOrder:
    return NewOrder(order_id, user_id, symbol, SELL, OrderType.MARKET, quantity=D(quantity),
                    stp=stp)
