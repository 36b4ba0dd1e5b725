"""mime_envelope, mime_bodystructure, mime_section, mime_header_fields: IMAP views of a message."""

from __future__ import annotations

import email
import email.policy
from email.message import Message

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailcore._core import (
    mime_binary,
    mime_binary_size,
    mime_bodystructure,
    mime_envelope,
    mime_header_fields,
    mime_section,
)
from mailcore.errors import DecodeError, ParseError

SIMPLE = (
    b"Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\n"
    b'From: "Terry Gray" <gray@cac.washington.edu>\r\n'
    b"Subject: IMAP4rev2 WG mtg summary\r\n"
    b"To: imap@cac.washington.edu\r\n"
    b"Cc: minutes@CNRI.Reston.VA.US,\r\n"
    b" John Klensin <KLENSIN@MIT.EDU>\r\n"
    b"Message-Id: <B27397-0100000@cac.washington.edu>\r\n"
    b"\r\n"
    b"line one\r\n"
    b"line two\r\n"
)

ALTERNATIVE = (
    b"From: a@example.org\r\n"
    b'Content-Type: multipart/alternative; boundary="=_alt"\r\n'
    b"\r\n"
    b"--=_alt\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"plain\r\n"
    b"--=_alt\r\n"
    b"Content-Type: text/html; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"<p>html</p>\r\n"
    b"--=_alt--\r\n"
)

MIXED = (
    b"From: a@example.org\r\n"
    b"Subject: report\r\n"
    b"Content-Type: multipart/mixed; boundary=XX\r\n"
    b"\r\n"
    b"This is the preamble.\r\n"
    b"--XX\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"see attached\r\n"
    b"--XX\r\n"
    b'Content-Type: application/pdf; name="r.pdf"\r\n'
    b"Content-Disposition: attachment;\r\n"
    b'\tfilename="r.pdf"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"Content-Language: en, de\r\n"
    b"\r\n"
    b"JVBERi0=\r\n"
    b"--XX--\r\n"
    b"epilogue\r\n"
)

NESTED = (
    b"From: outer@example.org\r\n"
    b"Subject: fwd\r\n"
    b"Content-Type: multipart/mixed; boundary=o\r\n"
    b"\r\n"
    b"--o\r\n"
    b"\r\n"
    b"note\r\n"
    b"--o\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"\r\n"
    b"From: inner@example.org\r\n"
    b"Subject: orig\r\n"
    b"Content-Type: multipart/alternative; boundary=i\r\n"
    b"\r\n"
    b"--i\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"hi\r\n"
    b"--i\r\n"
    b"Content-Type: text/html\r\n"
    b"\r\n"
    b"<b>hi</b>\r\n"
    b"--i--\r\n"
    b"--o--\r\n"
)


def test_envelope_rfc_example() -> None:
    # The RFC 9051 7.5.2 example message; sender and reply-to default to from.
    gray = b'(("Terry Gray" NIL "gray" "cac.washington.edu"))'
    assert mime_envelope(SIMPLE) == (
        b'("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" "IMAP4rev2 WG mtg summary" '
        + gray
        + b" "
        + gray
        + b" "
        + gray
        + b" "
        b'((NIL NIL "imap" "cac.washington.edu")) '
        b'((NIL NIL "minutes" "CNRI.Reston.VA.US")("John Klensin" NIL "KLENSIN" "MIT.EDU")) '
        b'NIL NIL "<B27397-0100000@cac.washington.edu>")'
    )


def test_envelope_groups_literals_and_missing() -> None:
    raw = (
        b"Subject: caf\xc3\xa9\r\n"
        b'To: team: a@x.org, "B \\"q\\"" <b@y.org>;, c@z.org\r\n'
        b"Sender: s@x.org\r\n"
        b"\r\n"
    )
    assert mime_envelope(raw) == (
        b'(NIL {5}\r\ncaf\xc3\xa9 NIL ((NIL NIL "s" "x.org")) NIL '
        b'((NIL NIL "team" NIL)(NIL NIL "a" "x.org")("B \\"q\\"" NIL "b" "y.org")'
        b'(NIL NIL NIL NIL)(NIL NIL "c" "z.org")) NIL NIL NIL NIL)'
    )
    assert mime_envelope(b"") == b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"


def test_bodystructure_simple_text() -> None:
    # No Content-Type: text/plain; charset=us-ascii (RFC 2045 5.2); 20 octets, 2 lines.
    assert mime_bodystructure(SIMPLE, extensible=False) == (
        b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 20 2)'
    )
    assert mime_bodystructure(SIMPLE) == (
        b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 20 2 NIL NIL NIL NIL)'
    )


def test_bodystructure_alternative() -> None:
    assert mime_bodystructure(ALTERNATIVE) == (
        b'(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 5 1 NIL NIL NIL NIL)'
        b'("TEXT" "HTML" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE" 11 1 NIL NIL NIL NIL)'
        b' "ALTERNATIVE" ("BOUNDARY" "=_alt") NIL NIL NIL)'
    )
    assert mime_bodystructure(ALTERNATIVE, extensible=False) == (
        b'(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 5 1)'
        b'("TEXT" "HTML" ("CHARSET" "utf-8") NIL NIL "QUOTED-PRINTABLE" 11 1) "ALTERNATIVE")'
    )


def test_bodystructure_mixed_attachment() -> None:
    assert mime_bodystructure(MIXED) == (
        b'(("TEXT" "PLAIN" NIL NIL NIL "7BIT" 12 1 NIL NIL NIL NIL)'
        b'("APPLICATION" "PDF" ("NAME" "r.pdf") NIL NIL "BASE64" 8 NIL'
        b' ("ATTACHMENT" ("FILENAME" "r.pdf")) ("en" "de") NIL)'
        b' "MIXED" ("BOUNDARY" "XX") NIL NIL NIL)'
    )


def test_bodystructure_nested_message() -> None:
    inner_env = (
        b'(NIL "orig" ((NIL NIL "inner" "example.org")) ((NIL NIL "inner" "example.org"))'
        b' ((NIL NIL "inner" "example.org")) NIL NIL NIL NIL NIL)'
    )
    inner_body = (
        b'(("TEXT" "PLAIN" NIL NIL NIL "7BIT" 2 1)("TEXT" "HTML" NIL NIL NIL "7BIT" 9 1)'
        b' "ALTERNATIVE")'
    )
    rfc822 = NESTED[NESTED.index(b"From: inner") : NESTED.index(b"\r\n--o--")]
    assert mime_bodystructure(NESTED, extensible=False) == (
        b'(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 4 1)'
        b'("MESSAGE" "RFC822" NIL NIL NIL "7BIT" '
        + str(len(rfc822)).encode()
        + b" "
        + inner_env
        + b" "
        + inner_body
        + b" "
        + str(rfc822.count(b"\n") + 1).encode()
        + b') "MIXED")'
    )


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        # Missing closing boundary: the last part runs to the end.
        (
            b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nabc\r\n",
            b'(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 5 1) "MIXED")',
        ),
        # LF-only line ends.
        (
            b"Content-Type: multipart/mixed; boundary=b\n\n"
            b"--b\nContent-Type: text/x\n\nab\n--b--\n",
            b'(("TEXT" "X" NIL NIL NIL "7BIT" 2 1) "MIXED")',
        ),
        # Multipart without boundary: shown as text/plain.
        (
            b"Content-Type: multipart/mixed\r\n\r\nab\r\n",
            b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 4 1)',
        ),
        # Boundary never seen: one empty text/plain part so the reply stays valid.
        (
            b"Content-Type: multipart/mixed; boundary=b\r\n\r\nnothing\r\n",
            b'(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 0 0) "MIXED")',
        ),
        # Garbage Content-Type and 8-bit header bytes.
        (
            b"Content-Type: \xff\xfe garbage\r\nX-\xe9: \xe9\r\n\r\nx",
            b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 1 1)',
        ),
        # No header at all.
        (b"\r\nbody", b'("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 4 1)'),
    ],
)
def test_bodystructure_broken(raw: bytes, want: bytes) -> None:
    assert mime_bodystructure(raw, extensible=False) == want


def test_deep_nesting_is_bounded() -> None:
    raw = b"Content-Type: message/rfc822\r\n\r\n" * 5000
    out = mime_bodystructure(raw)
    # Parsing stops at depth 100: the innermost part is a leaf.
    assert out.count(b'"RFC822"') == 101


def test_many_parts_bounded() -> None:
    raw = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + b"--b\r\n\r\nx\r\n" * 20000
    out = mime_bodystructure(raw, extensible=False)
    assert out.count(b'("TEXT"') == 9999


@pytest.mark.parametrize(
    ("spec", "want"),
    [
        ("", NESTED),
        ("HEADER", NESTED[: NESTED.index(b"\r\n\r\n") + 4]),
        ("TEXT", NESTED[NESTED.index(b"\r\n\r\n") + 4 :]),
        ("1", b"note"),
        ("1.MIME", b"\r\n"),
        ("2.MIME", b"Content-Type: message/rfc822\r\n\r\n"),
        ("2.HEADER.FIELDS (subject FROM)", b"From: inner@example.org\r\nSubject: orig\r\n\r\n"),
        ("2.1", b"hi"),
        ("2.2", b"<b>hi</b>"),
        ("2.2.MIME", b"Content-Type: text/html\r\n\r\n"),
        # A non-multipart part has exactly one sub-part, itself (as Dovecot answers).
        ("2.1.1", b"hi"),
        ("2.1.2", b""),
        ("3", b""),
        ("1.1", b"note"),
    ],
)
def test_sections(spec: str, want: bytes) -> None:
    assert mime_section(NESTED, spec) == want
    assert mime_section(NESTED, spec.encode()) == want


def test_section_text_of_rfc822_part() -> None:
    text = mime_section(NESTED, "2.TEXT")
    assert text.startswith(b"--i\r\n") and text.endswith(b"--i--")


def test_partial() -> None:
    assert mime_section(SIMPLE, "TEXT", (5, 3)) == b"one"
    assert mime_section(SIMPLE, "TEXT", (100, 3)) == b""
    assert mime_section(SIMPLE, "", (0, 10**9)) == SIMPLE


@pytest.mark.parametrize(
    "spec", ["0", "1.", "BOGUS", "MIME", "HEADER.FIELDS ()", "HEADER.FIELDS x"]
)
def test_bad_section(spec: str) -> None:
    with pytest.raises(ParseError):
        mime_section(SIMPLE, spec)


def test_header_fields() -> None:
    # Case-insensitive names, folded lines kept, the blank line always there.
    assert mime_header_fields(SIMPLE, [b"cc", b"SUBJECT"]) == (
        b"Subject: IMAP4rev2 WG mtg summary\r\n"
        b"Cc: minutes@CNRI.Reston.VA.US,\r\n"
        b" John Klensin <KLENSIN@MIT.EDU>\r\n"
        b"\r\n"
    )
    assert mime_header_fields(SIMPLE, [b"x-none"]) == b"\r\n"
    not_fields = mime_header_fields(
        SIMPLE, [b"date", b"from", b"subject", b"to", b"cc"], exclude=True
    )
    assert not_fields == b"Message-Id: <B27397-0100000@cac.washington.edu>\r\n\r\n"
    assert mime_section(SIMPLE, "HEADER.FIELDS.NOT (date from subject to cc)") == not_fields


def _leaves(msg: Message) -> list[bytes]:
    out: list[bytes] = []
    for part in msg.walk():
        if not part.is_multipart():
            payload = part.get_payload(decode=False)
            assert isinstance(payload, str)
            out.append(payload.encode("latin-1"))
    return out


@pytest.mark.parametrize("raw", [ALTERNATIVE, MIXED])
def test_parts_agree_with_email_package(raw: bytes) -> None:
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    leaves = _leaves(msg)
    for i, want in enumerate(leaves, start=1):
        assert mime_section(raw, str(i)) == want


@given(
    st.binary(max_size=300),
    st.sampled_from(["", "1", "2.1", "HEADER", "TEXT", "1.MIME", "2.HEADER"]),
)
def test_sections_never_raise(raw: bytes, spec: str) -> None:
    mime_section(raw, spec)
    mime_bodystructure(raw)
    mime_envelope(raw)
    assert mime_section(raw, "") == raw


mime_alphabet = st.sampled_from(
    [
        b"--b\r\n",
        b"--b--\r\n",
        b"\r\n",
        b"Content-Type: multipart/mixed; boundary=b\r\n",
        b"Content-Type: message/rfc822\r\n",
        b"x\n",
        b"\n",
        b" folded\r\n",
        b"\x00\xff",
    ]
)


@given(st.lists(mime_alphabet, max_size=40).map(b"".join))
def test_structured_noise_never_raises(raw: bytes) -> None:
    head = mime_section(raw, "HEADER")
    assert raw.startswith(head)
    assert head + mime_section(raw, "TEXT") == raw
    assert mime_bodystructure(raw).startswith(b"(")


BINARY_MSG = (
    b"Content-Type: multipart/mixed; boundary=b\r\n"
    b"\r\n"
    b"--b\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"AAECAw==\r\n"
    b"--b\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: Quoted-Printable\r\n"
    b"\r\n"
    b"caf=C3=A9=\r\n"
    b" ok\r\n"
    b"--b\r\n"
    b"Content-Transfer-Encoding: x-uuencode\r\n"
    b"\r\n"
    b"begin\r\n"
    b"--b--\r\n"
)


def test_binary_decodes_like_email_package() -> None:
    msg = email.message_from_bytes(BINARY_MSG, policy=email.policy.compat32)
    parts = [p for p in msg.walk() if not p.is_multipart()]
    assert mime_binary(BINARY_MSG, "1") == parts[0].get_payload(decode=True) == b"\x00\x01\x02\x03"
    assert mime_binary(BINARY_MSG, "2") == parts[1].get_payload(decode=True) == "café ok".encode()
    assert mime_binary(BINARY_MSG, "1", (1, 2)) == b"\x01\x02"
    assert mime_binary_size(BINARY_MSG, "1") == 4
    assert mime_binary_size(BINARY_MSG, b"2") == 8
    assert mime_binary(BINARY_MSG, "") == BINARY_MSG
    assert mime_binary(BINARY_MSG, "9") == b""


def test_binary_unknown_encoding_and_bad_part() -> None:
    with pytest.raises(DecodeError):
        mime_binary(BINARY_MSG, "3")
    with pytest.raises(ParseError):
        mime_binary(BINARY_MSG, "1.TEXT")


def test_large_message_from_threads() -> None:
    # Over 64 KiB the scan runs with the GIL released; results must not differ.
    from concurrent.futures import ThreadPoolExecutor

    raw = MIXED.replace(b"JVBERi0=\r\n", b"JVBERi0=\r\n" * 20000)
    want = mime_bodystructure(raw)
    # The CRLF before the closing boundary is not part of the attachment.
    assert b'"BASE64" 199998 NIL' in want
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda _: mime_bodystructure(raw), range(8)))
    assert got == [want] * 8
    assert mime_section(bytearray(raw), "2") == b"JVBERi0=\r\n" * 19999 + b"JVBERi0="
