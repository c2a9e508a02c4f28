"""The ledger actor's core: assets, pairs, reservations per order, settlement, transfers.

Pure and synchronous. The ledger actor unpacks a message, calls one method here, and
passes what it returns on (to a book actor or to the journal).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from decimal import Decimal

from excentra.engine import (
    Event,
    OrderStatus,
    OrderType,
    OrderUpdated,
    RejectCode,
    Side,
    StpMode,
    TimeInForce,
)
from excentra.engine.precision import on_grid, units_to_decimal
from excentra.ledger.core import Ledger, Movement
from excentra.ledger.settlement import (
    OrderTerms,
    PairTerms,
    SettledTrade,
    reservation,
    settle,
)


@dataclass(frozen=True, slots=True)
class NewOrder:
    """An order as the API takes it (decimals), with the ids the facade assigned."""

    order_id: str
    user_id: str
    symbol: str
    side: Side
    order_type: OrderType
    price: Decimal | None = None
    """Limit price (quote per base); ``None`` for market orders."""
    quantity: Decimal | None = None
    """Base quantity: limit orders and market sells."""
    budget: Decimal | None = None
    """Quote budget: market buys (the original API's semantics)."""
    time_in_force: TimeInForce = TimeInForce.GTC
    post_only: bool = False
    stp: StpMode = StpMode.EXPIRE_TAKER
    client_order_id: str | None = None


@dataclass(frozen=True, slots=True)
class OpenedOrder:
    """An order whose funds are held: what the book and the journal need next."""

    order: NewOrder
    ticks: int | None
    lots: int | None
    budget: int | None
    asset: str
    held: int
    movements: tuple[Movement, ...]


class Clearing:
    """Assets, pairs and the ledger, with the order-level rules on top."""

    def __init__(self) -> None:
        self.ledger = Ledger()
        self.decimals: dict[str, int] = {}
        self.pairs: dict[str, PairTerms] = {}
        self.terms: dict[Hashable, OrderTerms] = {}
        """Terms of every order that holds funds (open on a book or on its way there)."""
        self.spent: dict[Hashable, int] = {}
        """The exact cost (fine units) of each open buy order's fills so far, on grids
        whose trades round (``settlement``; rebuilt from its trades at a restart)."""

    # -- configuration -------------------------------------------------------------------

    def add_asset(self, symbol: str, decimals: int) -> None:
        self.decimals[symbol] = decimals

    def add_pair(self, terms: PairTerms) -> None:
        self.pairs[terms.spec.symbol] = terms

    # -- orders --------------------------------------------------------------------------

    def open(self, order: NewOrder) -> OpenedOrder | RejectCode:
        """Check an order against its pair's grid and hold the funds it may spend."""
        pair = self.pairs.get(order.symbol)
        if pair is None:
            return RejectCode.PAIR_NOT_FOUND
        ticks = lots = budget = None
        if order.order_type is OrderType.LIMIT:
            checked = pair.spec.limit_amounts(order.price, order.quantity)  # type: ignore[arg-type]
            if isinstance(checked, RejectCode):
                return checked
            ticks, lots = checked
        else:
            sized = pair.spec.market_amounts(order.side, order.quantity, order.budget)
            if isinstance(sized, RejectCode):
                return sized
            lots, budget = sized
            if order.side is Side.BUY and budget is None:
                return RejectCode.INVALID_NUMBER  # market buys are sized by budget here
        asset, amount = reservation(pair, order.side, order.order_type, ticks, lots or 0,
                                    budget)
        held = self.ledger.reserve(order.order_id, order.user_id, asset, amount)
        if isinstance(held, RejectCode):
            return held
        self.terms[order.order_id] = OrderTerms(order.side, order.order_type, ticks)
        return OpenedOrder(order, ticks, lots, budget, asset, amount, tuple(held))

    def abandon(self, order_id: Hashable) -> list[Movement]:
        """Give back everything an order holds (the book refused it)."""
        self.terms.pop(order_id, None)
        self.spent.pop(order_id, None)
        return self.ledger.release(order_id)

    def settle(self, symbol: str,
               events: list[Event]) -> tuple[list[Movement], list[SettledTrade]]:
        """Apply a book command's events: pay fills, release what orders no longer need."""
        movements, trades = settle(self.ledger, self.pairs[symbol], events,
                                   self.terms.__getitem__, spent=self.spent)
        for e in events:
            if isinstance(e, OrderUpdated) and e.status in (OrderStatus.FILLED,
                                                            OrderStatus.CANCELLED):
                self.terms.pop(e.order_id, None)
        return movements, trades

    # -- transfers -----------------------------------------------------------------------

    def units(self, asset: str, amount: Decimal) -> int | RejectCode:
        """An amount of ``asset`` in its minor units, or why it is not one."""
        decimals = self.decimals.get(asset)
        if decimals is None:
            return RejectCode.ASSET_NOT_FOUND
        units = on_grid(amount, (1, 10 ** decimals))
        if units is None:
            finite = isinstance(amount, Decimal) and amount.is_finite()
            if not finite:
                return RejectCode.INVALID_NUMBER
            return RejectCode.AMOUNT_OFF_GRID if amount > 0 else RejectCode.AMOUNT_NOT_POSITIVE
        if units <= 0:
            return RejectCode.AMOUNT_NOT_POSITIVE
        if units > 10 ** (15 + decimals):
            return RejectCode.AMOUNT_TOO_LARGE
        return units

    def amount(self, asset: str, units: int) -> Decimal:
        return units_to_decimal(units, self.decimals[asset])

    def deposit(self, user_id: str, asset: str, amount: Decimal,
                ref: Hashable) -> list[Movement] | RejectCode:
        units = self.units(asset, amount)
        if isinstance(units, RejectCode):
            return units
        return self.ledger.deposit(user_id, asset, units, ref)

    def request_withdrawal(self, ref: Hashable, user_id: str, asset: str,
                           amount: Decimal) -> list[Movement] | RejectCode:
        units = self.units(asset, amount)
        if isinstance(units, RejectCode):
            return units
        return self.ledger.reserve(ref, user_id, asset, units)

    def complete_withdrawal(self, ref: Hashable, fee: Decimal = Decimal(0)) -> list[Movement]:
        """The withdrawal left; ``fee`` (in the asset, of what was held) stays as revenue."""
        units = self.units(self.ledger.reservations[ref].asset, fee) if fee else 0
        if isinstance(units, RejectCode):
            raise ValueError(f"withdrawal fee {fee} is off its asset's grid")
        return self.ledger.complete_withdrawal(ref, units)

    def cancel_withdrawal(self, ref: Hashable) -> list[Movement]:
        return self.ledger.release(ref)

    def load(self, balances: Iterable[tuple[str, str, int, int]],
             reservations: Iterable[tuple[Hashable, str, str, int]],
             terms: dict[Hashable, OrderTerms],
             spent: dict[Hashable, int] | None = None) -> None:
        """Rebuild the ledger from storage (see ``Ledger.load``); ``spent``: the open buy
        orders' exact costs so far, where their grid rounds."""
        self.ledger.load(balances, reservations)
        self.terms = dict(terms)
        self.spent = dict(spent or {})
