"""Asyncio POP3 server: sockets, TLS, timeouts and the store around the sans-IO machine.

:class:`POP3Server` listens (plain with optional STLS, or implicit TLS in the
port 995 style), runs one :class:`~mailcore.pop3.protocol.ServerConnection`
per client and answers its events from a :class:`~mailcore.store.base.Store`
and a :class:`~mailcore.auth.sasl.CredentialSource`:

- the maildrop (the account's INBOX) is locked with
  :meth:`Store.maildrop_lock` from login to the end of the session, across
  processes; a second session gets ``-ERR [IN-USE]``;
- message numbers and sizes are fixed at login; UIDLs are derived from the
  mailbox's UIDVALIDITY and the message UID (Dovecot's ``%08Xu%08Xv``), so
  they are stable across sessions and agree with IMAP;
- RETR/TOP read a message of up to 256 KiB whole with one
  :meth:`Store.read_whole` call and stream bigger ones in chunks from
  :meth:`Store.read`, through the core's DotStuffer, waiting for the socket
  between chunks (a 50 MB message is never whole in memory);
- DELE is applied only after QUIT (UPDATE state); a dropped connection
  deletes nothing;
- a failed login is answered after a delay that grows with failures per
  account and per peer (:class:`~mailcore.auth.throttle.LoginThrottle`);
- with ``login_delay`` set, CAPA announces LOGIN-DELAY and an earlier login
  of the same account gets ``-ERR [LOGIN-DELAY]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack

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
from mailcore.limits import POP3Limits
from mailcore.pop3 import events, replies
from mailcore.pop3.protocol import ServerConnection, apop_matches
from mailcore.sessions import ConnectionHook, close_all, tracked
from mailcore.store.base import FlagMode, MaildropLocked, Store, StoreError

__all__ = ["DEFAULT_MECHANISMS", "POP3Server", "uidl_for"]

log = logging.getLogger("mailcore.pop3")

DEFAULT_MECHANISMS = ("PLAIN", "SCRAM-SHA-256")
"""SASL mechanisms offered by default (PLAIN only over TLS unless allowed)."""

_READ_SIZE = 64 * 1024
# A message read ahead: its first chunk and the rest (None when read whole),
# or None when retrieve() has to open it itself.
_Opened = tuple[bytes, AsyncIterator[bytes] | None] | None
# Messages up to this size are read whole in one store call; bigger ones
# stream in chunks so a 50 MB message is never whole in memory.
_WHOLE_LIMIT = 256 * 1024


def uidl_for(uidvalidity: int, uid: int) -> str:
    """The UIDL of a message: UID then UIDVALIDITY, eight hex digits each.

    Same as Dovecot's recommended ``pop3_uidl_format = %08Xu%08Xv``, so a
    maildrop moved between the two keeps its UIDLs.
    """
    return f"{uid:08x}{uidvalidity:08x}"


class POP3Server:
    """A POP3 server on a :class:`Store` and a :class:`CredentialSource`.

    Args:
        store: where the maildrops are (each account's ``mailbox``).
        credentials: checks passwords and gives SCRAM/APOP secrets.
        hostname: name in the greeting timestamp and SASL realm.
        tls: server context for STLS and for implicit-TLS listeners.
        allow_plaintext_auth: allow USER/PASS and PLAIN without TLS.
        apop: enable APOP (needs ``credentials.cram_secret``).
        mechanisms: SASL mechanisms to offer.
        throttle: slows down failed logins per account and per peer
            (default: doubling from ``limits.failed_login_delay``).
        on_connection: told of every connect and disconnect
            (:data:`mailcore.sessions.ConnectionHook`).
    """

    def __init__(
        self,
        store: Store,
        credentials: CredentialSource,
        *,
        hostname: str = "localhost",
        limits: POP3Limits | None = None,
        tls: ssl.SSLContext | None = None,
        allow_plaintext_auth: bool = False,
        apop: bool = False,
        mechanisms: Sequence[str] = DEFAULT_MECHANISMS,
        mailbox: str = "INBOX",
        expire: str | None = None,
        login_delay: int | None = None,
        throttle: LoginThrottle | None = None,
        on_connection: ConnectionHook | None = None,
    ) -> None:
        self.store = store
        self.on_connection = on_connection
        self.credentials = credentials
        self.hostname = hostname
        self.limits = limits if limits is not None else POP3Limits()
        self.tls = tls
        self.allow_plaintext_auth = allow_plaintext_auth
        self.apop = apop
        self.mechanisms = tuple(m.upper() for m in mechanisms)
        unknown = set(self.mechanisms) - set(SERVER_MECHANISMS)
        if unknown:
            raise ValueError(f"no SASL server mechanism for {sorted(unknown)}")
        self.mailbox = mailbox
        self.expire = expire
        self.login_delay = login_delay
        self.throttle = (
            throttle if throttle is not None else LoginThrottle(base=self.limits.failed_login_delay)
        )
        self._servers: list[asyncio.Server] = []
        self._sessions: set[asyncio.Task[None]] = set()
        self._clock = 0
        # account -> time of its last login, for LOGIN-DELAY (RFC 2449 8.1.2).
        self._last_login: dict[str, float] = {}

    async def listen(
        self, host: str = "127.0.0.1", port: int = 0, *, implicit_tls: bool = False
    ) -> int:
        """Start a listener; return its port. ``implicit_tls`` needs ``tls``."""
        if implicit_tls and self.tls is None:
            raise ValueError("an implicit-TLS listener needs a TLS context")

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            busy = len(self._sessions) >= self.limits.connections
            await tracked(
                self._sessions,
                self.on_connection,
                writer,
                lambda: _Session(self, reader, writer, implicit_tls).run(refuse=busy),
            )

        server = await asyncio.start_server(
            handle, host, port, ssl=self.tls if implicit_tls else None
        )
        self._servers.append(server)
        bound: int = server.sockets[0].getsockname()[1]
        return bound

    async def close(self) -> None:
        """Stop listening and end every session (without UPDATE: nothing is deleted)."""
        await close_all(self._servers, self._sessions)

    def _next_clock(self) -> int:
        # RFC 1939 section 7: a different timestamp on every greeting, even
        # for two connections in the same nanosecond.
        self._clock = max(self._clock + 1, time.time_ns())
        return self._clock


async def _aclose(chunks: AsyncIterator[bytes]) -> None:
    """Close a store read early (its file handle goes with it)."""
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        await aclose()


class _Session:
    """One client connection."""

    def __init__(
        self,
        server: POP3Server,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        implicit_tls: bool,
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.conn = ServerConnection(
            host=server.hostname,
            pid=os.getpid(),
            clock=server._next_clock(),
            limits=server.limits,
            tls_active=implicit_tls,
            tls_available=server.tls is not None,
            allow_plaintext_auth=server.allow_plaintext_auth,
            mechanisms=server.mechanisms,
            apop=server.apop,
            expire=server.expire,
            login_delay=server.login_delay,
        )
        self.stack = AsyncExitStack()
        self.account: str | None = None
        self.uids: list[int] = []
        self.sizes: list[int] = []
        self.mech: ServerMechanism | None = None
        self.sasl_account: str | None = None
        # Messages read ahead of their RETR (see _read_ahead) and the store
        # calls reading them.
        self.ahead: dict[int, asyncio.Future[_Opened]] = {}
        self.batches: set[asyncio.Future[list[bytes | None]]] = set()
        # The name a login attempt was for, for the throttle.
        self.attempted = ""
        peer = writer.get_extra_info("peername")
        self.peer = str(peer[0]) if isinstance(peer, tuple) and peer else "?"

    async def flush(self) -> bool:
        """Send what the machine has to say; whether there was anything."""
        data = self.conn.data_to_send()
        if data:
            self.writer.write(data)
            await self.writer.drain()
        return bool(data)

    async def run(self, *, refuse: bool = False) -> None:
        try:
            async with self.stack:
                self.stack.push_async_callback(self.drop_read_ahead)
                if refuse:
                    # Over limits.connections: say so instead of a greeting.
                    self.conn.refuse(replies.SYS_TEMP.with_text("Too many connections."))
                    await self.flush()
                    return
                self.conn.greet()
                await self.flush()
                await self.loop()
        except (ConnectionError, ssl.SSLError, TimeoutError) as exc:
            log.debug("pop3 session ended: %r", exc)
        except StoreError:
            # A message that fails mid-stream cannot get an -ERR any more.
            log.exception("pop3: store failure, closing the session")
        finally:
            self.writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError, TimeoutError):
                await asyncio.wait_for(self.writer.wait_closed(), 5)

    async def loop(self) -> None:
        conn = self.conn
        clock = asyncio.get_running_loop()
        # The autologout clock starts when the server waits for a command and
        # restarts only with an answer: bytes of a line that never ends do
        # not wind it back (a client trickling one byte a minute is idle).
        deadline: float | None = None
        while True:
            event = conn.next_event()
            if event is events.NeedData.NEED_DATA:
                if await self.flush() or deadline is None:
                    deadline = clock.time() + self.server.limits.idle_timeout
                try:
                    data = await asyncio.wait_for(
                        self.reader.read(_READ_SIZE), max(0.0, deadline - clock.time())
                    )
                except TimeoutError:
                    self.writer.write(b"-ERR Disconnected for inactivity.\r\n")
                    await self.writer.drain()
                    return
                conn.receive_data(data)
                continue
            if event is events.Paused.PAUSED:
                raise AssertionError("the session answers every event before reading on")
            if isinstance(event, events.Closed):
                await self.flush()
                return
            assert not isinstance(event, (events.NeedData, events.Paused))
            deadline = None
            done = await self.handle(event)
            await self.flush()
            if done:
                return

    async def handle(self, event: events.Event) -> bool:
        """Answer one event; True when the session is over."""
        if isinstance(event, events.PasswordLogin):
            self.attempted = event.username
            account = await self.server.credentials.verify_password(event.username, event.password)
            await self.login(account)
        elif isinstance(event, events.ApopLogin):
            self.attempted = event.username
            secret = await self.server.credentials.cram_secret(event.username)
            ok = apop_matches(event.timestamp, secret, event.digest)
            await self.login(self.canonical(event.username) if ok else None)
        elif isinstance(event, events.AuthStart):
            self.mech = server_mechanism(event.mechanism, realm_host=self.server.hostname)
            self.sasl_account = None
            await self.sasl(self.mech.start(event.initial))
        elif isinstance(event, events.AuthResponse):
            if self.sasl_account is not None:
                # The client acknowledged SCRAM's server-final challenge.
                account, self.sasl_account = self.sasl_account, None
                await self.login(account)
            elif self.mech is not None:
                await self.sasl(self.mech.step(event.data))
            else:  # not reachable: the machine only asks during an exchange
                await self.login(None)
        elif isinstance(event, events.AuthCancelled):
            self.mech = None
            self.sasl_account = None
        elif isinstance(event, events.StartTLS):
            await self.start_tls()
        elif isinstance(event, events.Retrieve):
            await self.retrieve(event)
        elif isinstance(event, events.Quit):
            await self.update(event.deleted)
            return True
        return False

    async def sasl(self, step: SASLStep) -> None:
        step, tried = await answer_lookups(self._mech(), step, self.server.credentials)
        if tried is not None:
            self.attempted = tried
        if isinstance(step, Challenge):
            self.conn.send_challenge(step.data)
        elif isinstance(step, Success):
            self.mech = None
            if step.final is not None:
                # RFC 5034 section 4: additional data goes in a last challenge.
                self.sasl_account = step.account
                self.conn.send_challenge(step.final)
            else:
                await self.login(step.account)
        else:
            assert isinstance(step, Failure)
            self.mech = None
            await self.login(None)

    def canonical(self, username: str) -> str:
        """The account a name stands for (APOP checks a secret, not an account)."""
        # mailcore.auth.accounts.Accounts resolves aliases and case; other
        # credential sources name accounts exactly as given.
        lookup = getattr(self.server.credentials, "lookup", None)
        found = lookup(username) if callable(lookup) else None
        return found if isinstance(found, str) else username

    def _mech(self) -> ServerMechanism:
        if self.mech is None:
            raise AssertionError("SASL step without a mechanism")
        return self.mech

    async def login(self, account: str | None) -> None:
        """Lock and list the maildrop of ``account``; None is a failed login."""
        throttle = self.server.throttle
        if account is None:
            await self.flush()
            # Slow down password guessing; unknown user and bad password alike.
            now = time.monotonic()
            throttle.failure(self.attempted, self.peer, now=now)
            await asyncio.sleep(throttle.delay(self.attempted, self.peer, now=now))
            self.conn.reject_login(replies.AUTH_FAILED)
            return
        now = time.monotonic()
        throttle.success(account, self.peer, now=now)
        delay = self.server.login_delay
        last = self.server._last_login.get(account)
        if delay is not None and last is not None and now - last < delay:
            self.conn.reject_login(replies.LOGIN_DELAY)
            return
        store, mailbox = self.server.store, self.server.mailbox
        try:
            await self.stack.enter_async_context(store.maildrop_lock(account))
        except MaildropLocked:
            self.conn.reject_login(replies.IN_USE)
            return
        except StoreError:
            log.exception("pop3: cannot lock the maildrop of %s", account)
            self.conn.reject_login(replies.SYS_TEMP)
            return
        try:
            status = await store.status(account, mailbox)
            metas = await store.messages(account, mailbox)
        except StoreError:
            log.exception("pop3: cannot open the maildrop of %s", account)
            await self.stack.aclose()
            self.stack = AsyncExitStack()
            self.conn.reject_login(replies.SYS_TEMP)
            return
        self.account = account
        self.uids = [m.uid for m in metas]
        self.sizes = [m.size for m in metas]
        self.server._last_login[account] = now
        self.conn.accept_login(
            account,
            [m.size for m in metas],
            [uidl_for(status.uidvalidity, m.uid) for m in metas],
        )

    async def start_tls(self) -> None:
        tls = self.server.tls
        if tls is None:  # the machine only offers STLS with a context
            raise AssertionError("STLS without a TLS context")
        await self.flush()
        # RFC 2595 / CVE-2011-0411: plaintext that reached the stream buffer
        # after STLS must not be read back as if it came through TLS. asyncio
        # keeps that buffer across start_tls() and has no public way to empty it.
        pending = getattr(self.reader, "_buffer", None)
        if isinstance(pending, bytearray):
            pending.clear()
        await self.writer.start_tls(tls)
        self.conn.tls_started()

    async def _open(self, number: int) -> tuple[bytes, AsyncIterator[bytes] | None]:
        """Start reading message ``number``: its first chunk and the rest (None: no rest)."""
        account = self.account
        if account is None:
            raise AssertionError("Retrieve before login")
        store, mailbox, uid = self.server.store, self.server.mailbox, self.uids[number - 1]
        if self.sizes[number - 1] <= _WHOLE_LIMIT:
            # One store call (one thread hop) for the whole message instead
            # of lookup, open and read each costing one.
            whole = await store.read_whole(account, mailbox, uid, _WHOLE_LIMIT)
            if whole is not None:
                return whole, None
        chunks = store.read(account, mailbox, uid)
        try:
            first = await anext(chunks, b"")
        except BaseException:
            await _aclose(chunks)
            raise
        return first, chunks

    def _read_ahead(self, first: int) -> None:
        """Read messages ``first`` on while earlier ones are sent, when more commands wait.

        A pipelining client (fetchmail, mailcore's retr_many) sends RETR n,
        n+1, ...: the next ``limits.read_ahead`` small messages are read in
        ONE store call (one thread hop for all of them, which costs more
        than the reads), big ones each open their stream. At most
        ``limits.read_ahead`` messages (small ones whole, big ones their
        first chunk) are held.
        """
        if first in self.ahead or first > len(self.uids) or not self.conn.input_pending:
            return
        account = self.account
        if account is None:
            raise AssertionError("Retrieve before login")
        last = min(len(self.uids), first + self.server.limits.read_ahead - 1)
        small: list[int] = []
        for n in range(first, last + 1):
            if n in self.ahead:
                continue
            if self.sizes[n - 1] <= _WHOLE_LIMIT:
                small.append(n)
            else:
                self.ahead[n] = asyncio.ensure_future(self._open(n))
        if not small:
            return
        loop = asyncio.get_running_loop()
        waiting: list[asyncio.Future[_Opened]] = []
        for n in small:
            future: asyncio.Future[_Opened] = loop.create_future()
            self.ahead[n] = future
            waiting.append(future)
        batch = asyncio.ensure_future(
            self.server.store.read_whole_many(
                account, self.server.mailbox, [self.uids[n - 1] for n in small], _WHOLE_LIMIT
            )
        )
        self.batches.add(batch)

        def done(task: asyncio.Future[list[bytes | None]]) -> None:
            self.batches.discard(task)
            if task.cancelled():
                for fut in waiting:
                    fut.cancel()
                return
            exc = task.exception()
            datas = task.result() if exc is None else [None] * len(waiting)
            for fut, data in zip(waiting, datas, strict=True):
                if fut.done():
                    continue
                if exc is not None:
                    fut.set_exception(exc)
                elif data is None:
                    # Too big or moved meanwhile: retrieve() opens it itself.
                    fut.set_result(None)
                else:
                    fut.set_result((data, None))

        batch.add_done_callback(done)

    async def drop_read_ahead(self) -> None:
        """Cancel reads nobody asked for and close their files."""
        ahead, self.ahead = self.ahead, {}
        for batch in list(self.batches):
            batch.cancel()
        for task in ahead.values():
            task.cancel()
        for task in ahead.values():
            with contextlib.suppress(asyncio.CancelledError, StoreError):
                opened = await task
                if opened is not None and opened[1] is not None:
                    await _aclose(opened[1])

    async def retrieve(self, event: events.Retrieve) -> None:
        conn, number = self.conn, event.number
        self._read_ahead(number)
        pending = self.ahead.pop(number, None)
        self._read_ahead(number + 1)
        try:
            opened = await pending if pending is not None else None
            first, chunks = opened if opened is not None else await self._open(number)
        except StoreError:
            log.exception("pop3: cannot read message %d", number)
            conn.message_failed(replies.SYS_TEMP)
            return
        conn.begin_message()
        try:
            chunk, sent = first, 0
            while chunk:
                conn.message_data(chunk)
                sent += len(chunk)
                if conn.message_complete or sent >= event.size or chunks is None:
                    # The last chunk leaves with the terminator in one write.
                    break
                # One write per chunk; the socket buffer's limits give backpressure.
                await self.flush()
                chunk = await anext(chunks, b"")
        finally:
            if chunks is not None:
                await _aclose(chunks)
        conn.end_message()

    async def update(self, deleted: tuple[int, ...]) -> None:
        """UPDATE state (RFC 1939 section 6): remove the messages marked by DELE."""
        if self.account is None or not deleted:
            self.conn.update_done()
            return
        store, mailbox = self.server.store, self.server.mailbox
        uids = [self.uids[n - 1] for n in deleted]
        try:
            await store.store_flags(self.account, mailbox, uids, ["\\Deleted"], FlagMode.ADD)
            await store.expunge(self.account, mailbox, uids)
        except StoreError:
            log.exception("pop3: UPDATE failed for %s", self.account)
            self.conn.update_done(replies.SYS_TEMP.with_text("Some messages were not deleted."))
            return
        self.conn.update_done()
