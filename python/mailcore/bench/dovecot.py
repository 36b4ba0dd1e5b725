"""Start Dovecot's pop3d on loopback with its own configuration (benchmarks and interop tests).

``mailcore bench pop3`` times mailcore's POP3 server against it; the interop
tests (``tests/interop``) talk to it with mailcore's client. Needs the Debian
package ``dovecot-pop3d`` (scripts/check.sh installs it) and root (the
Maildir is handed to the ``nobody`` user Dovecot serves it as). Messages are
delivered by writing files into the Maildir, as an MDA would.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

__all__ = [
    "DOVECOT",
    "PASSWORD",
    "USER",
    "Dovecot",
    "find_user",
    "free_port",
    "start_dovecot",
    "stop_dovecot",
]

DOVECOT = "/usr/sbin/dovecot"
USER = "jeff@example.org"
PASSWORD = "pass word"

_CONF = """\
protocols = pop3
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
instance_name = mailcore-test-{port}
default_internal_user = {internal}
default_internal_group = {internal_group}
default_login_user = {login}
ssl = {ssl}
{ssl_files}
disable_plaintext_auth = no
auth_mechanisms = plain login cram-md5 scram-sha-256 apop
auth_failure_delay = 0
log_path = {root}/log
mail_location = maildir:{root}/mail/Maildir
mail_fsync = never
pop3_uidl_format = %08Xu%08Xv
pop3_lock_session = yes
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener pop3s {{
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail
}}
"""


_GIVEN_PORTS: set[int] = set()


def free_port() -> int:
    """A loopback port that was free a moment ago and not handed out before in this process.

    For servers that cannot listen on port 0 (Dovecot, smtp-sink, a config
    file): the kernel may offer the same ephemeral port twice in a row once
    the probe socket is closed, and two listeners must never get it.
    """
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port not in _GIVEN_PORTS:
            _GIVEN_PORTS.add(port)
            return port


def find_user(*names: str) -> pwd.struct_passwd:
    """The first of ``names`` that is a system user (Dovecot's service users vary)."""
    for name in names:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError(f"none of the users {names} exists")


def start_dovecot(conf: Path, port: int) -> subprocess.Popen[bytes]:
    """Start ``dovecot -F`` with ``conf``; return once it accepts connections on ``port``."""
    proc = subprocess.Popen(
        [DOVECOT, "-F", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"dovecot exited: {err}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.05)
    stop_dovecot(proc, None)
    raise RuntimeError("dovecot did not start listening")


def stop_dovecot(proc: subprocess.Popen[bytes] | None, root: Path | None) -> None:
    """Stop a server from :func:`start_dovecot` (if any) and remove ``root`` (if given)."""
    if proc is not None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
    if root is not None:
        shutil.rmtree(root, ignore_errors=True)


class Dovecot:
    """A running ``dovecot -F`` serving POP3 for one test user."""

    def __init__(self, *, cert: Path | None = None, key: Path | None = None) -> None:
        # pytest's tmp_path is mode 700 under root; Dovecot's mail process runs as nobody.
        self.root = Path(tempfile.mkdtemp(prefix="mailcore-dovecot-"))
        os.chmod(self.root, 0o755)
        self.port = free_port()
        self.tls_port = free_port() if cert is not None else 0
        self.maildir = self.root / "mail" / "Maildir"
        for sub in ("cur", "new", "tmp"):
            (self.maildir / sub).mkdir(parents=True)
        mail_user = find_user("nobody")
        internal = find_user("dovecot", "nobody")
        login = find_user("dovenull", "nobody")
        ssl_files = ""
        if cert is not None and key is not None:
            for src, name in ((cert, "cert.pem"), (key, "key.pem")):
                shutil.copy(src, self.root / name)
            ssl_files = f"ssl_cert = <{self.root}/cert.pem\nssl_key = <{self.root}/key.pem"
        (self.root / "dovecot.conf").write_text(
            _CONF.format(
                root=self.root,
                port=self.port,
                tls_port=self.tls_port,
                ssl="yes" if cert is not None else "no",
                ssl_files=ssl_files,
                internal=internal.pw_name,
                internal_group=internal.pw_name if internal.pw_name == "dovecot" else "nogroup",
                login=login.pw_name,
                uid=mail_user.pw_uid,
                gid=mail_user.pw_gid,
            )
        )
        (self.root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}\n")
        self._uid, self._gid = mail_user.pw_uid, mail_user.pw_gid
        for path in (self.root / "mail", *self.root.joinpath("mail").rglob("*")):
            os.chown(path, self._uid, self._gid)
        self._proc: subprocess.Popen[bytes] | None = None
        self._seq = 0

    def deliver(self, message: bytes) -> None:
        """Put ``message`` into the Maildir's new/ the way an MDA does."""
        self._seq += 1
        name = f"{1_700_000_000 + self._seq}.M{self._seq}P1.mailcore"
        tmp = self.maildir / "tmp" / name
        tmp.write_bytes(message)
        os.chown(tmp, self._uid, self._gid)
        os.rename(tmp, self.maildir / "new" / name)

    def messages_left(self) -> int:
        """Message files still in the Maildir."""
        return sum(1 for sub in ("cur", "new") for _ in (self.maildir / sub).iterdir())

    def start(self) -> Dovecot:
        """Start the server and wait until it accepts connections."""
        self._proc = start_dovecot(self.root / "dovecot.conf", self.port)
        return self

    def stop(self) -> None:
        """Stop the server and remove its files."""
        stop_dovecot(self._proc, self.root)
        self._proc = None

    def __enter__(self) -> Dovecot:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
