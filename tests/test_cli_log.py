"""``excentra log status|truncate`` on both databases: the log's head, the projection's
watermark, and truncation that deletes only what the tables show and never moves the
numbering back."""

from __future__ import annotations

import asyncio

import pytest

from excentra import cli
from excentra.db import Database
from excentra.engine import Side
from excentra.exchange import Exchange
from tests.actors.helpers import answered, funded_user, limit, ok


async def run(capsys: pytest.CaptureFixture[str], url: str, *argv: str) -> str:
    # the command runs its own event loop: give it a thread
    await asyncio.to_thread(cli.main, ["log", *argv, "--database-url", url])
    return capsys.readouterr().out.strip()


@pytest.mark.asyncio
async def test_status_and_truncate(database_url: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    async with Exchange(database_url) as ex:
        user = await funded_user(ex, USDT="1000")
        for i in range(4):
            ok(await answered(limit(ex, user, Side.BUY, str(100 + i), "0.01")))
        head = ex.watermarks.logged
    assert head >= 5

    assert await run(capsys, database_url, "status") == (
        f"log head {head}, projected {head} (lag 0), {head} entries kept")
    assert await run(capsys, database_url, "truncate", "--keep", "2") == (
        f"deleted {head - 2} entries; log head {head}, projected {head} (lag 0), "
        "2 entries kept")
    assert await run(capsys, database_url, "truncate") == (
        f"deleted 2 entries; log head {head}, projected {head} (lag 0), 0 entries kept")

    # the numbering goes on after a truncated log, and the history is in the tables
    async with Exchange(database_url) as ex:
        assert ex.watermarks.logged == head
        ok(await answered(limit(ex, user, Side.BUY, "99", "0.01")))
        assert ex.watermarks.logged == head + 1
        orders = int(await ex.db.fetch_val("SELECT COUNT(*) FROM orders WHERE user_id = :u",
                                           {"u": user}))
        assert orders == 5
    async with Database(database_url) as db:
        assert int(await db.fetch_val("SELECT MIN(seq) FROM event_log")) == head + 1


def test_keep_must_not_be_negative(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["log", "truncate", "--keep", "-1"])
    assert exit_info.value.code == 2
    assert "--keep must be 0 or more" in capsys.readouterr().err
