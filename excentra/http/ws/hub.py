"""The hub: committed batches in (from the broadcaster actor, one thread hop per batch),
events out to the connections subscribed to their channels.

Each event is serialised once and the same text is queued for every subscriber. Each
connection has a bounded queue drained by its own writer task; a connection whose queue
is full is dropped at once and closed with 1008 — the others never wait for it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from excentra.actors.bridge import Fence
from excentra.actors.journal import Committed
from excentra.engine.precision import plain
from excentra.http.ws import channels as ch
from excentra.http.ws.feed import Feed
from excentra.market import TickerStats

log = logging.getLogger("excentra.ws")


class Peer(Protocol):
    """A connection as the hub sees it."""

    user_id: str | None

    def push(self, text: str) -> bool:
        """Queue ``text``; ``False`` if the queue overflowed (the peer is closing)."""
        ...

    def revoke(self, channel: str, reason: str) -> None:
        """The server ends a subscription (e.g. its user was suspended)."""
        ...


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class Hub:
    def __init__(self, loop: asyncio.AbstractEventLoop, feed: Feed,
                 fence: Fence | None = None) -> None:
        self.loop = loop
        self.feed = feed
        self.fence = fence
        """Advanced past every batch applied: a caller resumes only once the hub shows
        its command (read-your-writes for the REST order book and ticker)."""
        if fence is not None:
            fence.attach()
        self.channels: dict[str, set[Peer]] = {}
        self.delivered = 0
        self.dropped_peers = 0
        self._pending: list[Committed] | None = []
        """Batches that arrive before ``ready()`` (the feed is still loading)."""
        self.listeners: list[Callable[[str, dict[str, Any]], None]] = []
        """Called with every routed event (channel, data), e.g. metrics; must not block."""

    # -- from the broadcaster's thread ---------------------------------------------------

    def deliver(self, batch: Committed) -> None:
        """``Subscriber`` protocol: runs in the broadcaster actor's thread."""
        self.loop.call_soon_threadsafe(self._on_batch, batch)

    # -- on the event loop -----------------------------------------------------------------

    def ready(self) -> None:
        """The feed is loaded: publish what queued up meanwhile, then everything live."""
        pending, self._pending = self._pending or [], None
        for batch in pending:
            self._on_batch(batch)

    def _on_batch(self, batch: Committed) -> None:
        if self._pending is not None:
            self._pending.append(batch)
            return
        for commit in batch.commands:
            for channel, data in self.feed.translate(commit):
                self.publish(channel, data)
        if self.fence is not None:
            self.fence.advance(batch.number)

    def publish(self, channel: str, data: dict[str, Any]) -> None:
        for listener in self.listeners:
            listener(channel, data)
        peers = self.channels.get(channel)
        if not peers:
            return
        text = dumps(ch.event(data))
        for peer in list(peers):
            if peer.push(text):
                self.delivered += 1
            else:
                self.drop(peer)
                self.dropped_peers += 1

    def subscribe(self, peer: Peer, channel: ch.Channel) -> None:
        self.channels.setdefault(channel.name, set()).add(peer)

    def unsubscribe(self, peer: Peer, channel: str) -> None:
        peers = self.channels.get(channel)
        if peers is not None:
            peers.discard(peer)
            if not peers:
                del self.channels[channel]

    def drop(self, peer: Peer) -> None:
        """Forget every subscription of ``peer``."""
        for name in [n for n, peers in self.channels.items() if peer in peers]:
            self.unsubscribe(peer, name)

    def close_private(self, user_id: str) -> None:
        """The user was suspended: end every subscription to its private channel."""
        name = f"{ch.ORDERS}:{user_id}"
        for peer in list(self.channels.get(name, ())):
            self.unsubscribe(peer, name)
            peer.revoke(name, ch.SUSPENDED)

    def snapshot_text(self, symbol: str) -> str | None:
        """The ``order_book`` event a new ``orderbook:`` subscriber gets at once."""
        if not self.feed.view.knows(symbol):
            return None
        return dumps(ch.event(self.feed.book_event(symbol)))

    def publish_tickers(self, symbols: Iterable[str], now: float | None = None) -> int:
        """One ``ticker`` event per pair that traded in the last 24 h; how many."""
        second = int(time.time() if now is None else now)
        sent = 0
        for symbol in symbols:
            stats = self.feed.view.ticker(symbol, second)
            if stats is not None:
                self.publish(f"{ch.TICKER}:{symbol}", ticker_data(symbol, stats))
                sent += 1
        return sent


def ticker_data(symbol: str, stats: TickerStats) -> dict[str, Any]:
    return {"type": ch.TICKER_EVENT, "symbol": symbol, "last_price": plain(stats.last_price),
            "high_24h": plain(stats.high_24h), "low_24h": plain(stats.low_24h),
            "volume_24h": plain(stats.volume_24h),
            "price_change_pct": plain(stats.price_change_pct)}
