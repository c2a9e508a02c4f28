"""The market as clients see it: what has been committed, kept in memory for the REST
market-data routes and the WebSocket feed alike.

Per pair: a mirror of the order book (levels and ``seq``; the ``seq`` loaded from the
pair's stored ``book_seq``, so it never goes back across a restart) and the 24 h ticker
window; per resting order, what an ``order_status`` event shows of it beyond the engine's
update (a maker's update names only its id). Built only from committed data: loaded from
the database at start, then advanced by the WebSocket feed as it translates each committed
batch (``excentra/http/ws/feed.py``), in commit order, on the event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from excentra.engine import Side
from excentra.engine.precision import PairSpec
from excentra.market.mirror import BookMirror
from excentra.market.ticker import Ticker24h, TickerStats


@dataclass(frozen=True, slots=True)
class Resting:
    """What an ``order_status`` of a resting order needs beyond the engine's update."""

    symbol: str
    side: str
    order_type: str
    price: Decimal | None


@dataclass(frozen=True, slots=True)
class OpenOrder:
    """An open order as loaded at start."""

    order_id: str
    symbol: str
    side: str
    price: Decimal
    remaining: Decimal


class MarketView:
    def __init__(self, lookup: Callable[[str], PairSpec | None] = lambda _symbol: None
                 ) -> None:
        self.lookup = lookup
        """Finds the grid of a pair added after start (the exchange's registry)."""
        self.specs: dict[str, PairSpec] = {}
        self.mirrors: dict[str, BookMirror] = {}
        self.tickers: dict[str, Ticker24h] = {}
        self.resting: dict[str, Resting] = {}

    # -- loading ------------------------------------------------------------------------

    def add_pair(self, spec: PairSpec) -> None:
        if spec.symbol not in self.specs:
            self.specs[spec.symbol] = spec
            self.mirrors[spec.symbol] = BookMirror(spec)
            self.tickers[spec.symbol] = Ticker24h()

    def load_orders(self, orders: Iterable[OpenOrder]) -> None:
        for o in orders:
            spec = self.specs.get(o.symbol)
            if spec is None:
                continue
            ticks, lots = spec.to_ticks(o.price), spec.to_lots(o.remaining)
            if ticks is None or lots is None:
                raise ValueError(f"open order {o.order_id} is off its pair's grid")
            self.mirrors[o.symbol].load([(Side(o.side), ticks, lots)])
            self.resting[o.order_id] = Resting(o.symbol, o.side, "limit", o.price)

    def load_seqs(self, seqs: Mapping[str, int]) -> None:
        """Each pair's stored ``book_seq`` (symbol → seq), before any command is applied."""
        for symbol, seq in seqs.items():
            mirror = self.mirrors.get(symbol)
            if mirror is not None:
                mirror.seq = seq

    def knows(self, symbol: str) -> bool:
        """Whether the pair is followed; a pair added since start is taken on here (its
        mirror starts empty at seq 0: a new pair has no orders before its first commit)."""
        if symbol not in self.specs:
            found = self.lookup(symbol)
            if found is None:
                return False
            self.add_pair(found)
        return True

    # -- reading ------------------------------------------------------------------------

    def book(self, symbol: str) -> BookMirror | None:
        return self.mirrors[symbol] if self.knows(symbol) else None

    def ticker(self, symbol: str, now_second: int) -> TickerStats | None:
        window = self.tickers.get(symbol)
        return None if window is None else window.stats(now_second)
