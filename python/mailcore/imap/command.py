"""Parsed IMAP commands and framing events, as frozen dataclasses.

The Rust core (``mailcore._core``) does the byte work: :class:`Fragmenter`
cuts a stream into whole commands, :func:`parse_command` runs the RFC 9051
grammar on one of them. Both hand back the classes defined here, built
directly by the Rust side, so a sans-IO server can ``match`` on them::

    match parse_command(data):
        case Login(tag=tag, username=user, password=pw): ...
        case Fetch(uid=True, sequence=seq, attributes=attrs): ...

A server's read loop, in outline::

    frag = new_fragmenter(limits.imap)
    frag.feed(received)
    while (item := frag.next()) is not None:
        match item:
            case LiteralAnnounced(tag=tag, fits=True):
                send(b"+ Ready\r\n"); frag.accept_literal()
            case LiteralAnnounced(tag=tag, fits=False):
                send(f"{tag} NO [TOOBIG] literal too large\r\n"); frag.reject_literal()
            case Poisoned(tag=tag):
                send(f"{tag or '*'} BAD command too long or malformed literal\r\n")
            case CommandReady(data=data):
                try:
                    command = parse_command(data, limits.imap)
                except CommandSyntaxError as e:
                    send(f"{e.tag or '*'} BAD {e.bad_text()}\r\n")
            case RawLine(data=line):
                ...  # after expect_line(): IDLE's DONE, a SASL response

Nothing here does I/O. Strings the grammar defines as text (tags, mailbox
names, flags, keywords) are ``str``; credentials, search strings and
message bytes stay ``bytes`` because their charset is not the parser's
business.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Literal

from mailcore import _core
from mailcore._core import ImapFragmenter
from mailcore.errors import ParseError
from mailcore.limits import ImapLimits

__all__ = [
    "Append",
    "Authenticate",
    "Capability",
    "Check",
    "Close",
    "Command",
    "CommandReady",
    "CommandSyntaxError",
    "Copy",
    "Create",
    "Delete",
    "Enable",
    "Expunge",
    "Fetch",
    "FetchAttribute",
    "Fragment",
    "Id",
    "Idle",
    "ImapFragmenter",
    "List",
    "LiteralAnnounced",
    "Login",
    "Logout",
    "Lsub",
    "Move",
    "Namespace",
    "Noop",
    "Poisoned",
    "RawLine",
    "Rename",
    "Search",
    "SearchAll",
    "SearchAnd",
    "SearchDate",
    "SearchFlag",
    "SearchHeader",
    "SearchKey",
    "SearchNot",
    "SearchOr",
    "SearchSequence",
    "SearchSize",
    "SearchText",
    "SearchUid",
    "Section",
    "Select",
    "SequenceSet",
    "StartTLS",
    "Status",
    "Store",
    "Subscribe",
    "Unselect",
    "Unsubscribe",
    "new_fragmenter",
    "parse_command",
]


# ------------------------------------------------------------ framing events


@dataclass(frozen=True, slots=True)
class CommandReady:
    """A whole command (lines and literal bytes, exactly as received)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class LiteralAnnounced:
    """A synchronising literal ``{n}`` / ``~{n}`` ended a line.

    The fragmenter waits until the server calls ``accept_literal()`` (after
    sending ``+ Ready``) or ``reject_literal()`` (after a tagged NO/BAD).
    ``fits`` is false when the literal is over the configured limits.
    """

    tag: str | None
    length: int
    binary: bool
    fits: bool


@dataclass(frozen=True, slots=True)
class Poisoned:
    """A command refused by the framing; its bytes were dropped.

    ``reason`` is ``"command-too-long"``, ``"literal-too-long"`` or
    ``"bad-literal"`` (``{}``, ``{+}``, over 15 digits). Answer with
    ``TAG BAD`` (or ``* BAD`` when ``tag`` is None).
    """

    tag: str | None
    reason: Literal["command-too-long", "literal-too-long", "bad-literal"]


@dataclass(frozen=True, slots=True)
class RawLine:
    """A line asked for with ``expect_line()`` (IDLE's DONE, a SASL response)."""

    data: bytes


Fragment = CommandReady | LiteralAnnounced | Poisoned | RawLine
"""Everything ``Fragmenter.next()`` can return."""


# ---------------------------------------------------------- argument values


@dataclass(frozen=True, slots=True)
class SequenceSet:
    """A sequence or UID set: ranges as written, ``None`` for ``*``.

    A single number ``n`` is the range ``(n, n)``. ``saved`` is true for
    ``$`` (RFC 5182, the saved search result); ``ranges`` is then empty.
    """

    ranges: tuple[tuple[int | None, int | None], ...]
    saved: bool = False

    def contains(self, n: int, largest: int) -> bool:
        """Whether ``n`` is in the set when ``*`` stands for ``largest``."""
        for a, b in self.ranges:
            lo, hi = sorted((largest if a is None else a, largest if b is None else b))
            if lo <= n <= hi:
                return True
        return False


@dataclass(frozen=True, slots=True)
class Section:
    """A section specifier: ``BODY[1.2.HEADER.FIELDS (FROM TO)]``.

    ``text`` is None, ``"HEADER"``, ``"HEADER.FIELDS"``,
    ``"HEADER.FIELDS.NOT"``, ``"TEXT"`` or ``"MIME"``; ``fields`` holds the
    upper-cased header names of the two ``HEADER.FIELDS`` forms.
    """

    part: tuple[int, ...]
    text: str | None = None
    fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FetchAttribute:
    """One FETCH item; macros (ALL, FAST, FULL) arrive expanded.

    ``name`` is upper case without the section: ``"BODY"``, ``"BINARY"``,
    ``"BINARY.SIZE"``, ``"RFC822.SIZE"``, ``"ENVELOPE"``, ... ``BODY`` with
    ``section`` None is the non-extensible BODYSTRUCTURE. ``partial`` is
    ``(start, length)`` from ``<start.length>``.
    """

    name: str
    section: Section | None = None
    partial: tuple[int, int] | None = None
    peek: bool = False


# -------------------------------------------------------------- search keys


@dataclass(frozen=True, slots=True)
class SearchAll:
    """``ALL``."""


@dataclass(frozen=True, slots=True)
class SearchFlag:
    """A flag key: ``SEEN`` is ``("\\Seen", True)``, ``UNSEEN`` is ``False``.

    KEYWORD/UNKEYWORD give the keyword; NEW arrives as RECENT and UNSEEN,
    OLD as ``("\\Recent", False)``.
    """

    flag: str
    set: bool


@dataclass(frozen=True, slots=True)
class SearchDate:
    """BEFORE/ON/SINCE (``internal``) and SENTBEFORE/SENTON/SENTSINCE (``sent``)."""

    field: Literal["internal", "sent"]
    when: Literal["before", "on", "since"]
    date: datetime.date


@dataclass(frozen=True, slots=True)
class SearchSize:
    """LARGER (``larger`` true) or SMALLER than ``size`` octets."""

    larger: bool
    size: int


@dataclass(frozen=True, slots=True)
class SearchText:
    """A substring key: BCC, BODY, CC, FROM, SUBJECT, TEXT or TO."""

    field: Literal["BCC", "BODY", "CC", "FROM", "SUBJECT", "TEXT", "TO"]
    value: bytes


@dataclass(frozen=True, slots=True)
class SearchHeader:
    """``HEADER name value`` (an empty value matches every message with the field)."""

    name: str
    value: bytes


@dataclass(frozen=True, slots=True)
class SearchSequence:
    """A bare sequence set (or ``$``)."""

    set: SequenceSet


@dataclass(frozen=True, slots=True)
class SearchUid:
    """``UID set``."""

    set: SequenceSet


@dataclass(frozen=True, slots=True)
class SearchNot:
    """``NOT key``."""

    key: SearchKey


@dataclass(frozen=True, slots=True)
class SearchOr:
    """``OR left right``."""

    left: SearchKey
    right: SearchKey


@dataclass(frozen=True, slots=True)
class SearchAnd:
    """Several keys, all of which must match (a list or parentheses)."""

    keys: tuple[SearchKey, ...]


SearchKey = (
    SearchAll
    | SearchFlag
    | SearchDate
    | SearchSize
    | SearchText
    | SearchHeader
    | SearchSequence
    | SearchUid
    | SearchNot
    | SearchOr
    | SearchAnd
)
"""Any node of a SEARCH key tree."""


# ----------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class Capability:
    """``CAPABILITY``."""

    tag: str


@dataclass(frozen=True, slots=True)
class Noop:
    """``NOOP``."""

    tag: str


@dataclass(frozen=True, slots=True)
class Logout:
    """``LOGOUT``."""

    tag: str


@dataclass(frozen=True, slots=True)
class StartTLS:
    """``STARTTLS``."""

    tag: str


@dataclass(frozen=True, slots=True)
class Authenticate:
    """``AUTHENTICATE mechanism [initial-response]`` (RFC 4959 SASL-IR).

    ``initial_response`` is the base64 text as sent, ``b""`` for ``=``,
    None when absent.
    """

    tag: str
    mechanism: str
    initial_response: bytes | None


@dataclass(frozen=True, slots=True)
class Login:
    """``LOGIN user password``."""

    tag: str
    username: bytes
    password: bytes


@dataclass(frozen=True, slots=True)
class Enable:
    """``ENABLE cap...`` (upper-cased)."""

    tag: str
    capabilities: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Select:
    """``SELECT`` or (``read_only``) ``EXAMINE``, with raw select parameters."""

    tag: str
    mailbox: str
    read_only: bool
    parameters: tuple[tuple[str, bytes | None], ...]


@dataclass(frozen=True, slots=True)
class Create:
    """``CREATE mailbox``."""

    tag: str
    mailbox: str


@dataclass(frozen=True, slots=True)
class Delete:
    """``DELETE mailbox``."""

    tag: str
    mailbox: str


@dataclass(frozen=True, slots=True)
class Rename:
    """``RENAME old new``."""

    tag: str
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class Subscribe:
    """``SUBSCRIBE mailbox``."""

    tag: str
    mailbox: str


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """``UNSUBSCRIBE mailbox``."""

    tag: str
    mailbox: str


@dataclass(frozen=True, slots=True)
class List:
    """``LIST`` with RFC 5258 selection and return options (upper-cased).

    ``status_items`` are the items of ``RETURN (STATUS (...))`` (RFC 5819).
    """

    tag: str
    reference: str
    patterns: tuple[str, ...]
    selection: tuple[str, ...]
    returns: tuple[str, ...]
    status_items: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Lsub:
    """``LSUB reference pattern``."""

    tag: str
    reference: str
    pattern: str


@dataclass(frozen=True, slots=True)
class Namespace:
    """``NAMESPACE``."""

    tag: str


@dataclass(frozen=True, slots=True)
class Status:
    """``STATUS mailbox (items)`` (upper-cased)."""

    tag: str
    mailbox: str
    items: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Append:
    """``APPEND mailbox [flags] [date-time] literal``.

    ``binary`` for a literal8 (``~{n}``, RFC 3516); ``utf8`` for the RFC 6855
    form ``UTF8 (~{n})``, whose message may carry UTF-8 headers.
    """

    tag: str
    mailbox: str
    flags: tuple[str, ...]
    date: datetime.datetime | None
    message: bytes
    binary: bool
    utf8: bool = False


@dataclass(frozen=True, slots=True)
class Idle:
    """``IDLE``."""

    tag: str


@dataclass(frozen=True, slots=True)
class Check:
    """``CHECK``."""

    tag: str


@dataclass(frozen=True, slots=True)
class Close:
    """``CLOSE``."""

    tag: str


@dataclass(frozen=True, slots=True)
class Unselect:
    """``UNSELECT``."""

    tag: str


@dataclass(frozen=True, slots=True)
class Expunge:
    """``EXPUNGE``, or ``UID EXPUNGE set`` when ``uids`` is given."""

    tag: str
    uids: SequenceSet | None


@dataclass(frozen=True, slots=True)
class Search:
    """``[UID] SEARCH [RETURN (...)] [CHARSET c] keys``.

    ``returns`` is None without RETURN (a plain SEARCH reply) and a tuple
    (maybe empty, meaning ALL) with it.
    """

    tag: str
    uid: bool
    charset: str | None
    returns: tuple[str, ...] | None
    key: SearchKey


@dataclass(frozen=True, slots=True)
class Fetch:
    """``[UID] FETCH set attributes [(CHANGEDSINCE n)]``."""

    tag: str
    uid: bool
    sequence: SequenceSet
    attributes: tuple[FetchAttribute, ...]
    changed_since: int | None


@dataclass(frozen=True, slots=True)
class Store:
    """``[UID] STORE set [(UNCHANGEDSINCE n)] [+|-]FLAGS[.SILENT] flags``."""

    tag: str
    uid: bool
    sequence: SequenceSet
    mode: Literal["set", "add", "remove"]
    silent: bool
    flags: tuple[str, ...]
    unchanged_since: int | None


@dataclass(frozen=True, slots=True)
class Copy:
    """``[UID] COPY set mailbox``."""

    tag: str
    uid: bool
    sequence: SequenceSet
    mailbox: str


@dataclass(frozen=True, slots=True)
class Move:
    """``[UID] MOVE set mailbox`` (RFC 6851)."""

    tag: str
    uid: bool
    sequence: SequenceSet
    mailbox: str


@dataclass(frozen=True, slots=True)
class Id:
    """``ID (field value ...)`` or ``ID NIL`` (``parameters`` None), RFC 2971."""

    tag: str
    parameters: tuple[tuple[str, str | None], ...] | None


Command = (
    Capability
    | Noop
    | Logout
    | StartTLS
    | Authenticate
    | Login
    | Enable
    | Select
    | Create
    | Delete
    | Rename
    | Subscribe
    | Unsubscribe
    | List
    | Lsub
    | Namespace
    | Status
    | Append
    | Idle
    | Check
    | Close
    | Unselect
    | Expunge
    | Search
    | Fetch
    | Store
    | Copy
    | Move
    | Id
)
"""Every command ``parse_command`` returns."""


def _datetime(fields: tuple[int, int, int, int, int, int], zone: int) -> datetime.datetime:
    """Build an APPEND date-time from (y, m, d, h, m, s) and the zone in minutes (for Rust)."""
    tz = datetime.timezone(datetime.timedelta(minutes=zone))
    return datetime.datetime(*fields, tzinfo=tz)


# ------------------------------------------------------------------- parsing


class CommandSyntaxError(ParseError):
    """A command that does not follow the grammar.

    Attributes:
        tag: the command's tag when it could be read (answer ``TAG BAD``),
            else None (answer ``* BAD``).
        offset, expected: as for :class:`~mailcore.errors.ParseError`.
    """

    def __init__(self, message: str, offset: int, expected: str, tag: str | None) -> None:
        super().__init__(message, offset, expected)
        self.tag = tag

    def bad_text(self) -> str:
        """Text for the BAD reply: ``"expected <what> at offset N"``."""
        return f"expected {self.expected} at offset {self.offset}"


def parse_command(data: bytes, limits: ImapLimits | None = None) -> Command:
    """Parse one whole command as the fragmenter returns it.

    Raises:
        CommandSyntaxError: with the tag (when readable), offset and expectation.
    """
    lim = limits if limits is not None else ImapLimits()
    try:
        return _core.imap_parse_command(data, lim.nesting_depth, lim.sequence_ranges)
    except ParseError as e:
        tag = _core.imap_command_tag(data)
        raise CommandSyntaxError(str(e), e.offset, e.expected, tag) from None


def fragmenter_limits(
    limits: ImapLimits | None = None, *, before_login: bool = False
) -> tuple[int, int]:
    """``(max_command, max_literal)`` of a fragmenter sized by ``limits``.

    A command may hold ``command_length`` bytes of lines plus one literal
    of up to ``literal_size`` bytes (an APPEND). ``before_login``: literals
    of at most ``unauthenticated_literal`` bytes (LOGIN, AUTHENTICATE), so
    a bigger one, even non-synchronising, is skipped instead of kept.
    """
    lim = limits if limits is not None else ImapLimits()
    literal = lim.literal_size
    if before_login:
        literal = min(lim.unauthenticated_literal, literal)
    return lim.command_length + literal, literal


def new_fragmenter(
    limits: ImapLimits | None = None, *, before_login: bool = False
) -> ImapFragmenter:
    """A fresh :class:`~mailcore._core.ImapFragmenter` sized by :func:`fragmenter_limits`."""
    return ImapFragmenter(*fragmenter_limits(limits, before_login=before_login))
