"""Fixtures for the relay tests: next hops, a loopback DNS server, a fake clock."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import cast

import dns.flags
import dns.message
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
import trustme

from mailcore.smtp import replies as R
from mailcore.smtp.handlers import Envelope, Handler, Session
from mailcore.smtp.replies import Reply
from mailcore.smtp.server import SMTPServer


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Received:
    """One message a next hop accepted."""

    mail_from: str | None
    rcpts: list[str]
    data: bytes
    tls: bool
    params: dict[str, str | None]
    rcpt_params: list[dict[str, str | None]]


@dataclass
class Hop(Handler):
    """A scripted next hop: replies to RCPT and DATA from queues, records what it accepts."""

    rcpt_replies: dict[str, list[Reply]] = field(default_factory=dict)
    data_replies: list[Reply] = field(default_factory=list)
    messages: list[Received] = field(default_factory=list)
    attempts: int = 0
    connections: int = 0
    open_now: int = 0
    max_open: int = 0
    hold: Callable[[Envelope], asyncio.Future[None] | None] | None = None

    async def handle_connect(self, session: Session) -> Reply:
        self.connections += 1
        self.open_now += 1
        self.max_open = max(self.max_open, self.open_now)
        return R.greeting(session.server_hostname)

    async def handle_close(self, session: Session) -> None:
        self.open_now -= 1

    async def handle_RCPT(
        self, session: Session, envelope: Envelope, address: str, params: Mapping[str, str | None]
    ) -> Reply:
        script = self.rcpt_replies.get(address)
        if script:
            return script.pop(0) if len(script) > 1 else script[0]
        return R.RECIPIENT_OK

    async def handle_DATA(self, session: Session, envelope: Envelope) -> Reply:
        self.attempts += 1
        if self.hold is not None:
            waiter = self.hold(envelope)
            if waiter is not None:
                await waiter
                return Reply(451, "4.3.0", "held and refused")
        if self.data_replies:
            reply = self.data_replies.pop(0)
            if reply.code != 250:
                return reply
        self.messages.append(
            Received(
                envelope.mail_from,
                envelope.rcpt_tos,
                strip_received(envelope.content),
                session.tls,
                dict(envelope.mail_params),
                [dict(r.params) for r in envelope.recipients],
            )
        )
        return R.MESSAGE_ACCEPTED


def strip_received(data: bytes) -> bytes:
    """Drop the first header field (the Received: the receiving server added)."""
    assert data.startswith(b"Received: "), data[:60]
    end = 0
    while True:
        end = data.index(b"\r\n", end) + 2
        if data[end : end + 1] not in (b" ", b"\t"):
            return data[end:]


@pytest.fixture
async def hop() -> AsyncIterator[tuple[Hop, SMTPServer]]:
    handler = Hop()
    server = SMTPServer(handler, hostname="hop.test")
    await server.start("127.0.0.1", 0)
    try:
        yield handler, server
    finally:
        await server.stop()


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def server_context(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(ctx)
    return ctx


# ----------------------------------------------------------------- DNS ---


class DNSServer(asyncio.DatagramProtocol):
    """A tiny authoritative DNS server on loopback, built on dnspython's message classes.

    ``zone`` maps (name, type) to record texts; a name present with other
    types answers NOERROR/empty, an absent name NXDOMAIN.
    """

    def __init__(self, zone: Mapping[tuple[str, str], list[str]]) -> None:
        self.zone = {(n.lower().rstrip(".") + ".", t): v for (n, t), v in zone.items()}
        self.names = {n for n, _ in self.zone}
        self.queries: list[tuple[str, str]] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport is not a registered subclass.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        name = question.name.to_text().lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, rdtype))
        records = self.zone.get((name, rdtype))
        if records:
            rrset = dns.rrset.from_text(name, 60, "IN", rdtype, *records)
            response.answer.append(rrset)
        elif name not in self.names:
            response.set_rcode(dns.rcode.NXDOMAIN)
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)


@contextlib.asynccontextmanager
async def dns_server(
    zone: Mapping[tuple[str, str], list[str]],
) -> AsyncIterator[tuple[DNSServer, int]]:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        lambda: DNSServer(zone), local_addr=("127.0.0.1", 0)
    )
    try:
        yield proto, transport.get_extra_info("sockname")[1]
    finally:
        transport.close()


# ------------------------------------------------------------ smtp-sink ---


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``predicate`` (bounded) until it holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.02)
