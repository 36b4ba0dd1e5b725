"""What the sans-IO IMAP server machine asks its adapter to do.

:meth:`mailcore.imap.protocol.ServerConnection.next_event` returns one of
these (or :data:`NeedData.NEED_DATA`, :data:`Paused.PAUSED`). Commands the
machine can answer alone (CAPABILITY, LOGOUT, ID, ENABLE, NAMESPACE, syntax
errors, commands in the wrong state) never become events.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from mailcore.imap.command import Command

__all__ = [
    "AuthCancelled",
    "AuthResponse",
    "AuthStart",
    "Closed",
    "Event",
    "IdleDone",
    "IdleStart",
    "LoginRequest",
    "NeedData",
    "Paused",
    "Request",
    "StartTLS",
]


class NeedData(enum.Enum):
    """Feed more bytes with ``receive_data`` before asking again."""

    NEED_DATA = "NEED_DATA"


class Paused(enum.Enum):
    """The adapter still owes an answer to the last event."""

    PAUSED = "PAUSED"


@dataclass(frozen=True, slots=True)
class LoginRequest:
    """``LOGIN``: check the password, then ``login_succeeded``/``login_failed``."""

    tag: str
    username: str
    password: str


@dataclass(frozen=True, slots=True)
class AuthStart:
    """``AUTHENTICATE``: run ``mechanism`` with the (decoded) SASL-IR, None if absent."""

    tag: str
    mechanism: str
    initial: bytes | None


@dataclass(frozen=True, slots=True)
class AuthResponse:
    """A decoded client line answering the last ``challenge``."""

    tag: str
    data: bytes


@dataclass(frozen=True, slots=True)
class AuthCancelled:
    """The client cancelled the exchange with ``*`` (already answered BAD)."""

    tag: str


@dataclass(frozen=True, slots=True)
class StartTLS:
    """``STARTTLS`` was answered OK: handshake now, then call ``tls_started``."""

    tag: str


@dataclass(frozen=True, slots=True)
class IdleStart:
    """``IDLE`` was answered ``+ idling``: push updates until :class:`IdleDone`."""

    tag: str


@dataclass(frozen=True, slots=True)
class IdleDone:
    """The client ended IDLE (the tagged reply is already written)."""

    tag: str


@dataclass(frozen=True, slots=True)
class Request:
    """A command the adapter executes against the store; end it with ``complete``."""

    command: Command


@dataclass(frozen=True, slots=True)
class Closed:
    """The client closed the connection, or the session ended (LOGOUT, errors)."""


Event = (
    LoginRequest
    | AuthStart
    | AuthResponse
    | AuthCancelled
    | StartTLS
    | IdleStart
    | IdleDone
    | Request
    | Closed
)
"""Every event ``next_event`` can return besides NeedData and Paused."""
