"""Local delivery: resolve local users and aliases, deliver with Delivered-To."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from argon2 import PasswordHasher

from mailcore.auth.accounts import Accounts
from mailcore.delivery import LocalDelivery
from mailcore.store import MaildirStore

MSG = b"From: a@remote.example\r\nSubject: hi\r\n\r\nline 1\r\n.dot stays\r\n\r\n"


async def test_resolve_and_deliver_to_each_account_once(tmp_path: Path) -> None:
    accounts = Accounts(tmp_path, hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    accounts.add_user("ann@example.org", "pw")
    accounts.add_user("ben@example.org", "pw")
    accounts.add_alias("info@example.org", "ann@example.org")
    async with MaildirStore(tmp_path) as store:
        await store.create_account("ann@example.org")
        # ben has no Maildir yet: delivery creates it.
        local = LocalDelivery(store, accounts)
        assert await local.resolve("INFO@example.org") == "ann@example.org"
        assert await local.resolve("ben@example.org") == "ben@example.org"
        assert await local.resolve("nobody@example.org") is None
        assert await local.resolve("ann@elsewhere.example") is None
        rcpts = [
            await local.resolve(a)
            for a in ("ann@example.org", "info@example.org", "ben@example.org")
        ]
        await local.deliver([r for r in rcpts if r is not None], MSG)
        for account in ("ann@example.org", "ben@example.org"):
            metas = await store.messages(account, "INBOX")
            assert len(metas) == 1
            data = b"".join([c async for c in store.read(account, "INBOX", metas[0].uid)])
            assert data == f"Delivered-To: {account}\r\n".encode() + MSG
            # Durable means: a whole file in new/, nothing left in tmp/.
            inbox = tmp_path / "mail" / account
            assert len(os.listdir(inbox / "new")) == 1 and os.listdir(inbox / "tmp") == []
    accounts.close()


async def test_concurrent_first_deliveries_to_a_new_account(tmp_path: Path) -> None:
    # The first messages for an account without a Maildir arrive together,
    # through two stores on one data directory (two SMTP processes): one
    # delivery makes the Maildir while others' files find no directory yet.
    # Every message must be stored (a 451 here once cost a bench run).
    accounts = Accounts(tmp_path, hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    accounts.add_user("new@example.org", "pw")

    async def one(local: LocalDelivery, n: int, stagger: float) -> None:
        await asyncio.sleep(n * stagger)
        await local.deliver(["new@example.org"], MSG + b"%d\r\n" % n)

    for round_ in range(4):
        data = tmp_path / f"data{round_}"
        async with MaildirStore(data) as first, MaildirStore(data) as second:
            pair = (LocalDelivery(first, accounts), LocalDelivery(second, accounts))
            await asyncio.gather(*(one(pair[n % 2], n, 0.0005 * round_) for n in range(20)))
            assert len(await first.messages("new@example.org", "INBOX")) == 20
    accounts.close()
