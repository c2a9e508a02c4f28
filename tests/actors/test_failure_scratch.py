from __future__ import annotations

import asyncio
import time

import pytest

from excentra.actors.book import InjectFault
from excentra.engine import Side
from excentra.exchange import Exchange
from tests.actors.helpers import BTC_USDT, ETH_USDT, answered, funded_user, limit

pytestmark = pytest.mark.asyncio


async def test_probe(exchange: Exchange) -> None:
    ex = exchange
    sv = ex.supervisor
    user = await funded_user(ex, USDT="100000000")
    tasks = [asyncio.create_task(limit(ex, user, Side.BUY, "100", "0.01", ETH_USDT))
             for _ in range(3000)]
    while len(ex.outstanding) < 3000:
        await asyncio.sleep(0)
    print("inbox", ex.mailbox_depths())
    sv.actors.ledger.tell(object())
    sv.actors.books[BTC_USDT].tell(InjectFault())
    t0 = time.monotonic()
    while sv.recoveries == 0:
        await asyncio.sleep(0.01)
        assert time.monotonic() - t0 < 120
    print("recovered after", time.monotonic() - t0, "book_recoveries", sv.book_recoveries)
    outs = await answered(asyncio.gather(*tasks), 60)
    print({repr(o)[:40] for o in outs if not isinstance(o, dict)}, sum(isinstance(o, dict) for o in outs))
