"""The typed hook API of the SMTP server: ``Handler``, ``Session``, ``Envelope``.

A handler is a subclass of :class:`Handler` that overrides the hooks it cares
about; every hook is ``async`` and those that answer the client return a
:class:`~mailcore.smtp.replies.Reply` from the catalog (or a custom one).
The names follow aiosmtpd (``handle_EHLO``, ``handle_MAIL``, ``handle_RCPT``,
``handle_DATA``), so its users find their way; unlike aiosmtpd there is no
``dir()`` scanning and no reply strings. Bodies arrive in chunks
(``handle_DATA_chunk``); the default stores them in :attr:`Envelope.content`,
spilling to a temporary file past ``Envelope.spool_threshold`` bytes, and
then calls :meth:`Handler.handle_DATA`.

Ready handlers: :class:`Sink` (accept and drop) and :class:`Debugging`
(print each message). :class:`AiosmtpdAdapter` runs an aiosmtpd-style
handler object unchanged.
"""

from __future__ import annotations

import io
import re
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any, TextIO

from mailcore.smtp import replies as R
from mailcore.smtp.protocol import decode_xtext
from mailcore.smtp.replies import Reply

__all__ = [
    "AiosmtpdAdapter",
    "Debugging",
    "Envelope",
    "Handler",
    "Recipient",
    "Session",
    "Sink",
]


@dataclass
class Session:
    """What is known about one connection."""

    peer: tuple[str, int]
    """The client's address and port."""
    server_hostname: str
    """The name the server uses in its greeting and replies."""
    host_name: str | None = None
    """The name the client gave in EHLO/HELO/LHLO."""
    extended: bool = False
    """The client used EHLO (or LHLO) rather than HELO."""
    tls: bool = False
    """The session runs over TLS (STARTTLS or implicit)."""
    tls_version: str | None = None
    """TLS protocol version, e.g. ``"TLSv1.3"``."""
    tls_cipher: str | None = None
    """Negotiated cipher name."""
    authenticated: str | None = None
    """The account the client authenticated as, if any."""
    lmtp: bool = False
    """The session speaks LMTP."""
    local: tuple[str, int] | None = None
    """The server's address and port this connection reached (one of its own
    addresses, also behind a wildcard listener)."""


@dataclass
class Recipient:
    """An accepted recipient with its RFC 3461 DSN parameters."""

    address: str
    params: Mapping[str, str | None] = field(default_factory=dict)
    notify: tuple[str, ...] | None = None
    """NOTIFY values, upper-cased (``("NEVER",)`` or some of SUCCESS, FAILURE, DELAY)."""
    orcpt: tuple[str, str] | None = None
    """ORCPT as (address type, decoded original recipient)."""


@dataclass
class Envelope:
    """One mail transaction: sender, recipients, parameters and body."""

    mail_from: str | None = None
    """Reverse-path; ``""`` for the null sender."""
    mail_params: Mapping[str, str | None] = field(default_factory=dict)
    recipients: list[Recipient] = field(default_factory=list)
    """Accepted recipients, in order."""
    smtputf8: bool = False
    body_type: str | None = None
    """BODY= value (7BIT or 8BITMIME), upper-cased."""
    declared_size: int | None = None
    """SIZE= value."""
    ret: str | None = None
    """DSN RET (FULL or HDRS)."""
    envid: str | None = None
    """DSN ENVID, xtext-decoded."""
    spool_threshold: int = 1024 * 1024
    """Bodies larger than this are kept in a temporary file, not in memory."""
    queue_id: str | None = None
    """The id the server's Received: field gives this message (set when the body starts)."""
    handler_data: Any = None
    """Free for the handler: whatever it keeps about this transaction. The
    server never reads it; the envelope (and this) is dropped when the
    transaction ends (message, RSET, EHLO, STARTTLS or end of session)."""
    _chunks: list[bytes] = field(default_factory=list, repr=False)
    """The body while it is in memory (no file object for the usual small message)."""
    _spool: IO[bytes] | None = field(default=None, repr=False)
    _size: int = 0

    @property
    def rcpt_tos(self) -> list[str]:
        """Accepted recipient addresses (aiosmtpd's name)."""
        return [r.address for r in self.recipients]

    @property
    def size(self) -> int:
        """Number of body bytes written so far."""
        return self._size

    def write(self, chunk: bytes) -> None:
        """Append body bytes."""
        if self._spool is None:
            if self._size + len(chunk) <= self.spool_threshold:
                self._chunks.append(bytes(chunk))
                self._size += len(chunk)
                return
            # Past the threshold: everything so far goes to a temporary file.
            self._spool = tempfile.TemporaryFile()  # noqa: SIM115 - owned until discard()
            self._spool.writelines(self._chunks)
            self._chunks = []
        self._spool.seek(0, 2)  # open() may have left it at the start
        self._spool.write(chunk)
        self._size += len(chunk)

    @property
    def content(self) -> bytes:
        """The whole body (read back from the spool file if it was spilled)."""
        if self._spool is None:
            chunks = self._chunks
            if len(chunks) > 1:
                self._chunks = chunks = [b"".join(chunks)]
            return chunks[0] if chunks else b""
        self._spool.seek(0)
        data = self._spool.read()
        self._spool.seek(0, 2)
        return data

    def open(self) -> IO[bytes]:
        """The body as a file positioned at its start (it stays owned by the envelope)."""
        if self._spool is None:
            self._spool = io.BytesIO(b"".join(self._chunks))
            self._chunks = []
        self._spool.seek(0)
        return self._spool

    def discard(self) -> None:
        """Drop the body (and its temporary file)."""
        if self._spool is not None:
            self._spool.close()
            self._spool = None
        self._chunks = []
        self._size = 0

    def set_mail(self, address: str, params: Mapping[str, str | None]) -> None:
        """Record an accepted MAIL command and its parameters."""
        self.mail_from = address
        self.mail_params = dict(params)
        self.smtputf8 = "SMTPUTF8" in params
        body = params.get("BODY")
        self.body_type = body.upper() if body else None
        size = params.get("SIZE")
        self.declared_size = int(size) if size else None
        ret = params.get("RET")
        self.ret = ret.upper() if ret else None
        envid = params.get("ENVID")
        self.envid = decode_xtext(envid) if envid else None

    def add_recipient(self, address: str, params: Mapping[str, str | None]) -> None:
        """Record an accepted RCPT command and its DSN parameters."""
        notify = params.get("NOTIFY")
        orcpt = params.get("ORCPT")
        orcpt_pair = None
        if orcpt:
            kind, _, value = orcpt.partition(";")
            orcpt_pair = (kind, decode_xtext(value))
        self.recipients.append(
            Recipient(
                address,
                dict(params),
                tuple(notify.upper().split(",")) if notify else None,
                orcpt_pair,
            )
        )


class Handler:
    """Base class of server handlers: override the hooks you need.

    The defaults accept every sender and recipient and keep the body in
    :attr:`Envelope.content`.
    """

    async def handle_connect(self, session: Session) -> Reply:
        """A client connected; return the greeting (a non-220 refuses service)."""
        return R.greeting(session.server_hostname)

    async def handle_EHLO(self, session: Session, hostname: str) -> Reply:
        """EHLO, HELO or LHLO; a 250 reply gets the extension list appended."""
        return R.hello(session.server_hostname)

    async def handle_MAIL(
        self, session: Session, envelope: Envelope, address: str, params: Mapping[str, str | None]
    ) -> Reply:
        """MAIL FROM with valid syntax; ``address`` is ``""`` for the null sender."""
        return R.SENDER_OK

    async def handle_RCPT(
        self, session: Session, envelope: Envelope, address: str, params: Mapping[str, str | None]
    ) -> Reply:
        """RCPT TO with valid syntax."""
        return R.RECIPIENT_OK

    async def handle_DATA_start(self, session: Session, envelope: Envelope) -> None:
        """A body begins (after 354, or with the first BDAT chunk)."""

    async def handle_DATA_chunk(self, session: Session, envelope: Envelope, chunk: bytes) -> None:
        """Body bytes, unstuffed, CRLF line ends; the first chunk is the Received: header."""
        envelope.write(chunk)

    async def handle_DATA_abort(self, session: Session, envelope: Envelope, reply: Reply) -> None:
        """The body was refused (too big, bare LF); the client got ``reply``."""
        envelope.discard()

    async def handle_DATA(self, session: Session, envelope: Envelope) -> Reply:
        """The whole message is in :attr:`Envelope.content`: accept it or not."""
        return R.MESSAGE_ACCEPTED

    async def handle_DATA_end(self, session: Session, envelope: Envelope) -> Reply:
        """The body is complete (SMTP); the default calls :meth:`handle_DATA`."""
        return await self.handle_DATA(session, envelope)

    async def handle_LMTP_DATA(self, session: Session, envelope: Envelope) -> list[Reply]:
        """The body is complete (LMTP): one reply per recipient, in order.

        The default gives every recipient the reply of :meth:`handle_DATA`.
        """
        reply = await self.handle_DATA(session, envelope)
        return [reply] * len(envelope.recipients)

    async def handle_RSET(self, session: Session) -> None:
        """The transaction was cleared."""

    async def handle_AUTH(self, session: Session, account: str) -> None:
        """The client authenticated as ``account``."""

    async def handle_close(self, session: Session) -> None:
        """The connection ended."""


class Sink(Handler):
    """Accept every message and throw it away."""

    async def handle_DATA_chunk(self, session: Session, envelope: Envelope, chunk: bytes) -> None:
        """Drop the bytes."""


class Debugging(Handler):
    """Print each message to a stream (stdout by default), like aiosmtpd's."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout

    async def handle_DATA(self, session: Session, envelope: Envelope) -> Reply:
        """Print the envelope and the message."""
        out = self.stream
        print("---------- MESSAGE FOLLOWS ----------", file=out)
        print(f"mail options: {dict(envelope.mail_params)}", file=out)
        print(f"X-Peer: {session.peer[0]}", file=out)
        print(f"X-MailFrom: {envelope.mail_from}", file=out)
        print(f"X-RcptTo: {', '.join(envelope.rcpt_tos)}", file=out)
        print(envelope.content.decode("utf-8", "replace").replace("\r\n", "\n"), file=out)
        print("------------ END MESSAGE ------------", file=out)
        out.flush()
        return R.MESSAGE_ACCEPTED


_REPLY = re.compile(r"^([2-5][0-9][0-9])(?:[ -](?:([245]\.[0-9]{1,3}\.[0-9]{1,3}) )?(.*))?$")


def parse_reply_string(text: str) -> Reply:
    """Turn an aiosmtpd-style reply string ("250 OK", "550 5.1.1 No") into a Reply."""
    lines = text.replace("\r\n", "\n").strip("\n").split("\n")
    first = _REPLY.match(lines[0])
    if first is None:
        return R.LOCAL_ERROR
    code = int(first.group(1))
    enhanced = first.group(2)
    if enhanced is not None and enhanced[0] != str(code)[0]:
        enhanced = None  # not a valid enhanced code for this reply: keep it as text
    texts = []
    for line in lines:
        m = _REPLY.match(line)
        if m is None:
            texts.append(line)
        elif enhanced is None and m.group(2):
            texts.append(f"{m.group(2)} {m.group(3) or ''}")
        else:
            texts.append(m.group(3) or "")
    return Reply(code, enhanced, "\n".join(texts))


class AiosmtpdAdapter(Handler):
    """Run an aiosmtpd-style handler object (hooks returning reply strings).

    Supported hooks: ``handle_EHLO(server, session, envelope, hostname, responses)``
    is not mapped (mailcore builds the EHLO reply); ``handle_HELO``,
    ``handle_MAIL(server, session, envelope, address, mail_options)``,
    ``handle_RCPT(server, session, envelope, address, rcpt_options)`` and
    ``handle_DATA(server, session, envelope)`` are. ``envelope.content`` and
    ``envelope.rcpt_tos`` have the names aiosmtpd uses; ``server`` is ``None``.
    Missing hooks keep mailcore's defaults.
    """

    def __init__(self, handler: Any) -> None:
        self.handler = handler

    async def handle_MAIL(
        self, session: Session, envelope: Envelope, address: str, params: Mapping[str, str | None]
    ) -> Reply:
        """Call the wrapped ``handle_MAIL``; a positive reply records the sender first."""
        hook = getattr(self.handler, "handle_MAIL", None)
        if hook is None:
            return R.SENDER_OK
        envelope.mail_from = address
        options = [k if v is None else f"{k}={v}" for k, v in params.items()]
        return parse_reply_string(await hook(None, session, envelope, address, options))

    async def handle_RCPT(
        self, session: Session, envelope: Envelope, address: str, params: Mapping[str, str | None]
    ) -> Reply:
        """Call the wrapped ``handle_RCPT``."""
        hook = getattr(self.handler, "handle_RCPT", None)
        if hook is None:
            return R.RECIPIENT_OK
        options = [k if v is None else f"{k}={v}" for k, v in params.items()]
        return parse_reply_string(await hook(None, session, envelope, address, options))

    async def handle_DATA(self, session: Session, envelope: Envelope) -> Reply:
        """Call the wrapped ``handle_DATA``."""
        hook = getattr(self.handler, "handle_DATA", None)
        if hook is None:
            return R.MESSAGE_ACCEPTED
        return parse_reply_string(await hook(None, session, envelope))
