"""Exact values across dialects: what goes in as Decimal/UUID/datetime/bool comes back so.

| Python            | PostgreSQL column | SQLite column (stored as)                          |
|-------------------|-------------------|----------------------------------------------------|
| ``Decimal``       | ``NUMERIC``       | ``TEXT``: fixed-point string, never REAL           |
| ``uuid.UUID``     | ``UUID``          | ``TEXT``: lowercase, hyphenated                    |
| aware ``datetime``| ``TIMESTAMPTZ``   | ``TEXT``: ``2026-04-22T10:11:12.123456Z`` (UTC)    |
| ``bool``          | ``BOOLEAN``       | ``INTEGER`` 0/1                                    |

Parameters are encoded by their Python type (:func:`to_db`), automatically, by
:class:`excentra.db.Database`. Results cannot be decoded that way, because SQLite hands back
a money column and a name column alike as ``str``: the caller says which columns are what
(:func:`decode_row`, :func:`from_db`).

The fixed width of the SQLite timestamp (always six fractional digits and ``Z``) makes
lexical order equal time order, so ``ORDER BY created_at`` works on both dialects.
"""

from __future__ import annotations

import enum
import functools
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from excentra.db.url import Dialect

ColumnType = type[Decimal] | type[uuid.UUID] | type[datetime] | type[bool] | type[int] | type[str]
"""A column kind for decoding, named by the Python type it decodes to."""


def to_db(value: object, dialect: Dialect) -> object:
    """Encode one query parameter for ``dialect``.

    Dispatches on the exact type first (the journal encodes dozens of values per order);
    subclasses (enums, other ``str``/``int`` subclasses) take the general path.

    Raises:
        TypeError: for ``float`` (money is never binary floating point) and for types
            the schema has no column for.
        ValueError: for a naive ``datetime`` or a non-finite ``Decimal``.
    """
    encode = _FAST[dialect].get(type(value))
    if encode is not None:
        return encode(value)
    return _to_db_slow(value, dialect)


def _to_db_slow(value: object, dialect: Dialect) -> object:
    if isinstance(value, enum.Enum):  # StrEnum/IntEnum members are stored as their value
        value = value.value
    if value is None or isinstance(value, str | bytes):
        return value
    if isinstance(value, bool):  # before int: bool is an int subclass
        return value if dialect == "postgresql" else int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        raise TypeError("float parameters are refused: pass money as Decimal")
    if isinstance(value, Decimal):
        _check_finite(value)
        return value if dialect == "postgresql" else format(value, "f")
    if isinstance(value, uuid.UUID):
        return value if dialect == "postgresql" else str(value)
    if isinstance(value, datetime):
        return _datetime_pg(value) if dialect == "postgresql" else format_timestamp(value)
    raise TypeError(f"no database encoding for {type(value).__name__}")


def _same(value: object) -> object:
    return value


def _decimal_pg(value: Decimal) -> object:
    _check_finite(value)
    return value


def _decimal_sqlite(value: Decimal) -> object:
    _check_finite(value)
    return format(value, "f")


def _datetime_pg(value: datetime) -> object:
    if value.tzinfo is None:
        raise ValueError("naive datetime refused: pass an aware (UTC) datetime")
    return value.astimezone(UTC)




def as_decimal(raw: object) -> Decimal:
    """A NUMERIC (PostgreSQL) or decimal TEXT (SQLite) value as ``Decimal``."""
    if isinstance(raw, Decimal):
        return raw
    if isinstance(raw, str):
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise ValueError(f"not a decimal: {raw!r}") from None
        _check_finite(value)
        return value
    if isinstance(raw, int) and not isinstance(raw, bool):
        return Decimal(raw)
    # A float here means something stored REAL: refuse rather than guess the digits.
    raise TypeError(f"expected a decimal, got {type(raw).__name__}: {raw!r}")


def as_uuid(raw: object) -> uuid.UUID:
    """A UUID column as a plain ``uuid.UUID`` (asyncpg returns its own subclass)."""
    if type(raw) is uuid.UUID:
        return raw
    if isinstance(raw, uuid.UUID):
        return uuid.UUID(int=raw.int)
    if isinstance(raw, str):
        return uuid.UUID(raw)
    raise TypeError(f"expected a UUID, got {type(raw).__name__}: {raw!r}")


def as_datetime(raw: object) -> datetime:
    """A timestamp column as an aware UTC ``datetime``."""
    if isinstance(raw, datetime):
        value = raw
    elif isinstance(raw, str):
        value = datetime.fromisoformat(raw)
    else:
        raise TypeError(f"expected a timestamp, got {type(raw).__name__}: {raw!r}")
    # Naive only if written by hand (SQLite CURRENT_TIMESTAMP), which is UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def as_bool(raw: object) -> bool:
    """A BOOLEAN (PostgreSQL) or 0/1 INTEGER (SQLite) column as ``bool``."""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    raise TypeError(f"expected a boolean, got {type(raw).__name__}: {raw!r}")


def _as_int(raw: object) -> int:
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    raise TypeError(f"expected an integer, got {type(raw).__name__}: {raw!r}")


def _as_str(raw: object) -> str:
    if isinstance(raw, str):
        return raw
    raise TypeError(f"expected text, got {type(raw).__name__}: {raw!r}")


_DECODERS: dict[type, Callable[[object], object]] = {
    Decimal: as_decimal,
    uuid.UUID: as_uuid,
    datetime: as_datetime,
    bool: as_bool,
    int: _as_int,
    str: _as_str,
}


def from_db(raw: object, kind: ColumnType) -> object:
    """Decode one column value to ``kind``; ``None`` (SQL NULL) stays ``None``."""
    if raw is None:
        return None
    try:
        decoder = _DECODERS[kind]
    except KeyError:
        raise ValueError(f"no decoder for column type {kind!r}") from None
    return decoder(raw)


def decode_row(row: Mapping[str, object], types: Mapping[str, ColumnType]) -> dict[str, object]:
    """Copy ``row``, decoding the columns named in ``types``; the others are left as is.

    Raises:
        KeyError: if ``types`` names a column the row does not have (a typo, usually).
    """
    missing = set(types) - set(row)
    if missing:
        raise KeyError(f"columns not in the result: {sorted(missing)}")
    return {
        key: from_db(value, types[key]) if key in types else value for key, value in row.items()
    }


@functools.lru_cache(maxsize=256)  # a command's rows share one timestamp
def format_timestamp(value: datetime) -> str:
    """The SQLite text form of an aware datetime: UTC, microseconds, ``Z``."""
    if value.tzinfo is None:
        raise ValueError("naive datetime refused: pass an aware (UTC) datetime")
    utc = value.astimezone(UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds") + "Z"


def _check_finite(value: Decimal) -> None:
    if not value.is_finite():
        raise ValueError(f"non-finite decimal refused: {value}")


_FAST: dict[str, dict[type, Callable[[Any], object]]] = {
    "postgresql": {str: _same, type(None): _same, int: _same, bool: _same,
                   uuid.UUID: _same, Decimal: _decimal_pg, datetime: _datetime_pg},
    "sqlite": {str: _same, type(None): _same, int: _same, bool: int, uuid.UUID: str,
               Decimal: _decimal_sqlite, datetime: format_timestamp},
}
