"""``excentra.keys.UsedKeys``: which idempotency keys each user has used, from memory after
one read per user (both databases).

Shown: a key is known used once committed (in the log, or projected into ``commands``),
whichever table holds it; one read per user, then memory; a key acknowledged while its
user's set is being read is not lost; the memory bound drops whole users, least recently
used first, and a dropped user's keys are read again (still exact)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from excentra.db import Database
from excentra.db.eventlog import Entry, EventLog
from excentra.db.projection import Projection
from excentra.db.records import Writes
from excentra.db.users import create_user
from excentra.keys import UsedKeys, owner


def command(seq: int, command_id: str, user: object) -> Entry:
    return Entry(seq, Writes(command_id, "place_order", user, "{}",  # type: ignore[arg-type]
                             datetime.now(UTC)))


def test_owner_is_the_user_part_of_a_keyed_id() -> None:
    assert owner("order:u1:k") == "u1"
    assert owner("order:u1:k:with:colons") == "u1"
    assert owner("deposit:u2:key") == "u2"
    assert owner("withdraw:u3:key") == "u3"
    assert owner("order:some-order-id") is None  # an unkeyed order
    assert owner("withdrawal:w1") is None  # a settlement: not a user's key
    assert owner("cancel:o1:x") is None


@pytest.mark.asyncio
async def test_keys_in_the_log_and_in_the_tables_are_known_after_one_read(
        migrated: Database) -> None:
    a = str(await create_user(migrated, "a@test.example"))
    b = str(await create_user(migrated, "b@test.example"))
    log = EventLog(migrated)
    await log.append([command(1, f"order:{a}:projected", a),
                      command(2, f"order:{a}:logged", a),
                      command(3, f"order:{b}:other", b),
                      command(4, f"order:{a}-unkeyed", a)])
    projection = Projection(migrated)
    await projection.open()
    await projection.apply([command(1, f"order:{a}:projected", a)])  # 2–4: only logged

    keys = UsedKeys(migrated)
    assert await keys.used(f"order:{a}:projected") is True
    assert await keys.used(f"order:{a}:logged") is True
    assert await keys.used(f"order:{a}:new") is False
    assert await keys.used(f"deposit:{a}:new") is False
    assert await keys.used("withdrawal:some-id") is None  # not a user's key: ask the db
    assert keys.loads == 1  # one read for user a
    assert keys.users[a] == {f"order:{a}:projected", f"order:{a}:logged"}
    keys.add(f"order:{a}:new")
    assert await keys.used(f"order:{a}:new") is True
    assert keys.loads == 1


@pytest.mark.asyncio
async def test_a_key_acknowledged_during_its_users_read_is_kept(migrated: Database) -> None:
    a = str(await create_user(migrated, "late@test.example"))
    keys = UsedKeys(migrated)
    gate = asyncio.Event()
    real_fetch = migrated.fetch_all

    async def slow_fetch(*args: object, **kw: object) -> object:
        await gate.wait()  # the read began before the command below was acknowledged
        return await real_fetch(*args, **kw)  # type: ignore[arg-type]

    migrated.fetch_all = slow_fetch  # type: ignore[method-assign]
    try:
        reading = asyncio.create_task(keys.used(f"order:{a}:first"))
        await asyncio.sleep(0)
        keys.add(f"order:{a}:acked-meanwhile")  # committed while the read is under way
        gate.set()
        assert await reading is False
    finally:
        migrated.fetch_all = real_fetch  # type: ignore[method-assign]
    assert await keys.used(f"order:{a}:acked-meanwhile") is True


@pytest.mark.asyncio
async def test_the_bound_drops_whole_users_and_they_are_read_again(
        migrated: Database) -> None:
    users = [str(await create_user(migrated, f"u{i}@test.example")) for i in range(3)]
    log = EventLog(migrated)
    await log.append([command(i + 1, f"order:{u}:k{j}", u)
                      for i, (u, j) in enumerate((u, j) for u in users for j in range(2))])
    keys = UsedKeys(migrated, kept=4)
    for u in users:
        assert await keys.used(f"order:{u}:k0") is True
    assert keys.size <= 4
    assert list(keys.users) == users[1:]  # the least recently used one was dropped
    assert await keys.used(f"order:{users[0]}:k1") is True  # read again: still exact
    assert keys.loads == 4
    assert keys.size <= 4
