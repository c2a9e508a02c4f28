"""Random grids (decimals 0..18, steps that are multiples of the minor units) and random
command sequences on them, for the grid property tests of the engine and the ledger."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

from hypothesis import strategies as st

from excentra.engine import PairSpec
from tests.engine.commands import Command, draw_commands

MULTIPLES = [1, 1, 1, 2, 3, 5, 7, 25, 125]
"""A step is ``m × 10^e`` of the asset: mostly a power of ten, sometimes not."""


def step(draw: Any, decimals: int) -> Decimal:
    """A positive multiple of ``10^-decimals`` (up to a few orders of magnitude above)."""
    exponent = draw(st.integers(-decimals, -decimals + 4))
    return Decimal(draw(st.sampled_from(MULTIPLES))).scaleb(exponent)


@st.composite
def grids(draw: Any) -> PairSpec:
    base, quote = draw(st.integers(0, 18)), draw(st.integers(0, 18))
    return PairSpec("B/Q", base, quote, step(draw, quote), step(draw, base))


def exact_value(spec: PairSpec, ticks: int, lots: int) -> Fraction:
    """``price × quantity`` in the quote asset, by ``Fraction`` arithmetic on the decimals
    (independent of the engine's fine units)."""
    return Fraction(spec.price(ticks)) * Fraction(spec.quantity(lots))


def quote_unit(spec: PairSpec) -> Fraction:
    return Fraction(1, 10 ** spec.quote_decimals)


@st.composite
def grid_commands(draw: Any, spec: PairSpec, max_size: int = 50) -> list[Command]:
    """Orders around a random price, a few ticks apart, so books cross and fill partly;
    budgets from under one lot's cost to several orders' worth."""
    centre = draw(st.integers(6, 2_000))
    prices = st.integers(centre - 5, centre + 5).map(spec.price)
    quantities = st.integers(1, 30).map(spec.quantity)
    most = exact_value(spec, centre + 5, 40) / quote_unit(spec)  # in quote minor units
    budgets = st.integers(1, max(1, int(most))).map(
        lambda units: Decimal(units).scaleb(-spec.quote_decimals))
    return draw_commands(draw, draw(st.integers(1, max_size)), prices, quantities, budgets,
                         cancel_weight=2)


@st.composite
def grid_scenarios(draw: Any, max_size: int = 50) -> tuple[PairSpec, list[Command]]:
    spec = draw(grids())
    return spec, draw(grid_commands(spec, max_size))
