"""``mailcore codec dot-stuff`` and ``dot-unstuff``: files and pipes, as a user runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def _codec(op: str, data: bytes, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "mailcore", "codec", op, *args],
        input=data,
        capture_output=True,
        check=False,
        timeout=60,
    )


def test_dot_stuff_from_stdin() -> None:
    proc = _codec("dot-stuff", b"Hi\n.hidden\nend")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"Hi\r\n..hidden\r\nend\r\n.\r\n"


def test_dot_stuff_and_unstuff_a_file_round_trip(tmp_path: Path) -> None:
    body = b"Subject: x\r\n\r\n.\r\n..\r\nlast line\r\n"
    src = tmp_path / "body.eml"
    src.write_bytes(body)
    stuffed = _codec("dot-stuff", b"", str(src))
    assert stuffed.returncode == 0, stuffed.stderr
    assert stuffed.stdout == b"Subject: x\r\n\r\n..\r\n...\r\nlast line\r\n.\r\n"
    back = _codec("dot-unstuff", stuffed.stdout)
    assert back.returncode == 0, back.stderr
    assert back.stdout == body


def test_dot_unstuff_without_the_end_line_fails_with_a_message() -> None:
    proc = _codec("dot-unstuff", b"line\r\n.\nnot the end\r\n")
    assert proc.returncode == 1
    assert proc.stdout == b""
    assert b"mailcore codec dot-unstuff" in proc.stderr
    assert b'"."' in proc.stderr


def test_dot_unstuff_refuses_bytes_after_the_end() -> None:
    proc = _codec("dot-unstuff", b"a\r\n.\r\nMAIL FROM:<x@y>\r\n")
    assert proc.returncode == 1
    assert proc.stdout == b""
    assert b"after the end" in proc.stderr
    assert b"offset 6" in proc.stderr
