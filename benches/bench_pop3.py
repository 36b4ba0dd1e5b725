"""POP3 server throughput: mailcore's server against Dovecot's pop3d, same messages, same run.

Two workloads, each timed against both servers with the same client
(:class:`mailcore.pop3.client.POP3Client`, RETR pipelined):

- RETR: log in, fetch 1 000 messages of 100 KiB, QUIT (reported as MB/s);
- LIST+UIDL: log in, LIST and UIDL a maildrop of 10 000 messages, QUIT.

Both servers run in their own processes on loopback: mailcore's on a
MaildirStore + Accounts (``python -c``), Dovecot from ``dovecot-pop3d`` with
its own configuration (see ``tests/interop/dovecot_pop3.py``). Each server
gets one untimed warm-up session first (Dovecot builds its index then).

In the normal test run (``--benchmark-disable``) the same code runs once on
20 messages, so it stays fast. Timed: ``pytest benches/bench_pop3.py
--benchmark-enable``; compare the two rows of each group (target: mailcore
at least 0.7x Dovecot).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pytest_benchmark.fixture import BenchmarkFixture
from tests.interop.dovecot_pop3 import PASSWORD, USER, Dovecot

from mailcore.pop3.client import POP3Client

KIB = 1024
RETR_COUNT, RETR_SIZE = 1000, 100 * KIB
LIST_COUNT = 10_000
SMALL = 20  # messages per workload when benchmarks are disabled

_SERVER = """
import asyncio, sys
from argon2 import PasswordHasher
from mailcore.auth.accounts import Accounts
from mailcore.pop3.server import POP3Server
from mailcore.store import MaildirStore

async def main(root):
    store = MaildirStore(root)
    await store.open()
    accounts = Accounts(root, hasher=PasswordHasher(1, 64, 1))
    server = POP3Server(store, accounts, allow_plaintext_auth=True)
    port = await server.listen("127.0.0.1", 0)
    print(port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await server.close()
    await store.close()

asyncio.run(main(sys.argv[1]))
"""


def _message(number: int, size: int) -> bytes:
    head = b"From: bench@example.org\r\nSubject: message %d\r\n\r\n" % number
    line = b"%077d\r\n" % number
    body = line * max(1, (size - len(head)) // len(line))
    return head + body


@dataclass
class Target:
    """A server to time: its port and how to stop it."""

    name: str
    port: int


class MailcoreProcess:
    """mailcore's POP3 server in a child process on a prepared data directory."""

    def __init__(self, messages: list[bytes]) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="mailcore-bench-"))
        asyncio.run(self._fill(messages))
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _SERVER, str(self.root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    async def _fill(self, messages: list[bytes]) -> None:
        from argon2 import PasswordHasher

        from mailcore.auth.accounts import Accounts
        from mailcore.store import MaildirStore

        accounts = Accounts(self.root, hasher=PasswordHasher(1, 64, 1))
        accounts.add_user(USER, PASSWORD)
        accounts.close()
        async with MaildirStore(self.root) as store:
            await store.create_account(USER)
            await asyncio.gather(*(store.append(USER, "INBOX", m) for m in messages))

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.write(b"\n")
            self.proc.stdin.close()
        self.proc.wait(30)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        shutil.rmtree(self.root, ignore_errors=True)


def _disabled(config: pytest.Config) -> bool:
    return bool(config.getoption("benchmark_disable")) and not config.getoption("benchmark_enable")


async def _retr_all(port: int, count: int) -> int:
    pop = await POP3Client.connect("127.0.0.1", port)
    await pop.login(USER, PASSWORD)
    received = 0
    # Pipelined in batches so neither side's buffers grow without bound.
    for start in range(1, count + 1, 50):
        batch = list(range(start, min(start + 50, count + 1)))
        received += sum(map(len, await pop.retr_many(batch)))
    await pop.quit()
    return received


async def _list_uidl(port: int) -> int:
    pop = await POP3Client.connect("127.0.0.1", port)
    await pop.login(USER, PASSWORD)
    sizes = await pop.list()
    uids = await pop.uidl()
    await pop.quit()
    assert len(sizes) == len(uids)
    return len(uids)


@pytest.fixture(scope="module", params=["mailcore", "dovecot"])
def retr_target(request: pytest.FixtureRequest) -> Iterator[tuple[Target, int, int]]:
    count, size = (SMALL, 8 * KIB) if _disabled(request.config) else (RETR_COUNT, RETR_SIZE)
    yield from _serve(request.param, [_message(n, size) for n in range(count)])


@pytest.fixture(scope="module", params=["mailcore", "dovecot"])
def list_target(request: pytest.FixtureRequest) -> Iterator[tuple[Target, int, int]]:
    count = SMALL if _disabled(request.config) else LIST_COUNT
    yield from _serve(request.param, [_message(n, 600) for n in range(count)])


def _serve(name: str, messages: list[bytes]) -> Generator[tuple[Target, int, int], None, None]:
    """Start server ``name`` holding ``messages``; yield it, the count and the octets."""
    count, total = len(messages), sum(map(len, messages))
    if name == "mailcore":
        proc = MailcoreProcess(messages)
        try:
            asyncio.run(_list_uidl(proc.port))  # warm-up, untimed
            yield Target(name, proc.port), count, total
        finally:
            proc.stop()
    else:
        with Dovecot() as dovecot:
            for message in messages:
                dovecot.deliver(message)
            asyncio.run(_list_uidl(dovecot.port))  # Dovecot indexes the Maildir here
            yield Target(name, dovecot.port), count, total


def _timed(benchmark: BenchmarkFixture, run: Callable[[], int], rounds: int) -> int:
    """``benchmark.pedantic`` (untyped in pytest-benchmark) with a typed result."""
    pedantic: Callable[..., object] = benchmark.pedantic
    result = pedantic(run, rounds=rounds, iterations=1)
    assert isinstance(result, int)
    return result


@pytest.mark.benchmark(group="pop3-retr")
def test_retr_throughput(benchmark: BenchmarkFixture, retr_target: tuple[Target, int, int]) -> None:
    target, count, total = retr_target
    received = _timed(benchmark, lambda: asyncio.run(_retr_all(target.port, count)), 5)
    assert received == total
    if benchmark.stats is not None:
        seconds = benchmark.stats.stats.mean
        benchmark.extra_info["MB/s"] = round(total / seconds / 1e6, 1)
        print(f"\n{target.name}: RETR {total / seconds / 1e6:.1f} MB/s", file=sys.stderr)


@pytest.mark.benchmark(group="pop3-list-uidl")
def test_list_uidl(benchmark: BenchmarkFixture, list_target: tuple[Target, int, int]) -> None:
    target, count, _total = list_target
    listed = _timed(benchmark, lambda: asyncio.run(_list_uidl(target.port)), 5)
    assert listed == count


def interleaved(rounds: int = 7) -> dict[str, dict[str, float]]:
    """Time both servers in alternating rounds (fairer on a shared machine).

    Returns workload → {"mailcore": median s, "dovecot": median s}.
    """
    import statistics
    import time

    results: dict[str, dict[str, float]] = {}
    workloads = {
        "RETR 1000 x 100 KiB": [_message(n, RETR_SIZE) for n in range(RETR_COUNT)],
        "LIST+UIDL of 10000": [_message(n, 600) for n in range(LIST_COUNT)],
    }
    for name, messages in workloads.items():
        count = len(messages)

        def run(port: int, count: int = count, name: str = name) -> int:
            if name.startswith("RETR"):
                return asyncio.run(_retr_all(port, count))
            return asyncio.run(_list_uidl(port))

        times: dict[str, list[float]] = {"mailcore": [], "dovecot": []}
        mailcore = _serve("mailcore", messages)
        dovecot = _serve("dovecot", messages)
        try:
            targets = [next(mailcore)[0], next(dovecot)[0]]
            for _ in range(rounds):
                for target in targets:
                    started = time.perf_counter()
                    run(target.port)
                    times[target.name].append(time.perf_counter() - started)
        finally:
            mailcore.close()
            dovecot.close()
        results[name] = {k: statistics.median(v) for k, v in times.items()}
    return results


if __name__ == "__main__":
    # python -m benches.bench_pop3: alternating rounds, medians and the ratio.
    for workload, medians in interleaved().items():
        ratio = medians["dovecot"] / medians["mailcore"]
        print(
            f"{workload}: mailcore {medians['mailcore'] * 1000:.0f} ms, "
            f"dovecot {medians['dovecot'] * 1000:.0f} ms, mailcore/dovecot {ratio:.2f}x"
        )
