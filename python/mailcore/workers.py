"""SMTP worker processes of ``mailcore serve`` (the ``smtp_processes`` setting).

One Python process runs one event loop, and an SMTP session costs that loop
a dozen system calls and some hundreds of microseconds of Python per
message: one process cannot use a second core. With ``smtp_processes = N``
(``"auto"``: one per core, at most 4) ``mailcore serve`` starts N-1 worker
processes that accept on the very sockets the main process listens on for
SMTP, submission and LMTP (inherited file descriptors: the kernel hands each
new connection to one of the processes waiting in ``accept``), and deliver
into the same store. The store's writers in all processes take turns on its
index lock, so UIDs and MODSEQs stay unique and ascending.

What stays in the main process: the data-directory lock, POP3, POP2, IMAP,
the relay queue and its delivery, the metrics listener. A worker tells the
main process over a socket pair (length-prefixed pickles, one frame per
turn of its event loop):

* each session event and message record: the main process writes the log
  lines and counts the metrics, so both cover every process; a delivered
  message also wakes the main store's change feed, so an IMAP IDLE client
  learns of it at once, as when the main process delivered it;
* each message for the relay queue (the queue has one owner): the worker
  answers its client only once the main process reports the message queued
  and durable.

Signals: the main process passes SIGHUP on (certificate, key and aliases are
read again), and on SIGTERM tells the workers to drain (SIGTERM) and waits
for them. A worker whose main process is gone (the socket pair closes) stops.
A worker that dies is started again, at most once a second; one that stops
cleanly (it was sent SIGTERM itself) is not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import socket
import sys
from collections.abc import Mapping, Sequence
from dataclasses import astuple, dataclass, field
from typing import TYPE_CHECKING, Any

from mailcore.config import Config
from mailcore.relay import Relay
from mailcore.sessions import ConnectionHook, connection_hook
from mailcore.smtp.handlers import Envelope, Recipient, Session
from mailcore.smtp.local import MessageRecord
from mailcore.smtp.replies import Reply

if TYPE_CHECKING:
    from mailcore.app import MailServer

__all__ = ["Bootstrap", "RelayProxy", "WorkerLink", "WorkerMonitor", "WorkerPool"]

log = logging.getLogger("mailcore.serve")

# A frame: 4-byte big-endian length, then a pickled list of messages.
_HEADER = 4
# Largest frame a side accepts: a message for the relay queue and its envelope.
_MAX_FRAME = 1 << 31
# A worker that dies is started again no sooner than this after its last start.
_RESTART_DELAY = 1.0


@dataclass(frozen=True)
class Bootstrap:
    """What a worker reads from its stdin before it starts."""

    config: Config
    control_fd: int
    # (address, port) of a listener -> the inherited listening sockets' fds.
    sockets: Mapping[tuple[str, int], Sequence[int]]
    event_loop: str


def _frame(messages: list[tuple[Any, ...]]) -> bytes:
    blob = pickle.dumps(messages, protocol=pickle.HIGHEST_PROTOCOL)
    return len(blob).to_bytes(_HEADER, "big") + blob


async def _read_frame(reader: asyncio.StreamReader) -> list[tuple[Any, ...]]:
    size = int.from_bytes(await reader.readexactly(_HEADER), "big")
    if size > _MAX_FRAME:
        raise ConnectionError(f"control frame of {size} bytes")
    messages: list[tuple[Any, ...]] = pickle.loads(await reader.readexactly(size))
    return messages


#: Bytes a worker lets wait for a main process that does not read (stopped,
#: or far behind) before it drops log events and message records: memory
#: stays bounded. Relay calls are never dropped (each one holds an SMTP
#: session, so they are bounded by the connection limit). The main process
#: logs how many were dropped once it reads again.
EVENT_BACKLOG = 4 * 1024 * 1024


#: How long a droppable message (a log event, a message record) may wait for
#: others to share its frame. A worker busy with SMTP then wakes the main
#: process a hundred times a second at most for them, instead of once or
#: more per message; a relay call goes at the end of the loop turn.
EVENT_DELAY = 0.01


class _Sender:
    """Messages to the other side, gathered into frames.

    A message that someone waits for (a relay call and its answer, the
    worker's "ready") leaves at the end of the event-loop turn, together
    with everything queued before it; droppable ones wait up to ``delay``
    seconds for company.
    """

    def __init__(
        self,
        writer: asyncio.StreamWriter,
        backlog: int = EVENT_BACKLOG,
        delay: float = EVENT_DELAY,
    ) -> None:
        self.writer = writer
        self.backlog = backlog
        self.delay = delay
        #: Droppable messages dropped since the backlog last had room.
        self.dropped = 0
        self._pending: list[tuple[Any, ...]] = []
        self._loop = asyncio.get_running_loop()
        self._soon = False
        self._timer: asyncio.TimerHandle | None = None

    def send(self, message: tuple[Any, ...], *, droppable: bool = False) -> None:
        if self.dropped or droppable:
            full = self.writer.transport.get_write_buffer_size() >= self.backlog
            if droppable and full:
                self.dropped += 1
                return
            if self.dropped and not full:
                self._pending.append(("dropped", self.dropped))
                self.dropped = 0
        self._pending.append(message)
        if not droppable:
            if not self._soon:
                self._soon = True
                self._loop.call_soon(self.flush)
        elif self._timer is None and not self._soon:
            self._timer = self._loop.call_later(self.delay, self.flush)

    def flush(self) -> None:
        """Send everything queued now, in one frame."""
        self._soon = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending = self._pending, []
        if pending and not self.writer.is_closing():
            self.writer.write(_frame(pending))


# ------------------------------------------------------------------ worker side


class WorkerLink:
    """A worker's end of the socket pair: events out, relay calls and their answers."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._sender = _Sender(writer)
        self._calls: dict[int, asyncio.Future[str]] = {}
        self._next_call = 0
        #: Set when the main process is gone (or the link broke).
        self.closed = asyncio.Event()

    def send(self, message: tuple[Any, ...], *, droppable: bool = False) -> None:
        """Queue one message for the main process.

        ``droppable`` (log events, message records): dropped, and counted,
        while more than ``EVENT_BACKLOG`` bytes wait for the main process.
        """
        self._sender.send(message, droppable=droppable)

    def flush(self) -> None:
        """Send what is queued now (before the worker closes the link)."""
        self._sender.flush()

    async def enqueue(self, envelope: Envelope, data: bytes) -> str:
        """Have the main process queue ``data`` for relaying; its queue id once durable."""
        if self.closed.is_set():
            raise ConnectionError("the main mailcore process is gone")
        self._next_call += 1
        call = self._next_call
        waiter: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._calls[call] = waiter
        fields = (
            envelope.mail_from,
            dict(envelope.mail_params),
            [astuple(r) for r in envelope.recipients],
            envelope.smtputf8,
            envelope.body_type,
            envelope.ret,
            envelope.envid,
        )
        self.send(("enqueue", call, fields, data))
        try:
            return await waiter
        finally:
            self._calls.pop(call, None)

    async def run(self) -> None:
        """Read the main process's answers until the link closes."""
        try:
            while True:
                for message in await _read_frame(self._reader):
                    if message[0] == "enqueued":
                        _kind, call, queue_id, error = message
                        waiter = self._calls.get(call)
                        if waiter is None or waiter.done():
                            continue
                        if error is None:
                            waiter.set_result(queue_id)
                        else:
                            waiter.set_exception(RuntimeError(f"relay queue: {error}"))
        except (asyncio.IncompleteReadError, ConnectionError, pickle.UnpicklingError):
            pass
        finally:
            self.closed.set()
            for waiter in self._calls.values():
                if not waiter.done():
                    waiter.set_exception(ConnectionError("the main mailcore process is gone"))


class WorkerMonitor:
    """The worker's monitor: session events and message records go to the main process."""

    def __init__(self, link: WorkerLink) -> None:
        self.link = link

    def session_event(self, protocol: str, event: str, peer: str, **fields: object) -> None:
        """Forward; the main process logs and counts."""
        self.link.send(("event", protocol, event, peer, fields), droppable=True)

    def message(self, record: MessageRecord) -> None:
        """Forward; the main process logs, counts and wakes its change feed."""
        self.link.send(("message", record), droppable=True)

    def connections(self, protocol: str) -> ConnectionHook:
        """A connection hook forwarding connects and disconnects."""
        return connection_hook(self.session_event, protocol)


class RelayProxy:
    """The relay as a worker sees it: the policy here, the queue in the main process."""

    def __init__(self, policy: Relay, link: WorkerLink) -> None:
        self.policy = policy
        self.link = link

    def may_relay(self, session: Session) -> bool:
        """Whether this client may send to non-local domains (decided here)."""
        return self.policy.may_relay(session)

    def refuse(self, address: str) -> Reply | None:
        """Why ``address`` is not queued for a client allowed to relay (decided here)."""
        return self.policy.refuse(address)

    async def enqueue(self, envelope: Envelope, data: bytes) -> str:
        """Queue through the main process; returns once it is durable there."""
        return await self.link.enqueue(envelope, data)


async def _worker(boot: Bootstrap) -> int:
    from mailcore.app import MailServer, WorkerRole

    control = socket.socket(fileno=boot.control_fd)
    reader, writer = await asyncio.open_connection(sock=control)
    link = WorkerLink(reader, writer)
    listening = {key: [socket.socket(fileno=fd) for fd in fds] for key, fds in boot.sockets.items()}
    server = MailServer(boot.config, worker=WorkerRole(link, listening))
    reading = asyncio.create_task(link.run())
    # The main process gone: stop as on SIGTERM.
    reading.add_done_callback(lambda _task: server.request_stop())
    try:
        return await server.run()
    finally:
        link.flush()  # the last session's log lines and records
        writer.close()
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reading


def worker_main() -> int:
    """Entry point of a worker process (``python -m mailcore.workers``)."""
    from mailcore.logs import setup_logging

    # Ctrl-C reaches the whole process group: the main process decides.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    boot: Bootstrap = pickle.load(sys.stdin.buffer)
    logs = setup_logging(boot.config.log_format, boot.config.log_level)
    factory = None
    if boot.event_loop != "asyncio":
        with contextlib.suppress(ImportError):
            import uvloop  # type: ignore[import-not-found, unused-ignore]

            factory = uvloop.new_event_loop
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(_worker(boot))
    except Exception:  # logged; the main process starts another
        log.exception("smtp worker %d failed", os.getpid())
        return 1
    finally:
        logs.stop()


# -------------------------------------------------------------------- main side


@dataclass
class _Worker:
    slot: int
    process: asyncio.subprocess.Process | None = None
    task: asyncio.Task[None] | None = None
    # Set when the worker says it accepts (its listeners and signal handlers are up).
    ready: asyncio.Event = field(default_factory=asyncio.Event)


class WorkerPool:
    """The main process's side: starts, feeds, restarts and stops the workers.

    Args:
        app: the main :class:`~mailcore.app.MailServer` (its monitor, relay, store).
        count: how many workers.
        sockets: (address, port) of each SMTP-like listener -> its listening sockets.
        event_loop: the ``--event-loop`` choice, passed on.
    """

    def __init__(
        self,
        app: MailServer,
        count: int,
        sockets: Mapping[tuple[str, int], Sequence[socket.socket]],
        event_loop: str,
    ) -> None:
        self.app = app
        self.sockets = sockets
        self.event_loop = event_loop
        self.workers = [_Worker(slot) for slot in range(count)]
        self._stopping = False
        self._jobs: set[asyncio.Task[None]] = set()

    @property
    def pids(self) -> list[int]:
        """Process ids of the running workers."""
        return [w.process.pid for w in self.workers if w.process is not None]

    async def start(self, timeout: float = 30.0) -> None:
        """Start every worker and wait (at most ``timeout`` seconds) until each accepts."""
        for worker in self.workers:
            await self._spawn(worker)
        waits = [asyncio.ensure_future(w.ready.wait()) for w in self.workers]
        _done, late = await asyncio.wait(waits, timeout=timeout)
        for job in late:
            job.cancel()
        if late:
            log.warning("%d smtp worker(s) not ready after %.0f s", len(late), timeout)

    async def _spawn(self, worker: _Worker) -> None:
        parent, child = socket.socketpair()
        fds = {key: [s.fileno() for s in socks] for key, socks in self.sockets.items()}
        boot = Bootstrap(self.app.config, child.fileno(), fds, self.event_loop)
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "mailcore.workers",
                stdin=asyncio.subprocess.PIPE,
                pass_fds=[child.fileno(), *(fd for group in fds.values() for fd in group)],
            )
        except BaseException:
            parent.close()
            raise
        finally:
            child.close()
        assert process.stdin is not None  # stdin=PIPE
        process.stdin.write(pickle.dumps(boot, protocol=pickle.HIGHEST_PROTOCOL))
        await process.stdin.drain()
        process.stdin.close()
        worker.process = process
        worker.ready.clear()
        worker.task = asyncio.create_task(self._serve(worker, process, parent))

    async def _serve(
        self, worker: _Worker, process: asyncio.subprocess.Process, control: socket.socket
    ) -> None:
        started = asyncio.get_running_loop().time()
        reader, writer = await asyncio.open_connection(sock=control)
        sender = _Sender(writer)
        try:
            while True:
                for message in await _read_frame(reader):
                    try:
                        self._handle(worker, message, sender)
                    except Exception:  # one bad message must not deafen us to the worker
                        log.exception("smtp worker %d sent %.80r", process.pid, message)
        except (asyncio.IncompleteReadError, ConnectionError, pickle.UnpicklingError):
            pass
        finally:
            writer.close()
        status = await process.wait()
        if self._stopping:
            return
        if status == 0:
            # A clean stop: it was sent SIGTERM itself (a service manager
            # signalling the whole group, or an operator). Not restarted.
            log.info("smtp worker %d stopped", process.pid)
            return
        log.error("smtp worker %d exited (status %s); starting another", process.pid, status)
        while not self._stopping:
            await asyncio.sleep(
                max(0.0, started + _RESTART_DELAY - asyncio.get_running_loop().time())
            )
            if self._stopping:
                return
            started = asyncio.get_running_loop().time()
            try:
                await self._spawn(worker)
                return
            except (OSError, ValueError) as exc:
                log.error("cannot start an smtp worker: %s; trying again", exc)

    def _handle(self, worker: _Worker, message: tuple[Any, ...], sender: _Sender) -> None:
        kind = message[0]
        monitor = self.app.monitor
        if kind == "ready":
            worker.ready.set()
        elif kind == "event":
            _kind, protocol, event, peer, fields = message
            monitor.session_event(protocol, event, peer, **fields)
        elif kind == "message":
            record: MessageRecord = message[1]
            monitor.message(record)
            if record.result.startswith("delivered"):
                self.app.store.poke()
        elif kind == "dropped":
            pid = worker.process.pid if worker.process is not None else 0
            log.warning(
                "smtp worker %d dropped %d log events while this process was not reading",
                pid,
                message[1],
            )
        elif kind == "enqueue":
            _kind, call, fields, data = message
            job = asyncio.create_task(self._enqueue(sender, call, fields, data))
            self._jobs.add(job)
            job.add_done_callback(self._jobs.discard)

    async def _enqueue(
        self, sender: _Sender, call: int, fields: tuple[Any, ...], data: bytes
    ) -> None:
        mail_from, params, recipients, smtputf8, body_type, ret, envid = fields
        envelope = Envelope(
            mail_from=mail_from,
            mail_params=params,
            recipients=[Recipient(*r) for r in recipients],
            smtputf8=smtputf8,
            body_type=body_type,
            ret=ret,
            envid=envid,
        )
        relay = self.app.relay
        try:
            if relay is None:
                raise RuntimeError("no relay queue")
            queue_id = await relay.enqueue(envelope, data)
        except Exception as exc:  # the worker answers its client 451
            log.exception("queueing a worker's message failed")
            sender.send(("enqueued", call, None, str(exc) or type(exc).__name__))
        else:
            sender.send(("enqueued", call, queue_id, None))

    def signal(self, signum: int) -> None:
        """Send ``signum`` to every worker."""
        for worker in self.workers:
            if worker.process is not None and worker.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.process.send_signal(signum)

    def drain(self) -> None:
        """Tell the workers to stop accepting and finish (SIGTERM); no restarts from now."""
        if not self._stopping:
            self._stopping = True
            self.signal(signal.SIGTERM)

    async def stop(self, timeout: float) -> None:
        """Drain, wait up to ``timeout`` seconds for the workers, then kill what is left."""
        self.drain()
        processes = [w.process for w in self.workers if w.process is not None]
        waiting = [asyncio.ensure_future(p.wait()) for p in processes]
        if waiting:
            _done, late = await asyncio.wait(waiting, timeout=timeout)
            if late:
                self.signal(signal.SIGKILL)
                await asyncio.wait(late, timeout=5)
        tasks = [w.task for w in self.workers if w.task is not None]
        for job in (*tasks, *self._jobs):
            job.cancel()
        for job in (*tasks, *self._jobs):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await job


if __name__ == "__main__":
    # Run the function of the imported module, not of this __main__ copy: the
    # bootstrap pickle names classes of ``mailcore.workers``.
    from mailcore.workers import worker_main as _main

    sys.exit(_main())
