"""mailcore's POP3 server over real loopback TCP, on a real MaildirStore and Accounts."""

from __future__ import annotations

import asyncio
import contextlib
import os
import poplib
import ssl
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
import trustme

from mailcore.auth.accounts import Accounts
from mailcore.limits import POP3Limits
from mailcore.pop3.client import POP3Client, POP3ReplyError
from mailcore.pop3.protocol import apop_digest
from mailcore.pop3.server import POP3Server, uidl_for
from mailcore.store import FlagMode, MaildirStore
from tests.pop3.serverkit import PASSWORD, USER, running_server

SEED_MESSAGE = (
    "Subject: Hola\r\n\r\nHola Meandus:\r\n¿Cómo andan tus cosas?\r\n\r\n¡Nos vemos pronto!\r\n"
).encode()
SECOND = b"Subject: otra\r\n\r\n.punto\r\n"
THIRD = b"Subject: three\r\n\r\nthird\r\n"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def client_tls(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


async def exchange(port: int, lines: list[bytes]) -> bytes:
    """Send each line, read until the server goes quiet or closes; return everything."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    out = [await reader.readline()]
    for line in lines:
        writer.write(line)
        await writer.drain()
        await asyncio.sleep(0.05)
        while True:
            try:
                chunk = await asyncio.wait_for(reader.read(65536), 0.3)
            except TimeoutError:
                break
            if not chunk:
                break
            out.append(chunk)
    writer.close()
    await writer.wait_closed()
    return b"".join(out)


async def test_seed_session(tmp_path: Path, ca: trustme.CA) -> None:
    # The seed's telnet session: USER, PASS, STAT, TOP 1 5, QUIT.
    async with running_server(tmp_path, ca) as server:
        await server.deliver(SEED_MESSAGE)
        await server.deliver(SECOND)
        out = await exchange(
            server.port,
            [
                f"USER {USER}\r\n".encode(),
                f"PASS {PASSWORD}\r\n".encode(),
                b"STAT\r\n",
                b"TOP 1 5\r\n",
                b"QUIT\r\n",
            ],
        )
    total = len(SEED_MESSAGE) + len(SECOND)
    greeting, rest = out.split(b"\r\n", 1)
    assert greeting.startswith(b"+OK mailcore POP3 ready <") and greeting.endswith(b"@pop.example>")
    assert rest == (
        b"+OK\r\n"
        b"+OK Logged in, maildrop has 2 messages (%d octets).\r\n"
        b"+OK 2 %d\r\n"
        b"+OK\r\n" % (total, total) + SEED_MESSAGE + b".\r\n"
        b"+OK Logging out, 2 messages left.\r\n"
    )


async def test_poplib(tmp_path: Path, ca: trustme.CA, client_tls: ssl.SSLContext) -> None:
    async with running_server(tmp_path, ca) as server:
        await server.deliver(SEED_MESSAGE)
        await server.deliver(SECOND)
        await server.deliver(THIRD)
        status = await server.store.status(USER, "INBOX")
        uids = [m.uid for m in await server.store.messages(USER, "INBOX")]

        def session() -> dict[str, object]:
            got: dict[str, object] = {}
            pop = poplib.POP3("127.0.0.1", server.port, timeout=10)
            got["capa"] = pop.capa()
            pop.stls(client_tls)
            got["capa_tls"] = pop.capa()
            pop.user(USER)
            pop.pass_(PASSWORD)
            got["stat"] = pop.stat()
            got["uidl"] = pop.uidl()[1]
            got["top"] = pop.top(1, 1)[1]
            got["retr"] = pop.retr(2)[1]
            got["dele"] = pop.dele(1)
            got["rset"] = pop.rset()
            got["dele3"] = pop.dele(3)
            got["quit"] = pop.quit()

            pop = poplib.POP3_SSL("127.0.0.1", server.tls_port, context=client_tls, timeout=10)
            pop.apop(USER, PASSWORD)
            got["after"] = pop.list()[1]
            pop.quit()
            return got

        got = await asyncio.to_thread(session)
        left = await server.store.messages(USER, "INBOX")
    capa = got["capa"]
    assert isinstance(capa, dict)
    assert {"TOP", "UIDL", "USER", "STLS", "PIPELINING", "RESP-CODES"} <= set(capa)
    capa_tls = got["capa_tls"]
    assert isinstance(capa_tls, dict) and "STLS" not in capa_tls
    assert got["stat"] == (3, len(SEED_MESSAGE) + len(SECOND) + len(THIRD))
    assert got["uidl"] == [
        f"{n} {uidl_for(status.uidvalidity, uid)}".encode() for n, uid in enumerate(uids, 1)
    ]
    assert got["top"] == [b"Subject: Hola", b"", b"Hola Meandus:"]
    # poplib un-stuffs the leading dot itself.
    assert got["retr"] == [b"Subject: otra", b"", b".punto"]
    assert got["after"] == [b"1 %d" % len(SEED_MESSAGE), b"2 %d" % len(SECOND)]
    assert [m.uid for m in left] == uids[:2]


async def test_maildrop_locked_across_processes(tmp_path: Path, ca: trustme.CA) -> None:
    async with running_server(tmp_path, ca) as server:
        await server.deliver(SECOND)
        holder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import asyncio, sys\n"
                "from mailcore.store import MaildirStore\n"
                "async def main():\n"
                f"    store = MaildirStore({str(tmp_path / 'data')!r})\n"
                "    await store.open()\n"
                f"    async with store.maildrop_lock({USER!r}):\n"
                "        print('locked', flush=True)\n"
                "        sys.stdin.readline()\n"
                "    await store.close()\n"
                "asyncio.run(main())\n",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        try:
            assert holder.stdout is not None
            assert await asyncio.to_thread(holder.stdout.readline) == b"locked\n"
            pop = await POP3Client.connect("127.0.0.1", server.port)
            with pytest.raises(POP3ReplyError) as locked:
                await pop.login(USER, PASSWORD)
            assert locked.value.code == "IN-USE"
            await pop.aclose()
        finally:
            assert holder.stdin is not None
            holder.stdin.write(b"\n")
            holder.stdin.close()
            await asyncio.to_thread(holder.wait, 10)
            if holder.stdout is not None:
                holder.stdout.close()
        pop = await POP3Client.connect("127.0.0.1", server.port)
        await pop.login(USER, PASSWORD)
        assert await pop.stat() == (1, len(SECOND))
        await pop.quit()


async def test_stls_injection_is_not_executed(tmp_path: Path, ca: trustme.CA) -> None:
    # RELIABILITY.md 3.2: "STLS\r\nCAPA\r\n" in one segment; CAPA must not be
    # answered inside TLS.
    async with running_server(tmp_path, ca) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        await reader.readline()
        writer.write(b"STLS\r\nCAPA\r\n")
        await writer.drain()
        assert await reader.readline() == b"+OK Begin TLS negotiation now.\r\n"
        ctx = ssl.create_default_context()
        ca.configure_trust(ctx)
        await writer.start_tls(ctx, server_hostname="127.0.0.1")
        writer.write(b"NOOP\r\n")
        await writer.drain()
        assert await asyncio.wait_for(reader.readline(), 5) == b"-ERR Not logged in.\r\n"
        writer.close()
        await writer.wait_closed()


async def test_dropped_connection_deletes_nothing_and_uidls_are_stable(
    tmp_path: Path, ca: trustme.CA
) -> None:
    async with running_server(tmp_path, ca) as server:
        for i in range(3):
            await server.deliver(b"Subject: %d\r\n\r\nbody\r\n" % i)
        pop = await POP3Client.connect("127.0.0.1", server.port)
        await pop.login(USER, PASSWORD)
        first = await pop.uidl()
        await pop.dele_many([1, 2, 3])
        # New mail during a session does not change the session's numbering.
        await server.deliver(b"Subject: late\r\n\r\nlate\r\n")
        assert await pop.stat() == (0, 0)
        await pop.aclose()
        await asyncio.sleep(0.1)

        pop = await POP3Client.connect("127.0.0.1", server.port)
        await pop.login(USER, PASSWORD)
        second = await pop.uidl()
        assert {n: second[n] for n in first} == first
        assert len(second) == 4
        await pop.dele(2)
        await pop.quit()
        assert [m.uid for m in await server.store.messages(USER, "INBOX")] == [1, 3, 4]


async def test_failed_login_is_delayed_and_limited(tmp_path: Path, ca: trustme.CA) -> None:
    limits = POP3Limits(failed_login_delay=0.2, failed_logins=2)
    async with running_server(tmp_path, ca, limits=limits) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        await reader.readline()
        started = time.monotonic()
        writer.write(b"USER nobody@example.org\r\nPASS x\r\n")
        await writer.drain()
        assert await reader.readline() == b"+OK\r\n"
        assert await reader.readline() == b"-ERR [AUTH] Authentication failed.\r\n"
        assert time.monotonic() - started >= 0.2
        writer.write(f"USER {USER}\r\nPASS wrong\r\n".encode())
        await writer.drain()
        assert await reader.readline() == b"+OK\r\n"
        assert await reader.readline() == b"-ERR [AUTH] Authentication failed.\r\n"
        assert await reader.readline() == b"-ERR Too many failed logins.\r\n"
        assert await reader.read() == b""
        writer.close()
        await writer.wait_closed()


async def test_plaintext_login_refused_and_apop(tmp_path: Path, ca: trustme.CA) -> None:
    async with running_server(tmp_path, ca, allow_plaintext_auth=False) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        greeting = (await reader.readline()).decode()
        stamp = greeting[greeting.index("<") : greeting.index(">") + 1]
        writer.write(f"USER {USER}\r\n".encode())
        writer.write(f"APOP {USER} {apop_digest(stamp, PASSWORD.encode())}\r\nSTAT\r\n".encode())
        await writer.drain()
        assert await reader.readline() == (
            b"-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) "
            b"connections.\r\n"
        )
        assert (await reader.readline()).startswith(b"+OK Logged in, maildrop has 0 messages")
        assert await reader.readline() == b"+OK 0 0\r\n"
        writer.close()
        await writer.wait_closed()


async def test_idle_timeout(tmp_path: Path, ca: trustme.CA) -> None:
    async with running_server(tmp_path, ca, limits=POP3Limits(idle_timeout=0.2)) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        await reader.readline()
        assert await asyncio.wait_for(reader.read(), 5) == b"-ERR Disconnected for inactivity.\r\n"
        writer.close()
        await writer.wait_closed()


async def test_idle_timeout_is_not_wound_back_by_a_trickle(tmp_path: Path, ca: trustme.CA) -> None:
    # A command line that never ends, a byte at a time: still inactivity.
    async with running_server(tmp_path, ca, limits=POP3Limits(idle_timeout=0.5)) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        await reader.readline()
        writer.write(b"CAPA\r\n")
        assert (await reader.readline()).startswith(b"+OK")
        while not (await reader.readline()).startswith(b"."):
            pass

        async def trickle() -> None:
            with contextlib.suppress(ConnectionError):
                for byte in b"NOOP NOOP NOOP NOOP":
                    writer.write(bytes([byte]))
                    await writer.drain()
                    await asyncio.sleep(0.1)

        loop = asyncio.get_running_loop()
        started = loop.time()
        sender = asyncio.create_task(trickle())
        assert await asyncio.wait_for(reader.readline(), 5) == (
            b"-ERR Disconnected for inactivity.\r\n"
        )
        assert loop.time() - started < 1.2  # the trickle would take 1.9 s
        sender.cancel()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def test_large_message_is_streamed(tmp_path: Path, ca: trustme.CA) -> None:
    # 50 MB: the server must never hold it whole (store chunks go through the
    # DotStuffer one by one), and the client streams it with retr_iter().
    line = b"x" * 98 + b"\r\n"
    size = 50 * 1024 * 1024 // len(line) * len(line)
    async with running_server(tmp_path, ca) as server:
        await server.deliver(b"Subject: big\r\n\r\n" + line * ((size - 16) // len(line)))
        del line
        pop = await POP3Client.connect("127.0.0.1", server.port)
        await pop.login(USER, PASSWORD)
        (expected,) = (await pop.list()).values()
        tracemalloc.start()
        try:
            received = 0
            async for chunk in pop.retr_iter(1):
                received += len(chunk)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        # TOP stops reading the file once it has its lines.
        top = await pop.top(1, 2)
        await pop.quit()
    assert top == b"Subject: big\r\n\r\n" + b"x" * 98 + b"\r\n" + b"x" * 98 + b"\r\n"
    assert received == expected
    # Server and client share this process: both together stay far below 50 MB.
    assert peak < 8 * 1024 * 1024


async def test_login_delay(tmp_path: Path, ca: trustme.CA) -> None:
    async with running_server(tmp_path, ca, login_delay=3600) as server:
        pop = await POP3Client.connect("127.0.0.1", server.port)
        assert pop.capabilities["LOGIN-DELAY"] == ["3600"]
        await pop.login(USER, PASSWORD)
        await pop.quit()
        pop = await POP3Client.connect("127.0.0.1", server.port)
        with pytest.raises(POP3ReplyError) as early:
            await pop.login(USER, PASSWORD)
        assert early.value.code == "LOGIN-DELAY"
        await pop.aclose()


async def test_connection_limit(tmp_path: Path, ca: trustme.CA) -> None:
    async with running_server(tmp_path, ca, limits=POP3Limits(connections=1)) as server:
        first = await POP3Client.connect("127.0.0.1", server.port)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        assert await asyncio.wait_for(reader.read(), 5) == (
            b"-ERR [SYS/TEMP] Too many connections.\r\n"
        )
        writer.close()
        await writer.wait_closed()
        await first.quit()


def test_unknown_mechanism_is_refused_at_configuration(tmp_path: Path) -> None:
    store = MaildirStore(tmp_path)
    accounts = Accounts(tmp_path)
    try:
        with pytest.raises(ValueError, match="GSSAPI"):
            POP3Server(store, accounts, mechanisms=("PLAIN", "GSSAPI"))
    finally:
        accounts.close()


async def test_pipelined_retr_reads_ahead_mixed_sizes(tmp_path: Path, ca: trustme.CA) -> None:
    # Small messages are read whole (several per store call when commands
    # are pipelined), big ones streamed; a message expunged by another
    # session after login gets -ERR and one moved on disk by another tool is
    # found again: every byte on the wire must be what a one-by-one RETR gives.
    line = b"y" * 98 + b"\r\n"
    bodies = [
        b"Subject: 1\r\n\r\n.dot first\r\nmiddle\r\n..two\r\n",
        b"Subject: big\r\n\r\n" + line * 3000 + b".end\r\n",  # 300 KiB: streamed
        b"Subject: 3\r\n\r\nthree\r\n",
        b"Subject: 4\r\n\r\ngone soon\r\n",
        b"Subject: 5\r\n\r\nmoved by mutt\r\n",
        *(b"Subject: %d\r\n\r\n" % i + line * i for i in range(6, 12)),
    ]
    async with running_server(tmp_path, ca) as server:
        uids = [await server.deliver(b) for b in bodies]
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        await reader.readline()
        writer.write(f"USER {USER}\r\nPASS {PASSWORD}\r\n".encode())
        await writer.drain()
        assert await reader.readline() == b"+OK\r\n"
        assert (await reader.readline()).startswith(b"+OK Logged in")
        await server.store.store_flags(USER, "INBOX", [uids[3]], ["\\Deleted"], FlagMode.ADD)
        await server.store.expunge(USER, "INBOX", [uids[3]])
        new = tmp_path / "data" / "mail" / USER / "new"
        [name] = [n for n in os.listdir(new) if n.endswith(f",U={uids[4]}")]
        os.rename(new / name, new.parent / "cur" / f"{name}:2,S")
        numbers = [*range(1, len(bodies) + 1), 3, 1]
        writer.write(b"".join(b"RETR %d\r\n" % n for n in numbers) + b"TOP 2 1\r\nQUIT\r\n")
        await writer.drain()
        transcript = await asyncio.wait_for(reader.read(), 30)
        writer.close()
        await writer.wait_closed()
    expected = []
    for n in numbers:
        if n == 4:
            expected.append(b"-ERR [SYS/TEMP] Temporary server failure, try again later.\r\n")
            continue
        body = bodies[n - 1]
        stuffed = b"\r\n".join(
            b"." + ln if ln.startswith(b".") else ln for ln in body.split(b"\r\n")
        )
        expected.append(b"+OK %d octets\r\n" % len(body) + stuffed + b".\r\n")
    expected.append(b"+OK\r\nSubject: big\r\n\r\n" + line + b".\r\n")
    assert transcript.startswith(b"".join(expected))
    assert transcript[len(b"".join(expected)) :].startswith(b"+OK")
