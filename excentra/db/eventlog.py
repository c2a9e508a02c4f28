"""The event log: the durable record of every command, one row each, in sequence.

A command is durable — and only then acknowledged — once its entry is in the log: its
sequence number, its id, its kind, and its body, which is the command's whole ``Writes``
(every row it adds or changes, its balance movements, its stored answer). The tables the
API reads are projections of the log (``excentra.actors.projector``); what a projection
has not applied yet is in the log after the projection's watermark, and is projected from
here at start (``catch_up``), so a crash between the two loses nothing.

The interface is small on purpose — append a batch, read after a sequence number, look up
command ids, truncate what every projection has applied — so that a replicated log (NATS
JetStream runs on the machine) can be a third store beside the two here.

Bodies are JSON (orjson): a ``Writes`` as orjson serialises a dataclass, decimals as
strings (exact both ways: ``Decimal(str(d)) == d``), UUIDs and aware datetimes as orjson
writes them. Decoding rebuilds the records from their type hints, so a field added to a
record later is read as its default from older entries.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import types
import typing
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from excentra.db.database import Database
from excentra.db.records import Writes

log = logging.getLogger("excentra.db.eventlog")

PROJECTION = "tables"
"""The projection of the relational tables (its row in ``projection_state``)."""


# -- the body codec --------------------------------------------------------------------------


def _default(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"event log: cannot encode {type(value).__name__}")


def encode(writes: Writes) -> bytes:
    """A command's ``Writes`` as the log's body."""
    try:
        return orjson.dumps(writes, default=_default)
    except TypeError:  # an integer beyond 64 bits (minor units of an 18-decimal asset)
        return orjson.dumps(_big_ints_as_text(dataclasses.asdict(writes)),
                            default=_default)


_INT64 = range(-(2 ** 63), 2 ** 63)


def _big_ints_as_text(value: Any) -> Any:
    """orjson writes integers of up to 64 bits; a larger one goes as its decimal text
    (``_int`` reads either)."""
    if isinstance(value, dict):
        return {k: _big_ints_as_text(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_big_ints_as_text(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and value not in _INT64:
        return str(value)
    return value


def _int(value: Any) -> int:
    return int(value) if isinstance(value, str) else value


Converter = Callable[[Any], Any]


def _same(value: Any) -> Any:
    return value


def _optional(inner: Converter) -> Converter:
    return lambda v: None if v is None else inner(v)


def _converter(hint: Any) -> Converter:
    """How to turn a JSON value back into a field of type ``hint``."""
    if hint is Decimal:
        return Decimal
    if hint is uuid.UUID:
        return uuid.UUID
    if hint is datetime:
        return datetime.fromisoformat
    if hint is int:
        return _int
    if hint in (str, bool):
        return _same
    if dataclasses.is_dataclass(hint):
        return _record(hint)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        (inner,) = (a for a in args if a is not type(None))
        return _optional(_converter(inner))
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:  # tuple[X, ...]
            item = _converter(args[0])
            return lambda v: tuple(item(x) for x in v)
        items = [_converter(a) for a in args]  # tuple[X, Y]
        return lambda v: tuple(c(x) for c, x in zip(items, v, strict=True))
    raise TypeError(f"event log: no decoder for {hint!r}")


_RECORDS: dict[type, Converter] = {}

_uuid = functools.lru_cache(maxsize=65536)(uuid.UUID)
"""Users', pairs' and resting orders' ids recur from entry to entry."""
_PLAIN: dict[Any, str] = {str: "{v}", bool: "{v}", Decimal: "Decimal({v})",
                          uuid.UUID: "_uuid({v})", datetime: "_time({v})", int: "_int({v})"}
"""Field types decoded inline by a record's generated builder (``_record``)."""


def _record(cls: Any) -> Converter:
    """A builder of ``cls`` from its JSON object. Generated once per class (positional
    arguments, the common types decoded inline: decoding is the projection process's
    largest cost per entry); an object missing a field (written before the field existed)
    goes through the generic path, which leaves the field its default."""
    found = _RECORDS.get(cls)
    if found is not None:
        return found
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)
    namespace: dict[str, Any] = {"cls": cls, "Decimal": Decimal, "_uuid": _uuid,
                                 "_time": datetime.fromisoformat, "_int": _int}
    args = []
    for i, f in enumerate(fields):
        hint = hints[f.name]
        value = f"d[{f.name!r}]"
        origin, targs = typing.get_origin(hint), typing.get_args(hint)
        optional = origin in (typing.Union, types.UnionType) and type(None) in targs
        inner = next(a for a in targs if a is not type(None)) if optional else hint
        if inner in _PLAIN:
            expression = _PLAIN[inner].format(v="v" if optional else value)
        else:
            namespace[f"c{i}"] = _converter(inner)
            expression = f"c{i}({'v' if optional else value})"
        if optional and expression != "v":
            expression = f"(None if (v := {value}) is None else {expression})"
        elif optional:
            expression = value
        args.append(expression)
    source = "def fast(d):\n    return cls(" + ", ".join(args) + ")\n"
    exec(source, namespace)  # noqa: S102 (the source is built from the class's own fields)
    fast = namespace["fast"]
    slow = [(f.name, _converter(hints[f.name])) for f in fields]

    def build(value: dict[str, Any]) -> Any:
        try:
            return fast(value)
        except KeyError:  # an entry written before a field was added: its default
            return cls(**{name: conv(value[name]) for name, conv in slow if name in value})

    _RECORDS[cls] = build
    return build


_WRITES = _record(Writes)


def decode(body: bytes) -> Writes:
    """The ``Writes`` a body was encoded from (equal to it)."""
    writes: Writes = _WRITES(orjson.loads(body))
    return writes


def stored_result(body: bytes) -> str:
    """The command's stored answer (JSON text) without rebuilding the whole ``Writes``."""
    result: str = orjson.loads(body)["result"]
    return result


# -- the store -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    """One command in the log."""

    seq: int
    writes: Writes
    body: bytes = dataclasses.field(default=b"", compare=False)
    """``encode(writes)``, once it has been encoded (the journal encodes each entry once;
    the log stores it and a projector in another process is sent it)."""


class EventLog:
    """The log in this database (PostgreSQL or SQLite): append, read, look up, truncate."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def append(self, entries: Sequence[Entry],
                     bodies: Sequence[bytes] | None = None) -> None:
        """All of ``entries`` in one transaction, or none. Their bodies: ``bodies``, else
        each entry's own (encoded here if it has none)."""
        if bodies is None:
            bodies = [e.body or encode(e.writes) for e in entries]
        if self.db.dialect == "postgresql":
            await self.db.execute_positional(
                "INSERT INTO event_log (seq, command_id, kind, user_id, body, created_at) "
                "SELECT * FROM unnest($1::int8[], $2::text[], $3::text[], $4::uuid[], "
                "$5::bytea[], $6::timestamptz[])",
                [[e.seq for e in entries], [e.writes.command_id for e in entries],
                 [e.writes.kind for e in entries], [e.writes.user_id for e in entries],
                 list(bodies), [e.writes.at for e in entries]])
            return
        await self.db.write_batches([(
            "INSERT INTO event_log (seq, command_id, kind, user_id, body, created_at) "
            "VALUES (:seq, :command_id, :kind, :user_id, :body, :created_at)",
            [{"seq": e.seq, "command_id": e.writes.command_id, "kind": e.writes.kind,
              "user_id": e.writes.user_id, "body": body, "created_at": e.writes.at}
             for e, body in zip(entries, bodies, strict=True)])])

    async def head(self) -> int:
        """The last sequence number used (entries truncated behind a projection count:
        numbering never goes back)."""
        row = await self.db.fetch_one(
            "SELECT (SELECT COALESCE(MAX(seq), 0) FROM event_log) AS logged, "
            "(SELECT COALESCE(MAX(seq), 0) FROM projection_state) AS projected")
        assert row is not None
        return max(int(row["logged"]), int(row["projected"]))

    async def projected(self, name: str = PROJECTION) -> int:
        """How far the projection ``name`` has applied the log."""
        value = await self.db.fetch_val(
            "SELECT seq FROM projection_state WHERE name = :n", {"n": name})
        return int(value or 0)

    async def after(self, seq: int, limit: int = 2000, upto: int | None = None
                    ) -> list[Entry]:
        """Entries after ``seq`` in order (at most ``limit``; none past ``upto``)."""
        rows = await self.db.fetch_all(
            "SELECT seq, body FROM event_log WHERE seq > :s AND seq <= :u ORDER BY seq "
            "LIMIT :n", {"s": seq, "u": upto if upto is not None else 2 ** 62, "n": limit})
        return [Entry(int(r["seq"]), decode(bytes(r["body"])), bytes(r["body"]))
                for r in rows]

    async def results(self, command_ids: Sequence[str]) -> list[tuple[str, str]]:
        """``(command_id, stored answer)`` of those of ``command_ids`` in the log."""
        if not command_ids:
            return []
        names = [f"c{i}" for i in range(len(command_ids))]
        rows = await self.db.fetch_all(
            f"SELECT command_id, body FROM event_log WHERE command_id IN "  # noqa: S608
            f"({', '.join(':' + n for n in names)})",  # placeholders only
            dict(zip(names, command_ids, strict=True)))
        return [(r["command_id"], stored_result(bytes(r["body"]))) for r in rows]

    async def truncate(self, upto: int) -> int:
        """Delete the entries up to ``upto`` that every projection has applied; how
        many. The projections keep the history; the log keeps what they may still need."""
        applied = await self.db.fetch_val("SELECT MIN(seq) FROM projection_state")
        limit = min(upto, int(applied or 0))
        count = int(await self.db.fetch_val(
            "SELECT COUNT(*) FROM event_log WHERE seq <= :u", {"u": limit}) or 0)
        await self.db.execute("DELETE FROM event_log WHERE seq <= :u", {"u": limit})
        log.info("event log truncated", extra={"upto": limit, "entries": count})
        return count
