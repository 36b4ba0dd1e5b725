"""The SMTP handler of ``mailcore serve``: local delivery, relaying only through a hook.

:class:`LocalDeliveryHandler` accepts a recipient when its domain is local and
the address is a user or an alias (``550 5.1.1 No such user here`` otherwise,
as in RFC 5321's own example), and refuses a recipient in any other domain
with ``554 5.7.1 Relay access denied`` unless a :class:`Relayer` is plugged in
and allows this client to relay. After the final dot it stores one copy per
local account through :class:`~mailcore.delivery.LocalDelivery` (which adds
``Delivered-To:`` and returns only once every copy is fsynced and indexed),
hands the non-local recipients to the relayer, and only then answers 250.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from mailcore.delivery import LocalDelivery
from mailcore.sessions import parse_ip
from mailcore.smtp import replies as R
from mailcore.smtp.handlers import Envelope, Handler, Session
from mailcore.smtp.ids import new_queue_id
from mailcore.smtp.replies import Reply

__all__ = [
    "DeliveryMonitor",
    "LocalDeliveryHandler",
    "MessageRecord",
    "Relayer",
    "new_queue_id",
]

_log = logging.getLogger(__name__)


class Relayer(Protocol):
    """What the relay part (``mailcore.relay``) offers this handler."""

    def may_relay(self, session: Session) -> bool:
        """Whether this client may send to non-local recipients (network or AUTH)."""
        ...

    def refuse(self, address: str) -> Reply | None:
        """Why a non-local ``address`` must not be queued even for an allowed client, or None.

        The relay's anti-open-relay rules: routing hidden in the local part,
        an address literal of this server, an address without a domain.
        """
        ...

    async def enqueue(self, envelope: Envelope, data: bytes) -> str:
        """Queue ``data`` durably for ``envelope``'s recipients; return the queue id.

        The handler passes an envelope holding only the non-local recipients.
        Must return only once the queue entry survives a crash: the client
        gets its 250 right after.
        """
        ...


class MessageRecord(NamedTuple):
    """One message's outcome, for the log line and the metrics.

    A named tuple: an SMTP worker process sends one to the main process for
    every message, and a tuple pickles and unpickles in one step.
    """

    protocol: str
    queue_id: str
    peer: str
    mail_from: str
    recipients: tuple[str, ...]
    size: int
    result: str
    """``delivered``, ``queued``, ``delivered+queued`` or ``failed``."""
    reply: str
    seconds: float


class DeliveryMonitor(Protocol):
    """Receives session events and message records (logs and metrics)."""

    def session_event(self, protocol: str, event: str, peer: str, **fields: object) -> None:
        """A connection opened or closed, a client authenticated, a recipient was refused."""
        ...

    def message(self, record: MessageRecord) -> None:
        """A message was delivered, queued or failed."""
        ...


@dataclass
class _Txn:
    """What RCPT learned about one envelope."""

    accounts: list[str] = field(default_factory=list)
    remote: list[str] = field(default_factory=list)
    started: float = 0.0


class LocalDeliveryHandler(Handler):
    """Deliver to local mailboxes; refuse relaying unless a :class:`Relayer` allows it.

    Args:
        delivery: resolves addresses and stores copies durably.
        domains: the local domains (case-insensitive).
        relay: optional queue for non-local recipients.
        monitor: optional observer for logs and metrics.
        protocol: name used in logs and metrics (``smtp``, ``submission``).
        aliases: extra ``alias -> account`` table (an aliases file).
        own_addresses: this server's IP addresses (loopback is always one):
            ``user@[192.0.2.1]`` naming one of them is ``user`` of the first
            local domain, as mail to a server's address literal is local.
    """

    def __init__(
        self,
        delivery: LocalDelivery,
        domains: Iterable[str],
        *,
        relay: Relayer | None = None,
        monitor: DeliveryMonitor | None = None,
        protocol: str = "smtp",
        aliases: Mapping[str, str] | None = None,
        own_addresses: Iterable[str] = (),
    ) -> None:
        self.delivery = delivery
        # Extra alias -> account table (lower-case keys), consulted after the
        # account database; the caller may change it in place (SIGHUP).
        self.aliases: Mapping[str, str] = aliases if aliases is not None else {}
        ordered = [d.lower() for d in domains]
        self.domains = frozenset(ordered)
        # A bare RCPT TO:<Postmaster> (RFC 5321 4.1.1.3) goes to this domain's postmaster.
        self.primary_domain = ordered[0] if ordered else "localhost"
        own = {parse_ip(a) for a in own_addresses} | {parse_ip("127.0.0.1"), parse_ip("::1")}
        self.own_addresses = frozenset(a for a in own if a is not None)
        self.relay = relay
        self.monitor = monitor
        self.protocol = protocol
        #: False while the server shuts down: new connections get 421.
        self.accepting = True
        #: Sessions (by id) inside a transaction: from MAIL to its reply, RSET or end.
        #: Graceful shutdown waits for them, within a bound.
        self.busy: set[int] = set()

    def _txn(self, envelope: Envelope) -> _Txn:
        txn = envelope.handler_data
        if not isinstance(txn, _Txn):
            txn = envelope.handler_data = _Txn(started=time.monotonic())
        return txn

    def is_local(self, address: str, session: Session | None = None) -> bool:
        """Whether ``address`` is in one of the local domains (or is a bare ``Postmaster``).

        A domain literal naming one of this server's addresses is local too.
        """
        if "@" not in address:
            return address.lower() == "postmaster"
        domain = address.rpartition("@")[2].lower()
        return domain in self.domains or self._own_literal(domain, session)

    def _own_literal(self, domain: str, session: Session | None) -> bool:
        if not (domain.startswith("[") and domain.endswith("]")):
            return False
        text = domain[1:-1]
        if text.startswith("ipv6:"):
            text = text[5:]
        ip = parse_ip(text)
        if ip is None:
            return False
        if ip in self.own_addresses:
            return True
        # The address the client reached is ours, whatever the listener was
        # bound to (0.0.0.0 or :: included).
        here = parse_ip(session.local[0]) if session is not None and session.local else None
        return here is not None and here == ip

    def _canonical(self, address: str) -> str:
        """A bare Postmaster or ``user@[our address]`` as ``user@`` the first local domain."""
        if "@" not in address:
            return f"postmaster@{self.primary_domain}"
        local, _, domain = address.rpartition("@")
        if domain.lower() not in self.domains:
            return f"{local}@{self.primary_domain}"
        return address

    def _event(self, session: Session, event: str, **fields: object) -> None:
        if self.monitor is not None:
            self.monitor.session_event(
                self.protocol, event, f"{session.peer[0]}:{session.peer[1]}", **fields
            )

    async def handle_connect(self, session: Session) -> Reply:
        """Greet, and note the connection."""
        self._event(session, "connect")
        if not self.accepting:
            return R.SHUTTING_DOWN
        return await super().handle_connect(session)

    async def handle_close(self, session: Session) -> None:
        """Note the end of the connection."""
        self.busy.discard(id(session))
        self._event(session, "disconnect")

    async def handle_RSET(self, session: Session) -> None:
        """The transaction is over."""
        self.busy.discard(id(session))

    async def handle_DATA_abort(self, session: Session, envelope: Envelope, reply: Reply) -> None:
        """The body was refused: the transaction is over."""
        self.busy.discard(id(session))
        await super().handle_DATA_abort(session, envelope, reply)

    async def handle_AUTH(self, session: Session, account: str) -> None:
        """Note a successful login."""
        self._event(session, "auth", account=account)

    async def handle_MAIL(
        self, session: Session, envelope: Envelope, address: str, params: Mapping[str, str | None]
    ) -> Reply:
        """Accept any sender; start timing the transaction."""
        self._txn(envelope).started = time.monotonic()
        self.busy.add(id(session))
        return R.SENDER_OK

    async def handle_RCPT(
        self, session: Session, envelope: Envelope, address: str, params: Mapping[str, str | None]
    ) -> Reply:
        """Local user or alias: 250; unknown local: 550 5.1.1; elsewhere: relay or 554 5.7.1."""
        txn = self._txn(envelope)
        if self.is_local(address, session):
            account = self._local_account(self._canonical(address))
            if account is None:
                self._event(session, "reject", rcpt=address, reply="550 5.1.1")
                return R.NO_SUCH_USER
            txn.accounts.append(account)
            return R.RECIPIENT_OK
        if self.relay is not None and self.relay.may_relay(session):
            refusal = self.relay.refuse(address)
            if refusal is not None:
                self._event(
                    session, "reject", rcpt=address, reply=f"{refusal.code} {refusal.enhanced}"
                )
                return refusal
            txn.remote.append(address)
            return R.RECIPIENT_OK
        self._event(session, "reject", rcpt=address, reply="554 5.7.1")
        return R.RELAY_DENIED

    def _local_account(self, address: str) -> str | None:
        """The account of a local address: a user, an alias, or the domain's postmaster."""
        # A read of the accounts database (SQLite WAL: readers never wait
        # for writers) takes microseconds; a thread hop per RCPT costs
        # more than the query and adds a loop wake-up.
        account = self.delivery.accounts.lookup(address)
        if account is None and self.aliases:
            target = self.aliases.get(address.lower())
            if target is not None:
                account = self.delivery.accounts.lookup(target)
        if account is None:
            local, _, domain = address.rpartition("@")
            if local.lower() == "postmaster":
                # RFC 5321 4.5.1: every domain MUST accept mail for its
                # postmaster. Without a user or alias of that name, the mail
                # is kept in a mailbox of that name, there for the operator
                # once they add the user (or read it with any Maildir tool).
                account = f"postmaster@{domain.lower()}"
        return account

    async def handle_DATA_end(self, session: Session, envelope: Envelope) -> Reply:
        """Store every local copy and queue the rest; 250 only when all are durable."""
        try:
            return await self._deliver(session, envelope)
        finally:
            self.busy.discard(id(session))

    async def handle_LMTP_DATA(self, session: Session, envelope: Envelope) -> list[Reply]:
        """LMTP: one reply per recipient; they share the outcome of the one delivery."""
        reply = await self.handle_DATA_end(session, envelope)
        return [reply] * len(envelope.recipients)

    def _remote_part(self, envelope: Envelope, session: Session) -> Envelope:
        """The same transaction with only the recipients outside the local domains."""
        remote = Envelope()
        remote.set_mail(envelope.mail_from or "", envelope.mail_params)
        remote.recipients = [
            r for r in envelope.recipients if not self.is_local(r.address, session)
        ]
        return remote

    async def _deliver(self, session: Session, envelope: Envelope) -> Reply:
        txn = self._txn(envelope)
        envelope.handler_data = None
        data = envelope.content
        # The id the server's Received: field names: the 250, the log line
        # and the stored message all carry the same one.
        queue_id = envelope.queue_id or new_queue_id()
        results: list[str] = []
        try:
            if txn.accounts:
                await self.delivery.deliver(txn.accounts, data)
                results.append("delivered")
            if txn.remote:
                assert self.relay is not None  # remote recipients exist only with a relayer
                queue_id = await self.relay.enqueue(self._remote_part(envelope, session), data)
                results.append("queued")
        except Exception:  # noqa: BLE001 - any store or queue failure is a 451: the client retries
            _log.exception("delivery of %s failed", queue_id)
            reply = R.LOCAL_ERROR
            result = "failed"
        else:
            reply = Reply(250, "2.0.0", f"Ok: queued as {queue_id}")
            result = "+".join(results) or "delivered"
        if self.monitor is not None:
            self.monitor.message(
                MessageRecord(
                    protocol=self.protocol,
                    queue_id=queue_id,
                    peer=session.peer[0],
                    mail_from=envelope.mail_from or "",
                    recipients=tuple(envelope.rcpt_tos),
                    size=len(data),
                    result=result,
                    reply=f"{reply.code} {reply.enhanced or ''}".strip(),
                    seconds=time.monotonic() - txn.started,
                )
            )
        return reply
