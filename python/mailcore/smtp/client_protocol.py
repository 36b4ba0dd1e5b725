"""The client side of SMTP and LMTP as a sans-IO state machine.

:class:`ClientConnection` turns commands into bytes and bytes from the server
into :class:`ReplyReceived` events, each tied to the command it answers. It
never touches a socket, an event loop or a clock; :mod:`mailcore.smtp.client`
drives it. The machine knows:

- which reply belongs to which command when several are in flight
  (PIPELINING, RFC 2920), including LMTP's one reply per accepted recipient
  after the body (RFC 2033 section 4.2);
- multi-line replies (RFC 5321 section 4.2.1), with the RFC 3463 enhanced
  status code taken off each line (RFC 2034 section 3);
- the EHLO keywords and their parameters (RFC 5321 section 4.1.1.1);
- where pipelining must stop: nothing may follow EHLO, STARTTLS, AUTH, DATA
  or QUIT before its reply, and no command may be sent at all when the
  server did not offer PIPELINING and a reply is still due;
- STARTTLS (RFC 3207): once the 220 to STARTTLS is read, every byte that
  came after it is thrown away, so a man in the middle cannot inject replies
  that would be read as coming over TLS (CVE-2021-38371); the machine then
  refuses data until :meth:`ClientConnection.tls_started`.

Arguments containing CR, LF or NUL are refused (:class:`mailcore.errors.LocalProtocolError`):
they would let a caller's data become a second command (bpo-43124).
A server that breaks the reply syntax raises :class:`mailcore.errors.RemoteProtocolError`.
Reply lines are cut by the Rust :class:`mailcore._core.LineReader`.
"""

from __future__ import annotations

import base64
import enum
import re
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from mailcore import _core
from mailcore.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from mailcore.limits import SMTPClientLimits

__all__ = [
    "NEED_DATA",
    "ClientConnection",
    "ClientState",
    "NeedData",
    "ReplyReceived",
    "Response",
    "SMTPResponseError",
    "check_argument",
    "format_params",
    "xtext",
]


class NeedData(enum.Enum):
    """The type of :data:`NEED_DATA`."""

    NEED_DATA = enum.auto()


NEED_DATA = NeedData.NEED_DATA
"""Returned by :meth:`ClientConnection.next_event` when more bytes are needed."""


class ClientState(enum.Enum):
    """Where the client machine is in the session."""

    GREETING = enum.auto()
    """Waiting for the server's 220 greeting."""
    READY = enum.auto()
    """Commands may be sent."""
    DATA_BODY = enum.auto()
    """The server answered 354 to DATA: the body is due next."""
    TLS_HANDSHAKE = enum.auto()
    """The server accepted STARTTLS: the adapter must do the TLS handshake."""
    CLOSED = enum.auto()
    """QUIT was answered, or the server sent 421."""


# RFC 3463 section 2: status-code = class "." subject "." detail
#   class = "2" / "4" / "5"; subject = 1*3digit; detail = 1*3digit
_ENHANCED = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})(?: |$)")
# RFC 5321 4.1.1.1: ehlo-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*\Z")
# RFC 5321 4.1.2: esmtp-keyword and esmtp-value (any printable but "=" and SP).
_PARAM_VALUE = re.compile(r"[\x21-\x3c\x3e-\x7e\x80-\U0010ffff]+\Z")


@dataclass(frozen=True, slots=True)
class Response:
    """One SMTP reply: the code, the enhanced status code if any, and the text lines.

    ``text_lines`` has one entry per reply line, without the code, the
    separator or the enhanced status code.
    """

    code: int
    enhanced: str | None
    text_lines: tuple[str, ...]

    @property
    def text(self) -> str:
        """The text lines joined with newlines."""
        return "\n".join(self.text_lines)

    @property
    def is_success(self) -> bool:
        """Whether the reply is a positive completion (2yz)."""
        return 200 <= self.code < 300

    @property
    def is_intermediate(self) -> bool:
        """Whether the reply is a positive intermediate (3yz: 334, 354)."""
        return 300 <= self.code < 400

    @property
    def is_transient(self) -> bool:
        """Whether the reply is a transient failure (4yz): try again later."""
        return 400 <= self.code < 500

    @property
    def is_permanent(self) -> bool:
        """Whether the reply is a permanent failure (5yz)."""
        return 500 <= self.code < 600

    def __str__(self) -> str:
        prefix = f"{self.code} {self.enhanced} " if self.enhanced else f"{self.code} "
        return prefix + " / ".join(self.text_lines)


class SMTPResponseError(ProtocolError):
    """The server refused a command the client could not do without.

    Attributes:
        command: the verb that was refused ("EHLO", "STARTTLS", "AUTH", ...).
        response: the server's reply.
    """

    def __init__(self, command: str, response: Response) -> None:
        super().__init__(f"{command} refused: {response}")
        self.command = command
        self.response = response


@dataclass(frozen=True, slots=True)
class ReplyReceived:
    """The server's reply to ``command`` (a verb: "GREETING", "MAIL", "BDAT", "BODY", ...).

    ``argument`` is what the command was about: the address of a MAIL or
    RCPT, the size of a BDAT chunk; for an LMTP per-recipient reply after
    the body, the recipient it is for.
    """

    command: str
    argument: str
    response: Response


@dataclass(slots=True)
class _Pending:
    command: str
    argument: str
    # LMTP end of body: as many replies as recipients were accepted, known
    # only once the RCPT replies before it have been read.
    per_recipient: bool = False


# Commands after which nothing may be pipelined (RFC 2920 section 3.1 names
# EHLO, DATA, VRFY, EXPN, TURN, QUIT and NOOP as last in a group; RFC 3207
# and RFC 4954 add STARTTLS and AUTH, which change the session).
_SYNC_POINTS = frozenset(
    {"GREETING", "EHLO", "HELO", "LHLO", "STARTTLS", "AUTH", "AUTH-RESPONSE", "DATA", "QUIT"}
)


def check_argument(value: str, what: str = "argument") -> str:
    """Return ``value``, or raise :class:`LocalProtocolError` if it holds CR, LF or NUL.

    Those would end the command line early and start another one of the
    caller's (or an attacker's) choosing.
    """
    if any(ch in value for ch in "\r\n\x00"):
        raise LocalProtocolError(f"{what} contains CR, LF or NUL: {value!r}")
    return value


_check_arg = check_argument


class ClientConnection:
    """The sans-IO SMTP/LMTP client.

    Typical use: read the greeting (``receive_data`` then ``next_event``),
    send ``ehlo()``, and so on; each method that emits a command returns the
    bytes to write and records which reply is expected. Replies come back
    in order as :class:`ReplyReceived`.
    """

    def __init__(self, *, lmtp: bool = False, limits: SMTPClientLimits | None = None) -> None:
        self.lmtp = lmtp
        """Whether this is an LMTP session (LHLO, per-recipient replies after the body)."""
        self._limits = limits or SMTPClientLimits()
        self._reader = _core.LineReader(self._limits.reply_line)
        # Reply lines read but not yet part of a returned reply.
        self._lines: list[bytes] = []
        self._run = 0
        self._pending: deque[_Pending] = deque([_Pending("GREETING", "")])
        self._per_recipient: deque[str] = deque()
        self._state = ClientState.GREETING
        self.extensions: dict[str, str] = {}
        """EHLO keywords (upper case) mapped to their parameters, from the last EHLO/LHLO."""
        self.esmtp = False
        """Whether the last greeting command was EHLO/LHLO answered with 250."""
        self.discarded = 0
        """How many bytes were thrown away after the 220 to STARTTLS."""
        # Recipients accepted in the current transaction, in order, and
        # whether a BDAT chunk of it failed (the server then answers the
        # LAST chunk once, not per recipient).
        self._accepted: list[str] = []
        self._bdat_failed = False

    # ------------------------------------------------------------ state ---

    @property
    def state(self) -> ClientState:
        """The current :class:`ClientState`."""
        return self._state

    @property
    def pending(self) -> int:
        """How many replies are still due."""
        return len(self._pending) + len(self._per_recipient)

    @property
    def accepted_recipients(self) -> list[str]:
        """Recipients whose RCPT got a 2xx in the current transaction."""
        return list(self._accepted)

    def has_extension(self, keyword: str) -> bool:
        """Whether the server listed ``keyword`` in its EHLO/LHLO reply."""
        return keyword.upper() in self.extensions

    @property
    def auth_mechanisms(self) -> list[str]:
        """SASL mechanisms the server offered (AUTH keyword, RFC 4954), upper case."""
        return [m.upper() for m in self.extensions.get("AUTH", "").split()]

    @property
    def max_size(self) -> int | None:
        """The SIZE the server announced (RFC 1870), None if absent or 0 (no limit)."""
        value = self.extensions.get("SIZE", "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
        return None

    # --------------------------------------------------------- commands ---

    def _command(self, verb: str, line: str, argument: str = "") -> bytes:
        if self._state is ClientState.CLOSED:
            raise LocalProtocolError(f"{verb} after the session was closed")
        if self._state in (ClientState.TLS_HANDSHAKE, ClientState.DATA_BODY):
            raise LocalProtocolError(f"{verb} not allowed in state {self._state.name}")
        if self._pending:
            last = self._pending[-1].command
            if last in _SYNC_POINTS:
                raise LocalProtocolError(f"{verb} may not be pipelined behind {last}")
            if not self.has_extension("PIPELINING"):
                raise LocalProtocolError(f"{verb} before the last reply: no PIPELINING")
        self._pending.append(_Pending(verb, argument))
        return line.encode("utf-8") + b"\r\n"

    def ehlo(self, domain: str) -> bytes:
        """EHLO (LHLO in LMTP mode) with ``domain``, the client's own name."""
        verb = "LHLO" if self.lmtp else "EHLO"
        return self._command(verb, f"{verb} {_check_arg(domain, 'domain')}")

    def helo(self, domain: str) -> bytes:
        """HELO, the fallback for servers that refuse EHLO (not in LMTP)."""
        if self.lmtp:
            raise LocalProtocolError("LMTP has no HELO (RFC 2033 section 4.1)")
        return self._command("HELO", f"HELO {_check_arg(domain, 'domain')}")

    def starttls(self) -> bytes:
        """STARTTLS (RFC 3207)."""
        return self._command("STARTTLS", "STARTTLS")

    def auth(self, mechanism: str, initial: bytes | None) -> bytes:
        """AUTH with an optional initial response (raw bytes; base64 is done here)."""
        _check_arg(mechanism, "mechanism")
        if not re.fullmatch(r"[A-Z0-9_-]{1,20}", mechanism):
            raise LocalProtocolError(f"bad SASL mechanism name {mechanism!r}")
        line = f"AUTH {mechanism}"
        if initial is not None:
            # RFC 4954 section 4: "=" stands for an empty initial response.
            line += " " + (base64.b64encode(initial).decode("ascii") or "=")
        return self._command("AUTH", line, mechanism)

    def auth_response(self, data: bytes) -> bytes:
        """Answer a 334 challenge (raw bytes)."""
        return self._continuation(base64.b64encode(data).decode("ascii"))

    def auth_cancel(self) -> bytes:
        """Cancel the AUTH exchange with "*" (the server answers 501)."""
        return self._continuation("*")

    def _continuation(self, line: str) -> bytes:
        if self._pending:
            raise LocalProtocolError("AUTH response before the server's challenge")
        if self._state is not ClientState.READY:
            raise LocalProtocolError(f"AUTH response in state {self._state.name}")
        self._pending.append(_Pending("AUTH-RESPONSE", ""))
        return line.encode("ascii") + b"\r\n"

    def mail(self, address: str, params: Mapping[str, str | None] | None = None) -> bytes:
        """MAIL FROM:<address> with ESMTP parameters (value None for a bare keyword)."""
        self._accepted = []
        _check_arg(address, "address")
        line = f"MAIL FROM:<{address}>" + format_params(params)
        return self._command("MAIL", line, address)

    def rcpt(self, address: str, params: Mapping[str, str | None] | None = None) -> bytes:
        """RCPT TO:<address> with ESMTP parameters."""
        _check_arg(address, "address")
        return self._command("RCPT", f"RCPT TO:<{address}>" + format_params(params), address)

    def data(self) -> bytes:
        """DATA; send :meth:`body` once its reply is 354."""
        return self._command("DATA", "DATA")

    def body(self, message: bytes) -> bytes:
        """The message after a 354: dot-stuffed and ended by "." (in Rust)."""
        if self._state is not ClientState.DATA_BODY:
            raise LocalProtocolError("message body without a 354 reply to DATA")
        self._state = ClientState.READY
        self._pending.append(_Pending("BODY", "", per_recipient=self.lmtp))
        return _core.dot_stuff(message)

    def bdat(self, chunk: bytes, *, last: bool) -> bytes:
        """BDAT with ``chunk`` (RFC 3030); ``last`` ends the message."""
        if not self.has_extension("CHUNKING"):
            raise LocalProtocolError("BDAT but the server did not offer CHUNKING")
        line = f"BDAT {len(chunk)}" + (" LAST" if last else "")
        head = self._command("BDAT", line, str(len(chunk)))
        if last and self.lmtp:
            self._pending[-1].per_recipient = True
        return head + chunk

    def rset(self) -> bytes:
        """RSET: forget the current transaction."""
        return self._command("RSET", "RSET")

    def noop(self) -> bytes:
        """NOOP."""
        return self._command("NOOP", "NOOP")

    def quit(self) -> bytes:
        """QUIT."""
        return self._command("QUIT", "QUIT")

    def tls_started(self) -> None:
        """Tell the machine the TLS handshake is done: the session starts over (RFC 3207 4.2)."""
        if self._state is not ClientState.TLS_HANDSHAKE:
            raise LocalProtocolError("tls_started() without an accepted STARTTLS")
        self._state = ClientState.READY
        self.extensions = {}
        self.esmtp = False

    # ----------------------------------------------------------- replies ---

    def receive_data(self, data: bytes) -> None:
        """Add bytes read from the server (``b""`` is not end of stream: close the adapter)."""
        if self._state is ClientState.TLS_HANDSHAKE:
            # Plaintext after the 220 to STARTTLS: never read as a reply.
            self.discarded += len(data)
            return
        for line in self._reader.feed(data):
            if isinstance(line, _core.LineError):
                raise RemoteProtocolError(f"bad reply line ({line.kind.name}, {line.length} bytes)")
            self._lines.append(line)
            # Only one reply's lines count: a pipelined batch may bring a
            # reply for each of a thousand recipients at once.
            self._run = self._run + 1 if line[3:4] == b"-" else 0
            if self._run >= self._limits.reply_lines:
                raise RemoteProtocolError("multi-line reply has too many lines")

    @staticmethod
    def _parse_line(raw: bytes) -> tuple[int, str, str]:
        # RFC 5321 4.2: Reply-line = *( Reply-code "-" [ textstring ] CRLF )
        #                            Reply-code [ SP textstring ] CRLF
        #               Reply-code = %x32-35 %x30-35 %x30-39
        code = raw[:3]
        sep = raw[3:4]
        if len(code) != 3 or not code.isdigit() or code[:1] not in b"2345":
            raise RemoteProtocolError(f"malformed reply line {raw[:40]!r}")
        if sep not in (b"", b" ", b"-"):
            raise RemoteProtocolError(f"malformed reply line {raw[:40]!r}")
        text = raw[4:].decode("utf-8", "replace")
        return int(code), sep.decode("ascii"), text

    def next_event(self) -> ReplyReceived | NeedData:
        """Return the next complete reply, or :data:`NEED_DATA`."""
        if self._state is ClientState.TLS_HANDSHAKE:
            return NEED_DATA
        end = next((i for i, raw in enumerate(self._lines) if raw[3:4] != b"-"), None)
        if end is None:
            return NEED_DATA
        raw_lines, self._lines = self._lines[: end + 1], self._lines[end + 1 :]
        lines = [self._parse_line(raw) for raw in raw_lines]
        code = lines[0][0]
        if any(c != code for c, _, _ in lines):
            raise RemoteProtocolError("reply lines with different codes")
        response = _make_response(code, [text for _, _, text in lines])
        return self._dispatch(response)

    def _dispatch(self, response: Response) -> ReplyReceived:
        if self._per_recipient:
            return ReplyReceived("BODY", self._per_recipient.popleft(), response)
        if not self._pending:
            if response.code == 421:
                # RFC 5321 3.8: a server may send 421 and close at any moment.
                self._state = ClientState.CLOSED
                return ReplyReceived("UNSOLICITED", "", response)
            raise RemoteProtocolError(f"reply nobody asked for: {response}")
        pending = self._pending.popleft()
        event = ReplyReceived(pending.command, pending.argument, response)
        self._after_reply(pending, response)
        if pending.per_recipient and self._accepted and not self._bdat_failed:
            # LMTP: the first reply after the body is for the first accepted
            # recipient and the others follow (RFC 2033 4.2). With no
            # accepted recipient there is one reply.
            self._per_recipient.extend(self._accepted[1:])
            return ReplyReceived(pending.command, self._accepted[0], response)
        return event

    def _after_reply(self, pending: _Pending, response: Response) -> None:
        command, code = pending.command, response.code
        if command in ("MAIL", "RSET"):
            self._accepted = []
            self._bdat_failed = False
        if code == 421:
            self._state = ClientState.CLOSED
            self._pending.clear()
            return
        if command == "GREETING":
            # A 554 greeting still allows QUIT (RFC 5321 3.1); the adapter decides.
            self._state = ClientState.READY
        elif command in ("EHLO", "LHLO"):
            if response.is_success:
                self.extensions = _parse_ehlo(response.text_lines[1:])
                self.esmtp = True
        elif command == "HELO":
            if response.is_success:
                self.extensions = {}
                self.esmtp = False
        elif command == "STARTTLS":
            if code == 220:
                self._state = ClientState.TLS_HANDSHAKE
                # Everything the server sent after the 220 is plaintext that
                # an attacker may have written: drop it (CVE-2021-38371).
                dropped = self._reader.take_buffered()
                self.discarded += len(dropped) + sum(len(raw) + 2 for raw in self._lines)
                self._lines = []
                self._reader = _core.LineReader(self._limits.reply_line)
        elif command == "RCPT":
            if response.is_success:
                self._accepted.append(pending.argument)
        elif command == "DATA":
            if code == 354:
                self._state = ClientState.DATA_BODY
        elif command == "BDAT":
            if not response.is_success and not pending.per_recipient:
                self._bdat_failed = True
        elif command == "QUIT":
            self._state = ClientState.CLOSED


def _make_response(code: int, texts: list[str]) -> Response:
    enhanced = None
    match = _ENHANCED.match(texts[0])
    if match and match.group(1) == str(code)[0]:
        enhanced = f"{match.group(1)}.{match.group(2)}.{match.group(3)}"
        # RFC 2034 section 3: every line of the reply carries the code.
        texts = [t[len(enhanced) + 1 :] if t.startswith(enhanced) else t for t in texts]
    return Response(code, enhanced, tuple(texts))


def _parse_ehlo(lines: tuple[str, ...]) -> dict[str, str]:
    # RFC 5321 4.1.1.1: ehlo-line = ehlo-keyword *( SP ehlo-param )
    extensions: dict[str, str] = {}
    for line in lines:
        keyword, _, params = line.strip().partition(" ")
        # Old servers announce "AUTH=LOGIN PLAIN" (before RFC 2554 was final).
        if keyword.upper().startswith("AUTH="):
            params = keyword[5:] + (" " + params if params else "")
            keyword = "AUTH"
            if "AUTH" in extensions:
                continue
        if _KEYWORD.match(keyword):
            extensions[keyword.upper()] = params.strip()
    return extensions


def format_params(params: Mapping[str, str | None] | None) -> str:
    """Format ESMTP parameters for MAIL or RCPT (" KEY=VALUE KEY2"), checking each.

    A bad keyword, or a value with CR, LF, NUL, space or "=", raises
    :class:`LocalProtocolError`. Values of DSN parameters (ENVID, ORCPT)
    must be :func:`xtext` already.
    """
    # RFC 5321 4.1.2: esmtp-param = esmtp-keyword ["=" esmtp-value]
    if not params:
        return ""
    out = []
    for key, value in params.items():
        _check_arg(key, "parameter")
        if not _KEYWORD.match(key):
            raise LocalProtocolError(f"bad ESMTP parameter name {key!r}")
        if value is None:
            out.append(key)
        else:
            _check_arg(value, "parameter value")
            if not _PARAM_VALUE.match(value):
                raise LocalProtocolError(f"bad ESMTP parameter value {value!r}")
            out.append(f"{key}={value}")
    return " " + " ".join(out)


def xtext(value: str) -> str:
    """Encode ``value`` as RFC 3461 xtext (for ENVID= and ORCPT=).

    xtext = *( xchar / hexchar ); xchar is "!" to "~" except "+" and "=";
    hexchar = "+" followed by two upper-case hex digits. Non-ASCII text is
    encoded as its UTF-8 bytes.
    """
    return "".join(
        chr(b) if 33 <= b <= 126 and b not in (0x2B, 0x3D) else f"+{b:02X}"
        for b in value.encode("utf-8")
    )
