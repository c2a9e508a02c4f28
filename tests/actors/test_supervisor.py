"""Supervision: an actor dies and is rebuilt from the database — a book alone, the
broadcaster alone, the whole core for the ledger or the journal — nothing acknowledged is
lost, nobody waits forever, and a retried command is not executed twice."""

from __future__ import annotations

import asyncio
from typing import Any

import pykka
import pytest

from excentra.actors import durable as durable_module
from excentra.actors import supervisor as sv_module
from excentra.actors.book import InjectFault
from excentra.actors.bridge import Rejected
from excentra.actors.journal import Pause, Resume
from excentra.actors.supervisor import Supervisor
from excentra.db.audit import audit
from excentra.engine import RejectCode, Side
from excentra.exchange import Exchange, Outcome
from tests.actors.helpers import (
    BTC_USDT,
    Recorder,
    answered,
    assert_sound,
    count,
    funded_user,
    limit,
    normalized,
    ok,
    order_row,
    recovered,
    stored_levels,
)

pytestmark = pytest.mark.asyncio
UNAVAILABLE = Rejected(RejectCode.UNAVAILABLE)


def _sv(ex: Exchange) -> Supervisor:
    assert ex.supervisor is not None
    assert ex.supervisor.actors is not None
    return ex.supervisor


def _actor(ex: Exchange, name: str) -> pykka.ActorRef[Any]:
    actors = _sv(ex).actors
    assert actors is not None
    ref: pykka.ActorRef[Any] = (actors.books[BTC_USDT] if name == "book"
                                else getattr(actors, name))
    return ref


def _recovered_from(victim: str) -> dict[str, int]:
    """What one death of ``victim`` rebuilds: a book alone, else the whole core."""
    return {"book_recoveries": 1} if victim == "book" else {"recoveries": 1}


async def _book(ex: Exchange) -> dict[str, Any]:
    snap = await answered(ex.snapshot(BTC_USDT, depth=1000))
    assert isinstance(snap, dict), snap
    return snap


async def _assert_book_is_the_database(ex: Exchange) -> None:
    snap, stored = await _book(ex), await stored_levels(ex.db, BTC_USDT)
    assert {"bids": normalized(snap["bids"]), "asks": normalized(snap["asks"])} == stored


async def _traders(ex: Exchange, n: int = 4) -> list[str]:
    return [await funded_user(ex, USDT="1000000", BTC="10") for _ in range(n)]


def _resting(users: list[str], i: int, cid: str) -> Any:
    """Non-crossing resting orders: even users ask above 50000, odd users bid below."""
    side = Side.SELL if i % 2 == 0 else Side.BUY
    price = 50001 + i % 5 if side is Side.SELL else 50000 - i % 5
    return users[i % len(users)], side, str(price), cid


async def test_a_book_fault_rebuilds_the_book_with_nothing_lost(exchange: Exchange) -> None:
    users = await _traders(exchange)
    acked = [ok(await limit(exchange, u, s, p, "0.01", client_order_id=c))
             for u, s, p, c in (_resting(users, i, f"r-{i}") for i in range(12))]
    before = await _book(exchange)

    _actor(exchange, "book").tell(InjectFault())
    await recovered(exchange, book_recoveries=1)  # the book alone, not the whole core

    after = await _book(exchange)
    assert after["state_hash"] == before["state_hash"]
    assert (after["bids"], after["asks"]) == (before["bids"], before["asks"])
    for result in acked:
        assert (await order_row(exchange.db, result["order_id"]))["status"] == "open"
    assert await audit(exchange.db) == []
    await assert_sound(exchange)
    # The rebuilt core trades: a taker crosses the restored asks, a maker cancels.
    taker = await funded_user(exchange, USDT="10000")
    took = ok(await limit(exchange, taker, Side.BUY, "50002", "0.02"))
    assert took["status"] == "filled"
    ok(await exchange.cancel_order(users[1], acked[1]["order_id"]))
    await _assert_book_is_the_database(exchange)
    await assert_sound(exchange)


async def test_requests_in_flight_when_a_book_dies_are_all_answered(
        exchange: Exchange) -> None:
    users = await _traders(exchange)
    taker = await funded_user(exchange, USDT="1000000")

    async def order(i: int) -> Outcome:
        if i % 7 == 6:  # now and then a taker crosses the asks (trades in flight too)
            return await limit(exchange, taker, Side.BUY, "50003", "0.005",
                               client_order_id=f"o-{i}")
        user, side, price, cid = _resting(users, i, f"o-{i}")
        return await limit(exchange, user, side, price, "0.01", client_order_id=cid)

    first = [ok(r) for r in await asyncio.gather(*(order(i) for i in range(20)))]
    in_flight = [asyncio.create_task(answered(order(i))) for i in range(20, 60)]
    await asyncio.wait(in_flight[:2])  # the fault hits mid-flow
    _actor(exchange, "book").tell(InjectFault("mid-flow"))
    outcomes = await asyncio.gather(*in_flight)  # answered() fails on a hang
    await recovered(exchange, book_recoveries=1)

    assert all(isinstance(o, dict) or o == UNAVAILABLE for o in outcomes), outcomes
    acked = {f"o-{i}": o for i, o in enumerate(first + outcomes) if isinstance(o, dict)}
    rows = await exchange.db.fetch_all("SELECT id, client_order_id FROM orders")
    stored = {r["client_order_id"]: str(r["id"]) for r in rows}
    # Acknowledged means durable; "unavailable" means not executed at all.
    assert {c: r["order_id"] for c, r in acked.items()} == stored
    await _assert_book_is_the_database(exchange)
    await assert_sound(exchange)

    retried = await asyncio.gather(*(answered(order(i)) for i in range(60)))

    assert all(isinstance(r, dict) for r in retried), retried
    for cid, result in acked.items():
        assert retried[int(cid[2:])] == result  # the stored answer, not a second order
    assert await count(exchange.db, "orders") == 60
    await _assert_book_is_the_database(exchange)
    await assert_sound(exchange)


async def test_a_command_refused_during_recovery_runs_once_when_retried(
        exchange: Exchange) -> None:
    user = (await _traders(exchange, 1))[0]
    before = ok(await limit(exchange, user, Side.BUY, "100", "0.1", client_order_id="a"))

    _actor(exchange, "book").tell(InjectFault())
    refused = await answered(limit(exchange, user, Side.BUY, "101", "0.1",
                                   client_order_id="b"))
    await recovered(exchange, book_recoveries=1)

    assert refused == UNAVAILABLE
    assert await count(exchange.db, "orders", "client_order_id = 'b'") == 0
    again_a = await answered(limit(exchange, user, Side.BUY, "100", "0.1",
                                   client_order_id="a"))
    now_b = ok(await answered(limit(exchange, user, Side.BUY, "101", "0.1",
                                    client_order_id="b")))
    again_b = await answered(limit(exchange, user, Side.BUY, "101", "0.1",
                                   client_order_id="b"))
    assert again_a == before
    assert again_b == now_b
    assert await count(exchange.db, "orders") == 2
    await assert_sound(exchange)


@pytest.mark.parametrize("victim", ["book", "ledger", "journal"])
async def test_the_core_recovers_from_any_pipeline_actor_dying(
        exchange: Exchange, victim: str) -> None:
    users = await _traders(exchange, 2)
    ok(await limit(exchange, users[0], Side.SELL, "50001", "0.5"))
    ok(await limit(exchange, users[1], Side.BUY, "49999", "0.5"))
    before = await _book(exchange)

    _actor(exchange, victim).tell(object())  # an unexpected message is a bug: it dies
    await recovered(exchange, **_recovered_from(victim))

    assert (await _book(exchange))["state_hash"] == before["state_hash"]
    took = ok(await answered(limit(exchange, users[1], Side.BUY, "50001", "0.2")))
    assert took["status"] == "filled"
    await _assert_book_is_the_database(exchange)
    await assert_sound(exchange)


async def test_subscribers_survive_a_broadcaster_restart(
        recorded: tuple[Exchange, Recorder]) -> None:
    ex, rec = recorded
    user = await funded_user(ex, USDT="1000")
    dead = _actor(ex, "broadcaster")
    dead.tell(object())

    async def replaced() -> None:  # restarted alone: no rebuild is counted
        while _actor(ex, "broadcaster") is dead or not _actor(ex, "broadcaster").is_alive():
            await asyncio.sleep(0.01)

    await answered(replaced(), 15)
    await recovered(ex)
    delivered = len(rec.commands)

    ok(await limit(ex, user, Side.BUY, "100", "1"))

    async def arrives() -> None:
        while len(rec.commands) == delivered:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(arrives(), 2)


async def test_a_retry_after_a_reply_timeout_harms_nobody(database_url: str) -> None:
    async with Exchange(database_url) as ex:
        a, b = await funded_user(ex, USDT="1000"), await funded_user(ex, USDT="1000")
        ex.reply_timeout = 0.3
        _actor(ex, "journal").tell(Pause())  # a slow database, made deterministic
        first = await limit(ex, a, Side.BUY, "100", "1", client_order_id="x")
        # Timed out, still in the pipeline: "may yet happen", never "did not happen".
        assert first == Rejected(RejectCode.OUTCOME_UNKNOWN)
        ex.reply_timeout = 30.0  # the retry waits for the true answer
        retry = asyncio.create_task(limit(ex, a, Side.BUY, "100", "1", client_order_id="x"))
        other = asyncio.create_task(limit(ex, b, Side.BUY, "100", "1"))
        await asyncio.sleep(0.05)
        _actor(ex, "journal").tell(Resume())
        outcomes = await answered(asyncio.gather(retry, other))
        await asyncio.sleep(0.2)  # a journal death would start a recovery now
        await _sv(ex).wait_recovered()
        assert await count(ex.db, "orders", "client_order_id = 'x'") == 1
        assert isinstance(outcomes[0], dict), outcomes  # the retry shares the real answer
        assert (await order_row(ex.db, outcomes[0]["order_id"]))["client_order_id"] == "x"
        assert isinstance(outcomes[1], dict), outcomes
        assert (_sv(ex).recoveries, _sv(ex).book_recoveries) == (0, 0)
        await assert_sound(ex)
        assert await audit(ex.db) == []


@pytest.mark.parametrize("victim", ["book", "ledger"])
async def test_a_failed_restart_is_retried_until_the_core_is_back(
        exchange: Exchange, monkeypatch: pytest.MonkeyPatch, victim: str) -> None:
    """The database may be down when the supervisor reloads state: it keeps trying, both
    when it rebuilds one book and when it rebuilds the whole core."""
    real_load, failures = durable_module.load_state, []

    async def flaky_load(db: Any) -> Any:
        if len(failures) < 2:
            failures.append("down")
            raise ConnectionError("database restarting")
        return await real_load(db)

    monkeypatch.setattr(durable_module, "load_state", flaky_load)
    monkeypatch.setattr(sv_module, "RESTART_DELAY", 0.01)
    user = await funded_user(exchange, USDT="1000")
    _actor(exchange, victim).tell(InjectFault() if victim == "book" else object())
    await recovered(exchange, **_recovered_from(victim))

    assert failures == ["down", "down"]
    ok(await limit(exchange, user, Side.BUY, "100", "1"))
    await assert_sound(exchange)
