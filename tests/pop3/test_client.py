"""POP3Client against scripted hostile or unusual servers (real sockets on loopback).

The well-behaved servers (Dovecot, mailcore) are in tests/interop; here a
small asyncio server answers with fixed bytes to check what the client does
with replies no real server would send.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import pytest

from mailcore.errors import RemoteProtocolError
from mailcore.pop3.client import POP3Client, POP3ReplyError

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Coroutine[Any, Any, None]]


@asynccontextmanager
async def scripted(handler: Handler) -> AsyncIterator[int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def _answer(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, replies: dict[bytes, bytes]
) -> None:
    """Greet, then answer each command by its keyword from ``replies``."""
    writer.write(b"+OK scripted <1.2@test>\r\n")
    while line := await reader.readline():
        writer.write(replies.get(line.strip().split(b" ")[0], b"-ERR unknown\r\n"))
        await writer.drain()
        if line.startswith(b"QUIT"):
            break
    writer.close()
    await writer.wait_closed()


async def test_stls_response_injection_is_refused() -> None:
    # CVE-2021-38371 style: plaintext behind the STLS "+OK" must not be taken
    # as a reply from inside TLS.
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _answer(
            reader,
            writer,
            {b"CAPA": b"+OK\r\nSTLS\r\n.\r\n", b"STLS": b"+OK go\r\n+OK injected\r\n"},
        )

    async with scripted(handler) as port:
        with pytest.raises(RemoteProtocolError, match="after its STLS reply"):
            await POP3Client.connect("127.0.0.1", port, starttls=ssl.create_default_context())


async def test_server_without_capa_and_err_codes() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _answer(
            reader,
            writer,
            {
                b"USER": b"+OK\r\n",
                b"PASS": b"-ERR [SYS/TEMP] try later\r\n",
                b"QUIT": b"+OK bye\r\n",
            },
        )

    async with scripted(handler) as port:
        pop = await POP3Client.connect("127.0.0.1", port)
        assert pop.capabilities == {}
        assert not pop.pipelining
        assert pop.timestamp == "<1.2@test>"
        with pytest.raises(POP3ReplyError) as err:
            await pop.login("a", "b")
        assert (err.value.code, err.value.text) == ("SYS/TEMP", "try later")
        assert await pop.quit() == "bye"


async def test_garbage_status_line() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 this is SMTP\r\n")
        await writer.drain()
        await reader.read()
        writer.close()
        await writer.wait_closed()

    async with scripted(handler) as port:
        with pytest.raises(RemoteProtocolError, match="not a POP3 status line"):
            await POP3Client.connect("127.0.0.1", port)


async def test_pipelined_dele_reads_every_reply() -> None:
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"+OK ready\r\n")
        while line := await reader.readline():
            seen.append(line)
            if line == b"CAPA\r\n":
                writer.write(b"+OK\r\nPIPELINING\r\n.\r\n")
            elif line == b"DELE 2\r\n":
                writer.write(b"-ERR no such message\r\n")
            else:
                writer.write(b"+OK\r\n")
            await writer.drain()
            if line == b"QUIT\r\n":
                break
        writer.close()
        await writer.wait_closed()

    async with scripted(handler) as port:
        pop = await POP3Client.connect("127.0.0.1", port)
        with pytest.raises(POP3ReplyError, match="no such message"):
            await pop.dele_many([1, 2, 3])
        # Every reply was consumed: the connection is still in step.
        assert await pop.noop() == ""
        await pop.quit()
    assert seen[1:] == [b"DELE 1\r\n", b"DELE 2\r\n", b"DELE 3\r\n", b"NOOP\r\n", b"QUIT\r\n"]
