"""Benchmarks behind ``mailcore bench``: each area times mailcore against named peers.

Every area module exposes ``run(size, repeat) -> list[Result]`` and the table
and JSON writers here; ``mailcore bench codecs`` is the first area (``smtp``,
``imap`` and ``relay`` come with their issues).
"""

from __future__ import annotations

import array
import fcntl
import json
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

__all__ = [
    "Result",
    "format_table",
    "median_seconds",
    "settle_disk",
    "spread_subdirectories",
    "write_json",
]


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
    """Flush dirty pages and wait, so a timed run does not pay for the writeback of the one before.

    On ext4 without a journal (this project's CI machines) a new file also
    skips every inode of its block group freed in the last 60 s (360 s while
    the freed inode's table block is dirty; the sync here cleans it), and
    each allocation scans past them from the start of the group. A pause
    cannot wait that out between runs: :func:`spread_subdirectories` keeps
    each run in block groups of its own instead.
    """
    if seconds <= 0:
        return
    os.sync()
    time.sleep(seconds)


# linux/fs.h: FS_IOC_GETFLAGS / FS_IOC_SETFLAGS (an int, whatever the macro's
# type says) and FS_TOPDIR_FL, what `chattr +T` sets.
_FS_IOC_GETFLAGS = 0x80086601
_FS_IOC_SETFLAGS = 0x40086602
_FS_TOPDIR_FL = 0x00020000


def spread_subdirectories(path: os.PathLike[str] | str) -> bool:
    """Mark ``path`` as the top of directory trees for ext4's allocator (``chattr +T``).

    ext4 then puts each new subdirectory of ``path``, and the files below it,
    in the least used group of block groups it can find, instead of next to
    ``path``. For a benchmark that means each run's files get inodes of
    their own: on ext4 without a journal, creating a file in a group where
    thousands were deleted in the last minute scans past every one of them
    (``find_inode_bit`` -> ``recently_deleted``), so a run next to ``/tmp``
    pays for whatever an earlier benchmark or test run cleaned up there.

    Best effort: False where the filesystem has no such flag (tmpfs, btrfs,
    ...), where the allocator has nothing to do with it anyway.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return False
    try:
        flags = array.array("i", [0])
        fcntl.ioctl(fd, _FS_IOC_GETFLAGS, flags, True)
        if not flags[0] & _FS_TOPDIR_FL:
            flags[0] |= _FS_TOPDIR_FL
            fcntl.ioctl(fd, _FS_IOC_SETFLAGS, flags, True)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
