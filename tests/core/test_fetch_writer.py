"""write_fetch and imap_string: the bytes of FETCH responses."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailcore._core import imap_string, mime_bodystructure, mime_envelope, write_fetch


def test_imap_string_kinds() -> None:
    assert imap_string(None) == b"NIL"
    assert imap_string(b"") == b'""'
    assert imap_string(b'say "hi" \\o/') == b'"say \\"hi\\" \\\\o/"'
    assert imap_string(b"two\r\nlines") == b"{10}\r\ntwo\r\nlines"
    assert imap_string(b"caf\xc3\xa9") == b"{5}\r\ncaf\xc3\xa9"
    # NUL is not allowed in a literal (RFC 9051 CHAR8): sent as 0x80, as Dovecot does.
    assert imap_string(b"a\x00b") == b"{3}\r\na\x80b"


def test_batch() -> None:
    raw = b"Subject: s\r\n\r\nbody\r\n"
    out = write_fetch(
        [
            (
                1,
                [
                    (b"UID", 41),
                    (b"FLAGS", b"(\\Seen \\Answered)"),
                    (b"RFC822.SIZE", len(raw)),
                    (b"INTERNALDATE", b"17-Jul-1996 02:44:25 -0700"),
                    (b"ENVELOPE", mime_envelope(raw)),
                    (b"BODYSTRUCTURE", mime_bodystructure(raw)),
                ],
            ),
            (2, [(b"UID", 42), (b"BODY[]", raw), (b"BODY[HEADER.FIELDS (X)]", None)]),
            (3, [(b"BINARY[1]", b"\x00\x01"), (b"BINARY[2]", b"ok"), (b"BINARY.SIZE[1]", 2)]),
        ]
    )
    assert out == (
        b"* 1 FETCH (UID 41 FLAGS (\\Seen \\Answered) RFC822.SIZE 20"
        b' INTERNALDATE "17-Jul-1996 02:44:25 -0700"'
        b' ENVELOPE (NIL "s" NIL NIL NIL NIL NIL NIL NIL NIL)'
        b' BODYSTRUCTURE ("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 6 1'
        b" NIL NIL NIL NIL))\r\n"
        b"* 2 FETCH (UID 42 BODY[] {20}\r\nSubject: s\r\n\r\nbody\r\n"
        b" BODY[HEADER.FIELDS (X)] NIL)\r\n"
        b'* 3 FETCH (BINARY[1] ~{2}\r\n\x00\x01 BINARY[2] "ok" BINARY.SIZE[1] 2)\r\n'
    )
    assert write_fetch([]) == b""
    with pytest.raises(ValueError):
        write_fetch([(1, [(b"UID\r\n", 1)])])


def _parse_string(data: bytes) -> tuple[bytes | None, bytes]:
    """A tiny reference reader of one IMAP nstring, returning (value, rest)."""
    if data.startswith(b"NIL"):
        return None, data[3:]
    if data.startswith(b'"'):
        out = bytearray()
        i = 1
        while data[i : i + 1] != b'"':
            if data[i : i + 1] == b"\\":
                i += 1
            out += data[i : i + 1]
            i += 1
        return bytes(out), data[i + 1 :]
    head, _, rest = data.partition(b"}\r\n")
    n = int(head[1:])
    return rest[:n], rest[n:]


@given(st.one_of(st.none(), st.binary(max_size=200)))
def test_imap_string_round_trips(value: bytes | None) -> None:
    got, rest = _parse_string(imap_string(value))
    assert rest == b""
    want = None if value is None else value.replace(b"\x00", b"\x80")
    assert got == want
