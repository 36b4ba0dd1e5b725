"""``mailcore queue list|flush|delete``."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from mailcore.relay.queue import NewMessage, NewRecipient, Outcome, Queue


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailcore", "queue", *args],
        check=False,
        capture_output=True,
        text=True,
    )


def test_queue_list_flush_delete(tmp_path: Path) -> None:
    assert run("list", "--data", str(tmp_path)).stdout == "queue is empty\n"
    q = Queue(tmp_path / "queue")
    q.open()
    now = time.time()
    a = q.enqueue(NewMessage("ann@example.org", [NewRecipient("bob@r.test")], b"x\r\n"), now)
    b = q.enqueue(
        NewMessage("", [NewRecipient("c@r.test"), NewRecipient("d@r.test")], b"y\r\n"), now
    )
    q.record(b, [(0, Outcome.DEFERRED, "451 4.3.0 busy"), (1, Outcome.DELIVERED, "250 ok")], now)
    listing = run("list", "--data", str(tmp_path)).stdout
    assert f"{a}          3  " in listing and "<ann@example.org>" in listing
    assert "    bob@r.test  queued  attempts=0" in listing
    assert "    c@r.test  queued  attempts=1" in listing and "(451 4.3.0 busy)" in listing
    assert "    d@r.test  delivered  attempts=1" in listing
    assert q.due(now + 1) == [q.message(a)]
    assert run("flush", "--data", str(tmp_path)).stdout == "2 recipients due now\n"
    assert {m.id for m in q.due(time.time())} == {a, b}
    done = run("delete", a.lower(), "--data", str(tmp_path))
    assert done.returncode == 0 and done.stdout == f"deleted {a}\n"
    again = run("delete", a, "--data", str(tmp_path))
    assert again.returncode == 1 and "no message" in again.stderr
    assert [m.id for m in q.entries()] == [b]
    assert not (tmp_path / "queue" / "spool" / a).exists()


def test_queue_list_takes_the_data_dir_of_config(tmp_path: Path) -> None:
    data = tmp_path / "elsewhere"
    config = tmp_path / "mailcore.toml"
    config.write_text(f'data_dir = "{data}"\n')
    assert run("list", "--config", str(config)).stdout == "queue is empty\n"
    q = Queue(data / "queue")
    q.open()
    q.enqueue(NewMessage("ann@example.org", [NewRecipient("bob@r.test")], b"x\r\n"), time.time())
    done = run("list", "--config", str(config))
    assert done.returncode == 0 and "bob@r.test  queued" in done.stdout, done.stderr


def test_bench_relay_is_wired() -> None:
    from mailcore.cli import _cmd_bench_relay, build_parser

    args = build_parser().parse_args(["bench", "relay", "--messages", "10", "--sizes", "4096"])
    assert args.handler is _cmd_bench_relay
    assert (args.messages, args.sessions, args.sizes) == (10, 20, "4096")
