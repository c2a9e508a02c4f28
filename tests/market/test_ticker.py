"""``Ticker24h`` (reference §5) against a naive recomputation over the whole trade list:
after any sequence of trades and clock advances, and when rebuilt from storage the way
the server does at start."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from excentra.engine.precision import EXACT, plain
from excentra.market import Ticker24h, TickerStats
from excentra.market.ticker import WINDOW_SECONDS, change_pct

D = Decimal
DAY = WINDOW_SECONDS
T0 = 1_700_000_000


@dataclass(frozen=True)
class Trade:
    second: int
    price: Decimal
    quantity: Decimal


def naive(trades: list[Trade], now: int) -> TickerStats | None:
    """§5 read literally: the window is every trade at or after ``now − 24 h``."""
    since = now - DAY
    inside = [t for t in trades if t.second >= since]
    if not inside:
        return None
    before = [t for t in trades if t.second < since]
    last = trades[-1].price
    baseline = before[-1].price if before else inside[0].price
    volume = D(0)
    for t in inside:
        volume = EXACT.add(volume, t.quantity)
    return TickerStats(last, max(t.price for t in inside), min(t.price for t in inside),
                       volume, change_pct(last, baseline))


def loaded(trades: list[Trade], now: int) -> Ticker24h:
    """A window built as ``load_tickers`` builds it: the last trade before the window,
    then the window's trades."""
    window = Ticker24h()
    before = [t for t in trades if t.second < now - DAY]
    window.set_before(before[-1].price if before else None)
    for t in trades:
        if t.second >= now - DAY:
            window.add(t.second, t.price, t.quantity)
    return window


prices = st.one_of(st.integers(1, 100_000_000).map(lambda c: D(c).scaleb(-2)),
                   st.sampled_from([D("0.01"), D("999999999999999.99"), D("65000.5")]))
quantities = st.integers(1, 10_000_000).map(lambda lots: D(lots).scaleb(-4))
gaps = st.one_of(st.just(0), st.integers(1, 120), st.integers(DAY - 5, DAY + 5),
                 st.integers(3_600, 2 * DAY))
steps = st.lists(st.one_of(
    st.tuples(st.just("trade"), gaps, prices, quantities),
    st.tuples(st.just("query"), gaps, st.none(), st.none())), min_size=1, max_size=60)


@settings(max_examples=300, deadline=None)
@given(steps)
def test_the_window_equals_a_recomputation_at_every_moment(script: list[Any]) -> None:
    live, trades, clock = Ticker24h(), [], T0
    for kind, gap, price, quantity in script:
        clock += gap
        if kind == "trade":
            live.add(clock, price, quantity)
            trades.append(Trade(clock, price, quantity))
            continue
        expected = naive(trades, clock)
        assert live.stats(clock) == expected
        assert loaded(trades, clock).stats(clock) == expected
        if expected is not None:  # what the API prints: the same digits
            got = live.stats(clock)
            assert got is not None
            assert plain(got.volume_24h) == plain(expected.volume_24h)
    assert live.stats(clock) == naive(trades, clock)


def test_no_trade_in_the_window_means_no_ticker() -> None:
    window = Ticker24h()
    assert window.stats(T0) is None
    window.add(T0, D("100"), D("1"))
    assert window.stats(T0 + DAY) is not None  # the trade's second is still inside
    assert window.stats(T0 + DAY + 1) is None
    window.add(T0 + DAY + 2, D("110"), D("2"))
    # the trade that left the window is the baseline
    assert window.stats(T0 + DAY + 2) == TickerStats(D("110"), D("110"), D("110"), D("2"),
                                                     D("10"))


def test_baseline_is_the_oldest_trade_in_the_window_without_an_older_one() -> None:
    window = Ticker24h()
    for second, price in ((0, "50"), (10, "80"), (20, "40"), (30, "60")):
        window.add(T0 + second, D(price), D("0.5"))
    assert window.stats(T0 + 30) == TickerStats(D("60"), D("80"), D("40"), D("2.0"),
                                                D("20"))


def test_a_clock_step_back_joins_the_newest_second() -> None:
    window = Ticker24h()
    window.add(T0 + 10, D("100"), D("1"))
    window.add(T0 + 5, D("90"), D("1"))  # earlier than the newest: same bucket
    assert window.stats(T0 + 10) == TickerStats(D("90"), D("100"), D("90"), D("2"),
                                                D("-10"))
    assert window.stats(T0 + 10 + DAY) is not None  # both leave with the newest second
    assert window.stats(T0 + 11 + DAY) is None


def test_change_pct_is_rounded_half_even_to_eight_places_and_never_negative_zero() -> None:
    assert plain(change_pct(D("1.00000000005"), D(1))) == "0.00000000"  # 5e-9 → even
    assert plain(change_pct(D("1.00000000015"), D(1))) == "0.00000002"  # 1.5e-8 → even
    assert plain(change_pct(D("0.99999999995"), D(1))) == "0.00000000"  # not "-0.0…"
    assert plain(change_pct(D("100"), D("100"))) == "0.00000000"
    assert change_pct(D(2), D(3)) == D("-33.33333333")
    assert change_pct(D(1), D(3)) == D("-66.66666667")
    # extreme but valid prices need more digits than the default context's 28
    assert change_pct(D("999999999999999.99"), D("0.01")) == D(
        "9999999999999999800.00000000")
