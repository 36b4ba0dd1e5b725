"""The :class:`Relay` service and a standalone relaying SMTP server.

:class:`Relay` is what ``mailcore serve`` plugs into its SMTP handler:
``may_relay(session)`` for the RCPT decision and ``await enqueue(envelope,
data)`` before answering 250; ``start()``/``stop()`` run the delivery
workers. :func:`serve_relay` starts an SMTP server whose handler
(:class:`RelayHandler`) accepts what the relay policy allows and queues it,
for tests, benchmarks and a relay-only deployment.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mailcore.delivery import LocalDelivery
from mailcore.limits import SMTPClientLimits
from mailcore.relay.policy import RelayPolicy, Verdict
from mailcore.relay.queue import (
    NewMessage,
    NewRecipient,
    Queue,
    QueuedMessage,
    QueuedRecipient,
    State,
)
from mailcore.relay.routing import Route, Router
from mailcore.relay.schedule import RetrySchedule
from mailcore.relay.worker import DeliveryWorkers, WorkerLimits
from mailcore.smtp import replies as R
from mailcore.smtp.handlers import Envelope, Handler, Session
from mailcore.smtp.replies import Reply
from mailcore.smtp.server import SMTPServer

__all__ = ["Relay", "RelayHandler", "serve_relay"]


class Relay:
    """A durable queue with delivery workers.

    Args:
        queue_dir: where the spool and the queue database live.
        hostname: our name (EHLO to next hops, DSNs).
        policy: who may relay and which domains are local.
        router: where each domain's mail goes (default: MX lookups, with
            the policy's local domains delivered locally).
        local: local delivery for local domains and bounces to local senders.
        schedule: retry schedule.
        limits: worker concurrency.
        client_limits: SMTP client timeouts.
        ssl_context: verifying TLS context for routes that require TLS.
        clock: the time; tests pass a fake one and call :meth:`run_once`.
        fsync: durable writes (only logic-only tests turn this off).
    """

    def __init__(
        self,
        queue_dir: str | Path,
        *,
        hostname: str,
        policy: RelayPolicy,
        router: Router | None = None,
        local: LocalDelivery | None = None,
        schedule: RetrySchedule | None = None,
        limits: WorkerLimits | None = None,
        client_limits: SMTPClientLimits | None = None,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.time,
        fsync: bool = True,
    ) -> None:
        self.hostname = hostname
        self.policy = policy
        self.local = local
        self.clock = clock
        self.queue = Queue(queue_dir, schedule, fsync=fsync)
        self.router = router or Router(policy.is_local_domain)
        self.workers = DeliveryWorkers(
            self.queue,
            self.router,
            hostname=hostname,
            local=local,
            limits=limits,
            client_limits=client_limits,
            ssl_context=ssl_context,
            clock=clock,
        )
        self._opened = False

    @classmethod
    def from_config(cls, config: Any, *, local: LocalDelivery | None = None) -> Relay:
        """Build from a :class:`mailcore.config.Config` (queue in ``data_dir/queue``)."""
        settings = config.relay
        smarthost = None
        if config.smarthost:
            host, _, port = config.smarthost.rpartition(":")
            smarthost = Route(
                host.strip("[]"),
                int(port),
                settings.smarthost_tls,
                settings.smarthost_user,
                settings.smarthost_password,
            )
        policy = RelayPolicy(config.domains, config.relay_networks)
        router = Router(
            policy.is_local_domain,
            routes=settings.routes,
            smarthost=smarthost,
            resolver=settings.resolver,
            mx_port=settings.mx_port,
        )
        return cls(
            Path(config.data_dir) / "queue",
            hostname=config.hostname,
            policy=policy,
            router=router,
            local=local,
            schedule=settings.schedule,
            limits=WorkerLimits(
                connections=settings.connections, per_destination=settings.per_destination
            ),
        )

    async def open(self) -> None:
        """Open the queue (done by :meth:`start`; tests that drive passes call this)."""
        if not self._opened:
            await self.workers.call(self.queue.open)
            self._opened = True

    async def start(self) -> None:
        """Open the queue and start delivering."""
        await self.open()
        await self.workers.start()

    async def stop(self) -> None:
        """Stop delivering and close the queue (queued mail stays queued)."""
        await self.workers.stop()
        self.queue.close()
        self._opened = False

    async def run_once(self) -> int:
        """Deliver what is due at ``clock()`` and wait for the outcomes."""
        await self.open()
        return await self.workers.run_once()

    def may_relay(self, session: Session) -> bool:
        """Whether this client may send to non-local domains."""
        return self.policy.may_relay(session)

    def refuse(self, address: str) -> Reply | None:
        """Why ``address`` is not queued for a client allowed to relay, or None.

        The handler of ``mailcore serve`` has already taken the local domains;
        what the policy still calls local is an address literal of this
        server, which is not relayed (it would come back here): 550 5.1.1.
        """
        decision = self.policy.classify(address, relay_allowed=True)
        if decision.verdict is Verdict.REFUSE:
            return decision.reply
        if decision.verdict is Verdict.LOCAL:
            return R.NO_SUCH_USER
        return None

    async def enqueue(self, envelope: Envelope, data: bytes) -> str:
        """Queue ``data`` for ``envelope``'s recipients; return the queue id.

        Returns only when the message file and its recipient rows are
        fsynced and committed: the caller may answer 250 then.
        """
        if not envelope.recipients:
            raise ValueError("no recipients")
        message = NewMessage(
            sender=envelope.mail_from or "",
            recipients=[
                NewRecipient(r.address, dict(r.params), r.notify, r.orcpt)
                for r in envelope.recipients
            ],
            data=data,
            params={k: v for k, v in envelope.mail_params.items() if k in ("RET", "ENVID")},
            envid=envelope.envid,
            ret=envelope.ret,
        )
        await self.open()
        now = self.clock()
        msg_id = await self.workers.committer.submit(message)
        assert isinstance(msg_id, str)
        # Straight to the workers: no queue scan for mail that just arrived.
        self.workers.submit(
            QueuedMessage(
                msg_id,
                message.sender,
                message.params,
                now,
                len(data),
                message.envid,
                message.ret,
                tuple(
                    QueuedRecipient(
                        msg_id,
                        idx,
                        r.address,
                        r.params,
                        r.notify,
                        r.orcpt,
                        State.QUEUED,
                        0,
                        now,
                        None,
                        None,
                        False,
                    )
                    for idx, r in enumerate(message.recipients)
                ),
            )
        )
        return msg_id

    async def enqueue_raw(
        self, data: bytes, sender: str, recipients: list[str], **params: str
    ) -> str:
        """Queue ``data`` from ``sender`` to ``recipients`` (no SMTP session needed).

        ``params`` are MAIL parameters (RET, ENVID). Durable on return, like
        :meth:`enqueue`.
        """
        envelope = Envelope()
        envelope.set_mail(sender, params)
        for rcpt in recipients:
            envelope.add_recipient(rcpt, {})
        return await self.enqueue(envelope, data)


class RelayHandler(Handler):
    """Accept what the relay policy allows; queue every message before the 250."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay

    async def handle_RCPT(
        self, session: Session, envelope: Envelope, address: str, params: Mapping[str, str | None]
    ) -> Reply:
        """Local, relayed, or refused (554 5.7.1 Relay access denied)."""
        relay = self.relay
        decision = relay.policy.classify(address, relay_allowed=relay.may_relay(session))
        if decision.verdict is Verdict.REFUSE:
            assert decision.reply is not None
            return decision.reply
        local = relay.local
        if (
            decision.verdict is Verdict.LOCAL
            and local is not None
            and await local.resolve(address) is None
        ):
            return R.NO_SUCH_USER
        return R.RECIPIENT_OK

    async def handle_DATA(self, session: Session, envelope: Envelope) -> Reply:
        """Queue durably, then 250 with the queue id."""
        try:
            msg_id = await self.relay.enqueue(envelope, envelope.content)
        except (OSError, ValueError, RuntimeError):
            return R.LOCAL_ERROR
        return Reply(250, "2.0.0", f"Ok: queued as {msg_id}")


async def serve_relay(
    relay: Relay, host: str = "127.0.0.1", port: int = 0, **server_options: Any
) -> SMTPServer:
    """Start ``relay`` and an SMTP server on ``host``:``port`` feeding it; return the server."""
    await relay.start()
    server = SMTPServer(RelayHandler(relay), hostname=relay.hostname, **server_options)
    await server.start(host, port)
    return server


async def _stop_all(server: SMTPServer, relay: Relay) -> None:
    await server.stop()
    await relay.stop()


def run_forever(relay: Relay, host: str, port: int, ready: Callable[[int], None]) -> None:
    """Serve until killed (used by the crash tests and the benchmark's relay process)."""

    async def main() -> None:
        server = await serve_relay(relay, host, port)
        ready(server.port)
        try:
            await asyncio.Event().wait()
        finally:
            await _stop_all(server, relay)

    asyncio.run(main())


def main(argv: list[str] | None = None) -> None:
    """``python -m mailcore.relay.service``: a relay to one smarthost, for tests and benches.

    Prints the listening port on stdout once it accepts connections.
    """
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m mailcore.relay.service")
    parser.add_argument("--queue", required=True, help="queue directory")
    parser.add_argument("--smarthost", required=True, help="ADDR:PORT of the next hop")
    parser.add_argument("--listen", default="127.0.0.1:0", help="ADDR:PORT to accept on")
    parser.add_argument("--per-destination", type=int, default=20)
    parser.add_argument("--network", action="append", default=["127.0.0.0/8"])
    args = parser.parse_args(argv)
    host, _, port = args.smarthost.rpartition(":")
    policy = RelayPolicy(["localhost"], args.network)
    relay = Relay(
        args.queue,
        hostname="relay.localhost",
        policy=policy,
        router=Router(policy.is_local_domain, smarthost=Route(host, int(port), "none")),
        limits=WorkerLimits(per_destination=args.per_destination),
    )
    listen_host, _, listen_port = args.listen.rpartition(":")

    def ready(bound: int) -> None:
        sys.stdout.write(f"{bound}\n")
        sys.stdout.flush()

    run_forever(relay, listen_host, int(listen_port), ready)


if __name__ == "__main__":
    main()
