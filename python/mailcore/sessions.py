"""What the POP3, POP2 and IMAP servers share about their connections.

Each server keeps the tasks of its open sessions (so that ``close()`` can
end them) and may be given a :data:`ConnectionHook`, which hears of every
connect and disconnect with the peer's address: ``mailcore serve`` logs and
counts connections through it. :func:`tracked` does both around one
session; :func:`close_all` ends them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import Awaitable, Callable
from contextvars import ContextVar

__all__ = [
    "ConnectionHook",
    "close_all",
    "connection_hook",
    "current_peer",
    "parse_ip",
    "peer_name",
    "tracked",
]

#: ``address:port`` of the client whose session task is running ("" outside
#: one): what a credential source logs a failed login against. Set by
#: :func:`tracked` and by the SMTP server's session task.
current_peer: ContextVar[str] = ContextVar("mailcore_current_peer", default="")

#: Called as ``hook(event, peer)``: ``event`` is ``"connect"`` or
#: ``"disconnect"``, ``peer`` is ``"address:port"``. It runs on the event
#: loop and must not block.
ConnectionHook = Callable[[str, str], None]


def connection_hook(session_event: Callable[..., None], protocol: str) -> ConnectionHook:
    """A hook that reports connects and disconnects as ``session_event(protocol, event, peer)``."""

    def hook(event: str, peer: str) -> None:
        session_event(protocol, event, peer)

    return hook


def parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address in ``text`` (a zone dropped, an IPv4-mapped IPv6 one as IPv4), or None."""
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def peer_name(writer: asyncio.StreamWriter) -> str:
    """``address:port`` of the client behind ``writer``."""
    peer = writer.get_extra_info("peername") or ("", 0)
    return f"{peer[0]}:{peer[1]}"


async def tracked(
    sessions: set[asyncio.Task[None]],
    hook: ConnectionHook | None,
    writer: asyncio.StreamWriter,
    run: Callable[[], Awaitable[None]],
) -> None:
    """Run one session, counted in ``sessions`` and reported to ``hook``."""
    task = asyncio.current_task()
    if task is not None:
        sessions.add(task)
    peer = peer_name(writer)
    current_peer.set(peer)  # this task's own context: seen by everything it awaits
    if hook is not None:
        hook("connect", peer)
    try:
        await run()
    finally:
        if hook is not None:
            hook("disconnect", peer)
        if task is not None:
            sessions.discard(task)


async def close_all(servers: list[asyncio.Server], sessions: set[asyncio.Task[None]]) -> None:
    """Stop listening, cancel every session and wait until they have ended."""
    for server in servers:
        server.close()
    for task in list(sessions):
        task.cancel()
    for task in list(sessions):
        with contextlib.suppress(asyncio.CancelledError):
            await task
    for server in servers:
        await server.wait_closed()
    servers.clear()
