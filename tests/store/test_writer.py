"""The index writer's group commit: jobs from the writer thread and from callers' threads.

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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mailcore.store import MaildirStore
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


def test_execute_runs_in_the_callers_thread_and_commits(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite"
    writer = Writer(path)
    try:
        seen: list[str] = []

        def job(txn: Txn) -> int:
            seen.append(threading.current_thread().name)
            txn.conn.execute("INSERT INTO meta(key, value) VALUES ('a', 1)")
            return 7

        def caller() -> int:
            return writer.execute(job)

        with ThreadPoolExecutor(1, thread_name_prefix="caller") as pool:
            assert pool.submit(caller).result() == 7
        # No other batch was running: the caller ran it, and it is committed
        # when execute() returns.
        assert seen == ["caller_0"]
        assert _committed(path) == {"a": 1}
    finally:
        writer.close()


def test_jobs_waiting_during_a_batch_share_the_next_one(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite"
    writer = Writer(path)
    go = threading.Event()
    started = threading.Event()

    def slow(txn: Txn) -> Txn:
        started.set()
        assert go.wait(10)
        txn.conn.execute("INSERT INTO meta(key, value) VALUES ('slow', 0)")
        return txn

    try:
        with ThreadPoolExecutor(12) as pool:
            first = pool.submit(writer.execute, slow)
            assert started.wait(10)
            # Ten callers arrive while the slow batch holds the connection;
            # one more job comes through the writer thread.
            rest = [pool.submit(writer.execute, _insert(f"k{i}", i)) for i in range(10)]
            queued = writer.submit(_insert("via-thread", 99))
            time.sleep(0.2)
            assert not any(f.done() for f in rest)
            go.set()
            slow_txn = first.result(10)
            txns = [f.result(10) for f in rest]
            queued.result(10)
        # They all waited for the same batch: one transaction, one commit.
        assert all(t is txns[0] for t in txns) and txns[0] is not slow_txn
        expected = {f"k{i}": i for i in range(10)} | {"slow": 0, "via-thread": 99}
        assert _committed(path) == expected
    finally:
        writer.close()


def test_a_failing_job_does_not_undo_its_batch(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite"
    writer = Writer(path)

    def bad(txn: Txn) -> None:
        txn.conn.execute("INSERT INTO meta(key, value) VALUES ('bad', 1)")
        raise ValueError("refused")

    try:
        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(writer.execute, _insert(f"k{i}", i)) for i in range(20)]
            failing = pool.submit(writer.execute, bad)
            with pytest.raises(ValueError, match="refused"):
                failing.result(10)
            for f in futures:
                f.result(10)
        assert _committed(path) == {f"k{i}": i for i in range(20)}
    finally:
        writer.close()


def test_many_threads_mixing_execute_and_submit(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite"
    writer = Writer(path)

    def worker(n: int) -> None:
        for i in range(25):
            key = f"t{n}-{i}"
            if i % 3:
                writer.execute(_insert(key, i))
            else:
                writer.submit(_insert(key, i)).result(10)

    try:
        with ThreadPoolExecutor(16) as pool:
            for f in [pool.submit(worker, n) for n in range(16)]:
                f.result(30)
        assert _committed(path) == {f"t{n}-{i}": i for n in range(16) for i in range(25)}
    finally:
        writer.close()
    with pytest.raises(sqlite3.ProgrammingError):
        writer._conn.execute("SELECT 1")  # closed with the writer


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
