"""The durable relay queue: message bytes in spool segments, recipients in SQLite.

Layout under the queue directory::

    spool/<n>      append-only segment files holding message bytes, exactly
                   as they will be sent (Received: included)
    queue.db       SQLite (WAL, synchronous=FULL): one row per message (its
                   segment, offset and size) and one per recipient (state,
                   attempts, next attempt, last reply)

Durability (the store's rule, DESIGN.md "Nothing accepted is ever lost"):
the bytes are written and fsynced (``fdatasync``, which includes the file's
new size; a new segment also gets its directory fsynced) before the rows are
committed. The committed row is the commit point: bytes no row points to
belong to a message whose 250 was never sent, and nobody ever reads them.
:meth:`Queue.enqueue_many` stores a whole batch with one fdatasync and one
commit (group commit: 20 clients waiting for their 250 cost two fsyncs, not
sixty), which is why messages share segment files rather than having one
file each. A segment is deleted once no row points into it and it is no
longer the one being appended to; :meth:`Queue.open` deletes segments that
no committed row references (left by a crash) and starts a new one.

A recipient's outcome is committed the moment the next hop's reply is
known (:meth:`Queue.record`). After a SIGKILL the queue holds every message
whose 250 was sent, and a recipient recorded as delivered is never tried
again. (The only window left is between the next hop's 250 and that commit:
a kill there means one more delivery, never a loss; RFC 5321 section 6.1
accepts duplicates over losses.)

Every method that needs the time takes ``now``; nothing here sleeps.
The class is synchronous and not thread-safe: the relay calls it from one
dedicated thread.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

from mailcore.relay.entries import (
    NewMessage,
    NewRecipient,
    Outcome,
    QueuedMessage,
    QueuedRecipient,
    Recorded,
    State,
)
from mailcore.relay.schedule import RetrySchedule

__all__ = [
    "NewMessage",
    "NewRecipient",
    "Outcome",
    "Queue",
    "QueueBusy",
    "QueuedMessage",
    "QueuedRecipient",
    "Recorded",
    "State",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    segment INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    sender TEXT NOT NULL,
    params TEXT NOT NULL,
    created REAL NOT NULL,
    size INTEGER NOT NULL,
    envid TEXT,
    ret TEXT
);
CREATE TABLE IF NOT EXISTS recipients (
    msg_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    address TEXT NOT NULL,
    params TEXT NOT NULL,
    notify TEXT,
    orcpt TEXT,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL,
    last_reply TEXT,
    remote TEXT,
    warned INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (msg_id, idx)
);
CREATE INDEX IF NOT EXISTS recipients_due ON recipients (state, next_attempt);
CREATE INDEX IF NOT EXISTS messages_segment ON messages (segment);
"""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class QueueBusy(Exception):
    """Another process owns the queue (or a non-owner tried to append)."""


def read_spool(spool: Path, segment: int, offset: int, size: int) -> bytes:
    """``size`` bytes at ``offset`` of segment ``segment``."""
    fd = os.open(spool / str(segment), os.O_RDONLY)
    try:
        data = os.pread(fd, size, offset)
        while len(data) < size:
            more = os.pread(fd, size - len(data), offset + len(data))
            if not more:
                raise OSError(f"spool segment {segment} is truncated")
            data += more
        return data
    finally:
        os.close(fd)


def _recipient(row: sqlite3.Row) -> QueuedRecipient:
    notify = row["notify"]
    orcpt = row["orcpt"]
    kind, _, value = (orcpt or "").partition(";")
    return QueuedRecipient(
        msg_id=row["msg_id"],
        idx=row["idx"],
        address=row["address"],
        params=json.loads(row["params"]),
        notify=tuple(notify.split(",")) if notify else None,
        orcpt=(kind, value) if orcpt else None,
        state=State(row["state"]),
        attempts=row["attempts"],
        next_attempt=row["next_attempt"],
        last_reply=row["last_reply"],
        remote=row["remote"],
        warned=bool(row["warned"]),
    )


class Queue:
    """The queue in directory ``path``.

    Args:
        path: the queue directory (created if missing).
        schedule: retry and lifetime rules.
        fsync: fsync files, directories and SQLite commits. Only tests that
            measure nothing but logic may turn it off.
        segment_size: start a new spool segment past this many bytes.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        schedule: RetrySchedule | None = None,
        *,
        fsync: bool = True,
        segment_size: int = 64 * 1024 * 1024,
    ) -> None:
        self.path = Path(path)
        self.spool = self.path / "spool"
        self.schedule = schedule or RetrySchedule()
        self.fsync = fsync
        self.segment_size = segment_size
        self._db: sqlite3.Connection | None = None
        self._segment = 0
        self._segment_fd: int | None = None
        self._segment_end = 0
        self._lock: int | None = None
        self.owner = False
        # Where each message's bytes are (owner only), so that reading a
        # message never waits for the database thread.
        self._places: dict[str, tuple[int, int, int]] = {}

    # ------------------------------------------------------------ lifecycle

    def open(self, *, owner: bool = True) -> None:
        """Create or open the queue.

        The owner (the one relay process delivering from this queue) holds
        ``queue.lock``, appends to the spool, and deletes segments nobody
        references. Tools (``mailcore queue``) open with ``owner=False``:
        they read and change rows but never touch spool files, so they are
        safe beside a running relay. Raises :class:`QueueBusy` if another
        owner holds the lock.
        """
        self.spool.mkdir(parents=True, exist_ok=True)
        self.owner = owner
        if owner:
            lock = os.open(self.path / "queue.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(lock)
                raise QueueBusy(f"another process owns the queue in {self.path}") from None
            self._lock = lock
        db = sqlite3.connect(self.path / "queue.db", isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={'FULL' if self.fsync else 'OFF'}")
        db.execute("PRAGMA foreign_keys=ON")
        db.executescript(_SCHEMA)
        self._db = db
        if not owner:
            return
        used = {row[0] for row in db.execute("SELECT DISTINCT segment FROM messages")}
        numbers = [int(n) for n in os.listdir(self.spool) if n.isdigit()]
        for n in numbers:
            if n not in used:
                # Only bytes of messages whose 250 was never sent, or of
                # messages already gone: nobody will read them.
                (self.spool / str(n)).unlink()
        self._places = {
            row[0]: (row[1], row[2], row[3])
            for row in db.execute("SELECT id, segment, offset, size FROM messages")
        }
        # Never append after a crash's torn tail: a fresh segment.
        self._segment = max([*numbers, *used, 0])
        for (msg_id,) in db.execute("SELECT id FROM messages").fetchall():
            self.finish(msg_id)

    def close(self) -> None:
        """Close the current segment (deleted if empty of messages) and the database."""
        if self._segment_fd is not None:
            os.close(self._segment_fd)
            self._segment_fd = None
            if self._db is not None:
                self._drop_segment_if_unused(self._segment, closing=True)
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._lock is not None:
            os.close(self._lock)  # releases the flock
            self._lock = None

    @property
    def db(self) -> sqlite3.Connection:
        """The open database connection."""
        if self._db is None:
            raise RuntimeError("queue is not open")
        return self._db

    # -------------------------------------------------------------- enqueue

    def _append(self, blobs: Sequence[bytes]) -> list[tuple[int, int]]:
        """Append ``blobs`` to the current segment, durably; their (segment, offset)."""
        if not self.owner:
            raise QueueBusy("only the queue's owner appends to the spool")
        if self._segment_fd is None or self._segment_end >= self.segment_size:
            if self._segment_fd is not None:
                os.close(self._segment_fd)
                self._segment_fd = None
                self._drop_segment_if_unused(self._segment)
            self._segment += 1
            path = self.spool / str(self._segment)
            self._segment_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            self._segment_end = 0
            if self.fsync:
                _fsync_dir(self.spool)
        fd = self._segment_fd
        places = []
        offset = self._segment_end
        try:
            for blob in blobs:
                places.append((self._segment, offset))
                view = memoryview(blob)
                while view:
                    written = os.pwrite(fd, view, offset)
                    view = view[written:]
                    offset += written
            if self.fsync:
                os.fdatasync(fd)
        finally:
            # Whatever happened, later bytes go after everything written.
            self._segment_end = offset
        return places

    def _drop_segment_if_unused(self, segment: int, *, closing: bool = False) -> None:
        if not self.owner:
            return  # the owner may be appending to it right now
        if segment == self._segment and self._segment_fd is not None and not closing:
            return
        used = self.db.execute(
            "SELECT 1 FROM messages WHERE segment = ? LIMIT 1", (segment,)
        ).fetchone()
        if used is None:
            (self.spool / str(segment)).unlink(missing_ok=True)

    def enqueue(self, message: NewMessage, now: float) -> str:
        """Store one message durably; return its queue id."""
        return self.enqueue_many([message], now)[0]

    def enqueue_many(self, messages: Sequence[NewMessage], now: float) -> list[str]:
        """Store messages durably (files, directory, then one commit); return their ids.

        When this returns, every message survives a crash; if it raises,
        none of them is queued.
        """
        return self.commit(messages, (), now)[0]

    def commit(
        self,
        messages: Sequence[NewMessage],
        outcomes: Sequence[tuple[str, Sequence[tuple[int, Outcome, str]], str | None]],
        now: float,
        *,
        notices: Sequence[NewMessage] = (),
    ) -> tuple[list[str], list[Recorded]]:
        """Enqueue ``messages`` and record ``outcomes`` in one transaction.

        The relay's group commit: new mail and delivery results that arrive
        together share one spool fdatasync and one SQLite commit. Returns the
        new ids and one :class:`Recorded` per outcome entry (see
        :meth:`record_many`). ``notices`` are queued too (success DSNs that
        must exist exactly when the outcome they report does); their ids
        are not returned.
        """
        everything = [*messages, *notices]
        for message in everything:
            if not message.recipients:
                raise ValueError("a message needs at least one recipient")
        all_ids = [secrets.token_hex(8).upper() for _ in everything]
        ids = all_ids[: len(messages)]
        places = self._append([m.data for m in everything]) if everything else []
        messages = everything
        db = self.db
        out: list[Recorded] = []
        segments: set[int] = set()
        db.execute("BEGIN IMMEDIATE")
        try:
            if messages:
                self._insert(messages, all_ids, places, now)
            for msg_id, results, remote in outcomes:
                result = self._record(msg_id, results, now, remote)
                if result.segment is not None and self._done(msg_id):
                    # Every recipient delivered (or bounced): gone in the same commit.
                    db.execute("DELETE FROM messages WHERE id = ?", (msg_id,))
                    self._places.pop(msg_id, None)
                    segments.add(result.segment)
                    result.finished = True
                out.append(result)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        for segment in segments:
            self._drop_segment_if_unused(segment)
        return ids, out

    def _insert(
        self,
        messages: Sequence[NewMessage],
        ids: Sequence[str],
        places: Sequence[tuple[int, int]],
        now: float,
    ) -> None:
        db = self.db
        if self.owner:
            for i, m, (seg, off) in zip(ids, messages, places, strict=True):
                self._places[i] = (seg, off, len(m.data))
        db.executemany(
            "INSERT INTO messages (id, segment, offset, sender, params, created, size, envid,"
            " ret) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (i, seg, off, m.sender, json.dumps(m.params), now, len(m.data), m.envid, m.ret)
                for i, m, (seg, off) in zip(ids, messages, places, strict=True)
            ],
        )
        db.executemany(
            "INSERT INTO recipients (msg_id, idx, address, params, notify, orcpt, state,"
            " next_attempt) VALUES (?, ?, ?, ?, ?, ?, 'queued', ?)",
            [
                (
                    i,
                    n,
                    r.address,
                    json.dumps(r.params),
                    ",".join(r.notify) if r.notify else None,
                    f"{r.orcpt[0]};{r.orcpt[1]}" if r.orcpt else None,
                    now,
                )
                for i, m in zip(ids, messages, strict=True)
                for n, r in enumerate(m.recipients)
            ],
        )

    # ------------------------------------------------------------- reading

    def read(self, msg_id: str) -> bytes:
        """The message bytes (the owner may call this from any thread)."""
        place = self._places.get(msg_id)
        if place is not None:
            return read_spool(self.spool, *place)
        row = self.db.execute(
            "SELECT segment, offset, size FROM messages WHERE id = ?", (msg_id,)
        ).fetchone()
        if row is None:
            raise KeyError(msg_id)
        return read_spool(self.spool, row[0], row[1], row[2])

    def message(self, msg_id: str, states: Iterable[State] | None = None) -> QueuedMessage | None:
        """A message with its recipients (only those in ``states`` if given)."""
        row = self.db.execute("SELECT * FROM messages WHERE id = ?", (msg_id,)).fetchone()
        if row is None:
            return None
        rows = self.db.execute(
            "SELECT * FROM recipients WHERE msg_id = ? ORDER BY idx", (msg_id,)
        ).fetchall()
        wanted = set(states) if states is not None else None
        rcpts = [_recipient(r) for r in rows]
        if wanted is not None:
            rcpts = [r for r in rcpts if r.state in wanted]
        return self._message(row, rcpts)

    @staticmethod
    def _message(row: sqlite3.Row, rcpts: Sequence[QueuedRecipient]) -> QueuedMessage:
        return QueuedMessage(
            id=row["id"],
            sender=row["sender"],
            params=json.loads(row["params"]),
            created=row["created"],
            size=row["size"],
            envid=row["envid"],
            ret=row["ret"],
            recipients=tuple(rcpts),
        )

    def due(
        self, now: float, *, limit: int = 1000, exclude: Iterable[str] = ()
    ) -> list[QueuedMessage]:
        """Messages with queued recipients whose next attempt is at or before ``now``.

        Each message carries only its due recipients; ``exclude`` skips
        message ids (those in flight).
        """
        skip = set(exclude)
        rows = self.db.execute(
            "SELECT * FROM recipients WHERE state = 'queued' AND next_attempt <= ?"
            " ORDER BY next_attempt, msg_id, idx LIMIT ?",
            (now, limit + len(skip) * 8),
        ).fetchall()
        by_msg: dict[str, list[QueuedRecipient]] = {}
        for row in rows:
            if row["msg_id"] in skip:
                continue
            by_msg.setdefault(row["msg_id"], []).append(_recipient(row))
        out = []
        for msg_id, rcpts in list(by_msg.items())[:limit]:
            mrow = self.db.execute("SELECT * FROM messages WHERE id = ?", (msg_id,)).fetchone()
            if mrow is not None:
                out.append(self._message(mrow, rcpts))
        return out

    def count(self) -> int:
        """Number of messages in the queue."""
        return int(self.db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])

    def next_due(self) -> float | None:
        """The earliest next attempt of any queued recipient."""
        row = self.db.execute(
            "SELECT MIN(next_attempt) FROM recipients WHERE state = 'queued'"
        ).fetchone()
        value = row[0] if row is not None else None
        return float(value) if value is not None else None

    def entries(self) -> list[QueuedMessage]:
        """Every message in the queue with all its recipients, oldest first."""
        out = []
        for row in self.db.execute("SELECT * FROM messages ORDER BY created, id").fetchall():
            rcpts = self.db.execute(
                "SELECT * FROM recipients WHERE msg_id = ? ORDER BY idx", (row["id"],)
            ).fetchall()
            out.append(self._message(row, [_recipient(r) for r in rcpts]))
        return out

    # ------------------------------------------------------------ outcomes

    def record(
        self,
        msg_id: str,
        outcomes: Sequence[tuple[int, Outcome, str]],
        now: float,
        *,
        remote: str | None = None,
    ) -> Recorded:
        """Commit the outcome of one attempt for recipients ``idx`` (with the reply text).

        A deferral past the schedule's lifetime becomes a failure. Recipients
        not QUEUED are left alone: an outcome can never undo a delivery.
        """
        return self.record_many([(msg_id, outcomes, remote)], now)[0]

    def record_many(
        self,
        batch: Sequence[tuple[str, Sequence[tuple[int, Outcome, str]], str | None]],
        now: float,
    ) -> list[Recorded]:
        """:meth:`record` for several messages in one transaction (one fsync).

        A message with no recipient left to deliver or bounce is removed in
        the same commit (``Recorded.finished``).
        """
        return self.commit((), batch, now)[1]

    def _done(self, msg_id: str) -> bool:
        left = self.db.execute(
            "SELECT 1 FROM recipients WHERE msg_id = ? AND state IN ('queued', 'failed') LIMIT 1",
            (msg_id,),
        ).fetchone()
        return left is None

    def _record(
        self,
        msg_id: str,
        outcomes: Sequence[tuple[int, Outcome, str]],
        now: float,
        remote: str | None,
    ) -> Recorded:
        db = self.db
        msg = db.execute("SELECT created, segment FROM messages WHERE id = ?", (msg_id,)).fetchone()
        result = Recorded()
        if msg is None:
            return result
        result.segment = msg["segment"]
        expired = self.schedule.expired(msg["created"], now)
        warn_after = self.schedule.delay_warning
        for idx, given, text in outcomes:
            outcome, reply = given, text
            row = db.execute(
                "SELECT attempts, warned FROM recipients WHERE msg_id = ? AND idx = ?"
                " AND state = 'queued'",
                (msg_id, idx),
            ).fetchone()
            if row is None:
                continue
            attempts = row["attempts"] + 1
            if outcome is Outcome.DEFERRED and expired:
                outcome = Outcome.FAILED
                reply = f"{reply} (gave up: in the queue too long)"
            if outcome is Outcome.DELIVERED:
                state, nxt = State.DELIVERED, now
            elif outcome is Outcome.FAILED:
                state, nxt = State.FAILED, now
                result.failed.append(idx)
            else:
                state, nxt = State.QUEUED, self.schedule.next_attempt(attempts, now)
                if (
                    warn_after is not None
                    and not row["warned"]
                    and now - msg["created"] >= warn_after
                ):
                    result.delayed.append(idx)
            db.execute(
                "UPDATE recipients SET state = ?, attempts = ?, next_attempt = ?,"
                " last_reply = ?, remote = ? WHERE msg_id = ? AND idx = ?",
                (state.value, attempts, nxt, reply, remote, msg_id, idx),
            )
        return result

    def bounce(
        self,
        msg_id: str,
        idxs: Sequence[int],
        dsn: NewMessage | None,
        now: float,
        *,
        warning: bool = False,
    ) -> str | None:
        """Queue the DSN for failed recipients ``idxs`` and mark them BOUNCED, atomically.

        ``dsn`` None records that no notification is sent (null sender,
        NOTIFY=NEVER). With ``warning`` the recipients stay QUEUED and are
        only marked as warned (a delay notification). Returns the DSN's id.
        """
        dsn_id = None
        places: list[tuple[int, int]] = []
        if dsn is not None:
            dsn_id = secrets.token_hex(8).upper()
            places = self._append([dsn.data])
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            if dsn is not None and dsn_id is not None:
                self._insert([dsn], [dsn_id], places, now)
            if warning:
                db.executemany(
                    "UPDATE recipients SET warned = 1 WHERE msg_id = ? AND idx = ?",
                    [(msg_id, i) for i in idxs],
                )
            else:
                db.executemany(
                    "UPDATE recipients SET state = 'bounced' WHERE msg_id = ? AND idx = ?"
                    " AND state = 'failed'",
                    [(msg_id, i) for i in idxs],
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return dsn_id

    def unbounced(self) -> list[QueuedMessage]:
        """Messages with FAILED recipients whose DSN is not yet recorded."""
        ids = [
            r[0]
            for r in self.db.execute(
                "SELECT DISTINCT msg_id FROM recipients WHERE state = 'failed'"
            ).fetchall()
        ]
        found = [self.message(i, [State.FAILED]) for i in ids]
        return [m for m in found if m is not None]

    def finish(self, msg_id: str) -> bool:
        """Remove the message if no recipient is QUEUED or FAILED; True if removed."""
        if not self._done(msg_id):
            return False
        self._remove(msg_id)
        return True

    def _remove(self, msg_id: str) -> bool:
        # Rows first: a crash before the unlink leaves an orphan segment that
        # open() removes; the other order would leave rows without bytes.
        row = self.db.execute("SELECT segment FROM messages WHERE id = ?", (msg_id,)).fetchone()
        if row is None:
            return False
        self.db.execute("DELETE FROM messages WHERE id = ?", (msg_id,))
        self._places.pop(msg_id, None)
        self._drop_segment_if_unused(row[0])
        return True

    # ---------------------------------------------------------- operations

    def flush(self, now: float) -> int:
        """Make every queued recipient due at ``now``; return how many."""
        cur = self.db.execute(
            "UPDATE recipients SET next_attempt = ? WHERE state = 'queued'", (now,)
        )
        return cur.rowcount

    def delete(self, msg_id: str) -> bool:
        """Remove a message without notifying anyone; False if there is none."""
        return self._remove(msg_id)
