"""Relay throughput and latency: mailcore against Postfix, both relaying to smtp-sink.

For each message size, each MTA in turn runs as a relay on loopback with its
queue on disk and fsync on (mailcore: ``python -m mailcore.relay.service`` in a
child process; Postfix: ``postfix -c CONFDIR`` with its own config, queue and
data directories, ``relayhost = [127.0.0.1]:SINKPORT``, inet on 127.0.0.1
only, its default fsync of every queue file). Postfix's ``smtp-source`` sends
``messages`` messages over ``sessions`` parallel sessions; everything goes on
to one ``smtp-sink``.

Reported per run:

- accept msg/s: messages / time until smtp-source has its last 250;
- relay msg/s: messages / time until the MTA's queue is empty again (every
  message delivered to the sink and removed from the queue);
- latency from 250 to delivery at the next hop, p50 and p95: a probe client
  sends one message every 50 ms during the run and notes when it got the
  250; the sink dumps each message to its own file (in /dev/shm), whose
  modification time is when the sink had the whole message.

Postfix must be installed (Debian package ``postfix``; the benchmark runs as
root so that Postfix can switch to its ``postfix`` user).
"""

from __future__ import annotations

import os
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mailcore.bench import settle_disk
from mailcore.relay.queue import Queue

__all__ = ["MTAS", "RelayResult", "format_table", "run", "run_one"]

SMTP_SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
MTAS = ("mailcore", "postfix")
_POSTFIX_QUEUES = ("maildrop", "incoming", "active", "deferred", "hold")


@dataclass(frozen=True)
class RelayResult:
    """One MTA, one message size."""

    mta: str
    size: int
    messages: int
    sessions: int
    accept_seconds: float
    relay_seconds: float
    latencies: tuple[float, ...]
    delivered: int

    @property
    def accept_per_second(self) -> float:
        """Messages accepted per second."""
        return self.messages / self.accept_seconds

    @property
    def relay_per_second(self) -> float:
        """Messages accepted and delivered onward per second."""
        return self.messages / self.relay_seconds

    def latency_ms(self, q: float) -> float:
        """The ``q`` quantile (0..1) of 250-to-delivery latency, in milliseconds."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_port(port: int, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError("server exited before listening") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on {port}") from None
            time.sleep(0.02)


@contextmanager
def _sink(dump: Path) -> Iterator[int]:
    port = _free_port()
    cmd = [SMTP_SINK, "-d", f"{dump}/%H%M%S.", f"127.0.0.1:{port}", "1000"]
    if os.geteuid() == 0:
        cmd[1:1] = ["-u", "nobody"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(port, proc)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def _postfix_master_cf(port: int) -> str:
    out = []
    for line in Path("/etc/postfix/master.cf").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        fields = line.split()
        if line[0] in " \t" or len(fields) < 8:
            out.append(line)
        elif fields[0] == "smtp" and fields[1] == "inet":
            out.append(f"127.0.0.1:{port} inet n - n - - smtpd")
        else:
            fields[4] = "n"  # no chroot: the instance lives in a temporary directory
            out.append(" ".join(fields))
    return "\n".join(out) + "\n"


@contextmanager
def _postfix(root: Path, sink_port: int) -> Iterator[tuple[int, Path]]:
    port = _free_port()
    conf, queue, data = root / "conf", root / "queue", root / "data"
    root.chmod(0o755)  # the postfix user must reach its queue
    for d in (conf, queue, data):
        d.mkdir()
    shutil.chown(data, "postfix")
    (conf / "master.cf").write_text(_postfix_master_cf(port))
    (conf / "main.cf").write_text(
        f"""compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = postfix.bench
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:{sink_port}
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtp_tls_security_level = none
smtpd_tls_security_level = none
default_destination_concurrency_limit = 20
maillog_file_prefixes = {root}
maillog_file = {root}/maillog
biff = no
"""
    )
    started = subprocess.run(
        [POSTFIX, "-c", str(conf), "start"], check=False, capture_output=True, text=True
    )
    if started.returncode != 0:
        log = (root / "maillog").read_text() if (root / "maillog").exists() else ""
        raise RuntimeError(f"postfix did not start: {started.stderr}{log[-2000:]}")
    try:
        _wait_port(port)
        yield port, queue
    finally:
        subprocess.run(
            [POSTFIX, "-c", str(conf), "stop"],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )


@contextmanager
def _mailcore(root: Path, sink_port: int) -> Iterator[tuple[int, Path]]:
    queue = root / "queue"
    argv = [sys.executable, "-m", "mailcore.relay.service", "--queue", str(queue)]
    argv += ["--smarthost", f"127.0.0.1:{sink_port}"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as child:
        try:
            assert child.stdout is not None  # PIPE
            line = child.stdout.readline()
            if not line.strip().isdigit():
                raise RuntimeError("mailcore relay did not start")
            yield int(line), queue
        finally:
            child.terminate()
            child.wait(10)


def _queued(mta: str, queue: Path) -> int:
    if mta == "mailcore":
        reader = Queue(queue)
        reader.open(owner=False)
        try:
            return reader.count()
        finally:
            reader.close()
    return sum(len(files) for q in _POSTFIX_QUEUES for _, _, files in os.walk(queue / q))


def _wait_empty(mta: str, queue: Path, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while _queued(mta, queue):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{mta}: queue not empty after {timeout} s")
        time.sleep(0.005)


def _source(port: int, size: int, messages: int, sessions: int) -> None:
    argv = [SMTP_SOURCE, "-s", str(sessions), "-m", str(messages), "-l", str(size)]
    argv += ["-M", "bench.client", "-f", "sender@bench.client", "-t", "rcpt@bench.remote"]
    subprocess.run(
        [*argv, f"127.0.0.1:{port}"],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=600,
    )


def _probe(port: int, stop: threading.Event, sent: dict[str, float]) -> None:
    n = 0
    with smtplib.SMTP("127.0.0.1", port, local_hostname="probe.client", timeout=60) as client:
        while not stop.is_set() and n < 1000:
            tag = f"probe-{n}-{os.getpid()}"
            body = f"Subject: latency probe\r\nX-Probe: {tag}\r\n\r\nprobe\r\n"
            client.sendmail("probe@bench.client", ["rcpt@bench.remote"], body)
            sent[tag] = time.time()
            n += 1
            stop.wait(0.05)


def _arrivals(dump: Path) -> tuple[int, dict[str, float]]:
    found: dict[str, float] = {}
    count = 0
    for entry in os.scandir(dump):
        count += 1
        with open(entry.path, "rb") as fh:
            head = fh.read(4096)
        at = head.find(b"X-Probe: ")
        if at >= 0:
            tag = head[at + 9 : head.index(b"\n", at)].strip().decode()
            found[tag] = entry.stat().st_mtime
    return count, found


def run_one(mta: str, size: int, *, messages: int, sessions: int) -> RelayResult:
    """Time ``mta`` relaying ``messages`` of ``size`` bytes to smtp-sink."""
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with (
        tempfile.TemporaryDirectory(prefix=f"relay-bench-{mta}-") as tmp,
        tempfile.TemporaryDirectory(prefix="relay-bench-sink-", dir=shm) as dump_dir,
    ):
        root, dump = Path(tmp), Path(dump_dir)
        dump.chmod(0o777)  # smtp-sink drops to "nobody" before writing
        with _sink(dump) as sink_port:
            start_mta = _mailcore if mta == "mailcore" else _postfix
            with start_mta(root, sink_port) as (port, queue):
                warm = max(5, messages // 10)
                _source(port, size, warm, sessions)
                _wait_empty(mta, queue)
                stop, sent = threading.Event(), dict[str, float]()
                prober = threading.Thread(target=_probe, args=(port, stop, sent))
                start = time.perf_counter()
                prober.start()
                _source(port, size, messages, sessions)
                accept = time.perf_counter() - start
                stop.set()
                prober.join()
                _wait_empty(mta, queue)
                total = time.perf_counter() - start
                time.sleep(0.2)  # the sink closes its last dump files
            count, arrived = _arrivals(dump)
    latencies = tuple(arrived[t] - sent[t] for t in sent if t in arrived)
    return RelayResult(
        mta, size, messages, sessions, accept, total, latencies, count - warm - len(sent)
    )


def run(
    sizes: Sequence[int] = (4096, 100 * 1024),
    *,
    messages: int = 2000,
    sessions: int = 20,
    settle: float = 6.0,
) -> list[RelayResult]:
    """Every MTA at every size, in the same run, each after a settle pause (see settle_disk)."""
    results = []
    for size in sizes:
        for mta in MTAS:
            settle_disk(settle)
            results.append(run_one(mta, size, messages=messages, sessions=sessions))
    return results


def format_table(results: Sequence[RelayResult]) -> str:
    """Markdown table with mailcore's ratio to Postfix at the same size."""
    base = {r.size: r.relay_per_second for r in results if r.mta == "postfix"}
    lines = [
        "| relay | size | messages | sessions | accept msg/s | relay msg/s "
        "| 250→delivery p50 ms | p95 ms | delivered | relay vs Postfix |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        ref = base.get(r.size)
        ratio = f"{r.relay_per_second / ref:.2f}x" if ref else "-"
        lines.append(
            f"| {r.mta} | {r.size // 1024} KiB | {r.messages} | {r.sessions} "
            f"| {r.accept_per_second:,.0f} | {r.relay_per_second:,.0f} "
            f"| {r.latency_ms(0.5):,.1f} | {r.latency_ms(0.95):,.1f} "
            f"| {r.delivered} | {ratio} |"
        )
    return "\n".join(lines)
