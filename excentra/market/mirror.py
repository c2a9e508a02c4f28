"""A mirror of one order book's levels, built only from committed ``LevelChanged`` events
(so what it shows is durable), with the book's ``seq``: the seq those events carry, +1 per
committed command that changed the book — the number API.md promises on every
``order_book`` event. It starts from the pair's stored ``book_seq``, which the engine's
book continues from too, so it never goes back across a restart or a rebuild."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice
from typing import Any

from sortedcontainers import SortedDict

from excentra.engine import LevelChanged, Side
from excentra.engine.precision import PairSpec, plain


class BookMirror:
    def __init__(self, spec: PairSpec, seq: int = 0) -> None:
        self.spec = spec
        self.seq = seq
        """The seq of the last committed command that changed the book."""
        self._sides: dict[Side, SortedDict] = {Side.BUY: SortedDict(), Side.SELL: SortedDict()}

    def load(self, levels: Iterable[tuple[Side, int, int]]) -> None:
        """The levels at start: ``(side, price ticks, quantity lots)``, summed per price."""
        for side, price, quantity in levels:
            book = self._sides[side]
            book[price] = book.get(price, 0) + quantity

    def apply(self, changes: Iterable[LevelChanged]) -> bool:
        """One command's level changes; ``True`` if there were any, and then ``seq`` is the
        one they carry (all of one command's changes carry the same)."""
        changed = False
        for c in changes:
            book = self._sides[c.side]
            if c.quantity:
                book[c.price] = c.quantity
            else:
                book.pop(c.price, None)
            self.seq = c.seq
            changed = True
        return changed

    def snapshot(self, depth: int) -> dict[str, list[dict[str, str]]]:
        """Top ``depth`` levels per side, best first, as decimal strings."""
        spec = self.spec

        def levels(book: SortedDict, best_first: Any) -> list[dict[str, str]]:
            return [{"price": plain(spec.price(p)), "quantity": plain(spec.quantity(q))}
                    for p, q in islice(best_first, depth)]

        bids, asks = self._sides[Side.BUY], self._sides[Side.SELL]
        return {"bids": levels(bids, reversed(bids.items())),
                "asks": levels(asks, iter(asks.items()))}
