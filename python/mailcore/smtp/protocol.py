"""The SMTP and LMTP server as a sans-IO state machine.

No sockets, no event loop, no clock: bytes go in with :meth:`receive_data`,
events come out of :meth:`next_event`, and every byte the server sends,
whether decided by the adapter (:meth:`send`) or by the machine itself
(syntax errors, sequence errors, limits, 354, 334), leaves through the one
outbox :meth:`data_to_send`. The machine answers commands strictly in order,
one at a time: while an event waits for the adapter's reply it returns
``PAUSED`` and reads nothing further, so a pipelined batch (RFC 2920) is
answered in order however it was split across reads.

Framing is done in Rust: :class:`mailcore._core.LineReader` cuts command
lines, :class:`mailcore._core.DotReader` finds the end of a DATA body and
undoes dot-stuffing; BDAT chunks are counted here by length. Body lines over
``limits.text_line`` are found with ``bytes.rfind`` on each body chunk (about
one call per ``text_line`` octets).
Paths are parsed by :func:`mailcore._core.parse_mail_from` /
:func:`~mailcore._core.parse_rcpt_to`.

States and their legal moves are the two tables in :mod:`mailcore.smtp.states`,
:data:`TRANSITIONS` and :data:`ALLOWED`; the only move outside them is the return from a discarded
BDAT chunk to the state it interrupted.
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
import re
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from email.utils import format_datetime

from mailcore import _core
from mailcore.auth import sasl
from mailcore.errors import LimitExceeded, LocalProtocolError, ParseError
from mailcore.limits import SMTPLimits
from mailcore.smtp import replies as R
from mailcore.smtp.events import (
    NEED_DATA,
    PAUSED,
    Authenticated,
    AuthPassword,
    AuthScramSecrets,
    BodyChunk,
    BodyStart,
    Close,
    ConnectionClosed,
    Ehlo,
    Event,
    MailFrom,
    MessageAborted,
    MessageEnd,
    RcptTo,
    Reset,
    Signal,
    StartTLS,
)
from mailcore.smtp.params import MAIL_PARAM_RULES, RCPT_PARAM_RULES, decode_xtext
from mailcore.smtp.replies import Reply
from mailcore.smtp.states import ALLOWED, TRANSITIONS, Input, State

__all__ = [
    "ALLOWED",
    "TRANSITIONS",
    "Input",
    "ServerConnection",
    "State",
    "decode_xtext",
    "received_header",
]


HELP_COMMANDS = ["EHLO", "HELO", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "NOOP", "QUIT", "HELP"]
_HTTP_VERBS = frozenset((b"GET", b"POST", b"HEAD", b"PUT", b"CONNECT", b"OPTIONS", b"DELETE"))
_NOT_IMPLEMENTED = frozenset((b"EXPN", b"TURN", b"ETRN", b"SEND", b"SOML", b"SAML", b"ATRN"))


@functools.lru_cache(maxsize=8)
def _date_stamp(second: int) -> str:
    # Every message received in the same second carries the same date.
    return format_datetime(datetime.fromtimestamp(second, timezone.utc))


@functools.lru_cache(maxsize=256)
def _safe_helo(helo: str) -> str:
    return _HELO_UNSAFE.sub("?", helo) or "unknown"


_HELO_UNSAFE = re.compile(r"[^A-Za-z0-9.\-\[\]:_]")


def received_header(
    *,
    helo: str,
    peer_ip: str,
    hostname: str,
    protocol: str,
    queue_id: str,
    recipient: str | None,
    now: datetime | float,
) -> bytes:
    """Build a Received: trace header (RFC 5321 section 4.4), CRLF-terminated.

    ``protocol`` is a RFC 3848 "with" keyword (ESMTP, ESMTPS, ESMTPSA, LMTP,
    ...). ``recipient`` is named only for single-recipient messages, so one
    copy does not disclose the others (RFC 5321 7.2). ``now`` is a datetime
    or seconds since the epoch (``time.time()``, which costs the caller no
    datetime object); the date is written to the second.
    """
    stamp = _date_stamp(int(now if isinstance(now, float | int) else now.timestamp()))
    head = (
        f"Received: from {_safe_helo(helo)} ([{peer_ip}])\r\n"
        f"\tby {hostname} (mailcore) with {protocol} id {queue_id}"
    )
    if recipient is not None and "\n" not in recipient and "\r" not in recipient:
        text = f"{head}\r\n\tfor <{recipient}>; {stamp}\r\n"
    else:
        text = f"{head};\r\n\t{stamp}\r\n"
    return text.encode("utf-8")


_LINE_ENDS = re.compile(rb"\r\n|\r|\n")

_EHLO_REPLIES: dict[tuple[object, ...], tuple[SMTPLimits, Reply]] = {}
"""EHLO replies with their extension lists, by (text, configuration); bounded."""


class _Awaiting(enum.Enum):
    __hash__ = object.__hash__  # identity: members are singletons (C, not hash(name))

    EHLO = enum.auto()
    MAIL = enum.auto()
    RCPT = enum.auto()
    MESSAGE = enum.auto()
    AUTH_PASSWORD = enum.auto()
    AUTH_SCRAM = enum.auto()


class ServerConnection:
    """One SMTP (or LMTP) server session, without I/O.

    Args:
        hostname: the server's name, used in 221 and EHLO replies and SASL.
        limits: every bound and quirk (:class:`mailcore.limits.SMTPLimits`).
        lmtp: speak LMTP (RFC 2033): LHLO instead of EHLO/HELO, and one reply
            per accepted recipient after the body.
        tls_available: STARTTLS can be offered (the adapter has a context).
        tls_active: the session already runs over TLS (implicit TLS).
        auth_mechanisms: SASL mechanisms to offer (e.g. ``["PLAIN", "LOGIN"]``);
            empty when there is no credential source. Offered only inside
            TLS unless ``limits.auth_requires_tls`` is off.
    """

    def __init__(
        self,
        hostname: str,
        limits: SMTPLimits | None = None,
        *,
        lmtp: bool = False,
        tls_available: bool = False,
        tls_active: bool = False,
        auth_mechanisms: Sequence[str] = (),
    ) -> None:
        self.hostname = hostname
        self.limits = limits if limits is not None else SMTPLimits()
        self.lmtp = lmtp
        self.tls_available = tls_available
        self.tls_active = tls_active
        self.auth_mechanisms = [m.upper() for m in auth_mechanisms]
        self.authenticated: str | None = None
        self.extended = False
        self.errors = 0
        self._state = State.GREETING
        self._lines = self._new_line_reader()
        self._raw: list[bytes] = []
        self._raw_size = 0
        self._eof = False
        self._eof_reported = False
        self._out: list[bytes] = []
        self._events: deque[Event] = deque()
        self._awaiting: _Awaiting | None = None
        self._replies_due = 0
        # transaction
        self._rcpt_count = 0
        self._smtputf8 = False
        self._pending_utf8 = False
        self._used_bdat = False
        self._dot: _core.DotReader | None = None
        self._bdat_left = 0
        self._bdat_last = False
        self._bdat_size = 0
        self._bdat_chunk = 0
        self._bdat_reply: Reply | None = None
        # A bare CR or LF was seen in this BDAT body; the last chunk ended in CR.
        self._bdat_bare = False
        self._bdat_cr = False
        # Length of the body line read so far (across chunks), and whether a
        # line went over limits.text_line: then the body is read on (bounded
        # by message_size, not passed on) and refused at its end.
        self._line_len = 0
        self._long_line = False
        self._resume_state = State.READY
        # SASL
        self._mech: sasl.ServerMechanism | None = None
        self._auth_success: tuple[str, str] | None = None

    # ------------------------------------------------------------ public API

    @property
    def state(self) -> State:
        """The current :class:`State`."""
        return self._state

    @property
    def buffered(self) -> int:
        """Bytes received and not yet consumed (for the adapter's flow control)."""
        return self._raw_size + self._lines.buffered

    def receive_data(self, data: bytes) -> None:
        """Add bytes from the peer; ``b""`` means the peer closed its side."""
        if not data:
            self._eof = True
            return
        if self._state in (State.TLS_PENDING, State.CLOSED):
            # CVE-2011-0411: nothing sent in clear after STARTTLS may be
            # executed once TLS is up; after close nothing is read at all.
            return
        self._raw.append(data)
        self._raw_size += len(data)

    def next_event(self) -> Event | Signal:
        """Return the next event, ``NEED_DATA`` or ``PAUSED``."""
        while True:
            if self._events:
                return self._events.popleft()
            state = self._state
            if self._awaiting is not None or state in (State.GREETING, State.TLS_PENDING):
                return PAUSED
            if state is State.CLOSED:
                return PAUSED
            if state is State.DATA:
                progressed = self._read_data()
            elif state in (State.BDAT, State.BDAT_DISCARD):
                progressed = self._read_bdat()
            else:
                progressed = self._read_command()
            if not progressed and not self._events:
                if self._eof and not self._eof_reported:
                    self._eof_reported = True
                    self._move(Input.CLOSE)
                    return ConnectionClosed()
                return NEED_DATA

    def send(self, reply: Reply) -> None:
        """Answer the greeting or the event that waits for a reply."""
        awaiting = self._awaiting
        if self._state is State.GREETING:
            self._emit(reply, count=False)
            self._move(Input.GREETED if reply.code == 220 else Input.GREETING_REFUSED)
            return
        if awaiting is None:
            raise LocalProtocolError("no event is waiting for a reply")
        if awaiting is _Awaiting.EHLO:
            self._awaiting = None
            if reply.code == 250 and self.extended:
                reply = self._with_extensions(reply)
            if reply.code == 250:
                self._clear_transaction()
                self._move(Input.HELO)
            self._emit(reply)
        elif awaiting is _Awaiting.MAIL:
            self._awaiting = None
            if reply.code == 250:
                self._smtputf8 = self._pending_utf8
                self._move(Input.MAIL)
            self._emit(reply)
        elif awaiting is _Awaiting.RCPT:
            self._awaiting = None
            if reply.code in (250, 251):
                self._rcpt_count += 1
                self._move(Input.RCPT)
            self._emit(reply)
        elif awaiting is _Awaiting.MESSAGE:
            self._emit(reply, count=False)
            self._replies_due -= 1
            if self._replies_due == 0:
                self._awaiting = None
                self._clear_transaction()
                self._move(Input.BODY_DONE)
        else:
            raise LocalProtocolError(f"waiting for {awaiting.name}, not for a reply")

    def close(self, reply: Reply) -> None:
        """Send a final ``reply`` (421 on timeout or shutdown) and stop."""
        if self._state is not State.CLOSED:
            self._emit(reply, count=False)
            self._move(Input.CLOSE)

    def tls_started(self) -> None:
        """The TLS handshake after STARTTLS succeeded: start over from EHLO."""
        self._move(Input.TLS_DONE)
        self.tls_active = True
        self.extended = False
        self.authenticated = None
        self._clear_transaction()

    def auth_password_result(self, account: str | None) -> None:
        """Answer :class:`AuthPassword`: the canonical account, or ``None``."""
        if self._awaiting is not _Awaiting.AUTH_PASSWORD or self._mech is None:
            raise LocalProtocolError("no password check is pending")
        self._awaiting = None
        self._auth_step(self._mech.password_result(account))

    def auth_scram_secrets(self, secrets: tuple[bytes, int, bytes, bytes] | None) -> None:
        """Answer :class:`AuthScramSecrets` with the user's secrets, or ``None``."""
        if self._awaiting is not _Awaiting.AUTH_SCRAM or self._mech is None:
            raise LocalProtocolError("no SCRAM secret lookup is pending")
        self._awaiting = None
        self._auth_step(self._mech.provide_secrets(secrets))

    def auth_unavailable(self) -> None:
        """The credential source failed: 454 4.7.0, and the exchange ends."""
        if self._awaiting not in (_Awaiting.AUTH_PASSWORD, _Awaiting.AUTH_SCRAM):
            raise LocalProtocolError("no credential lookup is pending")
        self._awaiting = None
        self._end_auth(R.AUTH_TEMPORARY_FAILURE)

    def data_to_send(self) -> bytes:
        """Every byte the server must send, in order; empties the outbox."""
        out = b"".join(self._out)
        self._out.clear()
        return out

    # ------------------------------------------------------------ internals

    def _new_line_reader(self) -> _core.LineReader:
        # One reader for commands and SASL lines: the larger bound is kept in
        # Rust and the command bound is checked per line (RFC 4954 asks for
        # 12288 octets of SASL, RFC 5321 for 512 of command).
        longest = max(self.limits.command_line, self.limits.auth_line)
        return _core.LineReader(longest, allow_bare_lf=self.limits.allow_bare_lf_commands)

    def _move(self, what: Input) -> None:
        new = TRANSITIONS.get((self._state, what))
        if new is None:
            raise LocalProtocolError(f"{what.name} is not allowed in state {self._state.name}")
        self._state = new

    def _emit(self, reply: Reply, *, count: bool = True) -> None:
        self._out.append(reply.to_bytes(self.limits.enhanced_status_codes))
        if count and reply.code >= 500 and self._state is not State.CLOSED:
            self.errors += 1
            if self.errors >= self.limits.errors:
                self._out.append(R.TOO_MANY_ERRORS.to_bytes(self.limits.enhanced_status_codes))
                self._move(Input.CLOSE)
                self._events.append(Close(R.TOO_MANY_ERRORS))

    def _take_raw(self) -> bytes:
        if not self._raw:
            return b""
        data = self._raw[0] if len(self._raw) == 1 else b"".join(self._raw)
        self._raw.clear()
        self._raw_size = 0
        return data

    def _push_back(self, data: bytes) -> None:
        if data:
            self._raw.insert(0, data)
            self._raw_size += len(data)

    def _switch_to_body(self) -> None:
        # Bytes the line reader holds beyond the DATA/BDAT line belong to the body.
        self._push_back(self._lines.take_buffered())

    def _clear_transaction(self) -> None:
        self._rcpt_count = 0
        self._smtputf8 = False
        self._used_bdat = False
        self._bdat_size = 0
        self._dot = None

    def _with_extensions(self, reply: Reply) -> Reply:
        """The EHLO reply with the extension list (made once per configuration)."""
        # Keyed by the limits object's identity (checked, so a recycled id
        # cannot hand out another configuration's list): hashing the limits
        # dataclass would cost more than building the reply.
        limits = self.limits
        key = (
            reply.text,
            reply.enhanced,
            id(limits),
            self.tls_available,
            self.tls_active,
            *self._offered_mechanisms(),
        )
        cached = _EHLO_REPLIES.get(key)
        if cached is not None and cached[0] is limits:
            return cached[1]
        full = Reply(250, None, "\n".join([reply.text, *self._extensions()]))
        if len(_EHLO_REPLIES) >= 256:
            _EHLO_REPLIES.clear()
        _EHLO_REPLIES[key] = (limits, full)
        return full

    def _extensions(self) -> list[str]:
        caps = [
            "PIPELINING",
            f"SIZE {self.limits.message_size}",
            "8BITMIME",
            "SMTPUTF8",
            "CHUNKING",
            "DSN",
        ]
        if self.limits.enhanced_status_codes:
            caps.append("ENHANCEDSTATUSCODES")
        if self.tls_available and not self.tls_active:
            caps.append("STARTTLS")
        mechs = self._offered_mechanisms()
        if mechs:
            caps.append("AUTH " + " ".join(mechs))
        return caps

    def _offered_mechanisms(self) -> list[str]:
        if self.limits.auth_requires_tls and not self.tls_active:
            return []
        return self.auth_mechanisms

    # --------------------------------------------------------------- commands

    def _read_command(self) -> bool:
        if not self._raw and not self._lines.buffered:
            return False  # nothing new, nothing held: no line can come out
        got = self._lines.feed(self._take_raw(), 1)
        if not got:
            return False
        line = got[0]
        if isinstance(line, _core.LineError):
            too_long = line.kind is _core.LineErrorKind.TOO_LONG
            if self._state is State.AUTH:
                self._end_auth(R.AUTH_LINE_TOO_LONG if too_long else R.BARE_LINE_END_COMMAND)
            else:
                self._emit(R.LINE_TOO_LONG if too_long else R.BARE_LINE_END_COMMAND)
            return True
        if self._state is State.AUTH:
            if len(line) + 2 > self.limits.auth_line:
                self._end_auth(R.AUTH_LINE_TOO_LONG)
            else:
                self._auth_response(line)
            return True
        verb, _, arg = line.partition(b" ")
        verb = verb.upper()
        bound = self.limits.auth_line if verb == b"AUTH" else self.limits.command_line
        if len(line) + 2 > bound:
            self._emit(R.AUTH_LINE_TOO_LONG if verb == b"AUTH" else R.LINE_TOO_LONG)
            return True
        if b"\0" in line:
            self._emit(R.SYNTAX_ERROR.with_text("NUL in command"))
            return True
        if verb in _HTTP_VERBS:
            self._emit(R.HTTP_COMMAND, count=False)
            self._move(Input.CLOSE)
            self._events.append(Close(R.HTTP_COMMAND))
            return True
        if verb == b"BDAT":
            self._bdat(arg)
            return True
        allowed = ALLOWED.get(verb)
        if allowed is None:
            self._emit(R.COMMAND_NOT_IMPLEMENTED if verb in _NOT_IMPLEMENTED else R.SYNTAX_ERROR)
            return True
        if self._state not in allowed:
            self._emit(self._sequence_error(verb))
            return True
        handler = _COMMANDS[verb]
        handler(self, arg)
        return True

    def _sequence_error(self, verb: bytes) -> Reply:
        state = self._state
        if state is State.REFUSED:
            return R.BAD_SEQUENCE
        if state is State.NEED_HELO and verb not in (b"RCPT", b"DATA"):
            return R.NEED_EHLO
        if verb == b"MAIL":
            return R.NESTED_MAIL
        if verb == b"DATA":
            if state is State.MAIL:
                return R.NO_VALID_RECIPIENTS
            if state is State.BDAT_MORE:
                return R.DATA_NOT_WITH_BDAT
            return R.NEED_MAIL
        if verb == b"RCPT" and state in (State.READY, State.NEED_HELO):
            return R.NEED_MAIL
        return R.BAD_SEQUENCE

    def _cmd_helo(self, arg: bytes, *, extended: bool, verb: str) -> None:
        if self.lmtp != (verb == "LHLO"):
            self._emit(R.SYNTAX_ERROR)
            return
        try:
            words = arg.decode("utf-8").split()
        except UnicodeDecodeError:
            self._emit(R.BAD_UTF8)
            return
        if not words:
            self._emit(R.PARAM_SYNTAX.with_text(f"Syntax: {verb} hostname"))
            return
        self.extended = extended
        self._awaiting = _Awaiting.EHLO
        self._events.append(Ehlo(words[0], extended))

    def _cmd_ehlo(self, arg: bytes) -> None:
        self._cmd_helo(arg, extended=True, verb="EHLO")

    def _cmd_lhlo(self, arg: bytes) -> None:
        self._cmd_helo(arg, extended=True, verb="LHLO")

    def _cmd_helo_plain(self, arg: bytes) -> None:
        self._cmd_helo(arg, extended=False, verb="HELO")

    def _path_error(self, exc: ParseError | LimitExceeded, base: Reply) -> Reply:
        if exc.expected == _core.SMTP_EXPECTED_ASCII:
            return R.UTF8_NOT_ALLOWED
        if isinstance(exc, LimitExceeded):
            return base.with_text(f"{base.text}: too long ({exc.expected})")
        if exc.expected.startswith(_core.SMTP_PARAM_PREFIX):
            return R.PARAM_SYNTAX.with_text(
                f"Bad parameter at position {exc.offset}: expected {exc.expected}"
            )
        return base.with_text(f"{base.text}: expected {exc.expected} at position {exc.offset}")

    def _cmd_mail(self, arg: bytes) -> None:
        if arg[:5].upper() != b"FROM:":
            self._emit(R.PARAM_SYNTAX.with_text("Syntax: MAIL FROM:<address>"))
            return
        try:
            address, params = _core.parse_mail_from(arg[5:], smtputf8_allowed=True)
        except (ParseError, LimitExceeded) as exc:
            self._emit(self._path_error(exc, R.BAD_SENDER_SYNTAX))
            return
        problem = self._check_mail_params(params)
        if problem is not None:
            self._emit(problem)
            return
        self._pending_utf8 = "SMTPUTF8" in params
        self._awaiting = _Awaiting.MAIL
        self._events.append(MailFrom(address, params))

    def _check_mail_params(self, params: Mapping[str, str | None]) -> Reply | None:
        for key, value in params.items():
            rule = MAIL_PARAM_RULES.get(key)
            if rule is None:
                return R.PARAM_NOT_RECOGNIZED.with_text(f"Parameter {key} not recognized")
            valid, usage = rule
            if not valid(value):
                return R.PARAM_SYNTAX.with_text(usage)
            if key == "SIZE" and int(value or 0) > self.limits.message_size:
                return R.SIZE_EXCEEDED
        return None

    def _cmd_rcpt(self, arg: bytes) -> None:
        if arg[:3].upper() != b"TO:":
            self._emit(R.PARAM_SYNTAX.with_text("Syntax: RCPT TO:<address>"))
            return
        try:
            address, params = _core.parse_rcpt_to(arg[3:], smtputf8=self._smtputf8)
        except (ParseError, LimitExceeded) as exc:
            self._emit(self._path_error(exc, R.BAD_RECIPIENT_SYNTAX))
            return
        for key, value in params.items():
            rule = RCPT_PARAM_RULES.get(key)
            if rule is None:
                self._emit(R.PARAM_NOT_RECOGNIZED.with_text(f"Parameter {key} not recognized"))
                return
            if not rule[0](value):
                self._emit(R.PARAM_SYNTAX.with_text(rule[1]))
                return
        if self._rcpt_count >= self.limits.recipients:
            self._emit(R.TOO_MANY_RECIPIENTS, count=False)
            return
        self._awaiting = _Awaiting.RCPT
        self._events.append(RcptTo(address, params))

    def _cmd_data(self, arg: bytes) -> None:
        if arg.strip():
            self._emit(R.PARAM_SYNTAX.with_text("Syntax: DATA"))
            return
        self._emit(R.START_MAIL_INPUT, count=False)
        self._switch_to_body()
        self._dot = _core.DotReader(
            self.limits.message_size, normalize=self.limits.normalize_bare_lf_body
        )
        self._move(Input.DATA)
        self._start_lines()
        self._events.append(BodyStart(bdat=False))

    def _start_lines(self) -> None:
        self._line_len = 0
        self._long_line = False

    def _track_lines(self, chunk: bytes) -> None:
        """Note whether ``chunk`` holds or completes a line over ``limits.text_line``."""
        if self._long_line:
            return
        # RFC 5321 4.5.3.1.6 counts the CRLF: a line's octets up to its LF,
        # CR included, may number limit - 1.
        limit = self.limits.text_line - 1
        n = len(chunk)
        # Start of the current line; negative when it began in an earlier chunk.
        start = -self._line_len
        # Jump from line to line by the last LF within reach: each rfind (C,
        # memrchr) covers about `limit` octets whatever the line lengths, and
        # a stretch of limit + 1 octets with no LF is a line too long.
        rfind = chunk.rfind
        reach = start + limit + 1
        while reach <= n:
            lf = rfind(b"\n", start if start > 0 else 0, reach)
            if lf < 0:
                self._long_line = True
                return
            start = lf + 1
            reach = start + limit + 1
        lf = rfind(b"\n", start if start > 0 else 0)
        if lf >= 0:
            start = lf + 1
        self._line_len = n - start

    def _read_data(self) -> bool:
        dot = self._dot
        if dot is None:
            raise LocalProtocolError("DATA state without a reader")
        data = self._take_raw()
        if not data:
            return False
        body, done = dot.feed(data)
        if body and not dot.oversize:
            self._track_lines(body)
            if not self._long_line:
                self._events.append(BodyChunk(body))
        if done:
            self._push_back(dot.rest)
            if dot.oversize:
                self._fail_body(R.MESSAGE_TOO_BIG)
            elif dot.bare_line_end and not self.limits.normalize_bare_lf_body:
                self._fail_body(R.BARE_LINE_END_BODY)
            elif self._long_line:
                self._fail_body(R.TEXT_LINE_TOO_LONG)
            else:
                self._end_body(dot.size)
        return True

    def _fail_body(self, reply: Reply) -> None:
        self._clear_transaction()
        self._move(Input.BODY_FAILED)
        self._events.append(MessageAborted(reply))
        self._emit(reply)

    def _end_body(self, size: int) -> None:
        due = self._rcpt_count if self.lmtp else 1
        self._awaiting = _Awaiting.MESSAGE
        self._replies_due = due
        self._events.append(MessageEnd(size, due))

    def _bdat(self, arg: bytes) -> None:
        words = arg.split()
        if (
            not 1 <= len(words) <= 2
            or not words[0].isdigit()
            or len(words[0]) > 18
            or (len(words) == 2 and words[1].upper() != b"LAST")
        ):
            # The chunk cannot be skipped without its size, so its bytes would
            # be read as commands: end the session instead (RFC 3030 has no
            # way to resynchronise).
            self._emit(R.BDAT_SYNTAX, count=False)
            self._move(Input.CLOSE)
            self._events.append(Close(R.BDAT_SYNTAX))
            return
        size = int(words[0])
        last = len(words) == 2
        state = self._state
        refusal: Reply | None = None
        if state is State.REFUSED:
            refusal = R.BAD_SEQUENCE
        elif state is State.NEED_HELO:
            refusal = R.NEED_EHLO
        elif state is State.READY:
            refusal = R.NEED_MAIL
        elif state is State.MAIL:
            refusal = R.NO_VALID_RECIPIENTS
        self._switch_to_body()
        self._bdat_left = size
        self._bdat_last = last
        self._bdat_chunk = size
        if refusal is not None:
            self._bdat_reply = refusal
            self._resume_state = state
            self._move(Input.BDAT_DISCARD)
            return
        if state is State.RCPT:
            self._used_bdat = True
            self._bdat_size = 0
            self._bdat_bare = False
            self._bdat_cr = False
            self._start_lines()
            self._events.append(BodyStart(bdat=True))
        # Decided from the announced size, so a chunk is passed on whole or not at all.
        self._bdat_size += size
        self._move(Input.BDAT)

    def _bdat_line_ends(self, chunk: bytes) -> bytes:
        """Note bare CRs and LFs in a BDAT chunk (as DATA does); normalize them if asked.

        RFC 5322 lines end in CRLF and BDAT carries them verbatim; a bare
        line end is refused at the end of the data like DATA's (SMTP
        smuggling protection), or written as CRLF under
        ``normalize_bare_lf_body``. A CR that ends one chunk may meet its LF
        at the start of the next.
        """
        joined = self._bdat_cr and chunk[:1] == b"\n"
        if self.limits.normalize_bare_lf_body:
            if self._bdat_cr:
                chunk = b"\r" + chunk
            self._bdat_cr = chunk.endswith(b"\r")
            if self._bdat_cr:
                chunk = chunk[:-1]
            if b"\r" in chunk or b"\n" in chunk:
                chunk = _LINE_ENDS.sub(b"\r\n", chunk)
            return chunk
        if self._bdat_bare or not chunk:
            return chunk
        pairs = chunk.count(b"\r\n") + joined
        lf, cr = chunk.count(b"\n"), chunk.count(b"\r")
        ends_cr = chunk.endswith(b"\r")
        if lf != pairs or cr - ends_cr != pairs - joined or (self._bdat_cr and not joined):
            self._bdat_bare = True
        self._bdat_cr = ends_cr
        return chunk

    def _read_bdat(self) -> bool:
        if self._bdat_left:
            data = self._take_raw()
            if not data:
                return False
            chunk, rest = data[: self._bdat_left], data[self._bdat_left :]
            self._push_back(rest)
            self._bdat_left -= len(chunk)
            if self._state is State.BDAT and self._bdat_size <= self.limits.message_size:
                chunk = self._bdat_line_ends(chunk)
                self._track_lines(chunk)
                if not self._long_line and chunk:
                    self._events.append(BodyChunk(chunk))
            if self._bdat_left:
                return True
        if self._state is State.BDAT_DISCARD:
            reply = self._bdat_reply if self._bdat_reply is not None else R.BAD_SEQUENCE
            # The one move outside TRANSITIONS: back to where the refused chunk began.
            self._state = self._resume_state
            self._emit(reply)
        elif self._bdat_size > self.limits.message_size:
            self._fail_body(R.MESSAGE_TOO_BIG)
        elif self._bdat_last and self._bdat_cr and not self.limits.normalize_bare_lf_body:
            self._fail_body(R.BARE_LINE_END_BODY)  # the message ends in a bare CR
        elif self._bdat_bare and self._bdat_last and not self.limits.normalize_bare_lf_body:
            # As for DATA: refused at the end of the data, earlier chunks acknowledged.
            self._fail_body(R.BARE_LINE_END_BODY)
        elif self._long_line and self._bdat_last:
            # Refused at the end of the data, like DATA; earlier chunks are
            # acknowledged so the client gets to LAST.
            self._fail_body(R.TEXT_LINE_TOO_LONG)
        elif self._bdat_last:
            if self._bdat_cr:  # normalizing: the CR held back ends a line
                self._bdat_cr = False
                self._events.append(BodyChunk(b"\r\n"))
            self._end_body(self._bdat_size)
        else:
            self._emit(R.bdat_received(self._bdat_chunk))
            self._move(Input.CHUNK_DONE)
        return True

    def _cmd_rset(self, arg: bytes) -> None:
        if arg.strip():
            self._emit(R.PARAM_SYNTAX.with_text("Syntax: RSET"))
            return
        self._clear_transaction()
        self._move(Input.RSET)
        self._emit(R.OK)
        self._events.append(Reset())

    def _cmd_noop(self, arg: bytes) -> None:
        self._emit(R.OK)

    def _cmd_quit(self, arg: bytes) -> None:
        reply = R.closing(self.hostname)
        self._emit(reply, count=False)
        self._move(Input.CLOSE)
        self._events.append(Close(reply))

    def _cmd_help(self, arg: bytes) -> None:
        if self.lmtp:
            commands = ["LHLO", *(c for c in HELP_COMMANDS if c not in ("EHLO", "HELO"))]
        else:
            commands = list(HELP_COMMANDS)
        if self.tls_available and not self.tls_active:
            commands.append("STARTTLS")
        if self._offered_mechanisms():
            commands.append("AUTH")
        commands.append("VRFY")
        self._emit(R.help_reply(commands))

    def _cmd_vrfy(self, arg: bytes) -> None:
        if not arg.strip():
            self._emit(R.PARAM_SYNTAX.with_text("Syntax: VRFY address"))
            return
        # RFC 5321 3.5.3: 252 says nothing about whether the user exists.
        self._emit(R.CANNOT_VRFY)

    def _cmd_starttls(self, arg: bytes) -> None:
        if arg.strip():
            self._emit(R.PARAM_SYNTAX.with_text("Syntax: STARTTLS"))
            return
        if self.tls_active:
            self._emit(R.TLS_ALREADY_ACTIVE)
            return
        if not self.tls_available:
            self._emit(R.TLS_NOT_AVAILABLE)
            return
        self._emit(R.START_TLS, count=False)
        # CVE-2011-0411: whatever the client pipelined behind STARTTLS was sent
        # in clear and must never run as a command.
        self._lines = self._new_line_reader()
        self._raw.clear()
        self._raw_size = 0
        self._move(Input.STARTTLS)
        self._events.append(StartTLS())

    # ------------------------------------------------------------------ AUTH

    def _cmd_auth(self, arg: bytes) -> None:
        if not self.auth_mechanisms:
            self._emit(R.AUTH_NOT_SUPPORTED)
            return
        if self.authenticated is not None:
            self._emit(R.AUTH_ALREADY)
            return
        words = arg.split()
        if not 1 <= len(words) <= 2:
            self._emit(R.PARAM_SYNTAX.with_text("Syntax: AUTH mechanism [initial-response]"))
            return
        name = words[0].decode("ascii", "replace").upper()
        if name not in self.auth_mechanisms:
            self._emit(R.AUTH_UNKNOWN_MECHANISM)
            return
        if name not in self._offered_mechanisms():
            self._emit(R.AUTH_ENCRYPTION_REQUIRED)
            return
        initial: bytes | None = None
        if len(words) == 2:
            decoded = self._b64(words[1])
            if decoded is None:
                self._emit(R.AUTH_BAD_BASE64)
                return
            initial = decoded
        self._mech = sasl.server_mechanism(name, realm_host=self.hostname)
        self._auth_success = None
        self._move(Input.AUTH)
        self._auth_step(self._mech.start(initial))

    @staticmethod
    def _b64(word: bytes) -> bytes | None:
        # RFC 4954: "=" stands for an empty initial response.
        if word == b"=":
            return b""
        try:
            return base64.b64decode(word, validate=True)
        except (binascii.Error, ValueError):
            return None

    def _auth_step(self, step: sasl.SASLStep) -> None:
        if isinstance(step, sasl.Challenge):
            self._out.append(b"334 " + base64.b64encode(step.data) + b"\r\n")
        elif isinstance(step, sasl.CheckPassword):
            self._awaiting = _Awaiting.AUTH_PASSWORD
            self._events.append(AuthPassword(step.authcid, step.password, step.authzid))
        elif isinstance(step, sasl.NeedScramSecrets):
            self._awaiting = _Awaiting.AUTH_SCRAM
            self._events.append(AuthScramSecrets(step.authcid))
        elif isinstance(step, sasl.Success):
            if step.final:
                # RFC 4954 section 4: additional data with success goes in a
                # 334 challenge; the client answers with an empty line.
                self._auth_success = (step.account, step.authzid)
                self._out.append(b"334 " + base64.b64encode(step.final) + b"\r\n")
            else:
                self._succeed(step.account, step.authzid)
        else:
            # Failure, or a step this server never asks for (CRAM secrets).
            self._end_auth(R.AUTH_FAILED)

    def _succeed(self, account: str, authzid: str) -> None:
        self.authenticated = account
        self._mech = None
        self._emit(R.AUTH_SUCCESS)
        self._move(Input.AUTH_DONE)
        self._events.append(Authenticated(account, authzid))

    def _end_auth(self, reply: Reply) -> None:
        self._mech = None
        self._auth_success = None
        self._move(Input.AUTH_DONE)
        self._emit(reply)

    def _auth_response(self, line: bytes) -> None:
        if line == b"*":
            self._end_auth(R.AUTH_CANCELLED)
            return
        if self._auth_success is not None:
            account, authzid = self._auth_success
            self._auth_success = None
            self._succeed(account, authzid)
            return
        data = self._b64(line.strip())
        if data is None or self._mech is None:
            self._end_auth(R.AUTH_BAD_BASE64)
            return
        self._auth_step(self._mech.step(data))


_COMMANDS = {
    b"EHLO": ServerConnection._cmd_ehlo,
    b"HELO": ServerConnection._cmd_helo_plain,
    b"LHLO": ServerConnection._cmd_lhlo,
    b"MAIL": ServerConnection._cmd_mail,
    b"RCPT": ServerConnection._cmd_rcpt,
    b"DATA": ServerConnection._cmd_data,
    b"RSET": ServerConnection._cmd_rset,
    b"NOOP": ServerConnection._cmd_noop,
    b"QUIT": ServerConnection._cmd_quit,
    b"HELP": ServerConnection._cmd_help,
    b"VRFY": ServerConnection._cmd_vrfy,
    b"STARTTLS": ServerConnection._cmd_starttls,
    b"AUTH": ServerConnection._cmd_auth,
}
