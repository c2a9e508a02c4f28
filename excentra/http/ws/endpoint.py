"""``/ws``: one connection = one ``Connection`` — a reader loop handling the client's
actions and a writer task draining the connection's bounded queue (replies and events go
through the same queue, so a ``subscribed`` always precedes the first event).

Protocol-level keep-alive (a ping every 20 s, a peer that does not answer is dropped) and
the frame size limit are uvicorn's (``excentra serve`` configures both).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from excentra.http.services import Services
from excentra.http.ws import channels as ch
from excentra.http.ws.hub import Hub, dumps

log = logging.getLogger("excentra.ws")

QUEUE_LIMIT = 1024
"""Messages a connection may have waiting while its peer is not reading; one more and it is
closed with 1008."""
MAX_MESSAGE = 4096
"""Longest client message (characters) the server reads; longer ones are an error."""
MAX_SUBSCRIPTIONS = 64
"""Channels one authenticated connection may follow at once."""
ANONYMOUS_SUBSCRIPTIONS = 16
"""Channels a connection that has not authenticated may follow (market data only)."""
_CLOSE = "\x00close"


class Connection:
    def __init__(self, websocket: WebSocket, hub: Hub, services: Services,
                 queue_limit: int = QUEUE_LIMIT) -> None:
        self.websocket = websocket
        self.hub = hub
        self.services = services
        self.user_id: str | None = None
        # Unbounded: one committed batch may queue more than the limit at once (a sweep
        # of many makers); the limit applies once the writer is stalled (see ``push``).
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.queue_limit = queue_limit
        self.channels: set[str] = set()
        """What it is subscribed to (bounded: ``MAX_SUBSCRIPTIONS``)."""
        self.closing = False
        self.stalled = False
        """The writer is waiting for the peer to take bytes (the transport is paused)."""

    # -- the hub's side (Peer) -------------------------------------------------------------

    def push(self, text: str) -> bool:
        if self.closing:
            return False
        # Slow means behind a peer that does not read: a burst queued while the writer is
        # free is written out at once (``send_text`` only suspends on a paused transport).
        if self.stalled and self.queue.qsize() >= self.queue_limit:
            self._close_slow()
            return False
        self.queue.put_nowait(text)
        return True

    def revoke(self, channel: str, reason: str) -> None:
        self.push(dumps(ch.message(ch.ERROR, message=reason, channel=channel)))
        self.push(dumps(ch.message(ch.UNSUBSCRIBED, channel=channel)))

    def _close_slow(self) -> None:
        self.closing = True
        while not self.queue.empty():  # what it did not read is dropped with it
            self.queue.get_nowait()
        self.queue.put_nowait(_CLOSE)
        log.warning("slow WebSocket client closed", extra={"user_id": self.user_id})

    # -- the connection's tasks --------------------------------------------------------------

    async def writer(self) -> None:
        while True:
            text = await self.queue.get()
            if text is _CLOSE:
                await self.websocket.close(code=1008, reason=ch.TOO_SLOW)
                return
            self.stalled = True
            await self.websocket.send_text(text)
            self.stalled = False

    async def reader(self) -> None:
        # Reads until the peer goes: a connection closed for slowness keeps reading (and
        # ignoring) until its writer has sent the 1008, which ending here would cancel.
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is not None and not self.closing:  # binary frames are ignored
                self.handle(text)

    # -- client actions --------------------------------------------------------------------

    def reply(self, kind: str, **fields: Any) -> None:
        self.push(dumps(ch.message(kind, **fields)))

    def handle(self, text: str) -> None:
        request = _parse(text)
        if request is None:
            self.reply(ch.ERROR, message=ch.INVALID_MESSAGE)
            return
        action, value = request
        if action == ch.AUTH:
            self._auth(value)
            return
        try:
            channel = ch.parse_channel(value)
        except ch.ChannelError as exc:
            self.reply(ch.ERROR, message=str(exc))
            return
        if channel.private and (problem := self._private_problem(channel, action)):
            self.reply(ch.ERROR, message=problem)
        elif action == ch.SUBSCRIBE:
            if (problem := self._subscribe_problem(channel)) is not None:
                self.reply(ch.ERROR, message=problem, channel=channel.name)
            else:
                self._subscribe(channel)
        else:
            self.channels.discard(channel.name)
            self.hub.unsubscribe(self, channel.name)
            if not channel.private:  # the original confirms public channels only
                self.reply(ch.UNSUBSCRIBED, channel=channel.name)

    def _auth(self, token: str) -> None:
        claimed = self.services.tokens.decode(token)
        # the same rule as HTTP: a token for a user that no longer exists is refused
        principal = None if claimed is None else self.services.roles.current(claimed)
        if principal is None:
            self.reply(ch.ERROR, message=ch.INVALID_TOKEN)
            return
        self.user_id = principal.user_id
        self.reply(ch.AUTHENTICATED)

    def _private_problem(self, channel: ch.Channel, action: str) -> str | None:
        if self.user_id is None:
            return ch.AUTH_REQUIRED
        if channel.key != self.user_id:
            return ch.NOT_YOURS
        if action == ch.SUBSCRIBE and self.services.suspended.contains(self.user_id):
            return ch.SUSPENDED  # leaving (unsubscribe) stays possible, and silent
        return None

    def _subscribe_problem(self, channel: ch.Channel) -> str | None:
        """Why this subscription is refused: a pair that does not exist (each would cost
        memory for nothing), or one channel too many for the connection."""
        if not channel.private and self.services.exchange.pair_spec(channel.key) is None:
            return f"{ch.UNKNOWN_PAIR}: {channel.key}"
        limit = MAX_SUBSCRIPTIONS if self.user_id is not None else ANONYMOUS_SUBSCRIPTIONS
        if channel.name not in self.channels and len(self.channels) >= limit:
            more = "" if self.user_id is not None else "; authenticate for more"
            return f"Too many subscriptions: at most {limit} per connection{more}"
        return None

    def _subscribe(self, channel: ch.Channel) -> None:
        self.channels.add(channel.name)
        self.hub.subscribe(self, channel)
        self.reply(ch.SUBSCRIBED, channel=channel.name)
        if channel.prefix == ch.ORDERBOOK:  # API.md: a full snapshot at once
            snapshot = self.hub.snapshot_text(channel.key)
            if snapshot is not None:
                self.push(snapshot)


def _parse(text: str) -> tuple[str, str] | None:
    """``(action, token or channel)`` of a well-formed client message, else ``None``."""
    if len(text) > MAX_MESSAGE:
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict):
        return None
    action = value.get("action")
    field = "token" if action == ch.AUTH else "channel"
    argument = value.get(field)
    if action not in (ch.AUTH, ch.SUBSCRIBE, ch.UNSUBSCRIBE) or not isinstance(argument, str):
        return None
    return action, argument


async def websocket_endpoint(websocket: WebSocket) -> None:
    services: Services = websocket.state.services
    hub = services.hub
    assert hub is not None  # started before the server accepts connections
    address = services.limiter.client_ip(websocket)
    per_ip = services.ws_per_ip
    await websocket.accept()
    if per_ip.get(address, 0) >= services.settings.ws_max_connections_per_ip:
        log.warning("WebSocket connection refused: too many from one address",
                    extra={"client": address})
        await websocket.close(code=1008, reason=ch.TOO_MANY_CONNECTIONS)
        return
    per_ip[address] = per_ip.get(address, 0) + 1
    try:
        await _serve(websocket, hub, services)
    finally:
        per_ip[address] -= 1
        if not per_ip[address]:
            del per_ip[address]


async def _serve(websocket: WebSocket, hub: Hub, services: Services) -> None:
    connection = Connection(websocket, hub, services, QUEUE_LIMIT)  # read now: tests lower it
    services.counters.ws_connections += 1
    writer = asyncio.create_task(connection.writer())
    try:
        with contextlib.suppress(WebSocketDisconnect):
            reader = asyncio.create_task(connection.reader())
            await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
                await reader
    finally:
        hub.drop(connection)
        services.counters.ws_connections -= 1
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await writer
