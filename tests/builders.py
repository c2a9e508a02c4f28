"""Shared test builders: pairs, order helpers, event filters."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import TypeVar

from excentra.engine import OrderBook, PairSpec

T = TypeVar("T")
D = Decimal


def btc_usdt() -> PairSpec:
    """BTC/USDT on the default grid: price step 0.01, quantity step 0.0001."""
    return PairSpec.derive("BTC/USDT", base_decimals=8, quote_decimals=6)


def book(spec: PairSpec | None = None) -> OrderBook:
    return OrderBook(spec or btc_usdt())


def of(kind: type[T], events: Iterable[object]) -> list[T]:
    """The events of one type, in order."""
    return [e for e in events if isinstance(e, kind)]


def one(kind: type[T], events: Iterable[object]) -> T:
    found = of(kind, events)
    assert len(found) == 1, f"expected one {kind.__name__}, got {found}"
    return found[0]


def last(kind: type[T], events: Iterable[object]) -> T:
    found = of(kind, events)
    assert found, f"no {kind.__name__} in {events}"
    return found[-1]
