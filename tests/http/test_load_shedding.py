"""Load shedding (issue 15, item 6): with ``max_pending_commands`` commands waiting for the
core, a new command is answered 503 + ``Retry-After`` at once — it was never sent, so it did
not and will not happen — while reads keep flowing and the waiting commands complete; the
limit and the count are in ``/metrics``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from excentra.actors.journal import Pause, Resume
from excentra.http.app import create_app
from tests.http.conftest import FAST_PASSWORDS, Api, running_api, settings_for

pytestmark = pytest.mark.asyncio
LIMIT = 4


@pytest_asyncio.fixture
async def api(database_url: str) -> AsyncIterator[Api]:
    app = create_app(settings_for(database_url, max_pending_commands=LIMIT),
                     passwords=FAST_PASSWORDS)
    async for running in running_api(app):
        yield running


def journal(api: Api) -> object:
    supervisor = api.services.exchange.supervisor
    assert supervisor is not None
    assert supervisor.actors is not None
    return supervisor.actors.journal


async def test_commands_beyond_the_limit_are_shed_at_once_and_reads_flow(api: Api) -> None:
    _, headers = await api.funded(USDT="1000")
    journal(api).tell(Pause())  # type: ignore[attr-defined]  # commands wait, uncommitted

    async def order(i: int) -> object:
        return await api.client.post("/api/v1/orders", headers=headers, json={
            "symbol": "BTC/USDT", "side": "buy", "order_type": "limit", "price": "100",
            "quantity": "0.001", "client_order_id": f"shed-{i}"})

    waiting = [asyncio.create_task(order(i)) for i in range(LIMIT)]
    for _ in range(200):
        if api.services.exchange.pending_commands() == LIMIT:
            break
        await asyncio.sleep(0.01)
    assert api.services.exchange.pending_commands() == LIMIT
    shed = await asyncio.wait_for(order(99), 2)  # at once, not after a timeout
    assert shed.status_code == 503, shed.text  # type: ignore[attr-defined]
    assert shed.headers["retry-after"] == "1"  # type: ignore[attr-defined]
    again = asyncio.create_task(order(0))  # a repeat of a waiting one joins it (no shed)
    r = await api.client.get("/api/v1/orderbook/BTC-USDT")  # reads keep flowing
    assert r.status_code == 200
    metrics = (await api.client.get("/metrics")).text
    assert f"excentra_commands_pending {LIMIT}.0" in metrics
    assert f"excentra_commands_pending_limit {LIMIT}.0" in metrics
    assert "excentra_commands_shed_total 1.0" in metrics
    journal(api).tell(Resume())  # type: ignore[attr-defined]
    done = await asyncio.gather(*waiting)
    assert [d.status_code for d in done] == [200] * LIMIT  # type: ignore[attr-defined]
    repeat = await again
    assert repeat.status_code == 200  # type: ignore[attr-defined]
    assert repeat.json() == done[0].json()  # type: ignore[attr-defined]
    r = await api.client.get("/api/v1/orders", headers=headers)
    assert r.json()["total"] == LIMIT  # the shed one never happened
    assert (await order(100)).status_code == 200  # type: ignore[attr-defined]  # room again
