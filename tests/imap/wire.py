"""A bare IMAP client for the loopback tests: send a line, read up to the tagged reply."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import ClassVar


class Wire:
    """One raw connection; ``await w.cmd(b"a NOOP")`` returns every byte up to ``a OK ...``."""

    #: Every connection opened, closed by ``close_all`` when a test's server stops.
    opened: ClassVar[list[Wire]] = []

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.greeting = b""

    @classmethod
    async def open(cls, port: int, tls: ssl.SSLContext | None = None) -> Wire:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=tls, server_hostname="localhost" if tls else None
        )
        w = cls(reader, writer)
        cls.opened.append(w)
        w.greeting = await asyncio.wait_for(reader.readline(), 5)
        return w

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def until(self, tag: bytes, timeout: float = 5) -> bytes:
        """Read lines (and literals) until the line starting with ``tag``."""
        out: list[bytes] = []
        while True:
            line = await asyncio.wait_for(self.reader.readline(), timeout)
            if not line:
                raise ConnectionError(b"".join([*out, b"<EOF>"]).decode("latin-1"))
            out.append(line)
            if line.endswith(b"}\r\n") and b"{" in line:
                n = int(line[line.rindex(b"{") + 1 : -3].rstrip(b"+"))
                out.append(await asyncio.wait_for(self.reader.readexactly(n), timeout))
                continue
            if line.startswith(tag + b" "):
                return b"".join(out)

    async def cmd(self, line: bytes, timeout: float = 5) -> bytes:
        tag = line.split(b" ", 1)[0]
        await self.send(line + b"\r\n")
        return await self.until(tag, timeout)

    async def line(self, timeout: float = 5) -> bytes:
        return await asyncio.wait_for(self.reader.readline(), timeout)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self.writer.wait_closed()


async def close_all() -> None:
    """Close every connection the tests opened."""
    while Wire.opened:
        await Wire.opened.pop().close()
