"""Framing and dot-stuffing: mailcore's Rust readers against pure-Python peers.

Peers, measured in the same run on the same bytes:

- ``aiosmtpd_loop``: what aiosmtpd's ``smtp_DATA`` does since CVE-2024-27305:
  ``await reader.readuntil(b"\\r\\n")`` per line on an ``asyncio.StreamReader``,
  stop at ``b".\\r\\n"``, strip one leading dot, ``b"".join`` the lines.
- ``replace_unstuff``: the shortest correct-looking Python: find the end with
  ``bytes.find``, then ``bytes.replace(b"\\r\\n.", b"\\r\\n")``. It checks
  nothing (no bare line end detection, no size limit) and needs the whole
  body in memory at once, so it is a lower bound on what Python can do.

Stuffing is compared with smtplib's two regular expressions; line framing
(``LineReader`` on pipelined SMTP commands) with ``bytes.split(b"\\r\\n")``
plus the length and bare line end checks a server needs, and with asyncio's
``readuntil`` loop.

Timed run: ``pytest benches/bench_dot.py --benchmark-enable`` (10 MiB inputs);
the normal test run calls each once on a small input.
"""

from __future__ import annotations

import asyncio
import random

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from mailcore._core import DotReader, LineError, LineReader, dot_stuff

BIG = 10 * 1024 * 1024
SMALL = 64 * 1024

_WORDS = [
    "the", "mail", "server", "message", "über", "café", "naïve", "Grüße", "déjà", "vu",
    "a", "of", "to", "and", "is", "in", "that", "for", "relay", "queue", "delivery",
]  # fmt: skip


def mostly_ascii_text(size: int, seed: int = 2) -> bytes:
    """Mail-like text: CRLF lines of 0-78 bytes, UTF-8 accents, some lines led by dots."""
    rng = random.Random(seed)
    lines: list[bytes] = []
    total = 0
    while total < size:
        words = rng.choices(_WORDS, k=rng.randint(0, 12))
        line = " ".join(words).encode()[:78]
        if rng.random() < 0.02:
            line = b"." + line
        lines.append(line)
        total += len(line) + 2
    return b"\r\n".join(lines) + b"\r\n"


def _size(benchmark: BenchmarkFixture) -> int:
    return BIG if benchmark.enabled else SMALL


def dotreader_unstuff(wire: bytes) -> bytes:
    """mailcore: one feed of the whole wire."""
    body, done = DotReader(len(wire)).feed(wire)
    assert done
    return body


def aiosmtpd_loop(wire: bytes) -> bytes:
    """aiosmtpd's DATA loop over a StreamReader that already holds the wire."""

    async def run() -> bytes:
        reader = asyncio.StreamReader(limit=2**16)
        reader.feed_data(wire)
        reader.feed_eof()
        data: list[bytes] = []
        num_bytes = 0
        while True:
            line = await reader.readuntil(b"\r\n")
            if line == b".\r\n":
                break
            num_bytes += len(line)
            data.append(line)
        original_content: list[bytes] = []
        for text in data:
            original_content.append(text[1:] if text.startswith(b".") else text)
        return b"".join(original_content)

    return asyncio.run(run())


def replace_unstuff(wire: bytes) -> bytes:
    """bytes.find for the end, bytes.replace for the dots."""
    if wire.startswith(b".\r\n"):
        return b""
    end = wire.find(b"\r\n.\r\n")
    body = wire[: end + 2]
    if body.startswith(b"."):
        body = body[1:]
    return body.replace(b"\r\n.", b"\r\n")


@pytest.fixture
def wire_and_body(benchmark: BenchmarkFixture) -> tuple[bytes, bytes]:
    body = mostly_ascii_text(_size(benchmark))
    return dot_stuff(body), body


@pytest.mark.parametrize(
    "unstuff",
    [dotreader_unstuff, aiosmtpd_loop, replace_unstuff],
    ids=["mailcore.DotReader", "aiosmtpd-loop", "bytes.replace"],
)
def test_unstuff(
    benchmark: BenchmarkFixture,
    wire_and_body: tuple[bytes, bytes],
    unstuff: object,
) -> None:
    wire, body = wire_and_body
    assert callable(unstuff)
    benchmark.group = "dot-unstuff"
    benchmark.extra_info["bytes"] = len(wire)
    assert benchmark(unstuff, wire) == body


def test_dot_stuff(benchmark: BenchmarkFixture) -> None:
    body = mostly_ascii_text(_size(benchmark))
    benchmark.group = "dot-stuff"
    benchmark.extra_info["bytes"] = len(body)
    wire = benchmark(dot_stuff, body)
    assert dotreader_unstuff(wire) == body


def python_dot_stuff(body: bytes) -> bytes:
    """smtplib's way (``_quote_periods`` plus ``_fix_eols``), ending in "." CRLF."""
    import re

    text = re.sub(rb"(?:\r\n|\n|\r(?!\n))", b"\r\n", body)
    text = re.sub(rb"(?m)^\.", b"..", text)
    if not text.endswith(b"\r\n"):
        text += b"\r\n"
    return text + b".\r\n"


def test_dot_stuff_smtplib(benchmark: BenchmarkFixture) -> None:
    body = mostly_ascii_text(_size(benchmark))
    benchmark.group = "dot-stuff"
    benchmark.extra_info["bytes"] = len(body)
    assert benchmark(python_dot_stuff, body) == dot_stuff(body)


_COMMANDS = [
    b"EHLO client.example.com",
    b"MAIL FROM:<alice@example.org> SIZE=12345",
    b"RCPT TO:<bob@example.net>",
    b"NOOP",
    b"RSET",
    b"QUIT",
]


def smtp_commands(size: int, seed: int = 3) -> bytes:
    """Pipelined SMTP command lines, CRLF-ended."""
    rng = random.Random(seed)
    lines: list[bytes] = []
    total = 0
    while total < size:
        line = rng.choice(_COMMANDS)
        lines.append(line)
        total += len(line) + 2
    return b"\r\n".join(lines) + b"\r\n"


MAX_LINE = 1000


def line_reader_lines(data: bytes) -> list[bytes | LineError]:
    """mailcore: one feed, a list of lines (LineError for refused ones)."""
    return LineReader(MAX_LINE).feed(data)


def split_lines(data: bytes) -> list[bytes | tuple[str, int]]:
    """bytes.split, then the per-line checks a server must make."""
    lines = data.split(b"\r\n")
    lines.pop()
    out: list[bytes | tuple[str, int]] = []
    for line in lines:
        if len(line) > MAX_LINE:
            out.append(("too long", len(line)))
        elif b"\n" in line or b"\r" in line:
            out.append(("bare line end", len(line)))
        else:
            out.append(line)
    return out


def readuntil_lines(data: bytes) -> list[bytes]:
    """An asyncio server's command loop: ``readuntil(b"\\r\\n")`` per line."""

    async def run() -> list[bytes]:
        reader = asyncio.StreamReader(limit=MAX_LINE + 2)
        reader.feed_data(data)
        reader.feed_eof()
        out: list[bytes] = []
        while not reader.at_eof():
            out.append((await reader.readuntil(b"\r\n"))[:-2])
        return out

    return asyncio.run(run())


@pytest.mark.parametrize(
    "split",
    [line_reader_lines, split_lines, readuntil_lines],
    ids=["mailcore.LineReader", "bytes.split+checks", "asyncio-readuntil"],
)
def test_lines(benchmark: BenchmarkFixture, split: object) -> None:
    data = smtp_commands(_size(benchmark))
    want = data.split(b"\r\n")[:-1]
    assert callable(split)
    benchmark.group = "lines"
    benchmark.extra_info["bytes"] = len(data)
    assert benchmark(split, data) == want
