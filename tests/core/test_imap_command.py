"""IMAP command grammar: every command form, RFC 9051 examples, errors and limits."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailcore.imap.command import (
    Append,
    Authenticate,
    Capability,
    Check,
    Close,
    Command,
    CommandReady,
    CommandSyntaxError,
    Copy,
    Create,
    Delete,
    Enable,
    Expunge,
    Fetch,
    FetchAttribute,
    Id,
    Idle,
    List,
    LiteralAnnounced,
    Login,
    Logout,
    Lsub,
    Move,
    Namespace,
    Noop,
    Rename,
    Search,
    SearchAll,
    SearchAnd,
    SearchDate,
    SearchFlag,
    SearchHeader,
    SearchKey,
    SearchNot,
    SearchOr,
    SearchSequence,
    SearchSize,
    SearchText,
    SearchUid,
    Section,
    Select,
    SequenceSet,
    StartTLS,
    Status,
    Store,
    Subscribe,
    Unselect,
    Unsubscribe,
    new_fragmenter,
    parse_command,
)
from mailcore.limits import ImapLimits
from tests.helpers import splits


def _frame_and_parse(chunks: list[bytes]) -> list[Command]:
    """Run the chunks through the fragmenter (accepting literals), then the grammar."""
    f = new_fragmenter()
    out: list[Command] = []
    for chunk in chunks:
        f.feed(chunk)
        while (item := f.next()) is not None:
            if isinstance(item, LiteralAnnounced):
                f.accept_literal()
            else:
                assert isinstance(item, CommandReady)
                out.append(parse_command(item.data))
    return out


def _seq(*ranges: tuple[int | None, int | None]) -> SequenceSet:
    return SequenceSet(ranges)


FAST = (FetchAttribute("FLAGS"), FetchAttribute("INTERNALDATE"), FetchAttribute("RFC822.SIZE"))
UTC_MINUS_8 = datetime.timezone(datetime.timedelta(hours=-8))

CASES: list[tuple[bytes, Command]] = [
    (b"abcd CAPABILITY\r\n", Capability("abcd")),
    (b"a002 NOOP\r\n", Noop("a002")),
    (b"A023 LOGOUT\r\n", Logout("A023")),
    (b"a001 STARTTLS\r\n", StartTLS("a001")),
    (b"A001 AUTHENTICATE GSSAPI\r\n", Authenticate("A001", "GSSAPI", None)),
    (b"a authenticate plain AGJvYgBwdw==\r\n", Authenticate("a", "PLAIN", b"AGJvYgBwdw==")),
    (b"a AUTHENTICATE EXTERNAL =\r\n", Authenticate("a", "EXTERNAL", b"")),
    (b"a001 LOGIN SMITH SESAME\r\n", Login("a001", b"SMITH", b"SESAME")),
    (b'a LOGIN "fred \\"x\\"" {5}\r\np\\w d\r\n', Login("a", b'fred "x"', b"p\\w d")),
    (b"t2 ENABLE CONDSTORE utf8=accept\r\n", Enable("t2", ("CONDSTORE", "UTF8=ACCEPT"))),
    (b"A142 SELECT INBOX\r\n", Select("A142", "INBOX", False, ())),
    (b"A142 SELECT inBox\r\n", Select("A142", "INBOX", False, ())),
    (b"A932 EXAMINE blurdybloop\r\n", Select("A932", "blurdybloop", True, ())),
    (
        b"a SELECT x (CONDSTORE QRESYNC (1 2))\r\n",
        Select("a", "x", False, (("CONDSTORE", None), ("QRESYNC", b"(1 2)"))),
    ),
    (b"A003 CREATE owatagusiam/\r\n", Create("A003", "owatagusiam/")),
    (b"A683 DELETE blurdybloop\r\n", Delete("A683", "blurdybloop")),
    (b"A683 RENAME blurdybloop sarasoop\r\n", Rename("A683", "blurdybloop", "sarasoop")),
    (b"A002 SUBSCRIBE #news.comp.mail.mime\r\n", Subscribe("A002", "#news.comp.mail.mime")),
    (b"A002 UNSUBSCRIBE #news.comp.mail.mime\r\n", Unsubscribe("A002", "#news.comp.mail.mime")),
    (b'A101 LIST "" ""\r\n', List("A101", "", ("",), (), (), ())),
    (b"A102 LIST ~/Mail/ %\r\n", List("A102", "~/Mail/", ("%",), (), (), ())),
    (
        b'A02 LIST (SUBSCRIBED RECURSIVEMATCH) "" (% "*/x") RETURN (CHILDREN SPECIAL-USE)\r\n',
        List(
            "A02",
            "",
            ("%", "*/x"),
            ("SUBSCRIBED", "RECURSIVEMATCH"),
            ("CHILDREN", "SPECIAL-USE"),
            (),
        ),
    ),
    (
        b'A01 LIST "" % RETURN (STATUS (MESSAGES UNSEEN))\r\n',
        List("A01", "", ("%",), (), ("STATUS",), ("MESSAGES", "UNSEEN")),
    ),
    (b'A002 LSUB "#news." "comp.mail.*"\r\n', Lsub("A002", "#news.", "comp.mail.*")),
    (b"A001 NAMESPACE\r\n", Namespace("A001")),
    (
        b"A042 STATUS blurdybloop (UIDNEXT MESSAGES)\r\n",
        Status("A042", "blurdybloop", ("UIDNEXT", "MESSAGES")),
    ),
    (
        b'A003 APPEND saved-messages (\\Seen) " 7-Feb-1994 21:52:25 -0800" {11}\r\n'
        b"Date: x\r\n\r\n\r\n",
        Append(
            "A003",
            "saved-messages",
            ("\\Seen",),
            datetime.datetime(1994, 2, 7, 21, 52, 25, tzinfo=UTC_MINUS_8),
            b"Date: x\r\n\r\n",
            False,
        ),
    ),
    (b"a APPEND INBOX {3+}\r\nabc\r\n", Append("a", "INBOX", (), None, b"abc", False)),
    (b"a APPEND INBOX ~{3}\r\na\x00c\r\n", Append("a", "INBOX", (), None, b"a\x00c", True)),
    (
        b"a APPEND INBOX (\\Seen) UTF8 (~{2}\r\n\xc3\xa9)\r\n",
        Append("a", "INBOX", ("\\Seen",), None, b"\xc3\xa9", True, True),
    ),
    (b"a IDLE\r\n", Idle("a")),
    (b"FXXZ CHECK\r\n", Check("FXXZ")),
    (b"A341 CLOSE\r\n", Close("A341")),
    (b"A342 UNSELECT\r\n", Unselect("A342")),
    (b"A202 EXPUNGE\r\n", Expunge("A202", None)),
    (b"A003 UID EXPUNGE 3000:3002\r\n", Expunge("A003", _seq((3000, 3002)))),
    (
        b'A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"\r\n',
        Search(
            "A282",
            False,
            None,
            ("MIN", "COUNT"),
            SearchAnd(
                (
                    SearchFlag("\\Flagged", True),
                    SearchDate("internal", "since", datetime.date(1994, 2, 1)),
                    SearchNot(SearchText("FROM", b"Smith")),
                )
            ),
        ),
    ),
    (
        b"A284 SEARCH CHARSET UTF-8 TEXT {12}\r\n" + "Ньютон".encode() + b"\r\n",
        Search("A284", False, "UTF-8", None, SearchText("TEXT", "Ньютон".encode())),
    ),
    (
        b"a UID SEARCH RETURN () OR (1:3 UID 5,7:*) $\r\n",
        Search(
            "a",
            True,
            None,
            (),
            SearchOr(
                SearchAnd((SearchSequence(_seq((1, 3))), SearchUid(_seq((5, 5), (7, None))))),
                SearchSequence(SequenceSet((), saved=True)),
            ),
        ),
    ),
    (
        b'a SEARCH ALL NEW OLD LARGER 10 SMALLER 20 HEADER X-Y "" KEYWORD $Junk UNKEYWORD a\r\n',
        Search(
            "a",
            False,
            None,
            None,
            SearchAnd(
                (
                    SearchAll(),
                    SearchAnd((SearchFlag("\\Recent", True), SearchFlag("\\Seen", False))),
                    SearchFlag("\\Recent", False),
                    SearchSize(True, 10),
                    SearchSize(False, 20),
                    SearchHeader("X-Y", b""),
                    SearchFlag("$Junk", True),
                    SearchFlag("a", False),
                )
            ),
        ),
    ),
    (
        b'a SEARCH SENTBEFORE "1-Jan-2020" SENTON 29-Feb-2020 SENTSINCE 2-Mar-2021 '
        b"BEFORE 3-Apr-2022 ON 4-May-2023\r\n",
        Search(
            "a",
            False,
            None,
            None,
            SearchAnd(
                (
                    SearchDate("sent", "before", datetime.date(2020, 1, 1)),
                    SearchDate("sent", "on", datetime.date(2020, 2, 29)),
                    SearchDate("sent", "since", datetime.date(2021, 3, 2)),
                    SearchDate("internal", "before", datetime.date(2022, 4, 3)),
                    SearchDate("internal", "on", datetime.date(2023, 5, 4)),
                )
            ),
        ),
    ),
    (
        b"a SEARCH ANSWERED DELETED DRAFT SEEN RECENT UNANSWERED UNDELETED UNDRAFT "
        b"UNFLAGGED UNSEEN BCC a BODY b CC c SUBJECT d TO e\r\n",
        Search(
            "a",
            False,
            None,
            None,
            SearchAnd(
                (
                    SearchFlag("\\Answered", True),
                    SearchFlag("\\Deleted", True),
                    SearchFlag("\\Draft", True),
                    SearchFlag("\\Seen", True),
                    SearchFlag("\\Recent", True),
                    SearchFlag("\\Answered", False),
                    SearchFlag("\\Deleted", False),
                    SearchFlag("\\Draft", False),
                    SearchFlag("\\Flagged", False),
                    SearchFlag("\\Seen", False),
                    SearchText("BCC", b"a"),
                    SearchText("BODY", b"b"),
                    SearchText("CC", b"c"),
                    SearchText("SUBJECT", b"d"),
                    SearchText("TO", b"e"),
                )
            ),
        ),
    ),
    (
        b"A654 FETCH 2:4 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])\r\n",
        Fetch(
            "A654",
            False,
            _seq((2, 4)),
            (
                FetchAttribute("FLAGS"),
                FetchAttribute("BODY", Section((), "HEADER.FIELDS", ("DATE", "FROM"))),
            ),
            None,
        ),
    ),
    (b"a FETCH 1 FAST\r\n", Fetch("a", False, _seq((1, 1)), FAST, None)),
    (
        b"a FETCH 1 ALL\r\n",
        Fetch("a", False, _seq((1, 1)), (*FAST, FetchAttribute("ENVELOPE")), None),
    ),
    (
        b"a FETCH * full\r\n",
        Fetch(
            "a",
            False,
            _seq((None, None)),
            (*FAST, FetchAttribute("ENVELOPE"), FetchAttribute("BODY")),
            None,
        ),
    ),
    (
        b"A999 UID FETCH 4827313:4828442 FLAGS (CHANGEDSINCE 12345)\r\n",
        Fetch("A999", True, _seq((4827313, 4828442)), (FetchAttribute("FLAGS"),), 12345),
    ),
    (
        b"a FETCH 1 (ENVELOPE UID RFC822 RFC822.HEADER RFC822.TEXT BODYSTRUCTURE MODSEQ BODY[] "
        b"BODY.PEEK[1.2.MIME] BODY[2.TEXT]<10.20> BODY[3.HEADER.FIELDS.NOT (x)] BINARY[1]<0.5> "
        b"BINARY.PEEK[] BINARY.SIZE[2.1] BODY[HEADER] BODY[4])\r\n",
        Fetch(
            "a",
            False,
            _seq((1, 1)),
            (
                FetchAttribute("ENVELOPE"),
                FetchAttribute("UID"),
                FetchAttribute("RFC822"),
                FetchAttribute("RFC822.HEADER"),
                FetchAttribute("RFC822.TEXT"),
                FetchAttribute("BODYSTRUCTURE"),
                FetchAttribute("MODSEQ"),
                FetchAttribute("BODY", Section(())),
                FetchAttribute("BODY", Section((1, 2), "MIME"), None, True),
                FetchAttribute("BODY", Section((2,), "TEXT"), (10, 20)),
                FetchAttribute("BODY", Section((3,), "HEADER.FIELDS.NOT", ("X",))),
                FetchAttribute("BINARY", Section((1,)), (0, 5)),
                FetchAttribute("BINARY", Section(()), None, True),
                FetchAttribute("BINARY.SIZE", Section((2, 1))),
                FetchAttribute("BODY", Section((), "HEADER")),
                FetchAttribute("BODY", Section((4,))),
            ),
            None,
        ),
    ),
    (
        b"A003 STORE 2:4 +FLAGS (\\Deleted)\r\n",
        Store("A003", False, _seq((2, 4)), "add", False, ("\\Deleted",), None),
    ),
    (
        b"a UID STORE 1 (UNCHANGEDSINCE 7) -FLAGS.SILENT \\seen $x\r\n",
        Store("a", True, _seq((1, 1)), "remove", True, ("\\Seen", "$x"), 7),
    ),
    (b"a STORE $ FLAGS ()\r\n", Store("a", False, SequenceSet((), True), "set", False, (), None)),
    (b"A003 COPY 2:4 MEETING\r\n", Copy("A003", False, _seq((2, 4)), "MEETING")),
    (b"a UID COPY 1,5:3 inbox\r\n", Copy("a", True, _seq((1, 1), (5, 3)), "INBOX")),
    (b"a MOVE 1 x\r\n", Move("a", False, _seq((1, 1)), "x")),
    (b"a UID MOVE 1:* x\r\n", Move("a", True, _seq((1, None)), "x")),
    (
        b'a023 ID ("name" "sodr" "version" "19.34" "os" NIL)\r\n',
        Id("a023", (("name", "sodr"), ("version", "19.34"), ("os", None))),
    ),
    (b"a ID NIL\r\n", Id("a", None)),
]


@pytest.mark.parametrize(("data", "expected"), CASES)
def test_command_whole_and_split(data: bytes, expected: Command) -> None:
    assert parse_command(data) == expected
    assert _frame_and_parse([data[i : i + 1] for i in range(len(data))]) == [expected]
    assert _frame_and_parse([data]) == [expected]


def test_pipelined_commands_any_split() -> None:
    stream = b"".join(data for data, _ in CASES[:12])
    expected = [cmd for _, cmd in CASES[:12]]
    for chunks in splits(stream):
        assert _frame_and_parse(chunks) == expected


ERRORS: list[tuple[bytes, str | None, int, str]] = [
    (b"\r\n", None, 0, "tag"),
    (b"+ NOOP\r\n", None, 0, "tag"),
    (b"a FOO\r\n", "a", 2, "command name"),
    (b"a SELECT\r\n", "a", 8, "SP"),
    (b"a FETCH 0 FLAGS\r\n", "a", 8, "sequence set"),
    (b"a FETCH 1 BODY[1.MIMEX]\r\n", "a", 21, "] closing the section"),
    (
        b"a FETCH 1 BODY[MIME]\r\n",
        "a",
        15,
        "HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT or MIME",
    ),
    (b"a FETCH 1 BODY[]<5.0>\r\n", "a", 19, "non-zero partial length"),
    (b"a SEARCH SINCE 31-Apr-2020\r\n", "a", 15, "valid day of the month"),
    (b"a SEARCH SINCE 1-Foo-2020\r\n", "a", 17, "month name (Jan..Dec)"),
    (b"a SEARCH BOGUS\r\n", "a", 9, "search key"),
    (b"a SEARCH RETURN (BIGGEST) ALL\r\n", "a", 17, "MIN, MAX, ALL, COUNT or SAVE"),
    (b'a LOGIN "bob\r\n', "a", 12, "closing DQUOTE"),
    (b'a LOGIN "b\\ob" x\r\n', "a", 11, '\\" or \\\\ in a quoted string'),
    (b"a NOOP extra\r\n", "a", 6, "end of command (CRLF)"),
    (b"a STORE 1 FLAG x\r\n", "a", 10, "FLAGS, +FLAGS or -FLAGS (optionally .SILENT)"),
    (b"a UID FROB 1\r\n", "a", 6, "FETCH, STORE, SEARCH, COPY, MOVE or EXPUNGE"),
    (
        b'a APPEND x "7-Feb-1994 25:00:00 +0000" {1}\r\nx\r\n',
        "a",
        11,
        'date-time ("dd-Mon-yyyy hh:mm:ss +zzzz")',
    ),
    (b"a APPEND x {3}\r\na\x00c\r\n", "a", 17, "no NUL in a literal (literal8 allows it)"),
    (b"a STATUS x (FOO)\r\n", "a", 12, "status item"),
    (b"a APPEND x UTF8 ({1}\r\nx)\r\n", "a", 17, "literal8 (~{n}) after UTF8 ("),
]


@pytest.mark.parametrize(("data", "tag", "offset", "expected"), ERRORS)
def test_errors_name_tag_argument_and_offset(
    data: bytes, tag: str | None, offset: int, expected: str
) -> None:
    with pytest.raises(CommandSyntaxError) as info:
        parse_command(data)
    err = info.value
    assert (err.tag, err.offset, err.expected) == (tag, offset, expected)
    assert err.bad_text() == f"expected {expected} at offset {offset}"


def test_nesting_and_range_limits() -> None:
    tight = ImapLimits(nesting_depth=3, sequence_ranges=2)
    assert parse_command(b"a SEARCH NOT (SEEN)\r\n", tight) == Search(
        "a", False, None, None, SearchNot(SearchFlag("\\Seen", True))
    )
    with pytest.raises(CommandSyntaxError, match="less deeply nested"):
        parse_command(b"a SEARCH NOT NOT NOT SEEN\r\n", tight)
    with pytest.raises(CommandSyntaxError, match="fewer sequence ranges"):
        parse_command(b"a FETCH 1,2,3 UID\r\n", tight)
    # Deep nesting is refused with an error, never a crash or RecursionError.
    for deep in (
        b"(" * 50_000 + b"ALL" + b")" * 50_000,
        b"OR ALL " * 50_000 + b"ALL",
        b"NOT " * 50_000 + b"ALL",
    ):
        with pytest.raises(CommandSyntaxError, match="less deeply nested"):
            parse_command(b"a SEARCH " + deep + b"\r\n")


def test_sequence_set_contains() -> None:
    s = SequenceSet(((1, 3), (7, None), (12, 10)))
    assert [n for n in range(1, 16) if s.contains(n, 8)] == [1, 2, 3, 7, 8, 10, 11, 12]


# ------------------------------------------------------ rendering round trips

_number = st.integers(1, 2**32 - 1)
_seq_number = st.one_of(st.none(), _number)


def _render_number(n: int | None) -> str:
    return "*" if n is None else str(n)


def _render_set(s: SequenceSet) -> str:
    if s.saved:
        return "$"
    return ",".join(
        _render_number(a) if a == b else f"{_render_number(a)}:{_render_number(b)}"
        for a, b in s.ranges
    )


_sets = st.lists(st.tuples(_seq_number, _seq_number), min_size=1, max_size=20).map(
    lambda r: SequenceSet(tuple(r))
)


@given(_sets)
def test_sequence_set_round_trip(s: SequenceSet) -> None:
    parsed = parse_command(f"a UID FETCH {_render_set(s)} UID\r\n".encode())
    assert isinstance(parsed, Fetch)
    assert parsed.sequence == s


_text = st.binary(min_size=0, max_size=40).filter(
    lambda b: b"\r" not in b and b"\n" not in b and b"\0" not in b
)


def _quote(b: bytes) -> bytes:
    return b'"' + b.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


@given(_text, _text)
def test_quoted_and_literal_strings_round_trip(user: bytes, password: bytes) -> None:
    data = b"a LOGIN " + _quote(user) + b" {%d}\r\n" % len(password) + password + b"\r\n"
    assert parse_command(data) == Login("a", user, password)


_flags = ["\\Seen", "\\Answered", "\\Flagged", "\\Deleted", "\\Draft"]
_leaf = st.one_of(
    st.sampled_from(_flags).flatmap(
        lambda f: st.sampled_from([SearchFlag(f, True), SearchFlag(f, False)])
    ),
    st.builds(SearchSize, st.booleans(), st.integers(0, 2**40)),
    st.builds(
        SearchText, st.sampled_from(["BCC", "BODY", "CC", "FROM", "SUBJECT", "TEXT", "TO"]), _text
    ),
    st.builds(SearchUid, _sets),
    st.builds(SearchSequence, _sets),
    st.builds(
        SearchDate,
        st.sampled_from(["internal", "sent"]),
        st.sampled_from(["before", "on", "since"]),
        st.dates(),
    ),
)
_keys = st.recursive(
    _leaf,
    lambda inner: st.one_of(
        st.builds(SearchNot, inner),
        st.builds(SearchOr, inner, inner),
        st.lists(inner, min_size=2, max_size=3).map(lambda k: SearchAnd(tuple(k))),
    ),
    max_leaves=12,
)
_FLAG_WORDS = {
    "\\Seen": "SEEN",
    "\\Answered": "ANSWERED",
    "\\Flagged": "FLAGGED",
    "\\Deleted": "DELETED",
}
_FLAG_WORDS["\\Draft"] = "DRAFT"
_DATE_WORDS = {"internal": "", "sent": "SENT"}
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def _render_key(k: SearchKey) -> bytes:
    match k:
        case SearchFlag(flag, set_):
            return (("" if set_ else "UN") + _FLAG_WORDS[flag]).encode()
        case SearchSize(larger, size):
            return f"{'LARGER' if larger else 'SMALLER'} {size}".encode()
        case SearchText(field, value):
            return field.encode() + b" " + _quote(value)
        case SearchUid(s):
            return f"UID {_render_set(s)}".encode()
        case SearchSequence(s):
            return _render_set(s).encode()
        case SearchDate(field, when, d):
            day = f"{d.day}-{_MONTHS[d.month - 1]}-{d.year:04d}"
            return f"{_DATE_WORDS[field]}{when.upper()} {day}".encode()
        case SearchNot(inner):
            return b"NOT " + _render_key(inner)
        case SearchOr(left, right):
            return b"OR " + _render_key(left) + b" " + _render_key(right)
        case SearchAnd(keys):
            return b"(" + b" ".join(_render_key(x) for x in keys) + b")"
    raise AssertionError(k)


@given(_keys)
def test_search_keys_round_trip(key: SearchKey) -> None:
    parsed = parse_command(b"a SEARCH " + _render_key(key) + b"\r\n")
    assert parsed == Search("a", False, None, None, key)
