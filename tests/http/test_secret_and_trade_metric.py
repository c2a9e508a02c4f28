"""The generated JWT secret's file, and the trades counter of ``/metrics``."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest

from excentra.http.config import Settings, resolve_secret
from tests.http.conftest import Api
from tests.http.test_health_metrics import scrape


def test_a_generated_jwt_secret_is_owner_only_kept_and_shared(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", jwt_secret="")
    secrets: list[str] = []
    starts = [threading.Thread(target=lambda: secrets.append(resolve_secret(settings)))
              for _ in range(8)]  # servers starting at once agree on one secret
    for t in starts:
        t.start()
    for t in starts:
        t.join()
    path = tmp_path / "x.db.jwt-secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(set(secrets)) == 1
    assert secrets[0] == path.read_text().strip() == resolve_secret(settings)
    assert len(secrets[0]) == 64


def test_a_configured_jwt_secret_writes_no_file(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", jwt_secret="s" * 40)
    assert resolve_secret(settings) == "s" * 40
    assert not list(tmp_path.iterdir())


@pytest.mark.asyncio
async def test_trades_are_counted(api: Api) -> None:
    before = (await scrape(api)).get(("excentra_trades_total", ()), 0)
    _, seller = await api.funded(BTC="0.05")
    _, buyer = await api.funded(USDT="1000")
    await api.limit(seller, "sell", "100", "0.01")
    await api.limit(seller, "sell", "101", "0.01")
    await api.limit(buyer, "buy", "101", "0.02")
    assert (await scrape(api))[("excentra_trades_total", ())] == before + 2
