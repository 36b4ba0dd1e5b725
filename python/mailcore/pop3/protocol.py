"""Sans-IO POP3 server machine (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH).

The adapter feeds received bytes with :meth:`ServerConnection.receive_data`
(``b""`` for EOF), calls :meth:`~ServerConnection.next_event` until it
returns :data:`NeedData.NEED_DATA`, and writes :meth:`~ServerConnection.data_to_send`
after every call. The machine answers most commands itself; the events in
:mod:`mailcore.pop3.events` are the points where the adapter has to decide or
fetch, and :data:`Paused.PAUSED` is returned until it has answered. Pipelined
commands (RFC 2449 PIPELINING) stay in the Rust :class:`LineReader` until then,
which is also what lets STLS drop plaintext that was sent behind it.

Every state and every legal move is in :data:`TRANSITIONS`; a move that is
not in the table raises :class:`~mailcore.errors.LocalProtocolError`.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
from collections.abc import Sequence

from mailcore import _core
from mailcore.errors import LocalProtocolError
from mailcore.limits import POP3Limits
from mailcore.pop3 import replies
from mailcore.pop3.events import (
    ApopLogin,
    AuthCancelled,
    AuthResponse,
    AuthStart,
    Closed,
    Event,
    NeedData,
    PasswordLogin,
    Paused,
    Quit,
    Retrieve,
    StartTLS,
)
from mailcore.pop3.replies import Reply
from mailcore.pop3.top import TopCutter

__all__ = [
    "TRANSITIONS",
    "Input",
    "ServerConnection",
    "State",
    "TopCutter",
    "apop_digest",
    "apop_matches",
    "make_timestamp",
    "parse_number",
]

# Mechanisms that send the password itself; offered only where USER/PASS is.
PLAINTEXT_MECHANISMS = frozenset({"PLAIN", "LOGIN"})


class State(enum.Enum):
    """Where a POP3 session is (RFC 1939 section 3, plus the adapter's turns)."""

    AUTHORIZATION = "AUTHORIZATION"
    LOGIN_CHECK = "LOGIN_CHECK"  # adapter checks PASS/APOP
    AUTH_SERVER = "AUTH_SERVER"  # adapter runs the SASL mechanism
    AUTH_CLIENT = "AUTH_CLIENT"  # waiting for the client's SASL line
    TLS_HANDSHAKE = "TLS_HANDSHAKE"
    TRANSACTION = "TRANSACTION"
    SENDING = "SENDING"  # adapter streams RETR/TOP
    UPDATE = "UPDATE"  # adapter applies deletions after QUIT
    CLOSED = "CLOSED"


class Input(enum.Enum):
    """What moves a session from one state to another."""

    PASS = "PASS"
    APOP = "APOP"
    AUTH = "AUTH"
    CHALLENGE = "CHALLENGE"
    AUTH_RESPONSE = "AUTH_RESPONSE"
    AUTH_CANCEL = "AUTH_CANCEL"
    LOGIN_OK = "LOGIN_OK"
    LOGIN_FAIL = "LOGIN_FAIL"
    STLS = "STLS"
    TLS_DONE = "TLS_DONE"
    RETRIEVE = "RETRIEVE"
    MESSAGE_DONE = "MESSAGE_DONE"
    QUIT = "QUIT"
    UPDATE_DONE = "UPDATE_DONE"
    CLOSE = "CLOSE"


S, In = State, Input
# Every legal move; anything else is a LocalProtocolError. CLOSE (EOF, too many
# errors) is legal from every state and handled by _close().
TRANSITIONS: dict[tuple[State, Input], State] = {
    (S.AUTHORIZATION, In.PASS): S.LOGIN_CHECK,
    (S.AUTHORIZATION, In.APOP): S.LOGIN_CHECK,
    (S.AUTHORIZATION, In.AUTH): S.AUTH_SERVER,
    (S.AUTHORIZATION, In.STLS): S.TLS_HANDSHAKE,
    (S.AUTHORIZATION, In.QUIT): S.CLOSED,
    (S.LOGIN_CHECK, In.LOGIN_OK): S.TRANSACTION,
    (S.LOGIN_CHECK, In.LOGIN_FAIL): S.AUTHORIZATION,
    (S.AUTH_SERVER, In.CHALLENGE): S.AUTH_CLIENT,
    (S.AUTH_SERVER, In.LOGIN_OK): S.TRANSACTION,
    (S.AUTH_SERVER, In.LOGIN_FAIL): S.AUTHORIZATION,
    (S.AUTH_CLIENT, In.AUTH_RESPONSE): S.AUTH_SERVER,
    (S.AUTH_CLIENT, In.AUTH_CANCEL): S.AUTHORIZATION,
    (S.TLS_HANDSHAKE, In.TLS_DONE): S.AUTHORIZATION,
    (S.TRANSACTION, In.RETRIEVE): S.SENDING,
    (S.SENDING, In.MESSAGE_DONE): S.TRANSACTION,
    (S.TRANSACTION, In.QUIT): S.UPDATE,
    (S.UPDATE, In.UPDATE_DONE): S.CLOSED,
}
del S, In

# States in which the adapter owes the next move.
_ADAPTER_TURN = frozenset(
    {State.LOGIN_CHECK, State.AUTH_SERVER, State.TLS_HANDSHAKE, State.SENDING, State.UPDATE}
)

# RFC 1939 section 3: keywords are 3 or 4 characters; RFC 2449 keeps that.
_AUTHORIZATION_COMMANDS = frozenset(
    {"USER", "PASS", "APOP", "AUTH", "STLS", "CAPA", "QUIT", "UTF8"}
)
_HEX = frozenset("0123456789abcdefABCDEF")
_TRANSACTION_COMMANDS = frozenset(
    {"STAT", "LIST", "RETR", "DELE", "NOOP", "RSET", "TOP", "UIDL", "QUIT", "CAPA"}
)


def make_timestamp(pid: int, clock: int, host: str) -> str:
    """The RFC 1939 section 7 greeting timestamp ``<pid.clock@host>``.

    The caller passes a clock that differs on every greeting (RFC 1939: the
    timestamp "MUST be different each time the POP3 server issues a banner").
    """
    return f"<{pid}.{clock}@{host}>"


def apop_digest(timestamp: str, secret: bytes) -> str:
    """MD5 of the greeting timestamp followed by the shared secret, lowercase hex."""
    return hashlib.md5(timestamp.encode("ascii") + secret, usedforsecurity=False).hexdigest()


def apop_matches(timestamp: str, secret: bytes | None, digest: str) -> bool:
    """Whether ``digest`` is right for ``secret``; compared in constant time.

    With no secret (unknown user, APOP not enabled for the account) a digest
    is still computed so the answer takes the same time.
    """
    expected = apop_digest(timestamp, secret if secret is not None else b"\0unknown")
    return hmac.compare_digest(expected, digest.lower()) and secret is not None


def parse_number(arg: str) -> int | None:
    """A message number or line count: ASCII digits only, at most 10 of them."""
    if not arg or len(arg) > 10 or not (arg.isascii() and arg.isdigit()):
        return None
    return int(arg)


def _b64decode(data: bytes) -> bytes | None:
    """Strict base64 of one SASL line, or None.

    SASL lines are a few hundred bytes, so the standard library is used here
    rather than the core's bulk codec.
    """
    try:
        return base64.b64decode(data, validate=True)
    except binascii.Error:
        return None


class ServerConnection:
    """One POP3 server session, without I/O.

    Args:
        host: name in the greeting timestamp.
        pid, clock: the other two parts of the timestamp; ``clock`` must differ
            on every connection (time and randomness are the adapter's).
        limits: line lengths and error counts.
        tls_active: the connection is already TLS (implicit TLS, port 995).
        tls_available: STLS may be offered.
        allow_plaintext_auth: USER/PASS and PLAIN/LOGIN on a non-TLS connection.
        mechanisms: SASL mechanism names the adapter can run.
        apop: whether APOP is enabled.
        implementation, expire, login_delay: CAPA values (RFC 2449 section 6).
    """

    def __init__(
        self,
        *,
        host: str,
        pid: int,
        clock: int,
        limits: POP3Limits | None = None,
        tls_active: bool = False,
        tls_available: bool = False,
        allow_plaintext_auth: bool = False,
        mechanisms: Sequence[str] = (),
        apop: bool = False,
        implementation: str = "mailcore",
        expire: str | None = None,
        login_delay: int | None = None,
    ) -> None:
        self.limits = limits if limits is not None else POP3Limits()
        self.timestamp = make_timestamp(pid, clock, host)
        self.tls_active = tls_active
        self._tls_available = tls_available
        self._allow_plaintext = allow_plaintext_auth
        self._mechanisms = tuple(m.upper() for m in mechanisms)
        self._apop = apop
        self._implementation = implementation
        self._expire = expire
        self._login_delay = login_delay
        self._state = State.AUTHORIZATION
        self._reader = _core.LineReader(
            max(self.limits.command_line, self.limits.auth_line),
            allow_bare_lf=self.limits.allow_bare_lf_commands,
        )
        self._out: list[bytes] = []
        self._eof = False
        self._closed_reported = False
        self._username: str | None = None
        self._bad_commands = 0
        self._failed_logins = 0
        self._sizes: tuple[int, ...] = ()
        self._uids: tuple[str, ...] = ()
        self._deleted: set[int] = set()
        self._sending: Retrieve | None = None
        self._stuffer: _core.DotStuffer | None = None
        self._cutter: TopCutter | None = None
        self.account: str | None = None

    # ------------------------------------------------------------ state ---
    @property
    def state(self) -> State:
        """The current state."""
        return self._state

    def _move(self, what: Input) -> None:
        new = TRANSITIONS.get((self._state, what))
        if new is None:
            raise LocalProtocolError(f"{what.value} is not allowed in state {self._state.value}")
        self._state = new

    def _close(self) -> None:
        self._state = State.CLOSED

    def _reply(self, reply: Reply) -> None:
        self._out.append(reply.to_bytes())

    def _secure(self) -> bool:
        return self.tls_active or self._allow_plaintext

    # ------------------------------------------------------------- I/O ---
    def greet(self) -> None:
        """Queue the greeting with its timestamp (RFC 1939 section 4 and 7)."""
        self._reply(replies.OK.with_text(f"mailcore POP3 ready {self.timestamp}"))

    def refuse(self, reply: Reply = replies.SYS_TEMP) -> None:
        """Queue ``reply`` instead of the greeting and end the session."""
        self._reply(reply)
        self._close()

    def receive_data(self, data: bytes) -> None:
        """Add bytes from the client; ``b""`` means the client closed its side."""
        if not data:
            self._eof = True
            return
        if self._state is State.CLOSED:
            return
        if self._state is State.TLS_HANDSHAKE:
            # RFC 2595 / CVE-2011-0411: plaintext after STLS is never a command.
            return
        self._reader.feed(data, 0)

    def data_to_send(self) -> bytes:
        """Every byte queued for the client since the last call."""
        out = b"".join(self._out)
        self._out.clear()
        return out

    def next_event(self) -> Event | NeedData | Paused:
        """Process buffered input up to the next event."""
        while True:
            if self._state is State.CLOSED:
                if self._closed_reported:
                    return NeedData.NEED_DATA
                self._closed_reported = True
                return Closed("eof" if self._eof else "errors")
            if self._state in _ADAPTER_TURN:
                return Paused.PAUSED
            items = self._reader.feed(b"", 1)
            if not items:
                if self._eof:
                    self._close()
                    self._closed_reported = True
                    return Closed("eof")
                return NeedData.NEED_DATA
            event = self._handle_line(items[0])
            if event is not None:
                if isinstance(event, Closed):
                    self._closed_reported = True
                return event

    # ------------------------------------------------------- commands ---
    def _bad(self, reply: Reply) -> Closed | None:
        self._bad_commands += 1
        limit = (
            self.limits.bad_commands
            if self._state is State.TRANSACTION
            else self.limits.login_bad_commands
        )
        self._reply(reply)
        if self._bad_commands >= limit:
            self._reply(replies.TOO_MANY_ERRORS)
            self._close()
            return Closed("errors")
        return None

    def _handle_line(self, item: bytes | _core.LineError) -> Event | None:
        if isinstance(item, _core.LineError):
            if item.kind is _core.LineErrorKind.TOO_LONG:
                return self._bad(replies.LINE_TOO_LONG)
            return self._bad(replies.BAD_COMMAND)
        if self._state is State.AUTH_CLIENT:
            return self._auth_line(item)
        if len(item) > self.limits.command_line:
            return self._bad(replies.LINE_TOO_LONG)
        try:
            line = item.decode("utf-8")
        except UnicodeDecodeError:
            return self._bad(replies.BAD_COMMAND)
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if self._state is State.AUTHORIZATION:
            if keyword not in _AUTHORIZATION_COMMANDS:
                if keyword in _TRANSACTION_COMMANDS:
                    return self._bad(replies.LOGIN_FIRST)
                return self._bad(replies.BAD_COMMAND)
            return self._authorization(keyword, rest, line)
        if keyword not in _TRANSACTION_COMMANDS:
            if keyword in _AUTHORIZATION_COMMANDS:
                return self._bad(replies.NOT_IN_TRANSACTION)
            return self._bad(replies.BAD_COMMAND)
        return self._transaction(keyword, rest, line)

    def _capabilities(self) -> list[str]:
        caps = ["CAPA", "TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "UTF8"]
        if self._state is State.AUTHORIZATION and self._secure():
            caps.append("USER")
        mechs = self._offered_mechanisms() if self._state is State.AUTHORIZATION else []
        if mechs:
            caps.append("SASL " + " ".join(mechs))
        if self._state is State.AUTHORIZATION and self._tls_available and not self.tls_active:
            caps.append("STLS")
        if self._expire is not None:
            caps.append(f"EXPIRE {self._expire}")
        if self._login_delay is not None:
            caps.append(f"LOGIN-DELAY {self._login_delay}")
        caps.append(f"IMPLEMENTATION {self._implementation}")
        return caps

    def _offered_mechanisms(self) -> list[str]:
        if self._secure():
            return list(self._mechanisms)
        return [m for m in self._mechanisms if m not in PLAINTEXT_MECHANISMS]

    def _multiline(self, reply: Reply, lines: Sequence[str]) -> None:
        # Lines built here (CAPA, LIST, UIDL) never start with "."; no stuffing needed.
        body = "".join(f"{line}\r\n" for line in lines)
        self._out.append(reply.to_bytes() + body.encode("utf-8") + b".\r\n")

    def _authorization(self, keyword: str, rest: str, line: str) -> Event | None:
        if keyword == "CAPA":
            if rest:
                return self._bad(replies.NOISE)
            self._multiline(replies.CAPA_FOLLOWS, self._capabilities())
            return None
        if keyword == "QUIT":
            self._reply(replies.OK.with_text("Logging out."))
            self._move(Input.QUIT)
            self._closed_reported = True
            return Closed("quit")
        if keyword == "UTF8":
            # RFC 6856: names and passwords are UTF-8; we accept that always.
            self._reply(replies.OK.with_text("UTF8 enabled"))
            return None
        if keyword == "STLS":
            if rest:
                return self._bad(replies.NOISE)
            if self.tls_active:
                self._reply(replies.TLS_ACTIVE)
                return None
            if not self._tls_available:
                self._reply(replies.TLS_UNAVAILABLE)
                return None
            self._reply(replies.TLS_GO_AHEAD)
            self._move(Input.STLS)
            return StartTLS()
        if keyword == "USER":
            if not rest:
                return self._bad(replies.BAD_COMMAND.with_text("USER needs a name."))
            if not self._secure():
                self._reply(replies.PLAINTEXT_DISALLOWED)
                return None
            # RFC 1939 section 13: the same +OK whether or not the name exists.
            self._username = rest
            self._reply(replies.OK)
            return None
        if keyword == "PASS":
            if self._username is None:
                self._reply(replies.USER_FIRST)
                return None
            # RFC 1939: PASS has one argument, so spaces belong to the password.
            password = line[5:] if len(line) > 4 else ""
            username, self._username = self._username, None
            self._move(Input.PASS)
            return PasswordLogin(username, password)
        if keyword == "APOP":
            if not self._apop:
                return self._bad(replies.BAD_COMMAND.with_text("APOP is not enabled."))
            name, _, digest = rest.rpartition(" ")
            if not name or len(digest) != 32 or not _HEX.issuperset(digest):
                return self._bad(replies.BAD_COMMAND.with_text("APOP needs a name and a digest."))
            self._move(Input.APOP)
            return ApopLogin(name, digest.lower(), self.timestamp)
        return self._auth_command(rest)

    def _auth_command(self, rest: str) -> Event | None:
        if not rest:
            # Outlook and Thunderbird send a bare AUTH to list mechanisms (RFC 1734 use).
            self._multiline(replies.OK, self._offered_mechanisms())
            return None
        mechanism, _, initial_text = rest.partition(" ")
        mechanism = mechanism.upper()
        if mechanism not in self._mechanisms:
            self._reply(replies.UNKNOWN_MECHANISM)
            return None
        if mechanism in PLAINTEXT_MECHANISMS and not self._secure():
            self._reply(replies.PLAINTEXT_DISALLOWED)
            return None
        initial: bytes | None = None
        if initial_text:
            if initial_text == "=":
                initial = b""
            else:
                initial = _b64decode(initial_text.encode("utf-8"))
                if initial is None:
                    self._reply(replies.BAD_BASE64)
                    return None
        self._move(Input.AUTH)
        return AuthStart(mechanism, initial)

    def _auth_line(self, line: bytes) -> Event | None:
        if line == b"*":
            self._reply(replies.AUTH_CANCELLED)
            self._move(Input.AUTH_CANCEL)
            return AuthCancelled()
        data = _b64decode(line)
        if data is None:
            self._reply(replies.BAD_BASE64)
            self._move(Input.AUTH_CANCEL)
            return AuthCancelled()
        self._move(Input.AUTH_RESPONSE)
        return AuthResponse(data)

    def _message(self, arg: str) -> int | Reply:
        number = parse_number(arg)
        if number is None:
            return replies.BAD_NUMBER
        if not 1 <= number <= len(self._sizes):
            return replies.NO_SUCH_MESSAGE
        if number in self._deleted:
            return replies.NO_SUCH_MESSAGE.with_text("Message is deleted.")
        return number

    def _maildrop_text(self) -> str:
        count, octets = self._totals()
        return f"{count} messages ({octets} octets)"

    def _totals(self) -> tuple[int, int]:
        live = [s for n, s in enumerate(self._sizes, 1) if n not in self._deleted]
        return len(live), sum(live)

    def _transaction(self, keyword: str, rest: str, line: str) -> Event | None:
        args = rest.split(" ") if rest else []
        if keyword in ("STAT", "NOOP", "RSET", "QUIT", "CAPA") and args:
            return self._bad(replies.NOISE)
        if keyword == "STAT":
            count, octets = self._totals()
            self._reply(replies.OK.with_text(f"{count} {octets}"))
        elif keyword == "NOOP":
            self._reply(replies.OK)
        elif keyword == "CAPA":
            self._multiline(replies.CAPA_FOLLOWS, self._capabilities())
        elif keyword == "RSET":
            self._deleted.clear()
            self._reply(replies.OK.with_text(self._maildrop_text()))
        elif keyword == "QUIT":
            self._move(Input.QUIT)
            return Quit(tuple(sorted(self._deleted)))
        elif keyword in ("LIST", "UIDL"):
            return self._listing(keyword, args)
        elif keyword == "DELE":
            if len(args) != 1:
                return self._bad(replies.NOISE if args else replies.BAD_NUMBER)
            number = self._message(args[0])
            if isinstance(number, Reply):
                self._reply(number)
                return None
            self._deleted.add(number)
            self._reply(replies.OK.with_text("Marked to be deleted."))
        else:
            return self._retrieve(keyword, args)
        return None

    def _listing(self, keyword: str, args: list[str]) -> Event | None:
        if len(args) > 1:
            return self._bad(replies.NOISE)
        column = self._uids if keyword == "UIDL" else tuple(str(s) for s in self._sizes)
        if args:
            number = self._message(args[0])
            if isinstance(number, Reply):
                self._reply(number)
                return None
            self._reply(replies.OK.with_text(f"{number} {column[number - 1]}"))
            return None
        lines = [f"{n} {v}" for n, v in enumerate(column, 1) if n not in self._deleted]
        head = replies.OK.with_text(self._maildrop_text()) if keyword == "LIST" else replies.OK
        self._multiline(head, lines)
        return None

    def _retrieve(self, keyword: str, args: list[str]) -> Event | None:
        wanted = 1 if keyword == "RETR" else 2
        if len(args) != wanted:
            return self._bad(replies.NOISE if len(args) > wanted else replies.BAD_NUMBER)
        number = self._message(args[0])
        if isinstance(number, Reply):
            self._reply(number)
            return None
        lines: int | None = None
        if keyword == "TOP":
            lines = parse_number(args[1])
            if lines is None:
                self._reply(replies.BAD_NUMBER.with_text("Invalid number of lines."))
                return None
        self._move(Input.RETRIEVE)
        self._sending = Retrieve(number, self._sizes[number - 1], lines)
        return self._sending

    # ------------------------------------------------ adapter answers ---
    def accept_login(self, account: str, sizes: Sequence[int], uids: Sequence[str]) -> None:
        """The login succeeded and the maildrop is locked; fix message numbers.

        ``sizes[i]`` and ``uids[i]`` describe message ``i + 1`` for the whole
        session (RFC 1939: numbers do not change until QUIT).
        """
        if len(sizes) != len(uids):
            raise LocalProtocolError("sizes and uids must have the same length")
        self._move(Input.LOGIN_OK)
        self.account = account
        self._sizes = tuple(sizes)
        self._uids = tuple(uids)
        self._bad_commands = 0
        self._reply(replies.OK.with_text(f"Logged in, maildrop has {self._maildrop_text()}."))

    def reject_login(self, reply: Reply = replies.AUTH_FAILED) -> None:
        """The login failed with ``reply`` (AUTH_FAILED, IN_USE, LOGIN_DELAY, SYS_TEMP...).

        After ``limits.failed_logins`` failures the session is closed. The
        adapter applies the delay before calling this.
        """
        self._move(Input.LOGIN_FAIL)
        self._reply(reply)
        self._failed_logins += 1
        if self._failed_logins >= self.limits.failed_logins:
            self._reply(replies.TOO_MANY_ERRORS.with_text("Too many failed logins."))
            self._close()

    def send_challenge(self, data: bytes) -> None:
        """Send a SASL challenge (``+ base64``) and wait for the client's line."""
        self._move(Input.CHALLENGE)
        self._out.append(b"+ " + base64.b64encode(data) + b"\r\n")

    def tls_started(self) -> None:
        """The TLS handshake after STLS finished: forget plaintext state."""
        self._move(Input.TLS_DONE)
        # Anything still buffered arrived in plaintext behind STLS.
        self._reader.take_buffered()
        self._username = None
        self.tls_active = True

    def begin_message(self) -> None:
        """Queue the positive reply to RETR/TOP; message data follows."""
        if self._state is not State.SENDING or self._sending is None:
            raise LocalProtocolError("begin_message() without a Retrieve event")
        if self._sending.lines is None:
            self._reply(replies.OK.with_text(f"{self._sending.size} octets"))
        else:
            self._reply(replies.OK)
            self._cutter = TopCutter(self._sending.lines)
        self._stuffer = _core.DotStuffer()

    def message_data(self, chunk: bytes) -> None:
        """Queue the next chunk of the message, dot-stuffed by the core."""
        if self._stuffer is None:
            raise LocalProtocolError("message_data() before begin_message()")
        if self._cutter is not None:
            chunk = self._cutter.feed(chunk)
        if chunk:
            self._out.append(self._stuffer.feed(chunk))

    @property
    def input_pending(self) -> bool:
        """Whether the client has already sent more (pipelined) input."""
        return self._reader.buffered > 0

    @property
    def message_complete(self) -> bool:
        """Whether TOP already has all it asked for (the adapter may stop reading)."""
        return self._cutter is not None and self._cutter.done

    def end_message(self) -> None:
        """Queue the end of the multi-line reply."""
        if self._stuffer is None:
            raise LocalProtocolError("end_message() before begin_message()")
        self._out.append(self._stuffer.finish())
        self._stuffer = None
        self._cutter = None
        self._sending = None
        self._move(Input.MESSAGE_DONE)

    def message_failed(self, reply: Reply = replies.SYS_TEMP) -> None:
        """The message could not be read; answer ``reply`` (before any data)."""
        if self._stuffer is not None:
            raise LocalProtocolError("message_failed() after begin_message()")
        self._sending = None
        self._reply(reply)
        self._move(Input.MESSAGE_DONE)

    def update_done(self, reply: Reply | None = None) -> None:
        """Deletions were applied (or failed with ``reply``); say goodbye."""
        self._move(Input.UPDATE_DONE)
        self._closed_reported = True
        if reply is None:
            count, _ = self._totals()
            reply = replies.OK.with_text(f"Logging out, {count} messages left.")
        self._reply(reply)
