"""mailcore's POP2 server (RFC 937) over loopback TCP on a real store and accounts."""

from __future__ import annotations

import asyncio
from pathlib import Path

from argon2 import PasswordHasher

from mailcore.auth.accounts import Accounts
from mailcore.limits import POP3Limits
from mailcore.pop3.pop2 import POP2Server
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
