"""A real uvicorn server on a free loopback port, in a thread of the test process: for tests
that need real sockets (schemathesis over HTTP, WebSocket clients)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from starlette.applications import Starlette

from excentra.http.ws import uvicorn_options


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def live_server(app: Starlette, startup_timeout: float = 60,
                ping_interval: float = 20.0) -> Iterator[tuple[str, Any]]:
    """Serve ``app`` until the block ends (with ``excentra serve``'s WebSocket options);
    yields its base URL and the app's services."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                            log_level="warning", lifespan="on",
                            **uvicorn_options(ping_interval))
    server = uvicorn.Server(config)
    captured: dict[str, Any] = {}

    def run() -> None:
        try:
            asyncio.run(server.serve())
        except BaseException as exc:  # reported to the test thread below
            captured["error"] = exc

    thread = threading.Thread(target=run, name=f"uvicorn:{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"server did not start: {captured.get('error')!r}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", _services(server)
    finally:
        server.should_exit = True
        thread.join(timeout=60)


def _services(server: uvicorn.Server) -> Any:
    # uvicorn keeps the lifespan's state on its lifespan handler; the app put its
    # Services there ("services").
    lifespan = getattr(server, "lifespan", None)
    state = getattr(lifespan, "state", {}) if lifespan is not None else {}
    return state.get("services")


class Switch:
    """A TCP forwarder in front of a server (a chain node, PostgreSQL), which a test can
    take down and bring back on the same port: the server as a client sees it when it
    goes away (connection refused, open connections cut) — without stopping it."""

    def __init__(self, upstream: str) -> None:
        """``upstream``: ``scheme://host:port[/...]`` (the host and port are used)."""
        netloc = upstream.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
        host, port = netloc.rsplit(":", 1)
        self._upstream = (host, int(port))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.up()

    def up(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:  # shutdown wakes the thread blocked in accept (Linux)
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            for s in self._open:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed: down
            try:
                server = socket.create_connection(self._upstream, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open |= {client, server}
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
