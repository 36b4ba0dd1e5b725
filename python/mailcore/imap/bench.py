"""IMAP server speed: mailcore against Dovecot's imapd, same messages, same client, same run.

``mailcore bench imap`` (and ``benches/bench_imap.py``) load the same
``messages`` messages into a MaildirStore served by mailcore's server in a
child process (``python -m mailcore.imap.bench serve DIR``) and into a
Maildir served by Dovecot (Debian ``dovecot-imapd``, ``/usr/sbin/dovecot -F``
with its own configuration on loopback). One untimed warm-up pass runs every
workload once on each server (Dovecot builds its index and cache then,
mailcore its ENVELOPE cache), then each workload is timed ``repeat`` times,
alternating servers, and the median is kept:

- LOGIN + SELECT INBOX (+ LOGOUT), a fresh connection;
- ``FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE)``;
- ``FETCH 1:* ENVELOPE``;
- ``FETCH 1:* BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)]``;
- ``FETCH 1:* BODY.PEEK[]`` (reported as MB/s of message bytes);
- ``SEARCH BODY <word>`` (the word is in 1 % of the bodies).

The client is a small asyncio reader that skips literals by their length, so
it costs the same for both servers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mailcore.bench.dovecot import DOVECOT, find_user, free_port, start_dovecot, stop_dovecot

__all__ = [
    "DOVECOT",
    "DovecotIMAP",
    "IMAPResult",
    "MailcoreIMAP",
    "corpus",
    "format_table",
    "run",
]

USER = "bench@example.org"
PASSWORD = "bench pass"
WORD = b"zanzibar"

_CONF = """\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
instance_name = mailcore-imap-{port}
default_internal_user = {internal}
default_internal_group = {internal_group}
default_login_user = {login}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
log_path = {root}/log
mail_location = maildir:{root}/mail/Maildir
mail_fsync = never
maildir_very_dirty_syncs = yes
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail
}}
"""

_WORDS = [
    "meeting",
    "report",
    "invoice",
    "project",
    "budget",
    "schedule",
    "update",
    "review",
    "draft",
    "release",
    "customer",
    "server",
    "network",
    "quarter",
    "results",
    "numbers",
    "team",
    "travel",
    "lunch",
    "agenda",
    "notes",
]


def corpus(count: int, seed: int = 7) -> list[bytes]:
    """``count`` plain-text messages of 1-20 KiB; 1 in 100 has :data:`WORD` in its body."""
    rnd = random.Random(seed)
    out = []
    for i in range(count):
        subject = " ".join(rnd.choice(_WORDS) for _ in range(4))
        head = (
            f"From: Sender {i % 97} <sender{i % 97}@example.org>\r\n"
            f"To: {USER}\r\nSubject: {subject} #{i}\r\n"
            f"Date: Tue, {1 + i % 28:02d} Mar 2024 {i % 24:02d}:{i % 60:02d}:00 +0000\r\n"
            f"Message-ID: <{i}.bench@example.org>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        ).encode()
        lines = []
        size = rnd.randint(1024, 20 * 1024)
        total = 0
        while total < size:
            line = " ".join(rnd.choice(_WORDS) for _ in range(10)).encode() + b"\r\n"
            lines.append(line)
            total += len(line)
        if i % 100 == 50:
            lines.insert(len(lines) // 2, b"the word " + WORD + b" is here\r\n")
        out.append(head + b"".join(lines))
    return out


class DovecotIMAP:
    """``dovecot -F`` serving IMAP for one user on a Maildir filled beforehand."""

    def __init__(self, messages: Sequence[bytes] = ()) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="mailcore-dovecot-imap-"))
        os.chmod(self.root, 0o755)
        self.port = free_port()
        self.maildir = self.root / "mail" / "Maildir"
        for sub in ("cur", "new", "tmp"):
            (self.maildir / sub).mkdir(parents=True)
        mail_user = find_user("nobody")
        internal = find_user("dovecot", "nobody")
        login = find_user("dovenull", "nobody")
        (self.root / "dovecot.conf").write_text(
            _CONF.format(
                root=self.root,
                port=self.port,
                internal=internal.pw_name,
                internal_group=internal.pw_name if internal.pw_name == "dovecot" else "nogroup",
                login=login.pw_name,
                uid=mail_user.pw_uid,
                gid=mail_user.pw_gid,
            )
        )
        (self.root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        # Dovecot at its best: files already in cur/ with their sizes in the
        # name (S= octets, W= "virtual" CRLF size), so sizes need no stat or
        # read, and directory times an hour old, so no sync pass rescans them.
        for seq, message in enumerate(messages, 1):
            vsize = len(message) + message.count(b"\n") - message.count(b"\r\n")
            name = f"{1_700_000_000 + seq}.M{seq}P1.bench,S={len(message)},W={vsize}:2,"
            (self.maildir / "cur" / name).write_bytes(message)
        past = time.time() - 3600
        for path in (self.root / "mail", *self.root.joinpath("mail").rglob("*")):
            os.chown(path, mail_user.pw_uid, mail_user.pw_gid)
            os.utime(path, (past, past))
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> DovecotIMAP:
        """Start the server and wait until it accepts connections."""
        self._proc = start_dovecot(self.root / "dovecot.conf", self.port)
        return self

    def stop(self) -> None:
        """Stop the server and remove its files."""
        stop_dovecot(self._proc, self.root)
        self._proc = None


class MailcoreIMAP:
    """mailcore's IMAP server in a child process on a data directory filled beforehand."""

    def __init__(self, messages: Sequence[bytes] = ()) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="mailcore-imap-bench-"))
        asyncio.run(self._fill(messages))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mailcore.imap.bench", "serve", str(self.root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        if self.proc.stdout is None:  # pragma: no cover - PIPE was asked for
            raise RuntimeError("no stdout")
        self.port = int(self.proc.stdout.readline())

    async def _fill(self, messages: Sequence[bytes]) -> None:
        from argon2 import PasswordHasher

        from mailcore.auth.accounts import Accounts
        from mailcore.store import MaildirStore

        accounts = Accounts(self.root, hasher=PasswordHasher(1, 64, 1))
        accounts.add_user(USER, PASSWORD)
        accounts.close()
        async with MaildirStore(self.root) as store:
            await store.create_account(USER)
            for i in range(0, len(messages), 500):
                await asyncio.gather(
                    *(store.append(USER, "INBOX", m) for m in messages[i : i + 500])
                )

    def stop(self) -> None:
        """Stop the child and remove its data."""
        if self.proc.stdin is not None:
            self.proc.stdin.write(b"\n")
            self.proc.stdin.close()
        self.proc.wait(30)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        shutil.rmtree(self.root, ignore_errors=True)


async def _serve(root: str) -> None:
    from argon2 import PasswordHasher

    from mailcore.auth.accounts import Accounts
    from mailcore.imap.server import start_imap_server
    from mailcore.store import MaildirStore

    store = MaildirStore(root)
    await store.open()
    accounts = Accounts(root, hasher=PasswordHasher(1, 64, 1))
    server = await start_imap_server(
        store, accounts, host="127.0.0.1", port=0, allow_plaintext_login=True
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    server.close()
    await server.wait_closed()
    await store.close()
    accounts.close()


# ------------------------------------------------------------------ the client


class Client:
    """Just enough IMAP to time a server: send a command, count the reply's bytes."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.buf = bytearray()
        self.n = 0

    @classmethod
    async def connect(cls, port: int) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        c = cls(reader, writer)
        await c._line()
        return c

    async def _fill(self) -> None:
        chunk = await self.reader.read(1 << 20)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buf += chunk

    async def _line(self) -> bytes:
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[: i + 2])
                del self.buf[: i + 2]
                return line
            await self._fill()

    async def command(self, text: str, *, keep: bool = False) -> tuple[bytes, int, int]:
        """Run one command; return its tagged line, untagged lines and literal bytes.

        With ``keep``, the untagged lines (without literals) are in :attr:`kept`.
        """
        self.kept: list[bytes] = []
        self.n += 1
        tag = b"c%d" % self.n
        self.writer.write(tag + b" " + text.encode() + b"\r\n")
        lines = literal = 0
        buf = self.buf
        while True:
            i = buf.find(b"\r\n")
            while i < 0:
                await self._fill()
                buf = self.buf
                i = buf.find(b"\r\n")
            if buf.startswith(tag + b" "):
                line = bytes(buf[: i + 2])
                del buf[: i + 2]
                if not line.startswith(tag + b" OK"):
                    raise RuntimeError(f"{text!r}: {line!r}")
                return line, lines, literal
            lines += 1
            # A line ending in {n} is followed by n bytes of literal, then more of the line.
            end = i
            if end and buf[end - 1] == 0x7D:  # "}"
                start = buf.rfind(b"{", 0, end)
                n = int(bytes(buf[start + 1 : end - 1]).rstrip(b"+"))
                literal += n
                need = i + 2 + n
                while len(buf) < need:
                    await self._fill()
                    buf = self.buf
                del buf[:need]
                lines -= 1  # the rest of the response follows on the same "line"
                continue
            if keep:
                self.kept.append(bytes(buf[: i + 2]))
            del buf[: i + 2]

    async def close(self) -> None:
        self.writer.write(b"z LOGOUT\r\n")
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


async def _session(port: int) -> Client:
    c = await Client.connect(port)
    await c.command(f'LOGIN "{USER}" "{PASSWORD}"')
    await c.command("SELECT INBOX")
    return c


@dataclass(frozen=True)
class IMAPResult:
    """One workload on one server."""

    workload: str
    server: str
    seconds: float
    octets: int  # literal bytes received (for MB/s)

    @property
    def mb_per_s(self) -> float:
        """Megabytes (10^6) of literal data per second."""
        return self.octets / self.seconds / 1e6


WORKLOADS: tuple[tuple[str, str], ...] = (
    ("LOGIN+SELECT", ""),
    (
        "FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE)",
        "FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE)",
    ),
    ("FETCH 1:* ENVELOPE", "FETCH 1:* ENVELOPE"),
    (
        "FETCH 1:* BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)]",
        "FETCH 1:* BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)]",
    ),
    ("FETCH 1:* BODY.PEEK[] (all bodies)", "FETCH 1:* BODY.PEEK[]"),
    (f"SEARCH BODY {WORD.decode()}", f"SEARCH BODY {WORD.decode()}"),
)


async def _time(port: int, command: str) -> tuple[float, int]:
    if not command:
        start = time.perf_counter()
        c = await _session(port)
        elapsed = time.perf_counter() - start
        await c.close()
        return elapsed, 0
    c = await _session(port)
    try:
        start = time.perf_counter()
        _, _, octets = await c.command(command)
        return time.perf_counter() - start, octets
    finally:
        await c.close()


async def _measure(
    servers: dict[str, int], repeat: int, check: Callable[[str, str, int], Awaitable[None]] | None
) -> list[IMAPResult]:
    results = []
    for name, command in WORKLOADS:
        for port in servers.values():  # warm-up: indexes and caches
            await _time(port, command)
        times: dict[str, list[float]] = {s: [] for s in servers}
        octets: dict[str, int] = {}
        for _ in range(repeat):
            for server, port in servers.items():
                seconds, got = await _time(port, command)
                times[server].append(seconds)
                octets[server] = got
        for server in servers:
            results.append(
                IMAPResult(name, server, statistics.median(times[server]), octets[server])
            )
        if check is not None:
            for server, port in servers.items():
                await check(server, command, port)
    return results


def run(messages: int = 10_000, repeat: int = 5) -> list[IMAPResult]:
    """Load ``messages`` into both servers, time every workload, stop them."""
    mails = corpus(messages)
    mailcore = MailcoreIMAP(mails)
    dovecot = DovecotIMAP(mails).start()
    try:
        return asyncio.run(
            _measure({"mailcore": mailcore.port, "dovecot": dovecot.port}, repeat, None)
        )
    finally:
        mailcore.stop()
        dovecot.stop()


def format_table(results: list[IMAPResult], messages: int) -> str:
    """A Markdown table: each workload's two times and mailcore's speed relative to Dovecot."""
    by = {(r.workload, r.server): r for r in results}
    rows = [
        f"IMAP, {messages} messages, median wall time (speed = Dovecot time / mailcore time)",
        "",
        "| workload | mailcore | Dovecot | speed vs Dovecot |",
        "|---|---:|---:|---:|",
    ]
    for name, _ in WORKLOADS:
        m, d = by[(name, "mailcore")], by[(name, "dovecot")]

        def cell(r: IMAPResult) -> str:
            text = f"{r.seconds * 1000:.1f} ms"
            if r.octets > 1_000_000:
                text += f" ({r.mb_per_s:.0f} MB/s)"
            return text

        rows.append(f"| {name} | {cell(m)} | {cell(d)} | {d.seconds / m.seconds:.2f}x |")
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mailcore.imap.bench serve DIR`` (child) or ``run [--messages N]``."""
    parser = argparse.ArgumentParser(prog="python -m mailcore.imap.bench")
    sub = parser.add_subparsers(dest="what", required=True)
    serve = sub.add_parser("serve")
    serve.add_argument("root")
    bench = sub.add_parser("run")
    bench.add_argument("--messages", type=int, default=10_000)
    bench.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    if args.what == "serve":
        asyncio.run(_serve(args.root))
        return 0
    print(format_table(run(args.messages, args.repeat), args.messages))
    return 0


if __name__ == "__main__":
    sys.exit(main())
