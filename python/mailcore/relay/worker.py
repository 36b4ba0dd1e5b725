"""Delivery workers: take due recipients from the queue and deliver them.

One pass (:meth:`DeliveryWorkers.run_once`) reads the due recipients, groups
each message's recipients by destination (:class:`~mailcore.relay.routing.Router`)
and hands one job per (message, destination) to that destination's pool: a
message for several recipients at one destination is sent once, with one
RCPT per recipient. A pool keeps up to ``per_destination`` SMTP sessions
open, each carrying many messages in turn (PIPELINING and CHUNKING come from
:class:`~mailcore.smtp.client.SMTPClient` when the next hop offers them);
a global semaphore bounds all sessions together. STARTTLS is used when
offered, and required when the route says so.

Every outcome is committed to the queue as soon as the next hop answered
(outcomes of concurrent sessions share one commit); failures are turned
into RFC 3464 DSNs queued in the same transaction that marks the recipients
bounced. The Received: header was added by the SMTP server that accepted
the message; the bytes are sent as queued.

All database access runs on one dedicated thread (writes are serialized
anyway); message bytes are read straight from the spool (page-cached, just
written) without waiting for that thread.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Generic, TypeVar

from mailcore.delivery import LocalDelivery
from mailcore.errors import MailcoreError
from mailcore.limits import SMTPClientLimits
from mailcore.relay.dsn import build_dsn
from mailcore.relay.policy import split_address
from mailcore.relay.queue import (
    NewMessage,
    Outcome,
    Queue,
    QueuedMessage,
    QueuedRecipient,
    Recorded,
    State,
)
from mailcore.relay.routing import Destination, RouteError, Router
from mailcore.smtp.client import SMTPClient, SMTPClientError
from mailcore.smtp.client_protocol import Response

__all__ = ["DeliveryWorkers", "WorkerLimits"]

_log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")
RecordItem = tuple[str, Sequence[tuple[int, "Outcome", str]], str | None, Sequence["NewMessage"]]
"""(message id, (recipient idx, outcome, reply) list, remote host, DSNs to queue with it)."""


@dataclass(frozen=True, slots=True)
class WorkerLimits:
    """Concurrency and timing of the delivery workers.

    Defaults follow Postfix (``default_process_limit`` 100,
    ``default_destination_concurrency_limit`` 20).
    """

    connections: int = 100
    """SMTP sessions open at once, all destinations together."""
    per_destination: int = 20
    """SMTP sessions open at once to one destination."""
    linger: float = 2.0
    """Seconds an idle session waits for another message before QUIT."""
    batch: int = 1000
    """Messages taken from the queue per pass."""
    route_cache: float = 60.0
    """Seconds a domain's resolved destination is reused."""
    poll: float = 5.0
    """Longest sleep between passes (new mail wakes the loop at once)."""


class _Batcher(Generic[T, R]):
    """Run ``fn`` on batches of submitted items on one thread (group commit)."""

    def __init__(self, fn: Callable[[list[T]], list[R]], executor: ThreadPoolExecutor) -> None:
        self._fn = fn
        self._executor = executor
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._running = False
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, fut))
        if not self._running:
            self._running = True
            self._task = loop.create_task(self._drain())
        return await fut

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    results = await loop.run_in_executor(
                        self._executor, self._fn, [item for item, _ in batch]
                    )
                except Exception as exc:  # noqa: BLE001 - every waiter gets the error
                    for _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                for (_, fut), result in zip(batch, results, strict=True):
                    if not fut.done():
                        fut.set_result(result)
        finally:
            self._running = False


@dataclass(slots=True)
class _Job:
    message: QueuedMessage
    recipients: list[QueuedRecipient]
    done: asyncio.Future[bool]
    """Set when the outcome is committed: True if some recipient failed."""


@dataclass(slots=True)
class _Pool:
    destination: Destination
    jobs: collections.deque[_Job] = field(default_factory=collections.deque)
    active: int = 0
    idle: int = 0
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)


def _reply_text(response: Response) -> str:
    return str(response)


def _insecure_context() -> ssl.SSLContext:
    # Opportunistic STARTTLS between MTAs (RFC 3207 section 4.1, RFC 7435):
    # encryption without authentication beats plaintext; a route that
    # requires TLS gets the verifying context instead.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class DeliveryWorkers:
    """Deliver what is due in ``queue``.

    Args:
        queue: the open queue (used only from this object's DB thread).
        router: domain to destination.
        hostname: our name in EHLO and DSNs.
        local: delivery into local mailboxes (local domains, bounces to local senders).
        limits: concurrency and timing.
        client_limits: timeouts of the SMTP client.
        ssl_context: verifying context for routes that require TLS.
        clock: the time (seconds since the epoch); tests pass a fake one.
    """

    def __init__(
        self,
        queue: Queue,
        router: Router,
        *,
        hostname: str,
        local: LocalDelivery | None = None,
        limits: WorkerLimits | None = None,
        client_limits: SMTPClientLimits | None = None,
        ssl_context: ssl.SSLContext | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.queue = queue
        self.router = router
        self.hostname = hostname
        self.local = local
        self.limits = limits or WorkerLimits()
        self.client_limits = client_limits or SMTPClientLimits()
        self.ssl_context = ssl_context
        self.clock = clock
        self.db = ThreadPoolExecutor(1, thread_name_prefix="mailcore-queue")
        self.committer: _Batcher[NewMessage | RecordItem, str | Recorded] = _Batcher(
            self._commit_batch, self.db
        )
        """Group commit of new mail (from the relay) and delivery outcomes."""
        self._pools: dict[tuple[object, ...], _Pool] = {}
        self._sessions: asyncio.Semaphore | None = None
        self._inflight: set[str] = set()
        self._routes: dict[str, tuple[float, Destination | RouteError]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wake: asyncio.Event | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._insecure = _insecure_context()
        self.delivered = 0
        """Recipients delivered since start (for benchmarks and logs)."""

    # ----------------------------------------------------------- plumbing

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` on the queue's thread."""
        return await asyncio.get_running_loop().run_in_executor(self.db, fn, *args)

    def _commit_batch(self, items: list[NewMessage | RecordItem]) -> list[str | Recorded]:
        messages = [i for i in items if isinstance(i, NewMessage)]
        records = [i for i in items if not isinstance(i, NewMessage)]
        ids, recorded = self.queue.commit(
            messages,
            [(msg_id, outcomes, remote) for msg_id, outcomes, remote, _ in records],
            self.clock(),
            notices=[n for *_, notices in records for n in notices],
        )
        new, done = iter(ids), iter(recorded)
        return [next(new) if isinstance(i, NewMessage) else next(done) for i in items]

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def _semaphore(self) -> asyncio.Semaphore:
        if self._sessions is None:
            self._sessions = asyncio.Semaphore(self.limits.connections)
        return self._sessions

    # ---------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Start the background loop (bounces left over from a crash first)."""
        self._wake = asyncio.Event()
        await self._bounce_leftovers()
        self._loop_task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        """Stop the loop and close every session (in-flight messages stay queued)."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._pools.clear()
        self._inflight.clear()
        self.db.shutdown(wait=True)

    def wake(self) -> None:
        """New mail: run a pass now."""
        if self._wake is not None:
            self._wake.set()

    def submit(self, message: QueuedMessage) -> None:
        """Deliver a just-queued message without waiting for the next pass."""
        if self._loop_task is None or message.id in self._inflight:
            return
        self._inflight.add(message.id)
        self._spawn(self._deliver_message(message))

    async def _loop(self) -> None:
        assert self._wake is not None
        while True:
            self._wake.clear()
            try:
                started = await self._pass(wait=False)
                nxt = await self.call(self.queue.next_due)
            except Exception:  # noqa: BLE001 - a bad pass must not stop delivery
                _log.exception("relay queue pass failed")
                started, nxt = 0, None
            delay = self.limits.poll
            if nxt is not None:
                delay = max(0.0, min(delay, nxt - self.clock()))
                if started == 0 and delay == 0.0:
                    # What is due is in flight already: no busy loop.
                    delay = min(self.limits.poll, 0.5)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay + 0.01)

    async def run_once(self) -> int:
        """One pass at ``clock()``: deliver what is due and wait for every outcome.

        Returns the number of messages attempted. Tests drive retries with it
        (advancing the fake clock) instead of sleeping.
        """
        await self._bounce_leftovers()
        return await self._pass(wait=True)

    async def _pass(self, *, wait: bool) -> int:
        # Copied here: the set changes on this thread while the query runs on the other.
        skip = frozenset(self._inflight)
        due = await self.call(
            lambda: self.queue.due(self.clock(), limit=self.limits.batch, exclude=skip)
        )
        started = []
        for message in due:
            if message.id in self._inflight:
                continue
            self._inflight.add(message.id)
            started.append(self._deliver_message(message))
        if wait:
            await asyncio.gather(*started)
        else:
            for coro in started:
                self._spawn(coro)
        return len(started)

    # ------------------------------------------------------------ routing

    async def _destination(self, domain: str) -> Destination | RouteError:
        now = time.monotonic()
        cached = self._routes.get(domain)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            result: Destination | RouteError = await self.router.resolve(domain)
        except RouteError as exc:
            result = exc
        ttl = self.limits.route_cache if isinstance(result, Destination) else 0.0
        self._routes[domain] = (now + ttl, result)
        return result

    async def _deliver_message(self, message: QueuedMessage) -> None:
        try:
            groups: dict[tuple[object, ...], tuple[Destination, list[QueuedRecipient]]] = {}
            failures: list[tuple[int, Outcome, str]] = []
            for rcpt in message.recipients:
                dest = await self._destination(split_address(rcpt.address)[1])
                if isinstance(dest, RouteError):
                    kind = Outcome.FAILED if dest.permanent else Outcome.DEFERRED
                    failures.append((rcpt.idx, kind, dest.reply))
                    continue
                groups.setdefault(dest.key, (dest, []))[1].append(rcpt)
            waits: list[Awaitable[bool]] = []
            if failures:
                waits.append(self._commit(message, failures, None))
            loop = asyncio.get_running_loop()
            for dest, rcpts in groups.values():
                job = _Job(message, rcpts, loop.create_future())
                self._enqueue_job(dest, job)
                waits.append(job.done)
            failed = await asyncio.gather(*waits)
            if any(failed):
                await self._after(message.id)
        except Exception:  # noqa: BLE001 - the message stays queued for the next pass
            _log.exception("delivering %s failed", message.id)
        finally:
            self._inflight.discard(message.id)

    def _enqueue_job(self, dest: Destination, job: _Job) -> None:
        pool = self._pools.get(dest.key)
        if pool is None:
            pool = self._pools[dest.key] = _Pool(dest)
        pool.jobs.append(job)
        pool.wakeup.set()
        limit = 1 if dest.local else self.limits.per_destination
        if pool.active < limit and len(pool.jobs) > pool.idle:
            pool.active += 1
            self._spawn(self._session(pool))

    async def _commit(
        self,
        message: QueuedMessage,
        outcomes: Sequence[tuple[int, Outcome, str]],
        remote: str | None,
        notices: Sequence[NewMessage] = (),
    ) -> bool:
        """Commit outcomes; True if some recipient now failed (a DSN is due)."""
        result = await self.committer.submit((message.id, outcomes, remote, notices))
        assert isinstance(result, Recorded)
        if notices:
            self.wake()
        self.delivered += sum(1 for _, o, _ in outcomes if o is Outcome.DELIVERED)
        if result.delayed:
            await self._notify(message.id, result.delayed, delayed=True)
        return bool(result.failed)

    async def _after(self, msg_id: str) -> None:
        failed = await self.call(self.queue.message, msg_id, [State.FAILED])
        if failed is not None and failed.recipients:
            await self._notify(msg_id, [r.idx for r in failed.recipients], delayed=False)
        await self.call(self.queue.finish, msg_id)

    async def _notify(self, msg_id: str, idxs: Sequence[int], *, delayed: bool) -> None:
        message = await self.call(self.queue.message, msg_id)
        if message is None:
            return
        rcpts = [r for r in message.recipients if r.idx in idxs]
        original = await self.call(self.queue.read, msg_id)
        dsn: NewMessage | None = build_dsn(
            message,
            rcpts,
            original,
            reporting_mta=self.hostname,
            now=datetime.fromtimestamp(self.clock(), timezone.utc),
            delayed=delayed,
        )
        dsn_id = await self.call(
            lambda: self.queue.bounce(msg_id, idxs, dsn, self.clock(), warning=delayed)
        )
        if dsn_id is not None:
            self.wake()

    async def _bounce_leftovers(self) -> None:
        for message in await self.call(self.queue.unbounced):
            await self._notify(message.id, [r.idx for r in message.recipients], delayed=False)
            await self.call(self.queue.finish, message.id)

    # ----------------------------------------------------------- sessions

    async def _session(self, pool: _Pool) -> None:
        """One connection to ``pool``'s destination carrying jobs until idle."""
        try:
            async with self._semaphore:
                if pool.destination.local:
                    await self._local_session(pool)
                else:
                    await self._smtp_session(pool)
        finally:
            pool.active -= 1
            if pool.jobs and pool.active == 0:
                # Jobs that arrived while the last session was ending.
                pool.active += 1
                self._spawn(self._session(pool))
            elif not pool.jobs and pool.active == 0:
                self._pools.pop(pool.destination.key, None)

    async def _next_job(self, pool: _Pool) -> _Job | None:
        if not pool.jobs:
            pool.wakeup.clear()
            pool.idle += 1
            try:
                await asyncio.wait_for(pool.wakeup.wait(), self.limits.linger)
            except asyncio.TimeoutError:
                return None
            finally:
                pool.idle -= 1
        return pool.jobs.popleft() if pool.jobs else None

    async def _finish_job(
        self,
        job: _Job,
        outcomes: Sequence[tuple[int, Outcome, str]],
        remote: str | None,
        *,
        success: str | None = None,
    ) -> None:
        """Commit a job's outcomes (with a success DSN when ``success`` and asked for)."""
        failed = False
        try:
            notices: list[NewMessage] = []
            if success is not None:
                notice = self._success_notice(job, outcomes, remote, success)
                if notice is not None:
                    notices.append(notice)
            failed = await self._commit(job.message, outcomes, remote, notices)
        finally:
            if not job.done.done():
                job.done.set_result(failed)

    def _success_notice(
        self,
        job: _Job,
        outcomes: Sequence[tuple[int, Outcome, str]],
        remote: str | None,
        action: str,
    ) -> NewMessage | None:
        # RFC 3461 section 6.2: NOTIFY=SUCCESS is answered by the MTA that
        # delivers ("delivered") or that hands on to one without DSN ("relayed").
        delivered = {i: text for i, kind, text in outcomes if kind is Outcome.DELIVERED}
        asked = [
            dataclasses.replace(r, last_reply=delivered[r.idx], remote=remote)
            for r in job.recipients
            if r.idx in delivered and r.notify is not None and "SUCCESS" in r.notify
        ]
        if not asked or not job.message.sender:
            return None
        return build_dsn(
            job.message,
            asked,
            self.queue.read(job.message.id),
            reporting_mta=self.hostname,
            now=datetime.fromtimestamp(self.clock(), timezone.utc),
            success=action,
        )

    async def _connect(self, dest: Destination) -> tuple[SMTPClient | None, str, str]:
        """Connect to the first host that answers; (client, host name, last error)."""
        error = "451 4.4.1 no host to connect to"
        for name, address in dest.hosts:
            client = SMTPClient(
                address,
                dest.port,
                local_hostname=self.hostname,
                limits=self.client_limits,
                server_hostname=name,
            )
            try:
                await client.connect()
                if client.conn.has_extension("STARTTLS") and dest.tls != "none":
                    ctx = self._insecure if dest.tls == "opportunistic" else self.ssl_context
                    await client.starttls(ctx)
                elif dest.tls == "required":
                    await client.quit()
                    error = f"451 4.7.10 {name} does not offer STARTTLS, which the route requires"
                    continue
                if dest.username is not None and dest.password is not None:
                    await client.login(dest.username, dest.password)
                return client, name, error
            except (MailcoreError, OSError, ssl.SSLError) as exc:
                await client.close()
                error = f"451 4.4.1 {name}[{address}]:{dest.port}: {exc}"
        return None, "", error

    async def _smtp_session(self, pool: _Pool) -> None:
        dest = pool.destination
        job = await self._next_job(pool)
        if job is None:
            return
        client, name, error = await self._connect(dest)
        if client is None:
            # The destination is down: defer everything waiting for it.
            waiting = [job, *pool.jobs]
            pool.jobs.clear()
            for j in waiting:
                await self._finish_job(
                    j, [(r.idx, Outcome.DEFERRED, error) for r in j.recipients], None
                )
            return
        try:
            while job is not None:
                ok = await self._send(client, name, job)
                if not ok:
                    return
                job = await self._next_job(pool)
        finally:
            if job is not None and not job.done.done():
                job.done.set_result(False)
            await client.quit()

    async def _send(self, client: SMTPClient, name: str, job: _Job) -> bool:
        """Send one job over ``client``; False when the session is no longer usable."""
        message = job.message
        addresses = list(dict.fromkeys(r.address for r in job.recipients))
        dsn = client.conn.has_extension("DSN")
        mail_options: dict[str, str | None] = {}
        rcpt_options: dict[str, dict[str, str | None]] = {}
        if dsn:
            # RFC 3461 section 5.2: a DSN-capable next hop gets the parameters on.
            for key in ("RET", "ENVID"):
                if message.params.get(key):
                    mail_options[key] = message.params[key]
            for rcpt in job.recipients:
                rcpt_options[rcpt.address] = {
                    k: v for k, v in rcpt.params.items() if k in ("NOTIFY", "ORCPT")
                }
        try:
            data = self.queue.read(message.id)
            result = await client.send_message(
                data,
                message.sender,
                addresses,
                mail_options=mail_options,
                rcpt_options=rcpt_options,
            )
        except SMTPClientError as exc:
            # Too big for this server, or needs SMTPUTF8 it lacks: permanent.
            outcomes = [(r.idx, Outcome.FAILED, f"554 5.3.4 {exc}") for r in job.recipients]
            await self._finish_job(job, outcomes, name)
            return True
        except (MailcoreError, OSError) as exc:
            outcomes = [
                (r.idx, Outcome.DEFERRED, f"451 4.4.2 {name}: {exc}") for r in job.recipients
            ]
            await self._finish_job(job, outcomes, name)
            return False
        outcomes = []
        for rcpt in job.recipients:
            response = result.recipients[rcpt.address]
            if response.is_success:
                kind = Outcome.DELIVERED
            elif response.is_permanent:
                kind = Outcome.FAILED
            else:
                kind = Outcome.DEFERRED
            outcomes.append((rcpt.idx, kind, _reply_text(response)))
        await self._finish_job(job, outcomes, name, success=None if dsn else "relayed")
        return True

    async def _local_session(self, pool: _Pool) -> None:
        while (job := await self._next_job(pool)) is not None:
            outcomes: list[tuple[int, Outcome, str]] = []
            try:
                if self.local is None:
                    outcomes = [
                        (r.idx, Outcome.DEFERRED, "451 4.3.5 no local delivery configured")
                        for r in job.recipients
                    ]
                else:
                    accounts: list[str] = []
                    for rcpt in job.recipients:
                        account = await self.local.resolve(rcpt.address)
                        if account is None:
                            outcomes.append((rcpt.idx, Outcome.FAILED, "550 5.1.1 no such user"))
                        else:
                            accounts.append(account)
                    delivered = [
                        r.idx for r in job.recipients if r.idx not in {i for i, _, _ in outcomes}
                    ]
                    if accounts:
                        data = self.queue.read(job.message.id)
                        try:
                            await self.local.deliver(accounts, data)
                            kind, text = Outcome.DELIVERED, "250 2.0.0 delivered to mailbox"
                        except Exception as exc:  # noqa: BLE001 - the store failing means retry
                            kind, text = Outcome.DEFERRED, f"451 4.3.0 local delivery: {exc}"
                        outcomes += [(i, kind, text) for i in delivered]
            finally:
                await self._finish_job(
                    job, outcomes, self.hostname if outcomes else None, success="delivered"
                )
