"""One command the database refuses hurts nobody else (issue 15, defect 1).

Through the whole core on both databases: a deposit for a user deleted behind the
exchange's back (its balance row would break a foreign key) lands in the middle of honest
traffic. The database refuses the journal's batch; the journal commits what came before
the poisoned command, refuses that command alone (``UNSTORABLE``, HTTP 422), and the core
is rebuilt from the database — the commands written after it are run again on the rebuilt
core by the facade, so every honest caller gets its ordinary answer. Nothing acknowledged
is lost, memory and database agree, and the poisoner's credit exists nowhere.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from excentra.actors.bridge import Rejected
from excentra.actors.journal import Pause, Resume
from excentra.engine import RejectCode, Side
from excentra.exchange import Exchange, Outcome
from tests.actors.helpers import (
    BTC_USDT,
    D,
    answered,
    assert_sound,
    count,
    funded_user,
    limit,
    new_user,
    ok,
    recovered,
    stored_levels,
)

pytestmark = pytest.mark.asyncio
UNSTORABLE = Rejected(RejectCode.UNSTORABLE)


async def _deleted_user(ex: Exchange) -> str:
    """A user the exchange has seen (a token of theirs may still be valid) whose row is
    then deleted with SQL."""
    user = await new_user(ex, "deleted")
    await ex.db.execute("DELETE FROM users WHERE id = :id", {"id": user})
    return user


async def _book_is_the_database(ex: Exchange) -> None:
    snap = await answered(ex.snapshot(BTC_USDT, depth=10_000))
    assert isinstance(snap, dict), snap
    stored = await stored_levels(ex.db, BTC_USDT)
    assert {side: [(D(level["price"]), D(level["quantity"])) for level in snap[side]]
            for side in ("bids", "asks")} == {
        side: [(D(level["price"]), D(level["quantity"])) for level in stored[side]]
        for side in ("bids", "asks")}


async def test_a_poisoned_deposit_among_honest_orders_is_refused_alone(
        exchange: Exchange) -> None:
    ex = exchange
    sellers = [await funded_user(ex, BTC="1") for _ in range(4)]
    buyers = [await funded_user(ex, USDT="100000") for _ in range(4)]
    victim = await _deleted_user(ex)
    actors = ex.supervisor.actors if ex.supervisor else None
    assert actors is not None

    # Everything queues behind a paused journal, so the poison lands inside one batch
    # with honest commands before and after it (resting orders, and trades against them).
    actors.journal.tell(Pause())
    before = [asyncio.create_task(limit(ex, s, Side.SELL, str(50_000 + i), "0.1",
                                        client_order_id=f"ask-{i}"))
              for i, s in enumerate(sellers)]
    await asyncio.sleep(0.2)
    poisoned = asyncio.create_task(ex.deposit(victim, "USDT", Decimal(500)))
    await asyncio.sleep(0.1)
    after = [asyncio.create_task(limit(ex, b, Side.BUY, "50003", "0.1",
                                       client_order_id=f"bid-{i}"))
             for i, b in enumerate(buyers)]
    await asyncio.sleep(0.2)
    actors.journal.tell(Resume())

    assert await answered(poisoned) == UNSTORABLE
    outcomes: list[Outcome] = await answered(asyncio.gather(*before, *after), 30)
    await recovered(ex, recoveries=1)

    results = [ok(o) for o in outcomes]  # every honest caller got its ordinary answer
    assert [r["status"] for r in results[:4]] == ["open"] * 4
    assert {r["status"] for r in results[4:]} <= {"filled", "partially_filled"}
    assert await count(ex.db, "orders") == 8
    assert await count(ex.db, "trades") >= 4
    assert await count(ex.db, "ledger_entries", "user_id = :u", u=victim) == 0
    assert await count(ex.db, "commands", "kind = 'deposit' AND user_id = :u",
                       u=victim) == 0
    await _book_is_the_database(ex)
    await assert_sound(ex)  # the credit exists in memory no more than in the database

    # The rebuilt core trades on, and a repeat of an acknowledged key is its stored answer.
    again = await answered(limit(ex, sellers[0], Side.SELL, "50000", "0.1",
                                 client_order_id="ask-0"))
    assert again == results[0]
    ok(await answered(limit(ex, buyers[0], Side.BUY, "49000", "0.1")))
    await assert_sound(ex)


async def test_a_poisoned_command_alone_rebuilds_the_core_and_is_refused_each_time(
        exchange: Exchange) -> None:
    """Retrying the refused command is refused again, with nothing written either time,
    and an honest deposit between the two is acknowledged."""
    ex = exchange
    victim = await _deleted_user(ex)
    honest = await new_user(ex)

    assert await answered(ex.deposit(victim, "USDT", Decimal(1))) == UNSTORABLE
    await recovered(ex, recoveries=1)
    ok(await answered(ex.deposit(honest, "USDT", Decimal(1))))
    assert await answered(ex.deposit(victim, "USDT", Decimal(1))) == UNSTORABLE
    await recovered(ex, recoveries=2)

    assert await count(ex.db, "ledger_entries", "user_id = :u", u=victim) == 0
    assert await count(ex.db, "ledger_entries", "user_id = :u", u=honest) == 1
    await assert_sound(ex)
