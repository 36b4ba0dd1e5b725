"""``mailcore serve``: SMTP, submission, LMTP, POP3, POP2 and IMAP on one store.

:class:`MailServer` owns what the listeners share: the data directory (held
with an exclusive ``flock`` so a second server on it is refused), the store,
the accounts, one TLS context, the log and the metrics. Each protocol is a
small *starter* in :data:`STARTERS` that turns a :class:`~mailcore.config.Listener`
into a running listener; adding a protocol is one function and one table row.

Signals: SIGHUP reloads the certificate and key into the shared TLS context
in place (sessions already running keep the TLS state they negotiated; new
handshakes use the new pair; a broken pair is logged and the old one kept).
SIGTERM and SIGINT stop gracefully: new SMTP connections get 421, messages
between their final dot and their reply get ``shutdown_timeout`` seconds to
become durable, then every listener closes and the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import fcntl
import ipaddress
import logging
import os
import signal
import socket
import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from mailcore.auth.accounts import Accounts
from mailcore.auth.sasl import SERVER_MECHANISMS
from mailcore.config import (
    DEFAULT_PORTS,
    Config,
    ConfigError,
    Listener,
    load_aliases,
    smtp_process_count,
)
from mailcore.delivery import LocalDelivery
from mailcore.errors import MailcoreError
from mailcore.imap.server import start_imap_server
from mailcore.logs import EventLog
from mailcore.metrics import Metrics
from mailcore.pop3.pop2 import POP2Server
from mailcore.pop3.server import POP3Server
from mailcore.relay import Relay
from mailcore.sessions import ConnectionHook, connection_hook, current_peer
from mailcore.smtp.local import DeliveryMonitor, LocalDeliveryHandler, MessageRecord, Relayer
from mailcore.smtp.server import SMTPServer
from mailcore.store.maildir import MaildirStore
from mailcore.tls import ensure_self_signed, server_context
from mailcore.workers import RelayProxy, WorkerLink, WorkerMonitor, WorkerPool

__all__ = ["LOCK_FILE", "STARTERS", "MailServer", "Running", "ServeError"]

log = logging.getLogger("mailcore.serve")

#: Held with ``flock`` by the running server; holds its pid.
LOCK_FILE = "serve.lock"


class ServeError(MailcoreError):
    """A reason the server cannot start, worded for the person who started it."""


@dataclass
class Running:
    """A started listener."""

    listener: Listener
    port: int
    close: Callable[[], Awaitable[None]]
    note: str
    # The listening sockets SMTP worker processes may accept on too.
    sockets: tuple[socket.socket, ...] = ()


@dataclass
class WorkerRole:
    """What makes a :class:`MailServer` an SMTP worker (see :mod:`mailcore.workers`).

    ``sockets``: (address, port) of each SMTP-like listener -> the listening
    sockets inherited from the main process.
    """

    link: WorkerLink
    sockets: Mapping[tuple[str, int], Sequence[socket.socket]]


class Monitor:
    """Sends every session event and message record to the log and the metrics."""

    def __init__(self, events: EventLog, metrics: Metrics) -> None:
        self.events = events
        self.metrics = metrics

    def session_event(self, protocol: str, event: str, peer: str, **fields: object) -> None:
        """Log and count."""
        self.events.session_event(protocol, event, peer, **fields)
        self.metrics.session_event(protocol, event, peer, **fields)

    def message(self, record: MessageRecord) -> None:
        """Log and count."""
        self.events.message(record)
        self.metrics.message(record)

    def connections(self, protocol: str) -> ConnectionHook:
        """A server's connection hook that logs and counts its connects and disconnects."""
        return connection_hook(self.session_event, protocol)


#: Longest user name written to the log as given (a client chooses it).
_LOGGED_NAME = 256


class ObservedCredentials:
    """The accounts as a SASL credential source, reporting failed logins per protocol."""

    def __init__(self, accounts: Accounts, monitor: DeliveryMonitor, protocol: str) -> None:
        self.accounts = accounts
        self.monitor = monitor
        self.protocol = protocol
        # SMTPServer offers SCRAM-SHA-256 when the source says it keeps SCRAM secrets.
        self.scram = accounts.scram
        self.cram = accounts.cram

    async def verify_password(self, username: str, password: str) -> str | None:
        """Check the password; a failure is logged with the client's address and the
        user name (cut to 256 characters), never the password."""
        account = await self.accounts.verify_password(username, password)
        if account is None:
            user = username if len(username) <= _LOGGED_NAME else username[:_LOGGED_NAME] + "..."
            self.monitor.session_event(self.protocol, "auth-failed", current_peer.get(), user=user)
        return account

    async def scram_secrets(self, username: str) -> tuple[bytes, int, bytes, bytes] | None:
        """SCRAM-SHA-256 secrets, when kept."""
        return await self.accounts.scram_secrets(username)

    async def cram_secret(self, username: str) -> bytes | None:
        """CRAM-MD5/APOP secret, when kept."""
        return await self.accounts.cram_secret(username)


def _loop_name() -> str:
    """``uvloop`` or ``asyncio``: the event loop this process runs on."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return "none"
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


# ------------------------------------------------------------------ starters


async def _start_smtp(app: MailServer, lst: Listener) -> Running | None:
    """MX-style SMTP: local delivery, relaying only through a relayer; no AUTH."""
    return await _start_smtp_like(app, lst, submission=False, lmtp=False)


async def _start_submission(app: MailServer, lst: Listener) -> Running | None:
    """Submission (RFC 6409): AUTH required before MAIL, TLS required before AUTH."""
    return await _start_smtp_like(app, lst, submission=True, lmtp=False)


async def _start_lmtp(app: MailServer, lst: Listener) -> Running | None:
    """LMTP (RFC 2033) for an MTA in front: local delivery, one reply per recipient."""
    return await _start_smtp_like(app, lst, submission=False, lmtp=True)


def _specific_address(text: str) -> bool:
    """An IP address a listener is bound to, not a wildcard (0.0.0.0, ::) or a name."""
    try:
        return not ipaddress.ip_address(text).is_unspecified
    except ValueError:
        return False


async def _start_smtp_like(
    app: MailServer, lst: Listener, *, submission: bool, lmtp: bool
) -> Running | None:
    cfg = app.config
    handler = LocalDeliveryHandler(
        app.delivery,
        cfg.domains,
        relay=app.relay,
        monitor=app.monitor,
        protocol=lst.protocol,
        aliases=app.aliases,
        own_addresses=[
            other.address for other in cfg.listeners if _specific_address(other.address)
        ],
    )
    app.smtp_handlers.append(handler)
    limits = cfg.limits.smtp
    if cfg.allow_plaintext_auth:
        limits = dataclasses.replace(limits, auth_requires_tls=False)
    processes = smtp_process_count(cfg.smtp_processes)
    if processes > 1:
        # ``connections`` bounds the whole listener: each process takes its share.
        limits = dataclasses.replace(limits, connections=-(-limits.connections // processes))
    ssl_context = app.ssl_context if lst.tls != "none" else None
    credentials = (
        ObservedCredentials(app.accounts, app.monitor, lst.protocol) if submission else None
    )

    def make() -> SMTPServer:
        return SMTPServer(
            handler,
            hostname=cfg.hostname,
            limits=limits,
            ssl_context=ssl_context,
            implicit_tls=lst.tls == "implicit",
            credentials=credentials,
            auth_mechanisms=cfg.auth_mechanisms if submission else None,
            lmtp=lmtp,
            require_auth=submission,
        )

    if submission:
        note = "AUTH required" + (
            ", implicit TLS" if lst.tls == "implicit" else ", STARTTLS before AUTH"
        )
    else:
        note = "local delivery" + ("" if app.relay is not None else ", no relaying")
        note += {"implicit": ", implicit TLS", "starttls": ", STARTTLS offered", "none": ""}[
            lst.tls
        ]
    if app.worker is not None:
        # A worker accepts on the main process's sockets of this listener.
        servers = []
        for sock in app.worker.sockets.get((lst.address, lst.port), ()):
            server = make()
            await server.start(sock=sock)
            servers.append(server)
        if not servers:
            return None

        async def close() -> None:
            for server in servers:
                await server.stop()

        return Running(lst, lst.port, close, note)
    server = make()
    await server.start(lst.address, lst.port)
    return Running(lst, server.port, server.stop, note, server.sockets)


async def _start_pop3(app: MailServer, lst: Listener) -> Running | None:
    cfg = app.config
    server = POP3Server(
        app.store,
        ObservedCredentials(app.accounts, app.monitor, "pop3"),
        hostname=cfg.hostname,
        limits=cfg.limits.pop3,
        tls=app.ssl_context if lst.tls != "none" else None,
        allow_plaintext_auth=cfg.allow_plaintext_auth,
        apop="CRAM-MD5" in cfg.auth_mechanisms,
        mechanisms=[m for m in cfg.auth_mechanisms if m in SERVER_MECHANISMS],
        on_connection=app.monitor.connections("pop3"),
    )
    port = await server.listen(lst.address, lst.port, implicit_tls=lst.tls == "implicit")
    note = {"implicit": "implicit TLS", "starttls": "STLS offered", "none": "no TLS"}[lst.tls]
    return Running(lst, port, server.close, note)


async def _start_pop2(app: MailServer, lst: Listener) -> Running | None:
    cfg = app.config
    server = POP2Server(
        app.store,
        ObservedCredentials(app.accounts, app.monitor, "pop2"),
        hostname=cfg.hostname,
        limits=cfg.limits.pop3,
        on_connection=app.monitor.connections("pop2"),
        allow_plaintext_login=cfg.allow_plaintext_auth,
    )
    port = await server.listen(lst.address, lst.port)
    note = "RFC 937, plaintext passwords" + (
        "" if cfg.allow_plaintext_auth else " (logins from loopback only)"
    )
    return Running(lst, port, server.close, note)


async def _start_imap(app: MailServer, lst: Listener) -> Running | None:
    cfg = app.config
    server = await start_imap_server(
        app.store,
        ObservedCredentials(app.accounts, app.monitor, "imap"),
        host=lst.address,
        port=lst.port,
        ssl_context=app.ssl_context if lst.tls != "none" else None,
        implicit_tls=lst.tls == "implicit",
        limits=cfg.limits.imap,
        allow_plaintext_login=cfg.allow_plaintext_auth,
        hostname=cfg.hostname,
        on_connection=app.monitor.connections("imap"),
        # [auth] mechanisms, as POP3 and submission offer them.
        mechanisms=[m for m in cfg.auth_mechanisms if m in SERVER_MECHANISMS],
    )

    async def close() -> None:
        server.close()
        # wait_closed() waits for every connection; IDLE clients may stay forever.
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(server.wait_closed(), app.config.shutdown_timeout)

    port: int = server.sockets[0].getsockname()[1]
    note = {"implicit": "implicit TLS", "starttls": "STARTTLS offered", "none": "no TLS"}[lst.tls]
    return Running(lst, port, close, note)


Starter = Callable[["MailServer", Listener], Awaitable[Running | None]]

#: Protocols an SMTP worker process serves too.
SMTP_LIKE = frozenset({"smtp", "submission", "lmtp"})

#: One starter per protocol name of :data:`mailcore.config.PROTOCOLS`.
STARTERS: dict[str, Starter] = {
    "smtp": _start_smtp,
    "submission": _start_submission,
    "lmtp": _start_lmtp,
    "pop3": _start_pop3,
    "pop2": _start_pop2,
    "imap": _start_imap,
}


def _bind_error(lst: Listener, exc: OSError) -> ServeError:
    where = f"{lst.address}:{lst.port} ({lst.protocol})"
    flag = f"--{lst.protocol} {lst.address}:{DEFAULT_PORTS[lst.protocol]}"
    if exc.errno == errno.EACCES:
        return ServeError(
            f"cannot listen on {where}: permission denied. Ports below 1024 need root "
            f"or CAP_NET_BIND_SERVICE; use a port from 1024 up, e.g. {flag}"
        )
    if exc.errno == errno.EADDRINUSE:
        return ServeError(
            f"cannot listen on {where}: the address is already in use (another server "
            "listens there); stop it or choose another port in the config file or with "
            f"--{lst.protocol} ADDR:PORT"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return ServeError(f"cannot listen on {where}: no such address on this machine")
    return ServeError(f"cannot listen on {where}: {exc.strerror or exc}")


class MailServer:
    """Everything ``mailcore serve`` runs, started and stopped as one.

    Args:
        config: the validated configuration.
        relay: optional relayer for non-local recipients (``mailcore.relay``).
        out: where the start-up summary is printed (stdout).
        event_loop: the ``--event-loop`` choice, passed on to SMTP workers.
        worker: set when this process is an SMTP worker of another one.
    """

    def __init__(
        self,
        config: Config,
        *,
        relay: Relayer | None = None,
        out: TextIO | None = None,
        event_loop: str = "auto",
        worker: WorkerRole | None = None,
    ) -> None:
        self.config = config
        self.relay = relay
        self.out = out
        self.event_loop = event_loop
        #: Set in an SMTP worker process: no lock, no relay queue, no metrics listener.
        self.worker = worker
        #: The SMTP worker processes this (main) process started, if any.
        self.pool: WorkerPool | None = None
        self.data_dir = config.data_dir.resolve()
        self.metrics = Metrics()
        size = getattr(relay, "queue_size", None)
        if callable(size):
            # A relayer that can count its queue feeds the queue-size gauge.
            self.metrics.track_queue(size)
        self.monitor: Monitor | WorkerMonitor = (
            Monitor(EventLog(), self.metrics) if worker is None else WorkerMonitor(worker.link)
        )
        self.running: list[Running] = []
        #: The aliases file's table, shared by the SMTP handlers, refilled on SIGHUP.
        self.aliases: dict[str, str] = {}
        self.smtp_handlers: list[LocalDeliveryHandler] = []
        self.cert: Path | None = None
        self.key: Path | None = None
        self.self_signed = False
        self._lock_fd: int | None = None
        self._store: MaildirStore | None = None
        self._accounts: Accounts | None = None
        self._ssl: ssl.SSLContext | None = None
        self._delivery: LocalDelivery | None = None
        self._stop: asyncio.Event | None = None
        self._owned_relay: Relay | None = None
        self.metrics_port: int | None = None

    # Shared pieces, available once start() has run.
    @property
    def store(self) -> MaildirStore:
        """The mail store."""
        assert self._store is not None, "start() first"
        return self._store

    @property
    def accounts(self) -> Accounts:
        """The account database."""
        assert self._accounts is not None, "start() first"
        return self._accounts

    @property
    def delivery(self) -> LocalDelivery:
        """Local delivery into the store."""
        assert self._delivery is not None, "start() first"
        return self._delivery

    @property
    def ssl_context(self) -> ssl.SSLContext:
        """The one server TLS context every listener shares (reloaded in place)."""
        assert self._ssl is not None, "start() first"
        return self._ssl

    # ------------------------------------------------------------ lifecycle

    def _lock(self) -> None:
        path = self.data_dir / LOCK_FILE
        try:
            # The directory holds password hashes and the TLS key: only its owner may enter.
            self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ServeError(
                f"cannot use the data directory {self.data_dir}: {exc.strerror or exc}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip()
            os.close(fd)
            pid = f" (pid {holder})" if holder.isdigit() else ""
            raise ServeError(
                f"another mailcore server{pid} is already running on the data directory "
                f"{self.data_dir}; stop it first or use another --data directory"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            # The file stays (deleting it would race with a starting server); the lock goes.
            os.close(self._lock_fd)
            self._lock_fd = None

    def _load_tls(self) -> None:
        cfg = self.config
        if cfg.tls_cert is not None and cfg.tls_key is not None:
            self.cert, self.key = cfg.tls_cert, cfg.tls_key
        else:
            self.cert, self.key = ensure_self_signed(self.data_dir, cfg.hostname)
            self.self_signed = True
        try:
            self._ssl = server_context(self.cert, self.key)
        except (OSError, ssl.SSLError) as exc:
            raise ServeError(
                f"cannot load the TLS certificate {self.cert} and key {self.key}: {exc}"
            ) from None

    async def start(self) -> None:
        """Lock the data directory, open the store, start every listener and the metrics.

        With ``smtp_processes`` above 1, the SMTP worker processes start last,
        on the sockets the SMTP-like listeners bound.
        """
        worker = self.worker
        if worker is None:
            self._lock()
        try:
            self._load_tls()
            cfg = self.config
            if cfg.aliases is not None:
                try:
                    self.aliases.update(load_aliases(cfg.aliases))
                except ConfigError as exc:
                    raise ServeError(str(exc)) from None
            mechs = cfg.auth_mechanisms
            self._accounts = Accounts(
                self.data_dir, scram="SCRAM-SHA-256" in mechs, cram="CRAM-MD5" in mechs
            )
            # The main process reconciled the store with the disk at its start.
            self._store = MaildirStore(self.data_dir, reconcile_on_open=worker is None)
            await self._store.open()
            self._delivery = LocalDelivery(self._store, self._accounts)
            if worker is not None:
                # The policy is decided here; the queue belongs to the main process.
                self.relay = RelayProxy(Relay.from_config(cfg, local=self._delivery), worker.link)
            elif self.relay is None:
                # The relay queue: authenticated submission users and the
                # configured networks send to other domains through it.
                owned = Relay.from_config(cfg, local=self._delivery)
                await owned.start()
                self._owned_relay = owned
                self.relay = owned
            for lst in cfg.listeners:
                if worker is not None and lst.protocol not in SMTP_LIKE:
                    continue
                try:
                    running = await STARTERS[lst.protocol](self, lst)
                except OSError as exc:
                    raise _bind_error(lst, exc) from None
                if running is not None:
                    self.running.append(running)
            if worker is None and cfg.metrics is not None:
                host, _, port = cfg.metrics.rpartition(":")
                try:
                    self.metrics_port = self.metrics.serve_http(host.strip("[]"), int(port))
                except OSError as exc:
                    raise ServeError(
                        f"cannot serve metrics on {cfg.metrics}: {exc.strerror or exc}"
                    ) from None
            if worker is None:
                await self._start_workers()
        except BaseException:
            await self.close()
            raise

    async def _start_workers(self) -> None:
        sockets = {
            (r.listener.address, r.listener.port): r.sockets for r in self.running if r.sockets
        }
        count = smtp_process_count(self.config.smtp_processes) - 1
        if count < 1 or not sockets:
            return
        self.pool = WorkerPool(self, count, sockets, self.event_loop)
        await self.pool.start()

    async def close(self) -> None:
        """Stop the workers and every listener, close the store and the accounts, unlock."""
        if self.pool is not None:
            # First: a draining worker may still hand messages to the relay queue.
            await self.pool.stop(self.config.shutdown_timeout + 5.0)
            self.pool = None
        for running in reversed(self.running):
            with contextlib.suppress(Exception):
                await running.close()
        self.running.clear()
        self.metrics.close()
        if self._owned_relay is not None:
            with contextlib.suppress(Exception):
                await self._owned_relay.stop()
            self._owned_relay = None
            self.relay = None
        if self._store is not None:
            await self._store.close()
            self._store = None
        if self._accounts is not None:
            self._accounts.close()
            self._accounts = None
        self._unlock()

    async def drain(self) -> None:
        """Refuse new SMTP sessions; wait (bounded) for the transactions under way to end."""
        if self.pool is not None:
            self.pool.drain()  # the workers drain at the same time
        for handler in self.smtp_handlers:
            handler.accepting = False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.shutdown_timeout
        while any(h.busy for h in self.smtp_handlers) and loop.time() < deadline:
            await asyncio.sleep(0.02)

    def reload(self) -> None:
        """What SIGHUP does: read the certificate, the key and the aliases file again."""
        if self.pool is not None:
            self.pool.signal(signal.SIGHUP)
        self.reload_tls()
        if self.config.aliases is not None:
            try:
                table = load_aliases(self.config.aliases)
            except ConfigError as exc:
                log.error("aliases reload failed, keeping the old table: %s", exc)
            else:
                self.aliases.clear()
                self.aliases.update(table)
                log.info("aliases reloaded from %s (%d entries)", self.config.aliases, len(table))

    def reload_tls(self) -> bool:
        """Read the certificate and key again into the live context; False if they are bad."""
        assert self.cert is not None and self.key is not None and self._ssl is not None
        try:
            # Validate the pair on a fresh context first: a bad file must not
            # leave the live context half-loaded.
            server_context(self.cert, self.key)
            # SSL objects copy the certificate when a handshake starts, so
            # loading into the shared context changes only new handshakes.
            self._ssl.load_cert_chain(str(self.cert), str(self.key))
        except (OSError, ssl.SSLError) as exc:
            log.error("TLS reload failed, keeping the old certificate: %s", exc)
            return False
        log.info("TLS certificate reloaded from %s", self.cert)
        return True

    def request_stop(self) -> None:
        """Ask :meth:`run` to shut down (what SIGTERM does)."""
        if self._stop is not None:
            self._stop.set()

    def summary(self) -> str:
        """What the server listens on and how to add a user."""
        lines = [
            f"mailcore serve: data in {self.data_dir}, "
            f"local domains {', '.join(self.config.domains)}, event loop {_loop_name()}"
        ]
        for r in self.running:
            lines.append(f"  {r.listener.protocol:<11} {r.listener.address}:{r.port:<6} {r.note}")
        if self.metrics_port is not None:
            lines.append(f"  {'metrics':<11} http://{self.config.metrics}/metrics")
        if self.pool is not None:
            pids = ", ".join(str(pid) for pid in self.pool.pids)
            lines.append(f"SMTP, submission and LMTP also accepted by workers (pids {pids})")
        kind = "self-signed, made on first start" if self.self_signed else "from the config"
        lines.append(f"TLS certificate: {self.cert} ({kind})")
        domain = self.config.domains[0]
        lines.append(f"Add a user:  mailcore user add you@{domain} --data {self.data_dir}")
        lines.append(
            f"Stop: Ctrl-C or kill -TERM {os.getpid()}; reload TLS: kill -HUP {os.getpid()}"
        )
        return "\n".join(lines)

    async def run(self) -> int:
        """Start, serve until SIGTERM/SIGINT, shut down gracefully; return the exit status."""
        self._stop = asyncio.Event()
        await self.start()
        loop = asyncio.get_running_loop()
        main = self.worker is None
        # A worker ignores SIGINT (Ctrl-C reaches the whole group; the main process decides).
        stops = (signal.SIGTERM, signal.SIGINT) if main else (signal.SIGTERM,)
        try:
            for sig in stops:
                loop.add_signal_handler(sig, self._stop.set)
            loop.add_signal_handler(signal.SIGHUP, self.reload)
            if self.worker is not None:
                self.worker.link.send(("ready",))
            if self.out is not None:
                print(self.summary(), file=self.out, flush=True)
            if main:
                log.info("listening", extra={"fields": {"listeners": len(self.running)}})
            await self._stop.wait()
            if main:
                log.info("shutting down")
            await self.drain()
        finally:
            try:
                await self.close()
            finally:
                # Only now: a second SIGTERM while closing must not kill the
                # process before its workers and its store are closed.
                for sig in (*stops, signal.SIGHUP):
                    loop.remove_signal_handler(sig)
        if main:
            log.info("stopped")
        return 0
