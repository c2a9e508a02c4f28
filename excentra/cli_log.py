"""``excentra log``: the event log's state, and truncating it behind the projection.

The event log (``excentra.db.eventlog``) holds one entry per command; the tables are its
projection and keep the history. Entries the projection has applied are needed only by a
replica reading the log (none yet) or to replay history into new projections, so an
operator may delete them: ``excentra log truncate`` deletes every entry up to the
projection's watermark, or up to ``--keep`` entries behind it.
"""

from __future__ import annotations

import argparse
import asyncio
import os

from excentra.db import Database, migrate
from excentra.db.eventlog import EventLog

EXAMPLES = """examples:
  excentra log status                       # log head, projection watermark, entries kept
  excentra log truncate                     # delete every entry the projection has applied
  excentra log truncate --keep 1000000      # ... but keep the last million of them

Safe while the server runs: only entries the tables already show are deleted.
"""


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="excentra log", description=__doc__,
                                     epilog=EXAMPLES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("status", "truncate"))
    parser.add_argument("--keep", type=int, default=0,
                        help="applied entries to keep behind the watermark (default 0)")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""),
                        help="default: $DATABASE_URL, else the embedded SQLite file")
    args = parser.parse_args(argv)
    if args.keep < 0:
        parser.error("--keep must be 0 or more")
    print(asyncio.run(_run(args.action, args.keep, args.database_url or None)))


async def _run(action: str, keep: int, url: str | None) -> str:
    db = Database(url)
    await db.connect()
    try:
        await migrate(db)
        log = EventLog(db)
        if action == "truncate":
            deleted = await log.truncate(await log.projected() - keep)
            return f"deleted {deleted} entries; {await _status(db, log)}"
        return await _status(db, log)
    finally:
        await db.disconnect()


async def _status(db: Database, log: EventLog) -> str:
    kept = int(await db.fetch_val("SELECT COUNT(*) FROM event_log") or 0)
    head, projected = await log.head(), await log.projected()
    return f"log head {head}, projected {projected} (lag {head - projected}), {kept} entries kept"
