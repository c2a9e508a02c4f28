"""The one facade over ``databases``: nothing else in excentra imports it.

Queries are raw SQL text with ``:name`` parameters, the same text for both dialects where
possible (no literal ``%`` in the text: pass LIKE patterns as parameters). Parameters are
encoded by Python type (:func:`excentra.db.values.to_db`); result columns are decoded
where the caller names their types (``types=`` / ``as_type=``). Rows come back as plain
``dict``.

Connections belong to the asyncio task (that is how ``databases`` works): inside
``async with db.transaction()`` every query of the same task runs in that transaction;
queries outside one are autocommitted. ``async with db.connection()`` pins one connection
to the task without a transaction (needed for session state such as advisory locks).
"""

from __future__ import annotations

import contextvars
import functools
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from decimal import Decimal
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # no stubs; only its exceptions are used
import databases

from excentra.db import _sqlite
from excentra.db.url import Dialect, dialect_of, resolve_url
from excentra.db.values import ColumnType, decode_row, from_db, to_db

Row = dict[str, Any]

_PG_POOL_MIN = 1  # asyncpg's default opens 10 connections eagerly per Database


class DatabaseError(Exception):
    """A database operation failed; the driver's exception is the ``__cause__``."""


class IntegrityError(DatabaseError):
    """A constraint rejected the write: UNIQUE, FOREIGN KEY, CHECK or NOT NULL."""


class InvalidDataError(DatabaseError):
    """The database refuses a value the statement carries (text it cannot hold, such as
    NUL or a lone surrogate; a number out of its range): the content is at fault, not the
    database, and the same statement will always fail."""


class DatabaseUnavailable(DatabaseError):  # noqa: N818 (a condition, like IntegrityError)
    """The database cannot be reached (refused, connection lost, shutting down or
    starting up): nothing was done; retrying later may work (HTTP 503)."""


class ProjectionBehind(DatabaseUnavailable):
    """The tables did not show, within the read's bound, a write the reader must see
    (``excentra.actors.watermarks``): the projector is failing. Nothing was read (503)."""


_IN_TRANSACTION: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "excentra_in_transaction", default=False)


class _Databases(databases.Database):
    """``databases.Database`` with our SQLite backend (see :mod:`excentra.db._sqlite`)."""

    SUPPORTED_BACKENDS = {  # noqa: RUF012 - overrides the parent's class attribute
        **databases.Database.SUPPORTED_BACKENDS,
        "sqlite": "excentra.db._sqlite:Backend",
    }


_DRIVER_ERRORS = (sqlite3.Error, asyncpg.PostgresError, asyncpg.InterfaceError)
_UNAVAILABLE_ERRORS = (
    OSError,  # refused, reset, unreachable (ConnectionRefusedError, ...)
    TimeoutError,
    asyncpg.exceptions.ConnectionDoesNotExistError,  # the connection was lost mid-query
    asyncpg.exceptions.CannotConnectNowError,  # starting up or shutting down
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.ConnectionFailureError,
    asyncpg.exceptions.TooManyConnectionsError,
)
_INTEGRITY_ERRORS = (sqlite3.IntegrityError, asyncpg.IntegrityConstraintViolationError)
_DATA_ERRORS = (
    sqlite3.DataError,
    asyncpg.exceptions.DataError,  # the server's SQLSTATE class 22 (e.g. NUL in text)
    asyncpg.exceptions._base.DataError,  # the client could not encode an argument
    UnicodeError,  # e.g. sqlite3 encoding a lone surrogate
)


@contextmanager
def _translated_errors() -> Iterator[None]:
    # Both drivers' errors become our two types, so callers can, e.g., map a duplicate
    # command id or client_order_id to a reply without knowing the backend.
    try:
        yield
    except _INTEGRITY_ERRORS as exc:
        raise IntegrityError(str(exc)) from exc
    except _DATA_ERRORS as exc:
        raise InvalidDataError(str(exc)) from exc
    except _UNAVAILABLE_ERRORS as exc:
        raise DatabaseUnavailable(f"{type(exc).__name__}: {exc}") from exc
    except _DRIVER_ERRORS as exc:
        raise DatabaseError(f"{type(exc).__name__}: {exc}") from exc


async def _init_postgres_connection(connection: Any) -> None:
    # NUMERIC as text both ways: asyncpg's binary decoder returns 1000000 as
    # Decimal("1.00E+6"); the text form keeps the stored scale ("1000000", "1.10"), the
    # same representation SQLite's TEXT columns give back.
    await connection.set_type_codec(
        "numeric", schema="pg_catalog", encoder=str, decoder=Decimal, format="text"
    )


_PARAM = re.compile(r"(?<!:):([A-Za-z_][A-Za-z0-9_]*)")


@functools.lru_cache(maxsize=256)
def _positional(sql: str, dialect: Dialect) -> tuple[str, tuple[str, ...]]:
    """``:name`` parameters as the driver's positional ones (``$n`` or ``?``)."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if dialect == "sqlite":
            names.append(name)
            return "?"
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _PARAM.sub(number, sql), tuple(names)


async def _keep_session(connection: Any) -> None:
    """asyncpg's pool runs ``RESET ALL`` / ``UNLISTEN *`` … on every release — a round trip
    per query for us. Nothing here sets session state that could leak (the migration lock
    is taken and released on a pinned connection), so releasing skips it."""


class Database:
    """A SQLite or PostgreSQL database, chosen by URL (see :func:`resolve_url`)."""

    before_query: Callable[[], Awaitable[None]] | None = None
    """Awaited before every query outside a transaction (the exchange's read fence:
    read-your-writes on the tables, ``Exchange._fence``). Never inside a transaction: it
    may hold SQLite's write lock, which the projector needs to catch up."""

    def __init__(self, url: str | None = None) -> None:
        self.url = resolve_url(url)
        self.dialect: Dialect = dialect_of(self.url)
        self._db = _Databases(self.url, **self._backend_options())

    def __repr__(self) -> str:
        return f"Database({self._db.url.obscure_password!r})"

    def _backend_options(self) -> dict[str, Any]:
        if self.dialect != "postgresql":
            return {}
        options: dict[str, Any] = {"init": _init_postgres_connection,
                                   "reset": _keep_session}
        if "min_size" not in self._query_options():
            options["min_size"] = _PG_POOL_MIN
        return options

    def _query_options(self) -> dict[str, str]:
        return dict(databases.DatabaseURL(self.url).options)

    @property
    def is_connected(self) -> bool:
        return bool(self._db.is_connected)

    async def connect(self) -> None:
        with _translated_errors():
            await self._db.connect()

    async def disconnect(self) -> None:
        await self._db.disconnect()

    async def __aenter__(self) -> Database:
        await self.connect()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.disconnect()

    async def fetch_all(
        self,
        sql: str,
        values: Mapping[str, object] | None = None,
        *,
        types: Mapping[str, ColumnType] | None = None,
    ) -> list[Row]:
        """All result rows, with the columns in ``types`` decoded."""
        return [self._row(record, types) for record in await self._query(sql, values)]

    async def fetch_one(
        self,
        sql: str,
        values: Mapping[str, object] | None = None,
        *,
        types: Mapping[str, ColumnType] | None = None,
    ) -> Row | None:
        """The first result row, or ``None``."""
        records = await self._query(sql, values)
        return self._row(records[0], types) if records else None

    async def fetch_val(
        self,
        sql: str,
        values: Mapping[str, object] | None = None,
        *,
        as_type: ColumnType | None = None,
    ) -> Any:
        """The first column of the first row (``None`` if no row), decoded as ``as_type``."""
        records = await self._query(sql, values)
        raw = next(iter(records[0].values()), None) if records else None
        return raw if as_type is None else from_db(raw, as_type)

    async def execute(self, sql: str, values: Mapping[str, object] | None = None) -> None:
        """Run one statement. For ids or affected rows use ``RETURNING`` with ``fetch_*``."""
        await self._query(sql, values)

    async def execute_many(self, sql: str, values: Sequence[Mapping[str, object]]) -> None:
        """Run one statement once per parameter set (in the task's connection)."""
        async with self._db.connection():
            for one in values:
                await self._query(sql, one)

    async def _query(self, sql: str, values: Mapping[str, object] | None) -> list[Any]:
        """Run ``sql`` on the task's connection straight through the driver.

        ``databases`` would wrap the text in SQLAlchemy's ``text()`` and compile it on every
        call; ``py-spy --gil`` put that compilation at a quarter of the order pipeline's
        GIL time (bench/RESULTS.md). Here the ``:name`` → ``$n``/``?`` rewrite is cached
        per query text and the values go to asyncpg or sqlite3 as they are, which is all
        the compiled ``text()`` did. Rows: asyncpg records, or dicts from SQLite's cursor.
        """
        if self.before_query is not None and not _IN_TRANSACTION.get():
            await self.before_query()
        text, names = _positional(self._checked(sql), self.dialect)
        args = self._args(sql, names, values)
        with _translated_errors():
            async with self._db.connection() as connection:
                raw = connection.raw_connection
                if self.dialect == "postgresql":
                    records: list[Any] = await raw.fetch(text, *args)
                    return records
                async with raw.execute(text, args) as cursor:
                    rows = await cursor.fetchall()
                    columns = [d[0] for d in cursor.description or ()]
                return [dict(zip(columns, row, strict=True)) for row in rows]

    def _args(self, sql: str, names: Sequence[str],
              values: Mapping[str, object] | None) -> list[object]:
        given = values or {}
        if len(given) != len(set(names)) or any(n not in given for n in names):
            raise ValueError(f"query parameters {sorted(set(names))} but values for "
                             f"{sorted(given)}: {sql!r}")
        return [to_db(given[n], self.dialect) for n in names]

    async def write_batches(
        self, statements: Sequence[tuple[str, Sequence[Mapping[str, object]]]]
    ) -> None:
        """Several statements, each for many parameter sets, in one transaction.

        The journal's group commit. PostgreSQL: ``executemany`` per statement inside a
        transaction (asyncpg runs on the caller's loop, no threads involved). SQLite: the
        whole transaction in one call to aiosqlite's worker thread
        (:func:`excentra.db._sqlite.run_in_transaction`), through aiosqlite's
        ``_execute`` — private, but the only way to run several statements per hop.
        """
        compiled = []
        for sql, rows in statements:
            if rows:
                text, names = _positional(self._checked(sql), self.dialect)
                compiled.append(
                    (text, [tuple(to_db(row[n], self.dialect) for n in names) for row in rows]))
        with _translated_errors():
            if self.dialect == "sqlite":
                async with self._db.connection() as connection:
                    raw = connection.raw_connection
                    await raw._execute(_sqlite.run_in_transaction, raw._conn, compiled)
                return
            async with self._db.transaction(), self._db.connection() as connection:
                raw = connection.raw_connection
                for text, args in compiled:
                    await raw.executemany(text, args)

    async def execute_positional(self, text: str, args: Sequence[object]) -> None:
        """One statement with ``$n`` parameters passed to asyncpg as they are (PostgreSQL
        only; no ``to_db`` encoding): the journal's one-round-trip batch
        (:mod:`excentra.db.journal_pg`)."""
        if self.dialect != "postgresql":
            raise RuntimeError("execute_positional is PostgreSQL only")
        with _translated_errors():
            async with self._db.connection() as connection:
                await connection.raw_connection.execute(text, *args)

    async def execute_script(self, script: str) -> None:
        """Run several ``;``-separated statements, bypassing parameter parsing.

        Used by migrations. PostgreSQL runs the text in one simple-protocol call; SQLite's
        driver runs one statement per call, so the script is split first (see
        :func:`excentra.db._sqlite.split_script`). Inside :meth:`transaction` the whole
        script is part of that transaction.
        """
        with _translated_errors():
            async with self._db.connection() as connection:
                raw = connection.raw_connection
                if self.dialect == "postgresql":
                    await raw.execute(script)
                    return
                for statement in _sqlite.split_script(script):
                    async with raw.execute(statement):
                        pass

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """Commit on normal exit, roll back on an exception; nested = savepoint.

        On SQLite the transaction starts with ``BEGIN IMMEDIATE`` (it takes the write lock
        at once; see :mod:`excentra.db._sqlite`).
        """
        with _translated_errors():
            async with self._db.transaction():
                token = _IN_TRANSACTION.set(True)
                try:
                    yield
                finally:
                    _IN_TRANSACTION.reset(token)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[None]:
        """Pin one connection to the current task for the duration of the block."""
        async with self._db.connection():
            yield

    @staticmethod
    def _checked(sql: str) -> str:
        # A literal % (LIKE 'a%') used to fail on SQLite only, when queries went through
        # databases' SQLite backend, which %-formats the text. Queries now reach the
        # drivers directly, but the rule stays: query texts remain valid for any driver
        # that formats them, and patterns belong in parameters anyway.
        if "%" in sql:
            raise ValueError("literal % in query text: pass the pattern as a parameter")
        return sql

    @staticmethod
    def _row(record: Any, types: Mapping[str, ColumnType] | None) -> Row:
        # .keys() is needed: iterating an asyncpg record yields its values, not its keys.
        row = {key: record[key] for key in record.keys()}  # noqa: SIM118
        return row if not types else decode_row(row, types)
