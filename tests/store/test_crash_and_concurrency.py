"""Kill -9 during appends, and two processes writing one mailbox at once.

Child processes run small scripts through the public store API; the test
only looks at what they reported and at what is on disk.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from mailcore.store import ChangeKind, MaildirStore

ACC = "crash@example.org"

# Appends messages forever, 8 at a time, printing "uid id" for each append
# that returned. Each message names itself and carries its own SHA-256 so a
# torn file cannot pass as a whole one.
APPENDER = r"""
import asyncio, hashlib, os, sys
from mailcore.store import MaildirStore

def message(ident):
    body = (f"{ident} ".encode() * (1 + int(ident.split("-")[1]) % 700))
    digest = hashlib.sha256(body).hexdigest()
    return f"Subject: {ident}\r\nX-Digest: {digest}\r\n\r\n".encode() + body

async def one(store, ident):
    result = await store.append(sys.argv[2], "INBOX", message(ident))
    sys.stdout.write(f"{result.uid} {ident}\n")
    sys.stdout.flush()

async def main():
    run = sys.argv[3]
    async with MaildirStore(sys.argv[1]) as store:
        await store.create_account(sys.argv[2])
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        n = 0
        while True:
            await asyncio.gather(*(one(store, f"{run}-{n + i}") for i in range(8)))
            n += 8

asyncio.run(main())
"""


def _check_message(data: bytes) -> str:
    header, _, body = data.partition(b"\r\n\r\n")
    fields = dict(line.split(b": ", 1) for line in header.split(b"\r\n"))
    assert hashlib.sha256(body).hexdigest().encode() == fields[b"X-Digest"]
    return fields[b"Subject"].decode()


def test_sigkill_during_appends_loses_and_tears_nothing(tmp_path: Path) -> None:
    rng = random.Random(4)
    reported: dict[str, int] = {}
    script = tmp_path / "appender.py"
    script.write_text(APPENDER)
    kills = 0
    deadline = time.monotonic() + 6
    while kills < 10 and time.monotonic() < deadline:
        proc = subprocess.Popen(
            [sys.executable, str(script), str(tmp_path / "data"), ACC, f"r{kills}"],
            stdout=subprocess.PIPE,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
        time.sleep(rng.uniform(0.02, 0.25))
        proc.send_signal(signal.SIGKILL)
        out = proc.stdout.read()
        proc.stdout.close()
        proc.wait()
        kills += 1
        for line in out.decode().splitlines():
            uid_text, ident = line.split()
            assert ident not in reported
            reported[ident] = int(uid_text)
    assert kills >= 5 and len(reported) > 20

    maildir = tmp_path / "data" / "mail" / ACC
    # Nothing half-written is visible: every file in new/ and cur/ is whole.
    seen_files: dict[str, int] = {}
    for sub in ("new", "cur"):
        for name in os.listdir(maildir / sub):
            ident = _check_message((maildir / sub / name).read_bytes())
            seen_files[ident] = seen_files.get(ident, 0) + 1

    async def index_view() -> dict[str, int]:
        async with MaildirStore(tmp_path / "data") as store:
            by_ident: dict[str, int] = {}
            for meta in await store.messages(ACC, "INBOX"):
                data = b"".join([c async for c in store.read(ACC, "INBOX", meta.uid)])
                ident = _check_message(data)
                assert ident not in by_ident
                by_ident[ident] = meta.uid
            return by_ident

    indexed = asyncio.run(index_view())
    # Every reported message is there exactly once, under the UID it was given.
    for ident, given_uid in reported.items():
        assert seen_files.get(ident) == 1, ident
        assert indexed[ident] == given_uid
    # After the reopen's reconcile, index and files agree.
    assert sorted(indexed) == sorted(seen_files)
    uids = sorted(indexed.values())
    assert len(set(uids)) == len(uids)


# One of two writer processes: appends, flags and expunges in a loop and
# prints every UID/MODSEQ it was handed.
WRITER = r"""
import asyncio, sys
from mailcore.store import FlagMode, MaildirStore

async def main():
    name = sys.argv[3]
    async with MaildirStore(sys.argv[1]) as store:
        for i in range(int(sys.argv[4])):
            data = f"Subject: {name}-{i}\r\n\r\nx\r\n".encode()
            r = await store.append(sys.argv[2], "INBOX", data)
            print("append", r.uid, r.modseq, flush=True)
            res = await store.store_flags(sys.argv[2], "INBOX", [r.uid], ["\\Seen"], FlagMode.ADD)
            print("flags", r.uid, res.modseq, flush=True)
            if i % 3 == 2:
                await store.store_flags(sys.argv[2], "INBOX", [r.uid], ["\\Deleted"], FlagMode.ADD)
                gone = await store.expunge(sys.argv[2], "INBOX", [r.uid])
                print("expunge", r.uid, len(gone), flush=True)

asyncio.run(main())
"""


async def test_two_processes_write_and_a_third_session_sees_everything(tmp_path: Path) -> None:
    data = tmp_path / "data"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    per_process = 30
    async with MaildirStore(data) as watcher:
        await watcher.create_account(ACC)
        feed = watcher.watch(ACC, "INBOX", session="observer")
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                str(script),
                str(data),
                ACC,
                name,
                str(per_process),
                stdout=asyncio.subprocess.PIPE,
            )
            for name in ("p1", "p2")
        ]
        outputs = await asyncio.gather(*(p.communicate() for p in procs))
        assert [p.returncode for p in procs] == [0, 0]

        appended: list[int] = []
        expunged: list[int] = []
        modseqs_per_process = []
        for out, _err in outputs:
            seqs = []
            uids = []
            for line in out.decode().splitlines():
                kind, uid_text, value = line.split()
                if kind == "append":
                    uids.append(int(uid_text))
                    seqs.append(int(value))
                elif kind == "flags":
                    seqs.append(int(value))
                else:
                    assert value == "1"
                    expunged.append(int(uid_text))
            # Within one process, every UID and MODSEQ it got is larger than the last.
            assert uids == sorted(uids) and len(set(uids)) == len(uids)
            assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
            appended += uids
            modseqs_per_process.append(set(seqs))
        assert len(set(appended)) == 2 * per_process
        assert not (modseqs_per_process[0] & modseqs_per_process[1])

        # The third session's feed reports every append, flag change and expunge.
        wanted = {(ChangeKind.APPENDED, u) for u in appended} | {
            (ChangeKind.EXPUNGED, u) for u in expunged
        }
        got: set[tuple[ChangeKind, int]] = set()
        flag_changes: set[int] = set()
        last_modseq = 0
        deadline = time.monotonic() + 10
        while (not wanted <= got or len(flag_changes) < len(appended)) and (
            time.monotonic() < deadline
        ):
            change = await asyncio.wait_for(feed.next(), 10)
            assert change.modseq >= last_modseq
            last_modseq = change.modseq
            if change.kind is ChangeKind.FLAGS:
                flag_changes.add(change.uid)
            else:
                got.add((change.kind, change.uid))
        assert wanted <= got
        assert flag_changes == set(appended)
        await feed.close()
        left = await watcher.messages(ACC, "INBOX")
        assert sorted(m.uid for m in left) == sorted(set(appended) - set(expunged))
        assert all(m.flags == {"\\Seen"} for m in left)


DELIVER_ONE = r"""
import asyncio, sys
from mailcore.store import MaildirStore
async def main():
    async with MaildirStore(sys.argv[1]) as store:
        print("ready", flush=True)
        sys.stdin.readline()
        await store.append(sys.argv[2], "INBOX", b"Subject: ping\r\n\r\n")
asyncio.run(main())
"""


async def test_idle_session_learns_of_another_process_delivery_quickly(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with MaildirStore(data) as store:
        await store.create_account(ACC)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            DELIVER_ONE,
            str(data),
            ACC,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert proc.stdin is not None and proc.stdout is not None
        assert await proc.stdout.readline() == b"ready\n"
        async with store.watch(ACC, "INBOX") as feed:
            proc.stdin.write(b"go\n")
            await proc.stdin.drain()
            change = await asyncio.wait_for(feed.next(), 10)
            # The append itself was reported by the other process's store, and
            # noticed here at the next poll (poll_interval, 25 ms by default).
            assert change.kind is ChangeKind.APPENDED and change.uid == 1
        await proc.wait()
