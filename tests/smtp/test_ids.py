"""Queue ids: unique, 12 hex digits, and not repeated by a forked child."""

from __future__ import annotations

import os
import re

from mailcore.smtp.ids import new_queue_id


def test_ids_are_hex_and_unique_across_blocks() -> None:
    ids = [new_queue_id() for _ in range(5000)]  # several 4 KiB blocks
    assert all(re.fullmatch(r"[0-9a-f]{12}", i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_a_forked_child_draws_its_own() -> None:
    new_queue_id()  # the parent holds a partly used block
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read)
        os.write(write, " ".join(new_queue_id() for _ in range(50)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as fh:
        child = set(fh.read().split())
    os.waitpid(pid, 0)
    parent = {new_queue_id() for _ in range(50)}
    assert len(child) == 50 and not child & parent
