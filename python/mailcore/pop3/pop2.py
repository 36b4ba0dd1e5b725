"""Asyncio POP2 server (RFC 937) on the store and accounts; off unless asked for.

Each connection runs a :class:`~mailcore.pop3.pop2_protocol.Pop2Connection`.
The maildrop is locked like POP3's (one session per account across POP2 and
POP3, across processes); ACKD deletions are applied when the folder is left
with FOLD or QUIT, never when the connection just drops. Messages are
streamed from the store in chunks, as the counted octets RFC 937 sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from contextlib import AsyncExitStack

from mailcore.auth.sasl import CredentialSource
from mailcore.auth.throttle import LoginThrottle
from mailcore.limits import POP3Limits
from mailcore.pop3.events import NeedData, Paused
from mailcore.pop3.pop2_protocol import (
    Pop2Closed,
    Pop2Connection,
    Pop2Event,
    Pop2Fold,
    Pop2Login,
    Pop2Quit,
    Pop2Send,
)
from mailcore.sessions import ConnectionHook, close_all, parse_ip, tracked
from mailcore.store.base import FlagMode, MaildropLocked, Store, StoreError

__all__ = ["POP2Server"]

log = logging.getLogger("mailcore.pop2")


class POP2Server:
    """A POP2 server on a :class:`Store` and a :class:`CredentialSource`.

    ``on_connection`` is told of every connect and disconnect
    (:data:`mailcore.sessions.ConnectionHook`). POP2 has no TLS, so its
    HELO carries the password in clear: with ``allow_plaintext_login`` off,
    only clients on a loopback address may log in (the others get "-"
    without their password being checked). Connections past
    ``limits.connections`` get "-" instead of the greeting.
    """

    def __init__(
        self,
        store: Store,
        credentials: CredentialSource,
        *,
        hostname: str = "localhost",
        limits: POP3Limits | None = None,
        throttle: LoginThrottle | None = None,
        on_connection: ConnectionHook | None = None,
        allow_plaintext_login: bool = True,
    ) -> None:
        self.store = store
        self.allow_plaintext_login = allow_plaintext_login
        self.on_connection = on_connection
        self.credentials = credentials
        self.hostname = hostname
        self.limits = limits if limits is not None else POP3Limits()
        self.throttle = (
            throttle if throttle is not None else LoginThrottle(base=self.limits.failed_login_delay)
        )
        self._servers: list[asyncio.Server] = []
        self._sessions: set[asyncio.Task[None]] = set()

    async def listen(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Start a listener; return its port."""

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            busy = len(self._sessions) >= self.limits.connections
            await tracked(
                self._sessions,
                self.on_connection,
                writer,
                lambda: _Pop2Session(self, reader, writer).run(refuse=busy),
            )

        server = await asyncio.start_server(handle, host, port)
        self._servers.append(server)
        bound: int = server.sockets[0].getsockname()[1]
        return bound

    async def close(self) -> None:
        """Stop listening and end every session (nothing is deleted)."""
        await close_all(self._servers, self._sessions)


class _Pop2Session:
    def __init__(
        self, server: POP2Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.conn = Pop2Connection(host=server.hostname, limits=server.limits)
        self.stack = AsyncExitStack()
        self.account: str | None = None
        self.folder = "INBOX"
        self.uids: list[int] = []
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
                if refuse:
                    self.conn.refuse("Too many connections, try again later")
                    await self.flush()
                    return
                self.conn.greet()
                await self.loop()
        except (ConnectionError, ssl.SSLError, TimeoutError) as exc:
            log.debug("pop2 session ended: %r", exc)
        except StoreError:
            log.exception("pop2: store failure, closing the session")
        finally:
            self.writer.close()
            with contextlib.suppress(ConnectionError, TimeoutError):
                await asyncio.wait_for(self.writer.wait_closed(), 5)

    async def loop(self) -> None:
        clock = asyncio.get_running_loop()
        # As POP3: the clock restarts with an answer, not with every byte.
        deadline: float | None = None
        while True:
            event = self.conn.next_event()
            if event is NeedData.NEED_DATA:
                if await self.flush() or deadline is None:
                    deadline = clock.time() + self.server.limits.idle_timeout
                try:
                    data = await asyncio.wait_for(
                        self.reader.read(64 * 1024), max(0.0, deadline - clock.time())
                    )
                except TimeoutError:
                    return
                self.conn.receive_data(data)
                continue
            if event is Paused.PAUSED:
                raise AssertionError("the session answers every event before reading on")
            assert not isinstance(event, (NeedData, Paused))
            deadline = None
            await self.handle(event)
            await self.flush()
            if isinstance(event, (Pop2Closed, Pop2Quit)):
                return

    async def handle(self, event: Pop2Event) -> None:
        conn = self.conn
        if isinstance(event, Pop2Login):
            await self.login(event)
        elif isinstance(event, Pop2Fold):
            await self.apply(event.deleted)
            try:
                metas = await self.server.store.messages(self._account(), event.folder)
            except StoreError:
                self.uids = []
                conn.folder_failed()
                return
            self.folder = event.folder
            self.uids = [m.uid for m in metas]
            conn.folder_opened([m.size for m in metas])
        elif isinstance(event, Pop2Send):
            chunks = self.server.store.read(
                self._account(), self.folder, self.uids[event.number - 1]
            )
            async for chunk in chunks:
                conn.message_data(chunk)
                await self.flush()
            conn.end_message()
        elif isinstance(event, Pop2Quit):
            try:
                await self.apply(event.deleted)
            except StoreError:
                log.exception("pop2: deletions failed")
                conn.quit_done(ok=False)
                return
            conn.quit_done()

    def _account(self) -> str:
        if self.account is None:
            raise AssertionError("POP2 event before login")
        return self.account

    async def login(self, event: Pop2Login) -> None:
        server = self.server
        if not server.allow_plaintext_login and not _loopback(self.peer):
            # The password already crossed the network in clear; at least it
            # is not taken.
            self.conn.reject_login("Plaintext passwords are not accepted here")
            return
        account = await server.credentials.verify_password(event.username, event.password)
        now = time.monotonic()
        if account is not None:
            try:
                await self.stack.enter_async_context(server.store.maildrop_lock(account))
                metas = await server.store.messages(account, "INBOX")
            except MaildropLocked:
                account = None
            else:
                server.throttle.success(account, self.peer, now=now)
                self.account = account
                self.uids = [m.uid for m in metas]
                self.conn.accept_login(account, [m.size for m in metas])
                return
        server.throttle.failure(event.username, self.peer, now=now)
        await asyncio.sleep(server.throttle.delay(event.username, self.peer, now=now))
        self.conn.reject_login()

    async def apply(self, deleted: tuple[int, ...]) -> None:
        """Remove the messages ACKD marked in the current folder."""
        if not deleted:
            return
        store, account = self.server.store, self._account()
        uids = [self.uids[n - 1] for n in deleted]
        await store.store_flags(account, self.folder, uids, ["\\Deleted"], FlagMode.ADD)
        await store.expunge(account, self.folder, uids)


def _loopback(peer: str) -> bool:
    """Whether ``peer`` is a loopback address (also as ::ffff:127.x on a dual-stack socket)."""
    ip = parse_ip(peer)
    return ip is not None and ip.is_loopback
