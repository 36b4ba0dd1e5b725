"""DotReader, dot_stuff and DotStuffer: the SMTP DATA / POP3 multi-line body."""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailcore._core import DotReader, DotStuffer, dot_stuff
from tests.helpers import splits


@dataclass(frozen=True)
class Read:
    """What a user of DotReader sees after feeding a whole stream."""

    body: bytes
    done: bool
    rest: bytes
    bare: bool
    size: int
    oversize: bool


def _read(chunks: list[bytes], max_size: int = 1000, normalize: bool = False) -> Read:
    reader = DotReader(max_size, normalize=normalize)
    body = b""
    done = False
    for chunk in chunks:
        was_done = reader.done
        piece, done = reader.feed(chunk)
        if was_done:
            assert (piece, done) == (b"", True)
        body += piece
        assert reader.done == done
    return Read(body, done, reader.rest, reader.bare_line_end, reader.size, reader.oversize)


# (wire bytes, body, done, rest, bare line end)
READ_CASES: list[tuple[bytes, bytes, bool, bytes, bool]] = [
    (b".\r\n", b"", True, b"", False),
    (b"Subject: hi\r\n\r\nHello\r\n.\r\n", b"Subject: hi\r\n\r\nHello\r\n", True, b"", False),
    (
        b"a\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<b@c>\r\n",
        b"a\r\n",
        True,
        b"MAIL FROM:<>\r\nRCPT TO:<b@c>\r\n",
        False,
    ),
    (b"..\r\n...x\r\n.y\r\n.\r\n", b".\r\n..x\r\ny\r\n", True, b"", False),
    (b"a.\r\n .\r\n.\r\n", b"a.\r\n .\r\n", True, b"", False),
    (b"partial\r\n.", b"partial\r\n", False, b"", False),
    # SMTP smuggling (CVE-2023-51764 and relatives): none of these ends the data.
    (b"a\n.\nMAIL FROM:<evil>", b"a\n.\nMAIL FROM:<evil>", False, b"", True),
    (b"a\r.\rMAIL", b"a\r.\rMAIL", False, b"", True),
    (b"a\n.\r\nMAIL", b"a\n.\r\nMAIL", False, b"", True),
    (b"a\r\n.\nMAIL", b"a\r\n.\nMAIL", False, b"", True),
    (b"a\r.\r\nMAIL", b"a\r.\r\nMAIL", False, b"", True),
    (b"a\r\n.\r\r\nMAIL", b"a\r\n.\r\r\nMAIL", False, b"", True),
    # The real end after a smuggling attempt still ends the data.
    (b"a\n.\r\nb\r\n.\r\nQUIT\r\n", b"a\n.\r\nb\r\n", True, b"QUIT\r\n", True),
]


@pytest.mark.parametrize(("wire", "body", "done", "rest", "bare"), READ_CASES)
def test_reader_is_the_same_whole_and_split(
    wire: bytes, body: bytes, done: bool, rest: bytes, bare: bool
) -> None:
    for chunks in splits(wire):
        got = _read(chunks)
        assert got == Read(body, done, rest, bare, len(body), False), chunks


@pytest.mark.parametrize(
    ("wire", "body", "done"),
    [
        (b"a\nb\rc\r\n.\r\n", b"a\r\nb\r\nc\r\n", True),
        (b"a\n.\nb", b"a\r\n.\r\nb", False),
        (b"a\n.\r\nb", b"a\r\n.\r\nb", False),
        (b"a\r\n.\nb", b"a\r\n.\r\nb", False),
        (b"a\r.\r\nb", b"a\r\n.\r\nb", False),
        (b"a\r\n.\r\r\nb", b"a\r\n.\r\n\r\nb", False),
    ],
)
def test_normalize_writes_crlf_but_a_dot_by_a_bare_lf_never_ends(
    wire: bytes, body: bytes, done: bool
) -> None:
    for chunks in splits(wire):
        got = _read(chunks, normalize=True)
        assert (got.body, got.done, got.bare) == (body, done, True), chunks


def test_oversize_body_stops_output_but_the_end_is_found() -> None:
    wire = b"0123456789\r\n..abc\r\n.\r\nQUIT\r\n"
    for chunks in splits(wire):
        got = _read(chunks, max_size=8)
        assert got == Read(b"01234567", True, b"QUIT\r\n", False, 18, True), chunks


def test_a_huge_body_past_max_size_is_not_held() -> None:
    reader = DotReader(1024)
    chunk = b"x" * 70 + b"\r\n"
    total = 0
    for _ in range(20_000):
        piece, done = reader.feed(chunk)
        total += len(piece)
        assert not done
    assert total == 1024
    assert reader.feed(b".\r\n") == (b"", True)
    assert reader.size == 20_000 * 72
    assert reader.oversize


def test_input_after_the_end_is_kept_for_the_session() -> None:
    reader = DotReader(100)
    assert reader.feed(b"hi\r\n.\r\nNO") == (b"hi\r\n", True)
    assert reader.feed(b"OP\r\n") == (b"", True)
    assert reader.rest == b"NOOP\r\n"


def test_large_feeds_release_the_gil_and_decode_in_parallel() -> None:
    # Two threads, each with its own reader, over bodies big enough to run detached.
    body = b"".join(b".line %d of the message\r\n" % i for i in range(20_000))
    wire = dot_stuff(body)
    results: list[bytes] = []
    lock = threading.Lock()

    def work() -> None:
        reader = DotReader(len(body))
        out, done = reader.feed(wire)
        assert done
        with lock:
            results.append(out)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [body, body]


# (input, dot_stuff output)
STUFF_CASES: list[tuple[bytes, bytes]] = [
    (b"", b".\r\n"),
    (b"a", b"a\r\n.\r\n"),
    (b"a\r\n", b"a\r\n.\r\n"),
    (b".", b"..\r\n.\r\n"),
    (b"a\r\n.\r\n..b", b"a\r\n..\r\n...b\r\n.\r\n"),
    (b"a\nb\rc", b"a\r\nb\r\nc\r\n.\r\n"),
    (b"a\n.\nQUIT", b"a\r\n..\r\nQUIT\r\n.\r\n"),
    (b"a\r\r\n", b"a\r\n\r\n.\r\n"),
    (b"x.y\r\n", b"x.y\r\n.\r\n"),
]


@pytest.mark.parametrize(("data", "wire"), STUFF_CASES)
def test_dot_stuff(data: bytes, wire: bytes) -> None:
    assert dot_stuff(data) == wire
    assert dot_stuff(bytearray(data)) == wire
    assert dot_stuff(memoryview(data)) == wire
    for chunks in splits(data):
        stuffer = DotStuffer()
        assert b"".join(stuffer.feed(c) for c in chunks) + stuffer.finish() == wire, chunks


def test_a_cr_at_a_chunk_end_and_a_lf_next_are_one_line_end() -> None:
    stuffer = DotStuffer()
    out = stuffer.feed(b"a\r") + stuffer.feed(b"\n.b") + stuffer.finish()
    assert out == b"a\r\n..b\r\n.\r\n"


# ------------------------------------------------------------- properties ---


def _normalised(data: bytes) -> bytes:
    """The body a receiver should get: bare CR and LF as CRLF, ending in CRLF."""
    text = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    if text and not text.endswith(b"\r\n"):
        text += b"\r\n"
    return text


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


body_bytes = st.lists(
    st.sampled_from([b"a", b".", b"..", b"\r", b"\n", b"\r\n", b"\r\n.", b"\r\n.\r\n", b" x"]),
    max_size=40,
).map(b"".join)
cut_lists = st.lists(st.integers(0, 500), max_size=8)


@given(data=body_bytes | st.binary(max_size=200), cuts=cut_lists)
def test_stuff_then_read_gives_the_body_back_normalised(data: bytes, cuts: list[int]) -> None:
    wire = dot_stuff(data)
    got = _read([*_cut(wire, cuts), b"NEXT"], max_size=len(wire))
    assert got.body == _normalised(data)
    assert got.done
    assert got.rest == b"NEXT"
    assert not got.bare


@given(data=body_bytes | st.binary(max_size=200), cuts=cut_lists)
def test_stuffer_over_any_chunking_equals_dot_stuff(data: bytes, cuts: list[int]) -> None:
    stuffer = DotStuffer()
    out = b"".join(stuffer.feed(c) for c in _cut(data, cuts)) + stuffer.finish()
    assert out == dot_stuff(data)


@given(
    wire=body_bytes | st.binary(max_size=200),
    cuts=cut_lists,
    normalize=st.booleans(),
    max_size=st.integers(0, 300),
)
def test_reader_is_split_invariant(
    wire: bytes, cuts: list[int], normalize: bool, max_size: int
) -> None:
    assert _read(_cut(wire, cuts), max_size, normalize) == _read([wire], max_size, normalize)


@given(wire=body_bytes)
def test_only_crlf_dot_crlf_ends_the_data(wire: bytes) -> None:
    got = _read([wire], max_size=len(wire))
    framed = b"\r\n" + wire
    end = framed.find(b"\r\n.\r\n")
    assert got.done == (end >= 0)
    if got.done:
        assert got.rest == framed[end + 5 :]
