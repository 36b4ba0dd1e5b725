"""LocalDeliveryHandler over real TCP: which recipients are accepted, what lands in the INBOX."""

from __future__ import annotations

import asyncio
from pathlib import Path

from argon2 import PasswordHasher

from mailcore.auth.accounts import Accounts
from mailcore.delivery import LocalDelivery
from mailcore.relay import Relay
from mailcore.relay.policy import RelayPolicy
from mailcore.smtp.handlers import Envelope, Session
from mailcore.smtp.local import LocalDeliveryHandler, MessageRecord
from mailcore.smtp.replies import Reply
from mailcore.smtp.server import SMTPServer
from mailcore.store import MaildirStore

BODY = b"From: a@remote.example\r\nSubject: hi\r\n\r\nline 1\r\n..dot stays\r\n"


class QueueRelayer:
    """A stand-in for mailcore.relay: allows one client address, keeps what it is given."""

    def __init__(self, allowed: str) -> None:
        self.allowed = allowed
        self.queued: list[tuple[list[str], bytes]] = []

    def may_relay(self, session: Session) -> bool:
        return session.peer[0] == self.allowed

    def refuse(self, address: str) -> Reply | None:
        return None

    async def enqueue(self, envelope: Envelope, data: bytes) -> str:
        self.queued.append((envelope.rcpt_tos, data))
        return "Q1"


class Records:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.messages: list[MessageRecord] = []

    def session_event(self, protocol: str, event: str, peer: str, **fields: object) -> None:
        self.events.append((protocol, event))

    def message(self, record: MessageRecord) -> None:
        self.messages.append(record)


async def _talk(port: int, lines: list[bytes]) -> list[bytes]:
    """Send each line, read one reply (all its lines) per line; return the last reply lines."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    replies: list[bytes] = []

    async def reply() -> bytes:
        out = b""
        while True:
            line = await reader.readline()
            out += line
            if line[3:4] != b"-":
                return out

    replies.append(await reply())
    for line in lines:
        writer.write(line)
        await writer.drain()
        replies.append(await reply())
    writer.close()
    await writer.wait_closed()
    return replies


def _accounts(tmp: Path) -> Accounts:
    acc = Accounts(tmp, hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    acc.add_user("ann@example.org", "pw")
    acc.add_user("ben@example.org", "pw")
    acc.add_alias("info@example.org", "ann@example.org")
    return acc


async def test_recipients_delivery_and_replies(tmp_path: Path) -> None:
    accounts = _accounts(tmp_path)
    records = Records()
    async with MaildirStore(tmp_path) as store:
        handler = LocalDeliveryHandler(
            LocalDelivery(store, accounts), ["example.org"], monitor=records
        )
        async with SMTPServer(handler, hostname="mx.example.org") as server:
            replies = await _talk(
                server.port,
                [
                    b"EHLO client.example\r\n",
                    b"MAIL FROM:<a@remote.example>\r\n",
                    b"RCPT TO:<nobody@example.org>\r\n",
                    b"RCPT TO:<someone@elsewhere.example>\r\n",
                    b"RCPT TO:<ANN@example.org>\r\n",
                    b"RCPT TO:<info@example.org>\r\n",
                    b"RCPT TO:<ben@EXAMPLE.org>\r\n",
                    b"DATA\r\n",
                    BODY + b".\r\n",
                    b"QUIT\r\n",
                ],
            )
        assert replies[3] == b"550 5.1.1 No such user here\r\n"
        assert replies[4] == b"554 5.7.1 Relay access denied\r\n"
        assert replies[5] == replies[6] == replies[7] == b"250 2.1.5 Recipient OK\r\n"
        assert replies[9].startswith(b"250 2.0.0 Ok: queued as ")
        queue_id = replies[9].split()[-1].decode()
        for account in ("ann@example.org", "ben@example.org"):
            # ann is named twice (directly and by alias) and gets one copy.
            metas = await store.messages(account, "INBOX")
            assert len(metas) == 1
            data = b"".join([c async for c in store.read(account, "INBOX", metas[0].uid)])
            head = f"Delivered-To: {account}\r\nReceived: from client.example".encode()
            assert data.startswith(head)
            assert data.endswith(b"\r\n" + BODY.replace(b"\r\n..dot", b"\r\n.dot"))
            # The id in the 250 reply is the one in the Received: field.
            assert f" id {queue_id};".encode() in data[: data.index(b"\r\nFrom: ")]
    accounts.close()
    assert [m.queue_id for m in records.messages] == [queue_id]
    rec = records.messages[0]
    assert rec.result == "delivered" and rec.reply == "250 2.0.0"
    assert rec.recipients == ("ANN@example.org", "info@example.org", "ben@EXAMPLE.org")
    assert rec.mail_from == "a@remote.example" and rec.size > len(BODY)
    assert ("smtp", "connect") in records.events and ("smtp", "reject") in records.events


async def test_relayer_takes_non_local_recipients_from_allowed_clients(tmp_path: Path) -> None:
    accounts = _accounts(tmp_path)
    async with MaildirStore(tmp_path) as store:
        for allowed, expect in (("127.0.0.1", b"250 2.1.5"), ("192.0.2.1", b"554 5.7.1")):
            relay = QueueRelayer(allowed)
            handler = LocalDeliveryHandler(
                LocalDelivery(store, accounts), ["example.org"], relay=relay
            )
            async with SMTPServer(handler) as server:
                replies = await _talk(
                    server.port,
                    [
                        b"EHLO c\r\n",
                        b"MAIL FROM:<ann@example.org>\r\n",
                        b"RCPT TO:<far@elsewhere.example>\r\n",
                        b"RCPT TO:<ben@example.org>\r\n",
                        b"DATA\r\n",
                        BODY + b".\r\n",
                    ],
                )
            assert replies[3].startswith(expect)
            if allowed == "127.0.0.1":
                assert replies[6] == b"250 2.0.0 Ok: queued as Q1\r\n"
                assert relay.queued[0][0] == ["far@elsewhere.example"]
                assert relay.queued[0][1].endswith(BODY.replace(b"\r\n..dot", b"\r\n.dot"))
            else:
                assert relay.queued == []
        assert len(await store.messages("ben@example.org", "INBOX")) == 2
    accounts.close()


async def test_the_real_relay_refuses_the_open_relay_tricks_for_allowed_clients(
    tmp_path: Path,
) -> None:
    """With mailcore.relay behind it, even a client allowed to relay cannot loop or hide routes."""
    accounts = _accounts(tmp_path)
    async with MaildirStore(tmp_path) as store:
        delivery = LocalDelivery(store, accounts)
        policy = RelayPolicy(["example.org"], ["127.0.0.1/32"])
        relay = Relay(tmp_path / "queue", hostname="mx.example.org", policy=policy, local=delivery)
        await relay.open()
        try:
            handler = LocalDeliveryHandler(delivery, ["example.org"], relay=relay)
            async with SMTPServer(handler) as server:
                replies = await _talk(
                    server.port,
                    [
                        b"EHLO c\r\n",
                        b"MAIL FROM:<ann@example.org>\r\n",
                        b"RCPT TO:<ann@[127.0.0.1]>\r\n",  # this server's own literal
                        b"RCPT TO:<far!user@example.org>\r\n",  # bang path via a local domain
                        b"RCPT TO:<far%elsewhere.example@example.org>\r\n",  # percent hack
                        b'RCPT TO:<"far@elsewhere.example"@example.org>\r\n',  # quoted @
                        b"RCPT TO:<@example.org:far@elsewhere.example>\r\n",  # source route
                        b"RCPT TO:<far@elsewhere.example>\r\n",
                        b"QUIT\r\n",
                    ],
                )
        finally:
            await relay.stop()
    accounts.close()
    # The literal is this server: ann's own mailbox, not the relay queue. The
    # tricks inside a local domain name no local user; none of them is
    # queued for another host.
    assert replies[3].startswith(b"250 2.1.5"), replies
    for reply in replies[4:7]:
        assert reply.startswith(b"550 5.1.1"), replies
    # A source route is ignored (RFC 5321 appendix C): the real destination is
    # relayed, as is a plain remote address, for this allowed client.
    assert replies[7].startswith(b"250 2.1.5") and replies[8].startswith(b"250 2.1.5")


async def test_postmaster_is_always_accepted(tmp_path: Path) -> None:
    # RFC 5321 4.5.1: every domain MUST accept mail for "postmaster", in any
    # case, and RCPT TO:<Postmaster> with no domain at all (4.1.1.3).
    accounts = _accounts(tmp_path)
    accounts.add_alias("postmaster@example.net", "ben@example.org")
    async with MaildirStore(tmp_path) as store:
        relay = QueueRelayer("127.0.0.1")
        handler = LocalDeliveryHandler(
            LocalDelivery(store, accounts), ["example.org", "example.net"], relay=relay
        )
        async with SMTPServer(handler, hostname="mx.example.org") as server:
            replies = await _talk(
                server.port,
                [
                    b"EHLO client.example\r\n",
                    b"MAIL FROM:<>\r\n",
                    b"RCPT TO:<Postmaster>\r\n",
                    b"RCPT TO:<POSTMASTER@Example.NET>\r\n",
                    b"RCPT TO:<postmaster@elsewhere.example>\r\n",
                    b"DATA\r\n",
                    BODY + b".\r\n",
                ],
            )
        assert replies[3] == replies[4] == replies[5] == b"250 2.1.5 Recipient OK\r\n"
        assert replies[7].startswith(b"250 2.0.0")
        # No user or alias postmaster@example.org: its own mailbox keeps the mail.
        assert len(await store.messages("postmaster@example.org", "INBOX")) == 1
        # postmaster@example.net is an alias of ben.
        assert len(await store.messages("ben@example.org", "INBOX")) == 1
        # Only the remote postmaster went to the relay.
        assert [rcpts for rcpts, _ in relay.queued] == [["postmaster@elsewhere.example"]]
    accounts.close()


async def test_an_address_literal_of_this_server_is_local(tmp_path: Path) -> None:
    # user@[our address] is user of the first local domain (RFC 5321 4.1.3
    # literals); a literal naming another host is a remote destination, and
    # routing tricks in the local part are not followed.
    accounts = _accounts(tmp_path)
    async with MaildirStore(tmp_path) as store:
        handler = LocalDeliveryHandler(
            LocalDelivery(store, accounts), ["example.org"], own_addresses=["192.0.2.7"]
        )
        async with SMTPServer(handler, hostname="mx.example.org") as server:
            replies = await _talk(
                server.port,
                [
                    b"EHLO client.example\r\n",
                    b"MAIL FROM:<a@remote.example>\r\n",
                    b"RCPT TO:<ann@[127.0.0.1]>\r\n",
                    b"RCPT TO:<ben@[IPv6:::1]>\r\n",
                    b"RCPT TO:<info@[192.0.2.7]>\r\n",
                    b"RCPT TO:<nobody@[127.0.0.1]>\r\n",
                    b"RCPT TO:<ann%far.example@[127.0.0.1]>\r\n",
                    b"RCPT TO:<ann@[192.0.2.8]>\r\n",
                    b"DATA\r\n",
                    BODY + b".\r\n",
                ],
            )
        assert replies[3] == replies[4] == replies[5] == b"250 2.1.5 Recipient OK\r\n"
        assert replies[6] == replies[7] == b"550 5.1.1 No such user here\r\n"
        assert replies[8] == b"554 5.7.1 Relay access denied\r\n"
        assert replies[10].startswith(b"250 2.0.0")
        # ann (directly and through the alias info) gets one copy, ben one.
        assert len(await store.messages("ann@example.org", "INBOX")) == 1
        assert len(await store.messages("ben@example.org", "INBOX")) == 1
    accounts.close()


async def test_the_address_a_client_reached_is_an_own_literal(tmp_path: Path) -> None:
    # Behind a wildcard listener (0.0.0.0, ::) the configuration names no
    # address; the one the connection reached (its local address) is ours.
    accounts = _accounts(tmp_path)
    async with MaildirStore(tmp_path) as store:
        handler = LocalDeliveryHandler(LocalDelivery(store, accounts), ["example.org"])
        behind_wildcard = Session(
            peer=("198.51.100.9", 40000), server_hostname="mx", local=("203.0.113.5", 25)
        )
        elsewhere = Session(peer=("198.51.100.9", 40001), server_hostname="mx")
        env = Envelope()
        rcpt = handler.handle_RCPT
        assert (await rcpt(behind_wildcard, env, "ann@[203.0.113.5]", {})).code == 250
        assert (await rcpt(behind_wildcard, env, "ann@[IPv6:::ffff:203.0.113.5]", {})).code == 250
        assert (await rcpt(behind_wildcard, env, "ann@[203.0.113.6]", {})).code == 554
        assert (await rcpt(elsewhere, env, "ann@[203.0.113.5]", {})).code == 554
        # The server fills in the address each connection reached.
        seen: list[Session] = []

        class Spy(LocalDeliveryHandler):
            async def handle_EHLO(self, session: Session, hostname: str) -> Reply:
                seen.append(session)
                return await super().handle_EHLO(session, hostname)

        spy = Spy(LocalDelivery(store, accounts), ["example.org"])
        async with SMTPServer(spy, hostname="mx.example.org") as server:
            port = server.port
            replies = await _talk(
                port,
                [
                    b"EHLO client.example\r\n",
                    b"MAIL FROM:<a@remote.example>\r\n",
                    b"RCPT TO:<ann@[127.0.0.1]>\r\n",
                ],
            )
        assert replies[3] == b"250 2.1.5 Recipient OK\r\n"
        assert seen[0].local == ("127.0.0.1", port)
    accounts.close()


def test_one_listening_address_spares_a_getsockname_per_connection() -> None:
    import socket

    from mailcore.smtp.server import _fixed_address

    with socket.socket() as specific, socket.socket() as wildcard:
        specific.bind(("127.0.0.1", 0))
        wildcard.bind(("0.0.0.0", 0))  # bound only, never listening: no traffic
        assert _fixed_address([specific]) == ("127.0.0.1", specific.getsockname()[1])
        assert _fixed_address([wildcard]) is None  # each connection asks its socket
        assert _fixed_address([specific, specific]) is None
