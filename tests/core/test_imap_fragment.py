"""ImapFragmenter: lines, literals, literal decisions and poisoned commands."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailcore._core import ImapFragmenter
from mailcore.imap.command import (
    CommandReady,
    Fragment,
    LiteralAnnounced,
    Poisoned,
    RawLine,
    new_fragmenter,
)
from mailcore.limits import ImapLimits
from tests.helpers import splits


def _run(chunks: list[bytes], max_command: int = 64, max_literal: int = 30) -> list[Fragment]:
    """Feed ``chunks``; accept every literal that fits, reject the others (as a server does)."""
    f = ImapFragmenter(max_command, max_literal)
    out: list[Fragment] = []
    for chunk in chunks:
        f.feed(chunk)
        while (item := f.next()) is not None:
            if isinstance(item, LiteralAnnounced):
                if item.fits:
                    f.accept_literal()
                else:
                    f.reject_literal()
            out.append(item)
    assert f.pending == 0
    return out


CASES: list[tuple[bytes, list[Fragment]]] = [
    (b"a NOOP\r\n", [CommandReady(b"a NOOP\r\n")]),
    (b"a NOOP\r\nb CHECK\r\n", [CommandReady(b"a NOOP\r\n"), CommandReady(b"b CHECK\r\n")]),
    (
        b"a LOGIN {3}\r\nbob {2+}\r\npw\r\n",
        [
            LiteralAnnounced("a", 3, False, True),
            CommandReady(b"a LOGIN {3}\r\nbob {2+}\r\npw\r\n"),
        ],
    ),
    (
        b"a APPEND x ~{4}\r\n\x00\r\n\n\r\n",
        [
            LiteralAnnounced("a", 4, True, True),
            CommandReady(b"a APPEND x ~{4}\r\n\x00\r\n\n\r\n"),
        ],
    ),
    # Literal bytes that look like commands stay inside their command.
    (b"a X {8+}\r\nb NOOP\n\r\n", [CommandReady(b"a X {8+}\r\nb NOOP\n\r\n")]),
    (b"a X {}\r\nb NOOP\r\n", [Poisoned("a", "bad-literal"), CommandReady(b"b NOOP\r\n")]),
    (b"a X {+}\r\nb NOOP\r\n", [Poisoned("a", "bad-literal"), CommandReady(b"b NOOP\r\n")]),
    (
        b"a X {1234567890123456}\r\nb NOOP\r\n",
        [Poisoned("a", "bad-literal"), CommandReady(b"b NOOP\r\n")],
    ),
    # A synchronising literal over the limit is refused before its bytes
    # arrive; the client then sends its next command.
    (
        b"a APPEND x {999}\r\nb NOOP\r\n",
        [LiteralAnnounced("a", 999, False, False), CommandReady(b"b NOOP\r\n")],
    ),
    # An oversized non-synchronising literal is read and dropped, never parsed
    # as commands (Stalwart issue #2768), then framing goes on.
    (
        b"a APPEND x {40+}\r\n" + b"b NOOP\r\n" * 5 + b"\r\nc NOOP\r\n",
        [Poisoned("a", "literal-too-long"), CommandReady(b"c NOOP\r\n")],
    ),
    # A line over the command limit: dropped, the literal at its end still skipped.
    (
        b"a LOGIN " + b"x" * 80 + b" {6+}\r\nb NO\r\n\r\nc NOOP\r\n",
        [Poisoned("a", "command-too-long"), CommandReady(b"c NOOP\r\n")],
    ),
    # Untagged garbage over the limit: poisoned without a tag.
    (
        b"*" * 100 + b"\r\nc NOOP\r\n",
        [Poisoned(None, "command-too-long"), CommandReady(b"c NOOP\r\n")],
    ),
]


@pytest.mark.parametrize(("data", "expected"), CASES)
def test_fragments_whole_and_split(data: bytes, expected: list[Fragment]) -> None:
    for chunks in splits(data):
        assert _run(chunks) == expected, chunks


def test_literal_waits_for_decision() -> None:
    f = ImapFragmenter(100, 100)
    f.feed(b"a LOGIN {3}\r\nbob pw\r\n")
    assert f.next() == LiteralAnnounced("a", 3, False, True)
    assert f.awaiting_decision
    assert f.next() is None
    assert f.pending == len(b"a LOGIN {3}\r\nbob pw\r\n")
    f.accept_literal()
    assert f.next() == CommandReady(b"a LOGIN {3}\r\nbob pw\r\n")
    with pytest.raises(RuntimeError):
        f.accept_literal()
    with pytest.raises(RuntimeError):
        f.reject_literal()


def test_accepted_literal_over_limit_is_discarded() -> None:
    f = ImapFragmenter(100, 4)
    f.feed(b"a X {10}\r\n")
    assert f.next() == LiteralAnnounced("a", 10, False, False)
    f.accept_literal()
    f.feed(b"a NOOP\r\nb\r\nb NOOP\r\n")
    assert list(f) == [Poisoned("a", "literal-too-long"), CommandReady(b"b NOOP\r\n")]


def test_raw_line_for_idle_and_authenticate() -> None:
    for chunks in splits(b"DONE {3}\r\nb NOOP\r\n"):
        f = ImapFragmenter(100, 100)
        f.expect_line()
        out: list[Fragment] = []
        for c in chunks:
            f.feed(c)
            out.extend(f)
        assert out == [RawLine(b"DONE {3}"), CommandReady(b"b NOOP\r\n")]


def test_huge_announced_literal_allocates_nothing() -> None:
    # greenmail PR #1038: a 22-byte LOGIN line must not reserve 4 GiB.
    f = new_fragmenter(ImapLimits())
    f.feed(b"a LOGIN {4294967295}\r\n")
    assert f.next() == LiteralAnnounced("a", 4294967295, False, False)
    f.reject_literal()
    f.feed(b"b LOGIN {999999999999999+}\r\n" + b"x" * 1000)
    assert f.next() is None
    assert f.pending == 0


def test_default_limits_size_the_fragmenter() -> None:
    lim = ImapLimits(command_length=100, literal_size=10)
    f = new_fragmenter(lim)
    f.feed(b"a APPEND x {11}\r\n")
    assert f.next() == LiteralAnnounced("a", 11, False, False)


_command = st.sampled_from(
    [
        b"a NOOP\r\n",
        b"b LOGIN {3+}\r\nb\r\n x\r\n",
        b"c X {2+}\r\n\r\n\r\n",
        b"d APPEND m ~{1+}\r\n\x00\r\n",
    ]
)


@given(st.lists(_command, max_size=8), st.data())
def test_any_split_gives_the_same_commands(commands: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(commands)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    assert _run(chunks, 1000, 1000) == [CommandReady(c) for c in commands]
