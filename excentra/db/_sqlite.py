"""The SQLite backend for ``databases``, adjusted for a money system.

``databases`` 0.9 opens a brand-new aiosqlite connection (a new thread and a new file
handle) every time a task acquires one, applies no pragmas, and starts transactions with a
deferred ``BEGIN``. This module subclasses its backend to change three things:

* **Pragmas on every connection.** ``foreign_keys``, ``synchronous`` and ``busy_timeout``
  are per connection, so they are set whenever a connection is opened, before anyone sees
  it. ``journal_mode=WAL`` is stored in the file; setting it again is a no-op (the first
  switch is retried while another connection holds the lock).
* **A small pool.** Finished connections are kept (at most :data:`MAX_IDLE`) and handed to
  the next task instead of opening a new thread per query. A connection still inside a
  transaction is closed, never reused.
* **``BEGIN IMMEDIATE``.** A deferred transaction that reads and then writes can fail at
  once with ``SQLITE_BUSY`` when another connection wrote in between (in WAL mode the busy
  timeout cannot help). Taking the write lock at ``BEGIN`` makes writers queue behind each
  other for up to the busy timeout instead. Concurrent readers outside transactions are
  unaffected (WAL).

Why several connections rather than one shared connection: ``databases`` keys connections
by asyncio task and relies on each transaction having its connection to itself; one shared
sqlite connection would let a second task's statements land inside the first task's
transaction.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import Any

import aiosqlite
from databases.backends.sqlite import (
    SQLiteBackend,
    SQLiteConnection,
    SQLitePool,
    SQLiteTransaction,
)
from databases.core import DatabaseURL

BUSY_TIMEOUT_MS = 30_000
"""How long a writer waits for another connection's write lock before failing."""

MAX_IDLE = 64
"""Idle connections kept open for reuse. Sized for the facade's concurrency: with fewer,
a burst of concurrent reads opened a new connection (a thread, a file handle, the
pragmas) for almost every query."""

_PRAGMAS = (
    f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}",
    # In WAL mode, synchronous=NORMAL loses nothing when the *process* crashes (kill -9):
    # a commit is in the WAL file, i.e. in the OS page cache, before COMMIT returns. Only
    # an OS crash or power cut can lose the last transactions; the file stays consistent.
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
)


async def _configure(connection: aiosqlite.Connection) -> None:
    async with connection.execute(_PRAGMAS[0]):
        pass
    mode = await _switch_to_wal(connection)
    if mode != "wal":
        # The durability argument above needs WAL; refuse rather than run without it.
        raise RuntimeError(f"SQLite refused WAL journal mode (got {mode!r})")
    for pragma in _PRAGMAS[1:]:
        async with connection.execute(pragma):
            pass


async def _switch_to_wal(connection: aiosqlite.Connection) -> str:
    # Switching a fresh file to WAL needs an exclusive lock, and SQLite reports "database
    # is locked" at once, without the busy handler, when another connection (or process)
    # is doing the same. Retry for as long as the busy timeout would have waited.
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            async with connection.execute("PRAGMA journal_mode = WAL") as cursor:
                row = await cursor.fetchone()
            return "" if row is None else str(row[0]).lower()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.005)


class _Pool(SQLitePool):
    """Opens configured connections and keeps a few idle ones for reuse."""

    def __init__(self, url: DatabaseURL, **options: Any) -> None:
        super().__init__(url, **options)
        self._idle: list[aiosqlite.Connection] = []
        self._closed = False

    def open(self) -> None:
        self._closed = False

    async def acquire(self) -> aiosqlite.Connection:
        if self._idle:
            return self._idle.pop()
        connection = aiosqlite.connect(
            database=self._database, isolation_level=None, **self._options
        )
        await connection.__aenter__()
        try:
            await _configure(connection)
        except BaseException:
            await connection.close()
            raise
        return connection

    async def release(self, connection: aiosqlite.Connection) -> None:
        try:
            in_transaction = connection.in_transaction
        except ValueError:  # aiosqlite: "no active connection", it is closed already
            return
        reusable = not self._closed and not in_transaction
        if reusable and len(self._idle) < MAX_IDLE:
            self._idle.append(connection)
        else:
            await connection.close()

    async def close(self) -> None:
        """Close the idle connections; ones still in use close when released."""
        self._closed = True
        while self._idle:
            await self._idle.pop().close()


class _ImmediateTransaction(SQLiteTransaction):
    async def start(self, is_root: bool, extra_options: dict[Any, Any]) -> None:
        if not is_root:  # nested: a savepoint, as before
            await super().start(is_root, extra_options)
            return
        self._is_root = True
        connection = self._connection._connection
        assert connection is not None, "Connection is not acquired"
        async with connection.execute("BEGIN IMMEDIATE"):
            pass


class _Connection(SQLiteConnection):
    def transaction(self) -> _ImmediateTransaction:
        return _ImmediateTransaction(self)


class Backend(SQLiteBackend):
    """``databases``' SQLite backend with pragmas, pooling and immediate transactions."""

    def __init__(self, database_url: DatabaseURL | str, **options: Any) -> None:
        super().__init__(database_url, **options)
        self._pool: _Pool = _Pool(self._database_url, **self._options)

    async def connect(self) -> None:
        # Open (and configure) one connection now: a bad path fails here, not at the first
        # query, and the file is in WAL mode before concurrent tasks arrive.
        self._pool.open()
        await self._pool.release(await self._pool.acquire())

    async def disconnect(self) -> None:
        await self._pool.close()

    def connection(self) -> _Connection:
        return _Connection(self._pool, self._dialect)


def run_in_transaction(
    connection: sqlite3.Connection, statements: list[tuple[str, list[tuple[object, ...]]]]
) -> None:
    """Run ``executemany`` for each statement in one ``BEGIN IMMEDIATE`` transaction.

    Called in aiosqlite's worker thread (see ``Database.write_batches``): the whole group
    commit is one hop to that thread instead of one per statement. Every hop is a GIL
    hand-over between busy threads, which cost the journal more than the writes did.
    """
    connection.execute("BEGIN IMMEDIATE")
    try:
        for text, args in statements:
            connection.executemany(text, args)
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def split_script(script: str) -> list[str]:
    """Split a SQL script into single statements for ``sqlite3``'s one-statement execute.

    A statement ends at a ``;`` after which the text so far is a complete statement by
    SQLite's own tokenizer (:func:`sqlite3.complete_statement`), so semicolons inside
    string literals, quoted names, comments and ``CREATE TRIGGER ... END`` bodies do not
    split. Trailing whitespace and ``--`` comments are dropped.

    The last statement may omit its ``;``.

    Raises:
        ValueError: if the script ends inside a statement (an open quote or trigger body).
    """
    statements: list[str] = []
    start = 0
    for index, char in enumerate(script):
        if char == ";" and sqlite3.complete_statement(script[start : index + 1]):
            statements.append(script[start : index + 1].strip())
            start = index + 1
    tail = script[start:]
    if any(line.strip() and not line.strip().startswith("--") for line in tail.splitlines()):
        if not sqlite3.complete_statement(tail + "\n;"):
            raise ValueError(f"incomplete SQL statement at end of script: {tail.strip()[:80]!r}")
        statements.append(tail.strip())
    return statements
