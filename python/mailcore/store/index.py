"""The SQLite index of the embedded store: schema, one writer thread, readers.

sqlite3 blocks, so it never runs on the event loop. Every write goes through
one :class:`Writer` thread that takes whatever jobs are queued, writes and
fsyncs the new message files they bring (in one call into the Rust core),
runs them in ONE ``BEGIN IMMEDIATE`` transaction (a savepoint each, so one
failing job does not undo the others; neighbouring appends share one call
and one savepoint, see :meth:`Writer.run_grouped`), commits, and then
fsyncs the Maildir directories the jobs renamed files into before any job's
caller hears of success (readers may see the commit a moment earlier, as a
Maildir reader sees a renamed file before its directory is fsynced): many
concurrent appends share one directory fsync and one commit (group commit).
``BEGIN IMMEDIATE`` (behind a ``flock``, held until the commit) also
serialises writers of other processes on the same data directory, which is
what keeps UIDs and MODSEQs unique and ascending across processes; the
directory fsync runs after the lock is released.

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
import contextlib
import fcntl
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from mailcore import _core

__all__ = ["SCHEMA", "Txn", "Writer", "connect"]

T = TypeVar("T")

_log = logging.getLogger(__name__)

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
-- Names on the subscription list whose mailbox was deleted: a server does
-- not take a name off the list by itself (RFC 3501 6.3.6, RFC 9051 6.3.9).
-- A mailbox created (or renamed) under such a name is subscribed again.
CREATE TABLE IF NOT EXISTS orphan_subscriptions(
    account TEXT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY(account, name)
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
# fsyncs in flight at once while a batch writes its files or syncs its
# directories: enough for the journal to fold them into shared commits.
FSYNC_THREADS = 8


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """Open the index in WAL mode, autocommit (transactions are explicit)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.execute("PRAGMA busy_timeout=30000")
    if not readonly:
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


@dataclass
class Txn:
    """What a job sees: the connection inside the open transaction.

    A job adds every directory it renamed or linked a file into to
    ``sync_dirs``; they are fsynced once per batch, after the commit and
    before any job's caller hears of success.
    ``notify`` is set when the job changed anything the change feed reports.
    """

    conn: sqlite3.Connection
    sync_dirs: set[str] = field(default_factory=set)
    notify: bool = False


@dataclass(eq=False)
class _Job(Generic[T]):
    # What the job does: ``fn`` alone, or ``item`` handed to ``group``
    # together with the items of the jobs of the same group next to it.
    fn: Callable[[Txn], T] | None = None
    group: Callable[[Txn, list[Any]], list[Any]] | None = None
    item: Any = None
    # Exactly one of these waits for the result: a concurrent future
    # (submit) or an asyncio future on ``loop`` (run).
    future: Future[T] | None = None
    loop: asyncio.AbstractEventLoop | None = None
    waiter: asyncio.Future[T] | None = None
    # (path, data): a new file written and fsynced before the batch's
    # transaction begins; the job runs only if that succeeded.
    file: tuple[str, bytes] | None = None
    # Set by the awaiting coroutine when it is cancelled: the job is skipped
    # and its file removed, unless its transaction already began.
    abandoned: bool = False


def _settle(outcomes: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for waiter, ok, value in outcomes:
        if waiter.done():
            continue
        if ok:
            waiter.set_result(value)
        else:
            waiter.set_exception(value)


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


class Writer:
    """The write connection and the group commit of jobs.

    One thread runs every write job. It takes whatever is queued (up to
    ``BATCH_MAX``), runs the jobs in ONE transaction, commits, fsyncs the
    directories they renamed files into (outside the lock that serialises
    the writers of all processes), and only then reports: the event loops
    waiting for results hear about the whole batch in one callback each.
    Jobs that bring a new file (appends) first pass through a second
    thread, which writes and fsyncs all the files queued at that moment in
    one call into the Rust core (several fsyncs in flight, the GIL
    released), so the files of the next batch are made durable while the
    current batch commits. An append costs its event loop one hand-off and
    one wake-up back, however many appends share the batch.
    """

    def __init__(self, path: Path, on_commit: Callable[[], None] | None = None) -> None:
        self._conn = connect(path)
        # Writers of other processes on the same index queue up on this lock
        # before BEGIN IMMEDIATE: a blocked flock() wakes the moment the
        # holder commits, where SQLite's busy handler would sleep and poll.
        self._lock_fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        self._conn.executescript(SCHEMA)
        self._queue: queue.SimpleQueue[_Job[Any] | None] = queue.SimpleQueue()
        self._files: queue.SimpleQueue[_Job[Any] | None] = queue.SimpleQueue()
        self._on_commit = on_commit
        # Held by whichever thread runs a batch: batches never overlap.
        self._batch_lock = threading.Lock()
        self._jobs_since_prune = 0
        self._thread = threading.Thread(target=self._run, name="mailcore-store-writer", daemon=True)
        self._thread.start()
        self._files_thread = threading.Thread(
            target=self._run_files, name="mailcore-store-files", daemon=True
        )
        self._files_thread.start()

    def submit(self, fn: Callable[[Txn], T]) -> Future[T]:
        """Queue ``fn`` to run in the next transaction; the future resolves after COMMIT."""
        fut: Future[T] = Future()
        self._queue.put(_Job(fn, future=fut))
        return fut

    async def run(self, fn: Callable[[Txn], T], *, file: tuple[str, bytes] | None = None) -> T:
        """Await ``fn``'s result once its transaction is committed (and directories fsynced).

        With ``file=(path, data)``, the file is created, written and fsynced
        first; if that fails, ``fn`` does not run and the ``OSError`` is
        raised. If the caller is cancelled before the batch takes the job,
        the job is dropped and its file removed.
        """
        return await self._await(_Job(fn, file=file))

    async def run_grouped(
        self,
        group: Callable[[Txn, list[Any]], list[Any]],
        item: Any,
        *,
        file: tuple[str, bytes] | None = None,
    ) -> Any:
        """Like :meth:`run`, for work that is cheaper done for many callers at once.

        Neighbouring jobs of a batch with the same ``group`` are run by one
        call ``group(txn, [item, ...])``, which returns one result per item
        in order; an ``Exception`` in place of a result fails that job
        alone. If ``group`` raises, its savepoint is rolled back and it is
        called again for each item alone, so one bad item cannot fail the
        others (``group`` must leave nothing behind outside the index when
        it raises).
        """
        return await self._await(_Job(group=group, item=item, file=file))

    async def _await(self, job: _Job[T]) -> T:
        loop = asyncio.get_running_loop()
        job.loop, job.waiter = loop, loop.create_future()
        (self._queue if job.file is None else self._files).put(job)
        try:
            return await job.waiter
        except asyncio.CancelledError:
            job.abandoned = True
            raise

    def close(self) -> None:
        """Finish the queued jobs, stop the threads and close the connection."""
        self._files.put(None)
        self._files_thread.join()
        self._queue.put(None)
        self._thread.join()
        self._conn.close()
        os.close(self._lock_fd)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
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
                self._run_guarded(batch)
            if stop:
                return

    def _run_guarded(self, batch: list[_Job[Any]]) -> None:
        # Whatever goes wrong in a batch fails that batch's jobs, never the
        # thread: every later write would wait for it forever.
        try:
            self._run_batch(batch)
        except BaseException as exc:  # noqa: BLE001 - handed to every waiting caller
            _log.exception("store index batch failed")
            with contextlib.suppress(sqlite3.Error):
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
            self._report([(job, False, exc) for job in batch])

    def _commit_or_hand_over(self, jobs: list[_Job[Any]]) -> None:
        # No more appends waiting and the writer idle: commit here and save
        # the hand-over (what a lone append waits for). Otherwise the writer
        # thread commits while this thread goes on with the next files.
        if self._files.empty() and self._batch_lock.acquire(blocking=False):
            try:
                self._run_guarded(jobs)
            finally:
                self._batch_lock.release()
            return
        for job in jobs:
            self._queue.put(job)

    def _run_files(self) -> None:
        # Stage one of an append: write and fsync the files of every queued
        # append at once, then hand the jobs to the writer thread. While the
        # writer fsyncs directories and commits one batch, this thread is
        # already fsyncing the files of the next.
        while True:
            first = self._files.get()
            batch = [first]
            while len(batch) < BATCH_MAX:
                try:
                    batch.append(self._files.get_nowait())
                except queue.Empty:
                    break
            jobs = [job for job in batch if job is not None and not job.abandoned]
            try:
                self._write_files(jobs)
            except BaseException as exc:  # noqa: BLE001 - see _run_guarded
                _log.exception("store file writes failed")
                for job in jobs:
                    if job.file is not None:
                        _unlink(job.file[0])
                self._report([(job, False, exc) for job in jobs])
            if None in batch:
                return

    def _write_files(self, jobs: list[_Job[Any]]) -> None:
        items = [job.file for job in jobs if job.file is not None]
        errors = _core.write_files_durable(items, threads=FSYNC_THREADS) if items else []
        failures: list[tuple[_Job[Any], bool, Any]] = []
        ready: list[_Job[Any]] = []
        for job, error in zip(jobs, errors, strict=True):
            if error is None:
                ready.append(job)
            else:
                failures.append((job, False, error))
        self._report(failures)
        if ready:
            self._commit_or_hand_over(ready)

    def _run_batch(self, batch: list[_Job[Any]]) -> None:
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            txn, results = self._run_locked(batch)
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        # The directories the batch renamed files into are fsynced after the
        # commit, outside the lock: the writers of other processes (SMTP
        # workers) commit their batches meanwhile instead of queueing behind
        # this fsync. Nobody hears of success before it: a job's caller (the
        # SMTP session about to answer 250) waits for this report.
        if txn.sync_dirs and any(ok for _job, ok, _value in results):
            try:
                _core.sync_dirs(sorted(txn.sync_dirs), threads=FSYNC_THREADS)
            except OSError as exc:
                # Committed but perhaps not durable: fail the jobs (their
                # callers answer with a temporary error); the index and the
                # Maildir agree, so a retried message is a duplicate at worst.
                _log.error("fsync of %s failed: %s", sorted(txn.sync_dirs), exc)
                results = [(job, False, exc) for job, _ok, _value in results]
        self._report(results)
        if txn.notify and self._on_commit is not None:
            self._on_commit()

    def _run_locked(self, batch: list[_Job[Any]]) -> tuple[Txn, list[tuple[_Job[Any], bool, Any]]]:
        """Run ``batch`` in one transaction and commit; the outcomes, not yet reported."""
        conn = self._conn
        txn = Txn(conn)
        results: list[tuple[_Job[Any], bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            for job in batch:
                if job.file is not None:
                    _unlink(job.file[0])
                results.append((job, False, exc))
            return txn, results
        live: list[_Job[Any]] = []
        for job in batch:
            if job.future is not None and not job.future.set_running_or_notify_cancel():
                continue
            if job.abandoned:
                if job.file is not None:
                    _unlink(job.file[0])
                continue
            live.append(job)
        runs: list[list[_Job[Any]]] = []
        start = 0
        while start < len(live):
            end = start + 1
            group = live[start].group
            if group is not None:
                while end < len(live) and live[end].group is group:
                    end += 1
            runs.append(live[start:end])
            start = end
        for run in runs:
            # A run that is the whole transaction (a batch of appends, the
            # usual case) needs no savepoint: the transaction is one.
            self._run_jobs(txn, run, results, whole=len(runs) == 1)
        self._jobs_since_prune += len(batch)
        try:
            if self._jobs_since_prune >= PRUNE_EVERY:
                self._jobs_since_prune = 0
                conn.execute(
                    "DELETE FROM changes WHERE seq <= (SELECT max(seq) FROM changes) - ?",
                    (CHANGES_KEPT,),
                )
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            results = [(job, False, exc) for job, _ok, _value in results]
            txn.notify = False
        return txn, results

    def _run_jobs(
        self,
        txn: Txn,
        jobs: list[_Job[Any]],
        results: list[tuple[_Job[Any], bool, Any]],
        *,
        whole: bool = False,
    ) -> None:
        """One plain job, or neighbouring jobs of one group, under one savepoint.

        ``whole``: the jobs are all the transaction holds; they run without a
        savepoint, and if they fail the transaction is rolled back and begun
        again (the same thing, one statement less on the way that succeeds).
        """
        conn = txn.conn
        group, fn = jobs[0].group, jobs[0].fn
        if not whole:
            conn.execute("SAVEPOINT job")
        try:
            if group is not None:
                values = group(txn, [job.item for job in jobs])
                if len(values) != len(jobs):
                    raise RuntimeError(f"{group!r} gave {len(values)} results for {len(jobs)} jobs")
                outcomes = [(not isinstance(value, Exception), value) for value in values]
            else:
                assert fn is not None  # a job without a group has a function
                outcomes = [(True, fn(txn))]
        except Exception as exc:  # noqa: BLE001 - handed to the job's awaiting caller
            if whole:
                conn.execute("ROLLBACK")
                conn.execute("BEGIN IMMEDIATE")
            else:
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
            if len(jobs) > 1:
                for job in jobs:
                    self._run_jobs(txn, [job], results)
                return
            outcomes = [(False, exc)]
        else:
            if not whole:
                conn.execute("RELEASE job")
        for job, (ok, value) in zip(jobs, outcomes, strict=True):
            if not ok and job.file is not None:
                _unlink(job.file[0])
            results.append((job, ok, value))

    @staticmethod
    def _report(results: list[tuple[_Job[Any], bool, Any]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
        for job, ok, value in results:
            if job.future is not None:
                if job.future.done():
                    continue
                if ok:
                    job.future.set_result(value)
                else:
                    job.future.set_exception(value)
            elif job.loop is not None and job.waiter is not None:
                by_loop.setdefault(job.loop, []).append((job.waiter, ok, value))
        for loop, outcomes in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                loop.call_soon_threadsafe(_settle, outcomes)
