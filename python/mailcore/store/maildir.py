"""The embedded store: Maildir++ folders on disk plus a SQLite index.

Threads, not the event loop, touch the disk and SQLite, but for two short
reads (below):

* every index change runs in the single writer thread of
  :class:`~mailcore.store.index.Writer`, which group-commits them; the
  files of new messages are written and fsynced by the same batch, several
  fsyncs in flight, with the GIL released (the Rust core does it);
* whole messages are read in a small pool of I/O threads;
* reads use a small pool of read-only connections (WAL readers never block
  the writer);
* one poller connection checks ``PRAGMA data_version`` every
  ``poll_interval`` seconds (and at once when this process commits) and
  hands new rows of the ``changes`` table to the change feeds — that is how
  a session learns of changes made by another process. It runs on the event
  loop's thread, never waits for a lock, and reads at most a page of rows per
  turn; a session catching up after new mail reads its first rows of the
  message index there too. Both are a few B-tree pages hot in the cache, and
  handing them to a thread and back cost more than the reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import BinaryIO, TypeVar

from mailcore.store import ops, reconcile
from mailcore.store.base import (
    AppendResult,
    Change,
    ChangeFeed,
    ChangeKind,
    FlagMode,
    FlagResult,
    MailboxInfo,
    MailboxStatus,
    MaildropLocked,
    MessageMeta,
    NoSuchMessage,
    Store,
    StoreError,
    UIDMapping,
    match_pattern,
)
from mailcore.store.files import header_cache_json, header_size, normalize_flags, unique_name
from mailcore.store.index import Txn, Writer, connect

__all__ = ["INDEX_FILE", "MaildirStore", "reindex"]

T = TypeVar("T")

#: File name of the index inside the data directory.
INDEX_FILE = "index.sqlite"
#: Change rows one poll reads at most (on the event loop's thread; a longer
#: backlog is read in pages of this size, one per loop turn).
_POLL_ROWS = 512
#: Rows of a catching-up message_index() read on the event loop's thread.
_INLINE_ROWS = 64
_READ_CHUNK = 256 * 1024


class _Feed(ChangeFeed):
    def __init__(self, store: MaildirStore, key: tuple[str, str], session: str) -> None:
        self._store = store
        self.key = key
        self.session = session
        self._queue: asyncio.Queue[Change] = asyncio.Queue()

    def push(self, change: Change) -> None:
        if not self.session or change.origin != self.session:
            self._queue.put_nowait(change)

    async def next(self) -> Change:
        return await self._queue.get()

    def pending(self) -> list[Change]:
        out = []
        while not self._queue.empty():
            out.append(self._queue.get_nowait())
        return out

    async def close(self) -> None:
        self._store._unwatch(self)


class MaildirStore(Store):
    """Maildir + SQLite index under one data directory (``DIR/mail``, ``DIR/index.sqlite``).

    Several processes may open the same directory: SQLite serialises their
    writes, and each one's change feeds see the others' changes.
    ``io_threads`` bounds the threads that read whole messages (POP3 RETR,
    IMAP FETCH of bodies); appends have threads of their own (see
    :class:`~mailcore.store.index.Writer`).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        poll_interval: float = 0.025,
        io_threads: int = 8,
        reconcile_on_open: bool = True,
    ) -> None:
        self.root = Path(root)
        self.layout = ops.Layout(str(self.root))
        self.poll_interval = poll_interval
        self._io_threads = io_threads
        self._reconcile_on_open = reconcile_on_open
        self._writer: Writer | None = None
        self._io: ThreadPoolExecutor | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._read_conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._poll_conn: sqlite3.Connection | None = None
        self._poll_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._feeds: dict[tuple[str, str], set[_Feed]] = {}
        self._last_seq = 0
        # PRAGMA data_version at the last look for changes (None: look again).
        self._poll_version: int | None = None
        self._closing = False
        self.instance = uuid.uuid4().hex

    # -- lifecycle -------------------------------------------------------------
    async def open(self) -> None:
        """Create the data directory if needed, reconcile, start the poller."""
        self._loop = asyncio.get_running_loop()
        self._closing = False
        self._poll_version = None
        self._wake = asyncio.Event()
        (self.root / "mail").mkdir(parents=True, exist_ok=True)
        (self.root / "locks").mkdir(exist_ok=True)
        self._io = ThreadPoolExecutor(self._io_threads, thread_name_prefix="mailcore-store-io")
        self._readers = ThreadPoolExecutor(4, thread_name_prefix="mailcore-store-read")
        self._writer = await asyncio.to_thread(
            Writer, self.root / INDEX_FILE, self._notify_threadsafe
        )
        if self._reconcile_on_open:
            await self.reconcile()
        self._poll_conn = await asyncio.to_thread(connect, self.root / INDEX_FILE, readonly=True)
        # Used on the event loop's thread (see _poll): never wait for a lock.
        self._poll_conn.execute("PRAGMA busy_timeout=0")
        row = await self._on_poll(lambda c: c.execute("SELECT max(seq) FROM changes").fetchone())
        self._last_seq = int(row[0] or 0)
        self._poll_task = asyncio.create_task(self._poll())

    async def close(self) -> None:
        """Stop the poller, finish queued writes, close every connection."""
        if self._poll_task is not None:
            self._closing = True
            if self._wake is not None:
                self._wake.set()
            await self._poll_task
            self._poll_task = None
        if self._writer is not None:
            await asyncio.to_thread(self._writer.close)
            self._writer = None
        for pool in (self._io, self._readers):
            if pool is not None:
                pool.shutdown(wait=True)
        self._io = self._readers = None
        with self._conns_lock:
            for conn in self._read_conns:
                conn.close()
            self._read_conns.clear()
        if self._poll_conn is not None:
            self._poll_conn.close()
            self._poll_conn = None

    def _notify_threadsafe(self) -> None:
        if not self._feeds:
            # Nobody in this process waits for changes: the regular poll
            # (every poll_interval) is enough, and an immediate one after
            # every commit would cost each append an extra event-loop wake-up
            # and a thread hop.
            return
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(wake.set)

    def poke(self) -> None:
        """Look for changes now: another process (an SMTP worker) has just committed.

        Call on the store's event loop. Without change feeds there is nobody
        to tell, and the regular poll is enough.
        """
        if self._feeds and self._wake is not None:
            self._wake.set()

    # -- plumbing ----------------------------------------------------------------
    async def _write(self, fn: Callable[[Txn], T]) -> T:
        if self._writer is None:
            raise StoreError("store is not open")
        return await self._writer.run(fn)

    def _reader_conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.root / INDEX_FILE, readonly=True)
            self._local.conn = conn
            with self._conns_lock:
                self._read_conns.append(conn)
        return conn

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._readers is None:
            raise StoreError("store is not open")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, lambda: fn(self._reader_conn()))

    async def _on_poll(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._poll_conn
        if conn is None or self._readers is None:
            raise StoreError("store is not open")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, lambda: fn(conn))

    # -- accounts and mailboxes -------------------------------------------------------
    async def reconcile(self, account: str | None = None) -> int:
        """Index files other tools added, drop vanished ones; return how many changes."""
        if account is None:
            return await self._write(lambda txn: reconcile.reconcile_all(txn, self.layout))
        return await self._write(lambda txn: reconcile.reconcile_account(txn, self.layout, account))

    async def create_account(self, account: str) -> None:
        """Create INBOX and the SPECIAL-USE mailboxes (idempotent)."""
        await self._write(lambda txn: ops.create_account(txn, self.layout, account))

    async def delete_account(self, account: str) -> None:
        """Remove the account's mailboxes and messages."""
        await self._write(lambda txn: ops.delete_account(txn, self.layout, account))

    async def create_mailbox(self, account: str, name: str) -> MailboxInfo:
        """CREATE a mailbox and missing superiors."""
        row = await self._write(lambda txn: ops.create_mailbox(txn, self.layout, account, name))
        return MailboxInfo(row.name, frozenset({"\\HasNoChildren"}), row.subscribed)

    async def rename_mailbox(self, account: str, old: str, new: str) -> None:
        """RENAME (INBOX: its messages move to the new mailbox, INBOX stays)."""
        await self._write(lambda txn: ops.rename_mailbox(txn, self.layout, account, old, new))

    async def delete_mailbox(self, account: str, name: str) -> None:
        """DELETE a mailbox (``\\Noselect`` if it has inferiors)."""
        await self._write(lambda txn: ops.delete_mailbox(txn, self.layout, account, name))

    async def set_subscribed(self, account: str, name: str, subscribed: bool) -> None:
        """SUBSCRIBE / UNSUBSCRIBE."""
        await self._write(
            lambda txn: ops.set_subscribed(txn, self.layout, account, name, subscribed)
        )

    async def list_mailboxes(
        self, account: str, reference: str = "", pattern: str = "*", *, subscribed: bool = False
    ) -> list[MailboxInfo]:
        """LIST / LSUB with ``*`` and ``%``."""

        def query(conn: sqlite3.Connection) -> tuple[list[ops.MailboxRow], list[str]]:
            orphans = ops.orphan_subscriptions(conn, account) if subscribed else []
            return ops.all_mailboxes(conn, account), orphans

        rows, orphans = await self._read(query)
        regex = match_pattern(reference, pattern)
        names = {row.name for row in rows}
        out = []
        for row in rows:
            if not regex.match(row.name) or (subscribed and not row.subscribed):
                continue
            has_children = any(n.startswith(row.name + "/") for n in names)
            attrs = {"\\HasChildren" if has_children else "\\HasNoChildren"}
            if row.noselect:
                attrs.add("\\Noselect")
            if row.special:
                attrs.add(row.special)
            out.append(MailboxInfo(row.name, frozenset(attrs), row.subscribed))
        # Subscribed names whose mailbox was deleted (RFC 5258 3.4, RFC 9051 7.3.1).
        out += [
            MailboxInfo(name, frozenset({"\\NonExistent"}), True)
            for name in orphans
            if regex.match(name)
        ]
        return out

    async def status(self, account: str, mailbox: str) -> MailboxStatus:
        """Counts and UID/MODSEQ state in one query."""

        def query(conn: sqlite3.Connection) -> MailboxStatus:
            row = ops.get_mailbox(conn, account, mailbox)
            count, unseen, size = conn.execute(
                "SELECT count(*), coalesce(sum(instr(' ' || flags || ' ', ' \\Seen ') = 0), 0),"
                " coalesce(sum(size), 0) FROM messages WHERE mailbox=?",
                (row.id,),
            ).fetchone()
            return MailboxStatus(
                int(count), int(unseen), row.uidnext, row.uidvalidity, row.highestmodseq, int(size)
            )

        return await self._read(query)

    # -- messages ------------------------------------------------------------------------
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
        """Write + fsync, rename, fsync the directory and index, in one group commit.

        The writer thread writes and fsyncs the file in ``tmp/`` together
        with every other append of its batch, then gives it its UID, renames
        it into ``new/`` (or ``cur/`` with flags), commits the index and
        fsyncs the directory. Nothing is reported before both. A caller cancelled
        before the batch took the append leaves no file behind.
        """
        if self._writer is None:
            raise StoreError("store is not open")
        name = ops.canonical_name(mailbox)
        maildir = self.layout.mailbox_dir(account, name)
        raw = data if isinstance(data, bytes) else bytes(data)
        hsize = header_size(raw)
        base = unique_name(len(raw))
        pending = ops.PendingAppend(
            account,
            name,
            maildir,
            base,
            len(raw),
            hsize,
            normalize_flags(flags),
            time.time() if internal_date is None else internal_date,
            header_cache_json(raw, hsize),
            session,
        )
        target = (os.path.join(maildir, "tmp", base), raw)
        try:
            validity, uid, modseq = await self._writer.run_grouped(
                ops.commit_appends, pending, file=target
            )
        except FileNotFoundError:
            # No such Maildir: let the index say whether the mailbox exists
            # (MailboxNotFound if not). If it does, it was being made when
            # the file was written (the first deliveries to a new account
            # arrive together, in this process or another): once more, now
            # that its directories are there.
            await self._read(lambda conn: ops.get_mailbox(conn, account, name))
            validity, uid, modseq = await self._writer.run_grouped(
                ops.commit_appends, pending, file=target
            )
        return AppendResult(validity, uid, modseq)

    async def messages(
        self, account: str, mailbox: str, first: int = 1, last: int | None = None
    ) -> list[MessageMeta]:
        """UID, size, date, flags, MODSEQ and cached headers of a UID range, one query."""
        hi = last if last is not None else 2**63 - 1

        def query(conn: sqlite3.Connection) -> list[MessageMeta]:
            row = ops.get_mailbox(conn, account, mailbox)
            cur = conn.execute(
                "SELECT uid, size, internaldate, flags, modseq, hdr_size, cache FROM messages"
                " WHERE mailbox=? AND uid BETWEEN ? AND ? ORDER BY uid",
                (row.id, first, hi),
            )
            return [
                MessageMeta(u, s, d, frozenset(f.split()), m, h, json.loads(c))
                for u, s, d, f, m, h, c in cur
            ]

        return await self._read(query)

    @staticmethod
    def _locate_sync(
        conn: sqlite3.Connection, account: str, mailbox: str, uid: int
    ) -> tuple[str, int, int]:
        row = ops.get_mailbox(conn, account, mailbox)
        found = conn.execute(
            "SELECT path, size, hdr_size FROM messages WHERE mailbox=? AND uid=?",
            (row.id, uid),
        ).fetchone()
        if found is None:
            raise NoSuchMessage(f"no message with UID {uid}")
        return os.path.join(row.dir, found[0]), int(found[1]), int(found[2])

    async def _locate(self, account: str, mailbox: str, uid: int) -> tuple[str, int, int]:
        return await self._read(lambda conn: self._locate_sync(conn, account, mailbox, uid))

    async def read(
        self,
        account: str,
        mailbox: str,
        uid: int,
        *,
        header_only: bool = False,
        start: int = 0,
        length: int | None = None,
    ) -> AsyncIterator[bytes]:
        """Stream the message (or header) bytes ``[start, start+length)`` in 256 KiB chunks."""

        def locate_and_open(conn: sqlite3.Connection) -> tuple[BinaryIO | None, int, int]:
            # Index lookup, open and seek in one thread hop: each hop costs
            # more event-loop time than the work it does.
            path, size, hsize = self._locate_sync(conn, account, mailbox, uid)
            try:
                fh = open(path, "rb")  # noqa: SIM115 - closed by the generator below
            except FileNotFoundError:
                return None, size, hsize
            if start:
                fh.seek(start)
            return fh, size, hsize

        fh: BinaryIO | None = None
        for _attempt in range(3):
            fh, size, hsize = await self._read(locate_and_open)
            if fh is not None:
                break
            # A flag change by another session renamed it; look again.
            await self.reconcile(account)
        if fh is None:
            raise NoSuchMessage(f"message {uid} vanished")
        end = hsize if header_only else size
        if length is not None:
            end = min(end, start + length)
        try:
            pos = start
            while pos < end:
                chunk = await asyncio.to_thread(fh.read, min(_READ_CHUNK, end - pos))
                if not chunk:
                    break
                pos += len(chunk)
                yield chunk
        finally:
            fh.close()

    async def read_whole(self, account: str, mailbox: str, uid: int, limit: int) -> bytes | None:
        """The whole message if at most ``limit`` octets: lookup, open and read in one job."""

        def job(conn: sqlite3.Connection) -> tuple[bool, bytes | None]:
            path, size, _hsize = self._locate_sync(conn, account, mailbox, uid)
            if size > limit:
                return True, None
            try:
                with open(path, "rb") as fh:
                    return True, fh.read(size)
            except FileNotFoundError:
                return False, None

        for _attempt in range(3):
            found, data = await self._read(job)
            if found:
                return data
            # A flag change by another session renamed it; look again.
            await self.reconcile(account)
        raise NoSuchMessage(f"message {uid} vanished")

    async def read_whole_many(
        self, account: str, mailbox: str, uids: Sequence[int], limit: int
    ) -> list[bytes | None]:
        """Several whole messages in one job: one mailbox lookup, one query, the reads."""

        def job(conn: sqlite3.Connection) -> list[bytes | None]:
            row = ops.get_mailbox(conn, account, mailbox)
            found: dict[int, tuple[str, int]] = {}
            wanted = sorted(set(uids))
            for i in range(0, len(wanted), 500):
                part = wanted[i : i + 500]
                marks = ",".join("?" * len(part))
                cur = conn.execute(
                    f"SELECT uid, path, size FROM messages WHERE mailbox=? AND uid IN ({marks})",
                    (row.id, *part),
                )
                found.update((int(u), (str(p), int(s))) for u, p, s in cur)
            out: list[bytes | None] = []
            for uid in uids:
                entry = found.get(uid)
                if entry is None or entry[1] > limit:
                    out.append(None)
                    continue
                try:
                    with open(os.path.join(row.dir, entry[0]), "rb") as fh:
                        out.append(fh.read(entry[1]))
                except FileNotFoundError:
                    # Renamed by a flag change meanwhile: read() looks again.
                    out.append(None)
            return out

        return await self._read(job)

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
        """Change flags; the files are renamed so other Maildir tools see them too."""
        wanted, fset = list(uids), normalize_flags(flags)
        return await self._write(
            lambda txn: ops.store_flags(
                txn,
                account,
                mailbox,
                wanted,
                fset,
                mode=mode,
                unchanged_since=unchanged_since,
                origin=session,
            )
        )

    async def copy(
        self, account: str, mailbox: str, uids: Iterable[int], dest: str, *, session: str = ""
    ) -> UIDMapping:
        """COPY by hard link (same bytes, no new write)."""
        wanted = list(uids)
        return await self._write(
            lambda txn: ops.transfer(
                txn, self.layout, account, mailbox, wanted, dest=dest, move=False, origin=session
            )
        )

    async def move(
        self, account: str, mailbox: str, uids: Iterable[int], dest: str, *, session: str = ""
    ) -> UIDMapping:
        """MOVE by rename, atomically with the index change."""
        wanted = list(uids)
        return await self._write(
            lambda txn: ops.transfer(
                txn, self.layout, account, mailbox, wanted, dest=dest, move=True, origin=session
            )
        )

    async def expunge(
        self, account: str, mailbox: str, uids: Iterable[int] | None = None, *, session: str = ""
    ) -> list[int]:
        """Remove ``\\Deleted`` messages; return their UIDs."""
        wanted = None if uids is None else list(uids)
        return await self._write(lambda txn: ops.expunge(txn, account, mailbox, wanted, session))

    # -- change feed ---------------------------------------------------------------------
    def watch(self, account: str, mailbox: str, *, session: str = "") -> ChangeFeed:
        """Subscribe to a mailbox's changes by other sessions (any process)."""
        key = (account, ops.canonical_name(mailbox))
        feed = _Feed(self, key, session)
        self._feeds.setdefault(key, set()).add(feed)
        return feed

    def _unwatch(self, feed: _Feed) -> None:
        feeds = self._feeds.get(feed.key)
        if feeds is not None:
            feeds.discard(feed)
            if not feeds:
                del self._feeds[feed.key]

    def _fetch_changes(
        self, conn: sqlite3.Connection, version: int | None
    ) -> tuple[int | None, list[tuple[int, str, str, str, int, int, str, str]]]:
        """The data_version and the next changes (at most _POLL_ROWS of them).

        A full page returns ``None`` for the version: there may be more,
        and the next poll must look again whatever the version says.
        """
        # data_version changes whenever another connection (our writer thread
        # or another process) committed: the cheap test, run every poll.
        now = int(conn.execute("PRAGMA data_version").fetchone()[0])
        if now == version:
            return now, []
        rows = conn.execute(
            "SELECT c.seq, m.account, m.name, c.kind, c.uid, c.modseq, c.flags, c.origin"
            " FROM changes c LEFT JOIN mailboxes m ON m.id = c.mailbox"
            " WHERE c.seq > ? ORDER BY c.seq LIMIT ?",
            (self._last_seq, _POLL_ROWS),
        ).fetchall()
        return (None if len(rows) == _POLL_ROWS else now), rows

    def _skip_changes(self, version: int | None) -> int | None:
        """Move past every change so far without reading them; the new data_version."""
        conn = self._poll_conn
        if conn is None:
            return version
        try:
            now = int(conn.execute("PRAGMA data_version").fetchone()[0])
            if now != version:
                row = conn.execute("SELECT max(seq) FROM changes").fetchone()
                self._last_seq = max(self._last_seq, int(row[0] or 0))
        except sqlite3.Error:
            return None  # busy (the poll connection does not wait): look again next time
        return now

    def refresh(self) -> None:
        """Look for changes now and hand them to the change feeds (on this thread).

        What every poll does; a session calls it before it reports changes
        (IMAP NOOP, CHECK, IDLE), so that a message committed before the
        command, by any process, is reported by it.
        """
        if self._closing:
            return
        if not self._feeds:
            # Nobody in this process waits for changes (an SMTP worker, or
            # no IMAP session selected): only keep the position.
            self._poll_version = self._skip_changes(self._poll_version)
            return
        conn = self._poll_conn
        if conn is None:
            return
        try:
            # On this thread: a data_version read and a bounded read of the
            # changes table's tail (hot in the page cache) cost less than
            # handing them to a thread and back, which is what an IMAP IDLE
            # session waited for after every commit (see _POLL_ROWS).
            version, rows = self._fetch_changes(conn, self._poll_version)
        except sqlite3.Error:
            return  # a busy or locked moment; the next poll tries again
        self._poll_version = version
        if version is None and self._wake is not None:
            self._wake.set()  # a full page: read on at once
        for seq, account, name, kind, uid, modseq, flags, origin in rows:
            self._last_seq = max(self._last_seq, int(seq))
            if account is None:
                continue
            feeds = self._feeds.get((account, name))
            if not feeds:
                continue
            change = Change(
                ChangeKind(kind), int(uid), int(modseq), frozenset(flags.split()), origin
            )
            for feed in list(feeds):
                feed.push(change)

    async def _poll(self) -> None:
        wake = self._wake
        assert wake is not None  # set in open(), before this task starts
        loop = asyncio.get_running_loop()
        while not self._closing:
            # Wake after poll_interval, or at once when this process commits.
            # (No asyncio.wait_for: on 3.10/3.11 it can swallow a cancellation.)
            timer = loop.call_later(self.poll_interval, wake.set)
            await wake.wait()
            timer.cancel()
            wake.clear()
            self.refresh()

    async def mailbox_state(self, account: str, mailbox: str) -> tuple[int, int, int]:
        """(UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ) from the mailbox row alone, no message scan.

        Every append, flag change and expunge raises HIGHESTMODSEQ, so equal
        states mean an unchanged mailbox (IMAP SELECT reuses its index then).
        """

        def query(conn: sqlite3.Connection) -> tuple[int, int, int]:
            row = ops.get_mailbox(conn, account, mailbox)
            return row.uidvalidity, row.uidnext, row.highestmodseq

        return await self._read(query)

    async def message_index(self, account: str, mailbox: str, first: int = 1) -> list[MessageMeta]:
        """Like :meth:`messages` from ``first`` on, but without the header cache (``cache={}``).

        What an IMAP SELECT needs for 10 000 messages: no JSON to decode, and
        equal flag sets shared instead of built per row. Past the first UID
        (a session catching up with new mail, after IDLE or NOOP: a few rows)
        the first _INLINE_ROWS rows are read on the event loop's thread.
        """
        conn = self._poll_conn
        if first > 1 and conn is not None:
            try:
                head = _index_rows(conn, account, mailbox, first, _INLINE_ROWS)
            except sqlite3.OperationalError:
                pass  # busy: the reader threads wait for it
            else:
                if len(head) < _INLINE_ROWS:
                    return head
                first = head[-1].uid + 1
                rest = await self._read(lambda c: _index_rows(c, account, mailbox, first, None))
                return head + rest
        return await self._read(lambda c: _index_rows(c, account, mailbox, first, None))

    # -- batch reads (IMAP FETCH and SEARCH) ----------------------------------------
    async def read_many(
        self, account: str, mailbox: str, uids: list[int], *, header_only: bool = False
    ) -> dict[int, bytes]:
        """Whole messages (or headers) of many UIDs: one index query, one thread hop.

        UIDs not in the mailbox are left out. Meant for batches a caller
        bounds (IMAP reads a few MB at a time); :meth:`read` streams one.
        """

        def locate(conn: sqlite3.Connection) -> list[tuple[int, str, int, int]]:
            row = ops.get_mailbox(conn, account, mailbox)
            found: list[tuple[int, str, int, int]] = []
            for i in range(0, len(uids), 500):
                part = uids[i : i + 500]
                marks = ",".join("?" * len(part))
                found.extend(
                    (int(u), os.path.join(row.dir, p), int(s), int(h))
                    for u, p, s, h in conn.execute(
                        f"SELECT uid, path, size, hdr_size FROM messages"
                        f" WHERE mailbox=? AND uid IN ({marks})",
                        (row.id, *part),
                    )
                )
            return found

        def load(found: list[tuple[int, str, int, int]]) -> tuple[dict[int, bytes], list[int]]:
            out: dict[int, bytes] = {}
            missing: list[int] = []
            for uid, path, size, hsize in found:
                try:
                    with open(path, "rb") as fh:
                        out[uid] = fh.read(hsize if header_only else size)
                except FileNotFoundError:
                    missing.append(uid)
            return out, missing

        found = await self._read(locate)
        loop = asyncio.get_running_loop()
        out, missing = await loop.run_in_executor(self._io, load, found)
        for uid in missing:
            # Renamed by a flag change meanwhile: the streaming path re-locates.
            with contextlib.suppress(NoSuchMessage):
                parts = [c async for c in self.read(account, mailbox, uid, header_only=header_only)]
                out[uid] = b"".join(parts)
        return out

    # -- POP3 -------------------------------------------------------------------------
    def maildrop_lock(self, account: str) -> AbstractAsyncContextManager[None]:
        """Exclusive ``flock`` on ``DIR/locks/<account>.pop3`` (any process)."""
        safe = account.replace("%", "%25").replace("/", "%2F")
        return _maildrop_lock(str(self.root / "locks" / f"{safe}.pop3"))


def _index_rows(
    conn: sqlite3.Connection, account: str, mailbox: str, first: int, limit: int | None
) -> list[MessageMeta]:
    row = ops.get_mailbox(conn, account, mailbox)
    cur = conn.execute(
        "SELECT uid, size, internaldate, flags, modseq, hdr_size FROM messages"
        " WHERE mailbox=? AND uid >= ? ORDER BY uid LIMIT ?",
        (row.id, first, -1 if limit is None else limit),
    )
    sets: dict[str, frozenset[str]] = {}
    empty: dict[str, str] = {}
    out = []
    for u, s, d, f, m, h in cur:
        flags = sets.get(f)
        if flags is None:
            flags = sets[f] = frozenset(f.split())
        out.append(MessageMeta(u, s, d, flags, m, h, empty))
    return out


@contextlib.asynccontextmanager
async def _maildrop_lock(path: str) -> AsyncIterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            # LOCK_NB: a second POP3 session is refused at once (RFC 1939 4).
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise MaildropLocked("maildrop already locked") from None
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


async def reindex(root: str | os.PathLike[str]) -> int:
    """Rebuild the index from the Maildirs alone (``mailcore store reindex``).

    UIDs come from the ``U=`` fields of the file names and UIDVALIDITY,
    UIDNEXT and subscriptions from each Maildir's meta file, so clients see
    no renumbering; subscribed names of deleted mailboxes come from the
    account's ``mailcore-kept-subscriptions`` file. Keywords (which Maildir
    names cannot carry) are lost.
    Return the number of messages indexed.
    """
    base = Path(root)
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            (base / (INDEX_FILE + suffix)).unlink()
    store = MaildirStore(base, reconcile_on_open=False)
    await store.open()
    try:
        await store.reconcile()
        return await store._read(
            lambda conn: int(conn.execute("SELECT count(*) FROM messages").fetchone()[0])
        )
    finally:
        await store.close()
