"""The one mail store interface that POP3, IMAP and local delivery talk to.

An *account* owns *mailboxes*; mailbox names form a hierarchy with the
delimiter ``/``. Every operation a protocol session needs is one awaitable
call, so a backend can run it as one transaction (the embedded Maildir +
SQLite backend in :mod:`mailcore.store.maildir`, later a shared PostgreSQL
one). Messages are addressed by UID within a mailbox; sequence numbers are a
session's business and never reach the store.
"""

from __future__ import annotations

import enum
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import TracebackType
from typing import TypeVar

__all__ = [
    "DELIMITER",
    "SPECIAL_USE",
    "AppendResult",
    "Change",
    "ChangeFeed",
    "ChangeKind",
    "FlagMode",
    "FlagResult",
    "MailboxExists",
    "MailboxInfo",
    "MailboxNotFound",
    "MailboxStatus",
    "MaildropLocked",
    "MessageMeta",
    "NoSuchMessage",
    "Store",
    "StoreError",
    "UIDMapping",
    "match_pattern",
]

_FeedT = TypeVar("_FeedT", bound="ChangeFeed")
_StoreT = TypeVar("_StoreT", bound="Store")

#: Hierarchy delimiter of mailbox names (what IMAP LIST reports).
DELIMITER = "/"

#: RFC 6154 SPECIAL-USE mailboxes created with INBOX for every new account.
SPECIAL_USE: dict[str, str] = {
    "Sent": "\\Sent",
    "Drafts": "\\Drafts",
    "Trash": "\\Trash",
    "Junk": "\\Junk",
    "Archive": "\\Archive",
}


class StoreError(Exception):
    """Base of every error the store raises; protocols map it to a NO reply."""


class MailboxNotFound(StoreError):
    """The account has no mailbox of that name (IMAP ``[NONEXISTENT]``)."""


class MailboxExists(StoreError):
    """CREATE or RENAME onto a name that exists (IMAP ``[ALREADYEXISTS]``)."""


class MailboxNameTooLong(StoreError):
    """A mailbox name the store cannot hold as a directory (IMAP ``[CANNOT]``).

    Maildir++ keeps a whole hierarchy in one directory name (``.a.b.c``), so
    the encoded name must fit the file system's NAME_MAX and the message
    paths below it PATH_MAX; CREATE and RENAME are refused before anything
    is made.
    """


class NoSuchMessage(StoreError):
    """The UID is not (or no longer) in the mailbox."""


class MaildropLocked(StoreError):
    """Another POP3 session holds the maildrop (RFC 1939 ``-ERR`` at PASS)."""


class FlagMode(enum.Enum):
    """How a STORE combines the given flags with the message's flags."""

    ADD = "+"
    REMOVE = "-"
    REPLACE = "="


class ChangeKind(enum.Enum):
    """What happened to a message, as the change feed reports it."""

    APPENDED = "appended"
    FLAGS = "flags"
    EXPUNGED = "expunged"


@dataclass(frozen=True, slots=True)
class MailboxInfo:
    """One LIST entry: name, attributes (``\\HasChildren``, ``\\Noselect``, special use)."""

    name: str
    attributes: frozenset[str]
    subscribed: bool


@dataclass(frozen=True, slots=True)
class MailboxStatus:
    """STATUS counts and the mailbox's UID and MODSEQ state."""

    messages: int
    unseen: int
    uidnext: int
    uidvalidity: int
    highestmodseq: int
    size: int


@dataclass(frozen=True, slots=True)
class MessageMeta:
    """What a FETCH of FLAGS, UID, RFC822.SIZE, INTERNALDATE and MODSEQ needs.

    ``cache`` holds common header fields (``from``, ``to``, ``cc``,
    ``subject``, ``date``, ``message-id``; UTF-8, other octets as surrogate
    escapes) so a listing never opens the message files.
    """

    uid: int
    size: int
    internal_date: float
    flags: frozenset[str]
    modseq: int
    header_size: int
    cache: dict[str, str]


@dataclass(frozen=True, slots=True)
class AppendResult:
    """APPENDUID data (RFC 4315) and the MODSEQ the new message got."""

    uidvalidity: int
    uid: int
    modseq: int


@dataclass(frozen=True, slots=True)
class FlagResult:
    """Outcome of a flag change: the mailbox's new HIGHESTMODSEQ and what changed.

    ``updated`` lists ``(uid, flags, modseq)`` for every message whose flags
    changed; ``failed`` lists UIDs skipped by an UNCHANGEDSINCE test (RFC 7162).
    """

    modseq: int
    updated: tuple[tuple[int, frozenset[str], int], ...]
    failed: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class UIDMapping:
    """COPYUID / MOVE data (RFC 4315): source UIDs and the UIDs they got."""

    uidvalidity: int
    source: tuple[int, ...]
    destination: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Change:
    """One change-feed event for a mailbox.

    ``flags`` is the message's new flag set for ``FLAGS`` and ``APPENDED``
    and empty for ``EXPUNGED``; ``origin`` is the session that made the
    change (a feed never reports its own session's changes).
    """

    kind: ChangeKind
    uid: int
    modseq: int
    flags: frozenset[str]
    origin: str


class ChangeFeed(ABC):
    """An open subscription to one mailbox's changes (for IMAP IDLE and NOOP).

    Use as ``async with store.watch(...) as feed:`` then ``await feed.next()``
    (waits) or ``feed.pending()`` (no wait), or ``async for change in feed``.
    """

    @abstractmethod
    async def next(self) -> Change:
        """Wait for and return the next change made by another session."""

    @abstractmethod
    def pending(self) -> list[Change]:
        """Return (and consume) the changes already known, without waiting."""

    @abstractmethod
    async def close(self) -> None:
        """Stop the subscription."""

    async def __aenter__(self: _FeedT) -> _FeedT:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __aiter__(self) -> AsyncIterator[Change]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Change]:
        while True:
            yield await self.next()


class Store(ABC):
    """The async mail store: accounts, mailboxes, messages, change feeds, locks.

    ``session`` arguments name the calling session; its own changes are not
    echoed back through its change feed.
    """

    # -- lifecycle ---------------------------------------------------------
    @abstractmethod
    async def open(self) -> None:
        """Open the store (and reconcile it with what is on disk)."""

    @abstractmethod
    async def close(self) -> None:
        """Finish pending writes and release every resource."""

    async def __aenter__(self: _StoreT) -> _StoreT:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- accounts and mailboxes -------------------------------------------
    @abstractmethod
    async def create_account(self, account: str) -> None:
        """Create INBOX and the SPECIAL-USE mailboxes of a new account (idempotent)."""

    @abstractmethod
    async def delete_account(self, account: str) -> None:
        """Remove an account with every mailbox and message it owns."""

    @abstractmethod
    async def create_mailbox(self, account: str, name: str) -> MailboxInfo:
        """CREATE a mailbox (and missing superiors); MailboxExists if it exists."""

    @abstractmethod
    async def rename_mailbox(self, account: str, old: str, new: str) -> None:
        """RENAME a mailbox and its inferiors; renaming INBOX moves its messages."""

    @abstractmethod
    async def delete_mailbox(self, account: str, name: str) -> None:
        """DELETE a mailbox; one with inferiors keeps its name as ``\\Noselect``."""

    @abstractmethod
    async def set_subscribed(self, account: str, name: str, subscribed: bool) -> None:
        """SUBSCRIBE / UNSUBSCRIBE."""

    @abstractmethod
    async def list_mailboxes(
        self, account: str, reference: str = "", pattern: str = "*", *, subscribed: bool = False
    ) -> list[MailboxInfo]:
        """LIST (or LSUB with ``subscribed=True``) with IMAP wildcards ``*`` and ``%``."""

    @abstractmethod
    async def status(self, account: str, mailbox: str) -> MailboxStatus:
        """STATUS of one mailbox."""

    # -- messages ------------------------------------------------------------
    @abstractmethod
    async def append(
        self,
        account: str,
        mailbox: str,
        data: bytes,
        *,
        flags: Iterable[str] = (),
        internal_date: float | None = None,
        session: str = "",
    ) -> AppendResult:
        """Store a message durably (file and directory fsynced) and return its UID."""

    @abstractmethod
    async def messages(
        self, account: str, mailbox: str, first: int = 1, last: int | None = None
    ) -> list[MessageMeta]:
        """Metadata of every message with ``first <= uid <= last`` (None: no bound)."""

    @abstractmethod
    def read(
        self,
        account: str,
        mailbox: str,
        uid: int,
        *,
        header_only: bool = False,
        start: int = 0,
        length: int | None = None,
    ) -> AsyncIterator[bytes]:
        """Stream a message (or its header, or a byte range of either) in chunks."""

    async def read_whole(self, account: str, mailbox: str, uid: int, limit: int) -> bytes | None:
        """The whole message in one call if it is at most ``limit`` octets, else None.

        For small messages (a POP3 RETR, an IMAP FETCH of a whole body) one
        call is cheaper than streaming. None means "too big, use
        :meth:`read`". This default streams through :meth:`read`; backends
        override it with a single round trip.
        """
        parts: list[bytes] = []
        total = 0
        chunks = self.read(account, mailbox, uid)
        try:
            async for chunk in chunks:
                total += len(chunk)
                if total > limit:
                    return None
                parts.append(chunk)
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()
        return b"".join(parts)

    async def read_whole_many(
        self, account: str, mailbox: str, uids: Sequence[int], limit: int
    ) -> list[bytes | None]:
        """Several whole messages in one call (a POP3 server reading ahead).

        Entry ``i`` holds the message with UID ``uids[i]``, or None when it is
        bigger than ``limit`` octets or could not be read here (gone or being
        renamed): the caller then uses :meth:`read`, which reports why. This
        default calls :meth:`read_whole` per message; backends override it
        with a single round trip.
        """
        out: list[bytes | None] = []
        for uid in uids:
            try:
                out.append(await self.read_whole(account, mailbox, uid, limit))
            except StoreError:
                out.append(None)
        return out

    @abstractmethod
    async def store_flags(
        self,
        account: str,
        mailbox: str,
        uids: Iterable[int],
        flags: Iterable[str],
        mode: FlagMode,
        *,
        unchanged_since: int | None = None,
        session: str = "",
    ) -> FlagResult:
        """Add, remove or replace flags; changed messages get a new MODSEQ."""

    @abstractmethod
    async def copy(
        self, account: str, mailbox: str, uids: Iterable[int], dest: str, *, session: str = ""
    ) -> UIDMapping:
        """COPY messages to another mailbox of the account."""

    @abstractmethod
    async def move(
        self, account: str, mailbox: str, uids: Iterable[int], dest: str, *, session: str = ""
    ) -> UIDMapping:
        """MOVE messages (RFC 6851): copy, then expunge from the source."""

    @abstractmethod
    async def expunge(
        self, account: str, mailbox: str, uids: Iterable[int] | None = None, *, session: str = ""
    ) -> list[int]:
        """Remove ``\\Deleted`` messages (only those in ``uids`` if given); return their UIDs."""

    async def mailbox_state(self, account: str, mailbox: str) -> tuple[int, int, int]:
        """(UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ); backends may answer without counting messages."""
        st = await self.status(account, mailbox)
        return st.uidvalidity, st.uidnext, st.highestmodseq

    async def message_index(self, account: str, mailbox: str, first: int = 1) -> list[MessageMeta]:
        """:meth:`messages` from UID ``first`` on; backends may leave ``cache`` empty (faster)."""
        return await self.messages(account, mailbox, first)

    async def read_many(
        self, account: str, mailbox: str, uids: list[int], *, header_only: bool = False
    ) -> dict[int, bytes]:
        """Whole messages (or headers) of several UIDs; UIDs not found are left out.

        The default reads them one by one with :meth:`read`; backends override it.
        """
        out: dict[int, bytes] = {}
        for uid in uids:
            try:
                out[uid] = b"".join(
                    [c async for c in self.read(account, mailbox, uid, header_only=header_only)]
                )
            except NoSuchMessage:
                continue
        return out

    # -- sessions -----------------------------------------------------------------
    @abstractmethod
    def watch(self, account: str, mailbox: str, *, session: str = "") -> ChangeFeed:
        """Subscribe to changes of a mailbox made by other sessions and processes."""

    def refresh(self) -> None:  # noqa: B027 - optional: a store that pushes at once needs nothing
        """Hand the changes committed so far to the change feeds now, if the store polls."""

    @abstractmethod
    def maildrop_lock(self, account: str) -> AbstractAsyncContextManager[None]:
        """Exclusive POP3 maildrop lock across processes; MaildropLocked if held."""


def match_pattern(reference: str, pattern: str) -> re.Pattern[str]:
    """Compile an IMAP LIST reference + pattern into a regex over mailbox names.

    ``*`` matches anything, ``%`` anything but the delimiter (RFC 3501 6.3.8).
    INBOX is matched case-insensitively, as RFC 3501 5.1 asks.
    """
    # Like Dovecot, the reference is a plain prefix of the pattern.
    full = reference + pattern
    out = []
    for ch in full:
        if ch == "*":
            out.append(".*")
        elif ch == "%":
            out.append(f"[^{re.escape(DELIMITER)}]*")
        else:
            out.append(re.escape(ch))
    body = "".join(out)
    if full[:5].upper() == "INBOX":
        body = "(?i:" + re.escape("INBOX") + ")" + "".join(out[5:])
    return re.compile(body + r"\Z", re.DOTALL)
