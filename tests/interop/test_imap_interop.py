"""mailcore's IMAP server against real clients on loopback: imaplib, imapclient, curl."""

from __future__ import annotations

import asyncio
import imaplib
import ssl
import subprocess
from pathlib import Path
from typing import Any

import imapclient
import pytest
import trustme

from tests.imap.serverkit import PASSWORD, USER, running_server

MESSAGE = (
    b"From: Ann <ann@example.org>\r\nTo: jeff@example.org\r\nSubject: Quarterly report\r\n"
    b"Date: Tue, 05 Mar 2024 09:00:00 +0000\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/alternative; boundary="xx"\r\n\r\n'
    b"--xx\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nnumbers are up\r\n"
    b"--xx\r\nContent-Type: text/html\r\n\r\n<p>numbers are up</p>\r\n--xx--\r\n"
)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def client_tls(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


def imaplib_session(port: int, tls: ssl.SSLContext) -> None:
    # Any: imaplib's stubs type every response item as bytes | None.
    m: Any = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=tls)
    assert m.login(USER, PASSWORD)[0] == "OK"
    typ, boxes = m.list()
    assert typ == "OK" and b'(\\HasNoChildren) "/" "INBOX"' in boxes
    assert m.create("Projects/2024")[0] == "OK"
    typ, data = m.select("INBOX")
    assert (typ, data) == ("OK", [b"1"])
    typ, data = m.search(None, "FROM", "ann", "SUBJECT", "report")
    assert data == [b"1"]
    typ, data = m.fetch("1", "(ENVELOPE BODYSTRUCTURE)")
    assert b'"Quarterly report"' in data[0]
    assert b'BODYSTRUCTURE (("TEXT" "PLAIN"' in data[0]
    typ, data = m.fetch("1", "(BODY.PEEK[1] BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert isinstance(data[0], tuple)
    assert data[0][0].startswith(b'1 (BODY[1] "numbers are up" BODY[HEADER.FIELDS (SUBJECT)] {29}')
    assert data[0][1] == b"Subject: Quarterly report\r\n\r\n"
    typ, data = m.fetch("1", "(BODY[])")
    assert isinstance(data[0], tuple) and data[0][1] == MESSAGE
    typ, data = m.store("1", "+FLAGS", "(\\Flagged)")
    assert b"\\Flagged" in data[0] and b"\\Seen" in data[0]
    typ, data = m.append("INBOX", "(\\Draft)", None, b"Subject: draft\r\n\r\nappended\r\n")
    assert typ == "OK" and b"[APPENDUID " in data[0]
    assert m.copy("1", "Projects/2024")[0] == "OK"
    typ, data = m.uid("MOVE", "2", "Drafts")
    assert typ == "OK"
    assert m.select("Projects/2024") == ("OK", [b"1"])
    assert m.store("1", "+FLAGS", "(\\Deleted)")[0] == "OK"
    typ, data = m.expunge()
    assert data == [b"1"]
    m.select("INBOX")
    # IDLE (Python 3.14 has IMAP4.idle(); send it by hand for older versions).
    tag = m._new_tag()
    m.send(tag + b" IDLE\r\n")
    assert m.readline().startswith(b"+ ")
    m.send(b"DONE\r\n")
    assert m.readline() == tag + b" OK IDLE terminated\r\n"
    assert m.logout()[0] == "BYE"


async def test_imaplib_full_session(tmp_path: Path, ca: trustme.CA) -> None:
    async with running_server(tmp_path, ca) as srv:
        await srv.deliver(MESSAGE)
        await asyncio.to_thread(imaplib_session, srv.tls_port, client_tls(ca))
        # What the session did is on disk.
        st = await srv.store.status(USER, "Drafts")
        assert st.messages == 1
        assert (await srv.store.status(USER, "Projects/2024")).messages == 0
        metas = await srv.store.messages(USER, "INBOX")
        assert [sorted(m.flags) for m in metas] == [["\\Flagged", "\\Seen"]]


def imapclient_session(port: int, tls: ssl.SSLContext) -> None:
    with imapclient.IMAPClient("127.0.0.1", port=port, ssl=False) as c:
        c.starttls(tls)
        c.login(USER, PASSWORD)
        assert b"MOVE" in c.capabilities()
        c.create_folder("Archive/2023")
        info = c.select_folder("INBOX")
        assert info[b"EXISTS"] == 1
        uids = c.search(["FROM", "ann", "SINCE", "1-Mar-2024"])
        assert uids == [1]
        data = c.fetch(uids, ["ENVELOPE", "BODY.PEEK[2]", "RFC822.SIZE", "FLAGS"])
        env = data[1][b"ENVELOPE"]
        assert env.subject == b"Quarterly report"
        assert env.from_[0].mailbox == b"ann"
        assert data[1][b"BODY[2]"] == b"<p>numbers are up</p>"
        assert data[1][b"RFC822.SIZE"] == len(MESSAGE)
        c.add_flags(uids, [imapclient.SEEN, b"$Important"])
        assert set(c.get_flags(uids)[1]) == {b"\\Recent", b"\\Seen", b"$Important"}
        c.append("INBOX", b"Subject: more\r\n\r\nbody\r\n")
        c.copy([1], "Archive/2023")
        c.move([2], "Trash")
        assert c.folder_status("Trash", ["MESSAGES"])[b"MESSAGES"] == 1
        c.idle()
        c.idle_done()
        names = [name for _flags, _delim, name in c.list_folders()]
        assert "Archive/2023" in names
        c.delete_messages([1])
        c.expunge()
        assert c.search("ALL") == []


async def test_imapclient_session(tmp_path: Path, ca: trustme.CA) -> None:
    async with running_server(tmp_path, ca) as srv:
        await srv.deliver(MESSAGE)
        await asyncio.to_thread(imapclient_session, srv.port, client_tls(ca))
        assert (await srv.store.status(USER, "Archive/2023")).messages == 1


async def test_curl_fetches_a_message(tmp_path: Path, ca: trustme.CA) -> None:
    cafile = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    async with running_server(tmp_path, ca) as srv:
        await srv.deliver(MESSAGE)
        proc = await asyncio.create_subprocess_exec(
            "curl", "-sS", "--ssl-reqd", "--cacert", str(cafile),
            "--user", f"{USER}:{PASSWORD}",
            f"imap://localhost:{srv.port}/INBOX;UID=1",
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 0, err
        assert out == MESSAGE
