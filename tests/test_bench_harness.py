"""The benchmark harness keeps each run's files apart from the deletions of the runs before."""

from __future__ import annotations

import array
import fcntl
import os
from pathlib import Path

from mailcore.bench import _FS_IOC_GETFLAGS, _FS_TOPDIR_FL, spread_subdirectories


def _flags(path: Path) -> int | None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        flags = array.array("i", [0])
        fcntl.ioctl(fd, _FS_IOC_GETFLAGS, flags, True)
        return flags[0]
    except OSError:
        return None  # no inode flags here (tmpfs): nothing to spread
    finally:
        os.close(fd)


def test_spread_subdirectories_sets_the_top_directory_flag(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    before = _flags(work)
    done = spread_subdirectories(work)
    if before is None:
        # A filesystem without inode flags: the call says so and leaves it.
        assert done is False
        return
    assert done is True
    after = _flags(work)
    assert after is not None and after & _FS_TOPDIR_FL
    # Nothing else changed, and a second call is harmless.
    assert after & ~_FS_TOPDIR_FL == before & ~_FS_TOPDIR_FL
    assert spread_subdirectories(work) is True
    assert _flags(work) == after


def test_spread_subdirectories_is_best_effort(tmp_path: Path) -> None:
    assert spread_subdirectories(tmp_path / "missing") is False
    plain = tmp_path / "file"
    plain.write_text("x")
    assert spread_subdirectories(plain) is False
