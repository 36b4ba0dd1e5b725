"""The socket side of :class:`mailcore.smtp.client.SMTPClient`: bytes in, bytes out.

A small :class:`asyncio.Protocol` instead of a StreamReader, so that the
client can throw away every buffered byte at the moment STARTTLS is accepted
(a StreamReader keeps its buffer across ``start_tls``: CVE-2024-34083 in
aiosmtpd was that bug on the server side). Reads have a timeout; reading
from the socket pauses when unread bytes pile up; writes wait for the
transport's flow control.
"""

from __future__ import annotations

import asyncio
from collections import deque

from mailcore.errors import MailcoreError

__all__ = ["SMTPDisconnected", "SMTPTimeout", "Wire"]


class SMTPDisconnected(MailcoreError, ConnectionError):
    """The server closed the connection."""


class SMTPTimeout(MailcoreError, TimeoutError):
    """The server did not answer in time."""


class Wire(asyncio.Protocol):
    """Bytes in, bytes out, with flow control; the only socket-facing part."""

    # Stop reading from the socket past this many unread bytes: replies are
    # small, so a server that floods us gets TCP back-pressure, not our RAM.
    HIGH_WATER = 1024 * 1024

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._eof = False
        self._waiter: asyncio.Future[None] | None = None
        self._can_write = asyncio.Event()
        self._can_write.set()
        self._reading_paused = False
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        """Done when the connection is lost."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport (asyncio callback)."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        """Queue bytes from the server for :meth:`read` (asyncio callback)."""
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered > self.HIGH_WATER and self.transport and not self._reading_paused:
            self.transport.pause_reading()
            self._reading_paused = True
        self._wake()

    def eof_received(self) -> bool:
        """The server closed its side: :meth:`read` returns b"" (asyncio callback)."""
        self._eof = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        """Wake every waiter; the connection is gone (asyncio callback)."""
        if not self.closed.done():
            self.closed.set_result(None)
        self._eof = True
        self._can_write.set()
        self._wake()

    def pause_writing(self) -> None:
        """The transport's buffer is full: :meth:`write` waits (asyncio callback)."""
        self._can_write.clear()

    def resume_writing(self) -> None:
        """The transport's buffer drained (asyncio callback)."""
        self._can_write.set()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def read(self, timeout: float) -> bytes:
        """Return the next bytes, or b"" at end of stream."""
        while not self._chunks and not self._eof:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(self._waiter, timeout)
            except asyncio.TimeoutError:
                raise SMTPTimeout(f"no reply within {timeout:g} s") from None
            finally:
                self._waiter = None
        if not self._chunks:
            return b""
        data = b"".join(self._chunks)
        self._chunks.clear()
        self._buffered = 0
        if self._reading_paused and self.transport is not None:
            self.transport.resume_reading()
            self._reading_paused = False
        return data

    def discard(self) -> int:
        """Drop every unread byte; return how many there were."""
        dropped = self._buffered
        self._chunks.clear()
        self._buffered = 0
        return dropped

    async def write(self, data: bytes, timeout: float) -> None:
        """Write ``data``; wait (at most ``timeout``) while the peer is slow to take it."""
        if self.transport is None or self.transport.is_closing():
            raise SMTPDisconnected("connection closed")
        self.transport.write(data)
        if not self._can_write.is_set():
            try:
                await asyncio.wait_for(self._can_write.wait(), timeout)
            except asyncio.TimeoutError:
                raise SMTPTimeout(f"server did not take data within {timeout:g} s") from None
