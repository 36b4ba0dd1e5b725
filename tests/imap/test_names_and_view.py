"""Modified UTF-7, mailbox name checks, the selected-mailbox view and search keys."""

from __future__ import annotations

import imapclient.imap_utf7 as reference
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailcore.imap import command as c
from mailcore.imap.mutf7 import MailboxNameError, check_name, decode, encode
from mailcore.imap.replies import compress_set, flag_list, internal_date
from mailcore.imap.search import Need, SearchContext, matches, needs
from mailcore.imap.selected import Index, View
from mailcore.store.base import Change, ChangeKind, MessageMeta

# RFC 3501 section 5.1.3 example and a few more.
EXAMPLES = [
    ("~peter/mail/\u53f0\u5317/\u65e5\u672c\u8a9e", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
    ("äpfel & Birnen", "&AOQ-pfel &- Birnen"),
    ("Entwürfe", "Entw&APw-rfe"),
    ("&", "&-"),
    ("plain", "plain"),
]


@pytest.mark.parametrize(("text", "wire"), EXAMPLES)
def test_rfc3501_examples(text: str, wire: str) -> None:
    assert encode(text) == wire
    assert decode(wire) == text


@given(st.text(st.characters(exclude_categories=["Cs"]), max_size=30))
def test_round_trip_and_agreement_with_imapclient(text: str) -> None:
    wire = encode(text)
    assert wire.isascii()
    assert decode(wire) == text
    assert wire.encode("ascii") == reference.encode(text)


@pytest.mark.parametrize("bad", ["&", "&AOQ", "&Jjo!-", "&AGEAYgBj-", "caf\u00e9", "&AOQ"])
def test_malformed_modified_utf7(bad: str) -> None:
    with pytest.raises(MailboxNameError):
        decode(bad)


@pytest.mark.parametrize(
    "bad", ["", "/abs", "a//b", "a/../b", "..", "./x", "a/.", "x*y", "x%", "a\x01"]
)
def test_refused_names(bad: str) -> None:
    with pytest.raises(MailboxNameError):
        check_name(bad)


def test_inbox_is_case_insensitive_and_trailing_delimiter_dropped() -> None:
    assert check_name("inbox") == "INBOX"
    assert check_name("Inbox/Sub") == "INBOX/Sub"
    assert check_name("Work/") == "Work"
    assert check_name("InboxOther") == "InboxOther"


def test_formatting_helpers() -> None:
    assert compress_set([1, 2, 3, 7, 9, 10]) == "1:3,7,9:10"
    assert compress_set([]) == ""
    assert flag_list(["$x", "\\Seen", "\\Answered"]) == b"(\\Answered \\Seen $x)"
    assert internal_date(0.0) == b"01-Jan-1970 00:00:00 +0000"


def meta(uid: int, flags: tuple[str, ...] = (), size: int = 100) -> MessageMeta:
    return MessageMeta(uid, size, 1.7e9, frozenset(flags), uid, 10, {})


def view(*uids: int) -> View:
    index = Index([meta(u) for u in uids])
    return View("INBOX", index, read_only=False, uidvalidity=7, uidnext=100)


def test_resolve_sequence_and_uid_sets() -> None:
    v = view(3, 5, 9, 12)
    assert v.resolve(c.SequenceSet(((2, None),)), uid=False) == [5, 9, 12]
    assert v.resolve(c.SequenceSet(((None, 2),)), uid=False) == [5, 9, 12]
    assert v.resolve(c.SequenceSet(((4, 9), (1, 1))), uid=True) == [5, 9]
    assert v.resolve(c.SequenceSet(((20, None),)), uid=True) == [12]  # "*" is the largest UID
    assert v.resolve(c.SequenceSet(((13, 20),)), uid=True) == []
    assert v.seq_valid(c.SequenceSet(((1, 4),)))
    assert not v.seq_valid(c.SequenceSet(((5, 5),)))
    v.saved = [9, 3, 40]
    assert v.resolve(c.SequenceSet((), saved=True), uid=False) == [9, 3]


def test_updates_hold_expunges_when_not_allowed() -> None:
    v = view(1, 2, 3)
    new = v.apply(
        [
            Change(ChangeKind.EXPUNGED, 2, 5, frozenset(), "other"),
            Change(ChangeKind.FLAGS, 3, 6, frozenset({"\\Seen"}), "other"),
            Change(ChangeKind.APPENDED, 4, 7, frozenset(), "other"),
        ]
    )
    assert new == [4]
    v.add([meta(4)], recent=[4])
    # During FETCH/STORE/SEARCH: EXISTS and FLAGS only; message 2 is still number 2.
    out = v.updates(expunges=False, rev2=False)
    assert out == b"* 4 EXISTS\r\n* 1 RECENT\r\n* 3 FETCH (UID 3 FLAGS (\\Seen))\r\n"
    assert v.is_ghost(2) and v.seq_of(3) == 3
    assert v.updates(expunges=True, rev2=False) == b"* 2 EXPUNGE\r\n"
    assert v.uids == [1, 3, 4]
    assert v.updates(expunges=True, rev2=False) == b""


def test_own_expunge_numbers_from_the_top() -> None:
    v = view(1, 2, 3, 4)
    assert v.remove([2, 3]) == b"* 2 EXPUNGE\r\n* 2 EXPUNGE\r\n"
    assert v.uids == [1, 4]


def ctx(v: View, uid: int, raw: bytes) -> SearchContext:
    seq = v.seq_of(uid) or 0
    return SearchContext(v, uid, seq, v.meta[uid], False, raw)


RAW = (
    b"From: =?utf-8?q?J=C3=BCrgen?= <j@example.org>\r\nSubject: Hello\r\n World\r\n"
    b"Date: Tue, 05 Mar 2024 09:00:00 +0000\r\nX-Tag: Blue\r\n\r\nThe Body Text\r\n"
)


@pytest.mark.parametrize(
    ("key", "hit"),
    [
        (c.SearchText("FROM", "jürgen".encode()), True),
        (c.SearchText("SUBJECT", b"hello world"), True),
        (c.SearchText("BODY", b"body text"), True),
        (c.SearchText("BODY", b"hello"), False),
        (c.SearchText("TEXT", b"hello"), True),
        (c.SearchHeader("X-TAG", b"blu"), True),
        (c.SearchHeader("X-Other", b""), False),
        (c.SearchHeader("X-Tag", b""), True),
        (c.SearchNot(c.SearchSize(True, 50)), False),
        (c.SearchOr(c.SearchFlag("\\Seen", True), c.SearchUid(c.SequenceSet(((2, 2),)))), True),
        (c.SearchAnd((c.SearchSequence(c.SequenceSet(((2, None),))), c.SearchAll())), True),
    ],
)
def test_search_keys(key: c.SearchKey, hit: bool) -> None:
    v = view(1, 2)
    assert matches(key, ctx(v, 2, RAW)) is hit


def test_search_needs() -> None:
    assert needs(c.SearchAll()) is Need.META
    assert needs(c.SearchNot(c.SearchText("FROM", b"x"))) is Need.HEADER
    assert needs(c.SearchOr(c.SearchAll(), c.SearchText("BODY", b"x"))) is Need.FULL


_names = st.sampled_from([b"UID", b"FLAGS", b"BODY[]", b"BODY[TEXT]", b"RFC822", b"BINARY[1]"])
_values = st.one_of(
    st.integers(0, 2**32),
    st.none(),
    st.binary(max_size=40),
    # Large bodies: always with a line end, so write_fetch picks a literal too.
    st.binary(min_size=1024, max_size=3000).map(lambda b: b + b"\r\n"),
)


@given(st.lists(st.tuples(st.integers(1, 10**6), st.lists(st.tuples(_names, _values), max_size=4))))
def test_write_large_matches_the_core_writer(
    batch: list[tuple[int, list[tuple[bytes, int | bytes | None]]]],
) -> None:
    from mailcore import _core
    from mailcore.imap.fetch import write_large

    # FLAGS values are written verbatim by both; give them list syntax.
    fixed = [
        (seq, [(n, b"(\\Seen)" if n == b"FLAGS" else v) for n, v in items]) for seq, items in batch
    ]
    assert write_large(fixed) == _core.write_fetch(fixed)


def test_write_large_sends_long_lines_as_literals() -> None:
    from mailcore.imap.fetch import write_large

    body = b"a" * 2000
    assert write_large([(3, [(b"UID", 9), (b"BODY[]", body)])]) == (
        b"* 3 FETCH (UID 9 BODY[] {2000}\r\n" + body + b")\r\n"
    )
