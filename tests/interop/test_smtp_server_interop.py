"""Clients nobody here wrote, against mailcore's SMTP/LMTP server over loopback.

Python's smtplib (sendmail, send_message, starttls, login, LMTP), swaks and
curl (Debian packages, installed by scripts/check.sh); TLS certificates by trustme.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections.abc import AsyncIterator, Mapping
from email.message import EmailMessage
from pathlib import Path

import pytest
import trustme

from mailcore.smtp import replies as R
from mailcore.smtp.handlers import Envelope, Handler, Session
from mailcore.smtp.replies import Reply
from mailcore.smtp.server import SMTPServer

HOST = "mx.test"
SWAKS = "/usr/bin/swaks"
CURL = "/usr/bin/curl"


class Accounts:
    """One user, alice / s3cret (the CredentialSource protocol)."""

    async def verify_password(self, username: str, password: str) -> str | None:
        return "alice" if (username, password) == ("alice", "s3cret") else None

    async def scram_secrets(self, username: str) -> tuple[bytes, int, bytes, bytes] | None:
        return None

    async def cram_secret(self, username: str) -> bytes | None:
        return None


class Store(Handler):
    """Keeps accepted messages; "full@" recipients are refused at end of data in LMTP."""

    def __init__(self) -> None:
        self.messages: list[tuple[str | None, list[str], bytes, Session]] = []

    async def handle_RCPT(
        self, session: Session, envelope: Envelope, address: str, params: Mapping[str, str | None]
    ) -> Reply:
        if address.startswith("nobody@"):
            return R.NO_SUCH_USER
        return R.RECIPIENT_OK

    async def handle_DATA(self, session: Session, envelope: Envelope) -> Reply:
        self.messages.append((envelope.mail_from, envelope.rcpt_tos, envelope.content, session))
        return R.MESSAGE_ACCEPTED

    async def handle_LMTP_DATA(self, session: Session, envelope: Envelope) -> list[Reply]:
        self.messages.append((envelope.mail_from, envelope.rcpt_tos, envelope.content, session))
        return [
            Reply(452, "4.2.2", "Mailbox full") if r.startswith("full@") else R.MESSAGE_ACCEPTED
            for r in envelope.rcpt_tos
        ]


@pytest.fixture
def store() -> Store:
    return Store()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_context(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(ctx)
    return ctx


@pytest.fixture(scope="module")
def client_context(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
async def tls_server(store: Store, server_context: ssl.SSLContext) -> AsyncIterator[SMTPServer]:
    async with SMTPServer(
        store, hostname=HOST, ssl_context=server_context, credentials=Accounts()
    ) as srv:
        yield srv


async def run(*argv: str, stdin: bytes | None = None) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(stdin), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode("utf-8", "replace")


# ------------------------------------------------------------------ smtplib


async def test_smtplib_sendmail_and_send_message(store: Store) -> None:
    async with SMTPServer(store, hostname=HOST) as srv:

        def send() -> None:
            with smtplib.SMTP("127.0.0.1", srv.port) as s:
                refused = s.sendmail(
                    "a@b.example", ["x@mx.test", "nobody@mx.test"], b"Subject: one\r\n\r\n.\r\n"
                )
                assert refused == {"nobody@mx.test": (550, b"5.1.1 No such user here")}
                msg = EmailMessage()
                msg["From"] = "José <josé@b.example>"
                msg["To"] = "Zoë <zoë@mx.test>"
                msg["Subject"] = "¡Hola!"
                msg.set_content("¿Qué tal?\n")
                assert s.send_message(msg) == {}
                assert s.verify("x@mx.test")[0] == 252
                assert b"MAIL RCPT DATA" in s.help()

        await asyncio.to_thread(send)
    assert len(store.messages) == 2, [m[:2] for m in store.messages]
    (m1, r1, c1, _), (m2, r2, c2, _) = store.messages
    assert (m1, r1) == ("a@b.example", ["x@mx.test"])
    assert c1.endswith(b"Subject: one\r\n\r\n.\r\n")
    assert (m2, r2) == ("josé@b.example", ["zoë@mx.test"])
    assert b"with UTF8ESMTP id" in c2
    assert "¿Qué tal?".encode() in c2 or b"=C2=BFQu=C3=A9 tal?" in c2 or b"wr9RdcOpIHRhbD8K" in c2


async def test_smtplib_starttls_and_login(
    tls_server: SMTPServer, store: Store, client_context: ssl.SSLContext
) -> None:
    def send() -> None:
        with smtplib.SMTP("localhost", tls_server.port) as s:
            s.ehlo()
            assert not s.has_extn("auth")
            with pytest.raises(smtplib.SMTPNotSupportedError):
                s.login("alice", "s3cret")
            s.starttls(context=client_context)
            s.ehlo()
            assert s.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"]
            s.user, s.password = "alice", "s3cret"
            code, _ = s.auth("LOGIN", s.auth_login, initial_response_ok=False)
            assert code == 235
            s.sendmail("alice@mx.test", ["x@mx.test"], b"Subject: tls\r\n\r\nsecret\r\n")
        with smtplib.SMTP("localhost", tls_server.port) as s:
            s.starttls(context=client_context)
            with pytest.raises(smtplib.SMTPAuthenticationError) as err:
                s.login("alice", "wrong")
            assert err.value.smtp_code == 535
            s.login("alice", "s3cret")

    await asyncio.to_thread(send)
    [(_, _, content, session)] = store.messages
    assert b"with ESMTPSA id" in content
    assert session.authenticated == "alice"


async def test_smtplib_lmtp(store: Store) -> None:
    async with SMTPServer(store, hostname=HOST, lmtp=True) as srv:

        def send() -> None:
            with smtplib.LMTP("127.0.0.1", srv.port) as s:
                assert s.sendmail("a@b.example", ["x@mx.test"], b"Subject: 1\r\n\r\nhi\r\n") == {}
                # smtplib reads one reply after DATA; LMTP sends one per recipient.
                s.mail("a@b.example")
                assert s.rcpt("x@mx.test")[0] == 250
                assert s.rcpt("full@mx.test")[0] == 250
                assert s.data(b"Subject: 2\r\n\r\nhi\r\n")[0] == 250
                assert s.getreply() == (452, b"4.2.2 Mailbox full")
                assert s.docmd("EHLO", "x")[0] == 500

        await asyncio.to_thread(send)
    assert [m[1] for m in store.messages] == [["x@mx.test"], ["x@mx.test", "full@mx.test"]]
    assert b"with LMTP id" in store.messages[0][2]


# ------------------------------------------------------------------ swaks


async def test_swaks_starttls_auth_pipelining(tls_server: SMTPServer, store: Store) -> None:
    code, out = await run(
        SWAKS,
        "--server", "127.0.0.1", "--port", str(tls_server.port),
        "--from", "a@b.example", "--to", "x@mx.test,nobody@mx.test",
        "--helo", "swaks.example", "--tls", "--pipeline",
        "--auth", "PLAIN", "--auth-user", "alice", "--auth-password", "s3cret",
        "--header", "Subject: from swaks", "--body", "Hello from swaks\n.leading dot\n",
    )  # fmt: skip
    assert code == 0, out
    assert "<-  220 2.0.0 Ready to start TLS" in out
    assert "<~  235 2.7.0 Authentication successful" in out
    assert "<~* 550 5.1.1 No such user here" in out
    [(mail_from, rcpts, content, _)] = store.messages
    assert (mail_from, rcpts) == ("a@b.example", ["x@mx.test"])
    assert b"Subject: from swaks\r\n" in content
    assert b"\r\n.leading dot\r\n" in content
    assert b"from swaks.example" in content and b"with ESMTPSA" in content


async def test_swaks_bad_password_and_plain_smtp(tls_server: SMTPServer, store: Store) -> None:
    code, out = await run(
        SWAKS,
        "--server", "127.0.0.1", "--port", str(tls_server.port),
        "--from", "a@b.example", "--to", "x@mx.test", "--tls",
        "--auth", "LOGIN", "--auth-user", "alice", "--auth-password", "nope",
    )  # fmt: skip
    assert code != 0
    assert "535 5.7.8 Authentication credentials invalid" in out
    code, out = await run(
        SWAKS, "--server", "127.0.0.1", "--port", str(tls_server.port),
        "--from", "a@b.example", "--to", "x@mx.test",
    )  # fmt: skip
    assert code == 0, out
    assert len(store.messages) == 1


async def test_swaks_lmtp(store: Store) -> None:
    async with SMTPServer(store, hostname=HOST, lmtp=True) as srv:
        code, out = await run(
            SWAKS, "--protocol", "LMTP", "--server", "127.0.0.1", "--port", str(srv.port),
            "--from", "a@b.example", "--to", "x@mx.test,full@mx.test",
        )  # fmt: skip
    assert "~> LHLO" in out or "-> LHLO" in out
    assert "452 4.2.2 Mailbox full" in out
    assert [m[1] for m in store.messages] == [["x@mx.test", "full@mx.test"]]
    assert code == 0, out


# ------------------------------------------------------------------ curl


async def test_curl_starttls_required_with_login(
    tls_server: SMTPServer, store: Store, ca_file: Path, tmp_path: Path
) -> None:
    message = tmp_path / "msg.eml"
    message.write_bytes(b"Subject: from curl\r\n\r\nbody line\r\n.dot line\r\n")
    port = tls_server.port
    code, out = await run(
        CURL, "-sS", "--url", f"smtp://localhost:{port}/client.example",
        "--resolve", f"localhost:{port}:127.0.0.1",
        "--ssl-reqd", "--cacert", str(ca_file), "--user", "alice:s3cret",
        "--mail-from", "a@b.example", "--mail-rcpt", "x@mx.test",
        "--upload-file", str(message),
    )  # fmt: skip
    assert code == 0, out
    [(mail_from, rcpts, content, session)] = store.messages
    assert (mail_from, rcpts) == ("a@b.example", ["x@mx.test"])
    assert content.endswith(b"Subject: from curl\r\n\r\nbody line\r\n.dot line\r\n")
    assert session.tls and session.authenticated == "alice"


async def test_curl_implicit_tls(
    store: Store, server_context: ssl.SSLContext, ca_file: Path, tmp_path: Path
) -> None:
    message = tmp_path / "msg.eml"
    message.write_bytes(b"Subject: smtps\r\n\r\nhi\r\n")
    async with SMTPServer(
        store, hostname=HOST, ssl_context=server_context, implicit_tls=True
    ) as srv:
        code, out = await run(
            CURL, "-sS", "--url", f"smtps://localhost:{srv.port}",
            "--resolve", f"localhost:{srv.port}:127.0.0.1", "--cacert", str(ca_file),
            "--mail-from", "a@b.example", "--mail-rcpt", "x@mx.test",
            "--upload-file", str(message),
        )  # fmt: skip
    assert code == 0, out
    [(_, _, content, session)] = store.messages
    assert content.endswith(b"Subject: smtps\r\n\r\nhi\r\n")
    assert session.tls


async def test_curl_refused_recipient(tls_server: SMTPServer, store: Store, tmp_path: Path) -> None:
    message = tmp_path / "msg.eml"
    message.write_bytes(b"Subject: x\r\n\r\nhi\r\n")
    code, out = await run(
        CURL, "-sS", "--url", f"smtp://127.0.0.1:{tls_server.port}",
        "--mail-from", "a@b.example", "--mail-rcpt", "nobody@mx.test",
        "--upload-file", str(message),
    )  # fmt: skip
    assert code == 55, out  # CURLE_SEND_ERROR: RCPT failed
    assert "550" in out
    assert store.messages == []
