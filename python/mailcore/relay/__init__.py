"""The relay: a durable queue that delivers onward over SMTP.

See :mod:`mailcore.relay.queue` (durability), :mod:`~mailcore.relay.schedule`
(retries), :mod:`~mailcore.relay.policy` (who may relay, open-relay tricks),
:mod:`~mailcore.relay.routing` (local / routes / smarthost / MX),
:mod:`~mailcore.relay.worker` (delivery) and :mod:`~mailcore.relay.dsn` (bounces).
"""
