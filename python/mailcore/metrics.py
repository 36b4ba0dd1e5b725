"""Prometheus metrics for ``mailcore serve`` (prometheus_client, the reference library).

Every metric lives in the :class:`Metrics` object's own registry (not the
process-wide default), so two servers in one process, or a test suite, never
collide. :meth:`Metrics.serve_http` exposes the text format on an HTTP
listener in a thread, as ``prometheus_client`` does it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import start_http_server

from mailcore.smtp.local import MessageRecord

__all__ = ["Metrics"]

# Delivery latency from MAIL to the 250 (fsync included): sub-millisecond to minutes.
_CHILDREN_MAX = 1024
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0)


class Metrics:
    """Counters, gauges and histograms of one server."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.connections = Counter(
            "mailcore_connections", "Connections accepted", ["protocol"], registry=r
        )
        self.sessions = Gauge("mailcore_sessions", "Open sessions", ["protocol"], registry=r)
        self.accepted = Counter(
            "mailcore_messages_accepted", "Messages answered 250", ["protocol"], registry=r
        )
        self.refused = Counter(
            "mailcore_messages_refused",
            "Recipients or messages refused",
            ["protocol", "reason"],
            registry=r,
        )
        self.delivered = Counter(
            "mailcore_messages_delivered",
            "Messages stored in local mailboxes or queued for relay",
            ["result"],
            registry=r,
        )
        self.auth_failures = Counter(
            "mailcore_auth_failures", "Failed logins", ["protocol"], registry=r
        )
        self.queue_size = Gauge(
            "mailcore_queue_size", "Messages waiting in the relay queue", registry=r
        )
        self.latency = Histogram(
            "mailcore_delivery_seconds",
            "Time from MAIL FROM to the final reply",
            ["protocol"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self._http: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        # labels() validates and locks on every call; a message costs five of
        # them, so the children are kept here (a bounded set: protocols,
        # results and reply codes).
        self._children: dict[tuple[object, ...], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = metric.labels(*labels)
            if len(self._children) < _CHILDREN_MAX:
                self._children[key] = child
        return child

    def session_event(self, protocol: str, event: str, peer: str, **fields: object) -> None:
        """Count connections, open sessions, refusals and failed logins."""
        child = self._child
        if event == "connect":
            child(self.connections, protocol).inc()
            child(self.sessions, protocol).inc()
        elif event == "disconnect":
            child(self.sessions, protocol).dec()
        elif event == "reject":
            child(self.refused, protocol, str(fields.get("reply", "refused"))).inc()
        elif event == "auth-failed":
            child(self.auth_failures, protocol).inc()

    def message(self, record: MessageRecord) -> None:
        """Count the message and time it."""
        child = self._child
        if record.result == "failed":
            child(self.refused, record.protocol, record.reply).inc()
        else:
            child(self.accepted, record.protocol).inc()
            for part in record.result.split("+"):
                child(self.delivered, part).inc()
        child(self.latency, record.protocol).observe(record.seconds)

    def track_queue(self, size: Callable[[], float]) -> None:
        """Read the queue size from ``size()`` at every scrape."""
        self.queue_size.set_function(size)

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
