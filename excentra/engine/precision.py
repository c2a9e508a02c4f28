"""A trading pair's grid: price step, quantity step, and the one rounding rule.

The engine computes in integers: prices in ticks (multiples of ``price_step``), quantities
in lots (multiples of ``quantity_step``), balances in the quote asset's minor units.

Any steps that are multiples of the assets' minor units make a grid: EUR at 2 decimals
with a price step of 0.01 and a BTC quantity step of 0.0001, as exchanges list it. Then
one tick × one lot is a fraction of a quote minor unit (0.000001 EUR), so the engine counts
quote money in *fine units*: ``price_step × quantity_step / quote_unit = n / d`` in lowest
terms (``quote_per_tick_lot = n``, ``fine_per_unit = d``), a fine unit is ``quote_unit /
d``, and ``ticks × lots`` costs exactly ``ticks × lots × n`` fine units. Balances never
hold fine units; the rule below says where they become minor units:

* a trade's quote amount is the API's rule — ``price × quantity`` rounded half-to-even to
  the quote decimals — applied to the *buy order's running total*: with ``C_i`` the exact
  cost (fine units) of that buy order's first ``i`` fills and ``R`` the half-to-even
  rounding to minor units, its ``i``-th trade moves ``R(C_i) − R(C_{i−1})`` from the buyer
  to the seller (``rounded``). A single fill is exactly ``round(price × quantity)``; the
  seller receives what the buyer pays, so money is conserved to the unit; and a buy order
  pays ``R(its exact total)`` in all, however its fills fell;
* a buy's reservation is ``price × quantity`` rounded *up* (``quote_units``). Its fills are
  at its limit or better, so their exact total is at most that, and ``R`` of it never
  exceeds the reservation. After each fill an open buy keeps ``⌈C + remaining × limit⌉
  − R(C)`` held (``held_for``) — at least what its remaining lots can still add to what
  it pays, and never more than it holds — and releases the rest (price improvement);
  once it ends, it releases everything it still holds, so nothing is left held;
* a market buy sized by a quote budget ``B`` buys the largest whole number of lots whose
  exact cost is at most ``B × d`` fine units at each level (rounding the quantity *down*),
  so it pays ``R(cost) ≤ B``; the budget left over is released.

On a grid where ``price_step × quantity_step`` is a whole number of quote minor units
(every USDT pair's 0.01 × 0.0001), ``d == 1``: every amount is exact and the rounding never
has anything to do. This is stricter than the original, which accepted any precision and
leaked dust into ``held`` (reference §3.5); it is what real exchanges do with tick and lot
sizes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Context, Decimal

from excentra.engine.types import RejectCode, Side

SELL = Side.SELL

MAX_UNITS = Decimal(10) ** 15
"""No price, quantity or budget may exceed this many whole units (API.md)."""
MAX_UNITS_INT = 10 ** 15
"""``MAX_UNITS`` as an integer, for exact bounds."""

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
    """What one tick × one lot costs, in fine units (``n`` of ``n / d``)."""
    fine_per_unit: int = field(init=False)
    """Fine units per quote minor unit (``d``; 1 when a tick × lot is whole minor units)."""
    max_ticks: int = field(init=False)
    max_lots: int = field(init=False)
    max_budget: int = field(init=False)
    price_ratio: tuple[int, int] = field(init=False)
    """``price_step`` as (numerator, denominator): grid conversions stay in integers."""
    quantity_ratio: tuple[int, int] = field(init=False)
    quote_ratio: tuple[int, int] = field(init=False)
    base_ratio: tuple[int, int] = field(init=False)

    def __post_init__(self) -> None:
        quote_ratio = _unit(self.quote_decimals).as_integer_ratio()
        base_ratio = _unit(self.base_decimals).as_integer_ratio()
        checks = {
            "price_step must be a positive multiple of the quote asset's minor unit":
                _whole_units(self.price_step, quote_ratio) is not None,
            "quantity_step must be a positive multiple of the base asset's minor unit":
                _whole_units(self.quantity_step, base_ratio) is not None,
        }
        for message, ok in checks.items():
            if not ok:
                raise GridError(f"{self.symbol}: {message}")
        price_ratio = self.price_step.as_integer_ratio()
        quantity_ratio = self.quantity_step.as_integer_ratio()
        # price_step × quantity_step / quote_unit, in lowest terms (Fraction-free: ints)
        n = price_ratio[0] * quantity_ratio[0] * quote_ratio[1]
        d = price_ratio[1] * quantity_ratio[1] * quote_ratio[0]
        g = math.gcd(n, d)
        whole = MAX_UNITS_INT  # the bounds: floors of exact ratios (no decimal context)
        set_ = object.__setattr__  # frozen: derived fields are set once, here
        set_(self, "quote_per_tick_lot", n // g)
        set_(self, "fine_per_unit", d // g)
        set_(self, "max_ticks", whole * price_ratio[1] // price_ratio[0])
        set_(self, "max_lots", whole * quantity_ratio[1] // quantity_ratio[0])
        set_(self, "max_budget", whole * quote_ratio[1] // quote_ratio[0])
        set_(self, "price_ratio", price_ratio)
        set_(self, "quantity_ratio", quantity_ratio)
        set_(self, "quote_ratio", quote_ratio)
        set_(self, "base_ratio", base_ratio)

    @classmethod
    def derive(cls, symbol: str, base_decimals: int, quote_decimals: int) -> PairSpec:
        """The grid of a pair *stored* without steps: a third of the quote decimals for the
        price step and the rest, capped by the base decimals, for the quantity step.

        For USDT (6) quoted pairs that is a price step of 0.01 and a quantity step of
        0.0001, the grid of the seeded pairs and of the shared benchmark workload. Pairs
        stored without steps (the seeded ones, and those added before pairs stored their
        grid) keep trading on it; a pair added now without steps gets ``finest`` and
        stores it.
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

    @classmethod
    def finest(cls, symbol: str, base_decimals: int, quote_decimals: int) -> PairSpec:
        """The grid of a pair added without steps: every price with up to the quote
        asset's decimals, every quantity with up to the base asset's (API.md)."""
        return cls(symbol, base_decimals, quote_decimals, _unit(quote_decimals),
                   _unit(base_decimals))

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

    # -- money: the one rule for holds and settlement (the module's docstring) ---------

    def fine_cost(self, ticks: int, lots: int) -> int:
        """``price × quantity`` exactly, in fine units (``quote_unit / fine_per_unit``)."""
        return ticks * lots * self.quote_per_tick_lot

    def quote_units(self, ticks: int, lots: int) -> int:
        """``price × quantity`` in quote minor units rounded *up*: a buy's reservation
        (exact when ``fine_per_unit == 1``)."""
        return -(-ticks * lots * self.quote_per_tick_lot // self.fine_per_unit)

    def rounded(self, fine: int) -> int:
        """``fine`` fine units in quote minor units, rounded half-to-even (``R``)."""
        d = self.fine_per_unit
        q, r = divmod(fine, d)
        return q + 1 if 2 * r > d or (2 * r == d and q % 2) else q

    def held_for(self, spent: int, ticks: int, lots: int) -> int:
        """What an open buy at ``ticks`` whose fills so far cost ``spent`` fine units keeps
        held for its ``lots`` left: ``⌈spent + lots × price⌉ − R(spent)``."""
        if self.fine_per_unit == 1:
            return ticks * lots * self.quote_per_tick_lot
        most = spent + ticks * lots * self.quote_per_tick_lot
        return -(-most // self.fine_per_unit) - self.rounded(spent)

    def buyer_pays(self, spent: int, fine: int) -> int:
        """What a buy order whose fills so far cost ``spent`` fine units pays for a fill of
        ``fine`` more: ``R(spent + fine) − R(spent)``."""
        if self.fine_per_unit == 1:
            return fine
        return self.rounded(spent + fine) - self.rounded(spent)

    def base_units(self, lots: int) -> int:
        """A quantity in lots as base-asset minor units."""
        return lots * self.base_units_per_lot

    @property
    def base_units_per_lot(self) -> int:
        (qn, qd), (bn, bd) = self.quantity_ratio, self.base_ratio
        return qn * bd // (qd * bn)


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


def _whole_units(step: Decimal, unit: tuple[int, int]) -> int | None:
    """``step`` in ``unit``s if that is a positive whole number, else ``None``."""
    units = on_grid(step, unit) if isinstance(step, Decimal) else None
    return units if units is not None and units > 0 else None


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
