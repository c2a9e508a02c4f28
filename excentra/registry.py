"""The exchange's assets and pairs, as every reader on the event loop sees them.

One registry, owned by the ``Exchange``: loaded from the database at start, then changed
only by the core's committed answers to ``AddAsset`` / ``AddPair`` (the facade applies
them before the admin's request resumes). The HTTP validation, the WebSocket feed's view
of a pair added at runtime and the facade's grids all read it; nothing else keeps a copy
that could drift. An order placement costs no catalog query.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from decimal import Decimal

from excentra.db import Database
from excentra.engine.precision import PairSpec
from excentra.ledger import PairTerms


@dataclass(frozen=True, slots=True)
class AssetInfo:
    symbol: str
    decimals: int
    active: bool


@dataclass(frozen=True, slots=True)
class PairInfo:
    id: uuid.UUID
    symbol: str
    base: str
    quote: str
    active: bool
    spec: PairSpec
    """The grid the core trades the pair on."""


def pair_terms(symbol: str, base: str, quote: str, price_step: Decimal | None,
               quantity_step: Decimal | None, maker_fee: Decimal, taker_fee: Decimal,
               decimals: dict[str, int], *, stored: bool = False) -> PairTerms:
    """A pair's grid and fees.

    Without steps, a pair being added gets the finest grid — every price and quantity
    its assets' decimals can write — and stores it with the pair; a pair ``stored``
    without steps (the seeded ones, and any added before pairs stored their grid) keeps
    the grid it has always traded on (``PairSpec.derive``), as ``GET /pairs`` shows it.
    """
    base_dec, quote_dec = decimals[base], decimals[quote]
    if price_step is None or quantity_step is None:
        grid = PairSpec.derive if stored else PairSpec.finest
        spec = grid(symbol, base_dec, quote_dec)
    else:
        spec = PairSpec(symbol, base_dec, quote_dec, price_step, quantity_step)
    return PairTerms(spec, base, quote, maker_fee, taker_fee)


class Registry:
    def __init__(self) -> None:
        self.assets: dict[str, AssetInfo] = {}
        self.pairs: dict[str, PairInfo] = {}

    async def load(self, db: Database) -> None:
        """Everything from the database (at start, or after an operator changed it)."""
        assets = await db.fetch_all("SELECT symbol, decimals, is_active FROM assets")
        pairs = await db.fetch_all(
            "SELECT id, symbol, base_asset, quote_asset, is_active, price_step, "
            "quantity_step FROM trading_pairs",
            types={"id": uuid.UUID, "price_step": Decimal, "quantity_step": Decimal})
        self.assets = {r["symbol"]: AssetInfo(r["symbol"], int(r["decimals"]),
                                              bool(r["is_active"])) for r in assets}
        decimals = self.decimals()
        self.pairs = {}
        for r in pairs:
            terms = pair_terms(r["symbol"], r["base_asset"], r["quote_asset"], r["price_step"],
                               r["quantity_step"], Decimal(0), Decimal(0), decimals,
                               stored=True)
            self.pairs[r["symbol"]] = PairInfo(r["id"], r["symbol"], r["base_asset"],
                                               r["quote_asset"], bool(r["is_active"]),
                                               terms.spec)

    def asset_added(self, symbol: str, decimals: int) -> None:
        self.assets[symbol] = AssetInfo(symbol, decimals, True)

    def pair_added(self, pair_id: uuid.UUID, terms: PairTerms) -> None:
        spec = terms.spec
        self.pairs[spec.symbol] = PairInfo(pair_id, spec.symbol, terms.base, terms.quote,
                                           True, spec)

    def set_active(self, symbol: str, active: bool) -> None:
        info = self.pairs.get(symbol)
        if info is not None:
            self.pairs[symbol] = dataclasses.replace(info, active=active)

    def decimals(self) -> dict[str, int]:
        return {a.symbol: a.decimals for a in self.assets.values()}

    def spec(self, symbol: str) -> PairSpec | None:
        info = self.pairs.get(symbol)
        return None if info is None else info.spec

    def active_asset(self, symbol: str) -> AssetInfo | None:
        info = self.assets.get(symbol)
        return info if info is not None and info.active else None

    def active_pair(self, symbol: str) -> PairInfo | None:
        info = self.pairs.get(symbol)
        return info if info is not None and info.active else None
