"""``GET /health`` (reference §1.11) and ``GET /metrics`` (Prometheus text, API.md), both
public and outside ``/api/v1``."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from excentra.actors.bridge import Rejected
from excentra.chain.watcher import ChainStatus
from excentra.db.reading import unfenced
from excentra.http.openapi import Media, operation, ref, schema
from excentra.http.render import json
from excentra.http.services import Services

log = logging.getLogger("excentra.http.health")

DB_TIMEOUT = 2.0
"""Seconds ``SELECT 1`` may take before the database counts as down: a health probe must
answer promptly even when the pool is exhausted or the server hangs."""
STATS_TIMEOUT = 1.0
"""Seconds ``/metrics`` waits for the journal's figures before reporting the last ones."""
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"

_NULLABLE_INT = {"type": ["integer", "null"]}
CHAIN_HEALTH = schema("ChainHealth", {
    "type": "object",
    "required": ["node_ok", "head", "processed", "lag", "pending_deposits",
                 "queued_withdrawals", "last_error", "seconds_since_poll"],
    "properties": {
        "node_ok": {"type": "boolean", "description": "The last poll reached the node"},
        "head": _NULLABLE_INT, "processed": _NULLABLE_INT,
        "lag": {**_NULLABLE_INT, "description": "Blocks between the head and the newest "
                                                "one scanned"},
        "pending_deposits": {"type": "integer", "minimum": 0},
        "queued_withdrawals": {"type": "integer", "minimum": 0},
        "last_error": {"type": ["string", "null"]},
        "seconds_since_poll": {"type": ["number", "null"],
                               "description": "Since the last poll that reached the node "
                                              "(null: none yet)"}}})
HEALTH = schema("HealthResponse", {
    "type": "object",
    "required": ["status", "db", "uptime_seconds", "ws_connections", "orders_processed"],
    "properties": {"status": {"type": "string", "enum": ["ok", "degraded"]},
                   "db": {"type": "boolean"},
                   "uptime_seconds": {"type": "integer", "minimum": 0},
                   "ws_connections": {"type": "integer", "minimum": 0},
                   "orders_processed": {"type": "integer", "minimum": 0},
                   "core": {"type": "object",
                            "description": "The actor core (an addition): a whole-core "
                                           "rebuild running, and pairs whose book is being "
                                           "rebuilt (those pairs answer 503 meanwhile)",
                            "required": ["recovering", "books_down"],
                            "properties": {
                                "recovering": {"type": "boolean"},
                                "books_down": {"type": "array",
                                               "items": {"type": "string"}}}},
                   "log": {"type": "object",
                           "description": "The event log and its projection (an addition): "
                                          "the last entry logged (acknowledged) and the last "
                                          "the tables show; a stalled projection (behind, "
                                          "no progress for READ_WAIT) makes the status "
                                          "degraded",
                           "required": ["logged", "projected", "lag", "lag_p99", "stalled"],
                           "properties": {
                               "logged": {"type": "integer", "minimum": 0},
                               "projected": {"type": "integer", "minimum": 0},
                               "lag": {"type": "integer", "minimum": 0},
                               "lag_p99": {"type": "integer", "minimum": 0,
                                           "description": "Over the last 10,000 projected "
                                                          "batches"},
                               "stalled": {"type": "boolean"}}},
                   "chains": {"type": "object", "additionalProperties": ref(CHAIN_HEALTH),
                              "description": "Each configured chain (absent: none). A "
                                             "node that is down delays deposits and "
                                             "withdrawals only: the status stays ok"}}})


@unfenced  # whether the database answers, not whether the projection is current
async def _database_answers(services: Services) -> bool:
    try:
        answer = await asyncio.wait_for(services.db.fetch_val("SELECT 1"), DB_TIMEOUT)
    except Exception as exc:  # any failure (driver, pool, timeout) means "down", never a 500
        log.warning("health check: database unreachable", extra={"error": repr(exc)})
        return False
    return bool(answer == 1)


@operation("health", "system", "Liveness and database reachability",
           responses={200: HEALTH, 503: HEALTH})
async def health(request: Request) -> Response:
    services: Services = request.state.services
    db_ok = await _database_answers(services)
    counters = services.counters
    core = services.exchange.core_status()
    # Serving: the database answers and the core is not being rebuilt as a whole (one
    # pair's book being rebuilt degrades that pair only: the node still serves).
    serving = db_ok and not core["recovering"]
    exchange = services.exchange
    log_state = exchange.watermarks.report()
    # A stalled projection: commands are still acknowledged (the log has them), but reads
    # of the tables that must show them wait and then answer 503.
    status = ("ok" if serving and not core["books_down"] and not log_state["stalled"]
              else "degraded")
    body: dict[str, Any] = {"status": status, "db": db_ok,
                            "uptime_seconds": counters.uptime_seconds,
                            "ws_connections": counters.ws_connections,
                            "orders_processed": counters.orders_processed, "core": core,
                            "log": {k: log_state[k] for k in (
                                "logged", "projected", "lag", "lag_p99", "stalled")}}
    if exchange.chains:
        now = time.time()
        body["chains"] = {name: chain_health(exchange.chain_status.get(name)
                                             or ChainStatus(name), now)
                          for name in sorted(exchange.chains)}
    return json(body, 200 if serving else 503)


def chain_health(s: ChainStatus, now: float) -> dict[str, Any]:
    """A chain watcher's last report as ``/health`` shows it (no report yet: the node
    counts as not reached)."""
    lag = None if s.head is None or s.processed is None else max(0, s.head - s.processed)
    since = None if s.last_poll is None else round(max(0.0, now - s.last_poll), 3)
    return {"node_ok": s.node_ok, "head": s.head, "processed": s.processed, "lag": lag,
            "pending_deposits": s.pending_deposits,
            "queued_withdrawals": s.queued_withdrawals, "last_error": s.last_error,
            "seconds_since_poll": since}


async def _record_journal_batch(services: Services) -> None:
    """Refresh the journal's mean batch for the gauge (the collector cannot await)."""
    try:
        stats = await asyncio.wait_for(services.exchange.journal_stats(), STATS_TIMEOUT)
    except TimeoutError:
        return
    if not isinstance(stats, Rejected):
        services.journal_mean_batch = stats.mean_batch


@operation("metrics", "system", "Prometheus metrics (text exposition format 0.0.4)",
           responses={200: Media(PROMETHEUS_TEXT, {"type": "string"})})
async def metrics(request: Request) -> Response:
    services: Services = request.state.services
    await _record_journal_batch(services)
    return Response(services.metrics.render(), media_type=PROMETHEUS_TEXT)


routes = [
    Route("/health", health, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
