"""Asyncio IMAP server: sockets, TLS, IDLE, login and the store around the sans-IO machine.

Start it with::

    server = await start_imap_server(
        store, accounts, host="127.0.0.1", port=143,
        ssl_context=None, implicit_tls=False, limits=ImapLimits(),
        allow_plaintext_login=False, hostname="localhost",
    )   # -> asyncio.Server (serve_forever / close / wait_closed as usual)

``ssl_context`` enables STARTTLS on a plain listener, or makes the listener
implicit TLS (port 993 style) with ``implicit_tls=True``. ``accounts`` is a
:class:`~mailcore.auth.sasl.CredentialSource` (normally
:class:`~mailcore.auth.accounts.Accounts`); accounts are the store's account
names it returns. :class:`IMAPServer` is the same with more knobs (several
listeners sharing one structure cache and \\Recent bookkeeping).

Per connection, one :class:`~mailcore.imap.protocol.ServerConnection` does
framing, grammar and state; this module answers its events:

- LOGIN and AUTHENTICATE (PLAIN, LOGIN, SCRAM-SHA-256, CRAM-MD5 from
  :mod:`mailcore.auth.sasl`); a failed attempt is answered after a delay
  that grows per account and per peer (:mod:`mailcore.auth.throttle`);
- STARTTLS drops plaintext pipelined behind it (also from asyncio's buffer);
- the selected mailbox subscribes to the store's change feed; other
  sessions' changes are sent as EXISTS / EXPUNGE / FETCH FLAGS at the
  moments RFC 9051 7.5.1 allows, and immediately during IDLE;
- no command for ``limits.idle_timeout`` (at least 30 minutes, RFC 9051
  5.4) ends the session with ``* BYE``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
import uuid
from collections.abc import Sequence

from mailcore.auth.drive import answer_lookups
from mailcore.auth.sasl import (
    SERVER_MECHANISMS,
    Challenge,
    CredentialSource,
    Failure,
    SASLStep,
    ServerMechanism,
    Success,
    server_mechanism,
)
from mailcore.auth.throttle import LoginThrottle
from mailcore.imap import events as ev
from mailcore.imap.fetch import StructureCache
from mailcore.imap.handlers import Commands, IndexCache, RecentClaims
from mailcore.imap.protocol import ServerConnection
from mailcore.imap.selected import View
from mailcore.limits import ImapLimits
from mailcore.sessions import ConnectionHook, close_all, tracked
from mailcore.store.base import Change, ChangeFeed, MailboxNotFound, Store, StoreError

__all__ = ["DEFAULT_MECHANISMS", "IMAPServer", "start_imap_server"]

log = logging.getLogger("mailcore.imap")

DEFAULT_MECHANISMS = ("PLAIN", "LOGIN", "SCRAM-SHA-256")
"""SASL mechanisms offered (PLAIN and LOGIN only over TLS unless allowed)."""

_READ_SIZE = 256 * 1024


def _supported(mechanism: str, credentials: CredentialSource) -> bool:
    """Whether ``credentials`` can answer ``mechanism`` (a source that keeps no
    SCRAM or CRAM secrets says so with ``scram = False`` / ``cram = False``, as
    :class:`~mailcore.auth.accounts.Accounts` does): offering it anyway would
    fail every correct login."""
    if mechanism == "SCRAM-SHA-256":
        return getattr(credentials, "scram", None) is not False
    if mechanism == "CRAM-MD5":
        return getattr(credentials, "cram", None) is not False
    return True


class IMAPServer:
    """An IMAP4rev1/IMAP4rev2 server on a :class:`Store` and a :class:`CredentialSource`.

    ``on_connection`` is told of every connect and disconnect
    (:data:`mailcore.sessions.ConnectionHook`).
    """

    def __init__(
        self,
        store: Store,
        credentials: CredentialSource,
        *,
        hostname: str = "localhost",
        limits: ImapLimits | None = None,
        tls: ssl.SSLContext | None = None,
        allow_plaintext_login: bool = False,
        mechanisms: Sequence[str] = DEFAULT_MECHANISMS,
        throttle: LoginThrottle | None = None,
        on_connection: ConnectionHook | None = None,
    ) -> None:
        self.store = store
        self.on_connection = on_connection
        self.credentials = credentials
        self.hostname = hostname
        self.limits = limits if limits is not None else ImapLimits()
        self.tls = tls
        self.allow_plaintext_login = allow_plaintext_login
        wanted = tuple(m.upper() for m in mechanisms)
        unknown = set(wanted) - set(SERVER_MECHANISMS)
        if unknown:
            raise ValueError(f"no SASL server mechanism for {sorted(unknown)}")
        self.mechanisms = tuple(m for m in wanted if _supported(m, credentials))
        self.throttle = throttle or LoginThrottle(base=self.limits.failed_login_delay)
        self.cache = StructureCache()
        self.claims = RecentClaims()
        self.indexes = IndexCache()
        self._servers: list[asyncio.Server] = []
        self._sessions: set[asyncio.Task[None]] = set()

    async def start(
        self, host: str = "127.0.0.1", port: int = 0, *, implicit_tls: bool = False
    ) -> asyncio.Server:
        """Start a listener and return it (``implicit_tls`` needs ``tls``)."""
        if implicit_tls and self.tls is None:
            raise ValueError("an implicit-TLS listener needs a TLS context")

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            busy = len(self._sessions) >= self.limits.connections
            # close() ends sessions by cancelling them; that is their normal end
            # (a cancelled handler task also upsets asyncio's stream callback).
            with contextlib.suppress(asyncio.CancelledError):
                await tracked(
                    self._sessions,
                    self.on_connection,
                    writer,
                    lambda: _Session(self, reader, writer, implicit_tls).run(refuse=busy),
                )

        server = await asyncio.start_server(
            handle, host, port, ssl=self.tls if implicit_tls else None, limit=_READ_SIZE
        )
        self._servers.append(server)
        return server

    async def listen(
        self, host: str = "127.0.0.1", port: int = 0, *, implicit_tls: bool = False
    ) -> int:
        """Start a listener; return its port."""
        server = await self.start(host, port, implicit_tls=implicit_tls)
        bound: int = server.sockets[0].getsockname()[1]
        return bound

    async def close(self) -> None:
        """Stop listening and end every session."""
        await close_all(self._servers, self._sessions)


async def start_imap_server(
    store: Store,
    accounts: CredentialSource,
    *,
    host: str,
    port: int,
    ssl_context: ssl.SSLContext | None = None,
    implicit_tls: bool = False,
    limits: ImapLimits | None = None,
    allow_plaintext_login: bool = False,
    hostname: str = "localhost",
    on_connection: ConnectionHook | None = None,
    mechanisms: Sequence[str] = DEFAULT_MECHANISMS,
) -> asyncio.Server:
    """Start one IMAP listener (see the module docstring) and return its ``asyncio.Server``.

    ``mechanisms`` are the SASL mechanisms AUTHENTICATE offers (those the
    credential source cannot answer are left out).
    """
    server = IMAPServer(
        store,
        accounts,
        hostname=hostname,
        limits=limits,
        tls=ssl_context,
        allow_plaintext_login=allow_plaintext_login,
        mechanisms=mechanisms,
        on_connection=on_connection,
    )
    return await server.start(host, port, implicit_tls=implicit_tls)


class _Session(Commands):
    """One client connection."""

    def __init__(
        self,
        server: IMAPServer,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        implicit_tls: bool,
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.store = server.store
        self.limits = server.limits
        self.cache = server.cache
        self.claims = server.claims
        self.indexes = server.indexes
        self.conn = ServerConnection(
            hostname=server.hostname,
            limits=server.limits,
            tls_active=implicit_tls,
            tls_available=server.tls is not None,
            allow_plaintext_login=server.allow_plaintext_login,
            mechanisms=server.mechanisms,
        )
        self.account = ""
        # Autologout: when the client's time runs out. It restarts when the
        # server says something or a line from the client ends, not with every
        # byte (a command trickled a byte at a time is inactivity).
        self.deadline: float | None = None
        self.session_id = "imap-" + uuid.uuid4().hex
        self.view: View | None = None
        self.feed: ChangeFeed | None = None
        self.mech: ServerMechanism | None = None
        self.sasl_account: str | None = None
        self.attempted = ""
        peer = writer.get_extra_info("peername")
        self.peer = str(peer[0]) if isinstance(peer, tuple) and peer else "?"

    async def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.deadline = None
            self.writer.write(data)
            await self.writer.drain()

    async def run(self, *, refuse: bool = False) -> None:
        try:
            if refuse:
                self.conn.refuse("Too many connections")
                await self.flush()
                return
            self.conn.greet()
            await self.flush()
            await self.loop()
        except (ConnectionError, ssl.SSLError, TimeoutError) as exc:
            log.debug("imap session ended: %r", exc)
        finally:
            await self.close_view()
            self.writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError, TimeoutError):
                await asyncio.wait_for(self.writer.wait_closed(), 5)

    async def read(self) -> bool:
        """Read more from the client; False at EOF or autologout."""
        now = time.monotonic()
        if self.deadline is None:
            self.deadline = now + self.limits.idle_timeout
        try:
            data = await asyncio.wait_for(
                self.reader.read(_READ_SIZE), max(0.0, self.deadline - now)
            )
        except TimeoutError:
            self.conn.autologout()
            await self.flush()
            return False
        if b"\n" in data:
            self.deadline = None
        self.conn.receive_data(data)
        return bool(data)

    async def loop(self) -> None:
        conn = self.conn
        while True:
            event = conn.next_event()
            if event is ev.NeedData.NEED_DATA:
                await self.flush()
                await self.read()
                continue
            if event is ev.Paused.PAUSED:
                raise AssertionError("every event is answered before reading on")
            if isinstance(event, ev.Closed):
                await self.flush()
                return
            assert not isinstance(event, (ev.NeedData, ev.Paused))
            await self.handle(event)
            await self.flush()

    async def handle(self, event: ev.Event) -> None:
        if isinstance(event, ev.Request):
            try:
                await self.execute(event.command)
            except (ConnectionError, ssl.SSLError, TimeoutError):
                raise
            except Exception:
                log.exception("imap: %s failed", type(event.command).__name__)
                self.conn.complete(event.command.tag, "NO", "[SERVERBUG] Internal error")
        elif isinstance(event, ev.LoginRequest):
            self.attempted = event.username
            account = await self.server.credentials.verify_password(event.username, event.password)
            await self.login(event.tag, account)
        elif isinstance(event, ev.AuthStart):
            self.mech = server_mechanism(event.mechanism, realm_host=self.server.hostname)
            self.sasl_account = None
            await self.sasl(event.tag, self.mech.start(event.initial))
        elif isinstance(event, ev.AuthResponse):
            if self.sasl_account is not None:
                account, self.sasl_account = self.sasl_account, None
                await self.login(event.tag, account)
            elif self.mech is not None:
                await self.sasl(event.tag, self.mech.step(event.data))
        elif isinstance(event, ev.AuthCancelled):
            self.mech = None
            self.sasl_account = None
        elif isinstance(event, ev.StartTLS):
            await self.start_tls()
        elif isinstance(event, ev.IdleStart):
            await self.idle()

    async def sasl(self, tag: str, step: SASLStep) -> None:
        if self.mech is None:
            raise AssertionError("SASL step without a mechanism")
        step, tried = await answer_lookups(self.mech, step, self.server.credentials)
        if tried is not None:
            self.attempted = tried
        if isinstance(step, Challenge):
            self.conn.challenge(tag, step.data)
        elif isinstance(step, Success):
            self.mech = None
            if step.final is not None:
                # RFC 9051 6.2.2: server-final data goes in a last "+" challenge.
                self.sasl_account = step.account
                self.conn.challenge(tag, step.final)
            else:
                await self.login(tag, step.account)
        else:
            assert isinstance(step, Failure)
            self.mech = None
            await self.login(tag, None)

    async def login(self, tag: str, account: str | None) -> None:
        throttle = self.server.throttle
        now = time.monotonic()
        if account is None:
            await self.flush()
            # Slow down guessing; unknown user and wrong password alike.
            throttle.failure(self.attempted, self.peer, now=now)
            await asyncio.sleep(throttle.delay(self.attempted, self.peer, now=now))
            self.conn.login_failed(tag)
            return
        throttle.success(account, self.peer, now=now)
        try:
            try:
                await self.store.mailbox_state(account, "INBOX")
            except MailboxNotFound:
                # An account added while the store was not running (as in
                # LocalDelivery): create its mailboxes now.
                await self.store.create_account(account)
        except StoreError:
            log.exception("imap: cannot open the mailboxes of %s", account)
            self.conn.login_failed(tag, "[UNAVAILABLE] Mail store unavailable")
            return
        self.account = account
        self.conn.login_succeeded(tag, account)

    async def start_tls(self) -> None:
        tls = self.server.tls
        if tls is None:  # the machine only offers STARTTLS with a context
            raise AssertionError("STARTTLS without a TLS context")
        await self.flush()
        # CVE-2011-0411: plaintext pipelined after STARTTLS that reached
        # asyncio's buffer must not be read as if it came through TLS.
        pending = getattr(self.reader, "_buffer", None)
        if isinstance(pending, bytearray):
            pending.clear()
        await self.writer.start_tls(tls)
        self.conn.tls_started()

    async def idle(self) -> None:
        """RFC 2177: push other sessions' changes until the client sends DONE."""
        await self.poll_updates(expunges=True)
        await self.flush()
        deadline = time.monotonic() + self.limits.idle_timeout
        reading: asyncio.Task[bytes] = asyncio.ensure_future(self.reader.read(_READ_SIZE))
        waiting: asyncio.Task[Change] | None = None
        try:
            while True:
                if self.feed is not None and waiting is None:
                    waiting = asyncio.ensure_future(self.feed.next())
                pending: set[asyncio.Future[object]] = {reading}  # type: ignore[arg-type]
                if waiting is not None:
                    pending.add(waiting)  # type: ignore[arg-type]
                left = deadline - time.monotonic()
                done, _ = await asyncio.wait(
                    pending, timeout=max(left, 0), return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    self.conn.autologout()
                    await self.flush()
                    return
                if waiting is not None and waiting in done:
                    change = waiting.result()
                    waiting = None
                    view = self.view
                    if view is not None:
                        changes = [change]
                        if self.feed is not None:
                            changes += self.feed.pending()
                        if view.apply(changes):
                            await self.load_new()
                        self.conn.send(view.updates(expunges=True, rev2=self.conn.rev2))
                        await self.flush()
                if reading in done:
                    data = reading.result()
                    self.conn.receive_data(data)
                    if not data:
                        return
                    event = self.conn.next_event()
                    if isinstance(event, ev.IdleDone):
                        return
                    if event is not ev.NeedData.NEED_DATA:
                        raise AssertionError(f"unexpected {event!r} during IDLE")
                    await self.flush()
                    reading = asyncio.ensure_future(self.reader.read(_READ_SIZE))
        finally:
            if not reading.done():
                reading.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reading
            if waiting is not None:
                if not waiting.done():
                    waiting.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await waiting
                elif (
                    not waiting.cancelled()
                    and self.view is not None
                    and self.view.apply([waiting.result()])
                ):
                    # A message taken from the feed as DONE arrived: keep it
                    # for the next command instead of losing it.
                    await self.load_new()
