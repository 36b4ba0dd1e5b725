"""The embedded store against Python's ``mailbox.Maildir``, same run, same disk.

Durable append of 4 KiB messages:

- ``mailcore-32``: :meth:`MaildirStore.append` with 32 appends in flight (as
  32 SMTP sessions would deliver), each one awaited until durable: file
  fsynced, renamed into ``new/``, directory fsynced, index committed. The
  store shares directory fsyncs and commits between concurrent appends.
- ``mailcore-1``: the same, one append at a time (no sharing possible).
- ``mailbox.Maildir+fsync``: ``Maildir.add`` then ``os.fsync`` of the new
  file and of ``new/``: the same durability, the classic way, sequential
  (``mailbox`` is a synchronous API).

Listing UID, flags and size of every message in one mailbox:

- ``mailcore``: :meth:`MaildirStore.messages` (one indexed SQLite query).
- ``mailbox.Maildir``: ``keys()`` then ``get_message(key)`` per message (flags
  from ``get_flags()``, size from the message's bytes) — each file opened
  once, which is what that API needs to report flags.

Timed: ``python -m pytest benches/bench_store.py --benchmark-enable`` (2 000
appends, 100 000 messages listed); the normal test run uses small numbers.
"""

from __future__ import annotations

import asyncio
import mailbox
import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from mailcore.store import MaildirStore
from mailcore.store.files import info_from_flags, normalize_flags

ACC = "bench@example.org"
T = TypeVar("T")


def message(i: int, size: int = 4096) -> bytes:
    """A 4 KiB mail-like message."""
    head = f"From: a@example.org\r\nTo: {ACC}\r\nSubject: message {i}\r\n\r\n".encode()
    line = b"x" * 76 + b"\r\n"
    body = line * ((size - len(head)) // len(line))
    return head + body + b"y" * (size - len(head) - len(body))


def timed(benchmark: BenchmarkFixture, fn: Callable[[], T], rounds: int = 1) -> T:
    """``benchmark.pedantic`` (untyped in pytest-benchmark) with fixed rounds."""
    pedantic: Callable[..., T] = benchmark.pedantic
    return pedantic(fn, rounds=rounds, iterations=1)


def _appends(benchmark: BenchmarkFixture) -> int:
    return 2000 if benchmark.enabled else 64


def _listing(benchmark: BenchmarkFixture) -> int:
    return 100_000 if benchmark.enabled else 300


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    lp = asyncio.new_event_loop()
    yield lp
    lp.close()


@pytest.mark.parametrize("concurrency", [32, 1])
@pytest.mark.benchmark(group="store-append-4KiB")
def test_append_mailcore(
    benchmark: BenchmarkFixture,
    tmp_path: Path,
    loop: asyncio.AbstractEventLoop,
    concurrency: int,
) -> None:
    n = _appends(benchmark)
    store = MaildirStore(tmp_path)
    loop.run_until_complete(store.open())
    loop.run_until_complete(store.create_account(ACC))
    data = [message(i) for i in range(n)]

    async def run() -> None:
        sem = asyncio.Semaphore(concurrency)

        async def one(d: bytes) -> None:
            async with sem:
                await store.append(ACC, "INBOX", d)

        await asyncio.gather(*(one(d) for d in data))

    benchmark.extra_info["messages"] = n
    timed(benchmark, lambda: loop.run_until_complete(run()))
    count = loop.run_until_complete(store.status(ACC, "INBOX")).messages
    loop.run_until_complete(store.close())
    assert count == n


def _fsync_path(path: str, flags: int = os.O_RDONLY) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@pytest.mark.benchmark(group="store-append-4KiB")
def test_append_mailbox_maildir_fsync(benchmark: BenchmarkFixture, tmp_path: Path) -> None:
    n = _appends(benchmark)
    md = mailbox.Maildir(tmp_path / "peer", create=True)
    data = [message(i) for i in range(n)]
    new_dir = str(tmp_path / "peer" / "new")

    def run() -> None:
        for d in data:
            key = md.add(d)
            _fsync_path(os.path.join(new_dir, key))
            _fsync_path(new_dir, os.O_RDONLY | os.O_DIRECTORY)

    benchmark.extra_info["messages"] = n
    timed(benchmark, run)
    assert len(md) == n


def build_listing_maildir(root: Path, n: int) -> dict[str, tuple[str, int]]:
    """``n`` messages written straight into a Maildir (a third of them flagged in cur/)."""
    rng = random.Random(7)
    for sub in ("tmp", "new", "cur"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    expected: dict[str, tuple[str, int]] = {}
    for i in range(n):
        data = message(i, size=rng.randint(500, 3000))
        base = f"1700000000.M{i}P1.bench"
        if i % 3:
            (root / "new" / base).write_bytes(data)
            expected[base] = ("", len(data))
        else:
            info = info_from_flags(normalize_flags(rng.sample(["\\Seen", "\\Flagged"], 1)))
            (root / "cur" / f"{base}:2,{info}").write_bytes(data)
            expected[base] = (info, len(data))
    return expected


@pytest.fixture
def listing_dir(tmp_path: Path, benchmark: BenchmarkFixture) -> tuple[Path, int]:
    n = _listing(benchmark)
    build_listing_maildir(tmp_path / "mail" / ACC, n)
    return tmp_path, n


@pytest.mark.benchmark(group="store-list")
def test_list_mailcore(
    benchmark: BenchmarkFixture, listing_dir: tuple[Path, int], loop: asyncio.AbstractEventLoop
) -> None:
    root, n = listing_dir
    store = MaildirStore(root)
    loop.run_until_complete(store.open())  # the first open indexes the files (untimed)

    def run() -> list[tuple[int, frozenset[str], int]]:
        metas = loop.run_until_complete(store.messages(ACC, "INBOX"))
        return [(m.uid, m.flags, m.size) for m in metas]

    listing = timed(benchmark, run, rounds=3)
    loop.run_until_complete(store.close())
    assert len(listing) == n
    assert sum(1 for _u, f, _s in listing if f) == len(range(0, n, 3))


@pytest.mark.benchmark(group="store-list")
def test_list_mailbox_maildir(benchmark: BenchmarkFixture, listing_dir: tuple[Path, int]) -> None:
    root, n = listing_dir
    md = mailbox.Maildir(root / "mail" / ACC, create=False)

    def run() -> list[tuple[str, str, int]]:
        out = []
        for key in md.iterkeys():
            msg = md.get_message(key)
            out.append((key, msg.get_flags(), len(msg.as_bytes())))
        return out

    listing = timed(benchmark, run, rounds=3)
    assert len(listing) == n
    assert sum(1 for _k, f, _s in listing if f) == len(range(0, n, 3))
