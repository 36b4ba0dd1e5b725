"""MIME structure benchmark: mailcore's BODYSTRUCTURE + a part's bytes against
the standard library's ``email`` parser walking the same message.

Untimed (the normal run) on a 3-part message with a 16 KiB attachment; timed
(``pytest benches/bench_mime.py --benchmark-enable``) on a 2 MiB attachment.
Both sides do the work an IMAP FETCH BODYSTRUCTURE BODY[2] needs: find every
part's type and size, and return part 2's stored bytes.
"""

from __future__ import annotations

import base64
import email
import email.policy
from collections.abc import Callable

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from mailcore._core import mime_bodystructure, mime_section


def _message(attachment_size: int) -> bytes:
    payload = base64.encodebytes(bytes(range(256)) * (attachment_size // 256))
    return (
        b"From: a@example.org\r\nSubject: bench\r\n"
        b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n"
        b"--XX\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
        b"--XX\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n"
        + payload.replace(b"\n", b"\r\n")
        + b"--XX--\r\n"
    )


def _mailcore(raw: bytes) -> bytes:
    mime_bodystructure(raw)
    return mime_section(raw, "2")


def _stdlib(raw: bytes) -> bytes:
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    parts = [p for p in msg.walk() if not p.is_multipart()]
    for p in parts:
        p.get_content_type()
        len(str(p.get_payload()))
    payload = parts[1].get_payload()
    assert isinstance(payload, str)
    return payload.encode("latin-1").rstrip(b"\r\n")


IMPLS: dict[str, Callable[[bytes], bytes]] = {"mailcore": _mailcore, "stdlib-email": _stdlib}


@pytest.mark.parametrize("name", sorted(IMPLS))
def test_structure(benchmark: BenchmarkFixture, request: pytest.FixtureRequest, name: str) -> None:
    # addopts always carries --benchmark-disable; --benchmark-enable overrides it.
    timed = bool(request.config.getoption("benchmark_enable"))
    raw = _message(2 * 1024 * 1024 if timed else 16 * 1024)
    benchmark.group = "bodystructure + BODY[2]"
    result = benchmark(IMPLS[name], raw)
    assert result == _mailcore(raw)
