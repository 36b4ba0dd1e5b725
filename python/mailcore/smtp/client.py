"""An asyncio SMTP and LMTP client on the sans-IO client machine.

:class:`SMTPClient` opens a plain, implicit-TLS or STARTTLS connection, says
EHLO (HELO when the server refuses EHLO; LHLO for LMTP), logs in with
SCRAM-SHA-256, PLAIN or LOGIN (:mod:`mailcore.auth.sasl`), and sends any
number of messages over the one connection with :meth:`SMTPClient.send_message`.
When the server offers PIPELINING, MAIL, every RCPT and DATA (or the BDAT
chunks) leave in one write; with CHUNKING the message goes as BDAT chunks,
otherwise as DATA, dot-stuffed by the Rust core. SIZE, 8BITMIME and SMTPUTF8
parameters are added when the server offers them and the message needs them.

This module does I/O only: sockets, TLS, timeouts (every read has one, from
:class:`mailcore.limits.SMTPClientLimits`). The adapter is a small
:class:`asyncio.Protocol` rather than a StreamReader so that the bytes buffered
when STARTTLS is accepted can be thrown away before the handshake: a server
(or a man in the middle) that sends "220 go ahead" and a forged reply in one
packet gets the forgery discarded, never read as if it came over TLS.

:func:`send` is the synchronous convenience for scripts.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import email.message
import email.policy
import re
import socket
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType

from mailcore.auth.sasl import CLIENT_MECHANISMS, ClientMechanism, client_mechanism
from mailcore.errors import AuthError, LocalProtocolError, MailcoreError, RemoteProtocolError
from mailcore.limits import SMTPClientLimits
from mailcore.smtp.client_protocol import (
    NEED_DATA,
    ClientConnection,
    ClientState,
    ReplyReceived,
    Response,
    SMTPResponseError,
    check_argument,
    format_params,
)
from mailcore.smtp.client_wire import SMTPDisconnected, SMTPTimeout, Wire

__all__ = [
    "SMTPClient",
    "SMTPClientError",
    "SMTPDisconnected",
    "SMTPResponseError",
    "SMTPTimeout",
    "SendResult",
    "send",
]


class SMTPClientError(MailcoreError):
    """The client could not do what was asked (message too big, no SMTPUTF8, ...)."""


@dataclass(frozen=True, slots=True)
class SendResult:
    """What happened to each recipient of one message.

    ``recipients`` maps each address to the reply that decided its fate: the
    RCPT reply if the recipient was refused (or the MAIL reply if the whole
    transaction was), otherwise the reply after the message data (in LMTP,
    that recipient's own reply).
    """

    recipients: dict[str, Response] = field(default_factory=dict)

    @property
    def delivered(self) -> list[str]:
        """Recipients the server accepted the message for."""
        return [rcpt for rcpt, resp in self.recipients.items() if resp.is_success]

    @property
    def refused(self) -> dict[str, Response]:
        """Recipients the server did not accept, with the reason."""
        return {rcpt: resp for rcpt, resp in self.recipients.items() if not resp.is_success}

    @property
    def ok(self) -> bool:
        """Whether every recipient was accepted."""
        return bool(self.recipients) and not self.refused


def _needs_8bit(data: bytes) -> bool:
    return not data.isascii()


def _canonical_crlf(data: bytes) -> bytes:
    # BDAT sends bytes as they are, so bare LF or CR must become CRLF here
    # (RFC 3030 section 3: the data is in canonical form); the counts are
    # C loops, the rewrite happens only for the rare message that needs it.
    crlf = data.count(b"\r\n")
    if data.count(b"\n") != crlf or data.count(b"\r") != crlf:
        data = re.sub(rb"\r\n|\r|\n", b"\r\n", data)
    if data and not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data


def _message_bytes(msg: email.message.EmailMessage | bytes, utf8: bool) -> bytes:
    if isinstance(msg, bytes | bytearray | memoryview):
        return bytes(msg)
    # Bcc must not travel with the message (smtplib.send_message does the same).
    if "Bcc" in msg or "Resent-Bcc" in msg:
        msg = _copy_message(msg)
        del msg["Bcc"]
        del msg["Resent-Bcc"]
    policy = email.policy.SMTPUTF8 if utf8 else email.policy.SMTP
    return msg.as_bytes(policy=policy)


def _copy_message(msg: email.message.EmailMessage) -> email.message.EmailMessage:
    import copy

    # A shallow copy is enough: deleting a header builds a new header list
    # on the copy, and the caller's message (and its big payload) is untouched.
    return copy.copy(msg)


def _message_wants_utf8(msg: email.message.EmailMessage | bytes) -> bool:
    # RFC 6532 header fields (raw UTF-8) need SMTPUTF8; an 8-bit body alone
    # needs only 8BITMIME.
    if isinstance(msg, bytes | bytearray | memoryview):
        head = bytes(msg).split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
        return not head.isascii()
    return any(not str(value).isascii() for value in msg.values())


class SMTPClient:
    """An SMTP (or LMTP) client connection.

    Use as ``async with SMTPClient(host, port) as client:`` (connect, EHLO,
    optional STARTTLS and login on entry, QUIT on exit), or call
    :meth:`connect` and :meth:`quit` yourself.

    Args:
        host, port: the server.
        local_hostname: the name sent with EHLO (default: this host's FQDN).
        implicit_tls: TLS from the first byte (port 465 style).
        starttls: upgrade with STARTTLS after EHLO; the server must offer it,
            otherwise :meth:`connect` fails before any credential is sent.
        ssl_context: TLS settings (default: :func:`mailcore.tls.client_context`,
            certificates checked against the system's CAs, TLS 1.2 and newer).
        server_hostname: the name to check the certificate against (default ``host``).
        username, password: log in after EHLO (and after STARTTLS).
        mechanisms: SASL mechanisms to use, in order of preference.
        lmtp: speak LMTP (RFC 2033): LHLO, one reply per recipient.
        limits: timeouts and bounds.
    """

    def __init__(
        self,
        host: str,
        port: int = 25,
        *,
        local_hostname: str | None = None,
        implicit_tls: bool = False,
        starttls: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        username: str | None = None,
        password: str | None = None,
        mechanisms: Sequence[str] = CLIENT_MECHANISMS,
        lmtp: bool = False,
        limits: SMTPClientLimits | None = None,
    ) -> None:
        if implicit_tls and starttls:
            raise ValueError("implicit_tls and starttls exclude each other")
        self.host = host
        self.port = port
        self.local_hostname = local_hostname or socket.getfqdn()
        self.implicit_tls = implicit_tls
        self.use_starttls = starttls
        self._ssl_context = ssl_context
        self.server_hostname = server_hostname or host
        self.username = username
        self.password = password
        self.mechanisms = [m.upper() for m in mechanisms]
        self.lmtp = lmtp
        self.limits = limits or SMTPClientLimits()
        self.conn = ClientConnection(lmtp=lmtp, limits=self.limits)
        """The sans-IO machine: its ``extensions`` say what the server offers."""
        self.greeting: Response | None = None
        """The server's 220 greeting."""
        self.tls = False
        """Whether the connection is encrypted."""
        self.authenticated_as: str | None = None
        """The user name after a successful login."""
        self._wire: Wire | None = None
        self._dirty = False
        self._rcpt_params: dict[str, dict[str, str | None]] = {}
        # One transaction at a time on one connection, whoever calls.
        self._lock = asyncio.Lock()

    # ---------------------------------------------------------- plumbing ---

    def _context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            from mailcore.tls import client_context

            self._ssl_context = client_context()
        return self._ssl_context

    async def _write(self, data: bytes, timeout: float | None = None) -> None:
        if self._wire is None:
            raise LocalProtocolError("not connected")
        await self._wire.write(data, timeout or self.limits.data_block_timeout)

    async def _reply(self, timeout: float | None = None) -> ReplyReceived:
        if self._wire is None:
            raise LocalProtocolError("not connected")
        try:
            while True:
                event = self.conn.next_event()
                if event is not NEED_DATA:
                    assert isinstance(event, ReplyReceived)
                    break
                data = await self._wire.read(timeout or self.limits.command_timeout)
                if not data:
                    raise SMTPDisconnected("server closed the connection")
                self.conn.receive_data(data)
        except (SMTPTimeout, SMTPDisconnected, RemoteProtocolError):
            # After a timeout or a broken reply nobody knows which reply
            # belongs to which command any more: the session is over.
            self._close_transport()
            raise
        if event.response.code == 421:
            # RFC 5321 3.8: the server is closing the session.
            self._close_transport()
            raise SMTPResponseError(event.command, event.response)
        return event

    async def _command(self, data: bytes, timeout: float | None = None) -> Response:
        await self._write(data)
        return (await self._reply(timeout)).response

    def _close_transport(self) -> None:
        if self._wire is not None and self._wire.transport is not None:
            self._wire.transport.close()

    # ------------------------------------------------------------ session ---

    async def connect(self) -> Response:
        """Connect, read the greeting, EHLO, then STARTTLS and log in if configured."""
        loop = asyncio.get_running_loop()
        context = self._context() if self.implicit_tls else None
        try:
            _, wire = await asyncio.wait_for(
                loop.create_connection(
                    Wire,
                    self.host,
                    self.port,
                    ssl=context,
                    server_hostname=self.server_hostname if context else None,
                ),
                self.limits.connect_timeout,
            )
        except asyncio.TimeoutError:
            raise SMTPTimeout(f"connecting to {self.host}:{self.port} timed out") from None
        self._wire = wire
        self.tls = self.implicit_tls
        try:
            event = await self._reply(self.limits.greeting_timeout)
            self.greeting = event.response
            if event.response.code != 220:
                raise SMTPResponseError("GREETING", event.response)
            await self.ehlo()
            if self.use_starttls:
                await self.starttls()
            if self.username is not None and self.password is not None:
                await self.login(self.username, self.password)
        except BaseException:
            # Nothing half-open is left behind (``async with`` does not call
            # __aexit__ when __aenter__ fails).
            await self.close()
            raise
        return event.response

    async def ehlo(self) -> Response:
        """EHLO (LHLO for LMTP), falling back to HELO when the server refuses EHLO."""
        response = await self._command(self.conn.ehlo(self.local_hostname))
        if response.is_success:
            return response
        if self.lmtp or response.code not in (500, 502, 504, 550):
            raise SMTPResponseError("LHLO" if self.lmtp else "EHLO", response)
        response = await self._command(self.conn.helo(self.local_hostname))
        if not response.is_success:
            raise SMTPResponseError("HELO", response)
        return response

    async def starttls(self, context: ssl.SSLContext | None = None) -> None:
        """Upgrade to TLS (RFC 3207), then EHLO again over TLS."""
        if self._wire is None or self._wire.transport is None:
            raise LocalProtocolError("not connected")
        if self.tls:
            raise LocalProtocolError("the connection is already encrypted")
        if not self.conn.has_extension("STARTTLS"):
            raise SMTPClientError("the server does not offer STARTTLS")
        response = await self._command(self.conn.starttls())
        if response.code != 220:
            raise SMTPResponseError("STARTTLS", response)
        # The machine dropped what it had buffered; drop what the socket
        # layer holds too, before a single TLS byte is read.
        self.conn.discarded += self._wire.discard()
        loop = asyncio.get_running_loop()
        try:
            transport = await asyncio.wait_for(
                loop.start_tls(
                    self._wire.transport,
                    self._wire,
                    context or self._context(),
                    server_hostname=self.server_hostname,
                ),
                self.limits.connect_timeout,
            )
        except asyncio.TimeoutError:
            self._close_transport()
            raise SMTPTimeout("TLS handshake timed out") from None
        if transport is None:
            raise SMTPDisconnected("connection closed during the TLS handshake")
        assert isinstance(transport, asyncio.Transport)
        self._wire.transport = transport
        # Anything that slipped in before start_tls took over the transport.
        self.conn.discarded += self._wire.discard()
        self.conn.tls_started()
        self.tls = True
        await self.ehlo()

    async def login(self, username: str, password: str, mechanism: str | None = None) -> None:
        """Authenticate (RFC 4954) with the first of our mechanisms the server offers."""
        offered = self.conn.auth_mechanisms
        if not offered:
            raise SMTPClientError("the server does not offer AUTH")
        choices = [mechanism.upper()] if mechanism else self.mechanisms
        name = next((m for m in choices if m in offered), None)
        if name is None:
            raise SMTPClientError(f"no common SASL mechanism (server offers {offered})")
        mech = client_mechanism(name, username, password)
        response = await self._command(self.conn.auth(name, mech.initial()))
        rounds = 0
        while response.code == 334:
            rounds += 1
            answer = self._sasl_answer(mech, response, rounds)
            if answer is None:
                response = await self._command(self.conn.auth_cancel())
                raise AuthError(f"AUTH {name}: the server's challenge was not acceptable")
            response = await self._command(self.conn.auth_response(answer))
        if response.code != 235:
            raise AuthError(f"AUTH {name} failed: {response}")
        if not mech.server_verified:
            # SCRAM: a server that says 235 without proving it knows our
            # keys may be an impostor that learned nothing but still lies.
            raise AuthError(f"AUTH {name}: the server did not prove its identity")
        self.authenticated_as = username

    @staticmethod
    def _sasl_answer(mech: ClientMechanism, response: Response, rounds: int) -> bytes | None:
        if rounds > 10:
            return None
        text = response.text_lines[0] if response.text_lines else ""
        try:
            challenge = base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError):
            return None
        try:
            return mech.respond(challenge)
        except AuthError:
            return None

    async def noop(self) -> Response:
        """NOOP."""
        return await self._command(self.conn.noop())

    async def rset(self) -> Response:
        """RSET."""
        return await self._command(self.conn.rset())

    async def quit(self) -> None:
        """QUIT and close; errors on the way out are ignored."""
        try:
            if self.conn.state is ClientState.READY and not self.conn.pending:
                await self._command(self.conn.quit(), self.limits.command_timeout)
        except (MailcoreError, OSError):
            pass
        finally:
            await self.close()

    async def close(self) -> None:
        """Close the connection without QUIT, and wait (briefly) until it is closed."""
        wire, self._wire = self._wire, None
        if wire is not None and wire.transport is not None:
            wire.transport.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(wire.closed), 1.0)

    async def __aenter__(self) -> SMTPClient:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.quit()

    # ----------------------------------------------------------- sending ---

    async def send_message(
        self,
        msg: email.message.EmailMessage | bytes,
        mail_from: str,
        rcpt_tos: Sequence[str],
        *,
        mail_options: Mapping[str, str | None] | None = None,
        rcpt_options: Mapping[str, Mapping[str, str | None]] | None = None,
    ) -> SendResult:
        """Send one message; return the reply that decided each recipient.

        ``mail_options`` adds ESMTP parameters to MAIL (e.g. RET, ENVID for
        DSN, RFC 3461; SIZE, BODY and SMTPUTF8 are set here), and
        ``rcpt_options`` maps a recipient to its RCPT parameters (NOTIFY,
        ORCPT); see :func:`mailcore.smtp.client_protocol.xtext`.

        Server refusals are results, not exceptions; exceptions mean the
        connection failed or the message cannot be sent to this server at all
        (too big for its SIZE, or UTF-8 addresses without SMTPUTF8), or an
        argument was refused before anything was sent.
        """
        async with self._lock:
            return await self._send_locked(msg, mail_from, rcpt_tos, mail_options, rcpt_options)

    async def _send_locked(
        self,
        msg: email.message.EmailMessage | bytes,
        mail_from: str,
        rcpt_tos: Sequence[str],
        mail_options: Mapping[str, str | None] | None,
        rcpt_options: Mapping[str, Mapping[str, str | None]] | None,
    ) -> SendResult:
        if not rcpt_tos:
            raise ValueError("no recipients")
        conn = self.conn
        if self._dirty:
            # The last transaction ended half-way: start from a clean state.
            await self.rset()
            self._dirty = False
        addresses = [mail_from, *rcpt_tos]
        # Refuse bad arguments before the first byte goes out, so that a
        # refused address never leaves half a transaction on the wire.
        for address in addresses:
            check_argument(address, "address")
        rcpt_params = {rcpt: dict((rcpt_options or {}).get(rcpt, {})) for rcpt in rcpt_tos}
        for options in (mail_options, *rcpt_params.values()):
            format_params(options)
        utf8_addresses = not all(a.isascii() for a in addresses)
        smtputf8 = conn.has_extension("SMTPUTF8") and (utf8_addresses or _message_wants_utf8(msg))
        if utf8_addresses and not smtputf8:
            raise SMTPClientError("UTF-8 addresses but the server does not offer SMTPUTF8")
        data = _message_bytes(msg, smtputf8)
        chunking = conn.has_extension("CHUNKING")
        if chunking:
            data = _canonical_crlf(data)
        params: dict[str, str | None] = dict(mail_options or {})
        if conn.has_extension("SIZE"):
            limit = conn.max_size
            if limit is not None and len(data) > limit:
                raise SMTPClientError(
                    f"message of {len(data)} bytes is over the server's SIZE {limit}"
                )
            params["SIZE"] = str(len(data))
        if _needs_8bit(data) and conn.has_extension("8BITMIME"):
            params["BODY"] = "8BITMIME"
        if smtputf8:
            params["SMTPUTF8"] = None
        self._dirty = True
        self._rcpt_params = rcpt_params
        if chunking:
            result = await self._send_bdat(data, mail_from, rcpt_tos, params)
        else:
            result = await self._send_data(data, mail_from, rcpt_tos, params)
        return result

    async def _envelope(
        self,
        mail_from: str,
        rcpt_tos: Sequence[str],
        params: dict[str, str | None],
        tail: Callable[[], list[bytes]],
    ) -> tuple[Response, dict[str, Response]]:
        """Send MAIL, RCPTs and ``tail``; pipelined when offered.

        ``tail`` builds the commands to send after the RCPTs
        (DATA, or the BDAT chunks) with PIPELINING, all in one write; their
        replies are left for the caller. Without PIPELINING one command at a
        time, stopping after a refused MAIL. Returns the MAIL and RCPT replies.
        """
        conn = self.conn
        rcpt_replies: dict[str, Response] = {}
        if conn.has_extension("PIPELINING"):
            batch = [conn.mail(mail_from, params)]
            batch += [conn.rcpt(rcpt, self._rcpt_params.get(rcpt)) for rcpt in rcpt_tos]
            await self._write(b"".join(batch + tail()))
            mail_reply = (await self._reply()).response
            for rcpt in rcpt_tos:
                rcpt_replies[rcpt] = (await self._reply()).response
            return mail_reply, rcpt_replies
        mail_reply = await self._command(conn.mail(mail_from, params))
        if not mail_reply.is_success:
            return mail_reply, rcpt_replies
        for rcpt in rcpt_tos:
            rcpt_replies[rcpt] = await self._command(conn.rcpt(rcpt, self._rcpt_params.get(rcpt)))
        return mail_reply, rcpt_replies

    def _decided(
        self,
        rcpt_tos: Sequence[str],
        mail_reply: Response,
        rcpt_replies: dict[str, Response],
        final: Response | dict[str, Response] | None,
    ) -> SendResult:
        result: dict[str, Response] = {}
        for rcpt in rcpt_tos:
            if not mail_reply.is_success:
                result[rcpt] = mail_reply
            elif not rcpt_replies[rcpt].is_success or final is None:
                result[rcpt] = rcpt_replies[rcpt]
            elif isinstance(final, dict):
                result[rcpt] = final.get(rcpt, rcpt_replies[rcpt])
            else:
                result[rcpt] = final
        return SendResult(result)

    async def _final_replies(self, timeout: float) -> Response | dict[str, Response]:
        # SMTP: one reply. LMTP: one per accepted recipient, in RCPT order.
        event = await self._reply(timeout)
        if not self.lmtp:
            return event.response
        replies = {event.argument: event.response}
        while self.conn.pending:
            event = await self._reply(timeout)
            replies[event.argument] = event.response
        return replies

    async def _send_data(
        self,
        data: bytes,
        mail_from: str,
        rcpt_tos: Sequence[str],
        params: dict[str, str | None],
    ) -> SendResult:
        conn = self.conn
        pipelining = conn.has_extension("PIPELINING")
        mail_reply, rcpt_replies = await self._envelope(
            mail_from, rcpt_tos, params, lambda: [conn.data()] if pipelining else []
        )
        accepted = mail_reply.is_success and any(r.is_success for r in rcpt_replies.values())
        if pipelining:
            data_reply = (await self._reply(self.limits.data_init_timeout)).response
        elif accepted:
            data_reply = await self._command(conn.data(), self.limits.data_init_timeout)
        else:
            return self._decided(rcpt_tos, mail_reply, rcpt_replies, None)
        if data_reply.code != 354:
            final: Response | dict[str, Response] = data_reply
            return self._decided(rcpt_tos, mail_reply, rcpt_replies, final)
        if not accepted:
            # RFC 2920 3.1: a server that says 354 with no valid recipient
            # gets an empty message, which it must then refuse.
            await self._write(conn.body(b""))
            await self._reply(self.limits.data_end_timeout)
            return self._decided(rcpt_tos, mail_reply, rcpt_replies, None)
        await self._write(conn.body(data))
        final = await self._final_replies(self.limits.data_end_timeout)
        self._dirty = False
        return self._decided(rcpt_tos, mail_reply, rcpt_replies, final)

    def _chunks(self, data: bytes) -> list[bytes]:
        size = self.limits.bdat_chunk
        chunks = [data[i : i + size] for i in range(0, len(data), size)] or [b""]
        return chunks

    async def _send_bdat(
        self,
        data: bytes,
        mail_from: str,
        rcpt_tos: Sequence[str],
        params: dict[str, str | None],
    ) -> SendResult:
        conn = self.conn
        chunks = self._chunks(data)
        pipelining = conn.has_extension("PIPELINING")
        if pipelining and not self.lmtp:
            # RFC 3030 4.2: BDAT may be pipelined with MAIL and RCPT; a
            # server that refused every recipient refuses the chunks too.
            def tail() -> list[bytes]:
                return [conn.bdat(c, last=i == len(chunks) - 1) for i, c in enumerate(chunks)]

            mail_reply, rcpt_replies = await self._envelope(mail_from, rcpt_tos, params, tail)
            final: Response | None = None
            for i in range(len(chunks)):
                last = i == len(chunks) - 1
                timeout = self.limits.data_end_timeout if last else self.limits.data_block_timeout
                reply = (await self._reply(timeout)).response
                if final is None and (last or not reply.is_success):
                    final = reply
            if final is not None and final.is_success:
                self._dirty = False
            return self._decided(rcpt_tos, mail_reply, rcpt_replies, final)
        # Without PIPELINING (and always in LMTP, where the number of
        # replies after the last chunk depends on the RCPT replies): wait.
        mail_reply, rcpt_replies = await self._envelope(mail_from, rcpt_tos, params, list)
        if not mail_reply.is_success or not any(r.is_success for r in rcpt_replies.values()):
            return self._decided(rcpt_tos, mail_reply, rcpt_replies, None)
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            await self._write(conn.bdat(chunk, last=last))
            if last:
                result = await self._final_replies(self.limits.data_end_timeout)
                self._dirty = False
                return self._decided(rcpt_tos, mail_reply, rcpt_replies, result)
            reply = (await self._reply(self.limits.data_block_timeout)).response
            if not reply.is_success:
                return self._decided(rcpt_tos, mail_reply, rcpt_replies, reply)
        raise AssertionError("not reached: the last chunk returns")


def send(
    msg: email.message.EmailMessage | bytes,
    *,
    host: str,
    port: int = 25,
    mail_from: str,
    rcpt_tos: Sequence[str],
    starttls: bool = False,
    implicit_tls: bool = False,
    ssl_context: ssl.SSLContext | None = None,
    username: str | None = None,
    password: str | None = None,
    lmtp: bool = False,
    local_hostname: str | None = None,
    limits: SMTPClientLimits | None = None,
) -> SendResult:
    """Send one message and wait for the result (a new connection and event loop).

    Raises :class:`SMTPResponseError` if no recipient was accepted; a partial
    success is returned, its :attr:`SendResult.refused` says who was not.
    """

    async def run() -> SendResult:
        async with SMTPClient(
            host,
            port,
            starttls=starttls,
            implicit_tls=implicit_tls,
            ssl_context=ssl_context,
            username=username,
            password=password,
            lmtp=lmtp,
            local_hostname=local_hostname,
            limits=limits,
        ) as client:
            return await client.send_message(msg, mail_from, rcpt_tos)

    result = asyncio.run(run())
    if not result.delivered:
        raise SMTPResponseError("every recipient", next(iter(result.recipients.values())))
    return result
