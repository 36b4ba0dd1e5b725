"""Prometheus metrics for ``mailcore serve`` (prometheus_client, the reference library).

Every metric lives in the :class:`Metrics` object's own registry (not the
process-wide default), so two servers in one process, or a test suite, never
collide. :meth:`Metrics.serve_http` exposes the text format on an HTTP
listener in a thread, as ``prometheus_client`` does it.

Counting is plain dictionary arithmetic on the event loop (every session and
message passes here; prometheus_client's own metric objects take a lock and
several calls per update); the registry's collector turns the numbers into
metric families when a scrape asks. Only the event loop's thread updates
them, and a scrape reads a copy.
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import start_http_server
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from mailcore.smtp.local import MessageRecord

__all__ = ["Metrics"]

# Delivery latency from MAIL to the 250 (fsync included): sub-millisecond to minutes.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0)

_BOUNDS = [*map(floatToGoString, _LATENCY_BUCKETS), "+Inf"]


class Metrics:
    """Counters, gauges and histograms of one server."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._connections: Counter[str] = Counter()
        self._sessions: Counter[str] = Counter()
        self._accepted: Counter[str] = Counter()
        self._refused: Counter[tuple[str, str]] = Counter()
        self._delivered: Counter[str] = Counter()
        self._auth_failures: Counter[str] = Counter()
        # Per protocol: a count per bucket (the last one is +Inf), then the sum.
        self._latency: dict[str, list[float]] = {}
        self._queue_size: Callable[[], float] | None = None
        self.registry.register(_Families(self))
        self._http: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def session_event(self, protocol: str, event: str, peer: str, **fields: object) -> None:
        """Count connections, open sessions, refusals and failed logins."""
        if event == "connect":
            self._connections[protocol] += 1
            self._sessions[protocol] += 1
        elif event == "disconnect":
            self._sessions[protocol] -= 1
        elif event == "reject":
            self._refused[protocol, str(fields.get("reply", "refused"))] += 1
        elif event == "auth-failed":
            self._auth_failures[protocol] += 1

    def message(self, record: MessageRecord) -> None:
        """Count the message and time it."""
        protocol = record.protocol
        if record.result == "failed":
            self._refused[protocol, record.reply] += 1
        else:
            self._accepted[protocol] += 1
            for part in record.result.split("+"):
                self._delivered[part] += 1
        latency = self._latency.get(protocol)
        if latency is None:
            latency = self._latency[protocol] = [0.0] * (len(_LATENCY_BUCKETS) + 2)
        # Prometheus buckets are "less than or equal": bisect_left finds the first bound >= it.
        latency[bisect.bisect_left(_LATENCY_BUCKETS, record.seconds)] += 1
        latency[-1] += record.seconds

    def families(self) -> list[Metric]:
        """The current values as Prometheus metric families."""

        def counter(name: str, doc: str, labels: list[str], values: Counter[object]) -> Metric:
            family = CounterMetricFamily(name, doc, labels=labels)
            for key, value in sorted(values.items(), key=lambda kv: str(kv[0])):
                family.add_metric(list(key) if isinstance(key, tuple) else [str(key)], value)
            return family

        connections = counter(
            "mailcore_connections", "Connections accepted", ["protocol"], Counter(self._connections)
        )
        sessions = GaugeMetricFamily("mailcore_sessions", "Open sessions", labels=["protocol"])
        for protocol, open_now in sorted(dict(self._sessions).items()):
            sessions.add_metric([protocol], open_now)
        latency = HistogramMetricFamily(
            "mailcore_delivery_seconds",
            "Time from MAIL FROM to the final reply",
            labels=["protocol"],
        )
        for protocol, live in sorted(dict(self._latency).items()):
            counts = list(live)
            cumulative, buckets = 0.0, []
            for bound, n in zip(_BOUNDS, counts[:-1], strict=True):
                cumulative += n
                buckets.append((bound, cumulative))
            latency.add_metric([protocol], buckets, counts[-1])
        queue = GaugeMetricFamily(
            "mailcore_queue_size",
            "Messages waiting in the relay queue",
            value=self._queue_size() if self._queue_size is not None else 0.0,
        )
        return [
            connections,
            sessions,
            counter(
                "mailcore_messages_accepted",
                "Messages answered 250",
                ["protocol"],
                Counter(self._accepted),
            ),
            counter(
                "mailcore_messages_refused",
                "Recipients or messages refused",
                ["protocol", "reason"],
                Counter(self._refused),
            ),
            counter(
                "mailcore_messages_delivered",
                "Messages stored in local mailboxes or queued for relay",
                ["result"],
                Counter(self._delivered),
            ),
            counter(
                "mailcore_auth_failures",
                "Failed logins",
                ["protocol"],
                Counter(self._auth_failures),
            ),
            queue,
            latency,
        ]

    def track_queue(self, size: Callable[[], float]) -> None:
        """Read the queue size from ``size()`` at every scrape."""
        self._queue_size = size

    def text(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)

    def serve_http(self, host: str, port: int) -> int:
        """Expose the metrics over HTTP on ``host``:``port``; return the bound port."""
        self._http, self._thread = start_http_server(port, host, self.registry)
        bound: int = self._http.server_address[1]
        return bound

    def close(self) -> None:
        """Stop the HTTP listener."""
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None


class _Families(Collector):
    """The registry's view of a :class:`Metrics`: built at each scrape."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield from self._metrics.families()
