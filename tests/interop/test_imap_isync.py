"""isync (mbsync) synchronises an account with mailcore's IMAP server both ways, byte for byte.

Needs the Debian package ``isync`` (scripts/check.sh installs it). The
server holds 1 000 messages in INBOX and a few in a subfolder; the local
Maildir holds messages of its own. After one ``mbsync -a`` both sides hold
the same messages with identical bytes; flag changes then travel both ways.
isync stores local Maildir files with LF line ends and sends CRLF on the
wire (it always converts); the comparison accounts for exactly that and
nothing else.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import trustme

from tests.imap.serverkit import PASSWORD, USER, Running, running_server

COUNT = 1000


def message(i: int, where: str) -> bytes:
    body = "".join(f"line {j} of message {i} in {where}\r\n" for j in range(i % 40 + 1))
    return (
        f"From: sender{i % 7}@example.org\r\nTo: {USER}\r\nSubject: {where} {i}\r\n"
        f"Message-ID: <{where}.{i}@example.org>\r\nDate: Tue, 05 Mar 2024 09:00:00 +0000\r\n"
        f"\r\n{body}"
    ).encode()


def local_files(folder: Path) -> dict[str, bytes]:
    """Message files of a local Maildir folder, by Message-ID."""
    out = {}
    for sub in ("cur", "new"):
        for path in (folder / sub).iterdir():
            data = path.read_bytes()
            # isync writes LF line ends locally, and leaves the X-TUID field it
            # uses to recognise a message after an interrupted run.
            data = re.sub(rb"(?m)^X-TUID: [^\n]*\n", b"", data).replace(b"\n", b"\r\n")
            mids = [line for line in data.split(b"\r\n") if line.startswith(b"Message-ID:")]
            assert mids, data[:300]
            mid = mids[0]
            out[mid.decode()] = data
    return out


async def server_files(srv: Running, mailbox: str) -> dict[str, bytes]:
    metas = await srv.store.messages(USER, mailbox)
    raws = await srv.store.read_many(USER, mailbox, [m.uid for m in metas])
    out = {}
    for raw in raws.values():
        # What isync appended carries its X-TUID field (see local_files).
        data = re.sub(rb"(?m)^X-TUID: [^\r]*\r\n", b"", raw)
        mid = next(line for line in data.split(b"\r\n") if line.startswith(b"Message-ID:"))
        out[mid.decode()] = data
    return out


async def mbsync(config: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        "mbsync", "-c", str(config), "-a",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, (out + err).decode(errors="replace")


async def test_mbsync_both_ways(tmp_path: Path) -> None:
    ca = trustme.CA()
    cafile = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    local = tmp_path / "local"
    for folder in ("INBOX", "Notes"):
        for sub in ("cur", "new", "tmp"):
            (local / folder / sub).mkdir(parents=True)
    local_only = {}
    for i in range(5):
        data = message(i, "local")
        local_text = data.replace(b"\r\n", b"\n")
        (local / "Notes" / "new" / f"170000000{i}.{i}.host").write_bytes(local_text)
        local_only[f"Message-ID: <local.{i}@example.org>"] = data
    async with running_server(tmp_path / "server", ca) as srv:
        await srv.fill_for_sync(message, COUNT)
        config = tmp_path / "mbsyncrc"
        config.write_text(
            f"""IMAPAccount acct
Host localhost
Port {srv.tls_port}
User {USER}
Pass "{PASSWORD}"
SSLType IMAPS
CertificateFile {cafile}
PipelineDepth 50

IMAPStore remote
Account acct

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
"""
        )
        os.chmod(config, 0o600)
        await mbsync(config)
        # Server -> local: every message, byte for byte.
        inbox = local_files(local / "INBOX")
        assert len(inbox) == COUNT
        assert inbox == await server_files(srv, "INBOX")
        assert local_files(local / "Work" / "2024") == await server_files(srv, "Work/2024")
        # Local -> server: the local folder was created and filled.
        assert await server_files(srv, "Notes") == local_only
        # Flags both ways: mark one message seen locally, flag one on the server.
        first = sorted((local / "INBOX" / "new").iterdir())[0]
        first.rename(local / "INBOX" / "cur" / (first.name.split(":2,")[0] + ":2,S"))
        metas = await srv.store.messages(USER, "INBOX")
        from mailcore.store.base import FlagMode

        await srv.store.store_flags(USER, "INBOX", [metas[-1].uid], ["\\Flagged"], FlagMode.ADD)
        await mbsync(config)
        metas = await srv.store.messages(USER, "INBOX")
        assert sum("\\Seen" in m.flags for m in metas) == 1
        flagged = [p.name for sub in ("cur", "new") for p in (local / "INBOX" / sub).iterdir()
                   if ":2," in p.name and "F" in p.name.split(":2,")[1]]  # fmt: skip
        assert len(flagged) == 1
