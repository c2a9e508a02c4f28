"""What the WebSocket tests share: the app served by a real uvicorn in a thread (``Server``),
real ``websockets`` clients (``Client``), and users made and funded on the server's loop.

The server runs on its own event loop in its own thread; the tests run on theirs. Anything
bound to the server's loop (the database, the exchange) is reached through ``Server.call``,
which runs a coroutine there and waits for it from the test's loop.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

from excentra.actors.journal import Pause, Resume
from excentra.db.users import create_user
from excentra.http.app import create_app
from excentra.http.services import Services
from excentra.http.ws.hub import Hub
from tests.http.conftest import FAST_PASSWORDS, settings_for
from tests.live import live_server

T = TypeVar("T")
D = Decimal
WAIT = 5.0
"""Seconds a client waits for a message it expects."""
TICKER_INTERVAL = 0.2
"""The tests' ticker period (the server's default is 5 s)."""


@dataclass
class User:
    id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Server:
    base: str
    services: Services
    http: httpx.AsyncClient

    @property
    def ws_url(self) -> str:
        return self.base.replace("http://", "ws://") + "/ws"

    @property
    def hub(self) -> Hub:
        hub = self.services.hub
        assert hub is not None
        return hub

    def call(self, coro: Coroutine[Any, Any, T]) -> Awaitable[T]:
        """Run ``coro`` on the server's loop (where its database and exchange live)."""
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.hub.loop))

    async def user(self, role: str = "user", **funds: str) -> User:
        """A user made in the database, with deposits (no caps), e.g. ``user(USDT="1e6")``."""
        user_id = str(await self.call(create_user(self.services.db,
                                                  f"{uuid.uuid4().hex}@example.com",
                                                  "", role)))
        for asset, amount in funds.items():
            outcome = await self.call(self.services.exchange.deposit(user_id, asset,
                                                                     D(amount)))
            assert isinstance(outcome, dict), outcome
        return User(user_id, self.services.tokens.access(user_id, role))

    async def order(self, user: User, side: str, quantity: str, price: str | None = None,
                    symbol: str = "BTC/USDT", **extra: Any) -> dict[str, Any]:
        """Place a limit order (a market one without ``price``); the 200 answer."""
        body = {"symbol": symbol, "side": side, "quantity": quantity,
                "order_type": "market" if price is None else "limit", "price": price,
                **extra}
        r = await self.http.post("/api/v1/orders", headers=user.headers, json=body)
        assert r.status_code == 200, r.text
        answer: dict[str, Any] = r.json()
        return answer

    async def cancel(self, user: User, order_id: str) -> dict[str, Any]:
        r = await self.http.delete(f"/api/v1/orders/{order_id}", headers=user.headers)
        assert r.status_code == 200, r.text
        answer: dict[str, Any] = r.json()
        return answer

    async def connect(self, **options: Any) -> Client:
        return Client(await websockets.connect(self.ws_url, **options))

    def hold_journal(self) -> None:
        """Commands wait uncommitted (their HTTP requests too) until ``release_journal``."""
        self._journal().tell(Pause())

    def release_journal(self) -> None:
        self._journal().tell(Resume())

    def _journal(self) -> Any:
        supervisor = self.services.exchange.supervisor
        assert supervisor is not None
        assert supervisor.actors is not None
        return supervisor.actors.journal


@asynccontextmanager
async def serving(database_url: str, ping_interval: float = 20.0, **overrides: Any
                  ) -> AsyncIterator[Server]:
    """The app on ``database_url`` behind a real uvicorn (rate limits lifted, no seeding,
    a fast ticker), with an HTTP client on the test's loop. Close every WebSocket client
    before the block ends: the server's shutdown waits for its connections."""
    settings = settings_for(database_url, **{"ticker_interval": TICKER_INTERVAL, **overrides})
    app = create_app(settings, passwords=FAST_PASSWORDS)
    with live_server(app, ping_interval=ping_interval) as (base, services):
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            yield Server(base, services, http)


class Client:
    """A real WebSocket client speaking the protocol in JSON."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.ws.close()

    async def send(self, **message: Any) -> None:
        await self.ws.send(json.dumps(message))

    async def recv(self, timeout: float = WAIT) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        return message

    async def event(self, timeout: float = WAIT) -> dict[str, Any]:
        """The next message, which must be an event: its ``data``."""
        message = await self.recv(timeout)
        assert message["type"] == "event", message
        data: dict[str, Any] = message["data"]
        return data

    async def ask(self, **message: Any) -> dict[str, Any]:
        """Send ``message`` and return the server's next message."""
        await self.send(**message)
        return await self.recv()

    async def subscribe(self, *channels: str) -> None:
        for channel in channels:
            answer = await self.ask(action="subscribe", channel=channel)
            assert answer == {"type": "subscribed", "channel": channel}, answer
            if channel.startswith("orderbook:"):
                snapshot = await self.event()
                assert snapshot["type"] == "order_book", snapshot

    async def auth(self, user: User) -> None:
        assert await self.ask(action="auth", token=user.token) == {"type": "authenticated"}

    async def quiet(self, seconds: float = 0.3) -> None:
        """Nothing arrives for ``seconds``."""
        try:
            message = await asyncio.wait_for(self.ws.recv(), seconds)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected message: {message!r}")
