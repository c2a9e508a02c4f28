"""The event log (``excentra.db.eventlog``): its body codec and its store, on both backends.

The codec: a command's ``Writes`` becomes JSON (orjson) and comes back equal — every
record kind, decimals with their exponent (``Decimal("1E+2")`` stays ``1E+2``, not
``100``), aware datetimes with their microseconds and offset, ``None`` fields, and
integers beyond 64 bits (orjson cannot write those: the codec writes them as text).

The store: ``append`` a batch in one transaction (all or nothing), ``head`` (the last
sequence number ever used, even once truncated), ``after`` (entries in order, bounded),
``results`` (the stored answers by command id), ``projected`` (the tables' watermark) and
``truncate`` (never past that watermark). The log refuses a duplicate command id and a
user that is not in ``users`` — the foreign key that makes the journal isolate a command
for a user deleted behind the exchange's back.
"""

from __future__ import annotations

import dataclasses
import json
import typing
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from excentra.db import Database, IntegrityError
from excentra.db.eventlog import Entry, EventLog, decode, encode, stored_result
from excentra.db.records import (
    AssetRow,
    DepositChange,
    MovementRow,
    OrderChange,
    OrderRow,
    PairRow,
    TradeRow,
    WithdrawalChange,
    WithdrawalRow,
    Writes,
)
from excentra.db.users import create_user

D = Decimal
AT = datetime(2026, 4, 22, 10, 11, 12, 123456, tzinfo=UTC)

# -- the codec --------------------------------------------------------------------------------

BIG = (2 ** 63 - 1, 2 ** 63, 2 ** 64 - 1, 2 ** 64, -(2 ** 63), -(2 ** 63) - 1, 10 ** 30,
       -(10 ** 40))
"""Integers at and beyond the 64-bit edges (an 18-decimal asset's minor units get there)."""

integers = st.one_of(st.integers(), st.sampled_from(BIG))
decimals = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False),
    st.sampled_from([D("1E+2"), D("0.00010"), D("0"), D("-0"), D("0E-8"), D("1.000000000"),
                     D("123456789012345678901234567890.123456789012345678")]))
datetimes = st.datetimes(
    # Whole-minute offsets: orjson writes an offset to the minute (a 30 s offset would be
    # rounded); the exchange itself only writes UTC.
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)),
                               timezone(-timedelta(hours=8))]))
SCALARS: dict[Any, st.SearchStrategy[Any]] = {
    int: integers, Decimal: decimals, datetime: datetimes, uuid.UUID: st.uuids(),
    str: st.text(max_size=12), bool: st.booleans(),
}


def values(hint: Any) -> st.SearchStrategy[Any]:
    """Any value of the type ``hint`` (a field of a ``Writes`` record, ``Writes`` itself)."""
    if hint in SCALARS:
        return SCALARS[hint]
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        record: type[Any] = hint
        hints = typing.get_type_hints(record)
        return st.builds(record, **{f.name: values(hints[f.name])
                                    for f in dataclasses.fields(record)})
    args = typing.get_args(hint)
    if type(None) in args:  # X | None
        (inner,) = (a for a in args if a is not type(None))
        return st.none() | values(inner)
    if typing.get_origin(hint) is tuple:
        if len(args) == 2 and args[1] is Ellipsis:  # tuple[X, ...]
            return st.lists(values(args[0]), max_size=2).map(tuple)
        return st.tuples(*(values(a) for a in args))
    raise TypeError(f"no strategy for {hint!r}")


def spelled(value: Any) -> Any:
    """``value`` with every decimal and datetime as its text: equal decimals with other
    exponents (``1E+2`` and ``100``) or equal instants with other offsets differ here."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__,
                tuple(spelled(getattr(value, f.name)) for f in dataclasses.fields(value)))
    if isinstance(value, tuple | list):
        return tuple(spelled(v) for v in value)
    if isinstance(value, Decimal | datetime):
        return (type(value).__name__, str(value))
    return (type(value).__name__, value)


def every_kind() -> Writes:
    """One command with a record of every kind and the edge values each may carry."""
    user, pair, order, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    later = AT + timedelta(microseconds=1)
    return Writes(
        "cmd-every-kind", "place_order", user, json.dumps({"ok": True, "note": "é ✓"}), AT,
        orders=(OrderRow(order, user, pair, None, "buy", "limit", "GTC", False, D("1E+2"),
                         D("0.00010"), D("0.00010"), D("0"), D("0.0100000"), "open", 7, AT),
                OrderRow(other, user, pair, "client-1", "sell", "market", "IOC", True, None,
                         D("5"), D("0"), D("5.000"), D("0"), "filled", 2 ** 40, later)),
        order_changes=(OrderChange(order, D("0E-8"), D("0.00010"), D("0"), "filled", later),),
        trades=(TradeRow(uuid.uuid4(), pair, order, other, user, uuid.uuid4(), D("1E+2"),
                         D("0.00010"), D("0.0100"), "sell", D("0"), D("0.000010"), 9, AT),),
        movements=(MovementRow(user, "ETH", 10 ** 30, -(2 ** 64), "deposit", None),
                   MovementRow(user, "BTC", 2 ** 63 - 1, 0, "trade", order)),
        withdrawals=(WithdrawalRow(uuid.uuid4(), user, "USDT", D("12.5"), D("0"), "0xabc",
                                   "pending", AT),
                     WithdrawalRow(uuid.uuid4(), user, "ETH", D("1E-18"), D("0.001"),
                                   "0xdef", "queued", AT, "ethereum")),
        withdrawal_changes=(WithdrawalChange(uuid.uuid4(), "confirmed", None, later),
                            WithdrawalChange(uuid.uuid4(), "broadcast", "0xfeed", later,
                                             2 ** 64, "0xraw", "why not")),
        deposit_changes=(DepositChange(uuid.uuid4(), "credited", 12, later, later),
                         DepositChange(uuid.uuid4(), "reversed", 0, None, later)),
        assets=(AssetRow(uuid.uuid4(), "DOGE", "Dogecoin", 8, None, AT),
                AssetRow(uuid.uuid4(), "WEI", "Wei", 18, "ethereum", AT)),
        pairs=(PairRow(uuid.uuid4(), "DOGE", "USDT", "DOGE/USDT", None, None, D("0"),
                       D("0"), AT),
               PairRow(uuid.uuid4(), "WEI", "USDT", "WEI/USDT", D("0.01"), D("1E+3"),
                       D("0.001"), D("0.0020"), AT)),
        book=(pair, 2 ** 64 + 1),
    )


@settings(max_examples=60, deadline=None)
@given(values(Writes))
@example(every_kind())
@example(Writes("cmd-bare", "deposit", None, "null", AT))  # every tuple empty, book None
def test_a_body_decodes_to_the_writes_it_was_encoded_from(writes: Writes) -> None:
    """``decode(encode(w)) == w`` for any ``Writes``, and each decimal keeps its exponent
    and each datetime its offset and microseconds (``spelled``)."""
    body = encode(writes)

    decoded = decode(body)

    assert decoded == writes
    assert spelled(decoded) == spelled(writes)
    assert stored_result(body) == writes.result


def test_integers_beyond_64_bits_go_as_text_and_come_back_as_integers() -> None:
    """orjson refuses an integer beyond 64 bits; the codec then writes every such integer
    as its decimal text (the others stay numbers) and reads either as an ``int``."""
    user = uuid.uuid4()
    small = Writes("cmd-small", "deposit", user, "{}", AT,
                   movements=(MovementRow(user, "ETH", 2 ** 63 - 1, 0, "deposit", None),))
    big = dataclasses.replace(small, movements=(
        MovementRow(user, "ETH", 10 ** 24, 7, "deposit", None),))
    with pytest.raises(TypeError):
        orjson.dumps(big)

    small_json, big_json = orjson.loads(encode(small)), orjson.loads(encode(big))

    assert small_json["movements"][0]["available"] == 2 ** 63 - 1  # a JSON number
    assert big_json["movements"][0]["available"] == str(10 ** 24)  # text
    assert big_json["movements"][0]["held"] == 7  # the fallback leaves small ones numbers
    assert decode(encode(big)).movements[0].available == 10 ** 24


def test_a_field_missing_from_an_older_body_is_read_as_its_default() -> None:
    """Decoding rebuilds records from their type hints: a body written before a field
    existed (here ``WithdrawalRow.chain``, ``Writes.book``) reads it as the default."""
    user, withdrawal = uuid.uuid4(), uuid.uuid4()
    writes = Writes("cmd-old", "withdraw", user, "{}", AT, withdrawals=(
        WithdrawalRow(withdrawal, user, "USDT", D("1"), D("0"), "0xabc", "pending", AT),))
    old = orjson.loads(encode(writes))
    del old["book"]
    del old["withdrawals"][0]["chain"]

    assert decode(orjson.dumps(old)) == writes


# -- the store --------------------------------------------------------------------------------


async def new_user(db: Database) -> uuid.UUID:
    """A user row (``event_log.user_id`` references ``users``)."""
    return await create_user(db, f"log-{uuid.uuid4().hex[:12]}@test.example")


def entry(seq: int, user: uuid.UUID | None, command_id: str | None = None) -> Entry:
    """A deposit-like command at ``seq``: its answer names it."""
    command_id = command_id or f"cmd-{seq}"
    movements = () if user is None else (
        MovementRow(user, "USDT", seq * 1_000_000, 0, "deposit", None),)
    return Entry(seq, Writes(command_id, "deposit", user,
                             json.dumps({"command": command_id, "seq": seq}),
                             AT + timedelta(seconds=seq), movements=movements))


async def append(log: EventLog, entries: list[Entry]) -> None:
    await log.append(entries, [encode(e.writes) for e in entries])


async def seqs(log: EventLog) -> list[int]:
    return [e.seq for e in await log.after(0)]


async def set_projected(db: Database, seq: int) -> None:
    """What the projector records in the transaction that applies entry ``seq``."""
    await db.execute("UPDATE projection_state SET seq = :s WHERE name = 'tables'", {"s": seq})


@pytest.mark.asyncio
async def test_a_fresh_log_is_empty_and_nothing_is_projected(migrated: Database) -> None:
    log = EventLog(migrated)

    assert (await log.head(), await log.projected(), await log.after(0)) == (0, 0, [])


@pytest.mark.asyncio
async def test_appended_entries_are_read_back_in_order_and_equal(migrated: Database) -> None:
    log = EventLog(migrated)
    user = await new_user(migrated)
    first, second = [entry(1, user), entry(2, None)], [entry(3, user), entry(4, user)]

    await append(log, first)
    await append(log, second)

    assert await log.head() == 4
    assert await log.after(0) == first + second  # the bodies decode to the same Writes
    assert await log.after(1, limit=2) == [first[1], second[0]]
    assert await log.after(0, upto=2) == first
    assert await log.after(2, upto=3) == [second[0]]
    assert await log.after(4) == []
    assert await log.projected() == 0  # appending does not project


@pytest.mark.asyncio
async def test_results_are_the_stored_answers_of_the_command_ids_in_the_log(
        migrated: Database) -> None:
    log = EventLog(migrated)
    user = await new_user(migrated)
    entries = [entry(1, user), entry(2, None), entry(3, user)]
    await append(log, entries)

    found = await log.results(["cmd-3", "cmd-1", "not-logged"])

    assert sorted(found) == [("cmd-1", entries[0].writes.result),
                             ("cmd-3", entries[2].writes.result)]
    assert json.loads(dict(found)["cmd-3"]) == {"command": "cmd-3", "seq": 3}


@pytest.mark.asyncio
async def test_truncate_deletes_only_what_the_projection_has_applied(
        migrated: Database) -> None:
    log = EventLog(migrated)
    user = await new_user(migrated)
    await append(log, [entry(seq, user) for seq in range(1, 6)])

    assert await log.truncate(5) == 0  # nothing projected yet: nothing may go
    assert await seqs(log) == [1, 2, 3, 4, 5]

    await set_projected(migrated, 3)
    assert await log.projected() == 3
    assert await log.truncate(2) == 2  # up to what was asked
    assert await seqs(log) == [3, 4, 5]
    assert await log.truncate(10) == 1  # never past the watermark
    assert await seqs(log) == [4, 5]

    await set_projected(migrated, 5)
    assert await log.truncate(5) == 2
    assert await seqs(log) == []
    assert await log.head() == 5  # numbering never goes back: the watermark remembers it


@pytest.mark.asyncio
async def test_a_batch_with_a_duplicate_command_id_is_refused_whole(
        migrated: Database) -> None:
    log = EventLog(migrated)
    user = await new_user(migrated)

    with pytest.raises(IntegrityError):
        await append(log, [entry(1, user, "same"), entry(2, user), entry(3, user, "same")])

    assert (await log.head(), await log.after(0)) == (0, [])
    await append(log, [entry(1, user, "same")])
    with pytest.raises(IntegrityError):  # also against an entry already logged
        await append(log, [entry(2, user), entry(3, user, "same")])
    assert await seqs(log) == [1]


@pytest.mark.asyncio
async def test_a_command_for_a_user_not_in_users_is_refused_and_its_batch_with_it(
        migrated: Database) -> None:
    """The foreign key the journal relies on to isolate a poisoned command: the log
    refuses it (so it is never acknowledged), and nothing of its batch is stored."""
    log = EventLog(migrated)
    user, ghost = await new_user(migrated), uuid.uuid4()

    with pytest.raises(IntegrityError):
        await append(log, [entry(1, user), entry(2, ghost), entry(3, None)])

    assert (await log.head(), await log.after(0)) == (0, [])
    await append(log, [entry(1, user), entry(2, None)])  # the same batch without it
    assert await seqs(log) == [1, 2]
