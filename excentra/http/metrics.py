"""Prometheus metrics: every metric name in this one module, one registry per app (so
several apps in one process, as in tests, do not collide)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from excentra.chain.watcher import ChainStatus

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
        pending, limit, shed = now.get("pending", (0, 0, 0))
        yield GaugeMetricFamily("excentra_commands_pending",
                                "Commands waiting for the core's answer", value=pending)
        yield GaugeMetricFamily("excentra_commands_pending_limit",
                                "Waiting commands beyond which new ones get 503 at once "
                                "(MAX_PENDING_COMMANDS)", value=limit)
        yield CounterMetricFamily("excentra_commands_shed",
                                  "Commands answered 503 at once because the core had "
                                  "MAX_PENDING_COMMANDS waiting", value=shed)
        yield from _log(now.get("log", {}))
        yield from _chains(now.get("chains", {}))


def _log(r: Mapping[str, Any]) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
    """The event log and its projection (``actors.watermarks.Watermarks.report``)."""
    yield GaugeMetricFamily("excentra_log_seq", "The last sequence number in the event "
                            "log (acknowledged commands)", value=r.get("logged", 0))
    yield GaugeMetricFamily("excentra_projection_seq", "The last event-log entry the "
                            "tables show", value=r.get("projected", 0))
    yield GaugeMetricFamily("excentra_projection_lag", "Event-log entries not yet in the "
                            "tables (log seq − projected seq)", value=r.get("lag", 0))
    yield GaugeMetricFamily("excentra_projection_lag_p99", "p99 of the projection lag "
                            "(entries) over the last 10,000 projected batches",
                            value=r.get("lag_p99", 0))
    yield CounterMetricFamily("excentra_read_waits", "Reads that waited for the "
                              "projection to show the reader's last write",
                              value=r.get("read_waits", 0))
    yield GaugeMetricFamily("excentra_read_wait_p99_seconds", "p99 of those waits over "
                            "the last 10,000", value=r.get("read_wait_p99_ms", 0) / 1000)
    yield CounterMetricFamily("excentra_read_wait_timeouts", "Reads answered 503 because "
                              "the projection stayed behind (READ_WAIT)",
                              value=r.get("read_timeouts", 0))


def _chains(statuses: Mapping[str, ChainStatus]
            ) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
    """Each chain watcher's last report (``ChainStatus``), labelled by chain. A chain with
    no report yet, or whose node was never reached, has no head or lag sample."""
    def gauge(name: str, doc: str) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, doc, labels=["chain"])

    def counter(name: str, doc: str) -> CounterMetricFamily:
        return CounterMetricFamily(name, doc, labels=["chain"])

    up = gauge("excentra_chain_node_up", "1 if the last poll reached the chain's node")
    head = gauge("excentra_chain_head", "The chain's newest block, as last seen")
    lag = gauge("excentra_chain_lag_blocks", "Blocks between the head and the newest scanned")
    pending = gauge("excentra_chain_pending_deposits",
                    "Deposits seen, waiting for their confirmations")
    errors = counter("excentra_chain_node_errors", "Polls that failed to reach the node")
    credited = counter("excentra_chain_deposits_credited", "Chain deposits credited")
    reorgs = counter("excentra_chain_reorgs", "Chain reorganisations noticed")
    for name, s in sorted(statuses.items()):
        up.add_metric([name], 1 if s.node_ok else 0)
        if s.head is not None:
            head.add_metric([name], s.head)
            if s.processed is not None:
                lag.add_metric([name], max(0, s.head - s.processed))
        pending.add_metric([name], s.pending_deposits)
        errors.add_metric([name], s.node_errors)
        credited.add_metric([name], s.credited)
        reorgs.add_metric([name], s.reorgs)
    yield from (up, head, lag, pending, errors, credited, reorgs)


class Metrics:
    def __init__(self, live: Callable[[], dict[str, Any]]) -> None:
        self.registry = CollectorRegistry()
        self.orders = Counter("excentra_orders", "Order placements by outcome",
                              ["outcome"], registry=self.registry)
        self.trades = Counter("excentra_trades", "Trades executed by orders placed through "
                              "the API since start", registry=self.registry)
        self.requests = Counter("excentra_http_requests", "HTTP requests by route and status",
                                ["route", "status"], registry=self.registry)
        self.latency = Histogram("excentra_http_request_seconds", "HTTP request latency",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.registry.register(_Live(live))

    def render(self) -> bytes:
        return generate_latest(self.registry)
