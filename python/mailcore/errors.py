"""Every exception mailcore raises, defined in one place.

The Rust core raises the :class:`CoreError` family through a single conversion
point (``rust/py/errors.rs``), always as ``Class(message, offset, expected)``,
so every decoding, framing or parsing error carries the byte offset at which
the input went wrong.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "CoreError",
    "DecodeError",
    "LimitExceeded",
    "LocalProtocolError",
    "MailcoreError",
    "ParseError",
    "ProtocolError",
    "RemoteProtocolError",
    "StoreError",
]


class MailcoreError(Exception):
    """Base class of every mailcore exception."""


class CoreError(MailcoreError, ValueError):
    """Input rejected by the Rust core.

    Attributes:
        offset: byte offset into the input where the problem was found.
        expected: what the parser or decoder expected at that offset.
    """

    def __init__(self, message: str, offset: int = 0, expected: str = "") -> None:
        super().__init__(message)
        self.offset = offset
        self.expected = expected


class DecodeError(CoreError):
    """Bytes that are not valid in an encoding (strict base64, quoted-printable, ...)."""


class ParseError(CoreError):
    """Bytes that do not follow a protocol grammar (an SMTP path, an IMAP command, ...)."""


class LimitExceeded(CoreError):
    """Input larger than a bound from :mod:`mailcore.limits`."""


class ProtocolError(MailcoreError):
    """A protocol state machine was driven outside its rules.

    Attributes:
        reply: the reply a server should send, when there is one (wire bytes).
    """

    def __init__(self, message: str, reply: bytes | None = None) -> None:
        super().__init__(message)
        self.reply = reply


class LocalProtocolError(ProtocolError):
    """Our own side tried something the protocol forbids (a bug in the caller)."""


class RemoteProtocolError(ProtocolError):
    """The peer broke the protocol."""


class StoreError(MailcoreError):
    """The mail store could not do what was asked."""


class AuthError(MailcoreError):
    """Authentication failed or could not be carried out."""
