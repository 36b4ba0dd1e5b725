"""The relay end to end on loopback: client -> relay -> next hop (mailcore, aiosmtpd, smtp-sink)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from argon2 import PasswordHasher

from mailcore.auth.accounts import Accounts
from mailcore.delivery import LocalDelivery
from mailcore.limits import SMTPClientLimits
from mailcore.relay import Relay, RelayHandler, serve_relay
from mailcore.relay.policy import RelayPolicy
from mailcore.relay.routing import Route, Router
from mailcore.relay.schedule import RetrySchedule
from mailcore.relay.worker import WorkerLimits
from mailcore.smtp import replies as R
from mailcore.smtp.client import SMTPClient
from mailcore.smtp.replies import Reply
from mailcore.smtp.server import SMTPServer
from mailcore.store import MaildirStore
from tests.helpers import free_port, smtp_sink
from tests.relay.conftest import (
    FakeClock,
    Hop,
    dns_server,
    strip_received,
    wait_for,
)

FAST = SMTPClientLimits(connect_timeout=5, command_timeout=5, data_end_timeout=5)
MSG = (
    b"From: ann@example.org\r\nTo: bob@remote.test\r\nSubject: relay me\r\n"
    b"Message-ID: <1@example.org>\r\n\r\n.a line with a dot\r\nbody\r\n"
)

Factory = Callable[..., Relay]


@pytest.fixture
async def make_relay(tmp_path: Path) -> AsyncIterator[Factory]:
    made: list[Relay] = []

    def make(
        port: int | None = None,
        *,
        tls: str = "none",
        networks: tuple[str, ...] = ("127.0.0.0/8",),
        router: Router | None = None,
        local: LocalDelivery | None = None,
        clock: Callable[[], float] | None = None,
        limits: WorkerLimits | None = None,
    ) -> Relay:
        policy = RelayPolicy(["example.org"], networks)
        if router is None:
            assert port is not None
            router = Router(
                policy.is_local_domain,
                smarthost=Route("127.0.0.1", port, tls),  # type: ignore[arg-type]
            )
        relay = Relay(
            tmp_path / f"queue{len(made)}",
            hostname="relay.test",
            policy=policy,
            router=router,
            local=local,
            schedule=RetrySchedule(first=300, maximum=3600, lifetime=86400),
            limits=limits or WorkerLimits(linger=0.2),
            client_limits=FAST,
            clock=clock or time.time,
        )
        made.append(relay)
        return relay

    yield make
    for relay in made:
        await relay.stop()


async def send(port: int, *messages: tuple[bytes, str, list[str]]) -> list[str]:
    """Send through the relay; return its 250 texts."""
    texts = []
    async with SMTPClient("127.0.0.1", port, local_hostname="client.test", limits=FAST) as c:
        for data, sender, rcpts in messages:
            result = await c.send_message(data, sender, rcpts)
            assert result.ok, result
            texts.append(result.recipients[rcpts[0]].text)
    return texts


async def test_relay_to_aiosmtpd_bytes_match_and_one_copy_per_destination(
    make_relay: Factory,
) -> None:
    got: list[Any] = []

    class Keep:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            got.append(envelope)
            return "250 OK"

    port = free_port()
    controller = Controller(Keep(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        relay = make_relay(port)
        server = await serve_relay(relay)
        try:
            (text,) = await send(server.port, (MSG, "ann@example.org", ["bob@r.test", "cy@r.test"]))
            assert text.startswith("Ok: queued as ")
            await wait_for(lambda: len(got) == 1)
        finally:
            await server.stop()
    finally:
        controller.stop()
    (env,) = got
    # One transaction for both recipients at the one destination.
    assert env.mail_from == "ann@example.org"
    assert env.rcpt_tos == ["bob@r.test", "cy@r.test"]
    # The relay added its Received: line; every other byte is unchanged.
    assert env.original_content.startswith(b"Received: from client.test (")
    assert b"by relay.test" in env.original_content.split(b"\r\n\r\n")[0]
    assert strip_received(env.original_content) == MSG
    assert relay.queue.entries() == []


async def test_relay_to_smtp_sink_bytes_match(make_relay: Factory) -> None:
    bodies = [MSG, b"Subject: two\r\n\r\n.\r\n..\r\nend\r\n"]
    with smtp_sink() as (port, dump):
        relay = make_relay(port)
        server = await serve_relay(relay)
        try:
            await send(server.port, *[(b, "ann@example.org", ["bob@r.test"]) for b in bodies])
            await wait_for(lambda: len(list(dump.iterdir())) == 2)
            await wait_for(lambda: relay.queue.entries() == [])
        finally:
            await server.stop()
        dumps = [p.read_bytes() for p in sorted(dump.iterdir())]
    for body in bodies:
        # smtp-sink: its headers and its own 3-line Received:, then ours, then the message.
        matches = []
        for d in dumps:
            _, _, rest = d.partition(b"\nReceived: from ")
            after_sink = b"\n".join(rest.split(b"\n")[3:])
            ours = after_sink.replace(b"\n", b"\r\n")
            if strip_received(ours) == body + b"\r\n":
                matches.append(d)
        assert len(matches) == 1, dumps


async def test_4xx_then_250_is_delivered_once(
    hop: tuple[Hop, SMTPServer], make_relay: Factory
) -> None:
    handler, hop_server = hop
    handler.data_replies = [Reply(451, "4.3.0", "try later"), R.MESSAGE_ACCEPTED]
    clock = FakeClock()
    relay = make_relay(hop_server.port, clock=clock)
    await relay.open()
    server = SMTPServer(RelayHandler(relay), hostname="relay.test")
    await server.start("127.0.0.1", 0)
    try:
        await send(server.port, (MSG, "ann@example.org", ["bob@r.test"]))
    finally:
        await server.stop()
    assert await relay.run_once() == 1
    assert handler.attempts == 1 and handler.messages == []
    (entry,) = relay.queue.entries()
    assert entry.recipients[0].last_reply == "451 4.3.0 try later"
    clock.now += 299
    assert await relay.run_once() == 0
    clock.now += 1
    assert await relay.run_once() == 1
    assert handler.attempts == 2
    assert [strip_received(m.data) for m in handler.messages] == [MSG]
    assert relay.queue.entries() == []
    clock.now += 100_000
    assert await relay.run_once() == 0
    assert len(handler.messages) == 1


async def test_partial_4xx_retries_only_that_recipient(
    hop: tuple[Hop, SMTPServer], make_relay: Factory
) -> None:
    handler, hop_server = hop
    handler.rcpt_replies = {"cy@r.test": [Reply(450, "4.2.0", "mailbox busy"), R.RECIPIENT_OK]}
    clock = FakeClock()
    relay = make_relay(hop_server.port, clock=clock)
    await relay.enqueue_raw(MSG, "ann@example.org", ["bob@r.test", "cy@r.test"])
    await relay.run_once()
    clock.now += 300
    await relay.run_once()
    assert [m.rcpts for m in handler.messages] == [["bob@r.test"], ["cy@r.test"]]
    assert relay.queue.entries() == []


async def test_5xx_bounces_into_the_senders_mailbox(
    tmp_path: Path, hop: tuple[Hop, SMTPServer], make_relay: Factory
) -> None:
    handler, hop_server = hop
    handler.rcpt_replies = {"bob@r.test": [Reply(550, "5.1.1", "no such user bob")]}
    accounts = Accounts(tmp_path, hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    accounts.add_user("ann@example.org", "pw")
    async with MaildirStore(tmp_path) as store:
        local = LocalDelivery(store, accounts)
        relay = make_relay(hop_server.port, local=local, clock=FakeClock())
        await relay.open()
        server = SMTPServer(RelayHandler(relay), hostname="relay.test")
        await server.start("127.0.0.1", 0)
        try:
            async with SMTPClient("127.0.0.1", server.port, limits=FAST) as c:
                result = await c.send_message(
                    MSG,
                    "ann@example.org",
                    ["bob@r.test", "cy@r.test"],
                    mail_options={"RET": "HDRS", "ENVID": "ENV42"},
                )
                assert result.ok
                # The null sender never gets a bounce.
                assert (await c.send_message(MSG, "", ["bob@r.test"])).ok
        finally:
            await server.stop()
        await relay.run_once()  # bob fails, cy is delivered, the DSN is queued
        assert [m.rcpts for m in handler.messages] == [["cy@r.test"]]
        await relay.run_once()  # the DSN goes to ann's local mailbox
        assert relay.queue.entries() == []
        metas = await store.messages("ann@example.org", "INBOX")
        assert len(metas) == 1
        data = b"".join([c async for c in store.read("ann@example.org", "INBOX", metas[0].uid)])
    assert data.startswith(b"Delivered-To: ann@example.org\r\n")
    report = email.message_from_bytes(data, policy=email.policy.default)
    assert report.get_content_type() == "multipart/report"
    _text, status, original = report.iter_parts()
    fields = status.as_bytes()
    assert b"Original-Envelope-Id: ENV42" in fields
    assert b"Final-Recipient: rfc822; bob@r.test" in fields
    assert b"cy@r.test" not in fields
    assert b"Status: 5.1.1" in fields
    assert b"Remote-MTA: dns; 127.0.0.1" in fields
    assert b"Diagnostic-Code: smtp; 550 5.1.1 no such user bob" in fields
    assert original.get_content_type() == "text/rfc822-headers"
    assert b"Subject: relay me" in original.as_bytes()


async def test_one_session_many_messages_and_concurrency_limit(
    hop: tuple[Hop, SMTPServer], make_relay: Factory
) -> None:
    handler, hop_server = hop
    relay = make_relay(hop_server.port, clock=FakeClock(), limits=WorkerLimits(per_destination=1))
    for i in range(5):
        await relay.enqueue_raw(MSG + b"%d\r\n" % i, "ann@example.org", ["bob@r.test"])
    assert await relay.run_once() == 5
    assert len(handler.messages) == 5
    assert handler.connections == 1
    await relay.stop()
    await wait_for(lambda: handler.open_now == 0)
    handler.max_open = 0
    relay2 = make_relay(hop_server.port, clock=FakeClock(), limits=WorkerLimits(per_destination=2))
    for i in range(6):
        await relay2.enqueue_raw(MSG, "ann@example.org", [f"u{i}@r.test"])
    assert await relay2.run_once() == 6
    assert len(handler.messages) == 11
    assert handler.max_open == 2


async def test_starttls_used_when_offered_and_required_per_route(
    server_context: ssl.SSLContext, make_relay: Factory
) -> None:
    handler = Hop()
    tls_hop = SMTPServer(handler, hostname="hop.test", ssl_context=server_context)
    plain = Hop()
    plain_hop = SMTPServer(plain, hostname="plain.test")
    await tls_hop.start("127.0.0.1", 0)
    await plain_hop.start("127.0.0.1", 0)
    try:
        relay = make_relay(tls_hop.port, tls="opportunistic", clock=FakeClock())
        await relay.enqueue_raw(MSG, "ann@example.org", ["bob@r.test"])
        await relay.run_once()
        assert [(m.data, m.tls) for m in handler.messages] == [(MSG, True)]
        strict = make_relay(plain_hop.port, tls="required", clock=FakeClock())
        await strict.enqueue_raw(MSG, "ann@example.org", ["bob@r.test"])
        await strict.run_once()
        assert plain.messages == []
        (entry,) = strict.queue.entries()
        assert "4.7.10" in (entry.recipients[0].last_reply or "")
    finally:
        await tls_hop.stop()
        await plain_hop.stop()


async def test_dsn_parameters_travel_to_a_dsn_capable_hop(make_relay: Factory) -> None:
    # smtp-sink offers DSN; the relay passes RET/ENVID/NOTIFY/ORCPT on.
    with smtp_sink() as (port, dump):
        relay = make_relay(port, clock=FakeClock())
        await relay.open()
        server = SMTPServer(RelayHandler(relay), hostname="relay.test")
        await server.start("127.0.0.1", 0)
        try:
            async with SMTPClient("127.0.0.1", server.port, limits=FAST) as c:
                await c.send_message(
                    MSG,
                    "ann@example.org",
                    ["bob@r.test"],
                    mail_options={"RET": "FULL", "ENVID": "E7"},
                    rcpt_options={"bob@r.test": {"NOTIFY": "SUCCESS,FAILURE,DELAY"}},
                )
        finally:
            await server.stop()
        await relay.run_once()
        # The next hop offers DSN and takes over: no "relayed" notice from us.
        assert relay.queue.entries() == []
        await wait_for(lambda: len(list(dump.iterdir())) == 1)
        (d,) = [p.read_bytes() for p in dump.iterdir()]
    assert b"X-Mail-Args: <ann@example.org> " in d
    assert b"RET=FULL" in d and b"ENVID=E7" in d
    assert b"X-Rcpt-Args: <bob@r.test> NOTIFY=SUCCESS,FAILURE,DELAY" in d


# -------------------------------------------------------------- routing ---


async def test_mx_lookup_on_loopback_dns(hop: tuple[Hop, SMTPServer], make_relay: Factory) -> None:
    handler, hop_server = hop
    zone = {
        # The preferred MX refuses connections (nothing listens on
        # 127.0.0.2): delivery falls back to the next one.
        ("remote.test", "MX"): ["20 mx2.remote.test.", "10 mx1.remote.test."],
        ("mx1.remote.test", "A"): ["127.0.0.2"],
        ("mx2.remote.test", "A"): ["127.0.0.1"],
        ("plain.test", "A"): ["127.0.0.1"],
        ("nullmx.test", "MX"): ["0 ."],
    }
    async with dns_server(zone) as (dns, dns_port):
        policy = RelayPolicy(["example.org"])
        router = Router(
            policy.is_local_domain,
            resolver=("127.0.0.1", dns_port),
            mx_port=hop_server.port,
            dns_timeout=2,
        )
        dest = await router.resolve("Remote.Test.")
        assert dest.hosts == (("mx1.remote.test", "127.0.0.2"), ("mx2.remote.test", "127.0.0.1"))
        # No MX: the A record of the domain itself.
        assert (await router.resolve("plain.test")).hosts == (("plain.test", "127.0.0.1"),)
        relay = make_relay(router=router, clock=FakeClock())
        await relay.enqueue_raw(MSG, "ann@example.org", ["bob@remote.test"])
        await relay.enqueue_raw(MSG, "ann@example.org", ["x@nullmx.test", "y@nowhere.test"])
        await relay.run_once()
        assert [m.rcpts for m in handler.messages] == [["bob@remote.test"]]
        assert ("remote.test.", "MX") in dns.queries
        # Null MX and NXDOMAIN are permanent: bounced at once (the DSN to
        # ann@example.org is queued for local delivery).
        (dsn,) = relay.queue.entries()
        assert dsn.sender == ""
        report = relay.queue.read(dsn.id)
        assert b"Final-Recipient: rfc822; x@nullmx.test" in report
        assert b"Status: 5.1.10" in report
        assert b"Final-Recipient: rfc822; y@nowhere.test" in report
        assert b"Status: 5.1.2" in report


async def test_equal_mx_preferences_are_shuffled() -> None:
    import random

    zone = {
        ("eq.test", "MX"): ["10 a.eq.test.", "10 b.eq.test.", "5 first.eq.test."],
        ("a.eq.test", "A"): ["127.0.0.1"],
        ("b.eq.test", "A"): ["127.0.0.2"],
        ("first.eq.test", "AAAA"): ["::1"],
    }
    async with dns_server(zone) as (_, dns_port):
        orders = set()
        for seed in range(12):
            router = Router(
                lambda d: False,
                resolver=("127.0.0.1", dns_port),
                rng=random.Random(seed),
                dns_timeout=2,
            )
            dest = await router.resolve("eq.test")
            assert dest.hosts[0] == ("first.eq.test", "::1")
            orders.add(tuple(h for h, _ in dest.hosts[1:]))
    assert orders == {("a.eq.test", "b.eq.test"), ("b.eq.test", "a.eq.test")}


# ---------------------------------------------------------- open relay ---

TRICKS = [
    ("bob@remote.test", 554),  # plain relay attempt
    ("bob%remote.test@example.org", 550),  # percent hack
    ("remote.test!bob@example.org", 550),  # bang path
    ('"bob@remote.test"@example.org', 550),  # quoted local part holding @
    ("@example.org:bob@remote.test", 554),  # source route through us
    ("bob%remote.test@[127.0.0.1]", 550),  # our own address literal + percent hack
    ("bob@[192.0.2.9]", 554),  # someone else's address literal
]


async def raw_rcpt(port: int, rcpt: str) -> tuple[int, str]:
    """EHLO, MAIL, RCPT over a raw socket (source routes included); the RCPT reply."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await reader.readline()
        writer.write(b"EHLO client.test\r\n")
        while (await reader.readline())[3:4] == b"-":
            pass
        writer.write(f"MAIL FROM:<spammer@evil.test>\r\nRCPT TO:<{rcpt}>\r\n".encode())
        assert (await reader.readline()).startswith(b"250")
        line = (await reader.readline()).decode()
        writer.write(b"QUIT\r\n")
        return int(line[:3]), line[4:].strip()
    finally:
        writer.close()


@pytest.mark.parametrize(("rcpt", "code"), TRICKS)
async def test_open_relay_tricks_are_refused(
    rcpt: str, code: int, hop: tuple[Hop, SMTPServer], make_relay: Factory
) -> None:
    _handler, hop_server = hop
    relay = make_relay(hop_server.port, networks=())  # 127.0.0.1 may not relay
    await relay.open()
    server = SMTPServer(RelayHandler(relay), hostname="relay.test")
    await server.start("127.0.0.1", 0)
    try:
        reply_code, text = await raw_rcpt(server.port, rcpt)
    finally:
        await server.stop()
    assert reply_code == code, text
    assert text.startswith("5.7.1 ")
    assert relay.queue.entries() == []


@pytest.mark.parametrize(
    ("rcpt", "stored"),
    [
        ("ann@example.org", "ann@example.org"),
        ("ann@[127.0.0.1]", "ann@[127.0.0.1]"),
        # The source route is ignored (RFC 5321 4.1.1.3): local mail, not relayed.
        ("@remote.test:ann@example.org", "ann@example.org"),
    ],
)
async def test_local_forms_are_accepted_without_relaying(
    rcpt: str, stored: str, hop: tuple[Hop, SMTPServer], make_relay: Factory
) -> None:
    handler, hop_server = hop
    relay = make_relay(hop_server.port, networks=(), clock=FakeClock())
    await relay.open()
    server = SMTPServer(RelayHandler(relay), hostname="relay.test")
    await server.start("127.0.0.1", 0)
    try:
        assert (await raw_rcpt(server.port, rcpt))[0] == 250
        async with SMTPClient("127.0.0.1", server.port, limits=FAST) as c:
            assert (await c.send_message(MSG, "x@evil.test", [stored])).ok
    finally:
        await server.stop()
    await relay.run_once()
    # Routed to local delivery (none configured here: it waits), never to the next hop.
    assert handler.attempts == 0
    (entry,) = relay.queue.entries()
    assert entry.recipients[0].address == stored
    assert "no local delivery" in (entry.recipients[0].last_reply or "")


# ------------------------------------------------- AUTH, delays, config ---


class OneUser:
    """A credential source with one user (the server-side SASL check is real)."""

    scram = False

    async def verify_password(self, username: str, password: str) -> str | None:
        return username if (username, password) == ("relay", "s3cret") else None

    async def scram_secrets(self, username: str) -> tuple[bytes, int, bytes, bytes] | None:
        return None

    async def cram_secret(self, username: str) -> bytes | None:
        return None


async def test_smarthost_with_required_tls_and_auth(
    tmp_path: Path, server_context: ssl.SSLContext, ca: Any
) -> None:
    handler = Hop()
    logins: list[str] = []

    class Recording(Hop):
        async def handle_AUTH(self, session: Any, account: str) -> None:
            logins.append(account)

    handler = Recording()
    smarthost = SMTPServer(
        handler, hostname="localhost", ssl_context=server_context, credentials=OneUser()
    )
    await smarthost.start("127.0.0.1", 0)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    policy = RelayPolicy(["example.org"], ["127.0.0.0/8"])
    router = Router(
        policy.is_local_domain,
        smarthost=Route("localhost", smarthost.port, "required", "relay", "s3cret"),
    )
    relay = Relay(
        tmp_path / "q",
        hostname="relay.test",
        policy=policy,
        router=router,
        ssl_context=client_ctx,
        client_limits=FAST,
        limits=WorkerLimits(linger=0.1),
        clock=FakeClock(),
    )
    try:
        await relay.enqueue_raw(MSG, "ann@example.org", ["bob@r.test"])
        await relay.run_once()
        assert relay.queue.entries() == []
    finally:
        await relay.stop()
        await smarthost.stop()
    assert logins == ["relay"]
    assert [(m.data, m.tls) for m in handler.messages] == [(MSG, True)]


async def test_delay_warning_reaches_the_sender_once(
    tmp_path: Path, hop: tuple[Hop, SMTPServer]
) -> None:
    handler, hop_server = hop
    handler.data_replies = [Reply(451, "4.2.2", "mailbox full")] * 5
    accounts = Accounts(tmp_path, hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    accounts.add_user("ann@example.org", "pw")
    clock = FakeClock()
    async with MaildirStore(tmp_path) as store:
        policy = RelayPolicy(["example.org"])
        relay = Relay(
            tmp_path / "q",
            hostname="relay.test",
            policy=policy,
            router=Router(
                policy.is_local_domain, smarthost=Route("127.0.0.1", hop_server.port, "none")
            ),
            local=LocalDelivery(store, accounts),
            schedule=RetrySchedule(first=300, maximum=3600, delay_warning=600),
            client_limits=FAST,
            limits=WorkerLimits(linger=0.1),
            clock=clock,
        )
        try:
            await relay.enqueue_raw(MSG, "ann@example.org", ["bob@r.test"], ENVID="D1")
            for step in (0, 300, 600, 1200):
                clock.now += step
                await relay.run_once()
            await relay.run_once()
            metas = await store.messages("ann@example.org", "INBOX")
            assert len(metas) == 1
            data = b"".join([c async for c in store.read("ann@example.org", "INBOX", metas[0].uid)])
            (entry,) = relay.queue.entries()  # the original, still being retried
            assert entry.recipients[0].warned and entry.recipients[0].attempts == 4
        finally:
            await relay.stop()
    assert b"Action: delayed" in data and b"Status: 4.2.2" in data
    assert b"Original-Envelope-Id: D1" in data


def test_relay_from_config(tmp_path: Path) -> None:
    from mailcore.config import ConfigError, parse_config

    cfg = parse_config(
        {
            "data_dir": str(tmp_path),
            "hostname": "mx.example.org",
            "domains": ["example.org"],
            "relay": {
                "networks": ["10.0.0.0/8"],
                "smarthost": "127.0.0.1:2526",
                "smarthost_tls": "required",
                "smarthost_user": "u",
                "smarthost_password": "p",
                "resolver": "127.0.0.1:5353",
                "mx_port": 2525,
                "per_destination": 3,
                "retry_first": 60,
                "retry_max": 600,
                "lifetime": 3600,
                "routes": {"Special.Test": {"host": "127.0.0.2", "port": 26, "tls": "none"}},
            },
        }
    )
    relay = Relay.from_config(cfg)
    assert relay.queue.path == tmp_path / "queue"
    assert relay.router.smarthost == Route("127.0.0.1", 2526, "required", "u", "p")
    assert relay.router.routes == {"special.test": Route("127.0.0.2", 26, "none")}
    assert relay.router.mx_port == 2525
    assert relay.queue.schedule == RetrySchedule(first=60, maximum=600, lifetime=3600)
    assert relay.workers.limits.per_destination == 3
    assert relay.may_relay(_session("10.1.1.1")) and not relay.may_relay(_session("11.1.1.1"))
    for bad in (
        {"smarthost_tls": "maybe"},
        {"retry_first": 600, "retry_max": 60},
        {"routes": {"a.test": {"host": "h", "bogus": 1}}},
        {"per_destination": 0},
        {"queue": "x"},
    ):
        with pytest.raises(ConfigError):
            parse_config({"relay": bad})


def _session(peer: str) -> Any:
    from mailcore.smtp.handlers import Session

    return Session(peer=(peer, 25), server_hostname="mx")


async def test_notify_success_relayed_and_delivered(tmp_path: Path, make_relay: Factory) -> None:
    got: list[Any] = []

    class Keep:  # aiosmtpd offers no DSN: the relay must report "relayed" itself
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            got.append(envelope)
            return "250 OK"

    port = free_port()
    controller = Controller(Keep(), hostname="127.0.0.1", port=port)
    controller.start()
    accounts = Accounts(tmp_path, hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    accounts.add_user("ann@example.org", "pw")
    accounts.add_user("carol@example.org", "pw")
    try:
        async with MaildirStore(tmp_path) as store:
            relay = make_relay(port, local=LocalDelivery(store, accounts), clock=FakeClock())
            await relay.open()
            server = SMTPServer(RelayHandler(relay), hostname="relay.test")
            await server.start("127.0.0.1", 0)
            try:
                async with SMTPClient("127.0.0.1", server.port, limits=FAST) as c:
                    result = await c.send_message(
                        MSG,
                        "ann@example.org",
                        ["bob@r.test", "carol@example.org", "dan@r.test"],
                        rcpt_options={
                            "bob@r.test": {"NOTIFY": "SUCCESS"},
                            "carol@example.org": {"NOTIFY": "SUCCESS,FAILURE"},
                        },
                    )
                    assert result.ok
            finally:
                await server.stop()
            await relay.run_once()
            await relay.run_once()
            assert relay.queue.entries() == []
            reports = []
            for account in ("ann@example.org", "carol@example.org"):
                for meta in await store.messages(account, "INBOX"):
                    reports.append(
                        b"".join([c async for c in store.read(account, "INBOX", meta.uid)])
                    )
    finally:
        controller.stop()
    assert [e.rcpt_tos for e in got] == [["bob@r.test", "dan@r.test"]]
    carol_copy = [r for r in reports if r.startswith(b"Delivered-To: carol@example.org")]
    assert len(carol_copy) == 1 and strip_received(carol_copy[0].split(b"\r\n", 1)[1]) == MSG
    dsns = sorted(r for r in reports if b"multipart/report" in r)
    assert len(dsns) == 2
    relayed = next(d for d in dsns if b"Action: relayed" in d)
    delivered = next(d for d in dsns if b"Action: delivered" in d)
    assert b"Final-Recipient: rfc822; bob@r.test" in relayed and b"dan@r.test" not in relayed
    assert b"Status: 2.0.0" in relayed
    assert b"Final-Recipient: rfc822; carol@example.org" in delivered
    assert all(d.startswith(b"Delivered-To: ann@example.org") for d in dsns)


async def test_hop_closing_with_421_defers_one_and_reconnects_for_the_rest(
    hop: tuple[Hop, SMTPServer], make_relay: Factory
) -> None:
    handler, hop_server = hop
    handler.data_replies = [R.MESSAGE_ACCEPTED, Reply(421, "4.3.2", "going down")]
    clock = FakeClock()
    relay = make_relay(hop_server.port, clock=clock, limits=WorkerLimits(per_destination=1))
    for i in range(4):
        await relay.enqueue_raw(MSG + b"%d\r\n" % i, "ann@example.org", [f"u{i}@r.test"])
    assert await relay.run_once() == 4
    assert len(handler.messages) == 3
    assert handler.connections == 2  # the 421 ended the first session
    (left,) = relay.queue.entries()
    assert left.recipients[0].last_reply is not None and "421" in left.recipients[0].last_reply
    clock.now += 300
    assert await relay.run_once() == 1
    assert sorted(m.data[-3:] for m in handler.messages) == [b"0\r\n", b"1\r\n", b"2\r\n", b"3\r\n"]
    assert relay.queue.entries() == []


async def test_overall_session_limit_across_destinations(make_relay: Factory) -> None:
    hops = [Hop(), Hop()]
    servers = [SMTPServer(h, hostname="hop.test") for h in hops]
    for s in servers:
        await s.start("127.0.0.1", 0)
    open_max = 0

    def track() -> None:
        nonlocal open_max
        open_max = max(open_max, sum(h.open_now for h in hops))

    try:
        policy = RelayPolicy(["example.org"])
        router = Router(
            policy.is_local_domain,
            routes={
                "one.test": Route("127.0.0.1", servers[0].port, "none"),
                "two.test": Route("127.0.0.1", servers[1].port, "none"),
            },
        )
        relay = make_relay(
            router=router, clock=FakeClock(), limits=WorkerLimits(connections=1, linger=0.05)
        )
        for i in range(6):
            await relay.enqueue_raw(MSG, "ann@example.org", [f"u{i}@{('one', 'two')[i % 2]}.test"])
        run = asyncio.ensure_future(relay.run_once())
        while not run.done():
            track()
            await asyncio.sleep(0.001)
        assert await run == 6
    finally:
        for s in servers:
            await s.stop()
    assert [len(h.messages) for h in hops] == [3, 3]
    assert open_max == 1


async def test_unknown_local_user_is_refused_at_rcpt(tmp_path: Path, make_relay: Factory) -> None:
    accounts = Accounts(tmp_path, hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    accounts.add_user("ann@example.org", "pw")
    async with MaildirStore(tmp_path) as store:
        relay = make_relay(1, local=LocalDelivery(store, accounts), networks=())
        await relay.open()
        server = SMTPServer(RelayHandler(relay), hostname="relay.test")
        await server.start("127.0.0.1", 0)
        try:
            assert await raw_rcpt(server.port, "nobody@example.org") == (
                550,
                "5.1.1 No such user here",
            )
            assert (await raw_rcpt(server.port, "ann@example.org"))[0] == 250
        finally:
            await server.stop()
