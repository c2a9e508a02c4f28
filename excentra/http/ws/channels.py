"""Every WebSocket name in one place: channel prefixes, client actions, server message and
event types, and the original's error messages; plus channel parsing.

Channels (reference §4.2): ``orderbook:BTC/USDT``, ``trades:BTC/USDT``, ``ticker:BTC/USDT``
(slash form, normalised) and the private ``orders:<user uuid>`` (lowercase), which also
carries the user's ``deposit_update`` and ``withdrawal_update`` events (on-chain custody).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from excentra.http.errors import ApiError
from excentra.http.symbols import slash_symbol

# -- channel prefixes -------------------------------------------------------------------------
ORDERBOOK = "orderbook"
TRADES = "trades"
TICKER = "ticker"
ORDERS = "orders"
MARKET_PREFIXES = (ORDERBOOK, TRADES, TICKER)

# -- client actions -----------------------------------------------------------------------------
AUTH = "auth"
SUBSCRIBE = "subscribe"
UNSUBSCRIBE = "unsubscribe"

# -- server message types -----------------------------------------------------------------------
SUBSCRIBED = "subscribed"
UNSUBSCRIBED = "unsubscribed"
AUTHENTICATED = "authenticated"
ERROR = "error"
EVENT = "event"

# -- event types (``{"type": "event", "data": {"type": ...}}``) ----------------------------------
ORDER_BOOK_EVENT = "order_book"
TRADE_EVENT = "trade"
ORDER_STATUS_EVENT = "order_status"
TICKER_EVENT = "ticker"
DEPOSIT_UPDATE_EVENT = "deposit_update"
WITHDRAWAL_UPDATE_EVENT = "withdrawal_update"

# -- error messages (the original's, plus ours) ------------------------------------------------
INVALID_MESSAGE = "Invalid message format"
INVALID_TOKEN = "Invalid or expired token"  # noqa: S105 - a message, not a secret
AUTH_REQUIRED = "Authentication required for private channels"
NOT_YOURS = "Cannot access another user's channel"
NO_COLON = "Invalid ws channel e.g `trades:BTC-USDT`"
UNSUPPORTED = "Unsupported Channel"
SUSPENDED = "Account suspended"
UNKNOWN_PAIR = "Unknown trading pair"
TOO_MANY_CONNECTIONS = "Too many connections from your address"
TOO_SLOW = "Client cannot keep up"
"""Close reason (code 1008) for a connection whose outgoing queue overflowed."""


@dataclass(frozen=True, slots=True)
class Channel:
    prefix: str
    key: str
    """The pair in slash form, or the user id of an ``orders`` channel."""

    @property
    def name(self) -> str:
        return f"{self.prefix}:{self.key}"

    @property
    def private(self) -> bool:
        return self.prefix == ORDERS


class ChannelError(ValueError):
    """A channel name that does not parse; ``str(exc)`` is the message for the client."""


def parse_channel(text: str) -> Channel:
    prefix, colon, rest = text.partition(":")
    if not colon:
        raise ChannelError(NO_COLON)
    if prefix == ORDERS:
        try:
            return Channel(ORDERS, str(uuid.UUID(rest.strip())))
        except ValueError:
            raise ChannelError(f"Invalid user ID in orders channel: {rest[:64]}") from None
    if prefix not in MARKET_PREFIXES:
        raise ChannelError(UNSUPPORTED)
    try:
        return Channel(prefix, slash_symbol(rest))
    except ApiError as exc:
        raise ChannelError(exc.message) from None


def message(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, **fields}


def event(data: dict[str, Any]) -> dict[str, Any]:
    return {"type": EVENT, "data": data}
