"""Sans-IO IMAP4rev1 / IMAP4rev2 server machine (RFC 3501, RFC 9051).

The adapter feeds received bytes with :meth:`ServerConnection.receive_data`
(``b""`` at EOF), calls :meth:`~ServerConnection.next_event` until it returns
:data:`~mailcore.imap.events.NeedData.NEED_DATA`, and writes
:meth:`~ServerConnection.data_to_send` after every call. Framing is the Rust
:class:`~mailcore._core.ImapFragmenter`; the grammar is
:func:`~mailcore.imap.command.parse_command`.

The machine answers on its own what needs no store: CAPABILITY, LOGOUT, ID,
ENABLE, NAMESPACE, syntax errors, literal decisions (``+ Ready``,
``NO [TOOBIG]``), commands in the wrong state, the STARTTLS and IDLE
continuations and SASL framing. Everything else is an event
(:mod:`mailcore.imap.events`); while the adapter works on one,
``next_event`` returns :data:`~mailcore.imap.events.Paused.PAUSED` and later
pipelined commands wait in the fragmenter, which is also why plaintext sent
behind STARTTLS can be discarded: it was never read.

States (RFC 9051 section 3) and the moves between them are in
:data:`TRANSITIONS`; an illegal move raises
:class:`~mailcore.errors.LocalProtocolError`.
"""

from __future__ import annotations

import base64
import binascii
import enum
from collections.abc import Sequence

from mailcore.errors import LocalProtocolError
from mailcore.imap import command as cmd
from mailcore.imap import events as ev
from mailcore.limits import ImapLimits

__all__ = ["BASE_CAPABILITIES", "TRANSITIONS", "ServerConnection", "State"]

BASE_CAPABILITIES = (
    "IMAP4rev1",
    "IMAP4rev2",
    "LITERAL+",
    "SASL-IR",
    "ENABLE",
    "IDLE",
    "NAMESPACE",
    "UIDPLUS",
    "MOVE",
    "UNSELECT",
    "CHILDREN",
    "SPECIAL-USE",
    "LIST-EXTENDED",
    "LIST-STATUS",
    "ESEARCH",
    "SEARCHRES",
    "STATUS=SIZE",
    "UTF8=ACCEPT",
    "ID",
)
"""Capabilities advertised in every state."""

# Mechanisms that carry the password itself; offered only where LOGIN is.
_PLAINTEXT_MECHANISMS = frozenset({"PLAIN", "LOGIN"})
# What ENABLE can switch on (RFC 5161: others are ignored silently).
_ENABLEABLE = {"IMAP4REV2": "IMAP4rev2", "UTF8=ACCEPT": "UTF8=ACCEPT"}


class State(enum.Enum):
    """RFC 9051 section 3 states."""

    NOT_AUTHENTICATED = "NOT_AUTHENTICATED"
    AUTHENTICATED = "AUTHENTICATED"
    SELECTED = "SELECTED"
    LOGOUT = "LOGOUT"


class Input(enum.Enum):
    """What moves a session between states."""

    LOGIN_OK = "LOGIN_OK"
    SELECT_OK = "SELECT_OK"
    UNSELECT = "UNSELECT"
    LOGOUT = "LOGOUT"


S, In = State, Input
TRANSITIONS: dict[tuple[State, Input], State] = {
    (S.NOT_AUTHENTICATED, In.LOGIN_OK): S.AUTHENTICATED,
    (S.AUTHENTICATED, In.SELECT_OK): S.SELECTED,
    (S.SELECTED, In.SELECT_OK): S.SELECTED,
    (S.SELECTED, In.UNSELECT): S.AUTHENTICATED,
    # A failed SELECT while selected leaves the session authenticated.
    (S.AUTHENTICATED, In.UNSELECT): S.AUTHENTICATED,
    (S.NOT_AUTHENTICATED, In.LOGOUT): S.LOGOUT,
    (S.AUTHENTICATED, In.LOGOUT): S.LOGOUT,
    (S.SELECTED, In.LOGOUT): S.LOGOUT,
    (S.LOGOUT, In.LOGOUT): S.LOGOUT,
}
del S, In

_ANY_STATE = (cmd.Capability, cmd.Noop, cmd.Logout, cmd.Id)
_NOT_AUTHENTICATED = (cmd.StartTLS, cmd.Authenticate, cmd.Login)
_AUTHENTICATED = (
    cmd.Enable,
    cmd.Select,
    cmd.Create,
    cmd.Delete,
    cmd.Rename,
    cmd.Subscribe,
    cmd.Unsubscribe,
    cmd.List,
    cmd.Lsub,
    cmd.Namespace,
    cmd.Status,
    cmd.Append,
    cmd.Idle,
)
_SELECTED = (
    cmd.Check,
    cmd.Close,
    cmd.Unselect,
    cmd.Expunge,
    cmd.Search,
    cmd.Fetch,
    cmd.Store,
    cmd.Copy,
    cmd.Move,
)


def _b64(data: bytes) -> bytes | None:
    """Strict base64 of one SASL line (short; the standard library is enough)."""
    try:
        return base64.b64decode(data, validate=True)
    except binascii.Error:
        return None


class ServerConnection:
    """One IMAP server session, without I/O.

    Args:
        hostname: named in the greeting.
        limits: framing, grammar and error-count bounds.
        tls_active: the connection is TLS already (implicit TLS, port 993).
        tls_available: STARTTLS may be offered.
        allow_plaintext_login: LOGIN and PLAIN/LOGIN SASL without TLS.
        mechanisms: SASL mechanisms the adapter can run.
    """

    def __init__(
        self,
        *,
        hostname: str = "localhost",
        limits: ImapLimits | None = None,
        tls_active: bool = False,
        tls_available: bool = False,
        allow_plaintext_login: bool = False,
        mechanisms: Sequence[str] = ("PLAIN",),
    ) -> None:
        self.hostname = hostname
        self.limits = limits if limits is not None else ImapLimits()
        self.tls_active = tls_active
        self.tls_available = tls_available
        self.allow_plaintext_login = allow_plaintext_login
        self.mechanisms = tuple(m.upper() for m in mechanisms)
        self.state = State.NOT_AUTHENTICATED
        self.account: str | None = None
        #: Extensions switched on by ENABLE (``IMAP4rev2``, ``UTF8=ACCEPT``).
        self.enabled: set[str] = set()
        # Sized for LOGIN/AUTHENTICATE until login (see cmd.new_fragmenter).
        self._frag = cmd.new_fragmenter(self.limits, before_login=True)
        self._out: list[bytes] = []
        self._busy: str | None = None  # tag of the command the adapter works on
        self._sasl: str | None = None  # tag of an AUTHENTICATE waiting for a line
        self._idle: str | None = None  # tag of a running IDLE
        self._tls_pending = False
        self._eof = False
        self._closed = False
        self._errors = 0

    # ------------------------------------------------------------- wire side
    def receive_data(self, data: bytes) -> None:
        """Bytes from the client; ``b""`` means the client closed."""
        if not data:
            self._eof = True
            if self._idle is not None or self._sasl is not None:
                self._closed = True
            return
        if self._tls_pending:
            # Plaintext after STARTTLS, before the handshake: never a command.
            return
        self._frag.feed(data)

    def _too_large_before_login(self) -> None:
        # RFC 7888 section 4: a server given a non-synchronising literal it will
        # not take either reads and discards it and rejects the command, or
        # says BYE and closes. Before login we close, as Dovecot's imap-login
        # does ("* BYE" on a literal over its limit): the peer is anonymous,
        # LOGIN/AUTHENTICATE never need more than unauthenticated_literal, and
        # reading megabytes only to throw them away helps nobody. Nothing of
        # the literal is kept either way (the fragmenter skips it).
        self._write("* BYE [TOOBIG] Literal too large before authentication\r\n")
        self.state = State.LOGOUT
        self._closed = True

    def data_to_send(self) -> bytes:
        """Everything written since the last call."""
        out = b"".join(self._out)
        self._out.clear()
        return out

    @property
    def input_pending(self) -> bool:
        """Whether received bytes wait behind the current command (pipelining)."""
        return self._frag.pending > 0

    @property
    def rev2(self) -> bool:
        """The client enabled IMAP4rev2 (no \\Recent, ESEARCH replies, UTF-8 names)."""
        return "IMAP4rev2" in self.enabled

    @property
    def utf8(self) -> bool:
        """Mailbox names are UTF-8 rather than modified UTF-7."""
        return "UTF8=ACCEPT" in self.enabled or self.rev2

    @property
    def secure(self) -> bool:
        """Whether plaintext passwords may be sent now."""
        return self.tls_active or self.allow_plaintext_login

    def capabilities(self) -> list[str]:
        """What CAPABILITY answers in the current state."""
        caps = list(BASE_CAPABILITIES)
        if self.state is State.NOT_AUTHENTICATED:
            if self.tls_available and not self.tls_active:
                caps.append("STARTTLS")
            if not self.secure:
                caps.append("LOGINDISABLED")
            caps.extend(f"AUTH={m}" for m in self._offered_mechanisms())
        return caps

    def _offered_mechanisms(self) -> list[str]:
        return [m for m in self.mechanisms if self.secure or m not in _PLAINTEXT_MECHANISMS]

    def greet(self) -> None:
        """Write the greeting (with capabilities, as RFC 9051 7.1 recommends)."""
        caps = " ".join(self.capabilities())
        self._write(f"* OK [CAPABILITY {caps}] {self.hostname} IMAP server ready\r\n")

    def refuse(self, text: str) -> None:
        """Greet with BYE (too many connections) and end the session."""
        self._write(f"* BYE {text}\r\n")
        self.state = State.LOGOUT
        self._closed = True

    def autologout(self) -> None:
        """The autologout timer ran out (RFC 9051 5.4): say BYE and end."""
        self._write("* BYE Autologout; idle for too long\r\n")
        self._move(Input.LOGOUT)
        self._closed = True

    # --------------------------------------------------------- adapter side
    def send(self, data: bytes) -> None:
        """Write untagged responses (or anything raw) the adapter built."""
        self._out.append(data)

    def untagged(self, text: str) -> None:
        """Write ``* text``."""
        self._write(f"* {text}\r\n")

    def complete(self, tag: str, status: str, text: str) -> None:
        """End the command the adapter was working on: ``tag OK|NO|BAD text``."""
        if self._busy != tag:
            raise LocalProtocolError(f"no command {tag!r} is waiting for an answer")
        self._busy = None
        self._write(f"{tag} {status} {text}\r\n")

    def login_succeeded(self, tag: str, account: str) -> None:
        """LOGIN/AUTHENTICATE succeeded: OK with the new capabilities."""
        self._move(Input.LOGIN_OK)
        # The commands still to come (pipelined ones included) may be APPENDs.
        self._frag.set_limits(*cmd.fragmenter_limits(self.limits))
        self.account = account
        self._sasl = None
        caps = " ".join(self.capabilities())
        self._busy = tag
        self.complete(tag, "OK", f"[CAPABILITY {caps}] Logged in")

    def login_failed(
        self, tag: str, text: str = "[AUTHENTICATIONFAILED] Authentication failed"
    ) -> None:
        """LOGIN/AUTHENTICATE failed (the adapter already waited the throttle's delay)."""
        self._sasl = None
        self._busy = tag
        self.complete(tag, "NO", text)

    def challenge(self, tag: str, data: bytes) -> None:
        """Send a SASL challenge (``+ base64``) and wait for the client's line."""
        if self._busy != tag:
            raise LocalProtocolError("challenge without an AUTHENTICATE in progress")
        self._out.append(b"+ " + base64.b64encode(data) + b"\r\n")
        self._sasl = tag
        self._frag.expect_line()

    def tls_started(self) -> None:
        """The TLS handshake after STARTTLS finished."""
        if not self._tls_pending:
            raise LocalProtocolError("tls_started without STARTTLS")
        self._tls_pending = False
        self.tls_active = True

    def selected(self) -> None:
        """SELECT/EXAMINE succeeded (call before ``complete``)."""
        self._move(Input.SELECT_OK)

    def unselected(self) -> None:
        """CLOSE, UNSELECT or a failed SELECT left the selected state."""
        self._move(Input.UNSELECT)

    # -------------------------------------------------------------- machine
    def next_event(self) -> ev.Event | ev.NeedData | ev.Paused:
        """The next thing the adapter must do."""
        if self._closed:
            return ev.Closed()
        if self._busy is not None and self._sasl is None and self._idle is None:
            return ev.Paused.PAUSED
        if self._tls_pending:
            return ev.Paused.PAUSED
        while True:
            frag = self._frag.next()
            if frag is None:
                if (
                    self.state is State.NOT_AUTHENTICATED
                    and self._frag.poisoned == "literal-too-long"
                ):
                    # Its header line is read and its octets are being skipped.
                    self._too_large_before_login()
                    return ev.Closed()
                if self._eof:
                    self._closed = True
                    return ev.Closed()
                return ev.NeedData.NEED_DATA
            event = self._fragment(frag)
            if event is not None:
                return event
            if self._closed:
                return ev.Closed()

    def _fragment(self, frag: cmd.Fragment) -> ev.Event | None:
        if isinstance(frag, cmd.RawLine):
            return self._raw_line(frag.data)
        if isinstance(frag, cmd.LiteralAnnounced):
            self._literal(frag)
            return None
        if isinstance(frag, cmd.Poisoned):
            if frag.reason == "literal-too-long" and self.state is State.NOT_AUTHENTICATED:
                self._too_large_before_login()
                return None
            what = {
                "command-too-long": "Command line too long",
                "literal-too-long": "Literal too large",
                "bad-literal": "Malformed literal",
            }[frag.reason]
            self._bad(frag.tag, what)
            return None
        try:
            command = cmd.parse_command(frag.data, self.limits)
        except cmd.CommandSyntaxError as e:
            self._bad(e.tag, f"Error in IMAP command: {e.bad_text()}")
            return None
        return self._command(command)

    def _literal(self, frag: cmd.LiteralAnnounced) -> None:
        tag = frag.tag or "*"
        if (
            self.state is State.NOT_AUTHENTICATED
            and frag.length > self.limits.unauthenticated_literal
        ):
            # Before login only LOGIN/AUTHENTICATE take literals, and short ones.
            self._write(f"{tag} BAD Literal too large before authentication\r\n")
            self._frag.reject_literal()
            self._count_error()
        elif not frag.fits:
            self._write(
                f"{tag} NO [TOOBIG] Literal larger than {self.limits.literal_size} octets\r\n"
            )
            self._frag.reject_literal()
        else:
            self._write("+ Ready for literal data\r\n")
            self._frag.accept_literal()

    def _raw_line(self, data: bytes) -> ev.Event | None:
        line = data.rstrip(b"\r\n")
        if self._idle is not None:
            tag, self._idle = self._idle, None
            self._busy = None
            if line.upper() == b"DONE":
                self._write(f"{tag} OK IDLE terminated\r\n")
            else:
                self._write(f"{tag} BAD Expected DONE\r\n")
            return ev.IdleDone(tag)
        if self._sasl is not None:
            tag, self._sasl = self._sasl, None
            if line == b"*":
                self._busy = None
                self._write(f"{tag} BAD AUTHENTICATE cancelled\r\n")
                return ev.AuthCancelled(tag)
            decoded = _b64(line)
            if decoded is None:
                self._busy = None
                self._write(f"{tag} BAD Invalid base64 in SASL response\r\n")
                return ev.AuthCancelled(tag)
            return ev.AuthResponse(tag, decoded)
        raise LocalProtocolError("a raw line nobody asked for")  # pragma: no cover

    def _command(self, c: cmd.Command) -> ev.Event | None:
        tag = c.tag
        allowed: tuple[type, ...] = _ANY_STATE
        if self.state is State.NOT_AUTHENTICATED:
            allowed = _ANY_STATE + _NOT_AUTHENTICATED
        elif self.state is State.AUTHENTICATED:
            allowed = _ANY_STATE + _AUTHENTICATED
        elif self.state is State.SELECTED:
            allowed = _ANY_STATE + _AUTHENTICATED + _SELECTED
        if not isinstance(c, allowed):
            name = type(c).__name__.upper()
            if self.state is State.NOT_AUTHENTICATED:
                why = "Not logged in"
            elif isinstance(c, _SELECTED):
                why = "No mailbox selected"
            else:
                why = "Already logged in"
            self._bad(tag, f"{name} not allowed now: {why}")
            return None
        self._errors = 0
        if isinstance(c, cmd.Capability):
            self._write(
                f"* CAPABILITY {' '.join(self.capabilities())}\r\n{tag} OK CAPABILITY completed\r\n"
            )
            return None
        if isinstance(c, cmd.Logout):
            self._write(f"* BYE {self.hostname} logging out\r\n{tag} OK LOGOUT completed\r\n")
            self._move(Input.LOGOUT)
            self._closed = True
            return ev.Closed()
        if isinstance(c, cmd.Id):
            self._write(
                f'* ID ("name" "mailcore" "vendor" "mailcore")\r\n{tag} OK ID completed\r\n'
            )
            return None
        if isinstance(c, cmd.Namespace):
            self._write(f'* NAMESPACE (("" "/")) NIL NIL\r\n{tag} OK NAMESPACE completed\r\n')
            return None
        if isinstance(c, cmd.Enable):
            self._enable(c)
            return None
        if isinstance(c, cmd.StartTLS):
            if not self.tls_available or self.tls_active:
                self._bad(tag, "STARTTLS not available")
                return None
            self._write(f"{tag} OK Begin TLS negotiation now\r\n")
            # RFC 9051 6.2.1 / CVE-2011-0411: whatever the client pipelined
            # behind STARTTLS arrived in plaintext; drop it unread.
            self._frag = cmd.new_fragmenter(self.limits, before_login=True)
            self._tls_pending = True
            return ev.StartTLS(tag)
        if isinstance(c, cmd.Login):
            if not self.secure:
                self._write(
                    f"{tag} NO [PRIVACYREQUIRED] LOGIN is disabled without TLS; use STARTTLS\r\n"
                )
                return None
            self._busy = tag
            user = c.username.decode("utf-8", "surrogateescape")
            password = c.password.decode("utf-8", "surrogateescape")
            return ev.LoginRequest(tag, user, password)
        if isinstance(c, cmd.Authenticate):
            mech = c.mechanism.upper()
            if mech not in self._offered_mechanisms():
                self._write(f"{tag} NO [CANNOT] Unsupported authentication mechanism\r\n")
                return None
            initial: bytes | None = None
            if c.initial_response is not None:
                initial = b"" if c.initial_response in (b"", b"=") else _b64(c.initial_response)
                if initial is None:
                    self._bad(tag, "Invalid base64 in initial response")
                    return None
            self._busy = tag
            return ev.AuthStart(tag, mech, initial)
        if isinstance(c, cmd.Idle):
            self._busy = tag
            self._idle = tag
            self._write("+ idling\r\n")
            self._frag.expect_line()
            return ev.IdleStart(tag)
        self._busy = tag
        return ev.Request(c)

    def _enable(self, c: cmd.Enable) -> None:
        newly = []
        for name in c.capabilities:
            cap = _ENABLEABLE.get(name.upper())
            if cap is not None and cap not in self.enabled:
                self.enabled.add(cap)
                newly.append(cap)
        self._write(f"* ENABLED {' '.join(newly)}\r\n".replace("ENABLED \r\n", "ENABLED\r\n"))
        self._write(f"{c.tag} OK ENABLE completed\r\n")

    # -------------------------------------------------------------- helpers
    def _write(self, text: str) -> None:
        self._out.append(text.encode("utf-8"))

    def _bad(self, tag: str | None, text: str) -> None:
        self._write(f"{tag or '*'} BAD {text}\r\n")
        self._count_error()

    def _count_error(self) -> None:
        # Like Dovecot's 10 bad commands in a row: a client that only sends
        # garbage is disconnected instead of being answered forever.
        self._errors += 1
        if self._errors >= self.limits.bad_commands:
            self._write("* BYE Too many invalid commands\r\n")
            self.state = State.LOGOUT
            self._closed = True

    def _move(self, what: Input) -> None:
        new = TRANSITIONS.get((self.state, what))
        if new is None:
            raise LocalProtocolError(f"{what.value} is not legal in {self.state.value}")
        self.state = new
