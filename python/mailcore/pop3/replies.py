"""The POP3 replies mailcore sends, by name (RFC 1939, RFC 2449 and RFC 3206 codes).

Handlers and the machine return these objects, never strings. Response codes
in brackets follow RFC 2449 section 8 ([IN-USE], [LOGIN-DELAY]) and RFC 3206
([SYS/TEMP], [SYS/PERM], [AUTH]); CAPA announces RESP-CODES and AUTH-RESP-CODE.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AUTH_CANCELLED",
    "AUTH_FAILED",
    "BAD_BASE64",
    "BAD_COMMAND",
    "BAD_NUMBER",
    "CAPA_FOLLOWS",
    "IN_USE",
    "LINE_TOO_LONG",
    "LOGIN_DELAY",
    "LOGIN_FIRST",
    "NOISE",
    "NOT_IN_TRANSACTION",
    "NO_SUCH_MESSAGE",
    "OK",
    "PLAINTEXT_DISALLOWED",
    "SYS_PERM",
    "SYS_TEMP",
    "TLS_ACTIVE",
    "TLS_GO_AHEAD",
    "TLS_UNAVAILABLE",
    "TOO_MANY_ERRORS",
    "UNKNOWN_MECHANISM",
    "USER_FIRST",
    "Reply",
]


@dataclass(frozen=True, slots=True)
class Reply:
    """One status line: ``+OK``/``-ERR``, an optional response code, text."""

    ok: bool
    text: str = ""
    code: str | None = None

    def to_bytes(self) -> bytes:
        """Wire form with its CRLF."""
        parts = ["+OK" if self.ok else "-ERR"]
        if self.code is not None:
            parts.append(f"[{self.code}]")
        if self.text:
            parts.append(self.text)
        return (" ".join(parts) + "\r\n").encode("utf-8")

    def with_text(self, text: str) -> Reply:
        """The same status and code with another text."""
        return Reply(self.ok, text, self.code)


OK = Reply(True)
CAPA_FOLLOWS = Reply(True, "Capability list follows")
TLS_GO_AHEAD = Reply(True, "Begin TLS negotiation now.")

BAD_COMMAND = Reply(False, "Unknown command.")
LINE_TOO_LONG = Reply(False, "Input line too long.")
NOISE = Reply(False, "Noise after command arguments.")
BAD_NUMBER = Reply(False, "Invalid message number.")
NO_SUCH_MESSAGE = Reply(False, "No such message.")
USER_FIRST = Reply(False, "No username given.")
LOGIN_FIRST = Reply(False, "Not logged in.")
NOT_IN_TRANSACTION = Reply(False, "Already logged in.")
TLS_ACTIVE = Reply(False, "TLS is already active.")
TLS_UNAVAILABLE = Reply(False, "TLS support isn't enabled.")
UNKNOWN_MECHANISM = Reply(False, "Unsupported authentication mechanism.")
BAD_BASE64 = Reply(False, "Invalid base64 data.")
AUTH_CANCELLED = Reply(False, "Authentication cancelled.")
TOO_MANY_ERRORS = Reply(False, "Too many bad commands.")

# RFC 1939 section 13: the reply must not tell an unknown user from a wrong
# password, so every credential failure gets this one reply.
AUTH_FAILED = Reply(False, "Authentication failed.", "AUTH")
PLAINTEXT_DISALLOWED = Reply(
    False, "Plaintext authentication disallowed on non-secure (SSL/TLS) connections.", "AUTH"
)
# RFC 2449 section 8.1.1: the maildrop is locked by another session.
IN_USE = Reply(False, "Mailbox is locked by another POP3 session.", "IN-USE")
# RFC 2449 section 8.1.2: logging in again so soon is refused.
LOGIN_DELAY = Reply(False, "Minimum login interval not reached.", "LOGIN-DELAY")
# RFC 3206 section 4: a temporary and a permanent system failure.
SYS_TEMP = Reply(False, "Temporary server failure, try again later.", "SYS/TEMP")
SYS_PERM = Reply(False, "Server failure.", "SYS/PERM")
