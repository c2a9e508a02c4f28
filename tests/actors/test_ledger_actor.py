"""LedgerActor, alone: every balance, held before the book and settled after it.

Protocol (its peers, one book per pair and the journal, are recording probes here):

    PlaceOrder(command_id, order, reply)
        funds available ─► hold them ─► Match(command_id, opened, reply) to the pair's book
        refused         ─► reply ← Rejected(code); nothing to the book or the journal
    CancelOrder(command_id, order_id, user_id, reply)
        the user's open order ─► Cancel(command_id, order_id, user_id, reply) to its book
        unknown / not theirs  ─► reply ← Rejected(ORDER_NOT_FOUND); nothing sent
    Settle(command_id, symbol, events, reply, ...)        (what a book answers)
        ─► pay fills, release what is no longer needed ─► Commit(writes, result, reply, ...)
           to the journal (which answers the reply once durable); a book's refusal
           releases the hold and answers Rejected, with no Commit
    Deposit(...)                 ─► Commit to the journal (no book involved)
    BookDown(symbol, barrier)    ─► each Match/Cancel sent to that book and not settled:
                                    hold released, reply failed ``Unavailable``; then
                                    Barrier(barrier) to the journal; the pair refuses
                                    commands (``Unavailable``) until
    BookUp(symbol, book)         ─► the pair's commands go to the new book
    SetSuspended(user, flag)     ─► a suspended user may not place orders or withdraw
    SetPairActive(symbol, flag)  ─► a halted pair takes no orders (cancels still go)
    Audit(reply)                 ─► reply ← {(user, asset): (available, held)}

A command id seen again while the first is still in flight is answered
``Rejected(OUTCOME_UNKNOWN)``; one refused before it changed anything may be retried.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pykka
import pytest
import pytest_asyncio

from excentra.actors.book import Cancel, Match, Settle
from excentra.actors.bridge import Reply, Unavailable
from excentra.actors.journal import Barrier, Commit
from excentra.actors.ledger import (
    Audit,
    BookDown,
    BookUp,
    CancelOrder,
    Deposit,
    LedgerActor,
    PlaceOrder,
    RegisterBooks,
    Rejected,
    SetPairActive,
    SetSuspended,
    Withdraw,
)
from excentra.engine import OrderBook, OrderRejected, OrderStatus, RejectCode, Side
from excentra.ledger.clearing import NewOrder
from tests.actors.probes import (
    BTC_USDT,
    DECIMALS,
    ETH_USDT,
    Deaths,
    Probe,
    answer,
    fund,
    limit,
    market,
    matched,
    new_id,
    stopped,
    unanswered,
)

pytestmark = pytest.mark.asyncio

D = Decimal
USDT = 10 ** DECIMALS["USDT"]
"""One USDT in minor units."""
BTC = 10 ** DECIMALS["BTC"]


@dataclass
class Rig:
    """A LedgerActor whose books (BTC/USDT, ETH/USDT) and journal are probes.

    ``alice`` has 1000 USDT, ``bob`` 2 BTC, ``carol`` nothing (all held in memory only:
    the journal is a probe). ``engines`` are plain
    ``OrderBook``s the test uses to answer for the probe books, as a real book would.
    """

    loop: asyncio.AbstractEventLoop
    ledger: pykka.ActorRef[Any]
    books: dict[str, Probe]
    journal: Probe
    deaths: Deaths
    alice: str
    bob: str
    carol: str
    engines: dict[str, OrderBook] = field(default_factory=dict)

    def command(self, command_id: str | None = None) -> Reply:
        return Reply(self.loop, command_id=command_id or new_id())

    def place(self, order: NewOrder, command_id: str | None = None) -> Reply:
        reply = self.command(command_id)
        assert reply.command_id is not None
        self.ledger.tell(PlaceOrder(reply.command_id, order, reply))
        return reply

    def cancel(self, order_id: str, user_id: str) -> Reply:
        reply = self.command()
        assert reply.command_id is not None
        self.ledger.tell(CancelOrder(reply.command_id, order_id, user_id, reply))
        return reply

    async def placed(self, order: NewOrder) -> Commit:
        """Place ``order``, answer for its book, and return the journal's Commit."""
        self.place(order)
        match = await self.books[order.symbol].next(Match)
        self.answer_match(match)
        return await self.journal.next(Commit)

    def answer_match(self, match: Match) -> None:
        """Do what the book would: match the order and tell the ledger the outcome."""
        order = match.opened.order
        events = matched(self.engines[order.symbol], order)
        self.ledger.tell(Settle(match.command_id, order.symbol, events, match.reply,
                                opened=match.opened))

    async def balances(self) -> dict[tuple[str, str], tuple[int, int]]:
        """(available, held) per account, after the ledger checked its invariants."""
        reply = Reply(self.loop)
        self.ledger.tell(Audit(reply))
        balances: dict[tuple[str, str], tuple[int, int]] = await answer(reply)
        return balances

    async def balance(self, user: str, asset: str) -> tuple[int, int]:
        return (await self.balances()).get((user, asset), (0, 0))

    async def drained(self) -> None:
        """Everything told to the ledger so far is handled, and all it sent has arrived."""
        await self.balances()
        for probe in [*self.books.values(), self.journal]:
            await probe.sync()

    def sent_nothing(self) -> bool:
        return not self.journal.received and not any(p.received for p in self.books.values())


@pytest_asyncio.fixture
async def rig() -> AsyncIterator[Rig]:
    loop = asyncio.get_running_loop()
    clearing = market()
    alice, bob, carol = new_id(), new_id(), new_id()
    fund(clearing, alice, USDT="1000")
    fund(clearing, bob, BTC="2")
    books = {symbol: Probe(loop) for symbol in clearing.pairs}
    journal, deaths = Probe(loop), Deaths(loop)
    ledger = LedgerActor.start(clearing, journal.ref, 0, 0, name="ledger", on_death=deaths)
    ledger.tell(RegisterBooks({s: p.ref for s, p in books.items()},
                              {s: uuid.uuid4() for s in books}))
    engines = {s: OrderBook(t.spec) for s, t in clearing.pairs.items()}
    try:
        yield Rig(loop, ledger, books, journal, deaths, alice, bob, carol, engines)
    finally:
        await stopped(ledger, journal.ref, *(p.ref for p in books.values()))
        assert not deaths.reported, deaths.reported


# -- placing -----------------------------------------------------------------------------


async def test_place_order_holds_the_funds_and_sends_a_match_to_the_pairs_book(
        rig: Rig) -> None:
    order = limit(rig.alice, Side.BUY, "100", "1.5")
    reply = rig.place(order, command_id="place-1")

    match = await rig.books[BTC_USDT].next(Match)

    assert (match.command_id, match.opened.order, match.reply) == ("place-1", order, reply)
    assert await rig.balance(rig.alice, "USDT") == (850 * USDT, 150 * USDT)
    await rig.drained()
    assert not rig.books[ETH_USDT].received
    assert not rig.journal.received
    assert await unanswered(reply)  # the journal answers, once the outcome is durable


async def test_place_order_without_funds_is_rejected_and_sends_nothing(rig: Rig) -> None:
    reply = rig.place(limit(rig.carol, Side.BUY, "100", "1"))

    assert await answer(reply) == Rejected(RejectCode.INSUFFICIENT_FUNDS)
    await rig.drained()
    assert rig.sent_nothing()
    assert await rig.balance(rig.carol, "USDT") == (0, 0)


async def test_place_order_on_an_unknown_pair_is_rejected_pair_not_found(rig: Rig) -> None:
    reply = rig.place(limit(rig.alice, Side.BUY, "100", "1", symbol="DOGE/USDT"))

    assert await answer(reply) == Rejected(RejectCode.PAIR_NOT_FOUND)
    await rig.drained()
    assert rig.sent_nothing()


async def test_a_repeated_command_id_while_the_first_is_in_flight_is_outcome_unknown(
        rig: Rig) -> None:
    order = limit(rig.alice, Side.BUY, "100", "1")
    first = rig.place(order, command_id="place-1")
    retry = rig.place(order, command_id="place-1")

    assert await answer(retry) == Rejected(RejectCode.OUTCOME_UNKNOWN)
    await rig.drained()
    assert [m.reply for m in rig.books[BTC_USDT].received] == [first]
    assert await rig.balance(rig.alice, "USDT") == (900 * USDT, 100 * USDT)  # held once


async def test_a_command_id_refused_before_it_changed_anything_may_be_retried(
        rig: Rig) -> None:
    order = limit(rig.carol, Side.BUY, "100", "1")
    assert await answer(rig.place(order, "place-1")) == Rejected(
        RejectCode.INSUFFICIENT_FUNDS)
    rig.ledger.tell(Deposit(new_id(), rig.carol, "USDT", D(100), rig.command()))

    rig.place(order, "place-1")

    assert (await rig.books[BTC_USDT].next(Match)).command_id == "place-1"


# -- settling what a book answers ----------------------------------------------------------


async def test_a_settled_placement_is_committed_to_the_journal_with_writes_and_result(
        rig: Rig) -> None:
    order = limit(rig.alice, Side.BUY, "100", "1")
    reply = rig.place(order, command_id="place-1")
    match = await rig.books[BTC_USDT].next(Match)

    rig.answer_match(match)
    commit = await rig.journal.next(Commit)

    assert commit.reply is reply
    assert commit.symbol == BTC_USDT
    assert commit.writes.command_id == "place-1"
    assert commit.writes.kind == "place_order"
    assert [str(row.id) for row in commit.writes.orders] == [order.order_id]
    assert commit.result["order_id"] == order.order_id
    assert commit.result["status"] == OrderStatus.OPEN.value
    assert await rig.balance(rig.alice, "USDT") == (900 * USDT, 100 * USDT)  # still held
    assert await unanswered(reply)  # the journal answers, not the ledger


async def test_a_settled_trade_pays_both_sides(rig: Rig) -> None:
    await rig.placed(limit(rig.alice, Side.BUY, "100", "1"))

    commit = await rig.placed(limit(rig.bob, Side.SELL, "100", "1"))

    assert len(commit.trades) == 1
    assert len(commit.writes.trades) == 1
    balances = await rig.balances()
    assert balances[(rig.alice, "USDT")] == (900 * USDT, 0)
    assert balances[(rig.alice, "BTC")] == (1 * BTC, 0)
    assert balances[(rig.bob, "BTC")] == (1 * BTC, 0)
    assert balances[(rig.bob, "USDT")] == (100 * USDT, 0)


async def test_a_books_refusal_releases_the_hold_and_is_rejected_without_a_commit(
        rig: Rig) -> None:
    order = limit(rig.alice, Side.BUY, "100", "1")
    reply = rig.place(order)
    match = await rig.books[BTC_USDT].next(Match)

    rig.ledger.tell(Settle(match.command_id, BTC_USDT,
                           [OrderRejected(order.order_id, rig.alice, RejectCode.SELF_CROSS)],
                           match.reply, opened=match.opened))

    assert await answer(reply) == Rejected(RejectCode.SELF_CROSS)
    assert await rig.balance(rig.alice, "USDT") == (1000 * USDT, 0)
    await rig.drained()
    assert not rig.journal.received


# -- cancelling --------------------------------------------------------------------------


async def test_cancel_of_an_own_open_order_is_sent_to_its_pairs_book(rig: Rig) -> None:
    order = limit(rig.alice, Side.BUY, "100", "1")
    await rig.placed(order)

    reply = rig.cancel(order.order_id, rig.alice)
    cancel = await rig.books[BTC_USDT].next(Cancel)

    assert (cancel.order_id, cancel.user_id, cancel.reply) == (order.order_id, rig.alice,
                                                               reply)
    assert cancel.command_id == reply.command_id


async def test_a_settled_cancel_releases_the_hold_and_is_committed(rig: Rig) -> None:
    order = limit(rig.alice, Side.BUY, "100", "1")
    await rig.placed(order)
    reply = rig.cancel(order.order_id, rig.alice)
    cancel = await rig.books[BTC_USDT].next(Cancel)

    events = rig.engines[BTC_USDT].cancel(order.order_id, rig.alice)
    rig.ledger.tell(Settle(cancel.command_id, BTC_USDT, events, cancel.reply,
                           user_id=rig.alice))
    commit = await rig.journal.next(Commit)

    assert (commit.writes.kind, commit.reply) == ("cancel_order", reply)
    assert commit.result["status"] == OrderStatus.CANCELLED.value
    assert await rig.balance(rig.alice, "USDT") == (1000 * USDT, 0)


async def test_a_cancel_its_book_no_longer_finds_is_rejected_order_not_open(
        rig: Rig) -> None:
    """The ledger knew the order open, so the book finished it meanwhile (a fill whose
    Settle had not reached the ledger when the cancel was sent)."""
    order = limit(rig.alice, Side.BUY, "100", "1")
    await rig.placed(order)
    reply = rig.cancel(order.order_id, rig.alice)
    cancel = await rig.books[BTC_USDT].next(Cancel)

    rig.ledger.tell(Settle(cancel.command_id, BTC_USDT,
                           [OrderRejected(order.order_id, rig.alice,
                                          RejectCode.ORDER_NOT_FOUND)],
                           cancel.reply, user_id=rig.alice))

    assert await answer(reply) == Rejected(RejectCode.ORDER_NOT_OPEN)
    await rig.drained()
    assert len(rig.journal.of(Commit)) == 1  # the placement only


async def test_cancel_of_an_unknown_order_is_rejected_not_found_and_sends_nothing(
        rig: Rig) -> None:
    reply = rig.cancel(new_id(), rig.alice)

    assert await answer(reply) == Rejected(RejectCode.ORDER_NOT_FOUND)
    await rig.drained()
    assert rig.sent_nothing()


async def test_cancel_of_another_users_order_is_rejected_not_found_and_sends_nothing(
        rig: Rig) -> None:
    order = limit(rig.alice, Side.BUY, "100", "1")
    await rig.placed(order)

    reply = rig.cancel(order.order_id, rig.bob)

    assert await answer(reply) == Rejected(RejectCode.ORDER_NOT_FOUND)
    await rig.drained()
    assert not rig.books[BTC_USDT].of(Cancel)


# -- transfers ---------------------------------------------------------------------------


async def test_a_deposit_is_committed_to_the_journal_without_a_book(rig: Rig) -> None:
    reply = rig.command("deposit-1")
    rig.ledger.tell(Deposit("deposit-1", rig.carol, "USDT", D("12.5"), reply))

    commit = await rig.journal.next(Commit)

    assert (commit.writes.kind, commit.reply, commit.symbol) == ("deposit", reply, None)
    assert (D(commit.result["available"]), D(commit.result["held"])) == (D("12.5"), D(0))
    assert await rig.balance(rig.carol, "USDT") == (12_500_000, 0)
    await rig.drained()
    assert not any(p.received for p in rig.books.values())


# -- suspension --------------------------------------------------------------------------


async def test_a_suspended_user_may_not_place_orders(rig: Rig) -> None:
    rig.ledger.tell(SetSuspended(rig.alice, True))

    reply = rig.place(limit(rig.alice, Side.BUY, "100", "1"))

    assert await answer(reply) == Rejected(RejectCode.ACCOUNT_SUSPENDED)
    await rig.drained()
    assert rig.sent_nothing()


async def test_a_suspended_user_may_not_withdraw(rig: Rig) -> None:
    rig.ledger.tell(SetSuspended(rig.alice, True))
    reply = rig.command()
    assert reply.command_id is not None

    rig.ledger.tell(Withdraw(reply.command_id, new_id(), rig.alice, "USDT", D(10), "0xabc",
                             reply))

    assert await answer(reply) == Rejected(RejectCode.ACCOUNT_SUSPENDED)
    await rig.drained()
    assert rig.sent_nothing()
    assert await rig.balance(rig.alice, "USDT") == (1000 * USDT, 0)


async def test_a_halted_pair_takes_no_orders_but_its_resting_ones_may_be_cancelled(
        rig: Rig) -> None:
    order = limit(rig.alice, Side.BUY, "100", "1")
    await rig.placed(order)
    rig.ledger.tell(SetPairActive(BTC_USDT, False))

    refused = rig.place(limit(rig.alice, Side.BUY, "99", "1"))
    assert await answer(refused) == Rejected(RejectCode.PAIR_NOT_FOUND)
    rig.cancel(order.order_id, rig.alice)
    assert (await rig.books[BTC_USDT].next(Cancel)).order_id == order.order_id

    rig.ledger.tell(SetPairActive(BTC_USDT, True))
    rig.place(limit(rig.alice, Side.BUY, "98", "1"), command_id="after-reopen")
    assert (await rig.books[BTC_USDT].next(Match)).command_id == "after-reopen"


async def test_a_suspended_user_may_still_cancel(rig: Rig) -> None:
    order = limit(rig.alice, Side.BUY, "100", "1")
    await rig.placed(order)
    rig.ledger.tell(SetSuspended(rig.alice, True))

    rig.cancel(order.order_id, rig.alice)

    assert (await rig.books[BTC_USDT].next(Cancel)).order_id == order.order_id


async def test_a_reinstated_user_may_place_orders_again(rig: Rig) -> None:
    rig.ledger.tell(SetSuspended(rig.alice, True))
    rig.ledger.tell(SetSuspended(rig.alice, False))

    rig.place(limit(rig.alice, Side.BUY, "100", "1"))

    await rig.books[BTC_USDT].next(Match)


# -- a book dies -------------------------------------------------------------------------


async def test_book_down_undoes_every_command_sent_to_that_book_and_not_settled(
        rig: Rig) -> None:
    on_btc = [rig.place(limit(rig.alice, Side.BUY, "100", "1")),
              rig.place(limit(rig.alice, Side.BUY, "99", "1"))]
    on_eth = rig.place(limit(rig.alice, Side.BUY, "10", "1", symbol=ETH_USDT))
    await rig.books[ETH_USDT].next(Match)
    assert await rig.balance(rig.alice, "USDT") == (791 * USDT, 209 * USDT)
    barrier = Reply(rig.loop)

    rig.ledger.tell(BookDown(BTC_USDT, barrier))

    for reply in on_btc:
        with pytest.raises(Unavailable):
            await answer(reply)
    assert await rig.balance(rig.alice, "USDT") == (990 * USDT, 10 * USDT)  # ETH's hold only
    assert await unanswered(on_eth)


async def test_book_down_passes_its_barrier_to_the_journal_after_undoing(rig: Rig) -> None:
    barrier = Reply(rig.loop)

    rig.ledger.tell(BookDown(BTC_USDT, barrier))

    assert (await rig.journal.next(Barrier)).reply is barrier
    assert await unanswered(barrier)  # the journal resolves it, once durable


async def test_book_down_leaves_settled_orders_alone(rig: Rig) -> None:
    await rig.placed(limit(rig.alice, Side.BUY, "100", "1"))

    rig.ledger.tell(BookDown(BTC_USDT, Reply(rig.loop)))

    await rig.journal.next(Barrier)
    assert await rig.balance(rig.alice, "USDT") == (900 * USDT, 100 * USDT)


async def test_a_pair_whose_book_is_down_refuses_orders_while_other_pairs_trade(
        rig: Rig) -> None:
    rig.ledger.tell(BookDown(BTC_USDT, Reply(rig.loop)))

    refused = rig.place(limit(rig.alice, Side.BUY, "100", "1"))
    accepted = rig.place(limit(rig.alice, Side.BUY, "10", "1", symbol=ETH_USDT))

    with pytest.raises(Unavailable):
        await answer(refused)
    assert (await rig.books[ETH_USDT].next(Match)).reply is accepted
    assert await rig.balance(rig.alice, "USDT") == (990 * USDT, 10 * USDT)  # nothing on BTC
    await rig.drained()
    assert not rig.books[BTC_USDT].received


async def test_a_pair_whose_book_is_down_refuses_cancels(rig: Rig) -> None:
    order = limit(rig.alice, Side.BUY, "100", "1")
    await rig.placed(order)
    rig.ledger.tell(BookDown(BTC_USDT, Reply(rig.loop)))

    with pytest.raises(Unavailable):
        await answer(rig.cancel(order.order_id, rig.alice))
    await rig.drained()
    assert not rig.books[BTC_USDT].of(Cancel)


async def test_book_up_sends_the_pairs_commands_to_the_new_book(rig: Rig) -> None:
    rig.ledger.tell(BookDown(BTC_USDT, Reply(rig.loop)))
    rebuilt = Probe(rig.loop)
    try:
        rig.ledger.tell(BookUp(BTC_USDT, rebuilt.ref))

        reply = rig.place(limit(rig.alice, Side.BUY, "100", "1"))

        assert (await rebuilt.next(Match)).reply is reply
        await rig.drained()
        assert not rig.books[BTC_USDT].received
    finally:
        await stopped(rebuilt.ref)
