"""LineReader: CRLF line framing with a length bound and bare line end detection."""

from __future__ import annotations

import enum
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailcore._core import LineError, LineErrorKind, LineReader
from tests.helpers import splits

Item = bytes | tuple[LineErrorKind, int]


def _plain(items: list[bytes | LineError]) -> list[Item]:
    """Errors as (kind, length) so results compare and print plainly."""
    return [i if isinstance(i, bytes) else (i.kind, i.length) for i in items]


def _read(
    chunks: list[bytes], max_line: int = 20, allow_bare_lf: bool = False
) -> tuple[list[Item], bytes]:
    reader = LineReader(max_line, allow_bare_lf=allow_bare_lf)
    out: list[Item] = []
    for chunk in chunks:
        out.extend(_plain(reader.feed(chunk)))
    return out, reader.take_buffered()


TOO_LONG = LineErrorKind.TOO_LONG
BARE_LF = LineErrorKind.BARE_LF
BARE_CR = LineErrorKind.BARE_CR

# (input, max_line, allow_bare_lf, items, bytes left buffered)
CASES: list[tuple[bytes, int, bool, list[Item], bytes]] = [
    (b"", 10, False, [], b""),
    (b"EHLO a\r\n", 10, False, [b"EHLO a"], b""),
    (b"a\r\nb\r\nc", 10, False, [b"a", b"b"], b"c"),
    (b"\r\n", 10, False, [b""], b""),
    (b"half\r", 10, False, [], b"half\r"),
    (b"0123456789\r\n", 10, False, [b"0123456789"], b""),
    (b"0123456789A\r\nNOOP\r\n", 10, False, [(TOO_LONG, 11), b"NOOP"], b""),
    (b"a\r\n" + b"x" * 50 + b"\r\nb\r\n", 10, False, [b"a", (TOO_LONG, 50), b"b"], b""),
    (b"a\nb\r\nc\r\n", 10, False, [(BARE_LF, 3), b"c"], b""),
    (b"a\rb\r\nc\r\n", 10, False, [(BARE_CR, 3), b"c"], b""),
    (b"a\r\r\n", 10, False, [(BARE_CR, 2)], b""),
    # SMTP smuggling shapes in command mode are refused, never split into lines.
    (b"RSET\n.\nQUIT\r\n", 20, False, [(BARE_LF, 11)], b""),
    # The quirk: a bare LF ends a line; a bare CR is still refused.
    (b"a\nb\r\nc\n", 10, True, [b"a", b"b", b"c"], b""),
    (b"a\rb\nc", 10, True, [(BARE_CR, 3)], b"c"),
    (b"0123456789AB\nok\n", 10, True, [(TOO_LONG, 12), b"ok"], b""),
]


@pytest.mark.parametrize(("data", "max_line", "bare", "want", "left"), CASES)
def test_lines_are_the_same_whole_and_split(
    data: bytes, max_line: int, bare: bool, want: list[Item], left: bytes
) -> None:
    for chunks in splits(data):
        got, rest = _read(chunks, max_line, bare)
        assert got == want, chunks
        assert rest == left, chunks


def test_line_error_kind_is_a_real_enum() -> None:
    assert issubclass(LineErrorKind, enum.Enum)
    assert [k.name for k in LineErrorKind] == ["TOO_LONG", "BARE_LF", "BARE_CR"]
    [err] = LineReader(4).feed(b"12345\r\n")
    assert isinstance(err, LineError)
    assert err.kind is LineErrorKind.TOO_LONG
    assert err.length == 5
    assert repr(err) == "LineError(kind=LineErrorKind.TOO_LONG, length=5)"
    assert err == LineReader(3).feed(b"abcde\r\n")[0]
    assert err != LineReader(3).feed(b"abcdef\r\n")[0]


def test_a_flood_without_crlf_is_not_held() -> None:
    reader = LineReader(1000)
    for _ in range(1000):
        assert reader.feed(b"A" * 1000) == []
        assert reader.buffered <= 1000
    assert _plain(reader.feed(b"\r\nQUIT\r\n")) == [(TOO_LONG, 1_000_000), b"QUIT"]


def test_errors_come_in_order_among_good_lines() -> None:
    reader = LineReader(8)
    got = _plain(reader.feed(b"MAIL\r\n" + b"R" * 9 + b"\r\nRCPT\r\nbad\nline\r\nDATA\r\n"))
    assert got == [b"MAIL", (TOO_LONG, 9), b"RCPT", (BARE_LF, 8), b"DATA"]


def test_max_lines_takes_one_line_and_leaves_the_body_raw() -> None:
    reader = LineReader(100)
    wire = b"MAIL FROM:<a@b>\r\nDATA\r\nSubject: x\r\n\r\n..body\n\r\n.\r\n"
    assert reader.feed(wire, 1) == [b"MAIL FROM:<a@b>"]
    assert reader.feed(b"", 1) == [b"DATA"]
    assert reader.buffered == len(wire) - 23
    # Switching to the body: the rest comes back byte for byte, bare LF and all.
    assert reader.take_buffered() == b"Subject: x\r\n\r\n..body\n\r\n.\r\n"
    assert reader.buffered == 0
    assert reader.feed(b"QUIT\r\n") == [b"QUIT"]


def test_take_buffered_forgets_a_pending_cr() -> None:
    # After STARTTLS the plaintext tail is dropped; a LF arriving next is not its CRLF.
    reader = LineReader(100)
    assert reader.feed(b"STARTTLS\r\nNOOP\r") == [b"STARTTLS"]
    assert reader.take_buffered() == b"NOOP\r"
    assert _plain(reader.feed(b"\nEHLO\r\n")) == [(BARE_LF, 5)]


def test_accepts_bytearray_and_memoryview() -> None:
    reader = LineReader(100)
    assert reader.feed(bytearray(b"a\r\nb")) == [b"a"]
    assert reader.feed(memoryview(b"\r\n")) == [b"b"]
    with pytest.raises(TypeError):
        reader.feed("text")  # type: ignore[arg-type]


# ------------------------------------------------------------- properties ---


def _reference(data: bytes, max_line: int, allow_bare_lf: bool) -> tuple[list[Item], bytes]:
    """A slow, obviously correct model of LineReader over the whole input."""
    out: list[Item] = []
    i = 0
    while True:
        if allow_bare_lf:
            j = data.find(b"\n", i)
            if j < 0:
                break
            line = data[i:j]
            if line.endswith(b"\r"):
                line = line[:-1]
        else:
            j = data.find(b"\r\n", i)
            if j < 0:
                break
            line = data[i:j]
            j += 1
        if len(line) > max_line:
            out.append((TOO_LONG, len(line)))
        elif b"\r" in line or b"\n" in line:
            first_cr = line.find(b"\r") if b"\r" in line else len(line)
            first_lf = line.find(b"\n") if b"\n" in line else len(line)
            out.append((BARE_CR if first_cr < first_lf else BARE_LF, len(line)))
        else:
            out.append(line)
        i = j + 1
    return out, data[i:]


line_bytes = st.lists(
    st.sampled_from([b"a", b"b", b".", b" ", b"\r", b"\n", b"\r\n", b"\r\n", b"xyz"]),
    max_size=40,
).map(b"".join)


@given(data=line_bytes, cuts=st.lists(st.integers(0, 200), max_size=6), bare=st.booleans())
def test_any_split_gives_the_reference_lines(data: bytes, cuts: list[int], bare: bool) -> None:
    bounds = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    chunks = [data[a:b] for a, b in itertools.pairwise(bounds)]
    want, left = _reference(data, 8, bare)
    got, rest = _read(chunks, 8, bare)
    assert got == want
    # A too-long partial line is dropped, not held: compare only what fits.
    if len(left) <= 8:
        assert rest == left


@given(data=line_bytes, bare=st.booleans())
def test_max_lines_one_by_one_equals_all_at_once(data: bytes, bare: bool) -> None:
    whole = LineReader(8, allow_bare_lf=bare)
    want = _plain(whole.feed(data))
    stepwise = LineReader(8, allow_bare_lf=bare)
    got = _plain(stepwise.feed(data, 1))
    while more := stepwise.feed(b"", 1):
        assert len(more) == 1
        got.extend(_plain(more))
    assert got == want
    assert stepwise.take_buffered() == whole.take_buffered()
