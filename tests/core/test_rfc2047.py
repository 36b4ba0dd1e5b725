"""RFC 2047 encoded-words: mailcore.codecs.decode_header / encode_header."""

from __future__ import annotations

import base64
import email.header
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailcore.codecs import decode_header, encode_header


def stdlib_decode(value: str) -> str:
    # A header is unfolded (RFC 5322 2.2.3) before email.header sees it.
    unfolded = re.sub(r"\r\n([ \t])", r"\1", value)
    return str(email.header.make_header(email.header.decode_header(unfolded)))


# RFC 2047 section 8, "encoded form" and "displayed as".
SECTION_8 = [
    ("(=?ISO-8859-1?Q?a?=)", "(a)"),
    ("(=?ISO-8859-1?Q?a?= b)", "(a b)"),
    ("(=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=)", "(ab)"),
    ("(=?ISO-8859-1?Q?a?=  =?ISO-8859-1?Q?b?=)", "(ab)"),
    ("(=?ISO-8859-1?Q?a?=\r\n    =?ISO-8859-1?Q?b?=)", "(ab)"),
    ("(=?ISO-8859-1?Q?a_b?=)", "(a b)"),
    ("(=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=)", "(a b)"),
    ("=?US-ASCII?Q?Keith_Moore?= <moore@cs.utk.edu>", "Keith Moore <moore@cs.utk.edu>"),
    ("=?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?= <keld@dkuug.dk>", "Keld Jørn Simonsen <keld@dkuug.dk>"),
    (
        "=?ISO-8859-1?Q?Andr=E9?= Pirard <PIRARD@vm1.ulg.ac.be>",
        "André Pirard <PIRARD@vm1.ulg.ac.be>",
    ),
    (
        "=?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?=\r\n"
        "    =?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?=",
        "If you can read this you understand the example.",
    ),
    (
        "Nathaniel Borenstein <nsb@thumper.bellcore.com>\r\n"
        "    (=?iso-8859-8?b?7eXs+SDv4SDp7Oj08A==?=)",
        "Nathaniel Borenstein <nsb@thumper.bellcore.com>    (םולש ןב ילטפנ)",
    ),
]


@pytest.mark.parametrize(("encoded", "displayed"), SECTION_8)
def test_rfc2047_section_8_examples(encoded: str, displayed: str) -> None:
    assert decode_header(encoded) == displayed
    assert decode_header(encoded.encode()) == displayed


# email.header agrees with the RFC on every example but one (below).
STDLIB_AGREES = SECTION_8[:7] + SECTION_8[8:]


@pytest.mark.parametrize(("encoded", "displayed"), STDLIB_AGREES)
def test_section_8_examples_match_email_header(encoded: str, displayed: str) -> None:
    assert decode_header(encoded) == stdlib_decode(encoded) == displayed


def test_email_header_adds_a_space_the_rfc_does_not() -> None:
    # Deliberate difference: email.header turns the white space after a
    # us-ascii word into a separate chunk and adds a space when joining.
    encoded, displayed = SECTION_8[7]
    assert stdlib_decode(encoded) == "Keith Moore  <moore@cs.utk.edu>"
    assert decode_header(encoded) == displayed


@pytest.mark.parametrize(
    ("charset", "text"),
    [
        ("utf-8", "Grüße, 日本語"),
        ("us-ascii", "plain"),
        ("iso-8859-1", "Café"),
        ("iso-8859-2", "Łódź"),
        ("iso-8859-5", "Привет"),
        ("iso-8859-7", "Καλημέρα"),
        ("iso-8859-15", "€uro"),
        ("windows-1250", "Příliš"),
        ("windows-1251", "Здравствуйте"),
        ("windows-1252", "“quoted” – dash"),
        ("koi8-r", "Тест"),
        ("shift_jis", "日本語"),
        ("gb2312", "中文"),
    ],
)
def test_charsets(charset: str, text: str) -> None:
    raw = text.encode(charset)
    for word in (
        email.header.Header(raw.decode(charset), charset).encode(),
        f"=?{charset}?b?{base64.b64encode(raw).decode()}?=",
    ):
        assert decode_header(word) == text, word
    encoded = encode_header(text, charset=charset)
    assert decode_header(encoded) == text
    assert stdlib_decode(encoded) == text


def test_malformed_and_unknown_words_are_left_as_they_are() -> None:
    for value in [
        "=?utf-8?x?abc?=",
        "=?utf-8?q?abc",
        "=??q?abc?=",
        "=?no-such-charset?q?abc?=",
        "a =?utf-8?q?a b?=",
    ]:
        assert decode_header(value) == value
    assert decode_header("=?utf-8*en?q?caf=C3=A9?=") == "café"  # RFC 2231 language
    assert decode_header(b"caf\xc3\xa9 =?utf-8?q?ok?=") == "café ok"
    assert decode_header(b"bad \xff") == "bad \ufffd"


def test_encode_only_what_needs_it() -> None:
    assert encode_header("hello world") == "hello world"
    assert encode_header("café au lait") == "=?utf-8?b?Y2Fmw6k=?= au lait"
    assert encode_header("a Hélloworld") == "a =?utf-8?q?H=C3=A9lloworld?="
    # Text that looks like an encoded-word is encoded so it reads back as itself.
    assert decode_header(encode_header("=?utf-8?q?x?=")) == "=?utf-8?q?x?="


def test_encode_refuses_impossible_requests() -> None:
    with pytest.raises(ValueError, match="max_line"):
        encode_header("é", max_line=10)
    with pytest.raises(LookupError):
        encode_header("é", charset="no-such-charset")
    with pytest.raises(UnicodeEncodeError):
        encode_header("日本", charset="iso-8859-2")
    with pytest.raises(ValueError, match="charset"):
        encode_header("é", charset="utf-8?q?")


texts = st.text(
    st.characters(blacklist_categories=["Cs"]),
    max_size=200,
)
words = st.lists(
    st.text(st.characters(blacklist_categories=("Cs", "Zs", "Cc")), min_size=1, max_size=30),
    max_size=20,
).map(" ".join)


@given(texts, st.integers(min_value=26, max_value=200))
def test_encode_then_decode_gives_the_text_back(text: str, max_line: int) -> None:
    encoded = encode_header(text, max_line=max_line)
    assert decode_header(encoded) == text
    # Only printable ASCII, and folds are CRLF + white space.
    lines = encoded.split("\r\n")
    assert all(line.isascii() and line.replace("\t", " ").isprintable() for line in lines)
    assert all(line[:1] in (" ", "\t") for line in lines[1:])


@given(words, st.integers(min_value=26, max_value=200))
def test_encoded_lines_fit_and_email_header_reads_them(text: str, max_line: int) -> None:
    encoded = encode_header(text, max_line=max_line)
    assert all(len(line) <= max_line for line in encoded.split("\r\n"))
    assert stdlib_decode(encoded) == text
