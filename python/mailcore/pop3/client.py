"""Async POP3 client (RFC 1939, RFC 2449 CAPA and PIPELINING, RFC 2595 STLS, RFC 5034 AUTH).

Status lines are cut by the core :class:`~mailcore._core.LineReader` and
multi-line replies are un-stuffed by the core :class:`~mailcore._core.DotReader`,
one call per received buffer, so a large RETR is streamed without Python
looking at its lines. When the server announces PIPELINING, batches of
commands (:meth:`POP3Client.retr_many`, :meth:`POP3Client.dele_many`) are
written at once and their replies read in order (RFC 2449 section 6.6).

Example::

    async with await POP3Client.connect("127.0.0.1", 1110) as pop:
        await pop.login("jeff", "secret")
        count, size = await pop.stat()
        message = await pop.retr(1)
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import builtins
import contextlib
import ssl
from collections.abc import AsyncIterator, Iterable, Sequence
from types import TracebackType

from mailcore import _core
from mailcore.errors import AuthError, MailcoreError, RemoteProtocolError
from mailcore.limits import POP3Limits
from mailcore.pop3.protocol import apop_digest

__all__ = ["POP3Client", "POP3ReplyError"]

_READ_SIZE = 256 * 1024


class POP3ReplyError(MailcoreError):
    """The server answered ``-ERR``.

    Attributes:
        text: the reply text after ``-ERR`` (and after the response code).
        code: the RFC 2449/3206 response code ("IN-USE", "AUTH", "SYS/TEMP"...), if any.
    """

    def __init__(self, text: str, code: str | None) -> None:
        super().__init__(f"-ERR {'[' + code + '] ' if code else ''}{text}")
        self.text = text
        self.code = code


def _parse_status(line: bytes) -> tuple[bool, str | None, str]:
    """Split a status line into (ok, response code, text)."""
    if line.startswith(b"+OK"):
        ok, rest = True, line[3:]
    elif line.startswith(b"-ERR"):
        ok, rest = False, line[4:]
    else:
        raise RemoteProtocolError(f"not a POP3 status line: {line[:80]!r}")
    text = rest.decode("utf-8", "replace").strip()
    code = None
    if text.startswith("[") and "]" in text:
        code, _, text = text[1:].partition("]")
        text = text.strip()
    return ok, code, text


class POP3Client:
    """One POP3 session. Create it with :meth:`connect`."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        host: str,
        limits: POP3Limits | None = None,
        timeout: float | None = 60.0,
    ) -> None:
        self.limits = limits if limits is not None else POP3Limits()
        self._reader = reader
        self._writer = writer
        self._host = host
        self._timeout = timeout
        self._lines = _core.LineReader(self.limits.reply_line)
        self.greeting = ""
        self.capabilities: dict[str, list[str]] = {}
        self._broken = False

    # ------------------------------------------------------- connecting ---
    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        *,
        tls: ssl.SSLContext | None = None,
        starttls: ssl.SSLContext | None = None,
        limits: POP3Limits | None = None,
        timeout: float | None = 60.0,
    ) -> POP3Client:
        """Connect, read the greeting and the capabilities.

        ``tls`` connects with implicit TLS (port 995 style); ``starttls``
        upgrades with STLS first and fails if the server cannot.
        """
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=tls, server_hostname=host if tls else None),
            timeout,
        )
        client = cls(reader, writer, host=host, limits=limits, timeout=timeout)
        try:
            ok, _, text = _parse_status(await client._read_line())
            if not ok:
                raise POP3ReplyError(text, None)
            client.greeting = text
            await client.capa()
            if starttls is not None:
                await client.stls(starttls)
        except BaseException:
            await client.aclose()
            raise
        return client

    async def __aenter__(self) -> POP3Client:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None and not self._broken:
            await self.quit()
        else:
            await self.aclose()

    def close(self) -> None:
        """Drop the connection without QUIT (the server deletes nothing)."""
        self._broken = True
        self._writer.close()

    async def aclose(self) -> None:
        """:meth:`close`, then wait until the socket is really closed."""
        self.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self._writer.wait_closed()

    @property
    def timestamp(self) -> str | None:
        """The greeting's APOP timestamp ``<...>``, if it has one."""
        start, end = self.greeting.find("<"), self.greeting.rfind(">")
        if start < 0 or end < start:
            return None
        return self.greeting[start : end + 1]

    @property
    def pipelining(self) -> bool:
        """Whether the server announced PIPELINING."""
        return "PIPELINING" in self.capabilities

    # ------------------------------------------------------------ wire ---
    async def _fill(self) -> None:
        data = await asyncio.wait_for(self._reader.read(_READ_SIZE), self._timeout)
        if not data:
            self._broken = True
            raise ConnectionError("the POP3 server closed the connection")
        self._lines.feed(data, 0)

    async def _read_line(self) -> bytes:
        while True:
            items = self._lines.feed(b"", 1)
            if items:
                item = items[0]
                if isinstance(item, _core.LineError):
                    self._broken = True
                    raise RemoteProtocolError(f"bad reply line ({item.kind.name})")
                return item
            await self._fill()

    async def _status(self) -> tuple[str | None, str]:
        ok, code, text = _parse_status(await self._read_line())
        if not ok:
            raise POP3ReplyError(text, code)
        return code, text

    async def _body(self) -> AsyncIterator[bytes]:
        """Yield the un-stuffed body of a multi-line reply, chunk by chunk."""
        dots = _core.DotReader(self.limits.message_size)
        data = self._lines.take_buffered()
        while True:
            chunk, done = dots.feed(data)
            if chunk:
                yield chunk
            if done:
                self._lines.feed(dots.rest, 0)
                if dots.oversize:
                    raise RemoteProtocolError("multi-line reply larger than limits.message_size")
                return
            data = await asyncio.wait_for(self._reader.read(_READ_SIZE), self._timeout)
            if not data:
                self._broken = True
                raise ConnectionError("the POP3 server closed the connection mid-reply")

    async def _multiline(self) -> bytes:
        return b"".join([chunk async for chunk in self._body()])

    async def _send(self, *lines: str) -> None:
        if self._broken:
            raise ConnectionError("the POP3 connection is closed")
        for line in lines:
            if "\r" in line or "\n" in line:
                raise ValueError("a POP3 command cannot contain CR or LF")
        self._writer.write("".join(f"{line}\r\n" for line in lines).encode("utf-8"))
        await self._writer.drain()

    async def command(self, line: str) -> str:
        """Send a single-line command; return the ``+OK`` text, or raise :class:`POP3ReplyError`."""
        await self._send(line)
        return (await self._status())[1]

    # ----------------------------------------------------- AUTHORIZATION ---
    async def capa(self) -> dict[str, list[str]]:
        """CAPA (RFC 2449); an empty dict when the server does not know it."""
        await self._send("CAPA")
        try:
            await self._status()
        except POP3ReplyError:
            self.capabilities = {}
            return self.capabilities
        caps: dict[str, list[str]] = {}
        for line in (await self._multiline()).decode("utf-8", "replace").splitlines():
            name, *args = line.split()
            caps[name.upper()] = args
        self.capabilities = caps
        return caps

    async def stls(self, context: ssl.SSLContext) -> None:
        """Upgrade to TLS with STLS (RFC 2595), then read the capabilities again."""
        await self._send("STLS")
        await self._status()
        # Response injection (CVE-2021-38371): nothing may follow the +OK in plaintext.
        # asyncio's stream buffer is kept across start_tls() and has no public
        # accessor; bytes waiting there would be read back as if from TLS.
        pending = getattr(self._reader, "_buffer", b"")
        if self._lines.buffered or pending:
            self._broken = True
            raise RemoteProtocolError("the server sent data after its STLS reply")
        await self._writer.start_tls(context, server_hostname=self._host)
        await self.capa()

    async def login(self, username: str, password: str) -> str:
        """USER and PASS (RFC 1939 section 7)."""
        await self.command(f"USER {username}")
        return await self.command(f"PASS {password}")

    async def apop(self, username: str, secret: str) -> str:
        """APOP with the greeting's timestamp (RFC 1939 section 7)."""
        stamp = self.timestamp
        if stamp is None:
            raise MailcoreError("the greeting has no APOP timestamp")
        return await self.command(f"APOP {username} {apop_digest(stamp, secret.encode('utf-8'))}")

    async def auth(self, mechanism: str, username: str, password: str, *, authzid: str = "") -> str:
        """AUTH (RFC 5034) with a SASL mechanism from :mod:`mailcore.auth.sasl`.

        PLAIN and SCRAM-SHA-256 send an initial response; a SCRAM server's
        final message is verified before the client accepts the login.
        """
        from mailcore.auth.sasl import client_mechanism

        mech = client_mechanism(mechanism.upper(), username, password, authzid=authzid)
        initial = mech.initial()
        first = mechanism.upper()
        if initial is not None:
            first += " " + (base64.b64encode(initial).decode("ascii") if initial else "=")
        await self._send(f"AUTH {first}")
        scram = mechanism.upper().startswith("SCRAM-")
        while True:
            line = await self._read_line()
            if not line.startswith(b"+ ") and line != b"+":
                ok, code, text = _parse_status(line)
                if not ok:
                    raise POP3ReplyError(text, code)
                return text
            try:
                challenge = base64.b64decode(line[2:], validate=True)
                if scram and challenge[:2] in (b"v=", b"e="):
                    # RFC 5034 section 4: SCRAM's server-final comes as a last
                    # challenge; an empty line accepts it.
                    if not mech.verify_final(challenge):
                        raise AuthError("the server's SCRAM signature is wrong")
                    answer = b""
                else:
                    answer = mech.respond(challenge)
            except (binascii.Error, AuthError):
                await self._send("*")
                await self._read_line()
                raise
            await self._send(base64.b64encode(answer).decode("ascii"))

    # -------------------------------------------------------- TRANSACTION ---
    async def stat(self) -> tuple[int, int]:
        """STAT: (message count, total octets)."""
        count, size = (await self.command("STAT")).split()[:2]
        return int(count), int(size)

    async def _listing(self, command: str) -> dict[int, str]:
        await self._send(command)
        await self._status()
        out: dict[int, str] = {}
        for line in (await self._multiline()).decode("utf-8", "replace").splitlines():
            number, _, value = line.partition(" ")
            out[int(number)] = value.strip()
        return out

    async def list(self, number: int | None = None) -> dict[int, int]:
        """LIST or LIST n: message number → size."""
        if number is not None:
            n, size = (await self.command(f"LIST {number}")).split()[:2]
            return {int(n): int(size)}
        return {n: int(v.split()[0]) for n, v in (await self._listing("LIST")).items()}

    async def uidl(self, number: int | None = None) -> dict[int, str]:
        """UIDL or UIDL n: message number → unique id."""
        if number is not None:
            n, uid = (await self.command(f"UIDL {number}")).split()[:2]
            return {int(n): uid}
        return await self._listing("UIDL")

    async def retr_iter(self, number: int) -> AsyncIterator[bytes]:
        """RETR n, streamed: yields the message (un-stuffed) chunk by chunk.

        Consume it to the end before the next command.
        """
        await self._send(f"RETR {number}")
        await self._status()
        async for chunk in self._body():
            yield chunk

    async def retr(self, number: int) -> bytes:
        """RETR n: the whole message."""
        return b"".join([chunk async for chunk in self.retr_iter(number)])

    async def top(self, number: int, lines: int) -> bytes:
        """TOP n lines: the header and the first ``lines`` body lines."""
        await self._send(f"TOP {number} {lines}")
        await self._status()
        return await self._multiline()

    async def retr_many(self, numbers: Sequence[int]) -> builtins.list[bytes]:
        """RETR each of ``numbers``, pipelined when the server allows it."""
        if not self.pipelining:
            return [await self.retr(n) for n in numbers]
        await self._send(*(f"RETR {n}" for n in numbers))
        out = []
        for _ in numbers:
            await self._status()
            out.append(await self._multiline())
        return out

    async def dele(self, number: int) -> str:
        """DELE n: mark a message; it is removed only at QUIT."""
        return await self.command(f"DELE {number}")

    async def dele_many(self, numbers: Iterable[int]) -> None:
        """DELE each of ``numbers``, pipelined when the server allows it.

        Every reply is read even if one is ``-ERR``; the first error is raised.
        """
        numbers = builtins.list(numbers)
        if not self.pipelining:
            for n in numbers:
                await self.dele(n)
            return
        await self._send(*(f"DELE {n}" for n in numbers))
        first: POP3ReplyError | None = None
        for _ in numbers:
            try:
                await self._status()
            except POP3ReplyError as exc:
                first = first or exc
        if first is not None:
            raise first

    async def rset(self) -> str:
        """RSET: unmark every deleted message."""
        return await self.command("RSET")

    async def noop(self) -> str:
        """NOOP."""
        return await self.command("NOOP")

    async def quit(self) -> str:
        """QUIT: the server applies deletions (UPDATE state), then the connection closes."""
        try:
            return await self.command("QUIT")
        finally:
            self._broken = True
            self._writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await self._writer.wait_closed()
