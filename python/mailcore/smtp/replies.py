"""The named catalog of SMTP replies.

Handlers return :class:`Reply` objects, never strings. Each reply carries its
RFC 3463 enhanced status code; it is written only when the server offers
ENHANCEDSTATUSCODES (RFC 2034), and never on the greeting, the EHLO reply or
354 (RFC 2034 section 3 puts it on 2xx, 4xx and 5xx replies after EHLO).

The codes follow RFC 5321 section 4.2 and the RFC 3463 / IANA registry;
where several fit, the one Postfix sends is used (noted in the comment).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

__all__ = [
    "AUTH_ALREADY",
    "AUTH_BAD_BASE64",
    "AUTH_CANCELLED",
    "AUTH_ENCRYPTION_REQUIRED",
    "AUTH_FAILED",
    "AUTH_LINE_TOO_LONG",
    "AUTH_NOT_SUPPORTED",
    "AUTH_REQUIRED",
    "AUTH_SUCCESS",
    "AUTH_TEMPORARY_FAILURE",
    "AUTH_UNKNOWN_MECHANISM",
    "BAD_RECIPIENT_SYNTAX",
    "BAD_SENDER_SYNTAX",
    "BAD_SEQUENCE",
    "BAD_UTF8",
    "BARE_LINE_END_BODY",
    "BARE_LINE_END_COMMAND",
    "BDAT_NOT_WITH_DATA",
    "BDAT_SYNTAX",
    "CANNOT_VRFY",
    "COMMAND_NOT_IMPLEMENTED",
    "DATA_NOT_WITH_BDAT",
    "HTTP_COMMAND",
    "INTERNAL_ERROR",
    "LINE_TOO_LONG",
    "LOCAL_ERROR",
    "MESSAGE_ACCEPTED",
    "MESSAGE_TOO_BIG",
    "NEED_EHLO",
    "NEED_MAIL",
    "NEED_RCPT",
    "NESTED_MAIL",
    "NO_SUCH_USER",
    "NO_VALID_RECIPIENTS",
    "OK",
    "PARAM_NOT_RECOGNIZED",
    "PARAM_SYNTAX",
    "RECIPIENT_OK",
    "RELAY_DENIED",
    "SENDER_OK",
    "SHUTTING_DOWN",
    "SIZE_EXCEEDED",
    "START_MAIL_INPUT",
    "START_TLS",
    "SYNTAX_ERROR",
    "TEXT_LINE_TOO_LONG",
    "TIMEOUT",
    "TLS_ALREADY_ACTIVE",
    "TLS_NOT_AVAILABLE",
    "TOO_MANY_CONNECTIONS",
    "TOO_MANY_ERRORS",
    "TOO_MANY_RECIPIENTS",
    "UTF8_NOT_ALLOWED",
    "Reply",
    "bdat_received",
    "closing",
    "greeting",
    "hello",
    "help_reply",
]


@dataclass(frozen=True, slots=True)
class Reply:
    """One SMTP reply: a three-digit code, an enhanced status code and text.

    ``text`` may hold several lines separated by ``"\\n"``; they are sent as a
    multi-line reply (``250-first``, ..., ``250 last``), each line with the
    enhanced code.
    """

    code: int
    enhanced: str | None
    text: str
    # The wire form, (without, with) the enhanced code, rendered on first use:
    # a catalog reply is sent many times a second.
    _wire: list[bytes | None] = field(
        default_factory=lambda: [None, None], init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        # RFC 5321 4.2: Reply-code = %x32-35 %x30-35 %x30-39; text may not carry CR.
        if not 200 <= self.code <= 559:
            raise ValueError(f"reply code out of range: {self.code}")
        if "\r" in self.text or "\0" in self.text:
            raise ValueError("reply text may not contain CR or NUL")
        if self.enhanced is not None and str(self.code)[0] != self.enhanced[:1]:
            raise ValueError(f"enhanced code {self.enhanced} does not match {self.code}")

    @property
    def is_positive(self) -> bool:
        """2xx or 3xx."""
        return self.code < 400

    @property
    def lines(self) -> list[str]:
        """The text lines of the reply."""
        return self.text.split("\n")

    def with_text(self, text: str) -> Reply:
        """The same codes with other text."""
        return Reply(self.code, self.enhanced, text)

    def to_bytes(self, enhanced: bool = True) -> bytes:
        """Render for the wire; ``enhanced`` adds the RFC 3463 code to every line."""
        wire = self._wire
        data = wire[enhanced]
        if data is None:
            data = wire[enhanced] = self._render(enhanced)
        return data

    def _render(self, enhanced: bool) -> bytes:
        prefix = f"{self.enhanced} " if enhanced and self.enhanced else ""
        lines = self.lines
        last = len(lines) - 1
        out = [
            f"{self.code}{' ' if i == last else '-'}{prefix}{line}\r\n"
            for i, line in enumerate(lines)
        ]
        return "".join(out).encode("utf-8")


@functools.lru_cache(maxsize=64)
def greeting(hostname: str, text: str = "ESMTP mailcore ready") -> Reply:
    """220 greeting (RFC 5321 4.3.1): the server's name first."""
    return Reply(220, None, f"{hostname} {text}")


@functools.lru_cache(maxsize=64)
def hello(hostname: str) -> Reply:
    """250 reply to EHLO/HELO/LHLO: the server's name (the extensions are added to it)."""
    return Reply(250, None, hostname)


@functools.lru_cache(maxsize=64)
def closing(hostname: str) -> Reply:
    """221 reply to QUIT."""
    return Reply(221, "2.0.0", f"{hostname} closing transmission")


def bdat_received(size: int) -> Reply:
    """250 reply to a BDAT chunk that is not the last (RFC 3030 section 4)."""
    return Reply(250, "2.0.0", f"{size} octets received")


def help_reply(commands: list[str]) -> Reply:
    """214 reply to HELP, listing the commands the server accepts."""
    return Reply(214, "2.0.0", "Supported commands:\n" + " ".join(commands))


OK = Reply(250, "2.0.0", "OK")
"""Generic success (NOOP, RSET, HELO)."""
SENDER_OK = Reply(250, "2.1.0", "Sender OK")
"""MAIL accepted."""
RECIPIENT_OK = Reply(250, "2.1.5", "Recipient OK")
"""RCPT accepted."""
MESSAGE_ACCEPTED = Reply(250, "2.0.0", "Message accepted for delivery")
"""DATA / BDAT LAST: the message is safely stored."""
START_MAIL_INPUT = Reply(354, None, "Start mail input; end with <CRLF>.<CRLF>")
"""354 after DATA (the seed's wording)."""
START_TLS = Reply(220, "2.0.0", "Ready to start TLS")
"""Positive reply to STARTTLS (RFC 3207)."""
CANNOT_VRFY = Reply(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery")
"""VRFY answered without telling whether the user exists (RFC 5321 3.5.3)."""
AUTH_SUCCESS = Reply(235, "2.7.0", "Authentication successful")
"""RFC 4954 section 6."""

SHUTTING_DOWN = Reply(421, "4.3.2", "Service shutting down, closing transmission channel")
"""The server is stopping."""
TIMEOUT = Reply(421, "4.4.2", "Timeout exceeded, closing transmission channel")
"""Idle or data timeout (RFC 5321 4.5.3.2)."""
TOO_MANY_ERRORS = Reply(421, "4.7.0", "Too many errors, closing transmission channel")
"""Postfix smtpd_hard_error_limit."""
TOO_MANY_CONNECTIONS = Reply(421, "4.7.0", "Too many connections, try again later")
"""Connection limit reached at accept."""
INTERNAL_ERROR = Reply(421, "4.3.0", "Internal error, closing transmission channel")
"""A handler failed outside a reply: the session ends."""
LOCAL_ERROR = Reply(451, "4.3.0", "Local error in processing")
"""A handler failed; the client should retry later."""
TOO_MANY_RECIPIENTS = Reply(452, "4.5.3", "Too many recipients")
"""RFC 5321 4.5.3.1.10 (Postfix wording)."""
TLS_NOT_AVAILABLE = Reply(454, "4.7.0", "TLS not available due to temporary reason")
"""STARTTLS without a TLS context."""
AUTH_TEMPORARY_FAILURE = Reply(454, "4.7.0", "Temporary authentication failure")
"""The credential source failed (RFC 4954 section 6)."""

SYNTAX_ERROR = Reply(500, "5.5.2", "Syntax error, command unrecognized")
"""Unknown command (RFC 5321 4.2.4)."""
LINE_TOO_LONG = Reply(500, "5.5.6", "Line too long")
"""Command line over the limit (X.5.6, registered by RFC 4954 for over-long lines)."""
BAD_UTF8 = Reply(500, "5.5.2", "Bad UTF-8 syntax")
"""A command that is not UTF-8 (Postfix)."""
BARE_LINE_END_COMMAND = Reply(500, "5.5.2", "Bare CR or LF in command")
"""A command line ended by a bare LF or holding a bare CR."""
AUTH_LINE_TOO_LONG = Reply(500, "5.5.6", "Authentication exchange line is too long")
"""RFC 4954 section 4."""
PARAM_SYNTAX = Reply(501, "5.5.4", "Syntax error in parameters or arguments")
"""Bad arguments (RFC 5321 4.2.4)."""
BAD_SENDER_SYNTAX = Reply(501, "5.1.7", "Bad sender address syntax")
"""RFC 3463 X.1.7 Bad sender's mailbox address syntax."""
BAD_RECIPIENT_SYNTAX = Reply(501, "5.1.3", "Bad recipient address syntax")
"""RFC 3463 X.1.3 Bad destination mailbox address syntax."""
AUTH_CANCELLED = Reply(501, "5.0.0", "Authentication cancelled")
"""The client answered "*" (RFC 4954 section 4)."""
AUTH_BAD_BASE64 = Reply(501, "5.5.2", "Cannot decode response")
"""Undecodable base64 in AUTH (RFC 4954 section 4)."""
COMMAND_NOT_IMPLEMENTED = Reply(502, "5.5.1", "Command not implemented")
"""A known command that this server does not carry out."""
AUTH_NOT_SUPPORTED = Reply(502, "5.5.1", "AUTH not available")
"""AUTH when no credential source is configured."""
BAD_SEQUENCE = Reply(503, "5.5.1", "Bad sequence of commands")
"""RFC 5321 4.2.4."""
NEED_EHLO = Reply(503, "5.5.1", "Send EHLO or HELO first")
"""MAIL before EHLO/HELO."""
NEED_MAIL = Reply(503, "5.5.1", "Need MAIL command")
"""RCPT/DATA/BDAT before MAIL."""
NEED_RCPT = Reply(503, "5.5.1", "Need RCPT command")
"""DATA/BDAT before any RCPT."""
NESTED_MAIL = Reply(503, "5.5.1", "Sender already specified")
"""MAIL inside a transaction."""
AUTH_ALREADY = Reply(503, "5.5.1", "Already authenticated")
"""RFC 4954 section 4."""
DATA_NOT_WITH_BDAT = Reply(503, "5.5.1", "DATA not allowed after BDAT")
"""RFC 3030 section 3: a transaction uses DATA or BDAT, not both."""
BDAT_NOT_WITH_DATA = Reply(503, "5.5.1", "BDAT not allowed here")
"""BDAT where it cannot start a body."""
AUTH_UNKNOWN_MECHANISM = Reply(504, "5.5.4", "Unrecognized authentication type")
"""RFC 4954 section 4."""
AUTH_REQUIRED = Reply(530, "5.7.0", "Authentication required")
"""RFC 4954 section 6."""
AUTH_FAILED = Reply(535, "5.7.8", "Authentication credentials invalid")
"""RFC 4954 section 6; the same for unknown user and wrong password."""
AUTH_ENCRYPTION_REQUIRED = Reply(
    538, "5.7.11", "Encryption required for requested authentication mechanism"
)
"""RFC 4954 section 6."""
NO_SUCH_USER = Reply(550, "5.1.1", "No such user here")
"""RCPT refused (the seed's wording)."""
BARE_LINE_END_BODY = Reply(
    550, "5.5.2", "Bare CR or LF in message body (SMTP smuggling protection)"
)
"""A DATA body with a bare CR or LF (Postfix smtpd_forbid_bare_newline = reject)."""
RELAY_DENIED = Reply(554, "5.7.1", "Relay access denied")
"""Recipient outside the served domains."""
TEXT_LINE_TOO_LONG = Reply(500, "5.5.6", "Message text line too long")
"""A DATA/BDAT body line over SMTPLimits.text_line (RFC 5321 4.5.3.1.6: 1000 octets
with CRLF); answered at the end of the data, the session goes on."""
MESSAGE_TOO_BIG = Reply(552, "5.3.4", "Message too big for system")
"""RFC 1870 / RFC 5321 4.5.3.1.10."""
SIZE_EXCEEDED = Reply(552, "5.3.4", "Message size exceeds fixed maximum message size")
"""MAIL with SIZE= over the limit (RFC 1870 section 6)."""
UTF8_NOT_ALLOWED = Reply(553, "5.6.7", "Non-ASCII address requires SMTPUTF8")
"""RFC 6531 section 3.5."""
NO_VALID_RECIPIENTS = Reply(554, "5.5.1", "No valid recipients")
"""DATA after every RCPT was refused (RFC 5321 3.3, Postfix wording)."""
PARAM_NOT_RECOGNIZED = Reply(555, "5.5.4", "MAIL FROM/RCPT TO parameters not recognized")
"""Unknown ESMTP parameter (RFC 5321 4.1.1.11)."""
HTTP_COMMAND = Reply(221, "2.7.0", "This is an SMTP server, not a web server")
"""HTTP request on the SMTP port: close at once (ALPACA, Postfix smtpd_forbid_cmds)."""
TLS_ALREADY_ACTIVE = Reply(503, "5.5.1", "TLS already active")
"""STARTTLS inside TLS (RFC 3207 section 4.2)."""
BDAT_SYNTAX = Reply(501, "5.5.4", "Syntax: BDAT chunk-size [LAST]; closing connection")
"""A BDAT whose size cannot be read: the chunk cannot be skipped, so the session ends."""
