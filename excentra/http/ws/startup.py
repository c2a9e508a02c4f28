"""The market-data start step: load the market view from the database, subscribe the
WebSocket hub to the core's committed batches, and run the 5-second ticker loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from excentra.db import market
from excentra.http.services import Services
from excentra.http.ws import channels as ch
from excentra.http.ws.feed import Feed
from excentra.http.ws.hub import Hub
from excentra.market.ticker import WINDOW_SECONDS, Ticker24h
from excentra.market.view import MarketView, OpenOrder

log = logging.getLogger("excentra.ws")


async def load_view(services: Services, view: MarketView) -> None:
    """Books and 24 h windows as committed: open orders, each book's seq, the day's trades,
    and each pair's last trade before the window."""
    orders = await market.open_book_orders(services.db)
    view.load_orders([OpenOrder(str(r["id"]), r["symbol"], r["side"], r["price"],
                                r["remaining_quantity"]) for r in orders])
    view.load_seqs(await market.book_seqs(services.db))
    await load_tickers(services, view)
    log.info("market view loaded", extra={"open_orders": len(orders),
                                          "pairs": len(view.specs)})


async def load_tickers(services: Services, view: MarketView) -> None:
    """(Re)build every pair's 24 h window from the trades table."""
    since = datetime.now(UTC) - timedelta(seconds=WINDOW_SECONDS)
    windows = {symbol: Ticker24h() for symbol in view.specs}
    for symbol, price in (await market.last_prices_before(services.db, since)).items():
        if symbol in windows:
            windows[symbol].set_before(price)
    for r in await market.window_trades(services.db, since):
        if r["symbol"] in windows:
            windows[r["symbol"]].add(int(r["created_at"].timestamp()), r["price"],
                                     r["quantity"])
    view.tickers.update(windows)


async def reload_tickers(services: Services) -> None:
    """Rebuild the 24 h windows from storage (after trades were changed outside the core,
    e.g. an operator's correction, or a test moving trades back in time)."""
    assert services.market is not None, "the market view is not started"
    await load_tickers(services, services.market)


def hub_of(services: Services) -> Hub:
    hub = services.hub
    assert hub is not None, "the WebSocket side is not started"
    return hub


async def start_ws(services: Services) -> Callable[[], Awaitable[None]]:
    """Startup step. Runs before anything can place orders (seeding comes after), so no
    command is committed between loading the feed and subscribing the hub."""
    exchange = services.exchange
    supervisor = exchange.supervisor
    assert supervisor is not None
    view = MarketView(exchange.pair_spec)
    for pair in exchange.registry.pairs.values():
        view.add_pair(pair.spec)
    hub = Hub(asyncio.get_running_loop(), Feed(view), exchange.fence)
    supervisor.subscribe(hub)
    await load_view(services, view)
    hub.ready()
    services.hub, services.market = hub, view
    services.suspended.listeners.append(hub.close_private)

    def deposit_seen(user_id: str, deposit: dict[str, Any]) -> None:
        hub.publish(f"{ch.ORDERS}:{user_id}", {"type": ch.DEPOSIT_UPDATE_EVENT,
                                                "data": deposit})

    exchange.deposit_listeners.append(deposit_seen)
    task = asyncio.create_task(_ticker_loop(services, hub), name="excentra-ticker")

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        supervisor.unsubscribe(hub)
        exchange.deposit_listeners.remove(deposit_seen)
        exchange.fence.detach()

    return stop


async def _ticker_loop(services: Services, hub: Hub) -> None:
    while True:
        await asyncio.sleep(services.settings.ticker_interval)
        active = [p.symbol for p in services.catalog.pairs.values() if p.active]
        try:
            hub.publish_tickers(active)
        except Exception:  # one bad tick must not end the ticker for good
            log.exception("ticker tick failed")
