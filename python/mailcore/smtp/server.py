"""The asyncio SMTP/LMTP server: sockets, TLS and timeouts around the sans-IO machine.

:class:`SMTPServer` listens; each connection gets an :class:`asyncio.Protocol`
(:class:`_SMTPSession`) that passes received bytes straight to
:class:`~mailcore.smtp.protocol.ServerConnection` (no StreamReader, no Python
line loop: the Rust LineReader/DotReader cut the stream) and runs one task
that pulls events, awaits the :class:`~mailcore.smtp.handlers.Handler` hooks
and writes the machine's outbox. Replies to a pipelined batch are written
together when the machine needs more input (RFC 2920 section 3.2).

TLS: STARTTLS upgrades with :meth:`asyncio.loop.start_tls` (RFC 3207), and
``implicit_tls=True`` listeners wrap every connection from the start (port
465 style, RFC 8314). Timeouts follow RFC 5321 4.5.3.2, limits come from
:class:`mailcore.limits.SMTPLimits`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import ssl
import time
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator, Sequence
from typing import Any, cast

from mailcore.auth.sasl import CredentialSource
from mailcore.limits import SMTPLimits
from mailcore.sessions import current_peer
from mailcore.smtp import replies as R
from mailcore.smtp.events import (
    NEED_DATA,
    Authenticated,
    AuthPassword,
    AuthScramSecrets,
    BodyChunk,
    BodyStart,
    Close,
    ConnectionClosed,
    Ehlo,
    Event,
    MailFrom,
    MessageAborted,
    MessageEnd,
    RcptTo,
    Reset,
    Signal,
    StartTLS,
)
from mailcore.smtp.handlers import Envelope, Handler, Session
from mailcore.smtp.ids import new_queue_id
from mailcore.smtp.protocol import ServerConnection, State, received_header
from mailcore.smtp.replies import Reply

__all__ = ["SMTPServer"]


@types.coroutine
def _resume(coro: Coroutine[Any, Any, bool], yielded: Any) -> Generator[Any, Any, bool]:
    """Finish, inside a task, a coroutine that was started by hand and suspended.

    ``yielded`` is what its first ``send(None)`` produced (the future it waits
    on); from there the task drives it exactly as if it had started it.
    """
    while True:
        try:
            sent = yield yielded
        except BaseException as exc:  # noqa: BLE001 - cancellation goes to the coroutine
            try:
                yielded = coro.throw(exc)
            except StopIteration as stop:
                result: bool = stop.value
                return result
        else:
            try:
                yielded = coro.send(sent)
            except StopIteration as stop:
                result = stop.value
                return result


_log = logging.getLogger(__name__)

# Events the session task handles itself rather than data_received(): the end
# of the session, STARTTLS, and credential checks (which run in the task's
# context, where mailcore.sessions.current_peer names the client).
_TO_TASK = (Signal, StartTLS, Close, ConnectionClosed, AuthPassword, AuthScramSecrets)

# Stop reading from a client whose unprocessed input passes this many bytes
# (a slow handler must not let a fast client fill memory).
_READ_HIGH_WATER = 1024 * 1024
_BODY_STATES = (State.DATA, State.BDAT, State.BDAT_DISCARD)


class SMTPServer:
    """An SMTP (or LMTP) server on one or more listening sockets.

    Args:
        handler: the hooks that decide (:class:`~mailcore.smtp.handlers.Handler`).
        hostname: the name in the greeting, replies and Received: headers.
        limits: bounds, timeouts and quirks.
        ssl_context: server TLS context; enables STARTTLS (or implicit TLS).
        implicit_tls: wrap connections in TLS from the first byte.
        credentials: where AUTH checks passwords; enables AUTH.
        auth_mechanisms: SASL mechanisms to offer when ``credentials`` is set.
            Default: PLAIN and LOGIN, plus SCRAM-SHA-256 when the source says
            it keeps SCRAM secrets (a true ``scram`` attribute, as
            ``mailcore.auth.accounts.Accounts(scram=True)`` has).
        lmtp: speak LMTP (RFC 2033) instead of SMTP.
        require_auth: refuse MAIL with 530 5.7.0 until the client authenticated
            (a submission listener, RFC 6409 section 4.3 / RFC 4954 section 6).
    """

    def __init__(
        self,
        handler: Handler,
        *,
        hostname: str = "localhost",
        limits: SMTPLimits | None = None,
        ssl_context: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        credentials: CredentialSource | None = None,
        auth_mechanisms: Sequence[str] | None = None,
        lmtp: bool = False,
        require_auth: bool = False,
    ) -> None:
        if implicit_tls and ssl_context is None:
            raise ValueError("implicit_tls needs an ssl_context")
        self.handler = handler
        self.hostname = hostname
        self.limits = limits if limits is not None else SMTPLimits()
        self.ssl_context = ssl_context
        self.implicit_tls = implicit_tls
        self.credentials = credentials
        if credentials is None:
            auth_mechanisms = ()
        elif auth_mechanisms is None:
            auth_mechanisms = ["PLAIN", "LOGIN"]
            if getattr(credentials, "scram", False) is True:
                auth_mechanisms.append("SCRAM-SHA-256")
        self.auth_mechanisms = tuple(auth_mechanisms)
        self.lmtp = lmtp
        self.require_auth = require_auth
        self._server: asyncio.Server | None = None
        self._sessions: set[_SMTPSession] = set()
        # The address every connection reaches, when there is only one (not a
        # wildcard): then no getsockname() per connection, which would let go
        # of the GIL in the event loop.
        self._fixed_local: tuple[str, int] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(
        self, host: str = "127.0.0.1", port: int = 0, *, sock: socket.socket | None = None
    ) -> None:
        """Listen on ``host``:``port`` (port 0 picks a free one), or accept on ``sock``.

        ``sock`` is a socket that already listens, for instance one inherited
        from the process that bound it; several processes may accept on it.
        """
        self._loop = loop = asyncio.get_running_loop()
        ssl_context = self.ssl_context if self.implicit_tls else None
        if sock is not None:
            self._server = await loop.create_server(
                lambda: _SMTPSession(self), sock=sock, ssl=ssl_context
            )
        else:
            self._server = await loop.create_server(
                lambda: _SMTPSession(self), host, port, ssl=ssl_context, reuse_address=True
            )
        self._fixed_local = _fixed_address(self._server.sockets)

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        """The listening sockets (empty before :meth:`start`)."""
        if self._server is None:
            return ()
        return tuple(self._server.sockets)

    @property
    def port(self) -> int:
        """The port of the first listening socket."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("server is not started")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def active_sessions(self) -> int:
        """Number of open client connections."""
        return len(self._sessions)

    async def stop(self) -> None:
        """Stop listening, send 421 to every open session and close it."""
        if self._server is not None:
            self._server.close()
        for session in list(self._sessions):
            session.shutdown(R.SHUTTING_DOWN)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def serve_forever(self) -> None:
        """Serve until cancelled."""
        if self._server is None:
            await self.start()
        assert self._server is not None  # set by start()
        await self._server.serve_forever()

    async def __aenter__(self) -> SMTPServer:
        if self._server is None:
            await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def _fixed_address(sockets: Sequence[socket.socket]) -> tuple[str, int] | None:
    """The one (address, port) all connections to ``sockets`` reach, if there is one."""
    if len(sockets) != 1 or sockets[0].family not in (socket.AF_INET, socket.AF_INET6):
        return None
    name = sockets[0].getsockname()
    address = ipaddress.ip_address(name[0].split("%", 1)[0])
    if address.is_unspecified:
        return None
    return (str(name[0]), int(name[1]))


class _SMTPSession(asyncio.Protocol):
    """One client connection: the asyncio side of a ServerConnection."""

    def __init__(self, server: SMTPServer) -> None:
        self.server = server
        # The server's loop (asyncio.get_running_loop() is a getpid() call in 3.11).
        self.loop = server._loop or asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.conn: ServerConnection | None = None
        self.session: Session | None = None
        self.envelope = Envelope()
        self._wakeup: asyncio.Future[None] | None = None
        self._can_write: asyncio.Future[None] | None = None
        self._lost = False
        self._reading_paused = False
        self._body_failed = False
        self._tls_early: list[bytes] | None = None
        self._timer: asyncio.TimerHandle | None = None
        # The task is waiting for input: data_received() may run events itself.
        self._parked = False
        # What _pump() could not finish and left to the task.
        self._handoff: (
            StartTLS
            | Close
            | ConnectionClosed
            | Signal
            | AuthPassword
            | AuthScramSecrets
            | Awaitable[bool]
            | Exception
            | None
        ) = None
        self._deadline = 0.0
        # Something was sent since the timer was last armed (a command was answered).
        self._answered = False
        self._timed_out = False
        self._task: asyncio.Task[None] | None = None

    # ---------------------------------------------------------- asyncio side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        server = self.server
        if len(server._sessions) >= server.limits.connections:
            transport.write(R.TOO_MANY_CONNECTIONS.to_bytes(server.limits.enhanced_status_codes))
            transport.close()
            self._lost = True
            return
        server._sessions.add(self)
        peer = transport.get_extra_info("peername") or ("", 0)
        local = server._fixed_local
        if local is None:
            here = transport.get_extra_info("sockname")
            local = (str(here[0]), int(here[1])) if isinstance(here, tuple) else None
        self.session = Session(
            peer=(str(peer[0]), int(peer[1])),
            server_hostname=server.hostname,
            lmtp=server.lmtp,
            local=local,
        )
        tls_active = server.implicit_tls
        if tls_active:
            self._note_tls(transport)
        self.conn = ServerConnection(
            server.hostname,
            server.limits,
            lmtp=server.lmtp,
            tls_available=server.ssl_context is not None,
            tls_active=tls_active,
            auth_mechanisms=server.auth_mechanisms,
        )
        self._task = self.loop.create_task(self._run())

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        if conn is None:
            return
        if self._tls_early is not None:
            # Decrypted bytes that arrive while start_tls() is still returning:
            # they belong to the TLS session, which the machine has not entered yet.
            self._tls_early.append(data)
            return
        conn.receive_data(data)
        if self._parked and self._handoff is None:
            # The machine takes it now; what it leaves (a hook that suspends)
            # is counted by the next read, which finds the task busy.
            self._pump()
            return
        if conn.buffered > _READ_HIGH_WATER and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        if self.conn is not None:
            self.conn.receive_data(b"")
        self._wake()
        # Keep the transport open until the pending replies are written (an
        # SSL transport ignores this and warns, so do not ask it).
        return not (self.session is not None and self.session.tls)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self.server._sessions.discard(self)
        self._wake()
        if self._can_write is not None and not self._can_write.done():
            self._can_write.set_result(None)

    def pause_writing(self) -> None:
        if self._can_write is None or self._can_write.done():
            self._can_write = self.loop.create_future()

    def resume_writing(self) -> None:
        if self._can_write is not None and not self._can_write.done():
            self._can_write.set_result(None)

    def shutdown(self, reply: Reply) -> None:
        """Send ``reply`` (421) and close, whatever the session is doing."""
        if self.conn is not None and not self._lost:
            self.conn.close(reply)
            self._flush()
            self._close()
        if self._task is not None:
            self._task.cancel()

    # ---------------------------------------------------------------- helpers

    def _wake(self) -> None:
        waiter = self._wakeup
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _flush(self) -> None:
        assert self.conn is not None
        data = self.conn.data_to_send()
        if data:
            self._answered = True
            if self.transport is not None and not self._lost:
                self.transport.write(data)

    def _close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def _note_tls(self, transport: asyncio.BaseTransport) -> None:
        assert self.session is not None
        obj = transport.get_extra_info("ssl_object")
        self.session.tls = True
        if isinstance(obj, ssl.SSLObject | ssl.SSLSocket):
            self.session.tls_version = obj.version()
            cipher = obj.cipher()
            self.session.tls_cipher = cipher[0] if cipher else None

    def _arm_timer(self) -> None:
        assert self.conn is not None
        limits = self.server.limits
        if self.conn.state in _BODY_STATES:
            # RFC 5321 4.5.3.2.5-6: the data block timeout runs per read.
            self._deadline = self.loop.time() + limits.data_block_timeout
        elif self._answered:
            # Waiting for a command: the clock starts with the last reply and
            # bytes of an unfinished line do not wind it back, so a client
            # trickling a byte at a time cannot hold the connection for ever
            # (a per-line deadline, as Postfix's smtpd_per_record_deadline).
            self._deadline = self.loop.time() + limits.command_timeout
        self._answered = False
        # One timer per session, re-armed only when it fires early: cheaper
        # than a call_later() for every read.
        if self._timer is not None and self._timer.when() > self._deadline:
            self._timer.cancel()
            self._timer = None
        if self._timer is None:
            self._timer = self.loop.call_at(self._deadline, self._check_timeout)

    async def _wait_for_data(self) -> bool:
        """Wait for input; False on timeout or a lost connection."""
        assert self.conn is not None
        if self._lost:
            return False
        if self._can_write is not None and not self._can_write.done():
            # The peer is not reading its replies. Input that arrives
            # meanwhile is only buffered (not pumped), so go back to the
            # machine before sleeping again.
            await self._can_write
            return not self._lost
        if self._reading_paused and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()
        self._arm_timer()
        waiter = self.loop.create_future()
        self._wakeup = waiter
        self._parked = True
        try:
            await waiter
        finally:
            self._parked = False
            self._wakeup = None
        if self._timed_out:
            self.conn.close(R.TIMEOUT)
            return False
        return not self._lost

    def _pump(self) -> None:
        """Run events from inside data_received() while every hook finishes at once.

        This saves a task switch per command. The first hook that really
        suspends (or STARTTLS, or the end of the session) is handed to the
        task, which goes on from there; replies stay in order because the
        machine reads nothing further until that event is answered.
        """
        conn = self.conn
        assert conn is not None
        try:
            while True:
                if self._can_write is not None and not self._can_write.done():
                    break  # the peer is not reading: let the task wait for it
                event = conn.next_event()
                if event is NEED_DATA:
                    self._flush()
                    self._arm_timer()
                    return
                if isinstance(event, _TO_TASK):
                    self._handoff = event
                    break
                coro = self._dispatch(event)
                try:
                    yielded = coro.send(None)
                except StopIteration:
                    continue
                self._handoff = _resume(coro, yielded)
                break
        except Exception as exc:  # noqa: BLE001 - re-raised in the task, which ends the session
            self._handoff = exc
        self._wake()

    def _check_timeout(self) -> None:
        self._timer = None
        if self._wakeup is None or self._lost:
            return  # busy in a handler: the next wait re-arms the timer
        if self.loop.time() < self._deadline:
            self._timer = self.loop.call_at(self._deadline, self._check_timeout)
            return
        self._timed_out = True
        self._wake()

    # ------------------------------------------------------------- event loop

    async def _run(self) -> None:
        conn, session, handler = self.conn, self.session, self.server.handler
        assert conn is not None and session is not None
        # This task's context: a credential source logs failed logins against it.
        current_peer.set(f"{session.peer[0]}:{session.peer[1]}")
        try:
            conn.send(await handler.handle_connect(session))
            while True:
                handoff, self._handoff = self._handoff, None
                if handoff is not None:
                    if isinstance(handoff, Exception):
                        raise handoff
                    if isinstance(handoff, Signal):
                        break
                    if isinstance(handoff, _TO_TASK):
                        ok = await self._dispatch(handoff)
                    else:
                        ok = await handoff
                    if not ok:
                        break
                    continue
                event = conn.next_event()
                if event is NEED_DATA:
                    self._flush()
                    if not await self._wait_for_data():
                        break
                    continue
                if isinstance(event, Signal):
                    break  # PAUSED outside a pending reply: the machine is closed
                if not await self._dispatch(event):
                    break
        except Exception:  # noqa: BLE001 - a handler bug ends this session, not the server
            _log.exception("SMTP session with %s failed", session.peer)
            conn.close(R.INTERNAL_ERROR)
        finally:
            if self._timer is not None:
                self._timer.cancel()
            self._flush()
            self._close()
            self.server._sessions.discard(self)
            self.envelope.discard()
            with contextlib.suppress(Exception):
                await handler.handle_close(session)

    def _dispatch(self, event: Event) -> Coroutine[Any, Any, bool]:
        """The handling of one event: a coroutine whose result False ends the session."""
        # One dict lookup instead of a chain of isinstance() checks (and no
        # coroutine of its own): this runs for every command of every session.
        return _ON_EVENT[type(event)](self, event)

    async def _on_body_chunk(self, event: BodyChunk) -> bool:
        session = self.session
        assert session is not None
        if not self._body_failed:
            try:
                await self.server.handler.handle_DATA_chunk(session, self.envelope, event.data)
            except Exception:  # noqa: BLE001 - answered with 451 at the end of the body
                self._body_failed = True
        return True

    async def _on_mail(self, event: MailFrom) -> bool:
        conn, session, envelope = self.conn, self.session, self.envelope
        assert conn is not None and session is not None
        if self.server.require_auth and session.authenticated is None:
            conn.send(R.AUTH_REQUIRED)
            return True
        hook = self.server.handler.handle_MAIL(session, envelope, event.address, event.params)
        reply = await self._hook(hook)
        if reply.code == 250:
            envelope.set_mail(event.address, event.params)
        conn.send(reply)
        return True

    async def _on_rcpt(self, event: RcptTo) -> bool:
        conn, session, envelope = self.conn, self.session, self.envelope
        assert conn is not None and session is not None
        hook = self.server.handler.handle_RCPT(session, envelope, event.address, event.params)
        reply = await self._hook(hook)
        if reply.code in (250, 251):
            envelope.add_recipient(event.address, event.params)
        conn.send(reply)
        return True

    async def _on_body_start(self, event: BodyStart) -> bool:
        session, handler = self.session, self.server.handler
        assert session is not None
        self._body_failed = False
        try:
            await handler.handle_DATA_start(session, self.envelope)
            await handler.handle_DATA_chunk(session, self.envelope, self._received())
        except Exception:  # noqa: BLE001 - see _on_body_chunk
            self._body_failed = True
        return True

    async def _on_message_end(self, event: MessageEnd) -> bool:
        await self._message_end(event)
        return True

    async def _on_ehlo(self, event: Ehlo) -> bool:
        conn, session = self.conn, self.session
        assert conn is not None and session is not None
        reply = await self._hook(self.server.handler.handle_EHLO(session, event.hostname))
        if reply.code == 250:
            session.host_name = event.hostname
            session.extended = event.extended
            self._new_envelope()
        conn.send(reply)
        return True

    async def _on_aborted(self, event: MessageAborted) -> bool:
        assert self.session is not None
        await self.server.handler.handle_DATA_abort(self.session, self.envelope, event.reply)
        self._new_envelope()
        return True

    async def _on_reset(self, event: Reset) -> bool:
        assert self.session is not None
        self._new_envelope()
        await self.server.handler.handle_RSET(self.session)
        return True

    async def _on_starttls(self, event: StartTLS) -> bool:
        return await self._start_tls()

    async def _on_auth_password(self, event: AuthPassword) -> bool:
        await self._check_password(event)
        return True

    async def _on_scram_secrets(self, event: AuthScramSecrets) -> bool:
        await self._scram_secrets(event)
        return True

    async def _on_authenticated(self, event: Authenticated) -> bool:
        session = self.session
        assert session is not None
        session.authenticated = event.account
        await self.server.handler.handle_AUTH(session, event.account)
        return True

    async def _on_close(self, event: Close | ConnectionClosed) -> bool:
        return False

    async def _hook(self, coro: Any) -> Reply:
        try:
            reply = await coro
        except Exception:  # noqa: BLE001 - a handler bug must cost one reply, not the server
            return R.LOCAL_ERROR
        if not isinstance(reply, Reply):
            return R.LOCAL_ERROR
        return reply

    def _new_envelope(self) -> None:
        self.envelope.discard()
        self.envelope = Envelope()

    def _received(self) -> bytes:
        session = self.session
        assert session is not None
        if session.lmtp:
            proto = "LMTP"
        elif session.extended:
            proto = "ESMTP"
        else:
            proto = "SMTP"
        if session.extended and session.tls:
            proto += "S"
        if session.extended and session.authenticated:
            proto += "A"
        if self.envelope.smtputf8:
            proto = "UTF8" + proto
        rcpts = self.envelope.recipients
        self.envelope.queue_id = queue_id = new_queue_id()
        return received_header(
            helo=session.host_name or "unknown",
            peer_ip=session.peer[0],
            hostname=self.server.hostname,
            protocol=proto,
            queue_id=queue_id,
            recipient=rcpts[0].address if len(rcpts) == 1 else None,
            now=time.time(),
        )

    async def _message_end(self, event: MessageEnd) -> None:
        conn, session, handler = self.conn, self.session, self.server.handler
        assert conn is not None and session is not None
        if self._body_failed:
            for _ in range(event.replies_due):
                conn.send(R.LOCAL_ERROR)
        elif session.lmtp:
            try:
                answers = await handler.handle_LMTP_DATA(session, self.envelope)
            except Exception:  # noqa: BLE001 - see _hook
                answers = []
            if len(answers) != event.replies_due or not all(isinstance(a, Reply) for a in answers):
                answers = [R.LOCAL_ERROR] * event.replies_due
            for answer in answers:
                conn.send(answer)
        else:
            conn.send(await self._hook(handler.handle_DATA_end(session, self.envelope)))
        self._new_envelope()

    async def _start_tls(self) -> bool:
        conn, transport, context = self.conn, self.transport, self.server.ssl_context
        assert conn is not None and transport is not None and context is not None
        self._flush()
        # From here on data_received() is fed by the TLS layer: plaintext that
        # came earlier was already dropped by the machine (CVE-2011-0411).
        self._tls_early = []
        try:
            new = await self.loop.start_tls(transport, self, context, server_side=True)
        except (OSError, ssl.SSLError, ConnectionError):
            self._lost = True
            return False
        early, self._tls_early = self._tls_early, None
        if new is None:
            return False
        self.transport = new
        self._note_tls(new)
        conn.tls_started()
        for data in early:
            conn.receive_data(data)
        assert self.session is not None
        self.session.host_name = None
        self.session.extended = False
        self.session.authenticated = None
        self._new_envelope()
        return True

    async def _check_password(self, event: AuthPassword) -> None:
        conn, creds = self.conn, self.server.credentials
        assert conn is not None and creds is not None
        try:
            account = await creds.verify_password(event.authcid, event.password)
        except Exception:  # noqa: BLE001 - the store failing is a 454, not a crash
            conn.auth_unavailable()
            return
        if account is None and self.server.limits.auth_failure_delay > 0:
            await asyncio.sleep(self.server.limits.auth_failure_delay)
        conn.auth_password_result(account)

    async def _scram_secrets(self, event: AuthScramSecrets) -> None:
        conn, creds = self.conn, self.server.credentials
        assert conn is not None and creds is not None
        try:
            found = await creds.scram_secrets(event.authcid)
        except Exception:  # noqa: BLE001 - see _check_password
            conn.auth_unavailable()
            return
        conn.auth_scram_secrets(found)


_ON_EVENT: dict[type, Callable[[_SMTPSession, Any], Coroutine[Any, Any, bool]]] = {
    BodyChunk: _SMTPSession._on_body_chunk,
    MailFrom: _SMTPSession._on_mail,
    RcptTo: _SMTPSession._on_rcpt,
    BodyStart: _SMTPSession._on_body_start,
    MessageEnd: _SMTPSession._on_message_end,
    Ehlo: _SMTPSession._on_ehlo,
    MessageAborted: _SMTPSession._on_aborted,
    Reset: _SMTPSession._on_reset,
    StartTLS: _SMTPSession._on_starttls,
    AuthPassword: _SMTPSession._on_auth_password,
    AuthScramSecrets: _SMTPSession._on_scram_secrets,
    Authenticated: _SMTPSession._on_authenticated,
    Close: _SMTPSession._on_close,
    ConnectionClosed: _SMTPSession._on_close,
}
"""Which method answers each event the machine emits."""
