"""SIGKILL of the relay process in the middle of a stream: nothing lost, nothing twice."""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import subprocess
import sys
from pathlib import Path

from mailcore.errors import MailcoreError
from mailcore.limits import SMTPClientLimits
from mailcore.relay.queue import Queue
from mailcore.smtp.client import SMTPClient
from mailcore.smtp.handlers import Envelope
from mailcore.smtp.server import SMTPServer
from tests.relay.conftest import Hop, strip_received, wait_for

FAST = SMTPClientLimits(connect_timeout=5, command_timeout=5, data_end_timeout=5)
N = 40
KILL_AT = 12


def start_relay(queue: Path, hop_port: int) -> tuple[subprocess.Popen[bytes], int]:
    # One session to the next hop, so the kill below lands while the hop
    # holds a message whose predecessors' 250s are all recorded.
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mailcore.relay.service",
            "--queue",
            str(queue),
            "--smarthost",
            f"127.0.0.1:{hop_port}",
            "--per-destination",
            "1",
        ],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip().isdigit(), line
    return proc, int(line)


def queue_empty(path: Path) -> bool:
    q = Queue(path)
    q.open(owner=False)
    try:
        return q.entries() == []
    finally:
        q.close()


def message(n: int, attempt: int) -> bytes:
    return f"Subject: msg {n}\r\nX-Try: {n}.{attempt}\r\n\r\nbody {n}\r\n".encode()


async def client_stream(
    port: int, todo: list[int], attempt: int, acked: set[tuple[int, int]]
) -> None:
    """Send ``todo`` over two sessions until the relay goes away."""

    async def session(share: list[int]) -> None:
        try:
            async with SMTPClient("127.0.0.1", port, limits=FAST) as c:
                for n in share:
                    result = await c.send_message(
                        message(n, attempt), "a@client.test", ["b@r.test"]
                    )
                    if result.ok:
                        acked.add((n, attempt))
        except (MailcoreError, OSError):
            return  # the relay was killed: what got no 250 is sent again later

    await asyncio.gather(session(todo[0::2]), session(todo[1::2]))


async def test_sigkill_mid_stream_loses_nothing_duplicates_nothing(tmp_path: Path) -> None:
    handler = Hop()
    held = asyncio.get_running_loop().create_future()
    release: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def hold(envelope: Envelope) -> asyncio.Future[None] | None:
        if len(handler.messages) == KILL_AT and not held.done():
            held.set_result(None)
            return release
        return None

    handler.hold = hold
    hop = SMTPServer(handler, hostname="hop.test")
    await hop.start("127.0.0.1", 0)
    acked: set[tuple[int, int]] = set()
    proc, port = start_relay(tmp_path / "queue", hop.port)
    try:
        stream = asyncio.ensure_future(client_stream(port, list(range(N)), 0, acked))
        await asyncio.wait_for(asyncio.shield(held), 30)
        # The hop is holding message KILL_AT+1 on the relay's one session.
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert proc.stdout is not None
        proc.stdout.close()
        release.set_result(None)
        await asyncio.wait_for(stream, 30)
        # Mid-stream: the relay had acknowledged more than it had delivered.
        assert len(handler.messages) == KILL_AT
        assert len(acked) > KILL_AT + 1
        # Restart on the same queue; the client sends again what got no 250.
        proc, port = start_relay(tmp_path / "queue", hop.port)
        missing = [n for n in range(N) if (n, 0) not in acked]
        await client_stream(port, missing, 1, acked)
        wanted = {n for n, _ in acked}
        assert wanted == set(range(N))

        def seen() -> list[str]:
            out = []
            for m in handler.messages:
                found = re.search(rb"X-Try: (\d+)\.(\d+)", m.data)
                assert found is not None
                out.append(found.group(0).decode())
            return out

        await wait_for(lambda: {int(t.split()[1].split(".")[0]) for t in seen()} == wanted, 30)
        await wait_for(lambda: queue_empty(tmp_path / "queue"), 10)
    finally:
        proc.kill()
        proc.wait(10)
        if proc.stdout:
            proc.stdout.close()
        await hop.stop()
    tries = seen()
    # Nothing twice: every accepted copy reached the hop exactly once ...
    assert len(tries) == len(set(tries)), sorted(tries)
    # ... and every copy the relay acknowledged reached it.
    assert {f"X-Try: {n}.{a}" for n, a in acked} <= set(tries)
    for m in handler.messages:
        assert strip_received(m.data).startswith(b"Subject: msg ")


async def test_sigkill_at_random_moments_loses_nothing(tmp_path: Path) -> None:
    # Kills at arbitrary moments (accepting, writing, delivering, recording):
    # every message that got its 250 reaches the next hop; a kill between the
    # hop's 250 and the commit may repeat one delivery, never drop one.
    handler = Hop()
    hop = SMTPServer(handler, hostname="hop.test")
    await hop.start("127.0.0.1", 0)
    acked: set[tuple[int, int]] = set()
    rng = random.Random(1234)
    proc: subprocess.Popen[bytes] | None = None
    try:
        todo = list(range(30))
        for attempt in range(3):
            proc, port = start_relay(tmp_path / "queue", hop.port)
            stream = asyncio.ensure_future(client_stream(port, todo, attempt, acked))
            await asyncio.sleep(rng.uniform(0.05, 0.3))
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
            assert proc.stdout is not None
            proc.stdout.close()
            await asyncio.wait_for(stream, 30)
            todo = [n for n in range(30) if not any((n, a) in acked for a in range(attempt + 1))]
        proc, port = start_relay(tmp_path / "queue", hop.port)
        await client_stream(port, todo, 9, acked)
        assert {n for n, _ in acked} == set(range(30))
        wanted = {f"X-Try: {n}.{a}" for n, a in acked}

        def seen() -> set[str]:
            found = (re.search(rb"X-Try: \d+\.\d+", m.data) for m in handler.messages)
            return {f.group(0).decode() for f in found if f is not None}

        await wait_for(lambda: wanted <= seen(), 30)
        await wait_for(lambda: queue_empty(tmp_path / "queue"), 10)
    finally:
        if proc is not None:
            proc.kill()
            proc.wait(10)
            if proc.stdout and not proc.stdout.closed:
                proc.stdout.close()
        await hop.stop()
