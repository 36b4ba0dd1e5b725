"""Benchmarks behind ``mailcore bench``: each area times mailcore against named peers.

Every area module exposes ``run(size, repeat) -> list[Result]`` and the table
and JSON writers here; ``mailcore bench codecs`` is the first area (``smtp``,
``imap`` and ``relay`` come with their issues).
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

__all__ = ["Result", "format_table", "median_seconds", "settle_disk", "write_json"]


@dataclass(frozen=True)
class Result:
    """One timed implementation of one operation on one kind of input.

    Attributes:
        operation: what is measured ("base64 encode (MIME)", ...).
        input: the kind of input ("random", "text").
        implementation: the function timed ("mailcore.b64encode", "base64.encodebytes").
        size: input size in bytes (the MB/s are counted on it).
        seconds: median wall time of one call.
        speedup: this operation's mailcore time divided into this row's time
            (how many times faster mailcore is); 1.0 on the mailcore row.
    """

    operation: str
    input: str
    implementation: str
    size: int
    seconds: float
    speedup: float

    @property
    def mb_per_s(self) -> float:
        """Throughput in MB/s (10**6 bytes) of input."""
        return self.size / self.seconds / 1e6 if self.seconds > 0 else float("inf")


def median_seconds(func: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``repeat`` calls of ``func`` (after one warm-up call)."""
    func()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def format_table(results: Sequence[Result], title: str) -> str:
    """Render results as a Markdown table (readable on a terminal too)."""
    lines = [
        f"{title}",
        "",
        "| operation | input | implementation | MB/s | mailcore speed-up |",
        "| --- | --- | --- | ---: | ---: |",
    ]
    for r in results:
        speedup = "" if r.implementation.startswith("mailcore") else f"{r.speedup:.1f}x"
        lines.append(
            f"| {r.operation} | {r.input} | {r.implementation} | {r.mb_per_s:,.0f} | {speedup} |"
        )
    return "\n".join(lines)


def write_json(results: Sequence[Result], path: str) -> None:
    """Write results as a JSON list (one object per row, MB/s included)."""
    rows = [{**asdict(r), "mb_per_s": r.mb_per_s} for r in results]
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(rows, fh, indent=2)
        fh.write("\n")


def settle_disk(seconds: float) -> None:
    """Flush dirty pages and wait, so a timed run does not pay for the files of the one before.

    On ext4 without a journal (this project's CI machines) a new file skips
    the inodes freed in the last 5 s, 35 s while their inode table block is
    dirty: right after a server deleted thousands of queue files, every file
    the next server creates scans past them. Servers that create files take
    turns only after this.
    """
    if seconds <= 0:
        return
    os.sync()
    time.sleep(seconds)
