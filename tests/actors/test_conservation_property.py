"""Conservation through the whole actor core (DESIGN.md invariant 6), on random commands.

One ``Exchange`` on SQLite serves every example (starting one per example is slow); each
example brings four fresh users, plays rounds of deposits, limit orders (GTC, IOC, FOK,
post-only), market orders, cancels and withdrawals on BTC/USDT and ETH/USDT — the commands
of a round run concurrently — then checks:

* the ledger actor's own invariant check passes (``audit_ledger``);
* the committed state passes ``audit(db)``;
* every account's committed balance equals the in-memory one, in minor units;
* each book equals the open orders in the database.

Finally every order the example left open is cancelled and everything is checked again.
Resting orders of earlier examples stay on the books, so later examples trade with them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from excentra.actors.bridge import Rejected
from excentra.engine import OrderType, RejectCode, Side, StpMode, TimeInForce
from excentra.exchange import Exchange, Outcome
from tests.actors.helpers import (
    BTC_USDT,
    ETH_USDT,
    D,
    assert_sound,
    new_user,
    normalized,
    ok,
    stored_levels,
)

N_USERS = 4
FUNDING = {"BTC": "1", "ETH": "10", "USDT": "1000"}
PRICES = {BTC_USDT: ["99", "99.5", "100", "100.5", "101"],
          ETH_USDT: ["9.9", "9.95", "10", "10.05", "10.1"]}
QUANTITIES = {BTC_USDT: ["0.01", "0.05", "0.1", "0.2555"],
              ETH_USDT: ["0.1", "0.5", "1.2345", "3"]}
BUDGETS = ["1", "5.55", "25", "150"]
DEPOSITS = {"BTC": ["0.1", "0.5"], "ETH": ["1", "2.5"], "USDT": ["10", "333.33"]}
WITHDRAWALS = {"BTC": ["0.01", "0.5"], "ETH": ["0.1", "20"], "USDT": ["5", "2000"]}


# -- commands --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deposit:
    user: int
    asset: str
    amount: str


@dataclass(frozen=True)
class Limit:
    user: int
    symbol: str
    side: Side
    price: str
    quantity: str
    tif: TimeInForce
    post_only: bool


@dataclass(frozen=True)
class Market:
    user: int
    symbol: str
    side: Side
    size: str
    """Quote budget for a buy, base quantity for a sell."""
    stp: StpMode


@dataclass(frozen=True)
class Cancel:
    user: int
    pick: int
    """Which order placed earlier in the example (mod their number); maybe not the user's."""


@dataclass(frozen=True)
class Withdraw:
    user: int
    asset: str
    amount: str


Command = Deposit | Limit | Market | Cancel | Withdraw

users = st.integers(0, N_USERS - 1)
symbols = st.sampled_from([BTC_USDT, ETH_USDT])
sides = st.sampled_from(list(Side))
assets = st.sampled_from(sorted(FUNDING))


@st.composite
def limits(draw: st.DrawFn) -> Limit:
    symbol = draw(symbols)
    tif = draw(st.sampled_from([TimeInForce.GTC] * 3 + [TimeInForce.IOC, TimeInForce.FOK]))
    return Limit(draw(users), symbol, draw(sides), draw(st.sampled_from(PRICES[symbol])),
                 draw(st.sampled_from(QUANTITIES[symbol])), tif,
                 tif is TimeInForce.GTC and draw(st.booleans()))


@st.composite
def markets(draw: st.DrawFn) -> Market:
    symbol, side = draw(symbols), draw(sides)
    size = draw(st.sampled_from(BUDGETS if side is Side.BUY else QUANTITIES[symbol]))
    return Market(draw(users), symbol, side, size, draw(st.sampled_from(list(StpMode))))


@st.composite
def transfers(draw: st.DrawFn, kind: type[Deposit | Withdraw],
              amounts: dict[str, list[str]]) -> Deposit | Withdraw:
    asset = draw(assets)
    return kind(draw(users), asset, draw(st.sampled_from(amounts[asset])))


commands = st.one_of(
    limits(), limits(), limits(), markets(),
    st.builds(Cancel, users, st.integers(0, 50)),
    transfers(Deposit, DEPOSITS), transfers(Withdraw, WITHDRAWALS))
rounds = st.lists(st.lists(commands, min_size=1, max_size=8), min_size=2, max_size=5)

ALLOWED: dict[type, set[RejectCode]] = {
    Deposit: set(),
    Limit: {RejectCode.INSUFFICIENT_FUNDS, RejectCode.SELF_CROSS,
            RejectCode.POST_ONLY_WOULD_TAKE},
    Market: {RejectCode.INSUFFICIENT_FUNDS},
    Cancel: {RejectCode.ORDER_NOT_FOUND, RejectCode.ORDER_NOT_OPEN},
    Withdraw: {RejectCode.INSUFFICIENT_FUNDS},
}


# -- playing them ------------------------------------------------------------------------------


async def run(ex: Exchange, ids: list[str], c: Command,
              placed: list[str]) -> Outcome:
    user = ids[c.user]
    match c:
        case Deposit():
            return await ex.deposit(user, c.asset, D(c.amount))
        case Withdraw():
            return await ex.withdraw(user, c.asset, D(c.amount), "0xfeed")
        case Limit():
            return await ex.place_order(user, c.symbol, c.side, OrderType.LIMIT,
                                        price=D(c.price), quantity=D(c.quantity),
                                        time_in_force=c.tif, post_only=c.post_only)
        case Market():
            size = {"budget" if c.side is Side.BUY else "quantity": D(c.size)}
            return await ex.place_order(user, c.symbol, c.side, OrderType.MARKET,
                                        stp=c.stp, **size)
        case Cancel():
            if not placed:
                return Rejected(RejectCode.ORDER_NOT_FOUND)
            return await ex.cancel_order(user, placed[c.pick % len(placed)])
    raise AssertionError(c)


async def play(ex: Exchange, plan: list[list[Command]], seen: Counter[str]) -> None:
    ids = [await new_user(ex, "prop") for _ in range(N_USERS)]
    for user in ids:
        for asset, amount in FUNDING.items():
            ok(await ex.deposit(user, asset, D(amount)))
    placed: list[str] = []
    for round_ in plan:
        earlier = list(placed)
        outcomes = await asyncio.wait_for(asyncio.gather(
            *(run(ex, ids, c, earlier) for c in round_)), timeout=30)
        for c, outcome in zip(round_, outcomes, strict=True):
            if isinstance(outcome, Rejected):
                assert outcome.code in ALLOWED[type(c)], (c, outcome)
                seen[f"{type(c).__name__}: {outcome.code}"] += 1
                continue
            seen[f"{type(c).__name__}: {outcome.get('status', 'done')}"] += 1
            if isinstance(c, Limit | Market):
                placed.append(outcome["order_id"])
    await check(ex)
    await cancel_everything(ex, ids)
    await check(ex)


async def check(ex: Exchange) -> None:
    await assert_sound(ex)
    for symbol in (BTC_USDT, ETH_USDT):
        snap: Any = await ex.snapshot(symbol, depth=10_000)
        assert {"bids": normalized(snap["bids"]), "asks": normalized(snap["asks"])} == (
            await stored_levels(ex.db, symbol))


async def cancel_everything(ex: Exchange, ids: list[str]) -> None:
    rows = await ex.db.fetch_all(
        "SELECT id, user_id FROM orders WHERE status IN ('open', 'partially_filled')",
        types={"id": uuid.UUID, "user_id": uuid.UUID})
    mine = [r for r in rows if str(r["user_id"]) in ids]
    for r in mine:
        result = ok(await ex.cancel_order(str(r["user_id"]), str(r["id"])))
        assert result["status"] == "cancelled"


async def _tally(ex: Exchange) -> dict[str, int]:
    rows = await ex.db.fetch_all("SELECT status, COUNT(*) AS n FROM orders GROUP BY status")
    tally = {f"orders {r['status']}": int(r["n"]) for r in rows}
    for table in ("trades", "withdrawals"):
        tally[table] = int(await ex.db.fetch_val(f"SELECT COUNT(*) FROM {table}"))  # noqa: S608
    return tally


# -- the property ----------------------------------------------------------------------------


def test_random_commands_conserve_money_and_match_the_database(tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    ex = Exchange(f"sqlite:///{tmp_path / 'property.db'}")
    loop.run_until_complete(ex.start())
    seen: Counter[str] = Counter()
    try:
        @settings(max_examples=40, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(plan=rounds)
        def example(plan: list[list[Command]]) -> None:
            loop.run_until_complete(play(ex, plan, seen))

        example()
        tally = loop.run_until_complete(_tally(ex))
        print(f"conservation property covered: {tally}, outcomes: {dict(seen)}")
        assert tally["trades"] > 0, tally  # the property is not vacuous
        assert tally["withdrawals"] > 0, tally
    finally:
        loop.run_until_complete(ex.stop())
        loop.close()
