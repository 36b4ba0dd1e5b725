"""Mail storage behind one async interface (:class:`Store`) and its embedded backend.

``MaildirStore`` keeps each mailbox as a standard Maildir (mutt, Dovecot and
Python's :mod:`mailbox` read it) with a SQLite index for UIDs, flags and
MODSEQs; see :mod:`mailcore.store.maildir`.
"""

from mailcore.store.base import (
    AppendResult,
    Change,
    ChangeFeed,
    ChangeKind,
    FlagMode,
    FlagResult,
    MailboxExists,
    MailboxInfo,
    MailboxNotFound,
    MailboxStatus,
    MaildropLocked,
    MessageMeta,
    NoSuchMessage,
    Store,
    StoreError,
    UIDMapping,
)
from mailcore.store.maildir import MaildirStore, reindex

__all__ = [
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
    "MaildirStore",
    "MaildropLocked",
    "MessageMeta",
    "NoSuchMessage",
    "Store",
    "StoreError",
    "UIDMapping",
    "reindex",
]
