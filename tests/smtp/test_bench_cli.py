"""``mailcore bench smtp`` runs both servers and prints the table."""

from __future__ import annotations

import io
import sys

import pytest

from mailcore.cli import main
from mailcore.smtp import bench


def test_bench_smtp_prints_a_table(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    monkeypatch.setattr(sys, "stdout", out)
    args = ["bench", "smtp", "--messages", "30", "--sessions", "5", "--sizes", "2048"]
    assert main(args) == 0
    out.flush()
    assert isinstance(out.buffer, io.BytesIO)
    table = out.buffer.getvalue().decode()
    assert "| mailcore | asyncio | 2 KiB | 30 | 5 |" in table
    assert "| aiosmtpd | asyncio | 2 KiB | 30 | 5 |" in table
    assert table.count("\n") >= 4 if bench.uvloop_available() else table.count("\n") == 4
