"""Money on grids whose trades round (issue 13): BTC/EUR at 0.01 × 0.0001, and random
decimals and steps, through the clearing and the engine together.

Checked against a model in ``Fraction`` arithmetic (independent of the fine units), after
every command: the ledger's invariants (conservation per asset, ``held`` = reservations,
nothing negative); every account's total moved by exactly what its trades, with the
API's rounding rule, and fees say; each buy order has paid in all its exact cost rounded
half-to-even — never more than it reserved, a budget buy never more than its budget; each
resting buy holds ``⌈its cost so far + remaining × limit⌉`` less what it paid (a sell its
remaining base), an order that ended holds nothing. At the end every resting order is
cancelled and nothing is left held.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from excentra.engine import (
    OrderAccepted,
    OrderRejected,
    OrderType,
    PairSpec,
    RejectCode,
    Side,
    StpMode,
    TimeInForce,
    TradeExecuted,
)
from excentra.ledger import FEE_ACCOUNT, PairTerms
from excentra.ledger.clearing import NewOrder
from tests.engine.commands import USERS, Cancel, Command, Limit, Market
from tests.engine.grids import exact_value, grid_commands, grids, quote_unit
from tests.ledger.venue import Venue

D = Decimal
BTC_EUR = "BTC/EUR"
ROUND = round  # Python's round() of a Fraction is half-to-even: the API's rule


def btc_eur_venue(maker_fee: str = "0", taker_fee: str = "0") -> Venue:
    v = Venue()
    v.clearing.add_asset("BTC", 8)
    v.clearing.add_asset("EUR", 2)
    v.add_pair(PairTerms(PairSpec(BTC_EUR, 8, 2, D("0.01"), D("0.0001")), "BTC", "EUR",
                         D(maker_fee), D(taker_fee)))
    return v


def order(oid: str, user: str, side: Side, price: str, quantity: str) -> NewOrder:
    return NewOrder(oid, user, BTC_EUR, side, OrderType.LIMIT, price=D(price),
                    quantity=D(quantity))


def cents(v: Venue, user: str) -> tuple[int, int]:
    b = v.clearing.ledger.balance(user, "EUR")
    return b.available, b.held


# -- BTC/EUR, by hand ----------------------------------------------------------------------------


def test_partial_fills_at_several_prices_pay_the_rounded_running_cost() -> None:
    v = btc_eur_venue()
    v.deposit("s1", "BTC", "1")
    v.deposit("s2", "BTC", "1")
    v.deposit("b", "EUR", "100")
    # 100.01 × 0.0005 = 0.050005 and 100.03 × 0.0005 = 0.050015 (each rounds to 0.05)
    v.submit(order("a1", "s1", Side.SELL, "100.01", "0.0005"))
    v.submit(order("a2", "s2", Side.SELL, "100.03", "0.0005"))
    v.submit(order("bid", "b", Side.BUY, "100.05", "0.0015"))
    # reserved: 100.05 × 0.0015 = 0.150075 → 0.16
    [t1, t2] = v.trades
    # the buy's running cost: 0.050005 → 0.05, then 0.10002 → 0.10: it pays 0.05 + 0.05
    assert (t1.quote, t2.quote) == (5, 5)
    # it still holds what 0.0005 more at 100.05 can cost: ⌈0.10002 + 0.050025⌉ − 0.10
    assert v.clearing.ledger.reserved("bid") == 16 - 10
    assert cents(v, "b") == (10_000 - 16, 6)
    assert cents(v, "s1") == (5, 0)
    assert cents(v, "s2") == (5, 0)
    v.deposit("s3", "BTC", "1")
    v.submit(order("a3", "s3", Side.SELL, "100.05", "0.0005"))  # fills the rest as maker
    # running cost 0.150045 → 0.15: this fill pays 0.05; the bid ends and holds nothing
    assert v.trades[-1].quote == 5
    assert cents(v, "b") == (10_000 - 15, 0)
    assert v.totals()["EUR"] == 10_000
    v.clearing.ledger.check()


def test_fills_too_small_for_a_cent_add_up_to_the_cents_they_cost() -> None:
    v = btc_eur_venue()
    v.deposit("s", "BTC", "1")
    v.deposit("b", "EUR", "10")
    v.submit(order("bid", "b", Side.BUY, "0.5", "0.0035"))  # 0.00175 → reserves 0.01
    paid = []
    for i in range(7):  # seven fills of 0.0005 at 0.50: 0.00025 each
        v.submit(order(f"a{i}", "s", Side.SELL, "0.5", "0.0005"))
        paid.append(v.trades[-1].quote)
    # R(0.00025) … R(0.00175): 0, 0, 0, 0, 0, 0, 0 — the cumulative cost never reaches
    # half a cent until it is 0.005, so the buyer pays R(0.00175) = 0 in all
    assert sum(paid) == 0 == ROUND(Fraction("0.00175") * 100)
    assert cents(v, "b") == (1_000, 0)
    assert v.clearing.ledger.balance("b", "BTC").available == 35 * 10 ** 4
    v.clearing.ledger.check()


def test_a_budget_buy_spends_no_more_than_its_budget() -> None:
    v = btc_eur_venue()
    v.deposit("s", "BTC", "1")
    v.deposit("b", "EUR", "1")
    v.submit(order("a1", "s", Side.SELL, "33.33", "0.0001"))  # 0.003333 per lot
    v.submit(order("a2", "s", Side.SELL, "33.35", "0.0100"))  # 0.003335 per lot
    v.submit(NewOrder("m", "b", BTC_EUR, Side.BUY, OrderType.MARKET, budget=D("0.05")))
    # 1 lot at 33.33 + 13 lots at 33.35 = 0.046688 (one lot more: 0.050023)
    assert [(t.event.quantity, t.quote) for t in v.trades] == [(1, 0), (13, 5)]
    assert cents(v, "b") == (100 - 5, 0)
    v.clearing.ledger.check()


def test_a_cancelled_partly_filled_buy_releases_everything_it_held() -> None:
    v = btc_eur_venue(maker_fee="0.001", taker_fee="0.002")
    v.deposit("s", "BTC", "1")
    v.deposit("b", "EUR", "1000")
    v.submit(order("bid", "b", Side.BUY, "65000.01", "0.0103"))  # 669.500103 → 669.51
    assert cents(v, "b") == (100_000 - 66_951, 66_951)
    v.submit(order("a", "s", Side.SELL, "64999.99", "0.0051"))
    # maker price 65000.01 × 0.0051 = 331.500051 → 331.50
    assert v.trades[-1].quote == 33_150
    v.cancel(BTC_EUR, "bid", "b")
    assert cents(v, "b") == (100_000 - 33_150, 0)
    # the seller (taker) paid 0.2 % of 331.50, rounded down: 0.66
    assert cents(v, "s") == (33_150 - 66, 0)
    assert v.fees("EUR") == 66
    assert "bid" not in v.clearing.terms
    assert "bid" not in v.clearing.spent
    v.clearing.ledger.check()


# -- random grids ---------------------------------------------------------------------------------


class Model:
    """What every account and order should hold, in exact arithmetic."""

    def __init__(self, v: Venue, pair: PairTerms) -> None:
        self.v, self.pair, self.spec = v, pair, pair.spec
        self.totals: dict[tuple[str, str], int] = defaultdict(int)
        self.cost: dict[str, Fraction] = defaultdict(Fraction)
        """Exact quote cost of each buy order's fills so far."""
        self.paid: dict[str, int] = defaultdict(int)
        self.limit: dict[str, int] = {}
        self.reserved: dict[str, int] = {}
        """What each buy order held when it was placed: its reservation or budget."""
        self.orders: set[str] = set()
        """Every order the book accepted."""

    def fund(self, user: str) -> None:
        for asset, decimals in ((self.pair.base, self.spec.base_decimals),
                                (self.pair.quote, self.spec.quote_decimals)):
            self.v.deposit(user, asset, D(10) ** 15)  # the most one deposit may be
            self.totals[(user, asset)] += 10 ** (15 + decimals)

    def trade(self, e: TradeExecuted) -> None:
        spec, pair = self.spec, self.pair
        taker_buys = e.taker_side is Side.BUY
        buy, buyer = (e.taker_order_id, e.taker_user_id) if taker_buys else (
            e.maker_order_id, e.maker_user_id)
        sell, seller = (e.maker_order_id, e.maker_user_id) if taker_buys else (
            e.taker_order_id, e.taker_user_id)
        assert buy != sell
        before = self.cost[str(buy)]
        self.cost[str(buy)] += exact_value(spec, e.price, e.quantity)
        unit = quote_unit(spec)
        quote = ROUND(self.cost[str(buy)] / unit) - ROUND(before / unit)
        base = int(Fraction(spec.quantity(e.quantity)) * 10 ** spec.base_decimals)
        buyer_rate = pair.taker_fee if taker_buys else pair.maker_fee
        seller_rate = pair.maker_fee if taker_buys else pair.taker_fee
        buyer_fee = int(base * Fraction(buyer_rate))
        seller_fee = int(quote * Fraction(seller_rate))
        self.paid[str(buy)] += quote
        t = self.totals
        t[(str(buyer), pair.quote)] -= quote
        t[(str(buyer), pair.base)] += base - buyer_fee
        t[(str(seller), pair.base)] -= base
        t[(str(seller), pair.quote)] += quote - seller_fee
        t[(FEE_ACCOUNT, pair.base)] += buyer_fee
        t[(FEE_ACCOUNT, pair.quote)] += seller_fee

    def check(self) -> None:
        v, spec, unit = self.v, self.spec, quote_unit(self.spec)
        ledger = v.clearing.ledger
        ledger.check()
        for (user, asset), total in self.totals.items():
            b = ledger.balance(user, asset)
            assert b.available + b.held == total, (user, asset)
        book = v.books[spec.symbol]
        resting = {str(o.order_id): o for o in book.resting()}
        for oid, paid in self.paid.items():
            assert paid == ROUND(self.cost[oid] / unit), oid  # R(its exact total)
            assert paid <= self.reserved[oid], oid  # never more than it held
        for oid in self.orders | set(resting):
            o = resting.get(oid)
            held = ledger.reserved(oid)
            if o is None:
                assert held == 0, f"{oid} ended but holds {held}"
                assert oid not in v.clearing.terms
                assert oid not in v.clearing.spent
            elif o.side is Side.SELL:
                assert held * Fraction(1, 10 ** spec.base_decimals) == Fraction(
                    spec.quantity(o.remaining))
            else:  # at least what its remaining lots can still add to what it pays
                most = self.cost[oid] + exact_value(spec, o.price, o.remaining)
                assert held == -(-most // unit) - self.paid[oid], oid
                assert held >= ROUND(most / unit) - self.paid[oid], oid


def run(v: Venue, model: Model, cmd: Command) -> None:
    symbol = model.spec.symbol
    if isinstance(cmd, Cancel):
        v.cancel(symbol, str(cmd.oid), cmd.user)
        return
    if isinstance(cmd, Limit):
        new = NewOrder(str(cmd.oid), cmd.user, symbol, cmd.side, OrderType.LIMIT,
                       price=cmd.price, quantity=cmd.quantity, time_in_force=cmd.tif,
                       post_only=cmd.post_only, stp=cmd.stp)
    else:
        assert isinstance(cmd, Market)
        new = NewOrder(str(cmd.oid), cmd.user, symbol, cmd.side, OrderType.MARKET,
                       quantity=cmd.quantity, budget=cmd.budget, stp=cmd.stp)
    events = v.submit(new)
    if isinstance(events, RejectCode):
        # a market buy sized by quantity; an order too big for the funds on a coarse grid
        assert events in (RejectCode.INVALID_NUMBER, RejectCode.INSUFFICIENT_FUNDS)
        return
    first = events[0]
    if isinstance(first, OrderRejected):
        return
    assert isinstance(first, OrderAccepted)
    model.orders.add(new.order_id)
    if new.side is Side.BUY:
        model.reserved[new.order_id] = (
            first.budget if first.budget is not None
            else -(-exact_value(model.spec, first.price or 0, first.quantity)
                   // quote_unit(model.spec)))
    for e in events:
        if isinstance(e, TradeExecuted):
            model.trade(e)


@settings(max_examples=250, deadline=None)
@given(grids(), st.sampled_from(["0", "0.001"]), st.sampled_from(["0", "0.0025"]),
       st.data())
def test_money_is_exact_on_random_grids(spec: PairSpec, maker_fee: str, taker_fee: str,
                                        data: st.DataObject) -> None:
    v = Venue()
    v.clearing.add_asset("B", spec.base_decimals)
    v.clearing.add_asset("Q", spec.quote_decimals)
    pair = PairTerms(spec, "B", "Q", D(maker_fee), D(taker_fee))
    v.add_pair(pair)
    model = Model(v, pair)
    for user in USERS:
        model.fund(user)
    for cmd in data.draw(grid_commands(spec, max_size=60)):
        run(v, model, cmd)
        model.check()
    for o in list(v.books[spec.symbol].resting()):
        v.cancel(spec.symbol, o.order_id, None)
    model.check()
    assert all(b.held == 0 for b in v.clearing.ledger.balances.values())
    assert not v.clearing.terms
    assert not v.clearing.spent


def test_limit_orders_of_every_time_in_force_settle_on_btc_eur() -> None:
    v = btc_eur_venue()
    model = Model(v, v.clearing.pairs[BTC_EUR])
    for user in ("s", "b"):
        model.fund(user)
    cmds: list[Command] = [
        Limit(1, "s", Side.SELL, D("100.01"), D("0.0005"), TimeInForce.GTC, False,
              StpMode.EXPIRE_TAKER),
        Limit(2, "s", Side.SELL, D("100.02"), D("0.0007"), TimeInForce.GTC, False,
              StpMode.EXPIRE_TAKER),
        Limit(3, "b", Side.BUY, D("100.02"), D("0.0009"), TimeInForce.IOC, False,
              StpMode.EXPIRE_TAKER),
        Limit(4, "b", Side.BUY, D("100.02"), D("0.0009"), TimeInForce.FOK, False,
              StpMode.EXPIRE_TAKER),
        Limit(5, "b", Side.BUY, D("100.03"), D("0.0001"), TimeInForce.FOK, False,
              StpMode.EXPIRE_TAKER),
        Market(6, "b", Side.BUY, None, D("0.07"), StpMode.EXPIRE_TAKER),
    ]
    for cmd in cmds:
        run(v, model, cmd)
        model.check()
    assert [t.event.quantity for t in v.trades] == [5, 4, 1, 2]
    assert v.books[BTC_EUR].best_ask() is None
