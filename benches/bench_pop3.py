"""POP3 server throughput: mailcore's server against Dovecot's pop3d, same messages, same run.

The workloads, servers and client live in :mod:`mailcore.bench.pop3` (also
behind ``mailcore bench pop3``):

- RETR: log in, fetch 1 000 messages of 100 KiB, QUIT (reported as MB/s);
- LIST+UIDL: log in, LIST and UIDL a maildrop of 10 000 messages, QUIT.

In the normal test run (``--benchmark-disable``) the same code runs once on
20 messages, so it stays fast. Timed: ``pytest benches/bench_pop3.py
--benchmark-enable``; compare the two rows of each group (target: mailcore
at least 0.7x Dovecot). ``python -m benches.bench_pop3`` (or ``mailcore bench
pop3``) alternates the two servers round by round instead, which is the run
to trust on a shared machine.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterator

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from mailcore.bench.pop3 import (
    LIST_COUNT,
    LIST_SIZE,
    RETR_COUNT,
    RETR_SIZE,
    Target,
    format_table,
    interleaved,
    list_uidl,
    message,
    retr_all,
    serve,
)

KIB = 1024
SMALL = 20  # messages per workload when benchmarks are disabled


def _disabled(config: pytest.Config) -> bool:
    return bool(config.getoption("benchmark_disable")) and not config.getoption("benchmark_enable")


@pytest.fixture(scope="module", params=["mailcore", "dovecot"])
def retr_target(request: pytest.FixtureRequest) -> Iterator[tuple[Target, int, int]]:
    count, size = (SMALL, 8 * KIB) if _disabled(request.config) else (RETR_COUNT, RETR_SIZE)
    messages = [message(n, size) for n in range(count)]
    for target in serve(request.param, messages):
        yield target, count, sum(map(len, messages))


@pytest.fixture(scope="module", params=["mailcore", "dovecot"])
def list_target(request: pytest.FixtureRequest) -> Iterator[tuple[Target, int]]:
    count = SMALL if _disabled(request.config) else LIST_COUNT
    for target in serve(request.param, [message(n, LIST_SIZE) for n in range(count)]):
        yield target, count


def _timed(benchmark: BenchmarkFixture, run: Callable[[], int], rounds: int) -> int:
    """``benchmark.pedantic`` (untyped in pytest-benchmark) with a typed result."""
    pedantic: Callable[..., object] = benchmark.pedantic
    result = pedantic(run, rounds=rounds, iterations=1)
    assert isinstance(result, int)
    return result


@pytest.mark.benchmark(group="pop3-retr")
def test_retr_throughput(benchmark: BenchmarkFixture, retr_target: tuple[Target, int, int]) -> None:
    target, count, total = retr_target
    received = _timed(benchmark, lambda: asyncio.run(retr_all(target.port, count)), 5)
    assert received == total
    if benchmark.stats is not None:
        seconds = benchmark.stats.stats.mean
        benchmark.extra_info["MB/s"] = round(total / seconds / 1e6, 1)
        print(f"\n{target.name}: RETR {total / seconds / 1e6:.1f} MB/s", file=sys.stderr)


@pytest.mark.benchmark(group="pop3-list-uidl")
def test_list_uidl(benchmark: BenchmarkFixture, list_target: tuple[Target, int]) -> None:
    target, count = list_target
    listed = _timed(benchmark, lambda: asyncio.run(list_uidl(target.port)), 5)
    assert listed == count


if __name__ == "__main__":
    # python -m benches.bench_pop3: alternating rounds, medians and the ratio.
    print(format_table(interleaved()))
