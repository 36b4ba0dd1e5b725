"""The index writer's group commit: jobs from threads and event loops, files written first.

Real SQLite on a temp directory, real threads; what is checked is what a
reader connection sees after each call returned.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from mailcore import _core
from mailcore.store import MaildirStore, ops
from mailcore.store.base import MailboxNotFound
from mailcore.store.index import Txn, Writer, connect

ACC = "writer@example.org"


def _insert(key: str, value: int) -> Callable[[Txn], Txn]:
    """A job inserting one row; it returns its transaction (one object per batch)."""

    def job(txn: Txn) -> Txn:
        txn.conn.execute("INSERT INTO meta(key, value) VALUES (?, ?)", (key, value))
        return txn

    return job


def _committed(path: Path) -> dict[str, int]:
    conn = connect(path, readonly=True)
    try:
        return dict(conn.execute("SELECT key, value FROM meta").fetchall())
    finally:
        conn.close()


def _hold(writer: Writer) -> tuple[threading.Event, threading.Event]:
    """Occupy the writer thread with a batch that waits for ``go``."""
    go, started = threading.Event(), threading.Event()

    def slow(txn: Txn) -> None:
        started.set()
        assert go.wait(10)
        txn.conn.execute("INSERT INTO meta(key, value) VALUES ('slow', 0)")

    writer.submit(slow)
    assert started.wait(10)
    return go, started


def test_jobs_queued_during_a_batch_share_the_next_one(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite"
    writer = Writer(path)
    try:
        go, _ = _hold(writer)
        # Ten jobs arrive while the slow batch holds the connection.
        rest = [writer.submit(_insert(f"k{i}", i)) for i in range(10)]
        time.sleep(0.2)
        assert not any(f.done() for f in rest)
        assert _committed(path) == {}
        go.set()
        txns = [f.result(10) for f in rest]
        # They all waited for the same batch: one transaction, one commit.
        assert all(t is txns[0] for t in txns)
        assert _committed(path) == {f"k{i}": i for i in range(10)} | {"slow": 0}
    finally:
        writer.close()


def test_a_failing_job_does_not_undo_its_batch(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite"
    writer = Writer(path)

    def bad(txn: Txn) -> None:
        txn.conn.execute("INSERT INTO meta(key, value) VALUES ('bad', 1)")
        raise ValueError("refused")

    try:
        go, _ = _hold(writer)
        futures = [writer.submit(_insert(f"k{i}", i)) for i in range(20)]
        failing = writer.submit(bad)
        go.set()
        with pytest.raises(ValueError, match="refused"):
            failing.result(10)
        assert len({id(f.result(10)) for f in futures}) == 1
        assert _committed(path) == {f"k{i}": i for i in range(20)} | {"slow": 0}
    finally:
        writer.close()


def test_many_threads_and_event_loops_at_once(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite"
    writer = Writer(path)

    def worker(n: int) -> None:
        for i in range(25):
            writer.submit(_insert(f"t{n}-{i}", i)).result(10)

    async def appender(n: int) -> None:
        await asyncio.gather(*(writer.run(_insert(f"a{n}-{i}", i)) for i in range(25)))

    try:
        with ThreadPoolExecutor(12) as pool:
            futures = [pool.submit(worker, n) for n in range(8)]
            futures += [pool.submit(asyncio.run, appender(n)) for n in range(4)]
            for f in futures:
                f.result(30)
        expected = {f"t{n}-{i}": i for n in range(8) for i in range(25)}
        expected |= {f"a{n}-{i}": i for n in range(4) for i in range(25)}
        assert _committed(path) == expected
    finally:
        writer.close()
    with pytest.raises(sqlite3.ProgrammingError):
        writer._conn.execute("SELECT 1")  # closed with the writer


async def test_files_are_durable_before_their_job_runs(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite"
    writer = Writer(path)
    seen: dict[str, bytes] = {}

    def job(name: str) -> Callable[[Txn], str]:
        def fn(txn: Txn) -> str:
            seen[name] = (tmp_path / name).read_bytes()
            txn.conn.execute("INSERT INTO meta(key, value) VALUES (?, 1)", (name,))
            return name

        return fn

    try:
        files = {f"m{i}": os.urandom(100 * i + 1) for i in range(30)}
        missing = str(tmp_path / "no-such-dir" / "x")
        taken = tmp_path / "taken"
        taken.write_bytes(b"first")
        results = await asyncio.gather(
            *(writer.run(job(n), file=(str(tmp_path / n), d)) for n, d in files.items()),
            writer.run(job("lost"), file=(missing, b"never")),
            writer.run(job("taken"), file=(str(taken), b"second")),
            return_exceptions=True,
        )
        assert results[:30] == list(files)
        assert isinstance(results[30], FileNotFoundError)
        assert results[30].filename == missing
        assert isinstance(results[31], FileExistsError)
        # The job ran only after its file was complete; failed files ran nothing.
        assert seen == files
        assert taken.read_bytes() == b"first"
        assert _committed(path) == dict.fromkeys(files, 1)
        for name in files:
            assert (tmp_path / name).stat().st_mode & 0o777 == 0o600
    finally:
        writer.close()


async def test_a_cancelled_job_leaves_no_file_and_no_row(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite"
    writer = Writer(path)
    try:
        go, _ = _hold(writer)
        ran: list[str] = []

        def fn(txn: Txn) -> None:
            ran.append("x")

        waiter = asyncio.ensure_future(writer.run(fn, file=(str(tmp_path / "gone"), b"x" * 10)))
        kept = asyncio.ensure_future(
            writer.run(_insert("kept", 1), file=(str(tmp_path / "kept"), b"k"))
        )
        await asyncio.sleep(0.05)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        go.set()
        await kept
        assert ran == []
        files = sorted(f for f in os.listdir(tmp_path) if not f.startswith("index.sqlite"))
        assert files == ["kept"]
        assert _committed(path) == {"kept": 1, "slow": 0}
    finally:
        writer.close()


async def test_concurrent_appends_get_unique_uids_and_files(tmp_path: Path) -> None:
    async with MaildirStore(tmp_path) as store:
        await store.create_account(ACC)
        bodies = [b"Subject: %d\r\n\r\n" % i + b"x" * (i * 37) for i in range(100)]
        results = await asyncio.gather(*(store.append(ACC, "INBOX", b) for b in bodies))
        assert sorted(r.uid for r in results) == list(range(1, 101))
        assert len({r.modseq for r in results}) == 100
        inbox = tmp_path / "mail" / ACC
        assert os.listdir(inbox / "tmp") == []
        names = os.listdir(inbox / "new")
        assert len(names) == 100
        for body, result in zip(bodies, results, strict=True):
            [name] = [n for n in names if n.endswith(f",U={result.uid}")]
            assert (inbox / "new" / name).read_bytes() == body
            assert await store.read_whole(ACC, "INBOX", result.uid, 10**6) == body


async def test_cancelled_append_leaves_no_orphan(tmp_path: Path) -> None:
    # An append cancelled while its file is being written either completes
    # (the commit had begun) or leaves nothing behind: never a file in tmp/,
    # never an index entry without its file or a file without its entry.
    big = b"Subject: big\r\n\r\n" + b"z" * (32 * 1024 * 1024)
    inbox = tmp_path / "mail" / ACC
    async with MaildirStore(tmp_path) as store:
        await store.create_account(ACC)
        task = asyncio.ensure_future(store.append(ACC, "INBOX", big))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await store.append(ACC, "INBOX", b"Subject: after\r\n\r\nok\r\n")
    # close() waited for the abandoned job.
    assert os.listdir(inbox / "tmp") == []
    async with MaildirStore(tmp_path, reconcile_on_open=False) as store:
        metas = await store.messages(ACC, "INBOX")
    files = os.listdir(inbox / "new")
    assert len(files) == len(metas) and len(metas) in (1, 2)
    assert metas[-1].size == 22
    assert all(m.size in (len(big), 22) for m in metas)


async def _queued(writer: Writer, count: int) -> None:
    """Wait until ``count`` jobs wait for the (held) writer thread."""
    for _ in range(500):
        if writer._queue.qsize() >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{writer._queue.qsize()} jobs queued, expected {count}")


async def test_grouped_jobs_share_one_call_and_a_bad_item_fails_alone(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite"
    writer = Writer(path)
    calls: list[list[str]] = []

    def put(txn: Txn, keys: list[str]) -> list[object]:
        calls.append(list(keys))
        out: list[object] = []
        for key in keys:
            if key == "boom":
                raise ValueError("boom refused")
            txn.conn.execute("INSERT INTO meta(key, value) VALUES (?, 1)", (key,))
            out.append(LookupError(key) if key == "soft" else key.upper())
        return out

    try:
        go, _ = _hold(writer)
        keys = ["a", "b", "soft", "c"]
        tasks = [asyncio.ensure_future(writer.run_grouped(put, k)) for k in keys]
        await _queued(writer, len(keys))
        go.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert calls == [keys]  # one call for the four
        assert results[:2] == ["A", "B"] and results[3] == "C"
        assert isinstance(results[2], LookupError)
        # An item failing by its returned exception keeps what the call wrote.
        assert _committed(path) == {"a": 1, "b": 1, "soft": 1, "c": 1, "slow": 0}

        calls.clear()
        go, _ = _hold(writer)
        keys = ["d", "boom", "e"]
        tasks = [asyncio.ensure_future(writer.run_grouped(put, k)) for k in keys]
        await _queued(writer, len(keys))
        go.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        # The raising call was undone and each item run alone.
        assert calls == [keys, ["d"], ["boom"], ["e"]]
        assert results[0] == "D" and results[2] == "E"
        assert isinstance(results[1], ValueError)
        assert set(_committed(path)) == {"a", "b", "soft", "c", "d", "e", "slow"}
    finally:
        writer.close()


@pytest.mark.parametrize("returning", [True, False], ids=["update-returning", "select-update"])
async def test_appends_to_several_mailboxes_in_one_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, returning: bool
) -> None:
    # Both ways of taking a mailbox's UIDs: UPDATE ... RETURNING, and the
    # SELECT + UPDATE kept for SQLite older than 3.35.
    monkeypatch.setattr(ops, "_RETURNING", returning)
    async with MaildirStore(tmp_path) as store:
        await store.create_account(ACC)
        await store.create_mailbox(ACC, "Work")
        await store.create_mailbox(ACC, "Gone")
        writer = store._writer
        assert writer is not None
        go, _ = _hold(writer)
        # "Gone" is deleted in the same batch, after its message was written.
        deleting = asyncio.ensure_future(store.delete_mailbox(ACC, "Gone"))
        await _queued(writer, 1)
        plan = ["INBOX", "Work", "INBOX", "Gone", "Work", "INBOX"]
        tasks = [
            asyncio.ensure_future(store.append(ACC, box, b"Subject: %d\r\n\r\nbody\r\n" % i))
            for i, box in enumerate(plan)
        ]
        await _queued(writer, 1 + len(plan))
        go.set()
        await deleting
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert isinstance(results[3], MailboxNotFound)
        assert [getattr(r, "uid", None) for r in results] == [1, 1, 2, None, 2, 3]
        for box in ("INBOX", "Work"):
            metas = await store.messages(ACC, box)
            uids = [getattr(r, "uid", None) for r, b in zip(results, plan, strict=True) if b == box]
            assert [m.uid for m in metas] == uids
            for meta, i in zip(metas, [i for i, b in enumerate(plan) if b == box], strict=True):
                raw = await store.read_whole(ACC, box, meta.uid, 10**6)
                assert raw == b"Subject: %d\r\n\r\nbody\r\n" % i
        root = tmp_path / "mail" / ACC
        for maildir in (root, root / ".Work"):
            assert os.listdir(maildir / "tmp") == []
        assert len(os.listdir(root / "new")) == 3 and len(os.listdir(root / ".Work" / "new")) == 2


async def test_an_index_conflict_fails_one_append_and_moves_its_file_back(
    tmp_path: Path,
) -> None:
    # The index already holds UID 3 (a damaged index): the batch insert of
    # UIDs 1-3 fails, the renamed files go back to tmp/, and the appends
    # are retried one by one, so only the third fails and leaves no file.
    async with MaildirStore(tmp_path) as store:
        await store.create_account(ACC)
        writer = store._writer
        assert writer is not None

        def plant(txn: Txn) -> None:
            txn.conn.execute(
                "INSERT INTO messages(mailbox, uid, base, path, size, hdr_size, internaldate,"
                " flags, modseq, cache) SELECT id, 3, 'x', 'new/x', 0, 0, 0, '', 0, '{}'"
                " FROM mailboxes WHERE account=? AND name='INBOX'",
                (ACC,),
            )

        await writer.run(plant)
        go, _ = _hold(writer)
        tasks = [
            asyncio.ensure_future(store.append(ACC, "INBOX", b"Subject: %d\r\n\r\n" % i))
            for i in range(3)
        ]
        await _queued(writer, 3)
        go.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert [getattr(r, "uid", None) for r in results[:2]] == [1, 2]
        assert isinstance(results[2], sqlite3.IntegrityError)
        inbox = tmp_path / "mail" / ACC
        assert os.listdir(inbox / "tmp") == []
        assert sorted(n.rsplit(",U=", 1)[1] for n in os.listdir(inbox / "new")) == ["1", "2"]


class _Escapes(BaseException):
    """Not an Exception: gets past a job's own error handling."""


def test_the_writer_survives_a_batch_that_blows_up(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite"
    writer = Writer(path)

    def bad(txn: Txn) -> None:
        txn.conn.execute("INSERT INTO meta(key, value) VALUES ('bad', 1)")
        raise _Escapes

    try:
        go, _ = _hold(writer)
        doomed: list[Future[Any]] = [writer.submit(_insert("same-batch", 1)), writer.submit(bad)]
        go.set()
        for f in doomed:
            with pytest.raises(_Escapes):
                f.result(10)
        # Nothing of that batch was committed, and the thread still works.
        assert writer.submit(_insert("after", 2)).result(10) is not None
        assert _committed(path) == {"after": 2, "slow": 0}
    finally:
        writer.close()


class _SlowDirSync:
    """The Rust core, except that directory fsyncs wait for ``go`` (and still run)."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.syncing = threading.Event()
        self.go = threading.Event()
        self.fail: OSError | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def sync_dirs(self, dirs: list[str], threads: int = 8) -> None:
        self.syncing.set()
        assert self.go.wait(10)
        if self.fail is not None:
            raise self.fail
        self._real.sync_dirs(dirs, threads=threads)


def _renamed_into(directory: Path, key: str) -> Callable[[Txn], str]:
    """A job like an append: a row, and a directory to fsync before success."""

    def job(txn: Txn) -> str:
        txn.conn.execute("INSERT INTO meta(key, value) VALUES (?, 1)", (key,))
        txn.sync_dirs.add(str(directory))
        return key

    return job


def test_directory_fsync_runs_outside_the_lock_and_before_success(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = _SlowDirSync(_core)
    monkeypatch.setattr("mailcore.store.index._core", slow)
    path = tmp_path / "index.sqlite"
    # Two writers on one index, as the main process and an SMTP worker have.
    first, other = Writer(path), Writer(path)
    try:
        pending = first.submit(_renamed_into(tmp_path, "first"))
        assert slow.syncing.wait(10)
        # Committed, but its caller does not hear of it before the fsync...
        assert _committed(path) == {"first": 1}
        assert not pending.done()
        # ...while the other writer takes the lock and commits meanwhile.
        assert other.submit(_insert("other", 2)).result(10) is not None
        assert not pending.done()
        slow.go.set()
        assert pending.result(10) == "first"
    finally:
        slow.go.set()
        first.close()
        other.close()


def test_a_failed_directory_fsync_fails_the_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = _SlowDirSync(_core)
    slow.fail = OSError(5, "Input/output error")
    slow.go.set()
    monkeypatch.setattr("mailcore.store.index._core", slow)
    writer = Writer(tmp_path / "index.sqlite")
    try:
        with pytest.raises(OSError, match="Input/output error"):
            writer.submit(_renamed_into(tmp_path, "lost")).result(10)
        # A job that renames nothing needs no fsync and still succeeds.
        assert writer.submit(_insert("plain", 1)).result(10) is not None
    finally:
        writer.close()
