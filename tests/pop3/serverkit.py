"""A running mailcore POP3 server on a real MaildirStore, for the loopback tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import trustme
from argon2 import PasswordHasher

from mailcore.auth.accounts import Accounts
from mailcore.limits import POP3Limits
from mailcore.pop3.server import POP3Server
from mailcore.store import MaildirStore
from tests.helpers import server_tls

USER = "jeff@example.org"
PASSWORD = "pass word"


@dataclass
class Running:
    """Ports and handles of a started server."""

    server: POP3Server
    store: MaildirStore
    port: int
    tls_port: int
    root: Path

    async def deliver(self, message: bytes, account: str = USER) -> int:
        return (await self.store.append(account, "INBOX", message)).uid


@asynccontextmanager
async def running_server(
    root: Path,
    ca: trustme.CA,
    *,
    allow_plaintext_auth: bool = True,
    limits: POP3Limits | None = None,
    store: MaildirStore | None = None,
    login_delay: int | None = None,
) -> AsyncIterator[Running]:
    """Start a POP3 server (plain+STLS and implicit TLS) on a fresh store."""
    own_store = store is None
    if store is None:
        store = MaildirStore(root / "data")
        await store.open()
    await store.create_account(USER)
    # Cheap argon2 parameters: the tests log in many times.
    accounts = Accounts(root, scram=True, cram=True, hasher=PasswordHasher(1, 64, 1))
    if accounts.lookup(USER) is None:
        accounts.add_user(USER, PASSWORD)
    server = POP3Server(
        store,
        accounts,
        hostname="pop.example",
        limits=limits if limits is not None else POP3Limits(failed_login_delay=0.01),
        tls=server_tls(ca),
        allow_plaintext_auth=allow_plaintext_auth,
        apop=True,
        mechanisms=("PLAIN", "SCRAM-SHA-256", "CRAM-MD5"),
        login_delay=login_delay,
    )
    port = await server.listen("127.0.0.1", 0)
    tls_port = await server.listen("127.0.0.1", 0, implicit_tls=True)
    try:
        yield Running(server, store, port, tls_port, root)
    finally:
        await server.close()
        accounts.close()
        if own_store:
            await store.close()
