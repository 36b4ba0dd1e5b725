"""SMTP server throughput: mailcore against aiosmtpd, driven by Postfix's smtp-source.

Each server runs alone in a child process (``python -m mailcore.smtp.bench
serve KIND``) with a handler that drops every message; smtp-source opens
``sessions`` parallel sessions and sends ``messages`` messages of ``size``
payload bytes, a new connection per message (its default). Reported: messages
per second (wall clock of the smtp-source run) and the server process's CPU
time per message (user + system, read from ``/proc``, so Linux only). A short
warm-up run precedes each timed run. ``mailcore bench smtp`` prints the table.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["SMTP_SOURCE", "SMTPResult", "format_table", "run", "run_one", "uvloop_available"]

SMTP_SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
"""Postfix's load generator (Debian package postfix)."""
SERVERS = ("mailcore", "aiosmtpd")


@dataclass(frozen=True)
class SMTPResult:
    """One server, one message size."""

    server: str
    size: int
    messages: int
    sessions: int
    seconds: float
    cpu_seconds: float
    uvloop: bool

    @property
    def per_second(self) -> float:
        """Messages accepted per second."""
        return self.messages / self.seconds

    @property
    def cpu_us_per_message(self) -> float:
        """Server-process CPU time per message, in microseconds."""
        return self.cpu_seconds / self.messages * 1e6


def uvloop_available() -> bool:
    """Whether uvloop is installed."""
    return importlib.util.find_spec("uvloop") is not None


def _cpu_seconds(pid: int) -> float:
    # /proc/PID/stat fields 14 and 15: utime and stime in clock ticks. The
    # command name (field 2) may hold spaces, so split after its ")".
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _source(port: int, size: int, messages: int, sessions: int) -> None:
    argv = [SMTP_SOURCE, "-s", str(sessions), "-m", str(messages), "-l", str(size)]
    argv += ["-M", "bench.client", "-f", "sender@bench.client", "-t", "rcpt@bench.server"]
    subprocess.run(
        [*argv, f"127.0.0.1:{port}"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=600,
    )


def run_one(
    server: str, size: int, *, messages: int, sessions: int, use_uvloop: bool = False
) -> SMTPResult:
    """Time ``server`` ("mailcore" or "aiosmtpd") receiving ``messages`` of ``size`` bytes."""
    argv = [sys.executable, "-m", "mailcore.smtp.bench", "serve", server]
    if use_uvloop:
        argv.append("--uvloop")
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as child:
        try:
            assert child.stdout is not None  # PIPE
            line = child.stdout.readline()
            if not line:
                raise RuntimeError(f"{server} bench server did not start")
            port = int(line)
            _source(port, size, max(5, messages // 10), sessions)  # warm-up
            cpu = _cpu_seconds(child.pid)
            start = time.perf_counter()
            _source(port, size, messages, sessions)
            seconds = time.perf_counter() - start
            cpu = _cpu_seconds(child.pid) - cpu
        finally:
            child.terminate()
            child.wait(10)
    return SMTPResult(server, size, messages, sessions, seconds, cpu, use_uvloop)


def run(
    sizes: Sequence[int] = (4096, 100 * 1024),
    *,
    messages: int = 2000,
    sessions: int = 20,
    use_uvloop: bool = False,
) -> list[SMTPResult]:
    """Every server at every size, in the same run."""
    return [
        run_one(server, size, messages=messages, sessions=sessions, use_uvloop=use_uvloop)
        for size in sizes
        for server in SERVERS
    ]


def format_table(results: Sequence[SMTPResult]) -> str:
    """Markdown table with each mailcore row's ratio to aiosmtpd at the same size."""
    base = {(r.size, r.uvloop): r.per_second for r in results if r.server == "aiosmtpd"}
    lines = [
        "| server | loop | size | messages | sessions | msg/s | server CPU µs/msg | vs aiosmtpd |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        ref = base.get((r.size, r.uvloop))
        ratio = f"{r.per_second / ref:.2f}x" if ref else "-"
        lines.append(
            f"| {r.server} | {'uvloop' if r.uvloop else 'asyncio'} | {r.size // 1024} KiB "
            f"| {r.messages} | {r.sessions} | {r.per_second:,.0f} "
            f"| {r.cpu_us_per_message:,.0f} | {ratio} |"
        )
    return "\n".join(lines)


# ------------------------------------------------------------------ child side


async def _serve(kind: str) -> None:
    loop = asyncio.get_running_loop()
    if kind == "mailcore":
        from mailcore.smtp.handlers import Sink
        from mailcore.smtp.server import SMTPServer

        server = SMTPServer(Sink(), hostname="bench.server")
        await server.start("127.0.0.1", 0)
        port = server.port
    elif kind == "aiosmtpd":
        from aiosmtpd.smtp import SMTP as AiosmtpdSMTP

        class Drop:
            async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
                return "250 OK"

        handler = Drop()
        srv = await loop.create_server(
            lambda: AiosmtpdSMTP(handler, hostname="bench.server"), "127.0.0.1", 0
        )
        port = srv.sockets[0].getsockname()[1]
    else:
        raise SystemExit(f"unknown server {kind!r}")
    print(port, flush=True)
    await asyncio.Event().wait()


def _main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mailcore.smtp.bench")
    parser.add_argument("mode", choices=["serve"])
    parser.add_argument("server", choices=SERVERS)
    parser.add_argument("--uvloop", action="store_true")
    args = parser.parse_args(argv)
    if args.uvloop:
        import uvloop  # type: ignore[import-not-found,unused-ignore]

        uvloop.run(_serve(args.server))
    else:
        asyncio.run(_serve(args.server))


if __name__ == "__main__":
    _main()
