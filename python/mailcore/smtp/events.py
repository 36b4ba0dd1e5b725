"""What the SMTP server machine reports to its adapter.

:meth:`mailcore.smtp.protocol.ServerConnection.next_event` returns one of
these frozen dataclasses, or a :class:`Signal` member when it has nothing to
report. Events marked "needs a reply" leave the machine paused until the
adapter answers with :meth:`~mailcore.smtp.protocol.ServerConnection.send`
(or the ``auth_*`` method named in the event); the others are information
(the machine has already answered the client, if an answer was due).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from mailcore.smtp.replies import Reply

__all__ = [
    "NEED_DATA",
    "PAUSED",
    "AuthPassword",
    "AuthScramSecrets",
    "Authenticated",
    "BodyChunk",
    "BodyStart",
    "Close",
    "ConnectionClosed",
    "Ehlo",
    "Event",
    "MailFrom",
    "MessageAborted",
    "MessageEnd",
    "RcptTo",
    "Reset",
    "Signal",
    "StartTLS",
]


class Signal(enum.Enum):
    """Results of ``next_event()`` that are not events."""

    __hash__ = object.__hash__  # identity: members are singletons (C, not hash(name))

    NEED_DATA = enum.auto()
    """Every received byte is used up: call ``receive_data()``."""
    PAUSED = enum.auto()
    """The machine waits for the adapter (a reply, a TLS handshake, credentials)."""


NEED_DATA = Signal.NEED_DATA
PAUSED = Signal.PAUSED


@dataclass(frozen=True, slots=True)
class Ehlo:
    """EHLO, HELO or LHLO (needs a reply).

    A positive reply to EHLO/LHLO is sent with the extension list appended.
    """

    hostname: str
    extended: bool
    """EHLO or LHLO rather than HELO."""


@dataclass(frozen=True, slots=True)
class MailFrom:
    """MAIL FROM with valid syntax and parameters (needs a reply)."""

    address: str
    """The reverse-path mailbox; ``""`` for the null reverse-path."""
    params: Mapping[str, str | None]
    """ESMTP parameters, keywords upper-cased."""


@dataclass(frozen=True, slots=True)
class RcptTo:
    """RCPT TO with valid syntax and parameters (needs a reply)."""

    address: str
    params: Mapping[str, str | None]


@dataclass(frozen=True, slots=True)
class BodyStart:
    """DATA was answered with 354, or a first BDAT chunk began."""

    bdat: bool


@dataclass(frozen=True, slots=True)
class BodyChunk:
    """A piece of the message body: unstuffed, CRLF line ends kept."""

    data: bytes


@dataclass(frozen=True, slots=True)
class MessageEnd:
    """The body is complete and acceptable (needs a reply; LMTP: one per recipient)."""

    size: int
    replies_due: int
    """How many replies the adapter must send: 1 for SMTP, the number of accepted
    recipients for LMTP (RFC 2033 section 4.2)."""


@dataclass(frozen=True, slots=True)
class MessageAborted:
    """The body was refused by the machine; it already sent ``reply``."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class Reset:
    """The transaction was cleared (RSET, or EHLO/HELO inside a transaction)."""


@dataclass(frozen=True, slots=True)
class StartTLS:
    """220 was sent to STARTTLS; start the handshake, then call ``tls_started()``."""


@dataclass(frozen=True, slots=True)
class AuthPassword:
    """A SASL mechanism needs a password check: call ``auth_password_result()``."""

    authcid: str
    password: str
    authzid: str


@dataclass(frozen=True, slots=True)
class AuthScramSecrets:
    """SCRAM needs the stored secrets of ``authcid``: call ``auth_scram_secrets()``."""

    authcid: str


@dataclass(frozen=True, slots=True)
class Authenticated:
    """AUTH succeeded; 235 was sent."""

    account: str
    authzid: str


@dataclass(frozen=True, slots=True)
class Close:
    """The machine sent ``reply`` (221 to QUIT, 421, ...): flush, then close."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The peer closed its side (``receive_data(b"")``)."""


Event = (
    Ehlo
    | MailFrom
    | RcptTo
    | BodyStart
    | BodyChunk
    | MessageEnd
    | MessageAborted
    | Reset
    | StartTLS
    | AuthPassword
    | AuthScramSecrets
    | Authenticated
    | Close
    | ConnectionClosed
)
"""Every event the server machine can return."""
