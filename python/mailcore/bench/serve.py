"""The whole path: smtp-source into ``mailcore serve`` with durable local delivery, against Postfix.

mailcore: ``mailcore serve`` as a child process with one SMTP listener on
loopback, one local user, its log written to a file. Its 250 comes only after
the message is fsynced in the user's Maildir and indexed, so the run is over
when smtp-source ends.

Postfix: its own instance (``postfix -c DIR``: its own main.cf, master.cf,
queue and data directories), smtpd on one loopback port, delivering with its
``virtual`` agent into a Maildir (``virtual_mailbox_maps`` with a trailing
``/``). It cannot send anywhere: no inet client services are in its
master.cf, and ``default_transport``/``relay_transport`` are ``error``.
Postfix answers 250 once the queue file is fsynced and delivers afterwards,
so its run is over when the last message is in the Maildir.

Both get a warm-up of a tenth of the messages first. Reported: messages per
second, wall clock from the first connection to the last delivered message
(each server's best run), and each mailcore setting's ratio to Postfix as
the median of its runs' ratios to the mean of the Postfix runs just before
and after them (Postfix runs first and after every round).

Each server's runs live in a directory of their own that ext4 places in
block groups away from ``/tmp`` and from the other server (see
:func:`mailcore.bench.spread_subdirectories`). On ext4 without a journal a
new file scans past every inode freed in its group in the last minute, so
start a bench at least a minute after the last one ended (its cleanup
frees some 35,000 inodes), or after a test run.

Then, for mailcore, the time until an IMAP client sitting in IDLE (RFC 2177)
on the INBOX sees the last message: from the end of the smtp-source run (the
last 250) to the ``* N EXISTS`` that counts it. This needs the IMAP server
(``mailcore.imap.server``); a build without it reports no figure.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from mailcore.bench import settle_disk, spread_subdirectories
from mailcore.config import smtp_process_count
from mailcore.smtp.bench import SMTP_SOURCE, uvloop_available

__all__ = [
    "POSTFIX",
    "ServeResult",
    "format_table",
    "imap_available",
    "run",
    "run_mailcore",
    "run_postfix",
]

POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
"""Postfix's control command (Debian package postfix)."""
USER = "rcpt@bench.server"


@dataclass(frozen=True)
class ServeResult:
    """One server's run."""

    server: str
    loop: str
    size: int
    messages: int
    sessions: int
    seconds: float
    idle_ms: float | None = None
    """Milliseconds from the last 250 until an IMAP IDLE client saw the message."""
    ratios: tuple[float, ...] = ()
    """Each run's msg/s over the mean of the Postfix runs just before and after it."""

    @property
    def per_second(self) -> float:
        """Messages delivered per second."""
        return self.messages / self.seconds


def imap_available() -> bool:
    """Whether this build has the IMAP server (for the IDLE figure)."""
    return importlib.util.find_spec("mailcore.imap.server") is not None


class _IdleWatcher(threading.Thread):
    """An IMAP client in IDLE on INBOX that notes when the mailbox reaches ``target``."""

    def __init__(self, port: int, user: str, password: str, target: int) -> None:
        super().__init__(daemon=True)
        self.target = target
        self.seen: float | None = None
        self.error: BaseException | None = None
        self.ready = threading.Event()
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.file = self.sock.makefile("rb")
        self._command(b"a LOGIN " + user.encode() + b" " + password.encode())
        self._command(b"b SELECT INBOX")
        self.sock.sendall(b"c IDLE\r\n")

    def _command(self, line: bytes) -> None:
        tag = line.split(b" ", 1)[0]
        self.sock.sendall(line + b"\r\n")
        while True:
            reply = self.file.readline()
            if not reply:
                raise RuntimeError(f"IMAP server closed the connection after {line!r}")
            if reply.startswith(tag + b" "):
                if not reply.startswith(tag + b" OK"):
                    raise RuntimeError(f"IMAP {line!r}: {reply!r}")
                return

    def run(self) -> None:
        exists = re.compile(rb"^\* (\d+) EXISTS")
        try:
            while True:
                line = self.file.readline()
                if not line:
                    raise RuntimeError("IMAP server closed the connection during IDLE")
                if line.startswith(b"+"):
                    self.ready.set()
                m = exists.match(line)
                if m and int(m.group(1)) >= self.target:
                    self.seen = time.perf_counter()
                    self.sock.sendall(b"DONE\r\nd LOGOUT\r\n")
                    return
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            self.error = exc
            self.ready.set()
        finally:
            self.file.close()
            self.sock.close()


def _free_ports(count: int) -> list[int]:
    """``count`` different free loopback ports (all held open while they are picked)."""
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports


def _source(port: int, size: int, messages: int, sessions: int, log: Path | None = None) -> None:
    argv = [SMTP_SOURCE, "-s", str(sessions), "-m", str(messages), "-l", str(size)]
    argv += ["-M", "bench.client", "-f", "sender@bench.client", "-t", USER]
    done = subprocess.run(
        [*argv, f"127.0.0.1:{port}"],
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        # Say what went wrong: smtp-source's complaint and the server's last lines.
        tail = ""
        if log is not None and log.exists():
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(
            f"smtp-source exited {done.returncode}: {done.stderr.strip()[-2000:]}\n"
            f"server log ({log}):\n{tail}"
        )


def _count(maildir: Path) -> int:
    try:
        return len(os.listdir(maildir / "new")) + len(os.listdir(maildir / "cur"))
    except FileNotFoundError:
        return 0


def _wait_for(maildir: Path, count: int, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while _count(maildir) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {_count(maildir)} of {count} messages in {maildir}")
        time.sleep(0.005)


def _wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextlib.contextmanager
def _run_dir(prefix: str, workdir: Path | None) -> Iterator[Path]:
    """A fresh directory for one run: inside ``workdir`` (kept), or a temporary one.

    :func:`run` keeps every run's files until the end, each server's runs in
    a directory of its own that ext4 places apart from the other's (see
    :func:`spread_subdirectories`): on ext4 without a journal, a file created
    in a block group where thousands were deleted in the last minute (by an
    earlier benchmark's cleanup, a test run, the other server) pays for
    scanning past each of them.
    """
    if workdir is not None:
        yield Path(tempfile.mkdtemp(prefix=prefix, dir=workdir))
        return
    root = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run_mailcore(
    size: int,
    *,
    messages: int,
    sessions: int,
    loop: str = "asyncio",
    workdir: Path | None = None,
    processes: int | None = None,
) -> ServeResult:
    """Time ``mailcore serve`` delivering ``messages`` to one local user.

    ``processes``: its ``smtp_processes`` setting (None: the default, "auto").
    """
    with _run_dir("mailcore-bench-", workdir) as root:
        data = root / "data"
        port, imap_port = _free_ports(2)
        idle = imap_available()
        config = f'data_dir = "{data}"\ndomains = ["bench.server"]\n'
        if processes is not None:
            config += f"smtp_processes = {processes}\n"
        config += f'[[listener]]\nprotocol = "smtp"\nport = {port}\ntls = "none"\n'
        if idle:
            # Loopback only: the IDLE client logs in without TLS.
            config += f'[[listener]]\nprotocol = "imap"\nport = {imap_port}\ntls = "none"\n'
            config += "[auth]\nallow_plaintext = true\n"
        (root / "mailcore.toml").write_text(config)
        from mailcore.auth.accounts import Accounts

        password = os.urandom(8).hex()
        accounts = Accounts(data)
        accounts.add_user(USER, password)
        accounts.close()
        argv = [sys.executable, "-m", "mailcore", "serve", "--config", str(root / "mailcore.toml")]
        argv += ["--event-loop", loop]
        with (
            open(root / "serve.log", "wb") as log,
            subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log) as child,
        ):
            try:
                _wait_port(port)
                maildir = data / "mail" / USER
                warm = max(5, messages // 10)
                _source(port, size, warm, sessions, root / "serve.log")
                watcher = None
                if idle:
                    _wait_port(imap_port)
                    watcher = _IdleWatcher(imap_port, USER, password, warm + messages)
                    watcher.start()
                    watcher.ready.wait(30)
                start = time.perf_counter()
                _source(port, size, messages, sessions, root / "serve.log")
                done = time.perf_counter()
                _wait_for(maildir, warm + messages)  # already there: 250 means stored
                seconds = done - start
                idle_ms = None
                if watcher is not None:
                    watcher.join(60)
                    if watcher.error is not None or watcher.seen is None:
                        raise RuntimeError(f"IDLE client failed: {watcher.error}")
                    idle_ms = max(0.0, watcher.seen - done) * 1000
            finally:
                child.terminate()
                child.wait(30)
    count = smtp_process_count("auto" if processes is None else processes)
    name = f"mailcore serve ({count} SMTP process{'es' if count > 1 else ''})"
    return ServeResult(name, loop, size, messages, sessions, seconds, idle_ms)


_MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
virtual   unix  - n n - - virtual
postlog   unix-dgram n - n - 1 postlogd
"""


def _postfix_main_cf(root: Path) -> str:
    return f"""\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = bench.postfix
mydomain = bench.postfix
myorigin = bench.postfix
mydestination =
mynetworks = 127.0.0.0/8
relay_domains =
# Nothing leaves this instance: no smtp/lmtp client in master.cf either.
default_transport = error:this benchmark instance sends nowhere
relay_transport = error:this benchmark instance sends nowhere
local_transport = error:no local delivery here
virtual_mailbox_domains = bench.server
virtual_mailbox_base = {root}/vmail
virtual_mailbox_maps = inline:{{ {USER}=rcpt/ }}
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
virtual_minimum_uid = 100
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
fast_flush_domains =
alias_maps =
alias_database =
biff = no
"""


def _postfix(root: Path, action: str) -> None:
    subprocess.run(
        [POSTFIX, "-c", str(root), action],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=60,
    )


def run_postfix(
    size: int, *, messages: int, sessions: int, workdir: Path | None = None
) -> ServeResult:
    """Time a private Postfix instance delivering ``messages`` into a Maildir (needs root)."""
    if os.geteuid() != 0:
        raise RuntimeError("the Postfix peer needs root (its master process runs as root)")
    with _run_dir("postfix-bench-", workdir) as root:
        # Postfix's daemons run as the postfix user and 65534: they must reach in.
        root.chmod(0o755)
        (port,) = _free_ports(1)
        for sub in ("queue", "data", "vmail"):
            (root / sub).mkdir()
        shutil.chown(root / "data", "postfix")
        os.chown(root / "vmail", 65534, 65534)
        (root / "main.cf").write_text(_postfix_main_cf(root))
        (root / "master.cf").write_text(_MASTER_CF.format(port=port))
        _postfix(root, "start")
        try:
            _wait_port(port)
            maildir = root / "vmail" / "rcpt"
            warm = max(5, messages // 10)
            _source(port, size, warm, sessions, root / "maillog")
            _wait_for(maildir, warm)
            start = time.perf_counter()
            _source(port, size, messages, sessions, root / "maillog")
            _wait_for(maildir, warm + messages)
            seconds = time.perf_counter() - start
        finally:
            _postfix(root, "stop")
    return ServeResult("postfix (virtual, Maildir)", "-", size, messages, sessions, seconds)


def run(
    size: int = 4096,
    *,
    messages: int = 2000,
    sessions: int = 20,
    uvloop: bool | None = None,
    repeat: int = 1,
    settle: float = 6.0,
) -> list[ServeResult]:
    """mailcore (asyncio, and uvloop when installed) and Postfix, in the same run.

    Postfix runs first and again after every round of mailcore runs, so each
    mailcore run is compared with the mean of the Postfix runs on either
    side of it (``ratios``): this machine's speed drifts by a third within
    minutes, and a bracketed ratio cancels most of a drift that a best-of-N
    comparison keeps. Each server also keeps its best msg/s over the
    ``repeat`` rounds (other jobs only ever slow a run down).
    """
    loops = ["asyncio"]
    if uvloop if uvloop is not None else uvloop_available():
        loops.append("uvloop")
    best: dict[str, ServeResult] = {}
    ratios: dict[str, list[float]] = {}

    def keep(result: ServeResult) -> None:
        key = f"{result.server}/{result.loop}"
        if key not in best or result.per_second > best[key].per_second:
            best[key] = result

    # The default ("auto") and, on a machine with several cores, one process
    # for comparison: what the SMTP worker processes bring.
    settings: list[int | None] = [None]
    if smtp_process_count("auto") > 1:
        settings.append(1)
    with tempfile.TemporaryDirectory(prefix="mailcore-bench-serve-") as tmp:
        workdir = Path(tmp)
        workdir.chmod(0o755)  # Postfix's daemons must reach their run's directory
        # One directory per server, away from /tmp's block groups (where
        # test runs and earlier benchmarks delete thousands of files) and,
        # where ext4 finds room, from each other; each server's layout below
        # its directory stays one tree, as one data directory would be.
        spread_subdirectories(workdir)
        postfix_dir, mailcore_dir = workdir / "postfix", workdir / "mailcore"
        postfix_dir.mkdir()
        postfix_dir.chmod(0o755)
        mailcore_dir.mkdir()

        def postfix() -> ServeResult:
            settle_disk(settle)
            result = run_postfix(size, messages=messages, sessions=sessions, workdir=postfix_dir)
            keep(result)
            return result

        before = postfix()
        for _ in range(repeat):
            round_: list[ServeResult] = []
            for loop in loops:
                for processes in settings:
                    settle_disk(settle)
                    result = run_mailcore(
                        size,
                        messages=messages,
                        sessions=sessions,
                        loop=loop,
                        workdir=mailcore_dir,
                        processes=processes,
                    )
                    keep(result)
                    round_.append(result)
            after = postfix()
            reference = (before.per_second + after.per_second) / 2
            for result in round_:
                key = f"{result.server}/{result.loop}"
                ratios.setdefault(key, []).append(result.per_second / reference)
            before = after
    # The cleanup above freed every run's inodes: write the inode tables out,
    # so that ext4 stops avoiding them after 60 s rather than 360 s (what a
    # bench started right after this one would otherwise pay for).
    os.sync()
    ours = [
        dataclasses.replace(r, ratios=tuple(ratios[key]))
        for key, r in best.items()
        if key in ratios
    ]
    return ours + [r for key, r in best.items() if key not in ratios]  # Postfix last


def format_table(results: Sequence[ServeResult]) -> str:
    """Markdown table: best msg/s, and the median (range) of the bracketed ratios to Postfix."""
    base = next((r.per_second for r in results if r.server.startswith("postfix")), None)
    lines = [
        "| server | loop | size | messages | sessions | best msg/s | vs Postfix | IDLE sees last |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        ratio = _ratio_text(r, base)
        if r.idle_ms is not None:
            idle = f"{r.idle_ms:,.1f} ms"
        elif r.server.startswith("mailcore"):
            idle = "no IMAP in this build"
        else:
            idle = "-"
        lines.append(
            f"| {r.server} | {r.loop} | {r.size // 1024} KiB | {r.messages} | {r.sessions} "
            f"| {r.per_second:,.0f} | {ratio} | {idle} |"
        )
    return "\n".join(lines)


def _ratio_text(result: ServeResult, postfix: float | None) -> str:
    """Median of the bracketed ratios (and their range); else best over best."""
    if result.ratios:
        text = f"{statistics.median(result.ratios):.2f}x"
        if len(result.ratios) > 1:
            text += f" ({min(result.ratios):.2f}-{max(result.ratios):.2f})"
        return text
    if postfix:
        return f"{result.per_second / postfix:.2f}x"
    return "-"
