"""offlineimap3 synchronises an account with mailcore's IMAP server both ways, byte for byte.

Needs the Debian package ``offlineimap3`` (scripts/check.sh installs it). The
server holds 1 000 messages in INBOX and a few in a nested folder; the local
Maildir holds messages of its own. After one ``offlineimap -o`` both sides
hold the same messages; a flag set on each side then travels to the other.
offlineimap may write local files with LF line ends and may add an
``X-OfflineIMAP`` field to messages it uploads; the comparison accounts for
exactly those and nothing else.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import trustme

from mailcore.store.base import FlagMode
from tests.imap.serverkit import PASSWORD, USER, Running, running_server

COUNT = 1000
_TOOL_FIELD = rb"(?m)^X-OfflineIMAP: [^\n]*\n"


def message(i: int, where: str) -> bytes:
    body = "".join(f"línea {j} del mensaje {i} en {where}\r\n" for j in range(i % 30 + 1))
    return (
        f"From: sender{i % 5}@example.org\r\nTo: {USER}\r\nSubject: {where} {i}\r\n"
        f"Message-ID: <{where}.{i}@example.org>\r\nDate: Wed, 06 Mar 2024 10:00:00 +0000\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
        f"\r\n{body}"
    ).encode()


def _normalise(data: bytes) -> bytes:
    data = data.replace(b"\r\n", b"\n")
    return re.sub(_TOOL_FIELD, b"", data).replace(b"\n", b"\r\n")


def _by_mid(items: list[bytes]) -> dict[str, bytes]:
    out = {}
    for data in items:
        mid = next(line for line in data.split(b"\r\n") if line.startswith(b"Message-ID:"))
        out[mid.decode()] = data
    return out


def local_files(folder: Path) -> dict[str, bytes]:
    """Message files of a local Maildir folder, by Message-ID."""
    return _by_mid(
        [_normalise(p.read_bytes()) for sub in ("cur", "new") for p in (folder / sub).iterdir()]
    )


async def server_files(srv: Running, mailbox: str) -> dict[str, bytes]:
    metas = await srv.store.messages(USER, mailbox)
    raws = await srv.store.read_many(USER, mailbox, [m.uid for m in metas])
    return _by_mid([_normalise(raw) for raw in raws.values()])


async def offlineimap(config: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        "offlineimap", "-c", str(config), "-o", "-u", "basic",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 300)
    text = (out + err).decode(errors="replace")
    assert proc.returncode == 0, text
    assert "ERROR" not in text, text


async def test_offlineimap_both_ways(tmp_path: Path) -> None:
    ca = trustme.CA()
    cafile = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    local = tmp_path / "local"
    for sub in ("cur", "new", "tmp"):
        (local / "Notes" / sub).mkdir(parents=True)
    local_only = {}
    for i in range(5):
        data = message(i, "local")
        (local / "Notes" / "cur" / f"170000000{i}.{i}.host:2,S").write_bytes(data)
        local_only[f"Message-ID: <local.{i}@example.org>"] = data
    async with running_server(tmp_path / "server", ca) as srv:
        await srv.fill_for_sync(message, COUNT)
        config = tmp_path / "offlineimaprc"
        config.write_text(
            f"""[general]
accounts = acct
metadata = {tmp_path}/meta

[Account acct]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {local}
sep = /

[Repository remote]
type = IMAP
remotehost = localhost
remoteport = {srv.tls_port}
remoteuser = {USER}
remotepass = {PASSWORD}
ssl = yes
sslcacertfile = {cafile}
maxconnections = 2
"""
        )
        await offlineimap(config)
        # Server -> local: every message, byte for byte.
        inbox = local_files(local / "INBOX")
        assert len(inbox) == COUNT
        assert inbox == await server_files(srv, "INBOX")
        assert local_files(local / "Work" / "2024") == await server_files(srv, "Work/2024")
        # Local -> server: the local folder was created and filled, flags kept.
        assert await server_files(srv, "Notes") == local_only
        assert all("\\Seen" in m.flags for m in await srv.store.messages(USER, "Notes"))
        # Flags both ways: flag one message locally, one on the server.
        first = sorted((local / "INBOX" / "new").iterdir())[0]
        first.rename(local / "INBOX" / "cur" / (first.name.split(":2,")[0] + ":2,F"))
        metas = await srv.store.messages(USER, "INBOX")
        await srv.store.store_flags(USER, "INBOX", [metas[-1].uid], ["\\Seen"], FlagMode.ADD)
        await offlineimap(config)
        metas = await srv.store.messages(USER, "INBOX")
        assert sum("\\Flagged" in m.flags for m in metas) == 1
        seen = [p.name for sub in ("cur", "new") for p in (local / "INBOX" / sub).iterdir()
                if ":2," in p.name and "S" in p.name.split(":2,")[1]]  # fmt: skip
        assert len(seen) == 1
