"""MIME and transport codecs, implemented in the Rust core.

This module is the public face of :mod:`mailcore._core`'s codecs; import from
here, not from ``_core``. :class:`LineReader`, :class:`DotReader`,
:func:`dot_stuff` and :class:`DotStuffer` (line framing and dot-stuffing) are
re-exported from ``_core`` as they are.

Deliberate differences from the standard library (each has a test):

- :func:`qp_decode` removes spaces and tabs that transport added before a line
  end (``binascii.a2b_qp`` keeps them), takes ``"="`` followed by white space
  before the line end as a soft line break (``a2b_qp`` does not), and keeps the
  text after a lone ``"=\\r"`` (``a2b_qp`` drops it), as RFC 2045 section 6.7
  says.
- :func:`qp_encode` writes a CR or LF that is not part of a CRLF as ``=0D`` or
  ``=0A`` (binary-safe), where ``binascii.b2a_qp`` turns them into line breaks.
- :func:`b64decode` in lenient mode returns what it can where
  ``base64.b64decode`` raises ``Incorrect padding``; strict mode accepts
  exactly what ``base64.b64decode(data, validate=True)`` accepts.
- :func:`decode_header` keeps white space as written outside encoded-words
  (``email.header`` may add or drop spaces around them) and returns ``str``
  directly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailcore import _core
from mailcore._core import DotReader, DotStuffer, LineReader, dot_stuff

if TYPE_CHECKING:
    # Only for annotations: typing_extensions is not a runtime dependency.
    from typing_extensions import Buffer

__all__ = [
    "DotReader",
    "DotStuffer",
    "LineReader",
    "b64decode",
    "b64encode",
    "decode_header",
    "dot_stuff",
    "encode_header",
    "qp_decode",
    "qp_encode",
]


def b64encode(data: Buffer, line_length: int | None = 76) -> bytes:
    """Encode ``data`` as base64.

    With ``line_length`` (default 76, the MIME maximum) the output is cut into
    lines of that many characters, each ended by CRLF, the last one too; this
    equals ``base64.encodebytes(data)`` with CRLF line ends. ``None`` gives
    one line without a line end, like ``base64.b64encode``. Large inputs are
    encoded with the GIL released.

    Raises:
        ValueError: ``line_length`` is 0.
    """
    return _core.b64encode(data, line_length)


def b64decode(data: Buffer, *, strict: bool = False) -> bytes:
    """Decode base64.

    Lenient (default): line breaks, white space and other bytes outside the
    alphabet are skipped, decoding stops at the padding that completes a
    group, and missing padding is tolerated; this never raises. Strict:
    accepts exactly what ``base64.b64decode(data, validate=True)`` accepts.

    Raises:
        mailcore.errors.DecodeError: in strict mode, with the ``offset`` of
            the first byte that is wrong.
    """
    return _core.b64decode(data, strict=strict)


def qp_encode(data: Buffer, *, header: bool = False, line_length: int = 76) -> bytes:
    """Encode ``data`` as quoted-printable (RFC 2045 section 6.7).

    CRLF is kept as a hard line break; soft line breaks keep every line within
    ``line_length`` characters (the ``"="`` included); ``"="``, non-printable
    bytes, and a space or tab that would end a line are encoded; a CR or LF
    outside a CRLF becomes ``=0D`` or ``=0A``. ``header=True`` gives the
    RFC 2047 "Q" form: one line, ``"_"`` for a space, and ``"?"``, ``"_"`` and
    ``"="`` encoded too.

    Raises:
        ValueError: ``line_length`` below 4.
    """
    return _core.qp_encode(data, header=header, line_length=line_length)


def qp_decode(data: Buffer, *, header: bool = False) -> bytes:
    """Decode quoted-printable; never raises.

    Soft line breaks (also ``"="`` followed by white space before the line end)
    are removed, white space added by transport before a line end is dropped,
    and a malformed ``"="`` sequence is kept as it is, as RFC 2045 recommends.
    ``header=True`` also turns ``"_"`` into a space (RFC 2047 "Q").
    """
    return _core.qp_decode(data, header=header)


def decode_header(value: Buffer | str) -> str:
    """Decode the RFC 2047 encoded-words in a header value.

    B and Q words in UTF-8, US-ASCII and ISO-8859-1 are decoded in Rust, any
    other charset Python knows through :mod:`codecs`; white space between two
    adjacent encoded-words is dropped; folding is undone; malformed words and
    words in charsets nobody knows are left as they are.
    """
    return _core.decode_header(value)


def encode_header(text: str, *, charset: str = "utf-8", max_line: int = 76) -> str:
    """Encode ``text`` as a header value.

    Words of printable ASCII stay as they are; runs of other words become
    encoded-words in ``charset`` (B or Q, whichever is shorter); the value is
    folded with CRLF before white space so that no line exceeds ``max_line``.
    :func:`decode_header` and ``email.header`` read it back as ``text``.

    Raises:
        ValueError: ``max_line`` too short for an encoded-word, or a bad
            charset name.
        LookupError: a charset Python does not know.
        UnicodeEncodeError: ``text`` has characters ``charset`` cannot hold.
    """
    return _core.encode_header(text, charset=charset, max_line=max_line)
