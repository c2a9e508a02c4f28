"""The 24 h ticker of one pair, maintained incrementally (reference §5's rule).

Trades are folded into one bucket per second (high, low, volume); the window is the
buckets of the last 86,400 seconds, so a trade leaves it at the granularity of a second
(the original's SQL compares exact timestamps: the difference is at most one second at the
window's edge). High and low come from monotonic deques, so a tick costs O(1) amortised
instead of a scan of the day's trades.

Memory is bounded by the window, not by the trades: at most one bucket and one entry in
each deque per second of the window (``MAX_ENTRIES``), whatever the trade rate, and a trade
evicts what has left the window behind it, so a pair whose ticker nobody reads does not
keep its history.

The rule: ``last_price`` is the latest trade of all time; the baseline is the latest trade
before the window if there is one, else the window's first trade;
``price_change_pct = (last - baseline) / baseline × 100``, rounded half-to-even to
``PCT_PLACES``. No trade in the window → no ticker.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from excentra.engine.precision import EXACT

WINDOW_SECONDS = 24 * 3600
PCT_PLACES = Decimal("1e-8")
MAX_ENTRIES = WINDOW_SECONDS + 1
"""At most this many buckets, highs and lows each (one per second of the window)."""


@dataclass(frozen=True, slots=True)
class TickerStats:
    last_price: Decimal
    high_24h: Decimal
    low_24h: Decimal
    volume_24h: Decimal
    price_change_pct: Decimal


def change_pct(last: Decimal, baseline: Decimal) -> Decimal:
    """``(last − baseline) / baseline × 100``, computed exactly, then rounded half-to-even
    to ``PCT_PLACES``; never "-0.00000000"."""
    exact = EXACT.multiply(EXACT.divide(EXACT.subtract(last, baseline), baseline), Decimal(100))
    rounded = exact.quantize(PCT_PLACES, rounding=ROUND_HALF_EVEN, context=EXACT)
    return rounded.copy_abs() if rounded.is_zero() else rounded


class _Bucket:
    __slots__ = ("first", "high", "last", "low", "second", "volume")

    def __init__(self, second: int, price: Decimal, quantity: Decimal) -> None:
        self.second = second
        self.first = self.high = self.low = self.last = price
        self.volume = quantity


class Ticker24h:
    def __init__(self) -> None:
        self._buckets: deque[_Bucket] = deque()
        self._highs: deque[tuple[int, Decimal]] = deque()  # decreasing prices
        self._lows: deque[tuple[int, Decimal]] = deque()  # increasing prices
        self._volume = Decimal(0)
        self._before: Decimal | None = None
        """The latest trade price that has left the window."""
        self.last: Decimal | None = None

    def add(self, second: int, price: Decimal, quantity: Decimal) -> None:
        """A trade, in commit order (a second earlier than the newest bucket's — a clock
        step back — joins the newest bucket)."""
        newest = self._buckets[-1] if self._buckets else None
        if newest is not None and second <= newest.second:
            second = newest.second
            newest.high = max(newest.high, price)
            newest.low = min(newest.low, price)
            newest.last = price
            newest.volume += quantity
        else:
            self._buckets.append(_Bucket(second, price, quantity))
        self._volume += quantity
        self.last = price
        # A price of the same second as a higher (lower) one kept there leaves the window
        # with it, so it can never be the high (low): one entry per second at most.
        highs, lows = self._highs, self._lows
        while highs and highs[-1][1] <= price:
            highs.pop()
        if not highs or highs[-1][0] != second:
            highs.append((second, price))
        while lows and lows[-1][1] >= price:
            lows.pop()
        if not lows or lows[-1][0] != second:
            lows.append((second, price))
        self._evict(second - WINDOW_SECONDS)

    @property
    def sizes(self) -> tuple[int, int, int]:
        """(buckets, highs, lows) kept: each at most ``MAX_ENTRIES``."""
        return len(self._buckets), len(self._highs), len(self._lows)

    def set_before(self, price: Decimal | None) -> None:
        """The latest trade before the window, when loading from storage."""
        self._before = price
        if self.last is None:
            self.last = price

    def stats(self, now_second: int) -> TickerStats | None:
        self._evict(now_second - WINDOW_SECONDS)
        if not self._buckets or self.last is None:
            return None
        baseline = self._before if self._before is not None else self._buckets[0].first
        return TickerStats(self.last, self._highs[0][1], self._lows[0][1], self._volume,
                           change_pct(self.last, baseline))

    def _evict(self, oldest_kept: int) -> None:
        """Drop buckets of seconds before ``oldest_kept``."""
        buckets = self._buckets
        while buckets and buckets[0].second < oldest_kept:
            gone = buckets.popleft()
            self._volume -= gone.volume
            self._before = gone.last
        while self._highs and self._highs[0][0] < oldest_kept:
            self._highs.popleft()
        while self._lows and self._lows[0][0] < oldest_kept:
            self._lows.popleft()
