"""The relay: a durable queue that delivers onward over SMTP.

See :mod:`mailcore.relay.queue` (durability), :mod:`~mailcore.relay.schedule`
(retries), :mod:`~mailcore.relay.policy` (who may relay, open-relay tricks),
:mod:`~mailcore.relay.routing` (local / routes / smarthost / MX),
:mod:`~mailcore.relay.worker` (delivery), :mod:`~mailcore.relay.dsn` (bounces)
and :mod:`~mailcore.relay.service` (:class:`Relay`, :func:`serve_relay`).

The service classes are imported lazily so that ``mailcore.config`` (which
reads :mod:`mailcore.relay.settings`) stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mailcore.relay.service import Relay, RelayHandler, serve_relay

__all__ = ["Relay", "RelayHandler", "serve_relay"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from mailcore.relay import service

        return getattr(service, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
