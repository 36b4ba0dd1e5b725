"""Local delivery: from an accepted SMTP transaction into each recipient's INBOX.

The SMTP server asks :meth:`LocalDelivery.resolve` at RCPT (None means
550 5.1.1) and calls :meth:`LocalDelivery.deliver` after the final dot; it
answers 250 only when ``deliver`` returned, that is when every recipient's
copy is fsynced and indexed.
"""

from __future__ import annotations

import asyncio

from mailcore.auth.accounts import Accounts
from mailcore.store.base import MailboxNotFound, Store

__all__ = ["LocalDelivery"]


class LocalDelivery:
    """Deliver to local accounts (and their aliases) through a :class:`Store`."""

    def __init__(self, store: Store, accounts: Accounts, *, mailbox: str = "INBOX") -> None:
        self.store = store
        self.accounts = accounts
        self.mailbox = mailbox

    async def resolve(self, address: str) -> str | None:
        """Canonical account for a local user or alias, else None."""
        return await asyncio.to_thread(self.accounts.lookup, address)

    async def deliver(self, accounts: list[str], data: bytes) -> None:
        """Store ``data`` in every account's INBOX with a ``Delivered-To:`` header.

        One copy per distinct account, written concurrently so they share the
        store's group commit; returns only when all are durable, raises if
        any failed (the caller then answers 451 and the client retries).
        """
        unique = list(dict.fromkeys(accounts))
        if len(unique) == 1:
            await self._deliver_one(unique[0], data)
            return
        results = await asyncio.gather(
            *(self._deliver_one(account, data) for account in unique), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _deliver_one(self, account: str, data: bytes) -> None:
        # RFC 9228: Delivered-To is prepended, like a trace field; the
        # message bytes after it are kept exactly.
        header = f"Delivered-To: {account}\r\n".encode()
        try:
            await self.store.append(account, self.mailbox, header + data)
        except MailboxNotFound:
            # An account added while the store was not running has no
            # Maildir yet: create it (idempotent) and deliver.
            await self.store.create_account(account)
            await self.store.append(account, self.mailbox, header + data)
