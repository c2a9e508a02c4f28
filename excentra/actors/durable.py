"""What the core is rebuilt from: the durable state, read back into a ledger's clearing
and one engine book per pair (``build``), and where the supervisor gets it (``Durable``:
the database; fakes in the supervisor's tests)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from excentra.actors.journal import DatabaseStore, Store
from excentra.actors.projector import ProjectionStore
from excentra.db import Database
from excentra.db.accounts import suspended_users
from excentra.db.eventlog import EventLog
from excentra.db.projection import Projection
from excentra.db.projection_process import ProcessProjection
from excentra.db.state import State, command_results, load_state
from excentra.engine import OrderBook, OrderType, PairSpec, RestingOrder, Side
from excentra.engine.precision import on_grid
from excentra.ledger import OrderTerms
from excentra.ledger.clearing import Clearing
from excentra.registry import pair_terms


def _units(amount: Decimal, decimals: int) -> int:
    units = on_grid(amount, (1, 10 ** decimals))
    if units is None:
        raise ValueError(f"stored amount {amount} is off its asset's grid")
    return units


def _fills_cost(spec: PairSpec, fills: Iterable[tuple[Decimal, Decimal]]) -> int:
    """The exact cost (fine units) of a buy order's stored trades: where settlement's
    rounding rule continues from (``excentra.engine.precision``)."""
    cost = 0
    for price, quantity in fills:
        ticks, lots = spec.to_ticks(price), spec.to_lots(quantity)
        if ticks is None or lots is None:
            raise ValueError(f"stored trade {price} × {quantity} is off {spec.symbol}'s grid")
        cost += spec.fine_cost(ticks, lots)
    return cost


@dataclass
class Built:
    """Everything rebuilt from one ``State``."""

    clearing: Clearing
    books: dict[str, OrderBook]
    pair_ids: dict[str, Any]
    state: State


def build(state: State) -> Built:
    """Rebuild the ledger's clearing and every pair's book from durable state."""
    decimals = {a.symbol: a.decimals for a in state.assets}
    clearing = Clearing()
    for symbol, dec in decimals.items():
        clearing.add_asset(symbol, dec)
    books: dict[str, OrderBook] = {}
    for p in state.pairs:
        terms = pair_terms(p.symbol, p.base, p.quote, p.price_step, p.quantity_step,
                           p.maker_fee_rate, p.taker_fee_rate, decimals, stored=True)
        clearing.add_pair(terms)
        books[p.symbol] = book = OrderBook(terms.spec)
        book.seq = p.book_seq  # continues, never back to 0 (clients follow it)
    reservations: list[tuple[Any, str, str, int]] = []
    order_terms: dict[Any, OrderTerms] = {}
    spent: dict[Any, int] = {}
    for o in state.open_orders:
        terms = clearing.pairs[o.symbol]
        side, spec = Side(o.side), terms.spec
        asset = terms.quote if side is Side.BUY else terms.base
        ticks, lots, left = spec.to_ticks(o.price), spec.to_lots(o.quantity), spec.to_lots(
            o.remaining)
        if ticks is None or lots is None or left is None:
            raise ValueError(f"open order {o.id} is off its pair's grid")
        oid, uid = str(o.id), str(o.user_id)
        held = _units(o.reserved, decimals[asset])
        if held:  # a buy whose remaining lots can no longer cost a unit holds nothing
            reservations.append((oid, uid, asset, held))
        order_terms[oid] = OrderTerms(side, OrderType(o.order_type), ticks)
        if side is Side.BUY and spec.fine_per_unit != 1:
            spent[oid] = _fills_cost(spec, state.buy_fills.get(o.id, ()))
        books[o.symbol].restore(RestingOrder(oid, uid, side, ticks, lots, left))
    for wid, owner, asset, amount in state.pending_withdrawals:
        reservations.append((str(wid), str(owner), asset, _units(amount, decimals[asset])))
    balances = [(str(u), a, _units(av, decimals[a]), _units(h, decimals[a]))
                for u, a, av, h in state.balances]
    clearing.load(balances, reservations, order_terms, spent)
    return Built(clearing, books, {p.symbol: p.id for p in state.pairs}, state)



class Durable(Protocol):
    """Where the supervisor rebuilds from (the database; fakes in the supervisor's tests)."""

    async def catch_up(self) -> int:
        """Project what the event log holds beyond the tables (nothing else may write
        them meanwhile); the log's last sequence number."""
        ...

    async def load(self) -> tuple[State, set[str]]:
        """The durable state (the tables, caught up) and the suspended users' ids."""
        ...

    async def committed(self, command_ids: list[str]) -> dict[str, Any]:
        """The stored results of those of ``command_ids`` that committed."""
        ...

    def store(self, built: Built) -> Store:
        """The journal's store, continuing from ``built``."""
        ...

    def projection(self) -> ProjectionStore | None:
        """The projector's store (``None``: nothing to project, no projector)."""
        ...


PROJECTORS = ("process", "thread")
"""Where the projection runs: a child process (``excentra.db.projection_process``: off
the core's GIL, the server's default) or a thread of the core (tests, embedding)."""


class DatabaseDurable:
    def __init__(self, db: Database, projector: str = "thread") -> None:
        if projector not in PROJECTORS:
            raise ValueError(f"projector must be one of {PROJECTORS}, not {projector!r}")
        self.db = db
        self.projector = projector

    async def catch_up(self) -> int:
        projection = Projection(self.db)
        await projection.open()
        done = await projection.catch_up()
        return max(done, await EventLog(self.db).head())

    async def load(self) -> tuple[State, set[str]]:
        if not self.db.is_connected:
            await self.db.connect()
        return await load_state(self.db), await suspended_users(self.db)

    async def committed(self, command_ids: list[str]) -> dict[str, Any]:
        if not command_ids:
            return {}
        found: dict[str, Any] = {}
        for i in range(0, len(command_ids), 500):
            for command_id, result in await command_results(self.db,
                                                            command_ids[i:i + 500]):
                found[command_id] = json.loads(result)
        return found

    def store(self, built: Built) -> Store:
        return DatabaseStore(self.db.url)

    def projection(self) -> ProjectionStore | None:
        if self.projector == "process":
            return ProcessProjection(self.db.url)
        return Projection(Database(self.db.url))


