"""Codec benchmarks: mailcore against the standard library, pybase64 and
Python unstuffing loops, side by side in one run.

Untimed (the normal test run, ``--benchmark-disable``) every implementation
runs once on 64 KiB and its result is checked; timed
(``pytest benches --benchmark-enable``) on 10 MiB. Compare within a
group: ``--benchmark-group-by=group``.
"""

from __future__ import annotations

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from mailcore.bench.codecs import MIB, Case, cases

SMALL = 64 * 1024


_SMALL_CASES = [(case, name) for case in cases(SMALL) for name, _ in case.implementations]
_IDS = [f"{case.operation}-{case.input}-{name}" for case, name in _SMALL_CASES]


@pytest.fixture(scope="module")
def timed_cases(request: pytest.FixtureRequest) -> dict[str, Case]:
    """Cases on 10 MiB when timing, 64 KiB otherwise (built once per module)."""
    # The configured addopts always pass --benchmark-disable; a timed run adds
    # --benchmark-enable, which is what decides.
    enabled = bool(request.config.getoption("benchmark_enable"))
    size = 10 * MIB if enabled else SMALL
    return {f"{case.operation}-{case.input}": case for case in cases(size)}


@pytest.mark.parametrize("index", range(len(_IDS)), ids=_IDS)
def test_codec(benchmark: BenchmarkFixture, timed_cases: dict[str, Case], index: int) -> None:
    small_case, name = _SMALL_CASES[index]
    case = timed_cases[f"{small_case.operation}-{small_case.input}"]
    func = dict(case.implementations)[name]
    benchmark.group = f"{case.operation} ({case.input})"
    result = benchmark(func, case.data)
    if case.expect is not None:
        assert result == case.expect
