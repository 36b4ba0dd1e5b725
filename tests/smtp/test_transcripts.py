"""SMTP RFC transcripts ("C: " / "S: " files tests/data/transcripts/rfc*.txt) through the machine.

The client lines go in as one batch (fed whole, byte by byte and cut
everywhere by ``converse``); the server must answer with the same sequence of
reply codes and the same multi-line shapes. Texts are the server's own.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mailcore.smtp import replies as R
from mailcore.smtp.events import Event, RcptTo
from mailcore.smtp.replies import Reply
from tests.smtp.test_protocol import GREETING, converse, default_answer

TRANSCRIPTS = Path(__file__).resolve().parent.parent / "data" / "transcripts"


def parse(path: Path) -> tuple[bytes, list[list[int]]]:
    """Client bytes, and each expected reply as the codes of its lines."""
    client = b""
    replies: list[list[int]] = []
    current: list[int] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("C: "):
            client += line[3:].encode() + b"\r\n"
        elif line.startswith("S: "):
            current.append(int(line[3:6]))
            if line[6:7] != "-":
                replies.append(current)
                current = []
    return client, replies


def answer(event: Event) -> list[Reply] | None:
    if isinstance(event, RcptTo) and event.address.startswith("Green@"):
        return [R.NO_SUCH_USER]
    result = default_answer(event)
    return list(result) if result is not None else None


@pytest.mark.parametrize("path", sorted(TRANSCRIPTS.glob("rfc*.txt")), ids=lambda p: p.stem)
def test_transcript(path: Path) -> None:
    client, expected = parse(path)
    run = converse(client, answer)
    wire = run.wire[len(GREETING) :]
    got: list[list[int]] = []
    current: list[int] = []
    for line in wire.split(b"\r\n")[:-1]:
        current.append(int(line[:3]))
        if line[3:4] != b"-":
            got.append(current)
            current = []
    # Multi-line EHLO replies list this server's extensions, not the RFC's.
    assert [r[0] for r in got] == [r[0] for r in expected[1:]]
    assert [len(r) > 1 for r in got] == [len(r) > 1 for r in expected[1:]]
