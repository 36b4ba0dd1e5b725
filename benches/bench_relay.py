"""Relay throughput: mailcore against Postfix, smtp-source -> relay -> smtp-sink.

Untimed (the normal test run) this relays a few small messages through each
MTA and checks every one arrived; ``--benchmark-enable`` times the full run
(``mailcore bench relay`` prints the table for benches/README.md).
"""

from __future__ import annotations

from typing import Any

import pytest

from mailcore.relay import bench


@pytest.mark.parametrize("mta", bench.MTAS)
def test_relay_throughput(benchmark: Any, mta: str) -> None:
    timed = not benchmark.disabled
    messages = 2000 if timed else 20
    size = 4096 if not timed else 100 * 1024
    result = benchmark.pedantic(
        bench.run_one,
        args=(mta, size),
        kwargs={"messages": messages, "sessions": 20 if timed else 4},
        rounds=1,
        iterations=1,
    )
    assert result.delivered == messages
    assert result.latencies
    benchmark.extra_info["relay_msg_per_s"] = result.relay_per_second
    benchmark.extra_info["latency_p50_ms"] = result.latency_ms(0.5)
