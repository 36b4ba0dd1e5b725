"""The whole path, messages/s: smtp-source into ``mailcore serve`` with durable local
delivery, against a private Postfix instance delivering into a Maildir, same run.

Untimed (the normal test run) it sends a few messages through both, so the
harness (config, user, Postfix instance, counting delivered files) stays
tested; ``pytest benches/bench_serve.py --benchmark-enable`` or
``mailcore bench serve`` does the real run. benches/README.md has the table.
"""

from __future__ import annotations

from pytest_benchmark.fixture import BenchmarkFixture

from mailcore.bench import serve
from mailcore.config import smtp_process_count


def test_serve_throughput_against_postfix(benchmark: BenchmarkFixture) -> None:
    messages = 20 if benchmark.disabled else 2000
    results: list[serve.ServeResult] = []

    def once() -> None:
        results.clear()
        settle = 0.0 if benchmark.disabled else 6.0
        results.extend(serve.run(4096, messages=messages, sessions=20, uvloop=False, settle=settle))

    benchmark.pedantic(once, rounds=1, iterations=1)  # type: ignore[no-untyped-call]
    *ours, postfix = results
    mailcore = ours[0]  # the default settings come first
    assert postfix.server.startswith("postfix")
    # The default ("auto": one SMTP process per core), and one process when there are more cores.
    processes = smtp_process_count("auto")
    names = [f"mailcore serve ({n} SMTP process{'es' if n > 1 else ''})" for n in (processes, 1)]
    assert [r.server for r in ours] == names[: 1 if processes == 1 else 2]
    assert all(r.messages == messages and r.seconds > 0 for r in results)
    # One ratio per round, against the Postfix runs on either side of it.
    assert all(len(r.ratios) == 1 and r.ratios[0] > 0 for r in ours) and not postfix.ratios
    table = serve.format_table(results)
    assert table.count("\n") == len(results) + 1
    benchmark.extra_info["table"] = table
    benchmark.extra_info["ratio_vs_postfix"] = mailcore.per_second / postfix.per_second
