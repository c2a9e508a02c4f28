"""Assets and pairs as the HTTP layer validates against: an in-memory copy of two small
tables, loaded at start and reloaded after an admin adds to them, so an order placement
costs no catalog query."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from excentra.db import Database


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


class Catalog:
    def __init__(self) -> None:
        self.assets: dict[str, AssetInfo] = {}
        self.pairs: dict[str, PairInfo] = {}

    async def load(self, db: Database) -> None:
        assets = await db.fetch_all("SELECT symbol, decimals, is_active FROM assets")
        pairs = await db.fetch_all(
            "SELECT id, symbol, base_asset, quote_asset, is_active FROM trading_pairs",
            types={"id": uuid.UUID})
        self.assets = {r["symbol"]: AssetInfo(r["symbol"], int(r["decimals"]),
                                              bool(r["is_active"])) for r in assets}
        self.pairs = {r["symbol"]: PairInfo(r["id"], r["symbol"], r["base_asset"],
                                            r["quote_asset"], bool(r["is_active"]))
                      for r in pairs}

    def active_asset(self, symbol: str) -> AssetInfo | None:
        info = self.assets.get(symbol)
        return info if info is not None and info.active else None

    def active_pair(self, symbol: str) -> PairInfo | None:
        info = self.pairs.get(symbol)
        return info if info is not None and info.active else None
