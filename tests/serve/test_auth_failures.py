"""Failed logins are reported with the client's address (what fail2ban-style tools need).

Real servers on loopback, real clients (smtplib, imaplib, poplib) in a
thread, the credential source that ``mailcore serve`` uses.
"""

from __future__ import annotations

import asyncio
import imaplib
import poplib
import smtplib
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from mailcore.app import ObservedCredentials
from mailcore.auth.accounts import Accounts
from mailcore.imap.server import IMAPServer
from mailcore.limits import POP3Limits, SMTPLimits
from mailcore.pop3.server import POP3Server
from mailcore.smtp.handlers import Sink
from mailcore.smtp.local import MessageRecord
from mailcore.smtp.server import SMTPServer
from mailcore.store import MaildirStore

USER, PASSWORD = "ann@example.org", "right horse battery"


class Failures:
    """The monitor: keeps the auth-failed events."""

    def __init__(self) -> None:
        self.failed: list[tuple[str, str, object]] = []

    def session_event(self, protocol: str, event: str, peer: str, **fields: object) -> None:
        if event == "auth-failed":
            self.failed.append((protocol, peer, fields.get("user")))

    def message(self, record: MessageRecord) -> None:
        pass


@pytest.fixture
def accounts(tmp_path: Path) -> Accounts:
    accounts = Accounts(tmp_path, hasher=PasswordHasher(1, 64, 1))
    accounts.add_user(USER, PASSWORD)
    return accounts


def _smtp(port: int, user: str) -> str:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo()
        with pytest.raises(smtplib.SMTPAuthenticationError):
            client.login(user, "wrong")
        assert client.sock is not None
        host, local_port = client.sock.getsockname()[:2]
        return f"{host}:{local_port}"


def _imap(port: int, user: str) -> str:
    client = imaplib.IMAP4("127.0.0.1", port, timeout=10)
    try:
        with pytest.raises(imaplib.IMAP4.error):
            client.login(user, "wrong")
        host, local_port = client.sock.getsockname()[:2]
        return f"{host}:{local_port}"
    finally:
        client.shutdown()


def _pop3(port: int, user: str) -> str:
    client = poplib.POP3("127.0.0.1", port, timeout=10)
    try:
        client.user(user)
        with pytest.raises(poplib.error_proto):
            client.pass_("wrong")
        host, local_port = client.sock.getsockname()[:2]
        return f"{host}:{local_port}"
    finally:
        client.close()


async def test_failed_logins_name_the_client(tmp_path: Path, accounts: Accounts) -> None:
    monitor = Failures()
    long_name = "x" * 5000 + "@example.org"
    async with MaildirStore(tmp_path / "data") as store:
        smtp = SMTPServer(
            Sink(),
            limits=SMTPLimits(auth_requires_tls=False, auth_failure_delay=0),
            credentials=ObservedCredentials(accounts, monitor, "submission"),
        )
        await smtp.start()
        imap = IMAPServer(
            store, ObservedCredentials(accounts, monitor, "imap"), allow_plaintext_login=True
        )
        imap_port = (await imap.start("127.0.0.1", 0)).sockets[0].getsockname()[1]
        pop3 = POP3Server(
            store,
            ObservedCredentials(accounts, monitor, "pop3"),
            limits=POP3Limits(failed_login_delay=0.01),
            allow_plaintext_auth=True,
        )
        pop3_port = await pop3.listen()
        try:
            clients = [
                ("submission", await asyncio.to_thread(_smtp, smtp.port, USER)),
                ("imap", await asyncio.to_thread(_imap, imap_port, USER)),
                ("pop3", await asyncio.to_thread(_pop3, pop3_port, USER)),
            ]
            # A user name chosen by the client is cut before it reaches the log.
            await asyncio.to_thread(_smtp, smtp.port, long_name)
        finally:
            await smtp.stop()
            await imap.close()
            await pop3.close()
    accounts.close()
    # smtplib tries PLAIN, then LOGIN: two failures, both from its socket.
    for protocol, peer in clients:
        seen = [(p, user) for p, client, user in monitor.failed if client == peer]
        assert seen and all(entry == (protocol, USER) for entry in seen), protocol
    protocol, peer, user = monitor.failed[-1]
    assert protocol == "submission" and peer.startswith("127.0.0.1:")
    assert isinstance(user, str) and len(user) < 300 and user.startswith("xxxx")
