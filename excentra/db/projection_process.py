"""The projection in a process of its own: the tables written outside the core's GIL.

Everything in the core process shares one interpreter lock, so the projector's CPU — rows
built from each entry, parameters encoded for the driver — came straight off the
acknowledgement rate (``excentra bench pipeline --profile``: ~110–140 µs a command on the
projector thread, bench/RESULTS.md). Here the ``ProjectorActor``'s store is a stub that
sends each batch's encoded entries (the bodies the journal already made for the log) down
a pipe to a child process, which decodes them and applies them with ``Projection`` — on
its own database connection, on the other core.

The protocol is request/answer, one at a time: ``("open",)``, ``("apply", [(seq, body),
…])``, ``("catch_up", upto)``, ``("close",)``; the child answers ``("ok", watermark)`` or
``("error", text)`` and then exits. The actor's thread waits for each answer (without the
GIL), so the actor's protocol is the in-thread store's: a batch is acknowledged by the
child only once committed. A child that dies (or errs) makes ``apply`` raise: the actor
dies, and the supervisor starts a new one, whose child catches up from the log. If the
parent dies, the child reads end-of-file and exits.

``PROJECTOR=thread`` keeps the projection in the core process (``Projection`` directly):
no process to start, which is what tests that start many exchanges use.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from multiprocessing.connection import Connection
from typing import Any

from excentra.db.eventlog import Entry, decode, encode

log = logging.getLogger("excentra.projector.process")

STOP_WAIT = 10.0
"""Seconds the child may take to finish and close before it is killed."""


class ProjectionFailed(Exception):  # noqa: N818 (a condition, like Unavailable)
    """The projection process failed (its error), or died."""


class ProcessProjection:
    """A ``ProjectionStore`` whose work runs in a child process."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: Connection | None = None
        self._process: multiprocessing.process.BaseProcess | None = None

    async def open(self) -> int:
        ctx = _context()
        parent, child = ctx.Pipe()
        self._process = ctx.Process(target=_child, args=(child, self.url),
                                    name="excentra-projector", daemon=True)
        self._process.start()
        child.close()
        self._conn = parent
        log.info("projection process started", extra={"pid": self._process.pid})
        return self._call(("open",))

    async def apply(self, entries: list[Entry]) -> int:
        return self._call(("apply", [(e.seq, e.body or encode(e.writes)) for e in entries]))

    async def catch_up(self, upto: int | None = None) -> int:
        return self._call(("catch_up", upto))

    async def close(self) -> None:
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if conn is not None:
            try:
                conn.send(("close",))
                if conn.poll(STOP_WAIT):
                    conn.recv()
            except (OSError, EOFError):
                pass
            conn.close()
        if process is not None:
            await asyncio.to_thread(process.join, STOP_WAIT)
            if process.is_alive():
                process.kill()
                process.join()

    def _call(self, request: tuple[Any, ...]) -> int:
        if self._conn is None:
            raise ProjectionFailed("the projection process is not running")
        try:
            self._conn.send(request)
            kind, value = self._conn.recv()
        except (OSError, EOFError) as exc:
            code = self._process.exitcode if self._process is not None else None
            raise ProjectionFailed(f"the projection process died (exit code {code})"
                                   ) from exc
        if kind != "ok":
            raise ProjectionFailed(str(value))
        return int(value)


def _context() -> Any:
    """``forkserver``: the first projection process of this process starts a small server
    (a fresh interpreter, which imports the projection's modules once); every projection
    process after it — a restart, another exchange in the same process — is forked from
    that server in milliseconds, and never from this threaded process. (``spawn`` started
    a fresh interpreter each time: ~0.5 s of CPU, which made every test that starts the
    app five times slower.) ``spawn`` where there is no forkserver (not POSIX)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["excentra.db.projection", "excentra.db.projection_process"])
    return ctx


# -- the child ------------------------------------------------------------------------------


def _child(conn: Connection, url: str) -> None:
    """The projection process: answer requests until told to close or the parent is gone."""
    from excentra.logs import configure_logging  # noqa: PLC0415 (a fresh interpreter)

    configure_logging(os.environ.get("LOG_LEVEL") or "INFO")
    asyncio.run(_serve(conn, url))


async def _serve(conn: Connection, url: str) -> None:
    from excentra.db import Database  # noqa: PLC0415
    from excentra.db.projection import Projection  # noqa: PLC0415

    projection = Projection(Database(url))
    try:
        while True:
            try:
                request = conn.recv()
            except EOFError:  # the core process is gone
                return
            kind = request[0]
            try:
                if kind == "open":
                    done = await projection.open()
                elif kind == "apply":
                    done = await projection.apply(
                        [Entry(seq, decode(body), body) for seq, body in request[1]])
                elif kind == "catch_up":
                    done = await projection.catch_up(request[1])
                elif kind == "close":
                    conn.send(("ok", projection.done))
                    return
                else:
                    raise ValueError(f"projection process: unknown request {kind!r}")
            except Exception as exc:
                log.exception("projection process failed", extra={"request": kind})
                conn.send(("error", f"{type(exc).__name__}: {exc}"))
                return
            conn.send(("ok", done))
    finally:
        if projection.db.is_connected:
            await projection.close()
