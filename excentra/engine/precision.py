"""A trading pair's grid: price step, quantity step, and the one rounding rule.

The engine computes in integers: prices in ticks (multiples of ``price_step``), quantities
in lots (multiples of ``quantity_step``), money in the quote asset's minor units.

The grid is chosen so that money never needs rounding inside a trade: ``price_step ×
quantity_step`` must be a whole number of quote minor units (``quote_per_tick_lot``). Then

* a trade's quote amount, ``quantity × price`` (the API's rule: rounded half-to-even to the
  quote decimals), is exact — the rounding never has anything to do;
* a buy's reservation, ``price × quantity`` rounded up to the quote decimals, is exact too,
  and equals the sum of what its fills at the limit price would cost, so a fully filled buy
  leaves no dust held and a partly filled one releases exactly ``(limit − fill price) ×
  quantity`` of price improvement plus the cancelled remainder's cost;
* a market buy sized by a quote budget buys the largest whole number of lots it can afford
  at each level (rounding the quantity *down*); the budget left over is released.

This is stricter than the original, which accepted any precision and leaked dust into
``held`` (reference §3.5); it is what real exchanges do with tick and lot sizes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Context, Decimal

from excentra.engine.types import RejectCode, Side

SELL = Side.SELL

MAX_UNITS = Decimal(10) ** 15
"""No price, quantity or budget may exceed this many whole units (API.md)."""

EXACT = Context(prec=100)
"""Integer → Decimal conversions go through this context: 10^15 units with 18 decimals
need 34 digits, more than the default context's 28 (which would round silently)."""

CONVERSION_ERRORS = (ValueError, OverflowError, AttributeError, TypeError)
"""What ``as_integer_ratio`` raises for NaN, infinities and non-numbers."""


class GridError(ValueError):
    """A pair's configuration is not a valid grid (a bug or a bad admin input, not a rejection)."""


def _unit(decimals: int) -> Decimal:
    return Decimal(1).scaleb(-decimals)


@dataclass(frozen=True, slots=True)
class PairSpec:
    """How one pair's prices, quantities and money map to integers."""

    symbol: str
    base_decimals: int
    quote_decimals: int
    price_step: Decimal
    quantity_step: Decimal
    quote_per_tick_lot: int = field(init=False)
    max_ticks: int = field(init=False)
    max_lots: int = field(init=False)
    max_budget: int = field(init=False)
    price_ratio: tuple[int, int] = field(init=False)
    """``price_step`` as (numerator, denominator): grid conversions stay in integers."""
    quantity_ratio: tuple[int, int] = field(init=False)
    quote_ratio: tuple[int, int] = field(init=False)
    base_ratio: tuple[int, int] = field(init=False)

    def __post_init__(self) -> None:
        base_unit, quote_unit = _unit(self.base_decimals), _unit(self.quote_decimals)
        checks = {
            "price_step must be a positive multiple of the quote asset's minor unit": (
                self.price_step > 0 and (self.price_step / quote_unit) % 1 == 0
            ),
            "quantity_step must be a positive multiple of the base asset's minor unit": (
                self.quantity_step > 0 and (self.quantity_step / base_unit) % 1 == 0
            ),
            "price_step × quantity_step must be a whole number of quote minor units": (
                (self.price_step * self.quantity_step / quote_unit) % 1 == 0
            ),
        }
        for message, ok in checks.items():
            if not ok:
                raise GridError(f"{self.symbol}: {message}")
        set_ = object.__setattr__  # frozen: derived fields are set once, here
        set_(self, "quote_per_tick_lot", int(self.price_step * self.quantity_step / quote_unit))
        set_(self, "max_ticks", int(MAX_UNITS / self.price_step))
        set_(self, "max_lots", int(MAX_UNITS / self.quantity_step))
        set_(self, "max_budget", int(MAX_UNITS / quote_unit))
        set_(self, "price_ratio", self.price_step.as_integer_ratio())
        set_(self, "quantity_ratio", self.quantity_step.as_integer_ratio())
        set_(self, "quote_ratio", quote_unit.as_integer_ratio())
        set_(self, "base_ratio", base_unit.as_integer_ratio())

    @classmethod
    def derive(cls, symbol: str, base_decimals: int, quote_decimals: int) -> PairSpec:
        """The default grid for a pair: a third of the quote decimals for the price step and
        the rest, capped by the base decimals, for the quantity step.

        For USDT (6) quoted pairs that is a price step of 0.01 and a quantity step of
        0.0001, the grid of the shared benchmark workload.
        """
        price_decimals = quote_decimals // 3
        quantity_decimals = min(base_decimals, quote_decimals - price_decimals)
        return cls(
            symbol,
            base_decimals,
            quote_decimals,
            _unit(price_decimals),
            _unit(quantity_decimals),
        )

    # -- Decimal -> integers (None when off the grid; callers turn that into a rejection) --

    def to_ticks(self, price: Decimal) -> int | None:
        return on_grid(price, self.price_ratio)

    def to_lots(self, quantity: Decimal) -> int | None:
        return on_grid(quantity, self.quantity_ratio)

    def to_quote_units(self, amount: Decimal) -> int | None:
        return on_grid(amount, self.quote_ratio)

    def to_base_units(self, amount: Decimal) -> int | None:
        return on_grid(amount, self.base_ratio)

    # -- validated input: integers, or the first reason the input is refused -------------

    def limit_amounts(self, price: Decimal, quantity: Decimal) -> tuple[int, int] | RejectCode:
        """A limit order's (ticks, lots), or why it cannot be placed on this grid."""
        ticks, lots = self.to_ticks(price), self.to_lots(quantity)
        code = _check(ticks, self.max_ticks, price, RejectCode.PRICE_OFF_TICK,
                      RejectCode.PRICE_NOT_POSITIVE)
        code = code or _check(lots, self.max_lots, quantity, RejectCode.QUANTITY_OFF_LOT,
                              RejectCode.QUANTITY_NOT_POSITIVE)
        if code is not None:
            return code
        assert ticks is not None
        assert lots is not None
        return ticks, lots

    def market_amounts(self, side: Side, quantity: Decimal | None,
                       budget: Decimal | None) -> tuple[int | None, int | None] | RejectCode:
        """A market order's (lots, budget units) — exactly one set — or why it is refused.

        Sized by base ``quantity``, or, for buys only, by quote ``budget``.
        """
        if (quantity is None) == (budget is None) or (budget is not None and side is SELL):
            return RejectCode.INVALID_NUMBER
        if quantity is not None:
            lots = self.to_lots(quantity)
            code = _check(lots, self.max_lots, quantity, RejectCode.QUANTITY_OFF_LOT,
                          RejectCode.QUANTITY_NOT_POSITIVE)
            return code or (lots, None)
        units = self.to_quote_units(budget)  # type: ignore[arg-type]
        code = _check(units, self.max_budget, budget, RejectCode.BUDGET_OFF_GRID,
                      RejectCode.QUANTITY_NOT_POSITIVE)
        return code or (None, units)

    # -- integers -> Decimal --------------------------------------------------------------

    def price(self, ticks: int) -> Decimal:
        return EXACT.multiply(Decimal(ticks), self.price_step)

    def quantity(self, lots: int) -> Decimal:
        return EXACT.multiply(Decimal(lots), self.quantity_step)

    def quote_amount(self, units: int) -> Decimal:
        return units_to_decimal(units, self.quote_decimals)

    def base_amount(self, units: int) -> Decimal:
        return units_to_decimal(units, self.base_decimals)

    # -- money: the one rule for holds and settlement -------------------------------------

    def quote_units(self, ticks: int, lots: int) -> int:
        """``price × quantity`` in quote minor units: exact, so both the half-to-even rule
        for trades and the round-up rule for reservations give this same number."""
        return ticks * lots * self.quote_per_tick_lot

    def base_units(self, lots: int) -> int:
        """A quantity in lots as base-asset minor units."""
        return lots * self.base_units_per_lot

    @property
    def base_units_per_lot(self) -> int:
        return int(self.quantity_step.scaleb(self.base_decimals))


def plain(value: Decimal) -> str:
    """A decimal as the API writes it: fixed-point, never exponent form ("0.00000000",
    not "0E-8"), keeping its scale."""
    return format(value, "f")


def units_to_decimal(units: int, decimals: int) -> Decimal:
    """``units`` minor units of an asset with ``decimals`` places, exactly."""
    return Decimal(units).scaleb(-decimals, context=EXACT)


def on_grid(value: Decimal, step: tuple[int, int]) -> int | None:
    """``value / step`` if that is a whole number, else ``None`` (also for NaN, ±∞).

    Exact at any size: both are turned into integer ratios, so no decimal context (and its
    precision) is involved. ``OrderBook.place_limit`` inlines the same arithmetic.
    """
    try:
        n, d = value.as_integer_ratio()
    except CONVERSION_ERRORS:
        return None
    step_n, step_d = step
    n, d = n * step_d, d * step_n
    return None if n % d else n // d


def _check(
    units: int | None,
    maximum: int,
    raw: Decimal | None,
    off_grid: RejectCode,
    not_positive: RejectCode,
) -> RejectCode | None:
    """The rejection for an amount that did (``units``) or did not convert to the grid."""
    if units is None:
        if not isinstance(raw, Decimal) or not raw.is_finite():
            return RejectCode.INVALID_NUMBER
        return off_grid if raw > 0 else not_positive
    if units <= 0:
        return not_positive
    return RejectCode.AMOUNT_TOO_LARGE if units > maximum else None
