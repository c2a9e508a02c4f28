"""Grids whose tick × lot is a fraction of a quote minor unit (BTC/EUR at 0.01 × 0.0001),
the finest default grid, and the engine on random grids and decimals (issue 13)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from excentra.engine import (
    CancelReason,
    GridError,
    OrderAccepted,
    OrderBook,
    OrderStatus,
    OrderUpdated,
    PairSpec,
    RejectCode,
    Side,
    TradeExecuted,
)
from excentra.engine.precision import EXACT, MAX_UNITS, units_to_decimal
from tests.engine.commands import Command, Market, apply
from tests.engine.grids import exact_value, grid_scenarios, grids, quote_unit
from tests.engine.naive_book import NaiveBook

D = Decimal
SETTINGS = settings(max_examples=300, deadline=None)


def btc_eur() -> PairSpec:
    return PairSpec("BTC/EUR", 8, 2, D("0.01"), D("0.0001"))


# -- the grid ---------------------------------------------------------------------------------


def test_btc_eur_at_a_cent_and_a_ten_thousandth_is_a_grid() -> None:
    spec = btc_eur()
    # one tick × one lot = 0.000001 EUR = 1/10000 of a cent
    assert (spec.quote_per_tick_lot, spec.fine_per_unit) == (1, 10_000)
    assert spec.limit_amounts(D("65000.01"), D("0.0003")) == (6_500_001, 3)
    assert spec.base_units(3) == 30_000


def test_a_reservation_rounds_up_and_a_single_fill_rounds_half_to_even() -> None:
    spec = btc_eur()
    # 100.01 × 0.0003 = 0.030003 EUR
    assert spec.fine_cost(10_001, 3) == 300_03
    assert spec.quote_units(10_001, 3) == 4  # 0.04 reserved
    assert spec.rounded(300_03) == 3  # 0.03 paid
    # 0.005 → 0.00 and 0.015 → 0.02: half to even; 0.0051 → 0.01
    assert (spec.rounded(50_00), spec.rounded(150_00), spec.rounded(51_00)) == (0, 2, 1)
    # the running rule: a fill of 0.005 after 0.005 pays the cent the first did not
    assert (spec.buyer_pays(0, 50_00), spec.buyer_pays(50_00, 50_00)) == (0, 1)


def test_whole_grids_keep_exact_amounts() -> None:
    spec = PairSpec.derive("BTC/USDT", 8, 6)
    assert (spec.price_step, spec.quantity_step, spec.fine_per_unit) == (
        D("0.01"), D("0.0001"), 1)
    assert spec.quote_units(10_000_00, 3) == spec.fine_cost(10_000_00, 3) == 3_000_000
    assert spec.buyer_pays(123, 456) == 456


def test_the_finest_grid_is_the_assets_minor_units() -> None:
    spec = PairSpec.finest("BTC/EUR", 8, 2)
    assert (spec.price_step, spec.quantity_step) == (D("0.01"), D("0.00000001"))
    assert spec.limit_amounts(D("65000.01"), D("0.00000001")) == (6_500_001, 1)
    assert spec.limit_amounts(D("65000.001"), D("1")) is RejectCode.PRICE_OFF_TICK
    assert spec.limit_amounts(D("1"), D("0.000000001")) is RejectCode.QUANTITY_OFF_LOT


@pytest.mark.parametrize(("price_step", "quantity_step"), [
    (D("0.001"), D("0.0001")),  # finer than the cent
    (D("0.01"), D("0.000000001")),  # finer than the satoshi
    (D(0), D("0.0001")), (D("-0.01"), D("0.0001")), (D("NaN"), D(1)), (D("0.01"), D("Inf")),
])
def test_steps_must_be_positive_multiples_of_the_minor_units(
        price_step: Decimal, quantity_step: Decimal) -> None:
    with pytest.raises(GridError):
        PairSpec("BTC/EUR", 8, 2, price_step, quantity_step)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 18), st.integers(0, 18), st.data())
def test_the_finest_grid_accepts_every_amount_its_decimals_can_write(
        base: int, quote: int, data: st.DataObject) -> None:
    spec = PairSpec.finest("B/Q", base, quote)
    price_units = data.draw(st.integers(1, 10 ** (15 + quote)))
    lots = data.draw(st.integers(1, 10 ** (15 + base)))
    price, quantity = units_to_decimal(price_units, quote), units_to_decimal(lots, base)
    assert spec.limit_amounts(price, quantity) == (price_units, lots)
    finer = units_to_decimal(price_units * 10 + data.draw(st.integers(1, 9)), quote + 1)
    assert spec.to_ticks(finer) is None
    assert spec.to_lots(units_to_decimal(lots * 10 + 5, base + 1)) is None
    over = EXACT.add(MAX_UNITS, units_to_decimal(1, quote))
    assert spec.to_ticks(over) == spec.max_ticks + 1  # on the grid, but over the bound


@settings(max_examples=300, deadline=None)
@given(grids())
def test_bounds_and_fine_units_are_exact_on_any_grid(spec: PairSpec) -> None:
    tick_lot = Fraction(spec.price_step) * Fraction(spec.quantity_step) / quote_unit(spec)
    assert Fraction(spec.quote_per_tick_lot, spec.fine_per_unit) == tick_lot
    assert spec.max_ticks == int(Fraction(MAX_UNITS) / Fraction(spec.price_step))
    assert spec.max_lots == int(Fraction(MAX_UNITS) / Fraction(spec.quantity_step))
    ticks, lots = spec.max_ticks, spec.max_lots  # the largest order: still exact integers
    assert spec.quote_units(ticks, lots) == -(-exact_value(spec, ticks, lots)
                                              // quote_unit(spec))


# -- the engine on random grids ----------------------------------------------------------------


@SETTINGS
@given(grid_scenarios())
def test_trades_carry_their_exact_cost_and_budgets_buy_every_affordable_lot(
        scenario: tuple[PairSpec, list[Command]]) -> None:
    spec, cmds = scenario
    book = OrderBook(spec)
    fine = quote_unit(spec) / spec.fine_per_unit
    for cmd in cmds:
        events = apply(book, cmd)
        book.validate()
        trades = [e for e in events if isinstance(e, TradeExecuted)]
        for t in trades:
            assert t.quote * fine == exact_value(spec, t.price, t.quantity)
        accepted = events[0]
        if not (isinstance(cmd, Market) and isinstance(accepted, OrderAccepted)
                and accepted.budget is not None):
            continue
        budget = accepted.budget * quote_unit(spec)
        spent = sum((t.quote * fine for t in trades), Fraction(0))
        assert spent <= budget
        final = events[-1]
        assert isinstance(final, OrderUpdated)
        if final.reason is CancelReason.SELF_TRADE:
            continue
        ask = book.best_ask()
        if ask is None:
            assert final.status is OrderStatus.CANCELLED or spent == budget
        else:  # not one more lot was affordable at the price where it stopped
            assert budget - spent < exact_value(spec, ask, 1)


@SETTINGS
@given(grid_scenarios(max_size=40))
def test_book_and_naive_book_agree_on_random_grids(
        scenario: tuple[PairSpec, list[Command]]) -> None:
    spec, cmds = scenario
    real, naive = OrderBook(spec), NaiveBook(spec)
    for cmd in cmds:
        assert apply(real, cmd) == apply(naive, cmd), cmd
        assert real.snapshot(100) == naive.snapshot(100)


def test_a_budget_buys_lots_by_their_exact_cost_on_btc_eur() -> None:
    book = OrderBook(btc_eur())
    book.place_limit("a1", "s", Side.SELL, D("100.01"), D("0.0003"))
    # one lot at 100.01 costs 0.010001 EUR: 0.03 buys two lots (0.020002), not three
    events = book.place_market("m1", "b", Side.BUY, budget=D("0.03"))
    trade = next(e for e in events if isinstance(e, TradeExecuted))
    assert (trade.quantity, trade.quote) == (2, 200_02)
    assert events[-1] == OrderUpdated("m1", "b", Side.BUY, OrderStatus.FILLED, 2, 0, 0, None)
