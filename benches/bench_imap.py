"""IMAP server speed: mailcore's server against Dovecot's imapd, same messages, same client.

The workloads of :mod:`mailcore.imap.bench` (LOGIN+SELECT, FETCH of
metadata, ENVELOPE, three header fields and every full body, SEARCH BODY),
each timed on both servers holding the same 10 000 messages. In the normal
test run (``--benchmark-disable``) the same code runs once on 20 messages,
and every run checks that both servers answered the same: the same number
of FETCH responses, the same body and header-field octets, the same SEARCH
hits. Timed: ``pytest benches/bench_imap.py --benchmark-enable`` or
``mailcore bench imap`` (alternating rounds, Markdown table).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from mailcore.imap.bench import WORD, WORKLOADS, DovecotIMAP, MailcoreIMAP, _session, corpus

COUNT = 10_000
SMALL = 100  # messages when benchmarks are disabled (one holds the SEARCH word)


def _disabled(config: pytest.Config) -> bool:
    return bool(config.getoption("benchmark_disable")) and not config.getoption("benchmark_enable")


@pytest.fixture(scope="module")
def messages(request: pytest.FixtureRequest) -> list[bytes]:
    return corpus(SMALL if _disabled(request.config) else COUNT)


@pytest.fixture(scope="module")
def servers(messages: list[bytes]) -> Iterator[dict[str, int]]:
    mailcore = MailcoreIMAP(messages)
    dovecot = DovecotIMAP(messages).start()
    try:
        ports = {"mailcore": mailcore.port, "dovecot": dovecot.port}
        for port in ports.values():  # warm-up: Dovecot's index and cache, mailcore's caches
            for _name, command in WORKLOADS:
                asyncio.run(_run(port, command))
        yield ports
    finally:
        mailcore.stop()
        dovecot.stop()


async def _run(port: int, command: str) -> tuple[int, int, list[bytes]]:
    """One workload on a fresh session: (untagged lines, literal octets, kept lines)."""
    c = await _session(port)
    try:
        if not command:
            return 0, 0, []
        _, lines, octets = await c.command(command, keep=command.startswith("SEARCH"))
        return lines, octets, c.kept
    finally:
        await c.close()


def _timed(
    benchmark: BenchmarkFixture, run: Callable[[], tuple[int, int, list[bytes]]]
) -> tuple[int, int, list[bytes]]:
    pedantic: Callable[..., object] = benchmark.pedantic
    result = pedantic(run, rounds=5, iterations=1)
    assert isinstance(result, tuple)
    return result


@pytest.mark.parametrize("server", ["mailcore", "dovecot"])
@pytest.mark.parametrize(("name", "command"), WORKLOADS, ids=[n for n, _ in WORKLOADS])
def test_imap_workload(
    benchmark: BenchmarkFixture,
    servers: dict[str, int],
    messages: list[bytes],
    *,
    server: str,
    name: str,
    command: str,
) -> None:
    benchmark.group = f"imap: {name}"
    lines, octets, kept = _timed(benchmark, lambda: asyncio.run(_run(servers[server], command)))
    if command.startswith("FETCH"):
        assert lines == len(messages)
    if command == "FETCH 1:* BODY.PEEK[]":
        assert octets == sum(map(len, messages))
    if "HEADER.FIELDS" in command:
        # Both servers send the same header-field bytes.
        other = "dovecot" if server == "mailcore" else "mailcore"
        assert octets == asyncio.run(_run(servers[other], command))[1]
    if command.startswith("SEARCH"):
        hits = [i + 1 for i, m in enumerate(messages) if WORD in m]
        assert len(kept) == 1 and kept[0].startswith(b"* SEARCH ")
        assert len(kept[0].split()) - 2 == len(hits)
        if server == "dovecot":
            # Dovecot numbers the files in name order, which is corpus order
            # (mailcore's loader appends concurrently, so its order differs).
            assert kept == [b"* SEARCH " + b" ".join(b"%d" % n for n in hits) + b"\r\n"]
