"""``mailcore serve`` with SMTP worker processes (``smtp_processes``).

The workers accept on the main process's SMTP sockets. To show that a
session really was served by a worker, the main process is frozen
(SIGSTOP): only a worker can then answer.
"""

from __future__ import annotations

import imaplib
import os
import re
import signal
import smtplib
import ssl
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.serve.proc import Serve, free_port, mailcore, write_config


def _add_user(config: Path, address: str, password: str) -> None:
    result = mailcore(
        "user", "add", address, "--config", str(config), "--password-stdin", stdin=password + "\n"
    )
    assert result.returncode == 0, result.stderr


def _worker_pids(server: Serve) -> list[int]:
    for line in server.stdout:
        m = re.search(r"workers \(pids ([\d, ]+)\)", line)
        if m:
            return [int(p) for p in m.group(1).split(", ")]
    raise AssertionError(f"no worker line in {''.join(server.stdout)}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def _wait(predicate: object, timeout: float = 15.0) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _start(tmp_path: Path, processes: int, extra: str = "") -> tuple[Serve, dict[str, int], int]:
    data = tmp_path / "data"
    config = tmp_path / "mailcore.toml"
    write_config(
        config,
        data,
        [("smtp", "none"), ("submission", "none"), ("imap", "none")],
        extra=f"smtp_processes = {processes}\n[auth]\nallow_plaintext = true\n{extra}",
    )
    _add_user(config, "ann@localhost", "secret-pw")
    metrics = free_port()
    server = Serve("--config", str(config), "--metrics", f"127.0.0.1:{metrics}")
    return server, server.wait_ready(), metrics


def _send(port: int, subject: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.sendmail("x@remote.example", ["ann@localhost"], f"Subject: {subject}\r\n\r\nhi\r\n")


def _inbox(port: int) -> list[bytes]:
    imap = imaplib.IMAP4("127.0.0.1", port)
    try:
        imap.login("ann@localhost", "secret-pw")
        imap.select("INBOX", readonly=True)
        _typ, data = imap.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        return sorted(part[1].strip() for part in data if isinstance(part, tuple))
    finally:
        imap.logout()


def test_workers_serve_smtp_while_the_main_process_is_frozen(tmp_path: Path) -> None:
    server, ports, metrics = _start(tmp_path, 3)
    try:
        workers = _worker_pids(server)
        assert len(workers) == 2 and all(_alive(p) for p in workers)
        # Freeze the main process: every session below is a worker's.
        server.signal(signal.SIGSTOP)
        try:
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda i: _send(ports["smtp"], f"frozen {i}"), range(24)))
        finally:
            server.signal(signal.SIGCONT)
        # In the store, readable through the main process's IMAP.
        subjects = _inbox(ports["imap"])
        assert subjects == sorted(f"Subject: frozen {i}".encode() for i in range(24))

        # The main process logged and counted the workers' sessions and messages.
        def counted() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=5) as r:
                text = r.read().decode()
            return (
                'mailcore_messages_delivered_total{result="delivered"} 24.0' in text
                and 'mailcore_connections_total{protocol="smtp"} 24.0' in text
            )

        _wait(counted)
        assert sum("event=message" in line for line in server.stderr) == 24
        assert server.stop() == 0
        _wait(lambda: not any(_alive(p) for p in workers))
    finally:
        server.kill()


def test_a_worker_speaks_tls_and_auth_with_the_main_process_frozen(tmp_path: Path) -> None:
    # Submission (STARTTLS, then AUTH) and SMTPS (implicit TLS) served by a
    # worker: its own TLS context from the same certificate, the accounts
    # read from the shared database.
    data = tmp_path / "data"
    config = tmp_path / "mailcore.toml"
    ports = write_config(
        config,
        data,
        [("submission", "starttls"), ("smtp", "implicit"), ("imap", "none")],
        extra="smtp_processes = 2\n[auth]\nallow_plaintext = true",
    )
    _add_user(config, "ann@localhost", "secret-pw")
    server = Serve("--config", str(config))
    try:
        server.wait_ready()
        ctx = ssl.create_default_context(cafile=str(data / "tls-cert.pem"))
        server.signal(signal.SIGSTOP)
        try:
            with smtplib.SMTP("localhost", ports["submission"], timeout=30) as s:
                s.starttls(context=ctx)
                s.login("ann@localhost", "secret-pw")
                s.sendmail("ann@localhost", ["ann@localhost"], b"Subject: submitted\r\n\r\nx\r\n")
            with smtplib.SMTP_SSL("localhost", ports["smtps"], context=ctx, timeout=30) as s:
                s.sendmail("x@remote.example", ["ann@localhost"], b"Subject: smtps\r\n\r\nx\r\n")
        finally:
            server.signal(signal.SIGCONT)
        assert _inbox(ports["imap"]) == [b"Subject: smtps", b"Subject: submitted"]
        assert server.stop() == 0
    finally:
        server.signal(signal.SIGCONT)
        server.kill()


def test_idle_client_hears_of_worker_deliveries(tmp_path: Path) -> None:
    server, ports, _metrics = _start(tmp_path, 2)
    try:
        imap = imaplib.IMAP4("127.0.0.1", ports["imap"])
        imap.login("ann@localhost", "secret-pw")
        imap.select("INBOX")
        tag = imap._new_tag().decode()
        imap.send(f"{tag} IDLE\r\n".encode())
        assert imap.readline().startswith(b"+")
        imap.sock.settimeout(10)
        # Eight connections: with two processes accepting, the worker takes some.
        for i in range(8):
            _send(ports["smtp"], f"idle {i}")
        seen = 0
        while seen < 8:
            line = imap.readline()
            m = re.match(rb"\* (\d+) EXISTS", line)
            if m:
                seen = int(m.group(1))
        imap.send(b"DONE\r\n")
        imap.logout()
        assert server.stop() == 0
    finally:
        server.kill()


def test_a_frozen_main_process_holds_back_relayed_mail_until_it_is_queued(tmp_path: Path) -> None:
    # Mail for the relay queue goes through the main process (the queue has
    # one owner): the worker's 250 waits for it.
    server, ports, _metrics = _start(tmp_path, 2, extra='[relay]\nnetworks = ["127.0.0.0/8"]')
    try:
        server.signal(signal.SIGSTOP)
        outcome: list[object] = []

        def relay() -> None:
            try:
                with smtplib.SMTP("127.0.0.1", ports["smtp"], timeout=30) as s:
                    s.sendmail(
                        "ann@localhost", ["bob@remote.example"], b"Subject: out\r\n\r\nx\r\n"
                    )
                outcome.append("sent")
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                outcome.append(exc)

        thread = threading.Thread(target=relay)
        thread.start()
        time.sleep(1.0)
        assert outcome == []  # no 250 while the queue's owner is frozen
        server.signal(signal.SIGCONT)
        thread.join(30)
        assert outcome == ["sent"]
        line = server.wait_log("to=<bob@remote.example>")
        assert "result=queued" in line and 'reply="250 2.0.0"' in line
        assert server.stop() == 0
    finally:
        server.signal(signal.SIGCONT)
        server.kill()


def test_a_dead_worker_is_replaced_and_a_dead_main_takes_the_workers_along(
    tmp_path: Path,
) -> None:
    server, ports, _metrics = _start(tmp_path, 2)
    try:
        [worker] = _worker_pids(server)
        os.kill(worker, signal.SIGKILL)
        server.wait_log(f"smtp worker {worker} exited")

        def replaced() -> list[int]:
            out = []
            for pid in os.listdir("/proc"):
                if pid.isdigit() and int(pid) != worker:
                    try:
                        with open(f"/proc/{pid}/cmdline", "rb") as f:
                            cmd = f.read()
                        with open(f"/proc/{pid}/stat") as f:
                            parent = int(f.read().rsplit(")", 1)[1].split()[1])
                    except OSError:
                        continue
                    if b"mailcore.workers" in cmd and parent == server.proc.pid:
                        out.append(int(pid))
            return out

        _wait(lambda: len(replaced()) == 1)
        [new] = replaced()
        for i in range(6):
            _send(ports["smtp"], f"after {i}")
        assert len(_inbox(ports["imap"])) == 6
        # The main process killed outright: its workers notice and stop.
        server.proc.kill()
        server.proc.wait(10)
        _wait(lambda: not _alive(new))
    finally:
        server.kill()


def test_a_worker_sent_sigterm_drains_and_is_not_replaced(tmp_path: Path) -> None:
    # What a service manager signalling the whole group does to a worker.
    server, ports, _metrics = _start(tmp_path, 2)
    try:
        [worker] = _worker_pids(server)
        os.kill(worker, signal.SIGTERM)
        server.wait_log(f"smtp worker {worker} stopped")
        _wait(lambda: not _alive(worker))
        for i in range(3):
            _send(ports["smtp"], f"main only {i}")
        assert len(_inbox(ports["imap"])) == 3
        assert not any("starting another" in line for line in server.stderr)
        assert server.stop() == 0
    finally:
        server.kill()


def test_the_connection_limit_is_shared_among_the_processes(tmp_path: Path) -> None:
    # limits.smtp.connections bounds the listener, not each process: with two
    # processes each admits half. The main process is frozen, so the worker
    # alone answers: two sessions, then 421 for the rest.
    port = free_port()
    config = tmp_path / "mailcore.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\nsmtp_processes = 2\n'
        "[limits.smtp]\nconnections = 4\n"
        f'[[listener]]\nprotocol = "smtp"\nport = {port}\ntls = "none"\n'
    )
    server = Serve("--config", str(config))
    clients: list[smtplib.SMTP] = []
    try:
        server.wait_ready()
        server.signal(signal.SIGSTOP)
        try:
            codes = []
            for _ in range(5):
                client = smtplib.SMTP(timeout=10)
                codes.append(client.connect("127.0.0.1", port)[0])
                clients.append(client)
        finally:
            server.signal(signal.SIGCONT)
        assert codes == [220, 220, 421, 421, 421]
        for client in clients:
            client.close()
        assert server.stop() == 0
    finally:
        server.signal(signal.SIGCONT)
        server.kill()


@pytest.mark.parametrize("setting", ["1", '"1"'])
def test_one_smtp_process_starts_no_worker(tmp_path: Path, setting: str) -> None:
    data = tmp_path / "data"
    config = tmp_path / "mailcore.toml"
    write_config(config, data, [("smtp", "none")], extra=f"smtp_processes = {setting}")
    server = Serve("--config", str(config))
    try:
        server.wait_ready()
        assert not any("workers (pids" in line for line in server.stdout)
        assert server.stop() == 0
    finally:
        server.kill()


def test_flag_overrides_the_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = tmp_path / "mailcore.toml"
    write_config(config, data, [("smtp", "none")], extra="smtp_processes = 1")
    server = Serve("--config", str(config), "--smtp-processes", "2")
    try:
        server.wait_ready()
        assert len(_worker_pids(server)) == 1
        assert server.stop() == 0
    finally:
        server.kill()


async def test_worker_events_bounded_while_main_does_not_read() -> None:
    """A main process that stops reading costs a worker bounded memory, never a relay call."""
    import asyncio
    import socket

    from mailcore.workers import _read_frame, _Sender

    ours, theirs = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024)
    theirs.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    _reader, writer = await asyncio.open_connection(sock=ours)
    reader, main_writer = await asyncio.open_connection(sock=theirs)
    # No delay: a frame per loop turn, the most a worker ever sends.
    sender = _Sender(writer, backlog=64 * 1024, delay=0.0)

    def record(i: int) -> tuple[object, ...]:
        return ("event", "smtp", "connect", f"127.0.0.1:{i}", {"pad": f"{i}" + "x" * 200})

    for i in range(5000):  # about 1.2 MB of events; the main side stops reading
        sender.send(record(i), droppable=True)
        if i % 50 == 0:
            await asyncio.sleep(0)  # one frame per loop turn, as in a busy worker
    sender.send(("enqueue", 1, (), b"relayed"))  # never dropped
    await asyncio.sleep(0)
    assert sender.dropped > 0
    buffered = writer.transport.get_write_buffer_size()
    assert buffered < 64 * 1024 + 60 * 300, buffered  # the backlog and one turn's frame
    # The main process reads again: everything kept arrives in order, the
    # relay call included, then the count of what was dropped.
    got: list[tuple[object, ...]] = []
    while not any(m[0] == "enqueue" for m in got):
        got += await asyncio.wait_for(_read_frame(reader), 5)
    kept = sum(1 for m in got if m[0] == "event")
    sender.send(record(5000), droppable=True)
    for _ in range(50):
        if not writer.transport.get_write_buffer_size():
            break
        await asyncio.sleep(0.01)
    sender.send(record(5001), droppable=True)
    tail: list[tuple[object, ...]] = []
    while not any(m[0] == "dropped" for m in tail):
        tail += await asyncio.wait_for(_read_frame(reader), 5)
    dropped = next(m for m in tail if m[0] == "dropped")
    # Every event was either delivered or counted as dropped.
    assert kept + sum(1 for m in tail if m[0] == "event") + int(dropped[1]) == 5002  # type: ignore[call-overload]
    assert tail[-1][0] == "event" and tail[-1][3] == "127.0.0.1:5001"
    writer.close()
    main_writer.close()


async def test_worker_events_wait_briefly_for_company_and_relay_calls_do_not() -> None:
    """Log events and records go out in shared frames; a relay call at the end of the turn."""
    import asyncio
    import socket

    from mailcore.workers import _read_frame, _Sender

    async def pair(
        delay: float | None,
    ) -> tuple[_Sender, asyncio.StreamReader, list[asyncio.StreamWriter]]:
        ours, theirs = socket.socketpair()
        _reader, writer = await asyncio.open_connection(sock=ours)
        reader, main_writer = await asyncio.open_connection(sock=theirs)
        sender = _Sender(writer) if delay is None else _Sender(writer, delay=delay)
        return sender, reader, [writer, main_writer]

    sender, reader, writers = await pair(None)  # the default delay
    for i in range(3):
        sender.send(("event", "smtp", "connect", f"p{i}", {}), droppable=True)
    frame = await asyncio.wait_for(_read_frame(reader), 5)
    assert [m[3] for m in frame] == ["p0", "p1", "p2"]  # one frame for the three

    # With a long delay, events alone stay queued; a relay call leaves at
    # once and takes the events queued before it along, in order.
    sender, reader, more = await pair(60.0)
    writers += more
    sender.send(("event", "smtp", "connect", "p3", {}), droppable=True)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(_read_frame(reader), 0.2)
    sender.send(("enqueue", 7, (), b"data"))
    frame = await asyncio.wait_for(_read_frame(reader), 5)
    assert [m[0] for m in frame] == ["event", "enqueue"]
    for w in writers:
        w.close()
