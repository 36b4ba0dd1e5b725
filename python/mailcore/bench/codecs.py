"""Codec benchmarks: mailcore against the standard library, pybase64 and
the unstuffing loops Python servers use.

``mailcore bench codecs`` prints the table; ``benches/bench_codecs.py`` runs
the same cases under pytest-benchmark.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import email.header
import functools
import io
import quopri
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from mailcore import codecs
from mailcore.bench import Result, median_seconds

__all__ = ["Case", "aiosmtpd_unstuff", "cases", "make_input", "replace_unstuff", "run"]

MIB = 1024 * 1024

_VOCABULARY = (
    "le la les un une des et est dans pour avec sur pas plus que qui nous vous "
    "message courrier serveur réseau données été déjà très où à ça français "
    "über Größe schön Grüße Mädchen Straße naïve café crème résumé señor año "
    "the of and to in is that for it as with was on be at by this have from"
)
_WORDS = _VOCABULARY.split()


def make_input(kind: str, size: int) -> bytes:
    """Deterministic input: ``size`` ``random`` bytes, or ``text``: mostly-ASCII
    prose with accented words in CRLF lines of about 70 characters (whole
    lines, up to ``size`` bytes)."""
    rng = random.Random(2047)
    if kind == "random":
        return rng.randbytes(size)
    out = io.BytesIO()
    line: list[str] = []
    width = 0
    while out.tell() < size:
        word = rng.choice(_WORDS)
        line.append(word)
        width += len(word) + 1
        if width > 70:
            out.write(" ".join(line).encode() + b"\r\n")
            line, width = [], 0
    text = out.getvalue()[:size]
    # Whole lines only, so that dot-stuffing adds no line end of its own.
    return text[: text.rfind(b"\r\n") + 2]


def aiosmtpd_unstuff(stuffed: bytes) -> bytes:
    """Unstuff line by line the way aiosmtpd's DATA handler does: one
    ``await StreamReader.readuntil()`` per line, the dot test, a list of lines."""

    async def read_body() -> bytes:
        reader = asyncio.StreamReader(limit=len(stuffed) + 1)
        reader.feed_data(stuffed)
        reader.feed_eof()
        lines = []
        while True:
            try:
                line = await reader.readuntil()
            except asyncio.IncompleteReadError:
                break
            if line == b".\r\n":
                break
            if line.startswith(b"."):
                line = line[1:]
            lines.append(line)
        return b"".join(lines)

    return asyncio.run(read_body())


def replace_unstuff(stuffed: bytes) -> bytes:
    """Unstuff with ``bytes.find`` and ``bytes.replace`` (the fast pure-Python way)."""
    body = b"" if stuffed.startswith(b".\r\n") else stuffed[: stuffed.find(b"\r\n.\r\n") + 2]
    if body.startswith(b".."):
        body = body[1:]
    return body.replace(b"\r\n..", b"\r\n.")


def _dot_reader(stuffed: bytes) -> bytes:
    from mailcore import _core

    body, done = _core.DotReader(len(stuffed)).feed(stuffed)
    assert done
    return body


def _pybase64() -> object | None:
    try:
        import pybase64
    except ImportError:
        return None
    return pybase64


@dataclass(frozen=True)
class Case:
    """One operation on one kind of input: mailcore and its peers.

    Attributes:
        operation: what is measured.
        input: kind of input ("random" or "text").
        data: the argument every implementation gets.
        implementations: (name, function) pairs, mailcore's first.
        expect: what every implementation must return, when they agree.
    """

    operation: str
    input: str
    data: bytes
    implementations: tuple[tuple[str, Callable[[bytes], object]], ...]
    expect: object | None


def cases(size: int) -> Iterator[Case]:
    """Every codec case on inputs of ``size`` bytes (pybase64 rows only if installed)."""
    pyb64 = _pybase64()
    for kind in ("random", "text"):
        data = make_input(kind, size)
        mime = base64.encodebytes(data).replace(b"\n", b"\r\n")
        b64_enc: list[tuple[str, Callable[[bytes], object]]] = [
            ("mailcore.b64encode", codecs.b64encode),
            ("base64.encodebytes", base64.encodebytes),
        ]
        b64_dec: list[tuple[str, Callable[[bytes], object]]] = [
            ("mailcore.b64decode", codecs.b64decode),
            ("base64.b64decode", base64.b64decode),
        ]
        if pyb64 is not None:
            b64_enc.append(("pybase64.encodebytes", pyb64.encodebytes))  # type: ignore[attr-defined]
            b64_dec.append(("pybase64.b64decode", pyb64.b64decode))  # type: ignore[attr-defined]
        yield Case("base64 encode (MIME)", kind, data, tuple(b64_enc), None)
        yield Case("base64 decode (MIME, lenient)", kind, mime, tuple(b64_dec), data)
        yield Case(
            "QP encode",
            kind,
            data,
            (
                ("mailcore.qp_encode", codecs.qp_encode),
                ("binascii.b2a_qp", binascii.b2a_qp),
                ("quopri.encodestring", quopri.encodestring),
            ),
            None,
        )
        qp = codecs.qp_encode(data)
        yield Case(
            "QP decode",
            kind,
            qp,
            (
                ("mailcore.qp_decode", codecs.qp_decode),
                ("binascii.a2b_qp", binascii.a2b_qp),
                ("quopri.decodestring", quopri.decodestring),
            ),
            data,
        )
        from mailcore import _core

        stuffed = _core.dot_stuff(data)
        yield Case(
            "dot-unstuff",
            kind,
            stuffed,
            (
                ("mailcore DotReader", _dot_reader),
                ("aiosmtpd-style readuntil loop", aiosmtpd_unstuff),
                ("bytes.replace", replace_unstuff),
            ),
            None if kind == "random" else data,
        )
    # Headers: a batch of subject-sized values, timed per batch.
    text = make_input("text", max(size // 64, 4096)).decode("utf-8", "replace")
    subjects = [text[i : i + 60].replace("\r\n", " ") for i in range(0, len(text) - 60, 60)]
    joined = "\n".join(subjects)
    encoded = "\n".join(codecs.encode_header(s) for s in subjects)
    yield Case(
        "RFC 2047 encode_header",
        "headers",
        joined.encode(),
        (
            (
                "mailcore.encode_header",
                lambda _b: [codecs.encode_header(s) for s in subjects],
            ),
            (
                "email.header.Header.encode",
                lambda _b: [email.header.Header(s, "utf-8").encode() for s in subjects],
            ),
        ),
        None,
    )
    values = encoded.split("\n")
    yield Case(
        "RFC 2047 decode_header",
        "headers",
        encoded.encode(),
        (
            ("mailcore.decode_header", lambda _b: [codecs.decode_header(v) for v in values]),
            (
                "email.header.make_header",
                lambda _b: [
                    str(email.header.make_header(email.header.decode_header(v))) for v in values
                ],
            ),
        ),
        None,
    )


def run(size: int = 10 * MIB, repeat: int = 5) -> list[Result]:
    """Time every case; return one :class:`Result` per implementation."""
    results: list[Result] = []
    for case in cases(size):
        timed = []
        for name, func in case.implementations:
            timed.append((name, median_seconds(functools.partial(func, case.data), repeat)))
        base = timed[0][1]
        for name, seconds in timed:
            results.append(
                Result(case.operation, case.input, name, len(case.data), seconds, seconds / base)
            )
    return results
