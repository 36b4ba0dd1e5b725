"""mutt lists and reads a mailbox on mailcore's IMAP server (IMAPS, trustme certificate).

Needs the Debian package ``mutt`` (scripts/check.sh installs it). mutt is a
full-screen program, so it runs on a pseudo-terminal; the test types the
keys a user would (open the first message, quit) and reads the screen.
"""

from __future__ import annotations

import asyncio
import os
import pty
import re
import select
import subprocess
import time
from pathlib import Path

import trustme

from tests.imap.serverkit import PASSWORD, USER, running_server


def drive(argv: list[str], env: dict[str, str], steps: list[tuple[bytes, bytes]]) -> bytes:
    """Run ``argv`` on a pty; for each (wait_for, keys): read until wait_for shows, type keys."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(argv, stdin=follower, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    screen = b""
    try:
        for wait_for, keys in steps:
            deadline = time.monotonic() + 20
            while wait_for not in re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", screen):
                if time.monotonic() > deadline:
                    raise AssertionError(f"{wait_for!r} never appeared:\n{screen[-2000:]!r}")
                ready, _, _ = select.select([leader], [], [], 0.2)
                if ready:
                    try:
                        screen += os.read(leader, 65536)
                    except OSError:
                        break
            os.write(leader, keys)
        proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)
    return screen


async def test_mutt_lists_and_reads(tmp_path: Path) -> None:
    ca = trustme.CA()
    cafile = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    async with running_server(tmp_path, ca) as srv:
        for i in range(3):
            await srv.deliver(
                f"From: Ann <ann@example.org>\r\nTo: {USER}\r\nSubject: mutt test {i}\r\n"
                f"Date: Tue, 0{i + 1} Mar 2024 09:00:00 +0000\r\n\r\n"
                f"Body number {i} here.\r\n".encode()
            )
        rc = tmp_path / "muttrc"
        user = USER.replace("@", "%40")
        rc.write_text(
            f'set folder="imaps://{user}@localhost:{srv.tls_port}/"\n'
            f'set spoolfile="+INBOX"\nset imap_pass="{PASSWORD}"\n'
            f'set ssl_ca_certificates_file="{cafile}"\n'
            'set header_cache="" message_cachedir="" sort=date-sent\n'
            "set imap_passive=no mail_check=60 timeout=60 wait_key=no quit=yes\n"
            'set index_format="%4C %-20.20F %s"\n'
        )
        env = {
            "HOME": str(tmp_path),
            "TERM": "xterm",
            "LANG": "C.UTF-8",
            "PATH": os.environ["PATH"],
        }
        argv = ["mutt", "-n", "-F", str(rc)]
        screen = await asyncio.to_thread(
            drive,
            argv,
            env,
            [(b"mutt test 2", b"\r"), (b"Body number 0 here.", b"q"), (b"mutt test 0", b"q")],
        )
        text = re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", screen)
        for i in range(3):
            assert b"mutt test %d" % i in text
        assert b"Body number 0 here." in text
        # Reading the message set \Seen on the server.
        metas = await srv.store.messages(USER, "INBOX")
        assert ["\\Seen" in m.flags for m in metas] == [True, False, False]
