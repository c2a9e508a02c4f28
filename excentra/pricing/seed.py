"""Seeding the order books at startup (reference §8, API.md): the system user rests a
ladder of bids and asks around each pair's CoinGecko USD price, or around a built-in
reference price when CoinGecko cannot be reached.

Idempotent across restarts: a pair on which the system user already has a resting order
is left alone (the restarted core rebuilt those orders from the database).

Prices go on the pair's grid the cautious way: bids round *down* and asks round *up* to
the price step, so rounding never narrows the spread nor moves a level across the
reference price. Quantities round down to the quantity step.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING

from excentra.actors.bridge import Rejected
from excentra.db.admin import SeedPair, pairs_with_open_orders, seedable_pairs
from excentra.engine import OrderType, PairSpec, Side
from excentra.engine.precision import EXACT
from excentra.pricing.coingecko import PriceError, fetch_usd_prices

if TYPE_CHECKING:
    from excentra.exchange import Exchange
    from excentra.http.config import Settings
    from excentra.http.services import Services

log = logging.getLogger("excentra.pricing.seed")

SYSTEM_USER_ID = "00000000-0000-0000-0000-000000000001"
"""The seed data's system user (migrations/0003_seed.sql): it owns the seeded liquidity."""

FALLBACK_PRICES: Mapping[str, Decimal] = {
    "BTC": Decimal(65000), "ETH": Decimal(3500), "SOL": Decimal(150)}
"""Reference USD prices when CoinGecko cannot tell (other bases are then not seeded)."""


@dataclass(frozen=True, slots=True)
class Ladder:
    spread: Decimal
    """Distance of level ``i`` from the reference price: ``spread × i`` of it."""
    levels: int
    """Levels per side."""
    base_quantity: Decimal
    """Level ``i`` rests ``base_quantity × i``."""


LADDERS: Mapping[str, Ladder] = {
    "BTC": Ladder(Decimal("0.001"), 5, Decimal("0.1")),
    "ETH": Ladder(Decimal("0.001"), 5, Decimal("1.5")),
    "SOL": Ladder(Decimal("0.002"), 8, Decimal(15)),
}
DEFAULT_LADDER = Ladder(Decimal("0.001"), 3, Decimal(1))


@dataclass(frozen=True, slots=True)
class Level:
    side: Side
    price: Decimal
    quantity: Decimal


def ladder_levels(reference: Decimal, ladder: Ladder, spec: PairSpec) -> list[Level]:
    """Every seed order for one pair, bids (nearest first) then asks, on ``spec``'s grid.
    Levels that round to nothing are left out."""
    bids: list[Level] = []
    asks: list[Level] = []
    for i in range(1, ladder.levels + 1):
        offset = EXACT.multiply(ladder.spread, Decimal(i))
        quantity = _to_step(EXACT.multiply(ladder.base_quantity, Decimal(i)),
                            spec.quantity_step, ROUND_FLOOR)
        bid = _to_step(EXACT.multiply(reference, 1 - offset), spec.price_step, ROUND_FLOOR)
        ask = _to_step(EXACT.multiply(reference, 1 + offset), spec.price_step, ROUND_CEILING)
        if quantity > 0 and bid > 0:
            bids.append(Level(Side.BUY, bid, quantity))
        if quantity > 0:
            asks.append(Level(Side.SELL, ask, quantity))
    return bids + asks


def _to_step(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    steps = EXACT.divide(value, step).to_integral_value(rounding=rounding)
    return EXACT.multiply(steps, step)


async def seed_books(services: Services) -> None:
    """The startup step (``excentra.http.app``): seed every pair not seeded yet."""
    db = services.db
    seeded = await pairs_with_open_orders(db, uuid.UUID(SYSTEM_USER_ID))
    pairs = [p for p in await seedable_pairs(db) if p.symbol not in seeded]
    for symbol in sorted(seeded):
        log.info("seed skipped: system orders already rest", extra={"pair": symbol})
    if not pairs:
        return
    log.info("seeding order books: fetching reference prices",
             extra={"pairs": [p.symbol for p in pairs], "url": services.settings.coingecko_url,
                    "timeout_seconds": services.settings.price_timeout})
    prices = await _reference_prices(services.settings, pairs)
    await asyncio.gather(*(_seed_pair(services.exchange, pair, prices.get(pair.symbol))
                           for pair in pairs))


async def _reference_prices(settings: Settings, pairs: list[SeedPair]
                            ) -> dict[str, tuple[Decimal, str]]:
    """``{symbol: (USD price, source)}``; the source is ``coingecko`` or ``fallback``."""
    try:
        live = await fetch_usd_prices(settings.coingecko_url,
                                      (p.coingecko_id for p in pairs),
                                      timeout=settings.price_timeout)
    except PriceError as exc:
        log.warning("price source unreachable: using fallback prices",
                    extra={"url": settings.coingecko_url, "error": str(exc)})
        live = {}
    out: dict[str, tuple[Decimal, str]] = {}
    for pair in pairs:
        if pair.coingecko_id in live:
            out[pair.symbol] = (live[pair.coingecko_id], "coingecko")
        elif pair.base in FALLBACK_PRICES:
            out[pair.symbol] = (FALLBACK_PRICES[pair.base], "fallback")
    return out


async def _seed_pair(exchange: Exchange, pair: SeedPair,
                     price: tuple[Decimal, str] | None) -> None:
    if price is None:
        log.info("seed skipped: no price", extra={"pair": pair.symbol})
        return
    spec = exchange.pair_spec(pair.symbol)  # the grid the core runs the pair on
    if spec is None:
        log.info("seed skipped: no book for the pair", extra={"pair": pair.symbol})
        return
    reference, source = price
    levels = ladder_levels(reference, LADDERS.get(pair.base, DEFAULT_LADDER), spec)
    placed = 0
    for level in levels:  # one by one: bids first, then asks, in time priority
        # post_only: seeding provides liquidity, it must never trade against users'
        # resting orders at a reference price that may be stale
        outcome = await exchange.place_order(
            SYSTEM_USER_ID, pair.symbol, level.side, OrderType.LIMIT, price=level.price,
            quantity=level.quantity, post_only=True, client_order_id=None)
        if isinstance(outcome, Rejected):
            log.warning("seed order rejected", extra={
                "pair": pair.symbol, "side": level.side.value, "price": str(level.price),
                "quantity": str(level.quantity), "code": outcome.code.name})
        else:
            placed += 1
    log.info("order book seeded", extra={"pair": pair.symbol, "price_source": source,
                                         "reference_price": str(reference),
                                         "orders_placed": placed, "levels": len(levels)})
