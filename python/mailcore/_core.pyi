"""Typed stub of :mod:`mailcore._core`, the compiled half of mailcore.

Every export of the Rust extension is declared here with its docstring;
``python -m mypy.stubtest mailcore._core`` checks this file against the built
module. Users import the public wrappers (:mod:`mailcore.codecs`, ...) instead.

Functions that take ``data: Buffer`` accept ``bytes`` without copying, and
``bytearray`` or ``memoryview`` with one copy. Functions working on large
inputs release the GIL while they run.
"""

import enum
import os
from collections.abc import Sequence
from typing import final

from typing_extensions import Buffer

from mailcore.imap.command import Command, Fragment

__all__ = [
    "SMTP_EXPECTED_ASCII",
    "SMTP_PARAM_PREFIX",
    "DotReader",
    "DotStuffer",
    "ImapFragmenter",
    "LineError",
    "LineErrorKind",
    "LineReader",
    "__version__",
    "b64decode",
    "b64encode",
    "decode_header",
    "dot_stuff",
    "encode_header",
    "header_cache_json",
    "imap_command_tag",
    "imap_parse_command",
    "imap_string",
    "mime_binary",
    "mime_binary_size",
    "mime_bodystructure",
    "mime_envelope",
    "mime_header_fields",
    "mime_section",
    "parse_mail_from",
    "parse_rcpt_to",
    "qp_decode",
    "qp_encode",
    "rename_files",
    "sync_dirs",
    "write_fetch",
    "write_files_durable",
]

__version__: str

# ---------------------------------------------------------------- codecs ---
# base64 (RFC 4648 alphabet, MIME line breaking from RFC 2045 section 6.8)

def b64encode(data: Buffer, line_length: int | None = 76) -> bytes:
    """Encode ``data`` as base64.

    With ``line_length`` (default 76, the MIME maximum) the output is broken
    into lines of that many characters, each ended by CRLF, the last one too;
    empty input gives empty output. ``None`` gives one line with no line end.
    """

def b64decode(data: Buffer, *, strict: bool = False) -> bytes:
    """Decode base64.

    Lenient (default): white space and line breaks are skipped, as RFC 2045
    requires of MIME bodies, and other bytes outside the alphabet are ignored
    the way mail readers do; missing padding is tolerated. Strict: exactly
    what ``base64.b64decode(data, validate=True)`` accepts, otherwise
    :class:`mailcore.errors.DecodeError` with the offset of the first bad byte.
    """

# quoted-printable (RFC 2045 section 6.7; RFC 2047 "Q" with header=True)

def qp_encode(data: Buffer, *, header: bool = False, line_length: int = 76) -> bytes:
    """Encode ``data`` as quoted-printable.

    CRLF in the input is kept as a hard line break; lines are cut with soft
    line breaks ("=" CRLF) so that no encoded line exceeds ``line_length``
    (at least 4, else ``ValueError``); "=", non-printable bytes and a space or
    tab before a line end are encoded; a CR or LF outside a CRLF is binary
    data and becomes "=0D" or "=0A". ``header=True`` gives the RFC 2047 "Q"
    form: "_" for space, "?" "_" "=" encoded too, no line breaks.
    """

def qp_decode(data: Buffer, *, header: bool = False) -> bytes:
    """Decode quoted-printable.

    Soft line breaks are removed (also "=" followed by trailing white space),
    trailing white space that transport added before a line end is dropped,
    and malformed "=" sequences are passed through unchanged, as RFC 2045
    recommends: this never raises for real-world mail. ``header=True`` also
    turns "_" into a space (RFC 2047 "Q").
    """

# RFC 2047 encoded-words

def decode_header(value: Buffer | str) -> str:
    """Decode the RFC 2047 encoded-words in a header value.

    B and Q words in any charset are decoded; white space between two adjacent
    encoded-words is dropped; malformed words are left as they are. Bytes
    outside encoded-words are read as UTF-8 (invalid sequences replaced).
    """

def encode_header(text: str, *, charset: str = "utf-8", max_line: int = 76) -> str:
    """Encode ``text`` as a header value, with encoded-words only where needed.

    Each encoded-word uses B or Q, whichever is shorter; the result is folded
    (CRLF followed by a space) so that no line exceeds ``max_line``. UTF-8,
    US-ASCII and ISO-8859-1 are encoded in Rust, other charsets through
    Python's codecs (``LookupError`` or ``UnicodeEncodeError`` pass through);
    ``ValueError`` if ``max_line`` cannot hold an encoded-word.
    """

# ------------------------------------------------------- framing and dots ---

@final
class LineErrorKind(enum.Enum):
    """Why a :class:`LineReader` could not return a line."""

    TOO_LONG = 1
    """The line was longer than ``max_line``; its bytes were dropped."""
    BARE_LF = 2
    """The line contained a LF not preceded by CR."""
    BARE_CR = 3
    """The line contained a CR not followed by LF."""

@final
class LineError:
    """A line that was not returned, in place of the line, so a caller can reply."""

    @property
    def kind(self) -> LineErrorKind:
        """Why the line was refused."""

    @property
    def length(self) -> int:
        """Length in bytes of the refused line (without its line end)."""

@final
class LineReader:
    """Cut a byte stream into CRLF-ended lines.

    A CRLF split across two feeds is handled, and the scan resumes where the
    previous feed stopped. A line longer than ``max_line`` (counted without
    its CRLF) is returned as a :class:`LineError` in its place, the reader
    keeps at most ``max_line`` bytes of it, and picks up after the next CRLF.
    A bare LF or bare CR makes the line a :class:`LineError` too, unless
    ``allow_bare_lf`` is set, in which case a bare LF ends a line.
    """

    def __init__(self, max_line: int, *, allow_bare_lf: bool = False) -> None: ...
    def feed(self, data: Buffer, max_lines: int | None = None) -> list[bytes | LineError]:
        """Add ``data`` and return the complete lines, without their line ends.

        With ``max_lines`` at most that many are returned and the rest stay
        buffered: ``feed(b"", 1)`` takes the next one.
        """

    def take_buffered(self) -> bytes:
        """Remove and return every byte not yet returned as a line.

        Used when the stream switches mode (an SMTP DATA or BDAT body, TLS).
        The reader starts again at a line start (a pending CR is returned and
        forgotten); of a partial line already known to be too long nothing is
        held, so nothing of it is returned.
        """

    @property
    def buffered(self) -> int:
        """Number of bytes held that were not yet returned."""

@final
class DotReader:
    """Decode a dot-stuffed body (SMTP DATA, POP3 multi-line reply) as a stream.

    The end is recognised only as CRLF "." CRLF, or "." CRLF as the very first
    line; never after a bare LF or bare CR (SMTP smuggling, CVE-2023-51764).
    Bare LF or CR inside the body sets :attr:`bare_line_end`; with
    ``normalize=True`` they are written out as CRLF instead. Past
    ``max_size`` bytes of body, output stops and :attr:`oversize` is set,
    but the end is still found so the session can go on.
    """

    def __init__(self, max_size: int, *, normalize: bool = False) -> None: ...
    def feed(self, data: Buffer) -> tuple[bytes, bool]:
        """Add ``data``; return the unstuffed body bytes decoded so far and
        whether the end was reached. The body keeps its CRLF line ends; the
        final "." CRLF is not part of it. After the end, ``data`` is added to
        :attr:`rest` and ``(b"", True)`` is returned.

        A leading "." is removed only at a line start (after CRLF); a "."
        followed directly by a bare CR or LF is kept as it is."""

    @property
    def done(self) -> bool:
        """Whether the terminating line has been seen."""

    @property
    def rest(self) -> bytes:
        """Bytes that followed the end of data (pipelined commands)."""

    @property
    def size(self) -> int:
        """Number of body bytes decoded so far (also past ``max_size``)."""

    @property
    def oversize(self) -> bool:
        """Whether the body grew past ``max_size``."""

    @property
    def bare_line_end(self) -> bool:
        """Whether a bare LF or bare CR was seen in the body."""

def dot_stuff(data: Buffer) -> bytes:
    """Prepare ``data`` for sending as an SMTP DATA body or POP3 multi-line reply.

    Leading dots are doubled, bare LF and bare CR become CRLF, a missing final
    CRLF is added, and "." CRLF ends the result.
    """

@final
class DotStuffer:
    """Streaming form of :func:`dot_stuff`, for bodies sent in chunks."""

    def __init__(self) -> None: ...
    def feed(self, data: Buffer) -> bytes:
        """Return the stuffed form of ``data``, given what came before it."""

    def finish(self) -> bytes:
        """Return the bytes that end the body (a CRLF if needed, then "." CRLF).

        The stuffer is then ready for another body."""

# ------------------------------------------------------------------ smtp ---
# RFC 5321 envelope paths (MAIL FROM / RCPT TO arguments)

SMTP_EXPECTED_ASCII: str
"""``expected`` text of the :class:`~mailcore.errors.ParseError` raised for a
non-ASCII address or parameter without SMTPUTF8 (the server answers 553 5.6.7)."""

SMTP_PARAM_PREFIX: str
"""Prefix of the ``expected`` text of every error found in the ESMTP
parameters rather than in the path (the server answers 501 5.5.4)."""

def parse_mail_from(arg: Buffer, *, smtputf8_allowed: bool) -> tuple[str, dict[str, str | None]]:
    """Parse what follows ``MAIL FROM:``: ``Reverse-path [SP Mail-parameters]``.

    Returns the mailbox (``""`` for the null reverse-path ``<>``; a source
    route is dropped) and the ESMTP parameters, keyword upper-cased, value as
    sent or ``None``. Spaces before the path are tolerated. Non-ASCII is
    accepted only if ``smtputf8_allowed`` and the parameters include
    ``SMTPUTF8`` (RFC 6531). Raises :class:`~mailcore.errors.ParseError`
    (offset, expected) for bad syntax, :class:`~mailcore.errors.LimitExceeded`
    past 64 octets of local part, 255 of domain or 256 of path.
    """

def parse_rcpt_to(arg: Buffer, *, smtputf8: bool) -> tuple[str, dict[str, str | None]]:
    """Parse what follows ``RCPT TO:``: ``Forward-path [SP Rcpt-parameters]``.

    Like :func:`parse_mail_from`, but the null path is refused and
    ``<Postmaster>`` without a domain is accepted (returned as written).
    Non-ASCII is accepted only if the transaction used SMTPUTF8.
    """

# --------------------------------------------------------------- durable ---
# The store's group-commit file writes; the GIL is released for the whole batch.

def write_files_durable(
    items: Sequence[tuple[str | os.PathLike[str], bytes]], threads: int = 8
) -> list[OSError | None]:
    """Create each path (it must not exist, mode 0600), write its data, fsync it.

    One result per item, in order: ``None`` once the file is durable, else the
    ``OSError`` (``FileNotFoundError``, ``FileExistsError``, ...) after the
    partial file was removed. Up to ``threads`` files are fsynced at once.
    """

def rename_files(
    pairs: Sequence[tuple[str | os.PathLike[str], str | os.PathLike[str]]],
) -> list[OSError | None]:
    """Rename each ``(source, target)`` in order, with the GIL released once for all.

    One result per pair: ``None`` once renamed, else the ``OSError`` naming
    the source. Make the renames durable with :func:`sync_dirs`.
    """

def sync_dirs(dirs: Sequence[str | os.PathLike[str]], threads: int = 8) -> None:
    """fsync each directory (making renames into it durable); ``OSError`` on failure."""

# ------------------------------------------------------------------ mime ---

def mime_envelope(raw: Buffer) -> bytes:
    """The IMAP ENVELOPE of a raw message, as ready-to-send (cacheable) bytes."""

def mime_bodystructure(raw: Buffer, *, extensible: bool = True) -> bytes:
    """BODYSTRUCTURE of a raw message; with ``extensible=False``, BODY."""

def mime_section(raw: Buffer, spec: str | Buffer, partial: tuple[int, int] | None = None) -> bytes:
    """Exact bytes of ``BODY[spec]<origin.count>``; ``spec`` is the text inside the brackets.

    A nonexistent part yields ``b""``; a malformed ``spec`` raises ParseError.
    """

def mime_binary(raw: Buffer, part: str | Buffer, partial: tuple[int, int] | None = None) -> bytes:
    """Decoded content of ``BINARY[part]<origin.count>`` (RFC 3516); ``part`` like ``"1.2"``.

    base64 and quoted-printable bodies are decoded; an unknown Content-Transfer-Encoding
    raises DecodeError (answer ``NO [UNKNOWN-CTE]``); a nonexistent part yields ``b""``.
    """

def mime_binary_size(raw: Buffer, part: str | Buffer) -> int:
    """``BINARY.SIZE[part]``: the length of :func:`mime_binary` of the same part."""

def mime_header_fields(raw: Buffer, names: list[bytes], *, exclude: bool = False) -> bytes:
    """Top-level header fields named (``exclude``: not named) in ``names``, then the blank line."""

def header_cache_json(raw: Buffer, header_len: int) -> str:
    """The store's cached fields (from, to, cc, subject, date, message-id) of ``raw[:header_len]``.

    A JSON object, first occurrence of each field within the first 64 KiB,
    folded values unfolded, others stripped, non-UTF-8 octets as surrogate escapes.
    """

def imap_string(value: bytes | None) -> bytes:
    """An IMAP nstring: ``NIL``, a quoted string, or a ``{n}`` literal (NUL sent as 0x80)."""

def write_fetch(messages: list[tuple[int, list[tuple[bytes, int | bytes | None]]]]) -> bytes:
    """Bytes of ``* seq FETCH (...)`` lines for a batch of ``(seq, [(name, value), ...])``.

    ``int`` is a number, ``None`` is NIL; bytes under FLAGS, ENVELOPE, BODYSTRUCTURE, BODY
    and BINARY.SIZE are written verbatim (cached IMAP data); under ``BINARY[...]`` as a
    literal8 when they hold NUL; under any other name as a quoted string or literal.
    """

# ------------------------------------------------------------------ imap ---
# Framing (rust/imap/fragment.rs) and the command grammar (rust/imap/command.rs).
# The returned objects are the dataclasses of mailcore.imap.command.

def imap_parse_command(data: Buffer, max_depth: int = 32, max_ranges: int = 10000) -> Command:
    """Parse one whole IMAP command (lines and literals, as ImapFragmenter gives it).

    ``max_depth`` bounds parenthesis and SEARCH key nesting, ``max_ranges``
    the ranges of one sequence set. Raises ``ParseError`` naming the argument
    and byte offset; see ``mailcore.imap.command.parse_command`` for the
    wrapper that adds the tag.
    """

def imap_command_tag(data: Buffer) -> str | None:
    """The tag at the start of ``data`` if it is a valid IMAP tag followed by SP/CRLF."""

@final
class ImapFragmenter:
    """Cut an IMAP client stream into whole commands before any grammar runs.

    A command holds at most ``max_command`` bytes (lines and literals), one
    literal at most ``max_literal``. Synchronising literals are announced
    (``LiteralAnnounced``) and wait for ``accept_literal()`` /
    ``reject_literal()``; commands over a limit are dropped and reported once
    as ``Poisoned``, and framing continues with the next command.
    """

    def __init__(self, max_command: int, max_literal: int) -> None: ...
    def feed(self, data: Buffer) -> None:
        """Add received bytes; then call ``next()`` until it returns None."""

    def next(self) -> Fragment | None:
        """The next fragment, or None when more input or a literal decision is needed."""

    def __iter__(self) -> ImapFragmenter:
        """Iterate over the fragments ready now (stops where ``next()`` returns None)."""

    def __next__(self) -> Fragment: ...
    def accept_literal(self) -> None:
        """Read the announced synchronising literal (after sending ``+ Ready``).

        Raises RuntimeError when no literal is waiting.
        """

    def reject_literal(self) -> None:
        """Refuse the announced literal (after a tagged NO/BAD); the command ends.

        Raises RuntimeError when no literal is waiting.
        """

    def expect_line(self) -> None:
        """Return the next line raw, as ``RawLine`` (IDLE "DONE", a SASL response)."""

    @property
    def awaiting_decision(self) -> bool:
        """Whether a synchronising literal waits for accept/reject."""

    @property
    def pending(self) -> int:
        """Bytes received and not yet returned."""

    def set_limits(self, max_command: int, max_literal: int) -> None:
        """Change the bounds for the commands still to come (IMAP raises them at login)."""

    @property
    def poisoned(self) -> str | None:
        """Why the command being read is skipped (``"literal-too-long"``, ...), or None.

        Set as soon as the cause is seen, e.g. at the header of an oversized
        non-synchronising literal, before the command ends as ``Poisoned``.
        """
