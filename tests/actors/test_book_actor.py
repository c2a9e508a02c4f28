"""BookActor, alone: one pair's matching engine behind a mailbox.

Protocol (the ledger, its only peer, is a recording probe here):

    Match(command_id, opened, reply)             ─► Settle(command_id, symbol, events, reply,
                                                           opened=opened)       to the ledger
    Cancel(command_id, order_id, user_id, reply) ─► Settle(command_id, symbol, events, reply,
                                                           user_id=user_id)     to the ledger
    Snapshot(depth, reply)                       ─► reply ← (BookSnapshot, state hash, spec)
    InjectFault(), or any unexpected message     ─► the actor dies: on_death(name, error)

Every Match and Cancel is answered with exactly one Settle, in the order received; a
refusal (self-cross, unknown order) is a Settle too, carrying an ``OrderRejected``. The
book never answers a command's reply itself: the ledger does, after settling.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pykka
import pytest
import pytest_asyncio

from excentra.actors.book import BookActor, Cancel, InjectFault, Match, Settle, Snapshot
from excentra.actors.bridge import Reply
from excentra.engine import (
    CancelReason,
    OrderBook,
    OrderRejected,
    OrderStatus,
    OrderUpdated,
    RejectCode,
    Side,
    TradeExecuted,
)
from excentra.ledger.clearing import Clearing, NewOrder
from tests.actors.probes import (
    BTC_USDT,
    Deaths,
    Probe,
    answer,
    dead,
    fund,
    limit,
    market,
    market_sell,
    matched,
    new_id,
    opened,
    stopped,
    unanswered,
)

pytestmark = pytest.mark.asyncio

NAME = f"book:{BTC_USDT}"


@dataclass
class Rig:
    """A BookActor for BTC/USDT whose ledger is a probe; ``twin`` is a plain ``OrderBook``
    given the same orders, to say what the actor's book must have done."""

    loop: asyncio.AbstractEventLoop
    book: pykka.ActorRef[Any]
    ledger: Probe
    deaths: Deaths
    clearing: Clearing
    twin: OrderBook

    def user(self) -> str:
        user = new_id()
        fund(self.clearing, user, USDT="1000000", BTC="100")
        return user

    def match(self, order: NewOrder, command_id: str | None = None) -> Match:
        """Tell the book to match ``order`` (its funds held, as the ledger would)."""
        command_id = command_id or new_id()
        message = Match(command_id, opened(self.clearing, order),
                        Reply(self.loop, command_id=command_id))
        self.book.tell(message)
        return message

    async def settle(self, order: NewOrder) -> Settle:
        """Match ``order`` and return the book's Settle (the twin book matches it too)."""
        self.match(order)
        matched(self.twin, order)
        return await self.ledger.next(Settle)

    async def snapshot(self, depth: int = 10) -> Any:
        reply = Reply(self.loop)
        self.book.tell(Snapshot(depth, reply))
        return await answer(reply)


@pytest_asyncio.fixture
async def rig() -> AsyncIterator[Rig]:
    loop = asyncio.get_running_loop()
    ledger, deaths, clearing = Probe(loop), Deaths(loop), market()
    spec = clearing.pairs[BTC_USDT].spec
    book = BookActor.start(OrderBook(spec), ledger.ref, name=NAME, on_death=deaths)
    try:
        yield Rig(loop, book, ledger, deaths, clearing, OrderBook(spec))
    finally:
        await stopped(book, ledger.ref)


async def test_match_is_answered_to_the_ledger_with_a_settle_of_the_books_events(
        rig: Rig) -> None:
    order = limit(rig.user(), Side.BUY, "100", "1")
    sent = rig.match(order, command_id="place-1")

    settle = await rig.ledger.next(Settle)

    assert settle.command_id == "place-1"
    assert settle.symbol == BTC_USDT
    assert settle.events == matched(rig.twin, order)
    assert settle.reply is sent.reply
    assert settle.opened is sent.opened  # the held funds travel back to be settled
    assert settle.user_id is None


async def test_a_crossing_match_trades_against_the_resting_order(rig: Rig) -> None:
    maker, taker = rig.user(), rig.user()
    buy = limit(maker, Side.BUY, "100", "1")
    await rig.settle(buy)

    settle = await rig.settle(limit(taker, Side.SELL, "99", "0.4"))

    trades = [e for e in settle.events if isinstance(e, TradeExecuted)]
    assert [(t.maker_order_id, t.taker_user_id, t.taker_side) for t in trades] == [
        (buy.order_id, taker, Side.SELL)]
    assert (await rig.snapshot())[1] == rig.twin.state_hash()


async def test_a_market_order_is_matched_and_never_rests(rig: Rig) -> None:
    await rig.settle(limit(rig.user(), Side.BUY, "100", "1"))

    settle = await rig.settle(market_sell(rig.user(), "2"))

    final = settle.events[-1]
    assert isinstance(final, OrderUpdated)
    assert (final.status, final.filled, final.cancelled) == (OrderStatus.CANCELLED,
                                                             10_000, 10_000)
    levels, _, _ = await rig.snapshot()
    assert levels.bids == levels.asks == ()


async def test_a_limit_order_crossing_its_owners_resting_order_is_refused_self_cross(
        rig: Rig) -> None:
    user = rig.user()
    await rig.settle(limit(user, Side.SELL, "100", "1"))
    before = await rig.snapshot()
    crossing = limit(user, Side.BUY, "101", "1")

    rig.match(crossing)
    settle = await rig.ledger.next(Settle)

    assert settle.events == [OrderRejected(crossing.order_id, user, RejectCode.SELF_CROSS)]
    assert await rig.snapshot() == before


async def test_cancel_of_an_own_resting_order_settles_its_cancellation(rig: Rig) -> None:
    user = rig.user()
    order = limit(user, Side.BUY, "100", "1")
    await rig.settle(order)
    reply = Reply(rig.loop, command_id="cancel-1")

    rig.book.tell(Cancel("cancel-1", order.order_id, user, reply))
    settle = await rig.ledger.next(Settle)

    assert (settle.command_id, settle.symbol, settle.reply, settle.user_id, settle.opened) == (
        "cancel-1", BTC_USDT, reply, user, None)
    assert settle.events == rig.twin.cancel(order.order_id, user)
    cancelled = settle.events[0]
    assert isinstance(cancelled, OrderUpdated)
    assert (cancelled.status, cancelled.reason) == (OrderStatus.CANCELLED, CancelReason.USER)
    levels, _, _ = await rig.snapshot()
    assert levels.bids == ()


async def test_cancel_of_another_users_order_settles_as_not_found_and_leaves_it(
        rig: Rig) -> None:
    owner, other = rig.user(), rig.user()
    order = limit(owner, Side.BUY, "100", "1")
    await rig.settle(order)
    before = await rig.snapshot()

    rig.book.tell(Cancel(new_id(), order.order_id, other, Reply(rig.loop)))
    settle = await rig.ledger.next(Settle)

    assert settle.events == [OrderRejected(order.order_id, other, RejectCode.ORDER_NOT_FOUND)]
    assert await rig.snapshot() == before


async def test_matches_and_cancels_are_settled_one_each_in_the_order_received(
        rig: Rig) -> None:
    user = rig.user()
    orders = [limit(user, Side.BUY, str(100 + i), "1") for i in range(3)]
    sent = [rig.match(o).command_id for o in orders]
    rig.book.tell(Cancel("cancel", orders[0].order_id, user, Reply(rig.loop)))
    sent.append("cancel")

    settled = [(await rig.ledger.next(Settle)).command_id for _ in sent]
    await rig.ledger.sync()

    assert settled == sent
    assert len(rig.ledger.received) == len(sent)


async def test_the_book_leaves_answering_a_command_to_the_ledger(rig: Rig) -> None:
    sent = rig.match(limit(rig.user(), Side.BUY, "100", "1"), command_id="place-1")
    await rig.ledger.next(Settle)

    assert await unanswered(sent.reply)


async def test_snapshot_answers_the_caller_with_levels_state_hash_and_spec(
        rig: Rig) -> None:
    await rig.settle(limit(rig.user(), Side.BUY, "100", "1"))
    await rig.settle(limit(rig.user(), Side.BUY, "99", "2"))

    levels, state_hash, spec = await rig.snapshot(depth=1)

    assert levels == rig.twin.snapshot(1)
    assert [(lv.price, lv.quantity) for lv in levels.bids] == [(10_000, 10_000)]
    assert state_hash == rig.twin.state_hash()
    assert spec == rig.clearing.pairs[BTC_USDT].spec
    await rig.ledger.sync()
    assert not rig.ledger.of(Snapshot)
    assert len(rig.ledger.received) == 2  # the two Settles: a snapshot tells the ledger nothing


async def test_inject_fault_kills_the_book_and_reports_its_death(rig: Rig) -> None:
    rig.book.tell(InjectFault("boom"))

    death = await rig.deaths.next()

    assert death.name == NAME
    assert isinstance(death.error, RuntimeError)
    assert str(death.error) == "boom"
    await dead(rig.book)


async def test_an_unexpected_message_is_a_bug_that_kills_the_book(rig: Rig) -> None:
    rig.book.tell("hello")

    death = await rig.deaths.next()

    assert (death.name, type(death.error)) == (NAME, TypeError)
    await dead(rig.book)
