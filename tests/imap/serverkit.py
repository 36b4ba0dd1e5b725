"""A running mailcore IMAP server on a real MaildirStore, for the loopback tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import trustme
from argon2 import PasswordHasher

from mailcore.auth.accounts import Accounts
from mailcore.imap.server import IMAPServer
from mailcore.limits import ImapLimits
from mailcore.store import MaildirStore
from tests.helpers import server_tls
from tests.imap.wire import close_all

USER = "jeff@example.org"
PASSWORD = "pass word"


@dataclass
class Running:
    """Ports and handles of a started server."""

    server: IMAPServer
    store: MaildirStore
    accounts: Accounts
    port: int
    tls_port: int
    root: Path

    async def deliver(self, message: bytes, mailbox: str = "INBOX", account: str = USER) -> int:
        return (await self.store.append(account, mailbox, message)).uid

    async def fill_for_sync(self, message: Callable[[int, str], bytes], count: int) -> None:
        """What the sync-tool tests start from: ``count`` messages in INBOX
        (``message(i, "inbox")``) and three in ``Work/2024`` (``message(i, "work")``)."""
        for start in range(0, count, 250):
            await asyncio.gather(
                *(self.deliver(message(i, "inbox")) for i in range(start, min(start + 250, count)))
            )
        await self.store.create_mailbox(USER, "Work/2024")
        for i in range(3):
            await self.deliver(message(i, "work"), "Work/2024")


@asynccontextmanager
async def running_server(
    root: Path,
    ca: trustme.CA,
    *,
    allow_plaintext_login: bool = True,
    limits: ImapLimits | None = None,
) -> AsyncIterator[Running]:
    """Start an IMAP server (plain+STARTTLS and implicit TLS) on a fresh store."""
    store = MaildirStore(root / "data", poll_interval=0.01)
    await store.open()
    await store.create_account(USER)
    accounts = Accounts(root, scram=True, cram=True, hasher=PasswordHasher(1, 64, 1))
    if accounts.lookup(USER) is None:
        accounts.add_user(USER, PASSWORD)
    server = IMAPServer(
        store,
        accounts,
        hostname="imap.example",
        limits=limits if limits is not None else ImapLimits(failed_login_delay=0.01),
        tls=server_tls(ca),
        allow_plaintext_login=allow_plaintext_login,
        mechanisms=("PLAIN", "LOGIN", "SCRAM-SHA-256", "CRAM-MD5"),
    )
    port = await server.listen("127.0.0.1", 0)
    tls_port = await server.listen("127.0.0.1", 0, implicit_tls=True)
    try:
        yield Running(server, store, accounts, port, tls_port, root)
    finally:
        await close_all()
        await server.close()
        accounts.close()
        await store.close()
