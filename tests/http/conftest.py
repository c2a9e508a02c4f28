"""Fixtures of the HTTP tests: the app in-process (lifespan run, httpx over ASGI) on each
database backend, and helpers to make users and tokens without going through /auth."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest_asyncio
from argon2 import PasswordHasher
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from excentra.db.users import create_user
from excentra.http.app import create_app
from excentra.http.auth import Passwords
from excentra.http.config import Settings, parse_networks
from excentra.http.ratelimit import DEFAULT_POLICIES, Policy
from excentra.http.services import Services

FAST_PASSWORDS = Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
"""argon2id with tiny costs: the suite hashes hundreds of passwords."""

UNLIMITED = {name: Policy(1_000_000, p.window) for name, p in DEFAULT_POLICIES.items()}
"""Rate limits out of the way; the rate-limit tests build an app with the real ones."""


def settings_for(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url, "jwt_secret": "test-secret-" + "x" * 32,
        "seed_book": False, "rate_limits": UNLIMITED,
        "trusted_proxies": parse_networks("127.0.0.1, ::1"),
        "frontend_urls": ("http://localhost:3001",),
        "ws_max_connections_per_ip": 1000,  # the fan-out tests open hundreds on loopback
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class Api:
    """An in-process client plus the app's services (for setup and inspection)."""

    client: httpx.AsyncClient
    app: Starlette
    services: Services

    async def user(self, email: str | None = None, role: str = "user",
                   password: str = "password123") -> tuple[str, dict[str, str]]:
        """A user created directly in the database: its id and auth headers."""
        email = email or f"u{len(self._made)}-{id(self)}@example.com"
        self._made.append(email)
        hashed = await self.services.passwords.hash(password)
        user_id = await create_user(self.services.db, email, hashed, role)
        token = self.services.tokens.access(user_id, role)
        return str(user_id), {"Authorization": f"Bearer {token}"}

    async def funded(self, **amounts: str) -> tuple[str, dict[str, str]]:
        """A user with deposits, e.g. ``funded(USDT="1000", BTC="0.05")``."""
        user_id, headers = await self.user()
        for asset, amount in amounts.items():
            outcome = await self.services.exchange.deposit(user_id, asset, Decimal(amount))
            assert isinstance(outcome, dict), outcome
        return user_id, headers

    async def limit(self, headers: dict[str, str], side: str, price: str, quantity: str,
                    symbol: str = "BTC/USDT") -> dict[str, Any]:
        """Place a limit order through the API; its (200) answer."""
        r = await self.client.post("/api/v1/orders", headers=headers, json={
            "symbol": symbol, "side": side, "order_type": "limit", "price": price,
            "quantity": quantity})
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    @property
    def _made(self) -> list[str]:
        made: list[str] = self.__dict__.setdefault("_made_list", [])
        return made


async def running_api(app: Starlette) -> AsyncIterator[Api]:
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            services: Services = manager._state["services"]
            yield Api(c, app, services)


@pytest_asyncio.fixture
async def api(database_url: str) -> AsyncIterator[Api]:
    """The app on a fresh database (SQLite and PostgreSQL), rate limits lifted."""
    app = create_app(settings_for(database_url), passwords=FAST_PASSWORDS)
    async for running in running_api(app):
        yield running
