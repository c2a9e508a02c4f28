"""The WebSocket endpoint under hostile clients: real ``websockets`` clients against the app
served by uvicorn on a loopback port, sending what hypothesis makes of the protocol —
invalid JSON, wrong types, unknown actions and channels, deep nesting, binary and oversized
frames, bursts of subscriptions, auth with forged, expired and dead users' tokens — on
several connections at once, interleaved.

After every example: each message the server sent is a well-formed protocol message; a
connection it closed was closed with a protocol close code (never 1011/1006); one it kept
still answers in order; a client that was subscribed meanwhile got its trade event; a
fresh client is served; ``/health`` answers; and nothing was logged at ERROR or with a
traceback.

Protocol behaviour does not depend on the database: SQLite only, like ``tests/ws``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import websockets
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from excentra.db import Database, migrate
from excentra.db.users import create_user
from excentra.http.app import create_app
from excentra.http.auth import Tokens
from excentra.http.ws import MAX_FRAME
from excentra.http.ws.endpoint import MAX_MESSAGE
from tests.http.conftest import FAST_PASSWORDS, settings_for
from tests.live import live_server

EXAMPLES = 25
WAIT = 5.0
QUIET = 0.2
"""Seconds without a message after which a garbage client is taken to have had all its
answers (only to end the drain: correctness never depends on it)."""
MESSAGE_TYPES = {"error", "subscribed", "unsubscribed", "authenticated", "event"}
CLOSE_CODES = {1000, 1008, 1009}
"""Normal, policy (caps, slow consumer), too big: how the server may end a connection."""
PROBE = "ticker:BTC/USDT"
"""Unsubscribing from a public channel is always confirmed: the liveness probe."""


@dataclass(frozen=True)
class Live:
    base: str
    ws_url: str
    secret: str
    tokens: dict[str, str]
    """``user``, ``maker``, ``taker``: valid tokens; ``ghost``: a user deleted in SQL."""
    ids: dict[str, str]


class Troubles(logging.Handler):
    """Every record at ERROR or above, or carrying a traceback, from any logger."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.records.append(record)

    def report(self) -> str:
        return "\n".join(f"{r.name} {r.levelname} {r.getMessage()}\n"
                         f"{logging.Formatter().formatException(r.exc_info) if r.exc_info else ''}"
                         for r in self.records)


async def _users(url: str) -> dict[str, str]:
    db = Database(url)
    await db.connect()
    try:
        await migrate(db)
        ids = {name: str(await create_user(db, f"ws-{name}@example.com"))
               for name in ("user", "maker", "taker", "ghost")}
        await db.execute("DELETE FROM users WHERE id = :id", {"id": uuid.UUID(ids["ghost"])})
        return ids
    finally:
        await db.disconnect()


@pytest.fixture
def troubles() -> Iterator[Troubles]:
    handler = Troubles()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


@pytest.fixture
def live(tmp_path: Path, troubles: Troubles) -> Iterator[Live]:
    url = f"sqlite:///{tmp_path / 'excentra.db'}"
    config = settings_for(url, ticker_interval=0.2)
    ids = asyncio.run(_users(url))
    tokens = Tokens(config.jwt_secret)
    issued = {name: tokens.access(user_id, "user") for name, user_id in ids.items()}
    with live_server(create_app(config, passwords=FAST_PASSWORDS)) as (base, _services):
        for name in ("maker", "taker"):
            for asset, amount in [("USDT", "1000")] + [("BTC", "0.05")] * 4:
                r = httpx.post(f"{base}/api/v1/balances/deposit",
                               headers={"Authorization": f"Bearer {issued[name]}"},
                               json={"asset": asset, "amount": amount})
                assert r.status_code == 200, r.text
        yield Live(base, base.replace("http://", "ws://") + "/ws", config.jwt_secret,
                   issued, ids)
    assert not troubles.records, troubles.report()


# -- what a hostile client sends --------------------------------------------------------------

ACTIONS = st.sampled_from(["subscribe", "unsubscribe", "auth", "SUBSCRIBE", "", "ping",
                           "subscribe ", "delete", "__proto__"])
CHANNEL_TEXT = st.one_of(
    st.sampled_from(["orderbook:BTC/USDT", "trades:BTC-USDT", "ticker:eth/usdt",
                     "ticker:BTC/USDT", "orderbook:DOGE/USDT", "candles:BTC/USDT", "orders:",
                     "orders:not-a-uuid", f"orders:{uuid.uuid4()}", "trades:", ":", "",
                     "orderbook:BTC/USDT/ETH", "ticker:\x00", "trades:" + "A" * 5000]),
    st.text(max_size=40),
    st.builds(lambda p, k: f"{p}:{k}", st.sampled_from(["orderbook", "trades", "ticker",
                                                        "orders"]), st.text(max_size=20)),
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                               max_size=4),
    max_leaves=12)


@st.composite
def tokens(draw: st.DrawFn, live: Live) -> str:
    kind = draw(st.sampled_from(["text", "wrong-secret", "ghost", "expired", "string-exp",
                                 "valid", "none-alg", "huge"]))
    now = int(time.time())
    claims = {"user_id": live.ids["user"], "role": "admin", "exp": now + 600}
    match kind:
        case "text":
            return draw(st.text(max_size=60))
        case "wrong-secret":
            return jwt.encode(claims, "not-the-secret-" + "x" * 32, algorithm="HS256")
        case "ghost":
            return live.tokens["ghost"]
        case "expired":
            return jwt.encode({**claims, "exp": now - 3600}, live.secret, algorithm="HS256")
        case "string-exp":
            return jwt.encode({**claims, "exp": str(now + 600)}, live.secret, algorithm="HS256")
        case "none-alg":
            return jwt.encode(claims, key=None, algorithm="none")
        case "huge":
            return "e" * draw(st.integers(1000, MAX_MESSAGE + 10))
        case _:
            return live.tokens["user"]


def frames(live: Live) -> st.SearchStrategy[str | bytes]:
    structured = st.one_of(
        st.builds(lambda a, c: {"action": a, "channel": c}, ACTIONS, CHANNEL_TEXT),
        st.builds(lambda a, c: {"action": a, "channel": c}, ACTIONS, JSON_VALUES),
        st.builds(lambda t: {"action": "auth", "token": t}, tokens(live)),
        st.builds(lambda t: {"action": "auth", "token": t}, JSON_VALUES),
        st.dictionaries(st.text(max_size=10), JSON_VALUES, max_size=5),
        JSON_VALUES,
    )
    return st.one_of(
        structured.map(json.dumps),
        st.text(max_size=200),  # mostly not JSON at all
        st.integers(1, 3000).map(lambda n: "[" * n + "]" * n),  # deep nesting
        st.integers(1, 3000).map(lambda n: '{"a":' * n + "1" + "}" * n),
        st.binary(max_size=200),
        st.integers(MAX_MESSAGE - 2, MAX_MESSAGE + 50).map(
            lambda n: json.dumps({"action": "subscribe", "channel": "x" * n})),
        st.integers(MAX_FRAME - 16, MAX_FRAME + 4096).map(lambda n: "x" * n),  # too big
        st.just(json.dumps({"action": "subscribe", "channel": "ticker:BTC/USDT"}) + " " * 10),
    )


@st.composite
def scripts(draw: st.DrawFn, live: Live) -> list[tuple[int, str | bytes]]:
    """Frames for three clients, interleaved; sometimes a burst of subscriptions."""
    steps = draw(st.lists(st.tuples(st.integers(0, 2), frames(live)), min_size=1,
                          max_size=12))
    if draw(st.booleans()):
        who = draw(st.integers(0, 2))
        pairs = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "NOPE/USDT"]
        burst = [json.dumps({"action": "subscribe", "channel": f"{kind}:{pair}"})
                 for kind in ("orderbook", "trades", "ticker") for pair in pairs] * 3
        at = draw(st.integers(0, len(steps)))
        steps[at:at] = [(who, frame) for frame in burst]
    return steps


# -- checking what comes back -----------------------------------------------------------------

def well_formed(text: str | bytes) -> dict[str, Any]:
    assert isinstance(text, str), f"a binary frame from the server: {text!r}"
    message = json.loads(text)
    assert isinstance(message, dict), message
    assert message.get("type") in MESSAGE_TYPES, message
    if message["type"] == "error":
        assert isinstance(message.get("message"), str), message
        assert message["message"], message
    return message


async def drain(ws: ClientConnection) -> None:
    """Read what the server sent until it goes quiet or closes the connection."""
    try:
        while True:
            well_formed(await asyncio.wait_for(ws.recv(), QUIET))
    except TimeoutError:
        return
    except ConnectionClosed:
        return


async def still_serves(ws: ClientConnection) -> None:
    """A connection the server kept answers the probe, in order."""
    await ws.send(json.dumps({"action": "unsubscribe", "channel": PROBE}))
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        message = well_formed(await asyncio.wait_for(ws.recv(), WAIT))
        if message == {"type": "unsubscribed", "channel": PROBE}:
            return
    raise AssertionError("the probe got no answer")


def _size(frame: str | bytes) -> int:
    return len(frame.encode("utf-8", "surrogatepass") if isinstance(frame, str) else frame)


def closed_properly(ws: ClientConnection, sent_oversized: bool) -> None:
    """Closed with a proper code — or, for a client that sent a frame above ``MAX_FRAME``,
    abnormally (1006): the server answers 1009 and closes while the rest of that frame is
    still arriving, so its kernel resets the connection and the close frame may be lost on
    the way (TCP, not the server: 1009 arrives in most runs)."""
    code = ws.close_code
    allowed = CLOSE_CODES | ({1006} if sent_oversized else set())
    assert code in allowed, (code, ws.close_reason)


async def trade(live: Live, http: httpx.AsyncClient) -> None:
    for name, side in (("maker", "sell"), ("taker", "buy")):
        r = await http.post("/api/v1/orders", headers={
            "Authorization": f"Bearer {live.tokens[name]}"}, json={
            "symbol": "BTC/USDT", "side": side, "order_type": "limit", "price": "100",
            "quantity": "0.001"})
        assert r.status_code == 200, r.text


async def next_trade(ws: ClientConnection) -> dict[str, Any]:
    while True:
        message = well_formed(await asyncio.wait_for(ws.recv(), WAIT))
        if message["type"] == "event" and message["data"].get("type") == "trade":
            data: dict[str, Any] = message["data"]
            return data


async def subscribed(ws: ClientConnection, channel: str) -> None:
    await ws.send(json.dumps({"action": "subscribe", "channel": channel}))
    assert well_formed(await asyncio.wait_for(ws.recv(), WAIT)) == {
        "type": "subscribed", "channel": channel}


async def one_example(live: Live, script: list[tuple[int, str | bytes]]) -> None:
    async with (httpx.AsyncClient(base_url=live.base, timeout=30) as http,
                websockets.connect(live.ws_url) as watcher):
        await subscribed(watcher, "trades:BTC/USDT")
        hostile = [await websockets.connect(live.ws_url, max_size=None) for _ in range(3)]
        try:
            for who, frame in script:
                with contextlib.suppress(ConnectionClosed):  # closed (too big, …): see below
                    await hostile[who].send(frame)
            await trade(live, http)
            assert Decimal((await next_trade(watcher))["quantity"]) == Decimal("0.001")
            for who, ws in enumerate(hostile):
                await drain(ws)
                if ws.close_code is None:
                    await still_serves(ws)
                else:
                    closed_properly(ws, any(w == who and _size(frame) > MAX_FRAME
                                            for w, frame in script))
        finally:
            for ws in hostile:
                await ws.close()
        async with websockets.connect(live.ws_url) as fresh:
            await subscribed(fresh, "ticker:BTC/USDT")
        assert (await http.get("/health")).status_code == 200


# The scripts carry oversized frames on purpose; hypothesis (6.170.2x) warns when it
# writes such an example's repr, which this suite's ``filterwarnings = error`` would turn
# into a failure of an example that passed.
@pytest.mark.filterwarnings("ignore:Generating overly large repr")
def test_hostile_clients_never_hurt_the_server_or_the_others(live: Live,
                                                             troubles: Troubles) -> None:
    # No shrinking: an example costs about a second of real sockets, and shrinking a failure
    # could take minutes; the falsifying script is printed whole, with its blob.
    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              print_blob=True, suppress_health_check=list(HealthCheck),
              phases=[Phase.explicit, Phase.reuse, Phase.generate])
    @given(script=scripts(live))
    def check(script: list[tuple[int, str | bytes]]) -> None:
        asyncio.run(one_example(live, script))
        assert not troubles.records, troubles.report()

    check()

