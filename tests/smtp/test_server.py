"""The asyncio SMTP server over real loopback sockets (TLS by trustme)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import smtplib
import socket
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace

import pytest

from mailcore.auth import sasl
from mailcore.limits import SMTPLimits
from mailcore.smtp import replies as R
from mailcore.smtp.handlers import (
    AiosmtpdAdapter,
    Debugging,
    Envelope,
    Handler,
    Session,
    Sink,
)
from mailcore.smtp.replies import Reply
from mailcore.smtp.server import SMTPServer
from tests.smtp.conftest import RawClient, Recorder

HOST = "mx.test"


@pytest.fixture
async def server(recorder: Recorder) -> AsyncIterator[SMTPServer]:
    async with SMTPServer(recorder, hostname=HOST) as srv:
        yield srv


class Accounts:
    """A credential source holding one user (implements the CredentialSource protocol)."""

    async def verify_password(self, username: str, password: str) -> str | None:
        return "alice@mx.test" if (username, password) == ("alice", "s3cret") else None

    async def scram_secrets(self, username: str) -> tuple[bytes, int, bytes, bytes] | None:
        from mailcore.auth.sasl import scram_secrets_for

        if username != "alice":
            return None
        return scram_secrets_for("s3cret", salt=b"0123456789abcdef", iterations=4096)

    async def cram_secret(self, username: str) -> bytes | None:
        return None


async def test_transaction_bytes_on_the_wire(server: SMTPServer, recorder: Recorder) -> None:
    c = await RawClient.connect(server.port)
    assert await c.reply() == [b"220 mx.test ESMTP mailcore ready"]
    ehlo = await c.command(b"EHLO client.example")
    assert ehlo[0] == b"250-mx.test"
    assert b"250-CHUNKING" in ehlo and b"250-PIPELINING" in ehlo
    assert await c.command(b"MAIL FROM:<a@b.example> BODY=8BITMIME") == [b"250 2.1.0 Sender OK"]
    assert await c.command(b"RCPT TO:<x@mx.test> NOTIFY=FAILURE") == [b"250 2.1.5 Recipient OK"]
    assert await c.command(b"RCPT TO:<nobody@mx.test>") == [b"550 5.1.1 No such user here"]
    assert await c.command(b"DATA") == [b"354 Start mail input; end with <CRLF>.<CRLF>"]
    await c.send(b"Subject: hi\r\n\r\n..leading dot\r\nbody\r\n.\r\n")
    assert await c.reply() == [b"250 2.0.0 Message accepted for delivery"]
    assert await c.command(b"QUIT") == [b"221 2.0.0 mx.test closing transmission"]
    assert await c.at_eof()
    await c.close()
    [(envelope, content)] = recorder.messages
    assert envelope.mail_from == "a@b.example"
    assert envelope.body_type == "8BITMIME"
    assert envelope.rcpt_tos == ["x@mx.test"]
    assert envelope.recipients[0].notify == ("FAILURE",)
    received, _, rest = content.partition(b"\r\nSubject:")
    assert received.startswith(b"Received: from client.example ([127.0.0.1])\r\n\tby mx.test")
    assert b"with ESMTP id " in received and b"\tfor <x@mx.test>; " in received
    # The handler is told the id the Received: field gives the message.
    assert envelope.queue_id and f" id {envelope.queue_id}\r\n".encode() in received
    assert rest == b" hi\r\n\r\n.leading dot\r\nbody\r\n"


async def test_pipelined_batch_in_one_write(server: SMTPServer, recorder: Recorder) -> None:
    c = await RawClient.connect(server.port)
    await c.reply()
    await c.send(
        b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@mx.test>\r\nRCPT TO:<nobody@mx.test>\r\n"
        b"BDAT 5\r\nhelloBDAT 0 LAST\r\nMAIL FROM:<>\r\nRCPT TO:<y@mx.test>\r\nDATA\r\n"
        b"second\r\n.\r\nQUIT\r\n"
    )
    got = []
    for _ in range(11):
        got.append((await c.reply())[-1])
    assert got[1:] == [
        b"250 2.1.0 Sender OK",
        b"250 2.1.5 Recipient OK",
        b"550 5.1.1 No such user here",
        b"250 2.0.0 5 octets received",
        b"250 2.0.0 Message accepted for delivery",
        b"250 2.1.0 Sender OK",
        b"250 2.1.5 Recipient OK",
        b"354 Start mail input; end with <CRLF>.<CRLF>",
        b"250 2.0.0 Message accepted for delivery",
        b"221 2.0.0 mx.test closing transmission",
    ]
    await c.close()
    assert [m[1].split(b"\r\n")[-1] for m in recorder.messages] == [b"hello", b""]
    assert recorder.messages[1][1].endswith(b"\r\nsecond\r\n")


async def test_smuggling_over_tcp(server: SMTPServer, recorder: Recorder) -> None:
    c = await RawClient.connect(server.port)
    await c.reply()
    await c.send(b"EHLO c\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@mx.test>\r\nDATA\r\n")
    for _ in range(4):
        await c.reply()
    await c.send(
        b"Subject: x\r\n\r\nhi\n.\r\nMAIL FROM:<ceo@bank.example>\r\nRCPT TO:<x@mx.test>\r\n"
        b"DATA\r\nspoofed\r\n.\r\nNOOP\r\n"
    )
    assert await c.reply() == [
        b"550 5.5.2 Bare CR or LF in message body (SMTP smuggling protection)"
    ]
    assert await c.reply() == [b"250 2.0.0 OK"]
    await c.close()
    assert recorder.messages == []


async def test_smtplib_sendmail_large_message_streams_in_chunks(
    server: SMTPServer, recorder: Recorder
) -> None:
    lines = [b".dot line %d " % i + b"x" * 70 for i in range(20000)]
    body = b"Subject: big\r\n\r\n" + b"\r\n".join(lines) + b"\r\n"

    def send() -> dict[str, tuple[int, bytes]]:
        with smtplib.SMTP("127.0.0.1", server.port) as s:
            return s.sendmail("a@b.example", ["x@mx.test", "nobody@mx.test"], body)

    refused = await asyncio.to_thread(send)
    assert refused == {"nobody@mx.test": (550, b"5.1.1 No such user here")}
    [(envelope, content)] = recorder.messages
    assert content.endswith(body)
    assert len(recorder.chunks) > 3
    assert sum(recorder.chunks) == len(content)
    assert envelope.declared_size == len(body)


async def test_message_too_big(recorder: Recorder) -> None:
    limits = replace(SMTPLimits(), message_size=10_000)
    async with SMTPServer(recorder, hostname=HOST, limits=limits) as srv:

        def send() -> None:
            with smtplib.SMTP("127.0.0.1", srv.port) as s:
                # SIZE= announced: refused at MAIL (RFC 1870)
                with pytest.raises(smtplib.SMTPSenderRefused) as err:
                    s.sendmail("a@b.example", ["x@mx.test"], b"x" * 20_000)
                assert err.value.smtp_code == 552
                assert s.esmtp_features["size"] == "10000"
                # not announced: read to the end, then refused
                s.rset()
                s.mail("a@b.example")
                s.rcpt("x@mx.test")
                assert s.data(b"x" * 20_000) == (552, b"5.3.4 Message too big for system")
                assert s.noop()[0] == 250

        await asyncio.to_thread(send)
    assert recorder.messages == []


async def test_connection_limit_answers_421(recorder: Recorder) -> None:
    limits = replace(SMTPLimits(), connections=1)
    async with SMTPServer(recorder, hostname=HOST, limits=limits) as srv:
        first = await RawClient.connect(srv.port)
        assert (await first.reply())[0].startswith(b"220")
        second = await RawClient.connect(srv.port)
        assert await second.reply() == [b"421 4.7.0 Too many connections, try again later"]
        assert await second.at_eof()
        assert await first.command(b"NOOP") == [b"250 2.0.0 OK"]
        await first.close()
        await second.close()


async def test_idle_timeout(recorder: Recorder) -> None:
    limits = replace(SMTPLimits(), command_timeout=0.2)
    async with SMTPServer(recorder, hostname=HOST, limits=limits) as srv:
        c = await RawClient.connect(srv.port)
        await c.reply()
        assert await c.reply() == [b"421 4.4.2 Timeout exceeded, closing transmission channel"]
        assert await c.at_eof()
        await c.close()


async def test_command_timeout_is_per_line_not_per_byte(recorder: Recorder) -> None:
    # A command line trickled a byte at a time does not wind the clock back;
    # complete commands do.
    limits = replace(SMTPLimits(), command_timeout=0.5)
    async with SMTPServer(recorder, hostname=HOST, limits=limits) as srv:
        busy = await RawClient.connect(srv.port)
        await busy.reply()
        for _ in range(4):  # 0.8 s in all, each command well within the limit
            await asyncio.sleep(0.2)
            assert await busy.command(b"NOOP") == [b"250 2.0.0 OK"]
        slow = await RawClient.connect(srv.port)
        await slow.reply()

        async def trickle() -> None:
            with contextlib.suppress(ConnectionError):
                for byte in b"NOOP NOOP NOOP NOOP":
                    await slow.send(bytes([byte]))
                    await asyncio.sleep(0.1)

        loop = asyncio.get_running_loop()
        started = loop.time()
        sender = asyncio.create_task(trickle())
        assert await slow.reply() == [b"421 4.4.2 Timeout exceeded, closing transmission channel"]
        assert loop.time() - started < 1.0  # the trickle would take 1.9 s
        sender.cancel()
        await slow.close()
        await busy.close()


async def test_data_timeout(recorder: Recorder) -> None:
    limits = replace(SMTPLimits(), data_block_timeout=0.2)
    async with SMTPServer(recorder, hostname=HOST, limits=limits) as srv:
        c = await RawClient.connect(srv.port)
        await c.reply()
        await c.send(b"HELO c\r\nMAIL FROM:<>\r\nRCPT TO:<x@mx.test>\r\nDATA\r\npartial")
        for _ in range(4):
            await c.reply()
        assert await c.reply() == [b"421 4.4.2 Timeout exceeded, closing transmission channel"]
        await c.close()
    assert recorder.messages == []


async def test_stop_sends_421_to_open_sessions(recorder: Recorder) -> None:
    srv = SMTPServer(recorder, hostname=HOST)
    await srv.start()
    c = await RawClient.connect(srv.port)
    await c.reply()
    await srv.stop()
    assert await c.reply() == [b"421 4.3.2 Service shutting down, closing transmission channel"]
    await c.close()


async def test_starttls_discards_injected_commands_and_restarts(
    recorder: Recorder, server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    async with SMTPServer(
        recorder, hostname=HOST, ssl_context=server_context, credentials=Accounts()
    ) as srv:
        c = await RawClient.connect(srv.port)
        await c.reply()
        ehlo = await c.command(b"EHLO c")
        assert b"250-STARTTLS" in ehlo or b"250 STARTTLS" in ehlo
        assert not any(b"AUTH" in line for line in ehlo)
        # CVE-2011-0411: the NOOP travels in clear in the same segment.
        await c.send(b"STARTTLS\r\nNOOP\r\nMAIL FROM:<evil@x.example>\r\n")
        assert await c.reply() == [b"220 2.0.0 Ready to start TLS"]
        await c.writer.start_tls(client_context, server_hostname="localhost")
        assert await c.command(b"MAIL FROM:<a@b.example>") == [b"503 5.5.1 Send EHLO or HELO first"]
        ehlo = await c.command(b"EHLO c")
        assert b"250 AUTH PLAIN LOGIN" in ehlo
        assert not any(b"STARTTLS" in line for line in ehlo)
        assert await c.command(b"AUTH PLAIN AGFsaWNlAHMzY3JldA==") == [
            b"235 2.7.0 Authentication successful"
        ]
        assert await c.command(b"MAIL FROM:<a@b.example>") == [b"250 2.1.0 Sender OK"]
        assert await c.command(b"RCPT TO:<x@mx.test>") == [b"250 2.1.5 Recipient OK"]
        assert await c.command(b"DATA") == [b"354 Start mail input; end with <CRLF>.<CRLF>"]
        assert await c.command(b"hi\r\n.") == [b"250 2.0.0 Message accepted for delivery"]
        await c.close()
    [(_envelope, content)] = recorder.messages
    assert b"with ESMTPSA id" in content
    assert recorder.sessions[0].authenticated == "alice@mx.test"
    assert recorder.sessions[0].tls_version in ("TLSv1.2", "TLSv1.3")


async def test_submission_requires_auth(
    recorder: Recorder, server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    async with SMTPServer(
        recorder,
        hostname=HOST,
        ssl_context=server_context,
        implicit_tls=True,
        credentials=Accounts(),
        require_auth=True,
    ) as srv:
        c = await RawClient.connect(srv.port, ssl_context=client_context)
        await c.reply()
        assert b"250 AUTH PLAIN LOGIN" in await c.command(b"EHLO c")
        assert await c.command(b"MAIL FROM:<a@b.example>") == [b"530 5.7.0 Authentication required"]
        assert await c.command(b"AUTH PLAIN AGFsaWNlAHMzY3JldA==") == [
            b"235 2.7.0 Authentication successful"
        ]
        assert await c.command(b"MAIL FROM:<a@b.example>") == [b"250 2.1.0 Sender OK"]
        await c.close()


async def test_implicit_tls_with_smtplib_login(
    recorder: Recorder, server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    async with SMTPServer(
        recorder,
        hostname=HOST,
        ssl_context=server_context,
        implicit_tls=True,
        credentials=Accounts(),
        auth_mechanisms=["PLAIN", "LOGIN", "SCRAM-SHA-256"],
        limits=replace(SMTPLimits(), auth_failure_delay=0.3),
    ) as srv:

        def send() -> None:
            with smtplib.SMTP_SSL("localhost", srv.port, context=client_context) as s:
                started = time.monotonic()
                with pytest.raises(smtplib.SMTPAuthenticationError) as err:
                    s.login("alice", "wrong")
                assert err.value.smtp_code == 535
                assert time.monotonic() - started >= 0.3  # the failure delay
                s.login("alice", "s3cret")
                s.sendmail("alice@mx.test", ["x@mx.test"], b"Subject: tls\r\n\r\nok\r\n")

        await asyncio.to_thread(send)
    [(_, content)] = recorder.messages
    assert b"with ESMTPSA id" in content


async def test_handler_exception_gives_451(server_context: ssl.SSLContext) -> None:
    class Broken(Handler):
        async def handle_MAIL(
            self,
            session: Session,
            envelope: Envelope,
            address: str,
            params: Mapping[str, str | None],
        ) -> Reply:
            raise RuntimeError("bug")

    async with SMTPServer(Broken(), hostname=HOST) as srv:
        c = await RawClient.connect(srv.port)
        await c.reply()
        await c.command(b"EHLO c")
        assert await c.command(b"MAIL FROM:<>") == [b"451 4.3.0 Local error in processing"]
        assert await c.command(b"NOOP") == [b"250 2.0.0 OK"]
        await c.close()


async def test_sink_and_debugging_handlers() -> None:
    out = io.StringIO()
    for handler in (Sink(), Debugging(out)):
        async with SMTPServer(handler, hostname=HOST) as srv:

            def send(port: int = srv.port) -> None:
                with smtplib.SMTP("127.0.0.1", port) as s:
                    body = "Subject: ¡hola!\r\n\r\n¿qué tal?\r\n".encode()
                    s.sendmail("a@b.example", ["x@mx.test"], body)

            await asyncio.to_thread(send)
    text = out.getvalue()
    assert "X-MailFrom: a@b.example" in text
    assert "Subject: ¡hola!\n\n¿qué tal?\n" in text


async def test_aiosmtpd_style_handler_runs_unchanged() -> None:
    class OldStyle:
        def __init__(self) -> None:
            self.got: list[tuple[str, list[str], bytes]] = []

        async def handle_RCPT(
            self, server: object, session: object, envelope: object, address: str, opts: list[str]
        ) -> str:
            if address.startswith("nobody"):
                return "550 5.1.1 Unknown user"
            return "250 OK"

        async def handle_DATA(self, server: object, session: object, envelope: Envelope) -> str:
            self.got.append((str(envelope.mail_from), envelope.rcpt_tos, envelope.content))
            return "250 Message accepted"

    old = OldStyle()
    async with SMTPServer(AiosmtpdAdapter(old), hostname=HOST) as srv:

        def send() -> dict[str, tuple[int, bytes]]:
            with smtplib.SMTP("127.0.0.1", srv.port) as s:
                return s.sendmail("a@b.example", ["x@mx.test", "nobody@mx.test"], b"hi\r\n")

        refused = await asyncio.to_thread(send)
    assert refused == {"nobody@mx.test": (550, b"5.1.1 Unknown user")}
    assert old.got[0][:2] == ("a@b.example", ["x@mx.test"])
    assert old.got[0][2].endswith(b"\r\n\r\nhi\r\n") or old.got[0][2].endswith(b"hi\r\n")


class Slow(Recorder):
    """Hooks that really suspend, so events move from data_received() to the task."""

    async def handle_MAIL(
        self, session: Session, envelope: Envelope, address: str, params: Mapping[str, str | None]
    ) -> Reply:
        await asyncio.sleep(0)
        return R.SENDER_OK

    async def handle_RCPT(
        self, session: Session, envelope: Envelope, address: str, params: Mapping[str, str | None]
    ) -> Reply:
        await asyncio.sleep(0.01)
        return await super().handle_RCPT(session, envelope, address, params)

    async def handle_RSET(self, session: Session) -> None:
        raise RuntimeError("handler bug")


async def test_suspending_hooks_keep_pipelined_replies_in_order() -> None:
    slow = Slow()
    async with SMTPServer(slow, hostname=HOST) as srv:
        c = await RawClient.connect(srv.port)
        await c.reply()
        batch = b"EHLO c\r\n" + b"".join(
            b"MAIL FROM:<s%d@b.example>\r\nRCPT TO:<nobody@mx.test>\r\nRCPT TO:<r%d@mx.test>\r\n"
            b"DATA\r\nmessage %d\r\n.\r\n" % (i, i, i)
            for i in range(5)
        )
        await c.send(batch)
        await c.reply()
        got = [(await c.reply())[-1] for _ in range(25)]
        assert (
            got
            == [
                b"250 2.1.0 Sender OK",
                b"550 5.1.1 No such user here",
                b"250 2.1.5 Recipient OK",
                b"354 Start mail input; end with <CRLF>.<CRLF>",
                b"250 2.0.0 Message accepted for delivery",
            ]
            * 5
        )
        # A hook that raises outside the reply path ends the session.
        await c.send(b"RSET\r\n")
        assert await c.reply() == [b"250 2.0.0 OK"]
        assert await c.reply() == [b"421 4.3.0 Internal error, closing transmission channel"]
        assert await c.at_eof()
        await c.close()
    assert [m[0].rcpt_tos for m in slow.messages] == [[f"r{i}@mx.test"] for i in range(5)]
    assert [m[1].split(b"\r\n")[-2] for m in slow.messages] == [b"message %d" % i for i in range(5)]


async def test_scram_sha_256_over_starttls(
    recorder: Recorder, server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    class ScramAccounts(Accounts):
        scram = True

    async with SMTPServer(
        recorder, hostname=HOST, ssl_context=server_context, credentials=ScramAccounts()
    ) as srv:
        for password, final in (
            ("s3cret", b"235 2.7.0 Authentication successful"),
            ("wrong", b"535 5.7.8 Authentication credentials invalid"),
        ):
            c = await RawClient.connect(srv.port)
            await c.reply()
            await c.command(b"EHLO c")
            await c.command(b"STARTTLS")
            await c.writer.start_tls(client_context, server_hostname="localhost")
            assert b"250 AUTH PLAIN LOGIN SCRAM-SHA-256" in await c.command(b"EHLO c")
            client = sasl.client_mechanism("SCRAM-SHA-256", "alice", password)
            first = client.initial()
            assert first is not None
            [challenge] = await c.command(b"AUTH SCRAM-SHA-256 " + base64.b64encode(first))
            assert challenge.startswith(b"334 ")
            answer = client.respond(base64.b64decode(challenge[4:]))
            [reply] = await c.command(base64.b64encode(answer))
            if reply.startswith(b"334 "):
                assert client.verify_final(base64.b64decode(reply[4:]))
                [reply] = await c.command(b"")
            assert reply == final
            await c.close()


async def test_client_that_reads_late_gets_every_reply(server: SMTPServer) -> None:
    # The replies outgrow the socket buffers, so the server must stop and
    # resume writing (pause_writing) without losing or stalling anything.
    assert server._server is not None
    # Accepted sockets inherit the listener's small send buffer (Linux).
    server._server.sockets[0].setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
    reader, writer = await asyncio.open_connection(sock=sock)
    c = RawClient(reader, writer)
    await c.reply()
    count = 20_000
    writer.write(b"EHLO c\r\n" + b"HELP\r\n" * count + b"QUIT\r\n")
    sender = asyncio.create_task(writer.drain())
    await asyncio.sleep(0.3)  # let the server fill its buffers
    assert len(await c.reply()) > 5
    helps = 0
    while True:
        lines = await c.reply()
        if lines[-1].startswith(b"221 "):
            break
        assert lines[-1].startswith(b"214 2.0.0 EHLO HELO MAIL")
        helps += 1
    assert helps == count
    await sender
    await c.close()


async def test_long_text_line_is_refused_and_the_session_goes_on(recorder: Recorder) -> None:
    async with SMTPServer(recorder, hostname=HOST) as srv:

        def send() -> None:
            with smtplib.SMTP("127.0.0.1", srv.port) as s:
                s.ehlo()
                s.mail("a@b.example")
                s.rcpt("x@mx.test")
                long_line = b"Subject: long\r\n\r\n" + b"y" * 1500 + b"\r\nend\r\n"
                assert s.data(long_line) == (500, b"5.5.6 Message text line too long")
                assert s.noop()[0] == 250
                # 998 octets + CRLF = 1000: the RFC's limit, accepted.
                assert s.mail("a@b.example")[0] == 250
                assert s.rcpt("x@mx.test")[0] == 250
                assert s.data(b"Subject: ok\r\n\r\n" + b"z" * 998 + b"\r\n")[0] == 250

        await asyncio.to_thread(send)
    [(_envelope, content)] = recorder.messages
    assert content.endswith(b"z" * 998 + b"\r\n")
