"""Conservation and no-dust properties of the whole pipeline on random command sequences.

Four users trade on two pairs (BTC/USDT with fees, ETH/USDT with an 18-decimal base and no
fees), deposit, withdraw and cancel at random. After every command:

* ``ledger.check()``: per asset, all accounts (fee account included) sum to deposits minus
  completed withdrawals; ``held`` equals the reservations; nothing is negative;
* every order on a book holds exactly what its remaining quantity still needs (no dust),
  and an order that left the book holds nothing and is forgotten by the clearing;
* each account's total changed by exactly what the command's trades, deposits and
  withdrawals say, with fees computed here independently (integer floor).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from excentra.engine import (
    Event,
    OrderRejected,
    OrderType,
    RejectCode,
    Side,
    StpMode,
    TimeInForce,
    TradeExecuted,
)
from excentra.ledger import FEE_ACCOUNT, PairTerms, still_needed
from excentra.ledger.clearing import NewOrder
from tests.ledger.venue import (
    BTC_USDT,
    ETH_USDT,
    Venue,
    btc_usdt_terms,
    eth_usdt_terms,
)

D = Decimal
USERS = ["u0", "u1", "u2", "u3"]
SYMBOLS = [BTC_USDT, ETH_USDT]
ASSETS = {"BTC": 8, "ETH": 18, "USDT": 6}
MAKER_FEE, TAKER_FEE = "0.001", "0.0025"
FUNDING = {"BTC": 10 * 10**8, "ETH": 10 * 10**18, "USDT": 5_000 * 10**6}


# -- commands --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deposit:
    user: str
    asset: str
    units: int


@dataclass(frozen=True)
class Place:
    order: NewOrder


@dataclass(frozen=True)
class Cancel:
    target: int
    """Index of an earlier order id (or one not used yet)."""
    by: str | None
    """``"owner"``, another user id, or ``None`` (an admin cancel)."""
    symbol: str
    """The book to try when the target was never placed."""


@dataclass(frozen=True)
class Withdraw:
    user: str
    asset: str
    amount: Decimal


@dataclass(frozen=True)
class EndWithdrawal:
    target: int
    complete: bool


Command = Deposit | Place | Cancel | Withdraw | EndWithdrawal

ticks = st.integers(9_998, 10_002)  # 99.98 .. 100.02: the books cross often
lots = st.one_of(st.integers(1, 5_000), st.integers(1, 20))
deposit_units = {"BTC": st.integers(1, 3 * 10**8), "ETH": st.integers(1, 3 * 10**18),
                 "USDT": st.integers(1, 500 * 10**6)}


def mostly(valid: st.SearchStrategy[Decimal], *invalid: str) -> st.SearchStrategy[Decimal]:
    """``valid`` nine times in ten, else one of the ``invalid`` values."""
    return st.integers(0, 9).flatmap(
        lambda i: valid if i else st.sampled_from([D(x) for x in invalid]))


prices = mostly(ticks.map(lambda t: D(t).scaleb(-2)), "100.005", "0", "-1")
quantities = mostly(lots.map(lambda n: D(n).scaleb(-4)), "0.00001", "0")
budgets = mostly(st.integers(1, 100 * 10**6).map(lambda u: D(u).scaleb(-6)), "1.0000001", "0")
tifs = st.sampled_from([TimeInForce.GTC] * 4 + [TimeInForce.IOC, TimeInForce.FOK])
stps = st.sampled_from([StpMode.EXPIRE_TAKER] * 2 + [StpMode.EXPIRE_MAKER,
                                                     StpMode.EXPIRE_BOTH])
users = st.sampled_from(USERS)


@st.composite
def deposits(draw: Any) -> Deposit:
    asset = draw(st.sampled_from(list(ASSETS)))
    return Deposit(draw(users), asset, draw(deposit_units[asset]))


@st.composite
def orders(draw: Any, oid: str) -> NewOrder:
    user, symbol = draw(users), draw(st.sampled_from(SYMBOLS))
    side = draw(st.sampled_from([Side.BUY, Side.SELL]))
    if draw(st.integers(0, 3)):
        return NewOrder(oid, user, symbol, side, OrderType.LIMIT, price=draw(prices),
                        quantity=draw(quantities), time_in_force=draw(tifs),
                        post_only=draw(st.booleans()) and draw(st.booleans()), stp=draw(stps))
    if side is Side.BUY:
        return NewOrder(oid, user, symbol, side, OrderType.MARKET, budget=draw(budgets),
                        stp=draw(stps))
    return NewOrder(oid, user, symbol, side, OrderType.MARKET, quantity=draw(quantities),
                    stp=draw(stps))


@st.composite
def withdrawals(draw: Any) -> Withdraw:
    asset = draw(st.sampled_from(list(ASSETS)))
    units = draw(st.one_of(deposit_units[asset], st.integers(1, 1_000)))
    amount = D(units).scaleb(-ASSETS[asset])
    if not draw(st.integers(0, 9)):
        amount = draw(st.sampled_from([D("0"), D("-1"), D("1E-19")]))
    return Withdraw(draw(users), asset, amount)


@st.composite
def scenarios(draw: Any, max_size: int = 60) -> list[Command]:
    # u0..u2 start well funded (plus odd minor units); u3 with little, so it runs short
    cmds: list[Command] = [
        Deposit(user, asset, draw(deposit_units[asset]) + (user != "u3") * FUNDING[asset])
        for user in USERS for asset in ASSETS]
    n_orders = n_withdrawals = 0
    for _ in range(draw(st.integers(1, max_size))):
        kind = draw(st.sampled_from(["order"] * 8 + ["cancel"] * 3 + ["deposit", "withdraw",
                                                                       "end"]))
        if kind == "order":
            cmds.append(Place(draw(orders(f"o{n_orders}"))))
            n_orders += 1
        elif kind == "cancel":
            by = draw(st.sampled_from(["owner", "owner", None, *USERS]))
            cmds.append(Cancel(draw(st.integers(0, n_orders)), by,
                               draw(st.sampled_from(SYMBOLS))))
        elif kind == "deposit":
            cmds.append(draw(deposits()))
        elif kind == "withdraw":
            cmds.append(draw(withdrawals()))
            n_withdrawals += 1
        else:
            cmds.append(EndWithdrawal(draw(st.integers(0, max(n_withdrawals, 1))),
                                      draw(st.booleans())))
    return cmds


# -- the model: what the test knows independently ----------------------------------------------


@dataclass
class Model:
    venue: Venue
    external: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    orders: dict[str, NewOrder] = field(default_factory=dict)
    """Every order submitted, by id (rejected ones too)."""
    withdrawals: list[str] = field(default_factory=list)
    pending: dict[str, int] = field(default_factory=dict)
    """Pending withdrawal ref -> units held."""

    def run(self, cmd: Command) -> None:
        before = account_totals(self.venue)
        expected: dict[tuple[str, str], int] = defaultdict(int)
        clearing = self.venue.clearing
        if isinstance(cmd, Deposit):
            amount = clearing.amount(cmd.asset, cmd.units)
            assert not isinstance(clearing.deposit(cmd.user, cmd.asset, amount, "dep"),
                                  RejectCode)
            self.external[cmd.asset] += cmd.units
            expected[(cmd.user, cmd.asset)] += cmd.units
        elif isinstance(cmd, Place):
            order = cmd.order
            self.orders[order.order_id] = order
            result = self.venue.submit(order)
            if not isinstance(result, RejectCode):
                trade_deltas(clearing.pairs[order.symbol], result, expected)
        elif isinstance(cmd, Cancel):
            self.cancel(cmd, expected)
        elif isinstance(cmd, Withdraw):
            self.withdraw(cmd)
        elif cmd.target < len(self.withdrawals):
            ref = self.withdrawals[cmd.target]
            if ref in self.pending:
                units = self.pending.pop(ref)
                asset = clearing.ledger.reservations[ref].asset
                user = clearing.ledger.reservations[ref].user_id
                if cmd.complete:
                    clearing.complete_withdrawal(ref)
                    self.external[asset] -= units
                    expected[(user, asset)] -= units
                else:
                    clearing.cancel_withdrawal(ref)
            else:  # already ended: cancelling again is a no-op
                assert clearing.cancel_withdrawal(ref) == []
        after = account_totals(self.venue)
        changes = {k: after.get(k, 0) - before.get(k, 0) for k in before.keys() | after.keys()}
        assert {k: d for k, d in changes.items() if d} == {k: d for k, d in expected.items()
                                                          if d}
        self.check()

    def cancel(self, cmd: Cancel, expected: dict[tuple[str, str], int]) -> None:
        oid = f"o{cmd.target}"
        order = self.orders.get(oid)
        symbol = order.symbol if order else cmd.symbol
        user = (order.user_id if order else USERS[0]) if cmd.by == "owner" else cmd.by
        events = self.venue.cancel(symbol, oid, user)
        trade_deltas(self.venue.clearing.pairs[symbol], events, expected)  # none, surely

    def withdraw(self, cmd: Withdraw) -> None:
        ref = f"w{len(self.withdrawals)}"
        self.withdrawals.append(ref)
        clearing = self.venue.clearing
        available = clearing.ledger.balance(cmd.user, cmd.asset).available
        result = clearing.request_withdrawal(ref, cmd.user, cmd.asset, cmd.amount)
        units = clearing.units(cmd.asset, cmd.amount)
        if isinstance(units, RejectCode):
            assert result is units
        elif units > available:
            assert result is RejectCode.INSUFFICIENT_FUNDS
        else:
            assert not isinstance(result, RejectCode)
            self.pending[ref] = units

    def check(self) -> None:
        v = self.venue
        ledger = v.clearing.ledger
        ledger.check()
        assert {a: n for a, n in ledger.external.items() if n} == {
            a: n for a, n in self.external.items() if n}
        resting: set[Hashable] = set()
        for symbol, book in v.books.items():
            book.validate()
            pair = v.clearing.pairs[symbol]
            for o in book.resting():
                resting.add(o.order_id)
                terms = v.clearing.terms[o.order_id]
                assert (terms.side, terms.price) == (o.side, o.price)
                r = ledger.reservations[o.order_id]
                assert r.user_id == o.user_id
                assert r.asset == (pair.base if o.side is Side.SELL else pair.quote)
                assert r.amount == still_needed(pair, terms, o.remaining), "dust held"
        assert set(v.clearing.terms) == resting
        assert set(ledger.reservations) == resting | set(self.pending)
        for oid in self.orders.keys() - resting:
            assert ledger.reserved(oid) == 0
            assert oid not in v.clearing.terms
        for ref, units in self.pending.items():
            assert ledger.reserved(ref) == units
        for asset in ASSETS:
            assert ledger.balance(FEE_ACCOUNT, asset).held == 0

    def wind_down(self) -> None:
        """Cancel everything: every account's held returns to exactly zero."""
        for symbol, book in self.venue.books.items():
            for o in list(book.resting()):
                events = self.venue.cancel(symbol, o.order_id, None)
                assert not isinstance(events[0], OrderRejected)
        for ref in list(self.pending):
            self.venue.clearing.cancel_withdrawal(ref)
            del self.pending[ref]
        self.check()
        ledger = self.venue.clearing.ledger
        assert not ledger.reservations
        assert not self.venue.clearing.terms
        assert all(b.held == 0 for b in ledger.balances.values())


def account_totals(v: Venue) -> dict[tuple[str, str], int]:
    return {k: b.available + b.held for k, b in v.clearing.ledger.balances.items()}


def floor_fee(amount: int, rate: Decimal) -> int:
    n, d = rate.as_integer_ratio()
    return amount * n // d


def trade_deltas(pair: PairTerms, events: list[Event],
                 expected: dict[tuple[str, str], int]) -> None:
    """What each trade must do to the accounts, computed from scratch."""
    spec = pair.spec
    for e in events:
        if not isinstance(e, TradeExecuted):
            continue
        base = e.quantity * spec.base_units_per_lot
        quote = e.price * e.quantity * spec.quote_per_tick_lot
        assert e.quote == quote
        taker_buys = e.taker_side is Side.BUY
        buyer, seller = ((e.taker_user_id, e.maker_user_id) if taker_buys
                         else (e.maker_user_id, e.taker_user_id))
        assert buyer != seller  # STP never lets a user trade with itself
        buyer_fee = floor_fee(base, pair.taker_fee if taker_buys else pair.maker_fee)
        seller_fee = floor_fee(quote, pair.maker_fee if taker_buys else pair.taker_fee)
        expected[(str(buyer), pair.base)] += base - buyer_fee
        expected[(str(buyer), pair.quote)] -= quote
        expected[(str(seller), pair.base)] -= base
        expected[(str(seller), pair.quote)] += quote - seller_fee
        expected[(FEE_ACCOUNT, pair.base)] += buyer_fee
        expected[(FEE_ACCOUNT, pair.quote)] += seller_fee


def new_venue() -> Venue:
    v = Venue()
    for asset, decimals in ASSETS.items():
        v.clearing.add_asset(asset, decimals)
    v.add_pair(btc_usdt_terms(MAKER_FEE, TAKER_FEE))
    v.add_pair(eth_usdt_terms())
    return v


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_money_is_conserved_and_no_dust_is_held_after_every_command(
        cmds: list[Command]) -> None:
    model = Model(new_venue())
    for cmd in cmds:
        model.run(cmd)
    model.wind_down()
