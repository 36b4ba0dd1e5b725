"""The SQLite index of the embedded store: schema, one writer thread, readers.

sqlite3 blocks, so it never runs on the event loop. Every write goes through
one :class:`Writer` thread that takes whatever jobs are queued, runs them in
ONE ``BEGIN IMMEDIATE`` transaction (a savepoint each, so one failing job does
not undo the others), fsyncs the Maildir directories the jobs renamed files
into, and commits: many concurrent appends share one directory fsync and one
commit (group commit). ``BEGIN IMMEDIATE`` also serialises writers of other
processes on the same data directory, which is what keeps UIDs and MODSEQs
unique and ascending across processes.

The WAL runs with ``synchronous=NORMAL``: a commit survives a process crash
(SIGKILL) but the last commits may be lost on power failure. That loses no
mail: a message is durable once its file is fsynced and renamed into the
Maildir with its UID in the name (``,U=``) and the directory is fsynced, and
:func:`mailcore.store.maildir` reconciliation re-indexes such files with the
same UIDs. Only an extra fsync per batch would buy back the last flag
changes, which is not worth halving delivery throughput for.
"""

from __future__ import annotations

import asyncio
import collections
import os
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

__all__ = ["SCHEMA", "Txn", "Writer", "connect"]

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS mailboxes(
    id INTEGER PRIMARY KEY,
    account TEXT NOT NULL,
    name TEXT NOT NULL,
    dir TEXT NOT NULL,
    uidvalidity INTEGER NOT NULL,
    uidnext INTEGER NOT NULL,
    highestmodseq INTEGER NOT NULL,
    subscribed INTEGER NOT NULL DEFAULT 0,
    special TEXT NOT NULL DEFAULT '',
    noselect INTEGER NOT NULL DEFAULT 0,
    UNIQUE(account, name)
);
CREATE TABLE IF NOT EXISTS messages(
    mailbox INTEGER NOT NULL,
    uid INTEGER NOT NULL,
    base TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    hdr_size INTEGER NOT NULL,
    internaldate REAL NOT NULL,
    flags TEXT NOT NULL,
    modseq INTEGER NOT NULL,
    cache TEXT NOT NULL,
    PRIMARY KEY(mailbox, uid)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS changes(
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox INTEGER NOT NULL,
    kind TEXT NOT NULL,
    uid INTEGER NOT NULL,
    modseq INTEGER NOT NULL,
    flags TEXT NOT NULL,
    origin TEXT NOT NULL
);
"""

# The change log only has to cover what a polling session has not seen yet
# (it polls every few ms); keep a generous tail and cut the rest.
CHANGES_KEPT = 100_000
PRUNE_EVERY = 5_000
# How many queued jobs one transaction takes at most: bounds the latency of
# the first job in a batch while still sharing fsyncs.
BATCH_MAX = 512


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """Open the index in WAL mode, autocommit (transactions are explicit)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.execute("PRAGMA busy_timeout=30000")
    if not readonly:
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def fsync_dir(path: str) -> None:
    """Make a rename or link in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class Txn:
    """What a job sees: the connection inside the open transaction.

    A job adds every directory it renamed or linked a file into to
    ``sync_dirs``; they are fsynced once per batch, before the commit.
    ``notify`` is set when the job changed anything the change feed reports.
    """

    conn: sqlite3.Connection
    sync_dirs: set[str] = field(default_factory=set)
    notify: bool = False


@dataclass
class _Job(Generic[T]):
    fn: Callable[[Txn], T]
    future: Future[T]


class Writer:
    """The write connection and the group commit of jobs.

    Jobs come two ways. :meth:`submit` / :meth:`run` queue a job for the
    writer thread. :meth:`execute` is for a worker thread that is about to
    wait anyway (an append that just fsynced its file): it queues the job
    where the writer thread does not wait for it and, if no batch is
    running, runs the waiting jobs itself. An append then costs one thread
    hop from the event loop instead of two, and jobs that arrive while a
    batch runs still share the next batch's directory fsyncs and commit.
    Whoever runs a batch holds ``_batch_lock``, so batches never overlap.
    """

    def __init__(self, path: Path, on_commit: Callable[[], None] | None = None) -> None:
        self._conn = connect(path)
        self._conn.executescript(SCHEMA)
        self._queue: queue.SimpleQueue[_Job[Any] | None] = queue.SimpleQueue()
        # Jobs of execute(): run by the next batch, whoever runs it.
        self._waiting: collections.deque[_Job[Any]] = collections.deque()
        self._batch_lock = threading.Lock()
        self._on_commit = on_commit
        self._jobs_since_prune = 0
        self._thread = threading.Thread(target=self._run, name="mailcore-store-writer", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[Txn], T]) -> Future[T]:
        """Queue ``fn`` to run in the next transaction; the future resolves after COMMIT."""
        fut: Future[T] = Future()
        self._queue.put(_Job(fn, fut))
        return fut

    async def run(self, fn: Callable[[Txn], T]) -> T:
        """Await ``fn``'s result once its transaction is committed (and directories fsynced)."""
        return await asyncio.wrap_future(self.submit(fn))

    def execute(self, fn: Callable[[Txn], T]) -> T:
        """Run ``fn`` in a committed transaction and return its result, blocking.

        For worker threads, never the event loop. If no batch is running,
        this thread runs the waiting jobs (``fn`` among them) as one batch;
        otherwise ``fn`` runs in the next batch, run by whoever comes first.
        """
        job: _Job[T] = _Job(fn, Future())
        self._waiting.append(job)
        self._lead()
        return job.future.result()

    def _lead(self) -> None:
        # Whoever gets the lock runs the waiting jobs. After releasing it,
        # look again: a job queued while the lock was held, whose thread
        # found the lock taken, must not be left behind.
        while self._waiting and self._batch_lock.acquire(blocking=False):
            try:
                self._run_batch(self._take_waiting([]))
            finally:
                self._batch_lock.release()

    def _take_waiting(self, batch: list[_Job[Any]]) -> list[_Job[Any]]:
        while self._waiting and len(batch) < BATCH_MAX:
            batch.append(self._waiting.popleft())
        return batch

    def close(self) -> None:
        """Finish the queued jobs, stop the thread and close the connection."""
        self._queue.put(None)
        self._thread.join()
        self._conn.close()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                self._lead()
                return
            batch = [first]
            stop = False
            while len(batch) < BATCH_MAX:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                batch.append(job)
            with self._batch_lock:
                self._run_batch(self._take_waiting(batch))
            self._lead()
            if stop:
                return

    def _run_batch(self, batch: list[_Job[Any]]) -> None:
        conn = self._conn
        txn = Txn(conn)
        results: list[tuple[_Job[Any], bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            for job in batch:
                job.future.set_exception(exc)
            return
        for job in batch:
            if not job.future.set_running_or_notify_cancel():
                continue
            conn.execute("SAVEPOINT job")
            try:
                value = job.fn(txn)
            except Exception as exc:  # noqa: BLE001 - handed to the job's awaiting caller
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
                results.append((job, False, exc))
            else:
                conn.execute("RELEASE job")
                results.append((job, True, value))
        self._jobs_since_prune += len(batch)
        try:
            if self._jobs_since_prune >= PRUNE_EVERY:
                self._jobs_since_prune = 0
                conn.execute(
                    "DELETE FROM changes WHERE seq <= (SELECT max(seq) FROM changes) - ?",
                    (CHANGES_KEPT,),
                )
            for d in txn.sync_dirs:
                fsync_dir(d)
            conn.execute("COMMIT")
        except (sqlite3.Error, OSError) as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for job, _ok, _value in results:
                job.future.set_exception(exc)
            return
        for job, ok, value in results:
            if ok:
                job.future.set_result(value)
            else:
                job.future.set_exception(value)
        if txn.notify and self._on_commit is not None:
            self._on_commit()
