"""The projection in a child process (``excentra.db.projection_process``), both backends.

``excentra serve`` projects the tables from a child process (off the core's GIL). Shown
here: the process-backed store answers like the in-thread one (open → watermark, apply →
the tables show the entries, catch-up); a child that dies makes the next call fail, so the
projector actor dies with it; and in a running exchange, a projection process killed with
SIGKILL is replaced, acknowledgements never stop, and the new one projects everything.
(That its tables equal a replay of the log: ``test_replay.py``, ``projector="process"``.)
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from excentra.db import Database
from excentra.db.eventlog import Entry, EventLog, encode
from excentra.db.projection_process import ProcessProjection, ProjectionFailed, _context
from excentra.db.records import MovementRow, Writes
from excentra.db.users import create_user
from excentra.engine import Side
from excentra.exchange import Exchange
from tests.actors.helpers import (
    answered,
    assert_sound,
    funded_user,
    limit,
    ok,
)

pytestmark = pytest.mark.asyncio


def deposit(seq: int, user: object, units: int) -> Entry:
    writes = Writes(f"deposit:{user}:{seq}", "deposit", user, '{"ok": true}',  # type: ignore[arg-type]
                    datetime.now(UTC), movements=(
                        MovementRow(user, "USDT", units, 0, "deposit", None),))  # type: ignore[arg-type]
    return Entry(seq, writes, encode(writes))


async def test_the_process_store_opens_applies_catches_up_and_closes(
        migrated: Database) -> None:
    user = await create_user(migrated, "p@test.example")
    log = EventLog(migrated)
    entries = [deposit(i, user, 1_000_000 * i) for i in (1, 2, 3, 4)]
    await log.append(entries[2:])  # 3 and 4 are only in the log: a catch-up applies them

    store = ProcessProjection(migrated.url)
    try:
        assert await store.open() == 0
        assert await store.apply(entries[:2]) == 2
        assert await EventLog(migrated).projected() == 2
        assert await store.catch_up() == 4
        available = await migrated.fetch_val(
            "SELECT available FROM balances WHERE user_id = :u AND asset = 'USDT'",
            {"u": user}, as_type=Decimal)
        assert available == Decimal(10)  # 1 + 2 + 3 + 4 USDT
        process = store._process
        assert process is not None
        assert process.is_alive()
    finally:
        await store.close()
    assert not process.is_alive()


async def test_a_dead_projection_process_fails_the_next_call(migrated: Database) -> None:
    user = await create_user(migrated, "q@test.example")
    store = ProcessProjection(migrated.url)
    try:
        await store.open()
        process = store._process
        assert process is not None
        assert process.pid is not None
        os.kill(process.pid, signal.SIGKILL)
        await asyncio.to_thread(process.join, 10)
        with pytest.raises(ProjectionFailed, match="died"):
            await store.apply([deposit(1, user, 1)])
    finally:
        await store.close()
    assert await EventLog(migrated).projected() == 0  # nothing half-applied


async def test_a_killed_projection_process_is_replaced_and_nothing_is_lost(
        database_url: str) -> None:
    async with Exchange(database_url, projector="process") as ex:
        maker = await funded_user(ex, BTC="1")
        taker = await funded_user(ex, USDT="100000")
        sv = ex.supervisor
        assert sv is not None
        assert sv.actors is not None
        assert sv.actors.projector is not None
        first = sv.actors.projector
        pids = {p.pid for p in _children()}
        assert pids, "no projection process"

        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        # commands are acknowledged from the log meanwhile: the projector is not on the
        # acknowledgement path
        orders = [ok(await answered(limit(ex, maker, Side.SELL, str(100 + i), "0.01")))
                  for i in range(5)]
        ok(await answered(limit(ex, taker, Side.BUY, "102", "0.03")))

        async def replaced() -> None:
            while sv.actors is None or sv.actors.projector is first or \
                    sv.actors.projector is None or not sv.actors.projector.is_alive():
                await asyncio.sleep(0.02)

        await asyncio.wait_for(replaced(), 30)
        # a read of the tables waits until the new process projected every entry
        stored = {r["id"] for r in await ex.db.fetch_all("SELECT id FROM orders")}
        assert {str(o["order_id"]) for o in orders} <= {str(i) for i in stored}
        assert ex.watermarks.projected == ex.watermarks.logged
        await assert_sound(ex)
        assert int(await ex.db.fetch_val("SELECT COUNT(*) FROM trades")) == 3


def _children() -> list[multiprocessing.process.BaseProcess]:
    return [p for p in multiprocessing.active_children() if p.name == "excentra-projector"]


async def test_forked_processes_do_not_repeat_ids() -> None:
    """The projection processes are forked from one fork server, which has imported the
    id generator: each must draw its own ids (a balance row's id), or the second one's
    inserts collide with the first's."""
    ctx = _context()  # the projection processes' own (a preloaded fork server)
    with ctx.Pool(4, maxtasksperchild=1) as pool:  # each task in a fresh fork
        drawn = await asyncio.to_thread(pool.map, _ids, range(4))
    assert len({i for ids in drawn for i in ids}) == 4 * 50


def _ids(_: int) -> list[str]:
    from excentra.ids import new_id

    return [new_id() for _ in range(50)]
