"""Benchmarks run once, untimed, in the normal test run (``--benchmark-disable``).

Timed runs: ``pytest benches --benchmark-enable`` or ``mailcore bench ...``;
every benchmark times a named peer in the same run so results read as ratios.
"""
