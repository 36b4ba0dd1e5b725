"""States of the SMTP server machine and the two tables that say what is legal.

:data:`TRANSITIONS` maps ``(state, input)`` to the next state; :data:`ALLOWED`
says in which states each command runs. ``mailcore.smtp.protocol`` moves only
along these tables (one exception, documented there: the return from a
refused BDAT chunk to the state it interrupted).
"""

from __future__ import annotations

import enum

__all__ = ["ALLOWED", "TRANSITIONS", "Input", "State"]


class State(enum.Enum):
    """Where the server is in the session."""

    # Members are singletons: identity hashing (C) instead of Enum's hash(name)
    # (Python), for the transition table and state sets looked up per command.
    __hash__ = object.__hash__

    GREETING = enum.auto()
    """Waiting for the adapter's greeting (``send()``)."""
    REFUSED = enum.auto()
    """The greeting was not 220: only QUIT and NOOP are served (RFC 5321 3.1)."""
    NEED_HELO = enum.auto()
    """No EHLO/HELO yet (also right after STARTTLS)."""
    READY = enum.auto()
    """Greeted; no transaction."""
    MAIL = enum.auto()
    """MAIL accepted, no recipient yet."""
    RCPT = enum.auto()
    """At least one recipient accepted."""
    DATA = enum.auto()
    """Reading a dot-terminated DATA body."""
    BDAT = enum.auto()
    """Reading a BDAT chunk of the transaction."""
    BDAT_MORE = enum.auto()
    """Between BDAT chunks: only BDAT, RSET, NOOP, QUIT (RFC 3030)."""
    BDAT_DISCARD = enum.auto()
    """Reading a BDAT chunk that is refused; its bytes are thrown away."""
    AUTH = enum.auto()
    """Inside a SASL exchange (RFC 4954)."""
    TLS_PENDING = enum.auto()
    """220 sent to STARTTLS; waiting for the handshake."""
    CLOSED = enum.auto()
    """Nothing more is read or answered."""


class Input(enum.Enum):
    """What moves the machine from one state to another."""

    __hash__ = object.__hash__  # as State's

    GREETED = enum.auto()
    GREETING_REFUSED = enum.auto()
    HELO = enum.auto()
    MAIL = enum.auto()
    RCPT = enum.auto()
    DATA = enum.auto()
    BDAT = enum.auto()
    BDAT_DISCARD = enum.auto()
    CHUNK_DONE = enum.auto()
    BODY_DONE = enum.auto()
    BODY_FAILED = enum.auto()
    RSET = enum.auto()
    STARTTLS = enum.auto()
    TLS_DONE = enum.auto()
    AUTH = enum.auto()
    AUTH_DONE = enum.auto()
    CLOSE = enum.auto()


_S, _I = State, Input
_COMMAND_STATES = (_S.REFUSED, _S.NEED_HELO, _S.READY, _S.MAIL, _S.RCPT, _S.BDAT_MORE)
_TRANSACTION = (_S.MAIL, _S.RCPT, _S.BDAT_MORE)

TRANSITIONS: dict[tuple[State, Input], State] = {
    (_S.GREETING, _I.GREETED): _S.NEED_HELO,
    (_S.GREETING, _I.GREETING_REFUSED): _S.REFUSED,
    **{(s, _I.HELO): _S.READY for s in (_S.NEED_HELO, _S.READY, *_TRANSACTION)},
    (_S.READY, _I.MAIL): _S.MAIL,
    (_S.MAIL, _I.RCPT): _S.RCPT,
    (_S.RCPT, _I.RCPT): _S.RCPT,
    (_S.RCPT, _I.DATA): _S.DATA,
    (_S.RCPT, _I.BDAT): _S.BDAT,
    (_S.BDAT_MORE, _I.BDAT): _S.BDAT,
    **{(s, _I.BDAT_DISCARD): _S.BDAT_DISCARD for s in _COMMAND_STATES},
    (_S.BDAT, _I.CHUNK_DONE): _S.BDAT_MORE,
    (_S.DATA, _I.BODY_DONE): _S.READY,
    (_S.BDAT, _I.BODY_DONE): _S.READY,
    (_S.DATA, _I.BODY_FAILED): _S.READY,
    (_S.BDAT, _I.BODY_FAILED): _S.READY,
    **{(s, _I.RSET): _S.READY for s in (_S.READY, *_TRANSACTION)},
    (_S.NEED_HELO, _I.RSET): _S.NEED_HELO,
    (_S.REFUSED, _I.RSET): _S.REFUSED,
    (_S.READY, _I.STARTTLS): _S.TLS_PENDING,
    (_S.TLS_PENDING, _I.TLS_DONE): _S.NEED_HELO,
    (_S.READY, _I.AUTH): _S.AUTH,
    (_S.AUTH, _I.AUTH_DONE): _S.READY,
    **{(s, _I.CLOSE): _S.CLOSED for s in State},
}
"""``(state, input) -> new state``; anything else is a bug in the machine or adapter."""

_ANY = frozenset(_COMMAND_STATES)
_GREETED = frozenset((_S.NEED_HELO, _S.READY, *_TRANSACTION))
ALLOWED: dict[bytes, frozenset[State]] = {
    b"EHLO": _GREETED,
    b"HELO": _GREETED,
    b"LHLO": _GREETED,
    b"MAIL": frozenset((_S.READY,)),
    b"RCPT": frozenset((_S.MAIL, _S.RCPT)),
    b"DATA": frozenset((_S.RCPT,)),
    b"STARTTLS": frozenset((_S.READY,)),
    b"AUTH": frozenset((_S.READY,)),
    b"RSET": _ANY,
    b"NOOP": _ANY,
    b"QUIT": _ANY,
    b"HELP": _GREETED,
    b"VRFY": _GREETED,
}
"""Which command runs in which state; elsewhere it gets a 503 (see ``_sequence_error``).
BDAT is absent: it is read in every command state (its bytes must be consumed)."""
