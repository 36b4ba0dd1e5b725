"""mailcore's POP2 server (RFC 937) over loopback TCP on a real store and accounts."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from argon2 import PasswordHasher

from mailcore.auth.accounts import Accounts
from mailcore.limits import POP3Limits
from mailcore.pop3.pop2 import POP2Server, _loopback, _Pop2Session
from mailcore.store import MaildirStore

USER, PASSWORD = "postel@example.org", "SECRET"
ONE = b"Subject: one\r\n\r\nfirst\r\n"
TWO = b"Subject: two\r\n\r\n.second\r\n"


async def test_pop2_session_over_tcp(tmp_path: Path) -> None:
    accounts = Accounts(tmp_path, hasher=PasswordHasher(1, 64, 1))
    accounts.add_user(USER, PASSWORD)
    async with MaildirStore(tmp_path / "data") as store:
        await store.create_account(USER)
        for message in (ONE, TWO):
            await store.append(USER, "INBOX", message)
        await store.append(USER, "Archive", b"Subject: old\r\n\r\nold\r\n")
        server = POP2Server(
            store, accounts, hostname="pop2.example", limits=POP3Limits(failed_login_delay=0.01)
        )
        port = await server.listen()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)

        async def say(line: bytes, expect: bytes) -> None:
            writer.write(line + b"\r\n")
            await writer.drain()
            assert await asyncio.wait_for(reader.readexactly(len(expect)), 5) == expect

        assert await reader.readline() == b"+ POP2 pop2.example server ready\r\n"
        await say(b"HELO postel@example.org SECRET", b"#2 messages in folder\r\n")
        await say(b"READ", b"=%d characters in message 1\r\n" % len(ONE))
        await say(b"RETR", ONE)
        await say(b"ACKD", b"=%d characters in message 2\r\n" % len(TWO))
        await say(b"RETR", TWO)
        await say(b"ACKS", b"=0 no more messages\r\n")
        await say(b"FOLD Archive", b"#1 messages in folder\r\n")
        # The ACKD in INBOX was applied when the folder was left.
        assert [m.size for m in await store.messages(USER, "INBOX")] == [len(TWO)]
        await say(b"READ 1", b"=21 characters in message 1\r\n")
        await say(b"FOLD Nonexistent", b"#0 messages in folder\r\n")
        await say(b"QUIT", b"+ Bye\r\n")
        assert await reader.read() == b""
        writer.close()
        await writer.wait_closed()

        # A wrong password: "-" and the server closes.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await reader.readline()
        writer.write(b"HELO postel@example.org WRONG\r\n")
        await writer.drain()
        assert await reader.read() == b"- Authentication failed\r\n"
        writer.close()
        await writer.wait_closed()
        await server.close()
    accounts.close()


async def test_pop2_connection_limit_and_plaintext_rule(tmp_path: Path) -> None:
    accounts = Accounts(tmp_path, hasher=PasswordHasher(1, 64, 1))
    accounts.add_user(USER, PASSWORD)
    async with MaildirStore(tmp_path / "data") as store:
        await store.create_account(USER)
        server = POP2Server(
            store,
            accounts,
            hostname="pop2.example",
            limits=POP3Limits(failed_login_delay=0.01, connections=2),
            allow_plaintext_login=False,
        )
        port = await server.listen()
        # Two sessions fill the server; the third is refused at once.
        first = await asyncio.open_connection("127.0.0.1", port)
        second = await asyncio.open_connection("127.0.0.1", port)
        for reader, _ in (first, second):
            assert (await reader.readline()).startswith(b"+ POP2")
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.read(), 5) == (
            b"- Too many connections, try again later\r\n"
        )
        writer.close()
        # Plaintext logins are off, but this client is on loopback: it logs in.
        reader, writer = first
        writer.write(b"HELO postel@example.org SECRET\r\n")
        assert await asyncio.wait_for(reader.readline(), 5) == b"#0 messages in folder\r\n"
        for _, w in (first, second):
            w.close()
        await server.close()
    accounts.close()


async def test_pop2_plaintext_login_refused_off_loopback(tmp_path: Path) -> None:
    # A peer that is not on loopback (here a socket pair, which has no IP
    # address at all) never gets its password checked when plaintext is off.
    accounts = Accounts(tmp_path, hasher=PasswordHasher(1, 64, 1))
    accounts.add_user(USER, PASSWORD)
    async with MaildirStore(tmp_path / "data") as store:
        await store.create_account(USER)
        server = POP2Server(store, accounts, allow_plaintext_login=False)
        ours, theirs = socket.socketpair()
        s_reader, s_writer = await asyncio.open_connection(sock=ours)
        c_reader, c_writer = await asyncio.open_connection(sock=theirs)
        session = asyncio.create_task(_Pop2Session(server, s_reader, s_writer).run())
        assert (await c_reader.readline()).startswith(b"+ POP2")
        c_writer.write(b"HELO postel@example.org SECRET\r\n")
        assert await asyncio.wait_for(c_reader.read(), 5) == (
            b"- Plaintext passwords are not accepted here\r\n"
        )
        await session
        c_writer.close()
    accounts.close()


def test_loopback_addresses() -> None:
    assert _loopback("127.0.0.1") and _loopback("::1") and _loopback("::ffff:127.0.0.5")
    assert not _loopback("192.0.2.1") and not _loopback("?") and not _loopback("")
    assert _loopback("::1%lo")
