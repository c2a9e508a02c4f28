"""Prometheus metrics: every metric name in this one module, one registry per app (so
several apps in one process, as in tests, do not collide)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class _Live(Collector):
    """Gauges read at scrape time: WS connections, actor mailboxes, journal batches."""

    def __init__(self, read: Callable[[], dict[str, Any]]) -> None:
        self.read = read

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        now = self.read()
        yield GaugeMetricFamily("excentra_ws_connections", "Open WebSocket connections",
                                value=now.get("ws_connections", 0))
        mailbox = GaugeMetricFamily("excentra_actor_mailbox_depth",
                                    "Messages waiting in each actor's inbox",
                                    labels=["actor"])
        for actor, depth in sorted(now.get("mailboxes", {}).items()):
            mailbox.add_metric([actor], depth)
        yield mailbox
        yield CounterMetricFamily("excentra_ws_messages_delivered",
                                  "WebSocket messages queued to subscribers",
                                  value=now.get("ws_delivered", 0))
        yield CounterMetricFamily("excentra_ws_slow_clients_closed",
                                  "WebSocket clients closed (1008) for not keeping up",
                                  value=now.get("ws_dropped", 0))
        yield GaugeMetricFamily("excentra_journal_mean_batch",
                                "Mean commands per journal commit since start",
                                value=now.get("journal_mean_batch", 0.0))
        recoveries = CounterMetricFamily("excentra_actor_recoveries",
                                         "Rebuilds after an actor died, by scope (a pair's "
                                         "book alone, or the whole core)", labels=["scope"])
        for scope, value in sorted(now.get("recoveries", {}).items()):
            recoveries.add_metric([scope], value)
        yield recoveries
        yield GaugeMetricFamily("excentra_uptime_seconds", "Seconds since the server started",
                                value=now.get("uptime_seconds", 0))


class Metrics:
    def __init__(self, live: Callable[[], dict[str, Any]]) -> None:
        self.registry = CollectorRegistry()
        self.orders = Counter("excentra_orders", "Order placements by outcome",
                              ["outcome"], registry=self.registry)
        self.trades = Counter("excentra_trades", "Trades executed", registry=self.registry)
        self.requests = Counter("excentra_http_requests", "HTTP requests by route and status",
                                ["route", "status"], registry=self.registry)
        self.latency = Histogram("excentra_http_request_seconds", "HTTP request latency",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.registry.register(_Live(live))

    def render(self) -> bytes:
        return generate_latest(self.registry)
