"""Helpers shared by the tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import trustme

from mailcore.bench.dovecot import free_port

__all__ = ["SMTP_SINK", "feed_all", "free_port", "smtp_sink", "splits"]

T = TypeVar("T")


def splits(data: bytes) -> Iterator[list[bytes]]:
    """Yield ``data`` whole, one byte at a time, and cut in two at every offset."""
    yield [data]
    yield [data[i : i + 1] for i in range(len(data))]
    for cut in range(1, len(data)):
        yield [data[:cut], data[cut:]]


def feed_all(make: Callable[[], Callable[[bytes], Sequence[T]]], chunks: list[bytes]) -> list[T]:
    """Feed ``chunks`` to a fresh feeder from ``make`` and collect every result."""
    feed = make()
    out: list[T] = []
    for chunk in chunks:
        out.extend(feed(chunk))
    return out


SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"


@contextlib.contextmanager
def smtp_sink(*options: str) -> Iterator[tuple[int, Path]]:
    """Postfix's smtp-sink on loopback, dumping each message to a file."""
    dump = Path(tempfile.mkdtemp(prefix="mailcore-sink-"))
    dump.chmod(0o777)  # smtp-sink drops to "nobody" before writing
    port = free_port()
    cmd = [SMTP_SINK, *options, "-d", f"{dump}/%H%M%S.", f"127.0.0.1:{port}", "20"]
    if os.geteuid() == 0:
        cmd[1:1] = ["-u", "nobody"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "smtp-sink did not start"
                time.sleep(0.05)
        yield port, dump
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stderr:
            proc.stderr.close()
        shutil.rmtree(dump, ignore_errors=True)


def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    """A server context with a certificate for 127.0.0.1 and localhost."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    # A common name too: fetchmail checks it.
    ca.issue_cert("127.0.0.1", "localhost", common_name="localhost").configure_cert(ctx)
    return ctx
