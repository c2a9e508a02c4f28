"""Semantic checks shared by routes (shape checks live in ``fields``)."""

from __future__ import annotations

import uuid
from decimal import Decimal

from excentra.http.errors import unprocessable
from excentra.http.symbols import path_symbol
from excentra.registry import Registry


def places(value: Decimal) -> int:
    """Decimal places written (``"1.50"`` → 2; trailing zeros count as written, but the
    check below uses the normalised value so ``"1.50"`` passes for a 1-decimal asset)."""
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int)  # NaN/Infinity never get here (fields.parse_decimal)
    return max(0, -exponent)


def check_places(catalog: Registry, name: str, value: Decimal, asset: str) -> None:
    """422 when ``value`` has more decimal places than ``asset`` allows (API.md): the
    amount is well-formed, the asset's decimals (data, not the schema) refuse it."""
    info = catalog.assets.get(asset)
    if info is not None and places(value) > info.decimals:
        raise unprocessable(f"{name} has more decimal places than {asset} allows "
                            f"({info.decimals} decimals)")


def pair_filter(catalog: Registry, text: str | None) -> uuid.UUID | None:
    """The ``pair`` query filter of the order and trade lists (hyphen form): the pair's id,
    ``None`` when absent; 400 for a malformed symbol, 422 for an unknown or inactive pair
    (the original's messages)."""
    if text is None:
        return None
    symbol = path_symbol(text)
    pair = catalog.active_pair(symbol)
    if pair is None:
        raise unprocessable(f"Invalid pair symbol: {symbol}")
    return pair.id
