"""Crash safety over SMTP: kill -9 the server while clients stream messages, many times.

A child process runs the asyncio SMTP server with :class:`LocalDeliveryHandler`
on a data directory; several client threads send distinct messages with
smtplib and note every one that got its 250. The test SIGKILLs the child at
random moments, restarts it on the same directory, and repeats. Afterwards
every acknowledged message is in the mailbox exactly once, byte for byte
(after the Delivered-To: and Received: lines the server adds), and every
file in new/ and cur/ is a whole message that some client sent.

Run as ``python -m tests.store.test_smtp_crash DATA_DIR`` it is the child.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import smtplib
import subprocess
import sys
import threading
import time
from pathlib import Path

from argon2 import PasswordHasher

from mailcore.auth.accounts import Accounts
from mailcore.delivery import LocalDelivery
from mailcore.smtp.local import LocalDeliveryHandler
from mailcore.smtp.server import SMTPServer
from mailcore.store import MaildirStore

ROOT = Path(__file__).resolve().parents[2]
USER = "ann@example.org"
ROUNDS = 8
CLIENTS = 6


def _cheap_accounts(data: Path) -> Accounts:
    return Accounts(data, hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


async def _child(data: Path) -> None:
    accounts = _cheap_accounts(data)
    async with MaildirStore(data) as store:
        handler = LocalDeliveryHandler(LocalDelivery(store, accounts), ["example.org"])
        server = SMTPServer(handler, hostname="crash.test")
        await server.start("127.0.0.1", 0)
        print(server.port, flush=True)
        await server.serve_forever()


def _message(tag: str, rng: random.Random) -> bytes:
    lines = [f"X-Test-Id: {tag}", f"Subject: crash test {tag}", "From: a@remote.example", ""]
    for i in range(rng.randint(1, 200)):
        # A leading dot exercises dot-stuffing on the way in.
        lines.append(("." if i % 17 == 0 else "") + f"{tag} line {i} " + "x" * rng.randint(0, 70))
    return ("\r\n".join(lines) + "\r\n").encode()


def _client(
    port: int, tag: str, sent: dict[str, bytes], acked: set[str], lock: threading.Lock
) -> None:
    rng = random.Random(tag)
    n = 0
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            while True:
                ident = f"{tag}-{n}"
                n += 1
                msg = _message(ident, rng)
                with lock:
                    sent[ident] = msg
                client.sendmail("a@remote.example", [USER], msg)
                with lock:
                    acked.add(ident)
    except (smtplib.SMTPException, OSError):
        return  # the server was killed: whatever was not acknowledged may or may not be there


def _strip_trace(data: bytes) -> bytes:
    """Remove the Delivered-To: line and the (folded) Received: field the server prepends."""
    prefix = f"Delivered-To: {USER}\r\n".encode()
    assert data.startswith(prefix), data[:80]
    rest = data[len(prefix) :]
    assert rest.startswith(b"Received: "), rest[:80]
    match = re.match(rb"Received: [^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*", rest)
    assert match is not None
    return rest[match.end() :]


def _ident(msg: bytes) -> str:
    match = re.search(rb"^X-Test-Id: (\S+)\r$", msg, re.M)
    assert match is not None, msg[:200]
    return match.group(1).decode()


def test_sigkill_never_loses_an_acknowledged_message(tmp_path: Path) -> None:
    accounts = _cheap_accounts(tmp_path)
    accounts.add_user(USER, "pw")
    accounts.close()
    sent: dict[str, bytes] = {}
    acked: set[str] = set()
    lock = threading.Lock()
    rng = random.Random(1234)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for round_no in range(ROUNDS):
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.store.test_smtp_crash", str(tmp_path)],
            stdout=subprocess.PIPE,
            cwd=ROOT,
            env=env,
        )
        try:
            assert child.stdout is not None
            port = int(child.stdout.readline())
            threads = [
                threading.Thread(target=_client, args=(port, f"r{round_no}c{i}", sent, acked, lock))
                for i in range(CLIENTS)
            ]
            for t in threads:
                t.start()
            # Kill at a random moment, mid-transaction as often as not.
            time.sleep(rng.uniform(0.15, 0.6))
            child.send_signal(signal.SIGKILL)
            child.wait(10)
            for t in threads:
                t.join(15)
                assert not t.is_alive()
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            if child.stdout is not None:
                child.stdout.close()
    # A run that acknowledged nothing proves nothing.
    assert len(acked) > ROUNDS * 5

    # INBOX is the account's top Maildir (Maildir++ layout).
    inbox = tmp_path / "mail" / USER
    files = [p for sub in ("new", "cur") for p in (inbox / sub).iterdir()]
    on_disk: dict[str, int] = {}
    for path in files:
        body = _strip_trace(path.read_bytes())
        ident = _ident(body)
        # Whole messages only: a half-written file would differ from what was sent.
        assert body == sent[ident], ident
        on_disk[ident] = on_disk.get(ident, 0) + 1
    assert all(count == 1 for count in on_disk.values()), on_disk
    assert acked <= set(on_disk), sorted(acked - set(on_disk))[:5]

    async def through_the_store() -> dict[str, int]:
        seen: dict[str, int] = {}
        async with MaildirStore(tmp_path) as store:
            for meta in await store.messages(USER, "INBOX"):
                data = b"".join([c async for c in store.read(USER, "INBOX", meta.uid)])
                ident = _ident(_strip_trace(data))
                assert _strip_trace(data) == sent[ident]
                seen[ident] = seen.get(ident, 0) + 1
        return seen

    # The index (reconciled on open) agrees with the directories.
    assert asyncio.run(through_the_store()) == on_disk


if __name__ == "__main__":
    asyncio.run(_child(Path(sys.argv[1])))
