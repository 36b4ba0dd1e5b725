"""`mailcore codec` for base64 and quoted-printable, run as a real subprocess."""

from __future__ import annotations

import base64
import binascii
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "mailcore", "codec", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


DATA = os.urandom(5000) + "Grüße aus Köln\r\n".encode() * 20


@pytest.mark.parametrize("from_file", [True, False])
def test_base64_round_trip(tmp_path: Path, from_file: bool) -> None:
    src = tmp_path / "in.bin"
    src.write_bytes(DATA)
    enc = run("b64encode", str(src)) if from_file else run("b64encode", stdin=DATA)
    assert enc.returncode == 0, enc.stderr
    assert enc.stdout == base64.encodebytes(DATA).replace(b"\n", b"\r\n")
    encoded = tmp_path / "in.b64"
    encoded.write_bytes(enc.stdout)
    dec = run("b64decode", str(encoded)) if from_file else run("b64decode", stdin=enc.stdout)
    assert dec.returncode == 0, dec.stderr
    assert dec.stdout == DATA
    # Strict mode takes one line of base64 (no line breaks), from "-" = stdin.
    one_line = enc.stdout.replace(b"\r\n", b"")
    encoded.write_bytes(one_line)
    dec = (
        run("b64decode", "--strict", str(encoded))
        if from_file
        else run("b64decode", "--strict", "-", stdin=one_line)
    )
    assert dec.returncode == 0, dec.stderr
    assert dec.stdout == DATA


@pytest.mark.parametrize("from_file", [True, False])
def test_quoted_printable_round_trip(tmp_path: Path, from_file: bool) -> None:
    src = tmp_path / "in.txt"
    src.write_bytes(DATA)
    enc = run("qp-encode", str(src)) if from_file else run("qp-encode", stdin=DATA)
    assert enc.returncode == 0, enc.stderr
    assert binascii.a2b_qp(enc.stdout) == DATA
    assert max(len(line) for line in enc.stdout.split(b"\r\n")) <= 76
    encoded = tmp_path / "in.qp"
    encoded.write_bytes(enc.stdout)
    dec = run("qp-decode", str(encoded)) if from_file else run("qp-decode", stdin=enc.stdout)
    assert dec.returncode == 0, dec.stderr
    assert dec.stdout == DATA


def test_lenient_base64_decode_skips_garbage() -> None:
    proc = run("b64decode", stdin=b"Zm9v\r\n*YmFy\r\n")
    assert proc.returncode == 0
    assert proc.stdout == b"foobar"


def test_strict_base64_decode_refuses_malformed_input_naming_the_offset(tmp_path: Path) -> None:
    bad = tmp_path / "bad.b64"
    bad.write_bytes(b"Zm9vYmFy*Zm9v")
    proc = run("b64decode", "--strict", str(bad))
    assert proc.returncode == 1
    assert proc.stdout == b""
    message = proc.stderr.decode()
    assert message.startswith("mailcore codec b64decode: ")
    assert "offset 8" in message
    assert "Traceback" not in message
    proc = run("b64decode", "--strict", stdin=b"Zg=")
    assert proc.returncode == 1
    assert "offset 3" in proc.stderr.decode()


def test_unknown_option_is_a_usage_error() -> None:
    proc = run("b64decode", "--bogus", stdin=b"")
    assert proc.returncode == 2
    assert "unrecognized arguments: --bogus" in proc.stderr.decode()


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    proc = run("b64encode", str(tmp_path / "nope"))
    assert proc.returncode == 1
    assert "nope" in proc.stderr.decode()
    assert "Traceback" not in proc.stderr.decode()


def test_bench_codecs_prints_the_table_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    args = ["bench", "codecs", "--size", "0.05", "--repeat", "1", "--json", str(out)]
    proc = subprocess.run(
        [sys.executable, "-m", "mailcore", *args],
        capture_output=True,
        timeout=120,
        check=True,
    )
    table = proc.stdout.decode()
    for row in ("mailcore.b64encode", "base64.encodebytes", "binascii.a2b_qp", "DotReader"):
        assert row in table
    rows = json.loads(out.read_text())
    assert {r["operation"] for r in rows} >= {"base64 encode (MIME)", "QP decode", "dot-unstuff"}
    assert all(r["seconds"] > 0 and r["mb_per_s"] > 0 for r in rows)
    mailcore_rows = [r for r in rows if r["implementation"].startswith("mailcore")]
    assert all(r["speedup"] == 1.0 for r in mailcore_rows)
