"""Run ``mailcore serve`` as a child process on free ports, as a user would."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from mailcore.bench.dovecot import free_port

__all__ = ["ROOT", "Serve", "free_port", "mailcore", "write_config"]

ROOT = Path(__file__).resolve().parents[2]


def write_config(
    path: Path, data: Path, listeners: Sequence[tuple[str, str]], extra: str = ""
) -> dict[str, int]:
    """A config with one listener per (protocol, tls) on free ports; return name -> port.

    The name is the protocol, with an ``s`` appended for implicit TLS.
    """
    ports: dict[str, int] = {}
    # Failed logins are slowed down by seconds in production; not in tests.
    fast = (
        "[limits.smtp]\nauth_failure_delay = 0.01\n[limits.pop3]\nfailed_login_delay = 0.01\n"
        "[limits.imap]\nfailed_login_delay = 0.01"
    )
    lines = [f'data_dir = "{data}"', extra, fast]
    for protocol, tls in listeners:
        port = free_port()
        ports[protocol + ("s" if tls == "implicit" else "")] = port
        lines += ["[[listener]]", f'protocol = "{protocol}"', f"port = {port}", f'tls = "{tls}"']
    path.write_text("\n".join(lines) + "\n")
    return ports


def mailcore(
    *args: str, stdin: str | None = None, prefix: Sequence[str] = ()
) -> subprocess.CompletedProcess[str]:
    """Run the CLI to completion."""
    return subprocess.run(
        [*prefix, sys.executable, "-m", "mailcore", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


class Serve:
    """A running ``mailcore serve``: its start-up summary, its log lines, and signals."""

    def __init__(self, *args: str, prefix: Sequence[str] = (), cwd: Path = ROOT) -> None:
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", "mailcore", "serve", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._threads = [
            threading.Thread(target=self._drain, args=(self.proc.stdout, self.stdout), daemon=True),
            threading.Thread(target=self._drain, args=(self.proc.stderr, self.stderr), daemon=True),
        ]
        for t in self._threads:
            t.start()

    @staticmethod
    def _drain(stream: object, into: list[str]) -> None:
        assert hasattr(stream, "readline")
        for line in iter(stream.readline, ""):
            into.append(line)

    def wait_ready(self, timeout: float = 30.0) -> dict[str, int]:
        """Wait for the summary; return listener name -> port as printed."""
        deadline = time.monotonic() + timeout
        while not any(line.startswith("Stop:") for line in self.stdout):
            if self.proc.poll() is not None:
                time.sleep(0.2)  # let the drain threads catch the last lines
                raise AssertionError(f"serve exited {self.proc.returncode}: {''.join(self.stderr)}")
            assert time.monotonic() < deadline, "".join(self.stdout + self.stderr)
            time.sleep(0.02)
        ports: dict[str, int] = {}
        for line in self.stdout:
            m = re.match(r"  (\w+) +[\d.]+:(\d+) +(.*)", line)
            if m:
                name = m.group(1) + ("s" if "implicit TLS" in m.group(3) else "")
                ports[name] = int(m.group(2))
        return ports

    def wait_log(self, text: str, timeout: float = 10.0, *, count: int = 1) -> str:
        """Wait for ``count`` log lines containing ``text``; return the last of them."""
        deadline = time.monotonic() + timeout
        while True:
            found = [line for line in list(self.stderr) if text in line]
            if len(found) >= count:
                return found[count - 1]
            assert time.monotonic() < deadline, f"no {text!r} in {''.join(self.stderr)}"
            time.sleep(0.02)

    @property
    def processes(self) -> int:
        """How many processes serve SMTP: the main one and its workers (from the summary)."""
        for line in self.stdout:
            m = re.search(r"workers \(pids ([\d, ]+)\)", line)
            if m:
                return 1 + len(m.group(1).split(", "))
        return 1

    def wait_everywhere(self, text: str, timeout: float = 10.0) -> None:
        """Wait until the main process and every SMTP worker logged ``text`` (a reload)."""
        self.wait_log(text, timeout, count=self.processes)

    def signal(self, sig: signal.Signals) -> None:
        """Send a signal."""
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait; return the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self._close_pipes()
        return code

    def _close_pipes(self) -> None:
        for t in self._threads:
            t.join(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def kill(self) -> None:
        """Make sure the process is gone (test clean-up)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close_pipes()
