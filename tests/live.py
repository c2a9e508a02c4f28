"""A real uvicorn server on a free loopback port, in a thread of the test process: for tests
that need real sockets (schemathesis over HTTP, WebSocket clients)."""

from __future__ import annotations

import asyncio
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
