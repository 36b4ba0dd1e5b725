"""SMTP server messages/s on loopback: mailcore against aiosmtpd, same run.

Postfix's smtp-source drives each server (20 sessions, a new connection per
message, 4 KiB and 100 KiB payloads); both servers drop what they accept.
Untimed (the normal test run) it sends a few messages so the harness stays
tested; ``pytest benches/bench_smtp.py --benchmark-enable`` or
``mailcore bench smtp`` does the real run. The ratio to aiosmtpd is in
``extra_info``; benches/README.md has the table.
"""

from __future__ import annotations

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from mailcore.smtp import bench


@pytest.mark.parametrize("size", [4096, 100 * 1024])
def test_smtp_server_throughput(benchmark: BenchmarkFixture, size: int) -> None:
    messages = 20 if benchmark.disabled else 2000
    results: list[bench.SMTPResult] = []

    def once() -> None:
        results.clear()
        results.extend(bench.run([size], messages=messages, sessions=20))

    benchmark.pedantic(once, rounds=1, iterations=1)  # type: ignore[no-untyped-call]
    mailcore, aiosmtpd = (next(r for r in results if r.server == name) for name in bench.SERVERS)
    assert mailcore.messages == aiosmtpd.messages == messages
    assert mailcore.per_second > 0 and aiosmtpd.per_second > 0
    # /proc CPU times move in 10 ms ticks: 20 untimed messages may cost less
    # than one tick, so only a timed run can promise a non-zero figure.
    assert mailcore.cpu_seconds >= 0 and aiosmtpd.cpu_seconds >= 0
    if not benchmark.disabled:
        assert mailcore.cpu_seconds > 0 and aiosmtpd.cpu_seconds > 0
    benchmark.extra_info["table"] = bench.format_table(results)
    benchmark.extra_info["ratio_vs_aiosmtpd"] = mailcore.per_second / aiosmtpd.per_second
