"""Memory is sized by what is live, never by what was processed (issue 15, item 7).

Every in-memory structure that a stream of orders and trades passes through either
tracks live state (open orders, waiting replies, price levels) and must equal it once the
stream is answered, or is a cache with a bound and must stay within it. Sizes are checked,
not RSS or timings: the figures of a long run are ``excentra bench soak``'s
(docs/RELIABILITY.md, "Memory bounds").

The structures of other threads (the actors') are read once everything is answered: the
actor objects are reached through pykka's weak reference (``_actor_weakref``), as no
public accessor exists for a test to count them.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from decimal import Decimal
from typing import Any

import jwt
import pykka
import pytest
from starlette.requests import Request

from excentra.actors import ledger as ledger_module
from excentra.actors.writes import _as_uuid
from excentra.engine import OrderBook, OrderType, RejectCode, Side, TradeExecuted
from excentra.exchange import Exchange
from excentra.http.app import create_app
from excentra.http.auth import Tokens
from excentra.http.errors import ApiError
from excentra.http.ratelimit import Policy, RateLimiter
from excentra.http.sessions import RefreshGrace
from excentra.market.ticker import MAX_ENTRIES, WINDOW_SECONDS, Ticker24h
from tests.builders import btc_usdt
from tests.http.conftest import FAST_PASSWORDS, Api, running_api, settings_for

SYMBOL = "BTC/USDT"
TRADERS = 12
COMMANDS = 1500
"""Facade commands per phase: well past the shrunk caches below."""
RECENT = 200
"""``RECENT_COMMANDS`` for these tests (100,000 in production)."""
TOKEN_CACHE = 20
"""``Tokens.CACHE_SIZE`` for these tests (10,000 in production)."""


def _actor(ref: pykka.ActorRef[Any]) -> Any:
    actor = ref._actor_weakref()  # private: no public way to reach an actor's state
    assert actor is not None
    return actor


# -- through the whole app ------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_stream_of_orders_and_trades_leaves_only_live_state(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ledger_module, "RECENT_COMMANDS", RECENT)
    monkeypatch.setattr(Tokens, "CACHE_SIZE", TOKEN_CACHE)
    app = create_app(settings_for(database_url), passwords=FAST_PASSWORDS)
    async for api in running_api(app):
        users = [(await api.funded())[0] for _ in range(TRADERS)]
        for user in users:
            for asset, amount in (("USDT", "1000000"), ("BTC", "10000")):
                assert isinstance(await api.services.exchange.deposit(
                    user, asset, Decimal(amount)), dict)
        flow = Flow(api.services.exchange, users, random.Random(15))
        series = []
        for _phase in range(2):
            await flow.run(COMMANDS)
            await _http_traffic(api, users[0])
            series.append(_sizes(api) | {"trades": flow.trades})
        first, second = series
        assert second["trades"] > first["trades"] > 50, "the flow must trade"
        for sizes in series:
            _check(sizes)
        # caches full after the first phase stay at their bound, not twice it (a command
        # refused leaves the ledger's memory: at most the last round's 25 may be missing)
        for sizes in series:
            assert RECENT - 25 <= sizes["ledger.recent"] <= RECENT
        assert second["tokens.verified"] <= TOKEN_CACHE
        assert second["metrics.series"] == first["metrics.series"]


class Flow:
    """Limit orders a few ticks around 100 (about half cross), market orders and cancels,
    through the facade, 25 at a time; each trader keeps a few orders resting."""

    def __init__(self, ex: Exchange, users: list[str], rng: random.Random) -> None:
        self.ex, self.users, self.rng = ex, users, rng
        self.resting: dict[str, list[str]] = {u: [] for u in users}
        self.trades = 0

    async def run(self, commands: int) -> None:
        for _ in range(commands // 25):
            await asyncio.gather(*(self._one() for _ in range(25)))

    async def _one(self) -> None:
        user = self.rng.choice(self.users)
        mine, side = self.resting[user], self.rng.choice((Side.BUY, Side.SELL))
        draw = self.rng.random()
        if (draw < 0.3 and mine) or len(mine) >= 5:
            # a cancel may find the order filled meanwhile: refused, as it should be
            await self.ex.cancel_order(user, mine.pop(0))
            return
        if draw < 0.45:
            outcome = await self.ex.place_order(
                user, SYMBOL, side, OrderType.MARKET,
                budget=Decimal("0.05") if side is Side.BUY else None,
                quantity=None if side is Side.BUY else Decimal("0.0005"))
            if isinstance(outcome, dict):  # an empty side refuses a market order
                self.trades += len(outcome["trades"])
            return
        price = Decimal(100) + Decimal("0.01") * self.rng.randint(-4, 4)
        outcome = await self.ex.place_order(
            user, SYMBOL, side, OrderType.LIMIT, price=price,
            quantity=Decimal("0.0001") * self.rng.randint(1, 5),
            client_order_id=uuid.uuid4().hex if draw < 0.6 else None)
        if not isinstance(outcome, dict):  # it would cross the trader's own order
            assert outcome.code is RejectCode.SELF_CROSS, outcome
            return
        self.trades += len(outcome["trades"])
        if outcome["status"] in ("open", "partially_filled"):
            mine.append(outcome["order_id"])


async def _http_traffic(api: Api, user: str) -> None:
    """Requests whose edges keep state: fresh tokens (the verified-token cache), ids in
    paths (metric labels), reads of the market view."""
    for i in range(TOKEN_CACHE + 10):
        claims = {"user_id": user, "role": "user", "exp": int(time.time()) + 600 + i}
        token = jwt.encode(claims, api.services.settings.jwt_secret, algorithm="HS256")
        r = await api.client.get(f"/api/v1/orders/{uuid.uuid4()}",
                                 headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 404, r.text
    for path in ("/api/v1/orderbook/BTC-USDT", "/api/v1/ticker/BTC-USDT",
                 "/api/v1/trades/BTC-USDT"):
        assert (await api.client.get(path)).status_code == 200


def _sizes(api: Api) -> dict[str, Any]:
    s = api.services
    ex = s.exchange
    assert ex.supervisor is not None
    assert ex.supervisor.actors is not None
    actors = ex.supervisor.actors
    ledger, journal = _actor(actors.ledger), _actor(actors.journal)
    book: OrderBook = _actor(actors.books[SYMBOL]).book
    assert s.market is not None
    mirror = s.market.mirrors[SYMBOL]
    return {
        "open": len(book),
        "ledger.recent": len(ledger.recent),
        "ledger.open_orders": len(ledger.open_orders),
        "ledger.sent": sum(len(v) for v in ledger.sent.values()),
        "clearing.terms": len(ledger.clearing.terms),
        "ledger.reservations": len(ledger.clearing.ledger.reservations),
        "journal.pending": len(journal.pending),
        "journal.sizes": len(journal.stats.sizes),
        "as_uuid": _as_uuid.cache_info().currsize,
        "inflight": ex.pending_commands(),
        "outstanding": len(ex.outstanding),
        "market.resting": len(s.market.resting),
        "mirror.levels": sum(len(side) for side in mirror._sides.values()),
        "book.levels": len(book.snapshot(10_000).bids) + len(book.snapshot(10_000).asks),
        "ticker": s.market.tickers[SYMBOL].sizes,
        "tokens.verified": len(s.tokens._verified),
        "hub.channels": len(s.hub.channels) if s.hub else 0,
        "metrics.series": s.metrics.render().count(b"excentra_http_requests_total{"),
    }


def _check(sizes: dict[str, Any]) -> None:
    live = sizes["open"]
    for name in ("ledger.open_orders", "clearing.terms", "ledger.reservations",
                 "market.resting"):
        assert sizes[name] == live, (name, sizes)
    for name in ("ledger.sent", "journal.pending", "inflight", "outstanding",
                 "hub.channels"):
        assert sizes[name] == 0, (name, sizes)
    assert sizes["mirror.levels"] == sizes["book.levels"] <= live, sizes
    assert sizes["ledger.recent"] <= RECENT
    assert sizes["journal.sizes"] <= 100_000
    assert sizes["as_uuid"] <= (_as_uuid.cache_info().maxsize or 0)
    assert all(n <= MAX_ENTRIES for n in sizes["ticker"]), sizes


# -- one structure at a time ----------------------------------------------------------------


def test_the_ticker_keeps_one_entry_per_second_of_the_window_unread() -> None:
    ticker = Ticker24h()
    start = 1_700_000_000
    rng = random.Random(7)
    seconds = range(start, start + 2 * WINDOW_SECONDS, 5)
    for second in seconds:  # nobody asks for the stats: the trades must evict
        base = rng.randint(10_000, 20_000)
        for step in (3, 2, 1, 2, 4):  # highs and lows within one second
            ticker.add(second, Decimal(base + step), Decimal(1))
    buckets, highs, lows = ticker.sizes
    assert buckets == WINDOW_SECONDS // 5 + 1  # only the last day's seconds
    assert highs <= buckets
    assert lows <= buckets
    assert max(ticker.sizes) <= MAX_ENTRIES


def test_the_rate_limiter_keeps_at_most_its_bound_of_windows_per_route() -> None:
    now = [0.0]
    limiter = RateLimiter({"orders": Policy(3, 60)}, clock=lambda: now[0], max_windows=50)
    for i in range(500):
        limiter.check(_request(), "orders", identity=f"user-{i}")
    assert limiter.sizes() == {"orders": 50}
    for _ in range(2):  # a counted identity is still counted: 3 of 3, then refused
        limiter.check(_request(), "orders", identity="user-499")
    with pytest.raises(ApiError, match="rate limit exceeded"):
        limiter.check(_request(), "orders", identity="user-499")
    now[0] = 61.0  # every window expired: new ones push them out from the front
    for i in range(10):
        limiter.check(_request(), "orders", identity=f"late-{i}")
    assert limiter.sizes()["orders"] <= 50 - 10


def _request() -> Request:
    return Request({"type": "http", "method": "POST", "path": "/", "headers": [],
                    "client": ("127.0.0.1", 1)})


def test_the_token_cache_keeps_at_most_its_size() -> None:
    tokens = Tokens("s" * 40)
    tokens.CACHE_SIZE = 5  # the instance's own, smaller bound
    user = str(uuid.uuid4())
    for i in range(50):
        token = jwt.encode({"user_id": user, "role": "user", "exp": int(time.time()) + 60 + i},
                           "s" * 40, algorithm="HS256")
        assert tokens.decode(token) is not None
    assert len(tokens._verified) <= 5


@pytest.mark.asyncio
async def test_the_refresh_grace_forgets_rotations_past_their_grace_and_its_bound() -> None:
    grace = RefreshGrace(0.05)
    grace.MAX_ENTRIES = 10
    for i in range(100):
        future = grace.begin(f"old-{i}")
        assert future is not None
        future.set_result(f"new-{i}")
    assert len(grace) <= 10
    await asyncio.sleep(0.1)  # all past their grace: pushed out as new ones begin
    for i in range(6):
        done = grace.begin(f"later-{i}")
        assert done is not None
        done.set_result("x")
    assert len(grace) == 6
    assert grace.joining("old-99") is None


def test_a_level_under_place_and_cancel_churn_keeps_a_bounded_queue() -> None:
    book = OrderBook(btc_usdt())
    book.place_limit("front", "maker", Side.BUY, Decimal(100), Decimal(1))
    for i in range(5_000):
        book.place_limit(f"o{i}", "churn", Side.BUY, Decimal(100), Decimal("0.001"))
        book.cancel(f"o{i}")
    best = book.best_bid()
    assert best is not None
    level = book._bids[best]
    assert len(book) == 1
    assert len(level.orders) - level.head <= 2 * level.count + 64
    # the queue is still a FIFO of the live orders: the front one trades first
    events = book.place_limit("taker", "other", Side.SELL, Decimal(100), Decimal(1))
    assert [e.maker_order_id for e in events if isinstance(e, TradeExecuted)] == ["front"]

