"""The seed's example transaction, replayed over TCP against the real server.

The seed (shared/seed/000_9cf74ecb6318ae59.txt) shows:

    S: 220 smtp.commentcamarche.net SMTP Ready
    C: EHLO machine1.commentcamarche.net
    S: 250 smtp.commentcamarche.net
    C: MAIL FROM:<webmaster@commentcamarche.net>
    S: 250 OK
    C: RCPT TO:<meandus@meandus.net>
    S: 250
    C: RCPT TO:<tittom@tittom.fr>
    S: 550 No such user here
    C: DATA
    S: 354 Start mail input; end with <CRLF>.<CRLF>
    C: Subject: Hola ... <CRLF>.<CRLF>
    S: 250
    C: QUIT
    R: 221 smtp.commentcamarche.net closing transmission

and says accented characters travel as quoted-printable.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Mapping
from dataclasses import replace
from email.message import EmailMessage

import pytest

from mailcore.limits import SMTPLimits
from mailcore.smtp import replies as R
from mailcore.smtp.handlers import Envelope, Handler, Session
from mailcore.smtp.replies import Reply
from mailcore.smtp.server import SMTPServer
from tests.smtp.conftest import RawClient

SERVER = "smtp.commentcamarche.net"
TEXT = "Hola Meandus:\n¿Cómo andan tus cosas?\n\n¡Nos vemos pronto!\n"


class SeedHandler(Handler):
    """Greets like the seed's server and knows no user "tittom"."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_connect(self, session: Session) -> Reply:
        return R.greeting(SERVER, "SMTP Ready")

    async def handle_MAIL(
        self, session: Session, envelope: Envelope, address: str, params: Mapping[str, str | None]
    ) -> Reply:
        return R.SENDER_OK.with_text("OK")

    async def handle_RCPT(
        self, session: Session, envelope: Envelope, address: str, params: Mapping[str, str | None]
    ) -> Reply:
        if address == "tittom@tittom.fr":
            return R.NO_SUCH_USER
        return R.RECIPIENT_OK.with_text("OK")

    async def handle_DATA(self, session: Session, envelope: Envelope) -> Reply:
        self.messages.append(envelope.content)
        return R.MESSAGE_ACCEPTED.with_text("OK")


def seed_message() -> bytes:
    msg = EmailMessage()
    msg["From"] = "webmaster@commentcamarche.net"
    msg["To"] = "meandus@meandus.net"
    msg["Subject"] = "Hola"
    msg.set_content(TEXT, charset="utf-8", cte="quoted-printable")
    return msg.as_bytes(policy=email.policy.SMTP)


@pytest.mark.parametrize("enhanced", [False, True])
async def test_seed_transaction(enhanced: bool) -> None:
    handler = SeedHandler()
    limits = replace(SMTPLimits(), enhanced_status_codes=enhanced)
    body = seed_message()
    assert b"=C2=BFC=C3=B3mo andan tus cosas?" in body  # really quoted-printable
    async with SMTPServer(handler, hostname=SERVER, limits=limits) as srv:
        c = await RawClient.connect(srv.port)
        assert await c.reply() == [b"220 smtp.commentcamarche.net SMTP Ready"]
        ehlo = await c.command(b"EHLO machine1.commentcamarche.net")
        assert ehlo[0] == b"250-smtp.commentcamarche.net"
        ok = b"250 2.1.0 OK" if enhanced else b"250 OK"
        assert await c.command(b"MAIL FROM:<webmaster@commentcamarche.net>") == [ok]
        ok = b"250 2.1.5 OK" if enhanced else b"250 OK"
        assert await c.command(b"RCPT TO:<meandus@meandus.net>") == [ok]
        refused = b"550 5.1.1 No such user here" if enhanced else b"550 No such user here"
        assert await c.command(b"RCPT TO:<tittom@tittom.fr>") == [refused]
        assert await c.command(b"DATA") == [b"354 Start mail input; end with <CRLF>.<CRLF>"]
        await c.send(body + b".\r\n")
        assert await c.reply() == [b"250 2.0.0 OK" if enhanced else b"250 OK"]
        assert await c.command(b"QUIT") == [
            b"221 2.0.0 smtp.commentcamarche.net closing transmission"
            if enhanced
            else b"221 smtp.commentcamarche.net closing transmission"
        ]
        assert await c.at_eof()
        await c.close()
    [stored] = handler.messages
    assert stored.startswith(b"Received: from machine1.commentcamarche.net ([127.0.0.1])\r\n")
    assert stored.endswith(body)
    parsed = email.message_from_bytes(stored, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed["Subject"] == "Hola"
    part = parsed.get_body()
    assert part is not None
    assert part.get_content().replace("\r\n", "\n") == TEXT
