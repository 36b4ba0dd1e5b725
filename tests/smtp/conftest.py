"""Fixtures for the SMTP server tests: TLS certificates, a raw client, handlers."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Mapping

import pytest
import trustme

from mailcore.smtp import replies as R
from mailcore.smtp.handlers import Envelope, Handler, Session
from mailcore.smtp.replies import Reply


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def server_context(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(ctx)
    return ctx


@pytest.fixture(scope="session")
def client_context(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


class Recorder(Handler):
    """Keeps every accepted message; refuses recipients named "nobody"."""

    def __init__(self) -> None:
        self.messages: list[tuple[Envelope, bytes]] = []
        self.chunks: list[int] = []
        self.sessions: list[Session] = []

    async def handle_RCPT(
        self, session: Session, envelope: Envelope, address: str, params: Mapping[str, str | None]
    ) -> Reply:
        if address.split("@", maxsplit=1)[0] in ("nobody", "tittom"):
            return R.NO_SUCH_USER
        return R.RECIPIENT_OK

    async def handle_DATA_chunk(self, session: Session, envelope: Envelope, chunk: bytes) -> None:
        self.chunks.append(len(chunk))
        envelope.write(chunk)

    async def handle_DATA(self, session: Session, envelope: Envelope) -> Reply:
        self.messages.append((envelope, envelope.content))
        self.sessions.append(session)
        return R.MESSAGE_ACCEPTED


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


class RawClient:
    """Bytes in, reply lines out: for tests that must control every byte."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int, *, ssl_context: ssl.SSLContext | None = None) -> RawClient:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=ssl_context, server_hostname="localhost" if ssl_context else None
        )
        return cls(reader, writer)

    async def reply(self) -> list[bytes]:
        """Read one (possibly multi-line) reply, lines without CRLF."""
        lines: list[bytes] = []
        while True:
            line = await asyncio.wait_for(self.reader.readline(), 10)
            if not line:
                raise ConnectionError(f"closed after {lines!r}")
            lines.append(line.rstrip(b"\r\n"))
            if line[3:4] != b"-":
                return lines

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def command(self, line: bytes) -> list[bytes]:
        await self.send(line + b"\r\n")
        return await self.reply()

    async def at_eof(self) -> bool:
        data = await asyncio.wait_for(self.reader.read(), 10)
        return data == b""

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self.writer.wait_closed()
