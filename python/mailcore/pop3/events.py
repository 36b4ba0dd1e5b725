"""What a POP3 server machine reports to its adapter (RFC 1939, 2449, 2595, 5034).

Each event is a frozen dataclass. The machine answers everything it can on
its own (syntax errors, CAPA, USER, STAT, LIST, UIDL, DELE, RSET, NOOP); the
events below are the moments where the adapter must decide or fetch something
(check a password, lock the maildrop, stream a message, apply deletions) and
then call the matching method of :class:`mailcore.pop3.protocol.ServerConnection`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "ApopLogin",
    "AuthCancelled",
    "AuthResponse",
    "AuthStart",
    "Closed",
    "Event",
    "NeedData",
    "PasswordLogin",
    "Paused",
    "Quit",
    "Retrieve",
    "StartTLS",
]


class NeedData(enum.Enum):
    """Returned by ``next_event()`` when more bytes are needed."""

    NEED_DATA = "NEED_DATA"


class Paused(enum.Enum):
    """Returned by ``next_event()`` while the machine waits for the adapter.

    The adapter owes an answer to the last event (a login decision, a message
    stream, a TLS handshake); pipelined commands stay buffered until then.
    """

    PAUSED = "PAUSED"


@dataclass(frozen=True, slots=True)
class PasswordLogin:
    """USER then PASS (RFC 1939 section 7): check ``password`` for ``username``.

    Answer with ``accept_login()`` or ``reject_login()``.
    """

    username: str
    password: str


@dataclass(frozen=True, slots=True)
class ApopLogin:
    """APOP (RFC 1939 section 7): ``digest`` is MD5(timestamp + secret) in lowercase hex.

    Check it with :func:`mailcore.pop3.protocol.apop_matches` against the
    account's shared secret and the greeting's ``timestamp``.
    """

    username: str
    digest: str
    timestamp: str


@dataclass(frozen=True, slots=True)
class AuthStart:
    """AUTH (RFC 5034): the client chose ``mechanism`` (upper case).

    ``initial`` is the decoded initial response, ``b""`` for "=", ``None``
    when absent. Answer with ``send_challenge()``, ``accept_login()`` or
    ``reject_login()``.
    """

    mechanism: str
    initial: bytes | None


@dataclass(frozen=True, slots=True)
class AuthResponse:
    """The client's decoded answer to the last challenge."""

    data: bytes


@dataclass(frozen=True, slots=True)
class AuthCancelled:
    """The client answered a challenge with "*" (RFC 5034 section 4).

    The machine has already replied ``-ERR`` and is back in AUTHORIZATION.
    """


@dataclass(frozen=True, slots=True)
class StartTLS:
    """STLS was accepted (RFC 2595 section 4); the "+OK" is in the outbox.

    Send it, run the TLS handshake, then call ``tls_started()``. Plaintext
    bytes the client sent after STLS are dropped by the machine.
    """


@dataclass(frozen=True, slots=True)
class Retrieve:
    """RETR (``lines is None``) or TOP ``number`` ``lines``: stream message ``number``.

    ``number`` is the 1-based message number of this session, ``size`` the
    octet count given at login. Call ``begin_message()``, then
    ``message_data()`` per chunk and ``end_message()``; or
    ``message_failed()`` if the message cannot be read.
    """

    number: int
    size: int
    lines: int | None


@dataclass(frozen=True, slots=True)
class Quit:
    """QUIT in the TRANSACTION state: enter UPDATE (RFC 1939 section 6).

    ``deleted`` are the 1-based numbers marked by DELE. Remove them, then call
    ``update_done()``; the session ends after its reply.
    """

    deleted: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Closed:
    """The session is over: ``"quit"`` (QUIT before login), ``"eof"`` (the
    client went away: nothing is deleted), or ``"errors"`` (too many bad
    commands or failed logins; the final ``-ERR`` is in the outbox)."""

    reason: str


Event = (
    PasswordLogin
    | ApopLogin
    | AuthStart
    | AuthResponse
    | AuthCancelled
    | StartTLS
    | Retrieve
    | Quit
    | Closed
)
"""Every event :meth:`ServerConnection.next_event` can return."""
