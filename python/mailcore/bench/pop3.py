"""POP3 server throughput: mailcore's server against Dovecot's pop3d, same messages, same run.

Two workloads, each timed against both servers with the same client
(:class:`mailcore.pop3.client.POP3Client`, RETR pipelined in batches of 50):

- RETR: log in, fetch every message of a maildrop (1 000 of 100 KiB), QUIT;
- LIST+UIDL: log in, LIST and UIDL a maildrop (10 000 messages), QUIT.

Both servers run in their own processes on loopback: mailcore's on a
MaildirStore + Accounts, Dovecot from ``dovecot-pop3d`` with its own
configuration (:mod:`mailcore.bench.dovecot`). Each server gets one untimed
warm-up session first (Dovecot builds its index then). :func:`interleaved`
alternates the two servers round by round, which is fairer on a shared
machine than timing one after the other. ``mailcore bench pop3`` and
``benches/bench_pop3.py`` run this code.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

from mailcore.bench.dovecot import PASSWORD, USER, Dovecot
from mailcore.pop3.client import POP3Client

__all__ = [
    "LIST_COUNT",
    "RETR_COUNT",
    "RETR_SIZE",
    "MailcoreProcess",
    "POP3Result",
    "Target",
    "format_table",
    "interleaved",
    "list_uidl",
    "message",
    "retr_all",
    "serve",
]

KIB = 1024
#: The issue's workloads: RETR of 1 000 messages of 100 KiB, LIST+UIDL of 10 000.
RETR_COUNT, RETR_SIZE = 1000, 100 * KIB
LIST_COUNT = 10_000
#: Size of each message of the LIST+UIDL maildrop.
LIST_SIZE = 600
SERVERS = ("mailcore", "dovecot")

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


def message(number: int, size: int) -> bytes:
    """A mail-like message of about ``size`` octets (80-octet CRLF lines)."""
    head = b"From: bench@example.org\r\nSubject: message %d\r\n\r\n" % number
    line = b"%077d\r\n" % number
    body = line * max(1, (size - len(head)) // len(line))
    return head + body


@dataclass
class Target:
    """A running server to time: its name and port."""

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
        assert self.proc.stdout is not None  # stdout=PIPE above
        self.port = int(self.proc.stdout.readline())

    async def _fill(self, messages: list[bytes]) -> None:
        from argon2 import PasswordHasher

        from mailcore.auth.accounts import Accounts
        from mailcore.store import MaildirStore

        # Cheap argon2 parameters: logins are not what is timed.
        accounts = Accounts(self.root, hasher=PasswordHasher(1, 64, 1))
        accounts.add_user(USER, PASSWORD)
        accounts.close()
        async with MaildirStore(self.root) as store:
            await store.create_account(USER)
            await asyncio.gather(*(store.append(USER, "INBOX", m) for m in messages))

    def stop(self) -> None:
        """Stop the server process and remove its data directory."""
        if self.proc.stdin is not None:
            self.proc.stdin.write(b"\n")
            self.proc.stdin.close()
        self.proc.wait(30)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        shutil.rmtree(self.root, ignore_errors=True)


async def retr_all(port: int, count: int) -> int:
    """Log in, RETR messages 1..count (pipelined, 50 at a time), QUIT; return the octets."""
    pop = await POP3Client.connect("127.0.0.1", port)
    await pop.login(USER, PASSWORD)
    received = 0
    # Pipelined in batches so neither side's buffers grow without bound.
    for start in range(1, count + 1, 50):
        batch = list(range(start, min(start + 50, count + 1)))
        received += sum(map(len, await pop.retr_many(batch)))
    await pop.quit()
    return received


async def list_uidl(port: int) -> int:
    """Log in, LIST and UIDL the maildrop, QUIT; return the number of messages."""
    pop = await POP3Client.connect("127.0.0.1", port)
    await pop.login(USER, PASSWORD)
    sizes = await pop.list()
    uids = await pop.uidl()
    await pop.quit()
    assert len(sizes) == len(uids)
    return len(uids)


def serve(name: str, messages: list[bytes]) -> Generator[Target, None, None]:
    """Start server ``name`` (mailcore or dovecot) holding ``messages``, warm it up, yield it."""
    if name == "mailcore":
        proc = MailcoreProcess(messages)
        try:
            asyncio.run(list_uidl(proc.port))  # warm-up, untimed
            yield Target(name, proc.port)
        finally:
            proc.stop()
    else:
        with Dovecot() as dovecot:
            for data in messages:
                dovecot.deliver(data)
            asyncio.run(list_uidl(dovecot.port))  # Dovecot indexes the Maildir here
            yield Target(name, dovecot.port)


@dataclass(frozen=True)
class POP3Result:
    """Median wall time of one workload on one server, over the alternating rounds."""

    workload: str
    server: str
    messages: int
    octets: int
    seconds: float
    rounds: int

    @property
    def mb_per_s(self) -> float:
        """Message octets delivered per second, in MB (10**6 octets)."""
        return self.octets / self.seconds / 1e6 if self.seconds > 0 else float("inf")


def interleaved(
    rounds: int = 7,
    *,
    retr_count: int = RETR_COUNT,
    retr_size: int = RETR_SIZE,
    list_count: int = LIST_COUNT,
) -> list[POP3Result]:
    """Time both servers on both workloads, alternating server by server each round.

    Every run's result is checked (all octets received, every message
    listed); the medians are returned.
    """
    results: list[POP3Result] = []
    workloads = {
        f"RETR {retr_count} x {retr_size / KIB:g} KiB": [
            message(n, retr_size) for n in range(retr_count)
        ],
        f"LIST+UIDL of {list_count}": [message(n, LIST_SIZE) for n in range(list_count)],
    }
    for name, messages in workloads.items():
        count, octets = len(messages), sum(map(len, messages))
        if name.startswith("RETR"):

            def run(port: int, count: int = count, octets: int = octets) -> None:
                got = asyncio.run(retr_all(port, count))
                assert got == octets, f"received {got} octets of {octets}"
        else:

            def run(port: int, count: int = count, octets: int = octets) -> None:
                got = asyncio.run(list_uidl(port))
                assert got == count, f"listed {got} messages of {count}"

        times: dict[str, list[float]] = {server: [] for server in SERVERS}
        running = [serve(server, messages) for server in SERVERS]
        try:
            targets = [next(gen) for gen in running]
            for _ in range(rounds):
                for target in targets:
                    started = time.perf_counter()
                    run(target.port)
                    times[target.name].append(time.perf_counter() - started)
        finally:
            for gen in running:
                gen.close()
        for server in SERVERS:
            seconds = statistics.median(times[server])
            results.append(POP3Result(name, server, count, octets, seconds, rounds))
    return results


def format_table(results: list[POP3Result]) -> str:
    """A Markdown table: per workload, each server's median and mailcore / Dovecot."""
    lines = [
        "| workload | mailcore | Dovecot | mailcore / Dovecot |",
        "| --- | --- | --- | --- |",
    ]
    by_workload: dict[str, dict[str, POP3Result]] = {}
    for r in results:
        by_workload.setdefault(r.workload, {})[r.server] = r

    def cell(r: POP3Result) -> str:
        text = f"{r.seconds * 1000:,.0f} ms"
        return f"{text} ({r.mb_per_s:,.0f} MB/s)" if r.workload.startswith("RETR") else text

    for workload, row in by_workload.items():
        ours, peer = row["mailcore"], row["dovecot"]
        ratio = peer.seconds / ours.seconds
        lines.append(f"| {workload} | {cell(ours)} | {cell(peer)} | **{ratio:.2f}x** |")
    rounds = results[0].rounds if results else 0
    title = f"POP3: median of {rounds} alternating rounds (ratio = Dovecot time / mailcore time)"
    return "\n".join([title, "", *lines])
