"""Sans-IO POP2 server machine (RFC 937, "Post Office Protocol - Version 2").

POP2 is the historic predecessor of POP3: the client says ``HELO user
password``, may pick a folder with ``FOLD``, asks for a message's size with
``READ [n]``, transfers it with ``RETR`` (exactly that many octets, no
dot-stuffing) and then acknowledges with ``ACKS`` (keep), ``ACKD`` (delete)
or ``NACK`` (not received), each answered with the size of the next message.
Replies are ``+`` (ok), ``-`` (error), ``#n`` (message count) and ``=n``
(message size).

RFC 937 leaves open when a deletion takes effect; like POP3, mailcore applies
ACKD deletions only when the folder is left in good order (``QUIT`` or
``FOLD``), so a dropped connection deletes nothing.

Same pull interface as :mod:`mailcore.pop3.protocol`: ``receive_data``,
``next_event`` (an event, ``NEED_DATA`` or ``PAUSED``), ``data_to_send``.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from mailcore import _core
from mailcore.errors import LocalProtocolError
from mailcore.limits import POP3Limits
from mailcore.pop3.events import NeedData, Paused
from mailcore.pop3.protocol import parse_number

__all__ = [
    "POP2_TRANSITIONS",
    "Pop2Closed",
    "Pop2Connection",
    "Pop2Event",
    "Pop2Fold",
    "Pop2Input",
    "Pop2Login",
    "Pop2Quit",
    "Pop2Send",
    "Pop2State",
]


@dataclass(frozen=True, slots=True)
class Pop2Login:
    """HELO: check the password; answer ``accept_login(sizes)`` or ``reject_login()``."""

    username: str
    password: str


@dataclass(frozen=True, slots=True)
class Pop2Fold:
    """FOLD: apply ``deleted`` (1-based numbers) in the current folder, then open
    ``folder``; answer ``folder_opened(sizes)`` or ``folder_failed()``."""

    folder: str
    deleted: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Pop2Send:
    """RETR: stream message ``number`` of ``size`` octets with ``message_data()``,
    then call ``end_message()``."""

    number: int
    size: int


@dataclass(frozen=True, slots=True)
class Pop2Quit:
    """QUIT: apply ``deleted`` in the current folder, then call ``quit_done()``."""

    deleted: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Pop2Closed:
    """The session ended: "quit", "eof" (nothing deleted) or "errors"."""

    reason: str


Pop2Event = Pop2Login | Pop2Fold | Pop2Send | Pop2Quit | Pop2Closed
"""Every event :meth:`Pop2Connection.next_event` can return."""


class Pop2State(enum.Enum):
    """RFC 937's states (section "The POP2 states"), plus the adapter's turns."""

    AUTH = "AUTH"  # waiting for HELO
    LOGIN_CHECK = "LOGIN_CHECK"
    MBOX = "MBOX"  # a folder is open: READ, FOLD, QUIT
    ITEM = "ITEM"  # READ chose a message: RETR too
    SENDING = "SENDING"
    NEXT = "NEXT"  # message sent: ACKS, ACKD, NACK
    FOLDING = "FOLDING"
    UPDATE = "UPDATE"
    CLOSED = "CLOSED"


class Pop2Input(enum.Enum):
    """What moves a POP2 session."""

    HELO = "HELO"
    LOGIN_OK = "LOGIN_OK"
    LOGIN_FAIL = "LOGIN_FAIL"
    FOLD = "FOLD"
    FOLD_DONE = "FOLD_DONE"
    READ_SOME = "READ_SOME"  # READ of an existing message
    READ_NONE = "READ_NONE"  # READ past the end: "=0"
    RETR = "RETR"
    SENT = "SENT"
    ACK_SOME = "ACK_SOME"  # ACKS/ACKD/NACK with a message left
    ACK_NONE = "ACK_NONE"
    QUIT = "QUIT"
    QUIT_DONE = "QUIT_DONE"
    REFUSE = "REFUSE"  # no service (too many connections): "-" instead of a greeting


S, In = Pop2State, Pop2Input
POP2_TRANSITIONS: dict[tuple[Pop2State, Pop2Input], Pop2State] = {
    (S.AUTH, In.HELO): S.LOGIN_CHECK,
    (S.AUTH, In.QUIT): S.CLOSED,
    (S.AUTH, In.REFUSE): S.CLOSED,
    (S.LOGIN_CHECK, In.LOGIN_OK): S.MBOX,
    (S.LOGIN_CHECK, In.LOGIN_FAIL): S.CLOSED,
    (S.MBOX, In.READ_SOME): S.ITEM,
    (S.MBOX, In.READ_NONE): S.MBOX,
    (S.MBOX, In.FOLD): S.FOLDING,
    (S.MBOX, In.QUIT): S.UPDATE,
    (S.ITEM, In.READ_SOME): S.ITEM,
    (S.ITEM, In.READ_NONE): S.MBOX,
    (S.ITEM, In.RETR): S.SENDING,
    (S.ITEM, In.FOLD): S.FOLDING,
    (S.ITEM, In.QUIT): S.UPDATE,
    (S.SENDING, In.SENT): S.NEXT,
    (S.NEXT, In.ACK_SOME): S.ITEM,
    (S.NEXT, In.ACK_NONE): S.MBOX,
    (S.FOLDING, In.FOLD_DONE): S.MBOX,
    (S.UPDATE, In.QUIT_DONE): S.CLOSED,
}
del S, In

_ADAPTER_TURN = frozenset(
    {Pop2State.LOGIN_CHECK, Pop2State.SENDING, Pop2State.FOLDING, Pop2State.UPDATE}
)
# Which commands each state accepts; others get "-".
_ALLOWED = {
    Pop2State.AUTH: {"HELO", "QUIT"},
    Pop2State.MBOX: {"READ", "FOLD", "QUIT"},
    Pop2State.ITEM: {"READ", "RETR", "FOLD", "QUIT"},
    Pop2State.NEXT: {"ACKS", "ACKD", "NACK"},
}


class Pop2Connection:
    """One POP2 server session, without I/O."""

    def __init__(self, *, host: str, limits: POP3Limits | None = None) -> None:
        self.limits = limits if limits is not None else POP3Limits()
        self._host = host
        self._state = Pop2State.AUTH
        self._reader = _core.LineReader(
            self.limits.command_line, allow_bare_lf=self.limits.allow_bare_lf_commands
        )
        self._out: list[bytes] = []
        self._eof = False
        self._closed_reported = False
        self._sizes: tuple[int, ...] = ()
        self._current = 1
        self._deleted: set[int] = set()
        self._bad = 0
        self.account: str | None = None

    @property
    def state(self) -> Pop2State:
        """The current state."""
        return self._state

    def _move(self, what: Pop2Input) -> None:
        new = POP2_TRANSITIONS.get((self._state, what))
        if new is None:
            raise LocalProtocolError(f"{what.value} is not allowed in state {self._state.value}")
        self._state = new

    def _say(self, line: str) -> None:
        self._out.append(line.encode("utf-8") + b"\r\n")

    def greet(self) -> None:
        """Queue the greeting."""
        self._say(f"+ POP2 {self._host} server ready")

    def refuse(self, text: str) -> None:
        """Refuse service instead of greeting: "-" and close (RFC 937's negative reply)."""
        self._move(Pop2Input.REFUSE)
        self._say(f"- {text}")

    def receive_data(self, data: bytes) -> None:
        """Add bytes from the client; ``b""`` means EOF."""
        if not data:
            self._eof = True
        elif self._state is not Pop2State.CLOSED:
            self._reader.feed(data, 0)

    def data_to_send(self) -> bytes:
        """Every byte queued for the client since the last call."""
        out = b"".join(self._out)
        self._out.clear()
        return out

    def next_event(self) -> Pop2Event | NeedData | Paused:
        """Process buffered input up to the next event."""
        while True:
            if self._state is Pop2State.CLOSED:
                if self._closed_reported:
                    return NeedData.NEED_DATA
                self._closed_reported = True
                return Pop2Closed("eof" if self._eof else "errors")
            if self._state in _ADAPTER_TURN:
                return Paused.PAUSED
            items = self._reader.feed(b"", 1)
            if not items:
                if self._eof:
                    self._state = Pop2State.CLOSED
                    self._closed_reported = True
                    return Pop2Closed("eof")
                return NeedData.NEED_DATA
            event = self._line(items[0])
            if event is not None:
                if isinstance(event, Pop2Closed):
                    self._closed_reported = True
                return event

    def _error(self, text: str) -> Pop2Closed | None:
        self._say(f"- {text}")
        self._bad += 1
        if self._bad >= self.limits.bad_commands:
            self._say("- Too many bad commands")
            self._state = Pop2State.CLOSED
            return Pop2Closed("errors")
        return None

    def _size_reply(self) -> str:
        n = self._current
        if 1 <= n <= len(self._sizes) and n not in self._deleted:
            return f"={self._sizes[n - 1]} characters in message {n}"
        return "=0 no more messages"

    def _line(self, item: bytes | _core.LineError) -> Pop2Event | None:
        if isinstance(item, _core.LineError):
            return self._error("Bad command line")
        try:
            line = item.decode("utf-8")
        except UnicodeDecodeError:
            return self._error("Bad command line")
        keyword, *args = line.split(" ")
        keyword = keyword.upper()
        if keyword not in _ALLOWED.get(self._state, set()):
            return self._error(f"{keyword or 'Empty command'} not allowed now")
        if keyword == "HELO":
            if len(args) != 2 or not all(args):
                return self._error("HELO needs a user and a password")
            self._move(Pop2Input.HELO)
            return Pop2Login(args[0], args[1])
        if keyword == "QUIT":
            if self._state is Pop2State.AUTH:
                self._say("+ Bye")
                self._move(Pop2Input.QUIT)
                self._closed_reported = True
                return Pop2Closed("quit")
            self._move(Pop2Input.QUIT)
            return Pop2Quit(tuple(sorted(self._deleted)))
        if keyword == "FOLD":
            if len(args) != 1 or not args[0]:
                return self._error("FOLD needs a folder name")
            self._move(Pop2Input.FOLD)
            return Pop2Fold(args[0], tuple(sorted(self._deleted)))
        if keyword == "READ":
            if len(args) > 1:
                return self._error("READ takes one message number")
            if args:
                number = parse_number(args[0])
                if number is None:
                    return self._error("Bad message number")
                self._current = number
            reply = self._size_reply()
            self._move(Pop2Input.READ_NONE if reply.startswith("=0 ") else Pop2Input.READ_SOME)
            self._say(reply)
            return None
        if args:
            return self._error(f"{keyword} takes no argument")
        if keyword == "RETR":
            self._move(Pop2Input.RETR)
            return Pop2Send(self._current, self._sizes[self._current - 1])
        # ACKS, ACKD, NACK: RFC 937 answers each with the next message's size.
        if keyword == "ACKD":
            self._deleted.add(self._current)
        if keyword != "NACK":
            self._current += 1
        reply = self._size_reply()
        self._move(Pop2Input.ACK_NONE if reply.startswith("=0 ") else Pop2Input.ACK_SOME)
        self._say(reply)
        return None

    # ------------------------------------------------ adapter answers ---
    def _open(self, sizes: Sequence[int]) -> None:
        self._sizes = tuple(sizes)
        self._deleted.clear()
        self._current = 1
        self._say(f"#{len(self._sizes)} messages in folder")

    def accept_login(self, account: str, sizes: Sequence[int]) -> None:
        """HELO succeeded; ``sizes`` are the default folder's (INBOX) messages."""
        self._move(Pop2Input.LOGIN_OK)
        self.account = account
        self._open(sizes)

    def reject_login(self, text: str = "Authentication failed") -> None:
        """HELO failed: "-" and close (RFC 937: the server closes the connection)."""
        self._move(Pop2Input.LOGIN_FAIL)
        self._say(f"- {text}")

    def folder_opened(self, sizes: Sequence[int]) -> None:
        """FOLD succeeded: the new folder's messages."""
        self._move(Pop2Input.FOLD_DONE)
        self._open(sizes)

    def folder_failed(self) -> None:
        """FOLD named no folder of this account: "#0", the old folder is closed."""
        self._move(Pop2Input.FOLD_DONE)
        self._open(())

    def message_data(self, chunk: bytes) -> None:
        """Queue part of the message being sent (RFC 937: raw octets, counted)."""
        if self._state is not Pop2State.SENDING:
            raise LocalProtocolError("message_data() without a Pop2Send event")
        self._out.append(chunk)

    def end_message(self) -> None:
        """The whole message was queued; wait for ACKS/ACKD/NACK."""
        self._move(Pop2Input.SENT)

    def quit_done(self, ok: bool = True) -> None:
        """Deletions were applied (or not); say goodbye and close."""
        self._move(Pop2Input.QUIT_DONE)
        self._closed_reported = True
        self._say("+ Bye" if ok else "- Some messages could not be deleted")
