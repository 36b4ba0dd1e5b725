"""The selected mailbox as one session sees it: sequence numbers, flags, \\Recent, updates.

Sequence numbers belong to the session (RFC 9051 2.3.1.2): they only change
when this session is told so with EXISTS and EXPUNGE. Other sessions' changes
arrive from the store's change feed and are queued here; :meth:`View.updates`
turns them into untagged responses at the moments the server may send them.
A message another session expunged stays in the view (a "ghost" with its
last known metadata) until its EXPUNGE can be sent: RFC 9051 7.5.1 forbids
that during FETCH, STORE and SEARCH, where sequence numbers must not move.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

from mailcore.imap.command import SequenceSet
from mailcore.imap.replies import flag_list, flag_list_recent, internal_date
from mailcore.store.base import Change, ChangeKind, MessageMeta

__all__ = ["Index", "View"]


class Index:
    """A mailbox's messages prepared for views: built once, copied per SELECT.

    Args:
        metas: every message, ascending UID.
    """

    def __init__(self, metas: list[MessageMeta]) -> None:
        self.uids = [m.uid for m in metas]
        self.meta = dict(zip(self.uids, metas, strict=True))
        self.flags = {m.uid: m.flags for m in metas}
        sets = set(self.flags.values())
        #: Keywords in use (for the FLAGS response).
        self.keywords = sorted({f for fs in sets for f in fs if not f.startswith("\\")})
        #: Sequence number of the first message without \Seen, or None.
        self.first_unseen = next(
            (i + 1 for i, u in enumerate(self.uids) if "\\Seen" not in self.flags[u]), None
        )


class View:
    """One session's picture of its selected mailbox.

    Args:
        name: the mailbox (store spelling).
        index: every message, from the store at SELECT (copied, not shared).
        recent: UIDs that are \\Recent for this session.
        read_only: EXAMINE (no implicit \\Seen, no flag or expunge writes).
        uidvalidity, uidnext: from the mailbox status.
    """

    def __init__(
        self,
        name: str,
        index: Index,
        *,
        recent: Iterable[int] = (),
        read_only: bool,
        uidvalidity: int,
        uidnext: int,
    ) -> None:
        self.name = name
        self.read_only = read_only
        self.uidvalidity = uidvalidity
        self.uidnext = uidnext
        self.uids: list[int] = index.uids.copy()
        self.meta: dict[int, MessageMeta] = index.meta.copy()
        self.flags: dict[int, frozenset[str]] = index.flags.copy()
        self.recent: set[int] = set(recent)
        #: Saved search result (RFC 5182 ``$``), as UIDs.
        self.saved: list[int] = []
        self._expunged: set[int] = set()  # known gone, not yet announced
        self._flag_changes: dict[int, None] = {}  # ordered set of UIDs
        self._exists_sent = len(self.uids)

    # ---------------------------------------------------------------- numbers
    @property
    def exists(self) -> int:
        """Messages as the session counts them (ghosts included)."""
        return len(self.uids)

    @property
    def last_uid(self) -> int:
        """Highest UID in the view (0 when empty)."""
        return self.uids[-1] if self.uids else 0

    def seq_of(self, uid: int) -> int | None:
        """Sequence number of ``uid``, None if not in the view."""
        i = bisect.bisect_left(self.uids, uid)
        return i + 1 if i < len(self.uids) and self.uids[i] == uid else None

    def resolve(self, seqset: SequenceSet, *, uid: bool) -> list[int]:
        """The UIDs a sequence or UID set names, ascending, without duplicates.

        ``*`` is the last message (or the largest UID); a UID range beyond
        the mailbox simply matches nothing (RFC 9051 6.4.9).
        """
        if seqset.saved:
            known = set(self.uids)
            return [u for u in self.saved if u in known]
        n = len(self.uids)
        if not n:
            return []
        picked: set[int] = set()
        if uid:
            top = self.uids[-1]
            for a, b in seqset.ranges:
                lo, hi = sorted((top if a is None else a, top if b is None else b))
                i = bisect.bisect_left(self.uids, lo)
                j = bisect.bisect_right(self.uids, hi)
                if j - i == n:
                    return list(self.uids)
                picked.update(self.uids[i:j])
        else:
            for a, b in seqset.ranges:
                lo, hi = sorted((n if a is None else a, n if b is None else b))
                lo, hi = max(lo, 1), min(hi, n)
                if lo == 1 and hi == n:
                    return list(self.uids)
                if lo <= hi:
                    picked.update(self.uids[lo - 1 : hi])
        return sorted(picked)

    def seq_valid(self, seqset: SequenceSet) -> bool:
        """Whether every number of a message-sequence set exists (RFC 9051 says BAD otherwise)."""
        if seqset.saved:
            return True
        n = len(self.uids)
        for a, b in seqset.ranges:
            for x in (a, b):
                if x is not None and x > n:
                    return False
            if n == 0 and (a is None or b is None):
                return False
        return True

    def is_ghost(self, uid: int) -> bool:
        """Expunged by another session, not yet announced."""
        return uid in self._expunged

    # ---------------------------------------------------------------- changes
    def add(self, metas: Iterable[MessageMeta], *, recent: Iterable[int] = ()) -> None:
        """New messages (ascending UIDs above :attr:`last_uid`; others are ignored)."""
        for m in metas:
            if m.uid <= self.last_uid:
                continue
            self.uids.append(m.uid)
            self.meta[m.uid] = m
            self.flags[m.uid] = m.flags
            self.uidnext = max(self.uidnext, m.uid + 1)
        self.recent.update(recent)

    def apply(self, changes: Iterable[Change]) -> list[int]:
        """Take feed changes; return UIDs of APPENDED ones the caller must look up."""
        appended: list[int] = []
        for ch in changes:
            if ch.kind is ChangeKind.APPENDED:
                if ch.uid > self.last_uid:
                    appended.append(ch.uid)
            elif ch.kind is ChangeKind.FLAGS:
                known = ch.uid in self.flags and ch.uid not in self._expunged
                if known and self.flags[ch.uid] != ch.flags:
                    self.flags[ch.uid] = ch.flags
                    self._flag_changes[ch.uid] = None
            elif ch.kind is ChangeKind.EXPUNGED and ch.uid in self.flags:
                self._expunged.add(ch.uid)
        return appended

    def set_flags(self, uid: int, flags: frozenset[str]) -> None:
        """This session changed a message's flags (it answers them itself)."""
        if uid in self.flags:
            self.flags[uid] = flags
            self._flag_changes.pop(uid, None)

    def remove(self, uids: Iterable[int]) -> bytes:
        """This session expunged ``uids``: the EXPUNGE responses, and the view without them."""
        out = []
        # Ascending, each number counted after the previous removal (the
        # RFC 9051 6.4.3 example: 3, 4, 7, 11 go as 3, 3, 5, 8).
        for uid in sorted(set(uids)):
            seq = self.seq_of(uid)
            if seq is None:
                continue
            out.append(b"* %d EXPUNGE\r\n" % seq)
            self._drop(seq, uid)
        self._exists_sent = len(self.uids)
        return b"".join(out)

    def _drop(self, seq: int, uid: int) -> None:
        del self.uids[seq - 1]
        self.meta.pop(uid, None)
        self.flags.pop(uid, None)
        self.recent.discard(uid)
        self._expunged.discard(uid)
        self._flag_changes.pop(uid, None)

    def updates(self, *, expunges: bool, rev2: bool) -> bytes:
        """Untagged responses for what changed since the last call.

        ``expunges`` false (FETCH, STORE, SEARCH) keeps EXPUNGEs queued;
        EXISTS and FLAGS are always allowed.
        """
        out: list[bytes] = []
        if expunges and self._expunged:
            for uid in sorted(self._expunged):
                seq = self.seq_of(uid)
                if seq is not None:
                    out.append(b"* %d EXPUNGE\r\n" % seq)
                    self._drop(seq, uid)
            self._expunged.clear()
            self._exists_sent = min(self._exists_sent, len(self.uids))
        if len(self.uids) != self._exists_sent:
            out.append(b"* %d EXISTS\r\n" % len(self.uids))
            if not rev2:
                out.append(b"* %d RECENT\r\n" % len(self.recent))
            self._exists_sent = len(self.uids)
        if self._flag_changes:
            for uid in self._flag_changes:
                seq = self.seq_of(uid)
                if seq is not None:
                    out.append(
                        b"* %d FETCH (UID %d FLAGS %s)\r\n"
                        % (seq, uid, self.flag_bytes(uid, rev2=rev2))
                    )
            self._flag_changes.clear()
        return b"".join(out)

    def flag_bytes(self, uid: int, *, rev2: bool) -> bytes:
        """``(\\Seen ...)`` of a message, with \\Recent for IMAP4rev1 sessions."""
        flags = self.flags.get(uid, frozenset())
        if not rev2 and uid in self.recent:
            return flag_list_recent(flags)
        return flag_list(flags)

    def date_bytes(self, uid: int) -> bytes:
        """INTERNALDATE text of a message (without quotes)."""
        return internal_date(self.meta[uid].internal_date)
