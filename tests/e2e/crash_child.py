"""The process the crash test kills: an ``Exchange`` under load that logs what it acknowledged.

    python -m tests.e2e.crash_child URL ACK_LOG SEED USER_ID [USER_ID ...]

One worker coroutine per user places crossing limit orders (even users buy, odd users
sell, so no user ever crosses its own order and trades happen), some market orders,
cancels of its own open orders and deposits, each with a unique key. After the facade
returns a success (the acknowledgement), one JSON line goes to ``ACK_LOG``, flushed and
fsynced before the worker continues: whatever the log holds was acknowledged before the
kill. The child prints ``ready`` once the core is up and runs until killed (or, as a
safety net, for ``MAX_SECONDS``).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from decimal import Decimal
from typing import Any

from excentra.actors.bridge import Rejected
from excentra.engine import OrderType, Side
from excentra.exchange import Exchange

SYMBOLS = ("BTC/USDT", "ETH/USDT")
MID = Decimal("100.00")
TICK = Decimal("0.01")
LOT = Decimal("0.0001")
MAX_SECONDS = 30.0


class AckLog:
    """Append-only, fsynced JSON lines (the event loop is the only writer)."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def write(self, entry: dict[str, Any]) -> None:
        os.write(self.fd, (json.dumps(entry) + "\n").encode())
        os.fsync(self.fd)


async def worker(ex: Exchange, acks: AckLog, index: int, user: str, seed: int,
                 deadline: float) -> None:
    rng = random.Random(f"{seed}:{index}")
    side = Side.BUY if index % 2 == 0 else Side.SELL
    sign = 1 if side is Side.BUY else -1
    open_orders: list[str] = []
    n = 0
    while time.monotonic() < deadline:
        n += 1
        roll = rng.random()
        if roll < 0.05:
            key = f"dep-{index}-{n}"
            asset = rng.choice(("USDT", "BTC", "ETH"))
            amount = Decimal(rng.randint(1, 1000))
            r = await ex.deposit(user, asset, amount, idempotency_key=key)
            if not isinstance(r, Rejected):
                acks.write({"kind": "deposit", "user_id": user, "key": key, "result": r})
        elif roll < 0.30 and open_orders:
            order_id = open_orders.pop(rng.randrange(len(open_orders)))
            r = await ex.cancel_order(user, order_id)
            if not isinstance(r, Rejected):
                acks.write({"kind": "cancel", "user_id": user, "order_id": order_id,
                            "result": r})
        else:
            cid = f"c{index}-{n}"
            symbol = rng.choice(SYMBOLS)
            if roll < 0.35:  # market: buys spend a quote budget, sells a base quantity
                size: dict[str, Decimal] = (
                    {"budget": Decimal(rng.randint(1, 30))} if side is Side.BUY
                    else {"quantity": rng.randint(1, 3000) * LOT})
                r = await ex.place_order(user, symbol, side, OrderType.MARKET,
                                         client_order_id=cid, **size)
            else:  # limit around MID, a few ticks through it so that orders cross
                price = MID + sign * rng.randint(-6, 3) * TICK
                r = await ex.place_order(user, symbol, side, OrderType.LIMIT, price=price,
                                         quantity=rng.randint(1, 3000) * LOT,
                                         client_order_id=cid)
            if not isinstance(r, Rejected):
                acks.write({"kind": "order", "user_id": user, "client_order_id": cid,
                            "order_id": r["order_id"], "result": r})
                if r["status"] in ("open", "partially_filled"):
                    open_orders.append(r["order_id"])


async def main(url: str, ack_path: str, seed: int, users: list[str]) -> None:
    acks = AckLog(ack_path)
    async with Exchange(url) as ex:
        print("ready", flush=True)
        deadline = time.monotonic() + MAX_SECONDS
        await asyncio.gather(*(worker(ex, acks, i, u, seed, deadline)
                               for i, u in enumerate(users)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]))
