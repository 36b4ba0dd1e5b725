"""mailcore's POP3Client against Dovecot's pop3d and against mailcore's own server.

The same scenario runs against both servers, over loopback TCP, and must give
the same results: what was delivered comes back byte for byte, deletions
happen at QUIT only, a second session finds the maildrop locked.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from mailcore.pop3.client import POP3Client, POP3ReplyError
from tests.interop.dovecot_pop3 import PASSWORD, USER, Dovecot
from tests.pop3.serverkit import running_server

MESSAGES = [
    b"From: a@example.org\r\nSubject: one\r\n\r\nfirst body\r\n.leading dot\r\n..two dots\r\n",
    b"From: b@example.org\r\nSubject: two\r\n\r\n" + b"x" * 998 + b"\r\n" * 3 + b"end\r\n",
    b"Subject: three\r\n\r\n" + b"line of text\r\n" * 5000,
]


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def certs(ca: trustme.CA, tmp_path: Path) -> tuple[Path, Path]:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    return cert_path, key_path


@pytest.fixture
def client_tls(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


@pytest.fixture
def dovecot(certs: tuple[Path, Path]) -> Iterator[Dovecot]:
    with Dovecot(cert=certs[0], key=certs[1]) as server:
        for message in MESSAGES:
            server.deliver(message)
        yield server


async def scenario(port: int) -> dict[str, object]:
    """The session every server must answer the same way."""
    result: dict[str, object] = {}
    pop = await POP3Client.connect("127.0.0.1", port)
    caps = pop.capabilities
    result["caps"] = sorted(c for c in caps if c in {"TOP", "UIDL", "USER", "PIPELINING"})
    await pop.login(USER, PASSWORD)
    result["stat"] = await pop.stat()
    result["list"] = await pop.list()
    result["list2"] = await pop.list(2)
    uids = await pop.uidl()
    result["uid_count"] = len(set(uids.values()))
    result["top"] = await pop.top(1, 1)
    result["retr"] = await pop.retr_many([1, 2, 3])
    chunks = [chunk async for chunk in pop.retr_iter(3)]
    result["streamed"] = b"".join(chunks)
    second = await POP3Client.connect("127.0.0.1", port)
    with pytest.raises(POP3ReplyError) as locked:
        await second.login(USER, PASSWORD)
    result["locked_code"] = locked.value.code
    await second.aclose()
    await pop.dele(2)
    result["stat_after_dele"] = await pop.stat()
    with pytest.raises(POP3ReplyError):
        await pop.retr(2)
    await pop.rset()
    await pop.noop()
    await pop.dele_many([1, 3])
    await pop.quit()

    pop = await POP3Client.connect("127.0.0.1", port)
    await pop.login(USER, PASSWORD)
    result["stat_next_session"] = await pop.stat()
    result["uid_kept"] = (await pop.uidl())[1] == uids[2]
    await pop.dele(1)
    await pop.aclose()  # dropped without QUIT: nothing may be deleted

    pop = await POP3Client.connect("127.0.0.1", port)
    await pop.login(USER, PASSWORD)
    result["stat_after_drop"] = await pop.stat()
    await pop.quit()

    # Last, because Dovecot slows down logins from an address after a failure.
    pop = await POP3Client.connect("127.0.0.1", port)
    with pytest.raises(POP3ReplyError) as bad:
        await pop.login(USER, "wrong")
    result["bad_login_code"] = bad.value.code
    with pytest.raises(POP3ReplyError) as unknown:
        await pop.login("nobody-here", PASSWORD)
    result["unknown_user_same_reply"] = str(unknown.value) == str(bad.value)
    await pop.aclose()
    return result


EXPECTED: dict[str, object] = {
    "caps": ["PIPELINING", "TOP", "UIDL", "USER"],
    "bad_login_code": "AUTH",
    "stat": (3, sum(map(len, MESSAGES))),
    "list": {n: len(m) for n, m in enumerate(MESSAGES, 1)},
    "list2": {2: len(MESSAGES[1])},
    "uid_count": 3,
    "top": b"From: a@example.org\r\nSubject: one\r\n\r\nfirst body\r\n",
    "retr": MESSAGES,
    "streamed": MESSAGES[2],
    "locked_code": "IN-USE",
    "stat_after_dele": (2, len(MESSAGES[0]) + len(MESSAGES[2])),
    "stat_next_session": (1, len(MESSAGES[1])),
    "uid_kept": True,
    "stat_after_drop": (1, len(MESSAGES[1])),
    "unknown_user_same_reply": True,
}


async def test_client_against_dovecot(dovecot: Dovecot) -> None:
    assert await scenario(dovecot.port) == EXPECTED
    assert dovecot.messages_left() == 1


async def tls_scenario(port: int, tls_port: int, context: ssl.SSLContext) -> None:
    """STLS, implicit TLS, APOP, AUTH PLAIN and AUTH SCRAM-SHA-256."""
    pop = await POP3Client.connect("127.0.0.1", port, starttls=context)
    assert "STLS" not in pop.capabilities
    await pop.login(USER, PASSWORD)
    assert await pop.stat() == EXPECTED["stat"]
    await pop.quit()

    pop = await POP3Client.connect("127.0.0.1", tls_port, tls=context)
    assert pop.timestamp is not None
    await pop.apop(USER, PASSWORD)
    assert await pop.retr(1) == MESSAGES[0]
    await pop.quit()

    for mechanism in ("PLAIN", "SCRAM-SHA-256"):
        pop = await POP3Client.connect("127.0.0.1", tls_port, tls=context)
        assert mechanism in pop.capabilities["SASL"]
        await pop.auth(mechanism, USER, PASSWORD)
        assert await pop.top(1, 0) == MESSAGES[0].split(b"\r\n\r\n")[0] + b"\r\n\r\n"
        await pop.quit()

    pop = await POP3Client.connect("127.0.0.1", tls_port, tls=context)
    with pytest.raises(POP3ReplyError) as bad:
        await pop.auth("SCRAM-SHA-256", USER, "wrong")
    assert bad.value.code == "AUTH"
    await pop.aclose()


async def test_client_tls_and_apop_against_dovecot(
    dovecot: Dovecot, client_tls: ssl.SSLContext
) -> None:
    await tls_scenario(dovecot.port, dovecot.tls_port, client_tls)


async def test_client_against_mailcore(tmp_path: Path, ca: trustme.CA) -> None:
    async with running_server(tmp_path, ca) as server:
        for message in MESSAGES:
            await server.deliver(message)
        assert await scenario(server.port) == EXPECTED
        assert len(await server.store.messages(USER, "INBOX")) == 1


async def test_client_tls_and_apop_against_mailcore(
    tmp_path: Path, ca: trustme.CA, client_tls: ssl.SSLContext
) -> None:
    async with running_server(tmp_path, ca, allow_plaintext_auth=False) as server:
        for message in MESSAGES:
            await server.deliver(message)
        await tls_scenario(server.port, server.tls_port, client_tls)


TOOL_MESSAGES = [
    b"From: a@example.org\r\nSubject: curl one\r\n\r\n.leading dot\r\nbody\r\n",
    b"From: b@example.org\r\nSubject: curl two\r\n\r\n" + b"line\r\n" * 2000,
]


async def test_curl_downloads_and_deletes(tmp_path: Path, ca: trustme.CA) -> None:
    async with running_server(tmp_path, ca) as server:
        for message in TOOL_MESSAGES:
            await server.deliver(message)
        base = f"pop3://127.0.0.1:{server.port}"
        auth = ["--user", f"{USER}:{PASSWORD}", "--silent", "--show-error"]
        for number, message in enumerate(TOOL_MESSAGES, 1):
            got = await asyncio.to_thread(
                subprocess.run,
                ["curl", *auth, f"{base}/{number}"],
                capture_output=True,
                check=True,
                timeout=30,
            )
            assert got.stdout == message
        listing = await asyncio.to_thread(
            subprocess.run, ["curl", *auth, base], capture_output=True, check=True, timeout=30
        )
        assert listing.stdout == b"".join(
            b"%d %d\r\n" % (n, len(m)) for n, m in enumerate(TOOL_MESSAGES, 1)
        )
        await asyncio.to_thread(
            subprocess.run,
            ["curl", *auth, "--request", "DELE", "--head", f"{base}/1"],
            capture_output=True,
            check=True,
            timeout=30,
        )
        left = await server.store.messages(USER, "INBOX")
    assert [m.size for m in left] == [len(TOOL_MESSAGES[1])]


async def test_fetchmail_downloads_and_deletes(tmp_path: Path, ca: trustme.CA) -> None:
    # fetchmail upgrades with STLS on its own, so this also runs over TLS.
    out = tmp_path / "fetched"
    out.mkdir()
    save = tmp_path / "save.sh"
    save.write_text(f'#!/bin/sh\ncat > "{out}/$(date +%s%N).eml"\n')
    save.chmod(0o755)
    async with running_server(tmp_path, ca) as server:
        for message in TOOL_MESSAGES:
            await server.deliver(message)
        rc = tmp_path / "fetchmailrc"
        rc.write_text(
            f"poll localhost via 127.0.0.1 protocol pop3 port {server.port} auth password\n"
            f'  user "{USER}" password "{PASSWORD}" is root here\n'
            f'  sslcommonname localhost nokeep fetchall mda "{save}"\n'
        )
        rc.chmod(0o600)
        ca_file = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        env = {**os.environ, "FETCHMAILHOME": str(tmp_path), "HOME": str(tmp_path)}
        done = await asyncio.to_thread(
            subprocess.run,
            [
                "fetchmail",
                "--invisible",
                "--sslcertck",
                "--sslcertfile",
                str(ca_file),
                "--fetchmailrc",
                str(rc),
                "--nosyslog",
                "--nodetach",
            ],
            capture_output=True,
            env=env,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr.decode()
        left = await server.store.messages(USER, "INBOX")
    fetched = [p.read_bytes() for p in sorted(out.iterdir())]
    # fetchmail hands messages to the MDA with Unix line ends.
    assert fetched == [m.replace(b"\r\n", b"\n") for m in TOOL_MESSAGES]
    assert left == []
