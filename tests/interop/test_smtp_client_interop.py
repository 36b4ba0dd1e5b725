"""mailcore's SMTP client against real servers on loopback.

Peers: aiosmtpd (plain, STARTTLS, implicit TLS, AUTH), Postfix's smtp-sink
(PIPELINING, LMTP, dumps of what arrived), and a small scripted server
written here for what no installed server offers: CHUNKING/BDAT with byte
checks, a proof that MAIL, RCPT and DATA really travel in one batch, STARTTLS
reply injection, and SCRAM-SHA-256 with mailcore's own SASL server side.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email.message
import os
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as AioSMTP
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from mailcore import _core
from mailcore.auth.sasl import (
    Challenge,
    Failure,
    NeedScramSecrets,
    SASLStep,
    ServerMechanism,
    Success,
    scram_secrets_for,
    server_mechanism,
)
from mailcore.errors import AuthError, LocalProtocolError
from mailcore.limits import SMTPClientLimits
from mailcore.smtp.client import (
    SMTPClient,
    SMTPClientError,
    SMTPResponseError,
    SMTPTimeout,
    send,
)
from mailcore.smtp.client_protocol import xtext
from tests.helpers import free_port, smtp_sink

FAST = SMTPClientLimits(
    connect_timeout=5,
    greeting_timeout=5,
    command_timeout=5,
    data_init_timeout=5,
    data_block_timeout=5,
    data_end_timeout=5,
)


@dataclass
class TLS:
    server: ssl.SSLContext
    client: ssl.SSLContext
    cafile: str


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLS:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    cafile = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    return TLS(server, client, str(cafile))


def message(
    subject: str = "Prueba", body: str = "Hola, ¿qué tal?\n.una línea con punto\n"
) -> email.message.EmailMessage:
    msg = email.message.EmailMessage()
    msg["From"] = "alice@example.org"
    msg["To"] = "bob@example.org"
    msg["Subject"] = subject
    msg.set_content(body, cte="quoted-printable")
    return msg


# ------------------------------------------------------------- aiosmtpd ---


class Recorder:
    """aiosmtpd handler keeping what arrived."""

    def __init__(self) -> None:
        self.envelopes: list[tuple[str | None, list[str], list[str], bytes, bool, Any]] = []

    async def handle_RCPT(
        self,
        server: AioSMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        options: list[str],
    ) -> str:
        if address.startswith("nobody@"):
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: AioSMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.envelopes.append(
            (
                envelope.mail_from,
                list(envelope.rcpt_tos),
                list(envelope.mail_options),
                bytes(content),
                session.ssl is not None,
                session.auth_data,
            )
        )
        return "250 2.0.0 OK"


def authenticator(
    server: AioSMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"alice",
        b"s3cret p\xc3\xa4ss",
    )
    # handled=False: aiosmtpd then sends its 535 itself.
    return AuthResult(success=ok, handled=False, auth_data=auth_data.login if ok else None)


@contextlib.contextmanager
def aiosmtpd_server(**kwargs: Any) -> Iterator[tuple[int, Recorder]]:
    recorder = Recorder()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield port, recorder
    finally:
        controller.stop()


async def test_plain_messages_over_one_connection_against_aiosmtpd() -> None:
    with aiosmtpd_server(enable_SMTPUTF8=True) as (port, rec):
        async with SMTPClient("127.0.0.1", port, local_hostname="client.test", limits=FAST) as c:
            assert not c.conn.has_extension("PIPELINING")
            first = await c.send_message(
                message(), "alice@example.org", ["bob@example.org", "nobody@example.org"]
            )
            second = await c.send_message(
                b"Subject: two\r\n\r\n.\r\n..\r\nend\r\n",
                "alice@example.org",
                ["carol@example.org"],
            )
            third = await c.send_message(
                b"Subject: tres\r\n\r\ncaf\xc3\xa9\r\n", "josé@example.org", ["zoë@example.org"]
            )
    assert first.delivered == ["bob@example.org"]
    assert first.refused["nobody@example.org"].code == 550
    assert first.refused["nobody@example.org"].enhanced == "5.1.1"
    assert first.refused["nobody@example.org"].text == "No such user here"
    assert second.ok and third.ok
    assert [e[1] for e in rec.envelopes] == [
        ["bob@example.org"],
        ["carol@example.org"],
        ["zoë@example.org"],
    ]
    # Dot-stuffing happened on the way out and was undone by aiosmtpd.
    assert rec.envelopes[0][3] == message().as_bytes(policy=email.policy.SMTP)
    assert b"\r\n.una l=C3=ADnea con punto\r\n" in rec.envelopes[0][3]
    assert rec.envelopes[1][3] == b"Subject: two\r\n\r\n.\r\n..\r\nend\r\n"
    assert rec.envelopes[2][0] == "josé@example.org"
    assert set(rec.envelopes[2][2]) == {
        "SIZE=24",
        "BODY=8BITMIME",
        "SMTPUTF8",
    }  # 24 octets, as sent


async def test_starttls_and_auth_against_aiosmtpd(tls: TLS) -> None:
    with aiosmtpd_server(
        tls_context=tls.server, require_starttls=True, authenticator=authenticator
    ) as (port, rec):
        async with SMTPClient(
            "127.0.0.1",
            port,
            starttls=True,
            ssl_context=tls.client,
            username="alice",
            password="s3cret päss",
            mechanisms=["LOGIN"],
            limits=FAST,
        ) as c:
            assert c.tls and c.authenticated_as == "alice"
            result = await c.send_message(message(), "alice@example.org", ["bob@example.org"])
        async with SMTPClient(
            "127.0.0.1", port, starttls=True, ssl_context=tls.client, limits=FAST
        ) as c:
            await c.login("alice", "s3cret päss", "PLAIN")
            await c.send_message(message("2"), "alice@example.org", ["bob@example.org"])
            with pytest.raises(LocalProtocolError, match="already"):
                await c.starttls()
    assert result.ok
    assert [(e[4], e[5]) for e in rec.envelopes] == [(True, b"alice"), (True, b"alice")]


async def test_wrong_password_against_aiosmtpd(tls: TLS) -> None:
    with aiosmtpd_server(tls_context=tls.server, authenticator=authenticator) as (port, _):
        client = SMTPClient("127.0.0.1", port, starttls=True, ssl_context=tls.client, limits=FAST)
        async with client as c:
            for mech in ("PLAIN", "LOGIN"):
                with pytest.raises(AuthError, match="535"):
                    await c.login("alice", "wrong", mech)
            assert c.authenticated_as is None


async def test_starttls_refuses_an_untrusted_certificate(tls: TLS) -> None:
    with (
        aiosmtpd_server(tls_context=tls.server) as (port, rec),
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        async with SMTPClient("127.0.0.1", port, starttls=True, limits=FAST) as c:
            await c.send_message(message(), "alice@example.org", ["bob@example.org"])
    assert rec.envelopes == []


async def test_starttls_required_but_not_offered_sends_nothing() -> None:
    with (
        aiosmtpd_server(authenticator=authenticator, auth_require_tls=False) as (port, rec),
        pytest.raises(SMTPClientError, match="STARTTLS"),
    ):
        async with SMTPClient(
            "127.0.0.1", port, starttls=True, username="alice", password="x", limits=FAST
        ):
            pass
    assert rec.envelopes == []


async def test_implicit_tls_against_aiosmtpd(tls: TLS) -> None:
    with aiosmtpd_server(ssl_context=tls.server) as (port, rec):
        async with SMTPClient(
            "127.0.0.1", port, implicit_tls=True, ssl_context=tls.client, limits=FAST
        ) as c:
            assert c.tls
            assert (await c.send_message(message(), "a@example.org", ["b@example.org"])).ok
    assert len(rec.envelopes) == 1


def test_sync_send_against_aiosmtpd() -> None:
    with aiosmtpd_server() as (port, rec):
        result = send(
            message(),
            host="127.0.0.1",
            port=port,
            mail_from="a@example.org",
            rcpt_tos=["b@example.org"],
            limits=FAST,
        )
        with pytest.raises(SMTPResponseError, match="550"):
            send(
                message(),
                host="127.0.0.1",
                port=port,
                mail_from="a@example.org",
                rcpt_tos=["nobody@example.org"],
                limits=FAST,
            )
    assert result.delivered == ["b@example.org"]
    assert len(rec.envelopes) == 1


def test_mailcore_send_command_against_aiosmtpd(tls: TLS) -> None:
    with aiosmtpd_server(
        tls_context=tls.server, require_starttls=True, authenticator=authenticator
    ) as (port, rec):
        env = {**os.environ, "MAILCORE_PASSWORD": "s3cret päss"}
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "mailcore",
                "send",
                "--server",
                f"127.0.0.1:{port}",
                "--from",
                "alice@example.org",
                "--to",
                "bob@example.org",
                "--to",
                "nobody@example.org",
                "--subject",
                "Año nuevo",
                "--starttls",
                "--cafile",
                tls.cafile,
                "--auth",
                "alice",
            ],
            input="Feliz año\n.\nfin\n".encode(),
            capture_output=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 1, proc.stderr  # one recipient was refused
        assert proc.stdout.decode().splitlines() == [
            "bob@example.org: 250 2.0.0 OK",
            "nobody@example.org: 550 5.1.1 No such user here",
        ]
        ok = subprocess.run(
            [
                sys.executable,
                "-m",
                "mailcore",
                "send",
                "--server",
                f"127.0.0.1:{port}",
                "--from",
                "alice@example.org",
                "--to",
                "bob@example.org",
                "--starttls",
                "--cafile",
                tls.cafile,
                "--auth",
                "alice",
            ],
            input=b"second\n",
            capture_output=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert ok.returncode == 0, ok.stderr
        bad = subprocess.run(
            [
                sys.executable,
                "-m",
                "mailcore",
                "send",
                "--server",
                f"127.0.0.1:{port}",
                "--from",
                "alice@example.org",
                "--to",
                "bob@example.org",
                "--starttls",
                "--cafile",
                tls.cafile,
                "--auth",
                "alice",
            ],
            input=b"third\n",
            capture_output=True,
            env={**os.environ, "MAILCORE_PASSWORD": "wrong"},
            timeout=60,
            check=False,
        )
        assert bad.returncode == 1
        assert b"535" in bad.stderr
    assert len(rec.envelopes) == 2
    parsed = email.message_from_bytes(rec.envelopes[0][3], policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    assert parsed["Subject"] == "Año nuevo"
    assert parsed.get_content().replace("\r\n", "\n") == "Feliz año\n.\nfin\n"
    assert rec.envelopes[0][4:] == (True, b"alice")


# ------------------------------------------------------------ smtp-sink ---


def dumps(directory: Path) -> list[bytes]:
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    return [p.read_bytes() for p in files]


def dump_body(dump: bytes) -> bytes:
    # smtp-sink writes its own headers up to its three-line Received:, then
    # the message with LF line ends, then an empty line.
    _head, sep, rest = dump.partition(b"\nReceived: from ")
    assert sep
    lines = rest.split(b"\n")
    return b"\n".join(lines[3:])


async def test_pipelined_messages_against_smtp_sink() -> None:
    bodies = [
        b"Subject: one\r\n\r\n.first line with a dot\r\nsecond\r\n",
        b"Subject: two\r\n\r\n.\r\n..\r\n",
        b"Subject: three\r\n\r\nplain\r\n",
    ]
    with smtp_sink() as (port, dump):
        async with SMTPClient("127.0.0.1", port, limits=FAST) as c:
            assert c.conn.has_extension("PIPELINING")
            assert not c.conn.has_extension("CHUNKING")
            results = [
                await c.send_message(body, "s@example.org", ["r1@example.org", "r2@example.org"])
                for body in bodies
            ]
        await asyncio.sleep(0.2)
        got = dumps(dump)
    assert all(r.ok for r in results)
    assert [r.recipients["r1@example.org"].enhanced for r in results] == ["2.0.0"] * 3
    assert len(got) == 3
    by_subject = {dump_body(d).split(b"\n")[0]: d for d in got}
    for body in bodies:
        d = by_subject[body.split(b"\r\n")[0]]
        assert dump_body(d) == body.replace(b"\r\n", b"\n") + b"\n"
        # smtp-sink offers no SIZE, so no SIZE= parameter was sent.
        assert b"X-Mail-Args: <s@example.org>\n" in d
        assert b"X-Rcpt-Args: <r1@example.org>\nX-Rcpt-Args: <r2@example.org>\n" in d


async def test_lmtp_per_recipient_replies_against_smtp_sink() -> None:
    with smtp_sink("-L") as (port, dump):
        async with SMTPClient("127.0.0.1", port, lmtp=True, limits=FAST) as c:
            result = await c.send_message(
                b"Subject: lmtp\r\n\r\nhi\r\n", "s@example.org", ["a@example.org", "b@example.org"]
            )
        await asyncio.sleep(0.2)
        got = dumps(dump)
    assert result.ok
    assert list(result.recipients) == ["a@example.org", "b@example.org"]
    assert len(got) == 1 and b"X-Client-Proto: LMTP" in got[0]


async def test_every_recipient_refused_by_smtp_sink_sends_no_data() -> None:
    with smtp_sink("-r", "RCPT") as (port, dump):
        async with SMTPClient("127.0.0.1", port, limits=FAST) as c:
            result = await c.send_message(b"Subject: x\r\n\r\nx\r\n", "s@x.org", ["a@x.org"])
            # The connection is still good for the next message.
            assert (await c.noop()).code == 250
        got = dumps(dump)
    assert result.refused["a@x.org"].is_transient
    assert not result.delivered
    # smtp-sink opens a capture file at MAIL and may not have removed it yet
    # when we look; what matters is that nothing was written into it.
    assert all(d == b"" for d in got)


# ------------------------------------------------------ scripted server ---


@dataclass
class ScriptServer:
    """A small SMTP server that does exactly what a test needs."""

    ehlo: tuple[str, ...] = ("PIPELINING", "CHUNKING", "8BITMIME", "SIZE 1000000")
    tls_ehlo: tuple[str, ...] | None = None
    refuse_ehlo: bool = False
    # Hold MAIL/RCPT/BDAT replies until DATA or BDAT LAST: a client that
    # waits for each reply instead of pipelining would hang.
    hold: bool = False
    inject: bytes = b""
    tls: ssl.SSLContext | None = None
    scram_users: dict[str, str] = field(default_factory=dict)
    lie_about_auth: bool = False
    silent: bool = False
    lmtp: bool = False
    raw: bytearray = field(default_factory=bytearray)
    messages: list[bytes] = field(default_factory=list)
    tls_used: bool = False
    port: int = 0

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[ScriptServer]:
        server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            server.close()
            await server.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held: list[bytes] = []

        async def line() -> str:
            data = await reader.readuntil(b"\r\n")
            self.raw.extend(data)
            return data[:-2].decode("utf-8")

        async def flush() -> None:
            writer.write(b"".join(held))
            held.clear()
            await writer.drain()

        def reply(text: str) -> None:
            held.append(text.encode() + b"\r\n")

        try:
            if self.silent:
                await reader.read()
                return
            reply("220 script ESMTP")
            await flush()
            secure = False
            chunks: list[bytes] = []
            accepted: list[str] = []
            in_transaction = False
            while True:
                try:
                    cmd = await line()
                except asyncio.IncompleteReadError:
                    break
                verb, _, arg = cmd.partition(" ")
                verb = verb.upper()
                if verb == "EHLO" or (self.lmtp and verb == "LHLO"):
                    if self.refuse_ehlo:
                        reply("502 5.5.1 EHLO not implemented")
                    else:
                        keys = self.tls_ehlo if secure and self.tls_ehlo is not None else self.ehlo
                        lines = ["script", *keys]
                        reply("\r\n".join([*(f"250-{x}" for x in lines[:-1]), f"250 {lines[-1]}"]))
                elif verb == "HELO":
                    reply("250 script")
                elif verb == "STARTTLS" and self.tls is not None:
                    writer.write(b"220 2.0.0 Ready to start TLS\r\n" + self.inject)
                    await writer.drain()
                    await writer.start_tls(self.tls)
                    secure = self.tls_used = True
                    continue
                elif verb == "MAIL":
                    accepted = []
                    in_transaction = "blocked" not in arg
                    reply("250 2.1.0 ok" if in_transaction else "550 5.7.1 sender blocked")
                elif verb in ("RCPT", "DATA") and not in_transaction:
                    reply("503 5.5.1 need MAIL first")
                elif verb == "RCPT":
                    reply("550 5.1.1 No such user here" if "nobody" in arg else "250 2.1.5 ok")
                    if "nobody" not in arg:
                        accepted.append(arg)
                elif verb == "DATA":
                    reply("354 go ahead")
                    await flush()
                    data = b""
                    while not data.endswith(b"\r\n.\r\n") and data != b".\r\n":
                        data += await reader.readuntil(b"\r\n")
                    self.raw.extend(data)
                    body, done = _core.DotReader(len(data)).feed(data)
                    assert done
                    self.messages.append(body)
                    self._final(accepted, reply, "queued")
                elif verb == "BDAT":
                    size, _, last = arg.partition(" ")
                    chunk = await reader.readexactly(int(size))
                    self.raw.extend(chunk)
                    chunks.append(chunk)
                    if last == "LAST":
                        self.messages.append(b"".join(chunks))
                        chunks = []
                        self._final(
                            accepted, reply, f"message of {len(self.messages[-1])} octets queued"
                        )
                    else:
                        reply(f"250 2.0.0 {size} octets received")
                elif verb == "AUTH":
                    await self._auth(arg, line, writer, reply, flush)
                elif verb in ("RSET", "NOOP"):
                    reply("250 2.0.0 ok")
                elif verb == "QUIT":
                    reply("221 2.0.0 bye")
                    await flush()
                    break
                else:
                    reply("500 5.5.2 unknown command")
                if self.hold and (
                    verb in ("MAIL", "RCPT") or (verb == "BDAT" and "LAST" not in arg)
                ):
                    continue
                await flush()
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()

    def _final(self, accepted: list[str], reply: Any, text: str) -> None:
        if not self.lmtp:
            reply(f"250 2.0.0 {text}")
            return
        # RFC 2033 4.2: one reply per accepted recipient, in order.
        for rcpt in accepted:
            if "full" in rcpt:
                reply(f"452 4.2.2 {rcpt} mailbox full")
            else:
                reply(f"250 2.0.0 {rcpt} {text}")

    async def _auth(
        self, arg: str, line: Any, writer: asyncio.StreamWriter, reply: Any, flush: Any
    ) -> None:
        name, _, initial = arg.partition(" ")
        mech: ServerMechanism = server_mechanism(name, realm_host="script")
        first = None if not initial else b"" if initial == "=" else base64.b64decode(initial)
        step: SASLStep = mech.start(first)
        while True:
            if isinstance(step, NeedScramSecrets):
                password = self.scram_users.get(step.authcid)
                secrets = (
                    scram_secrets_for(password, salt=b"salty", iterations=4096)
                    if password
                    else None
                )
                step = mech.provide_secrets(secrets)
            elif isinstance(step, Challenge):
                writer.write(b"334 " + base64.b64encode(step.data) + b"\r\n")
                await writer.drain()
                answer = await line()
                if answer == "*":
                    reply("501 5.0.0 cancelled")
                    return
                step = mech.step(base64.b64decode(answer))
            elif self.lie_about_auth:
                reply("235 2.7.0 fine, whoever you are")
                return
            elif isinstance(step, Success):
                if step.final is not None:
                    writer.write(b"334 " + base64.b64encode(step.final) + b"\r\n")
                    await writer.drain()
                    if await line() != "":
                        reply("501 5.5.2 expected an empty response")
                        return
                reply("235 2.7.0 Authentication successful")
                return
            else:
                assert isinstance(step, Failure)
                reply("535 5.7.8 Authentication credentials invalid")
                return


async def test_bdat_pipelined_bytes_on_the_wire() -> None:
    # Bare LF, a bare CR and lines starting with "." go out in canonical CRLF
    # form and are NOT dot-stuffed: BDAT is counted, not terminated.
    body = b"Subject: chunks\n\n.dot\nline two\rthree\r\n" + b"x" * 25
    canonical = b"Subject: chunks\r\n\r\n.dot\r\nline two\r\nthree\r\n" + b"x" * 25 + b"\r\n"
    assert len(canonical) == 69
    limits = SMTPClientLimits(
        command_timeout=3,
        data_init_timeout=3,
        data_end_timeout=3,
        data_block_timeout=3,
        bdat_chunk=20,
    )
    async with (
        ScriptServer(hold=True).running() as srv,
        SMTPClient("127.0.0.1", srv.port, local_hostname="c.test", limits=limits) as c,
    ):
        result = await c.send_message(body, "a@x.org", ["b@x.org", "nobody@x.org", "c@x.org"])
    assert result.delivered == ["b@x.org", "c@x.org"]
    assert result.refused["nobody@x.org"].code == 550
    assert result.recipients["b@x.org"].text == "message of 69 octets queued"
    assert srv.messages == [canonical]
    chunks = [canonical[i : i + 20] for i in range(0, len(canonical), 20)]
    expected = (
        b"EHLO c.test\r\n"
        + b"MAIL FROM:<a@x.org> SIZE=69\r\n"
        + b"RCPT TO:<b@x.org>\r\nRCPT TO:<nobody@x.org>\r\nRCPT TO:<c@x.org>\r\n"
        + b"BDAT 20\r\n"
        + chunks[0]
        + b"BDAT 20\r\n"
        + chunks[1]
        + b"BDAT 20\r\n"
        + chunks[2]
        + b"BDAT 9 LAST\r\n"
        + chunks[3]
        + b"QUIT\r\n"
    )
    assert bytes(srv.raw) == expected


async def test_data_pipelined_in_one_batch_with_dot_stuffing() -> None:
    body = b"Subject: data\r\n\r\n.leading\r\n..two\r\nlast line without end"
    async with (
        ScriptServer(ehlo=("PIPELINING", "8BITMIME"), hold=True).running() as srv,
        SMTPClient("127.0.0.1", srv.port, local_hostname="c.test", limits=FAST) as c,
    ):
        result = await c.send_message(body, "a@x.org", ["b@x.org"])
        again = await c.send_message(b"x\r\n", "a@x.org", ["nobody@x.org"])
        third = await c.send_message(b"y\r\n", "a@x.org", ["b@x.org"])
    assert result.ok and third.ok and not again.delivered
    assert srv.messages == [
        b"Subject: data\r\n\r\n.leading\r\n..two\r\nlast line without end\r\n",
        b"",  # the empty message that answered a 354 with no recipient
        b"y\r\n",
    ]
    assert bytes(srv.raw) == (
        b"EHLO c.test\r\nMAIL FROM:<a@x.org>\r\nRCPT TO:<b@x.org>\r\nDATA\r\n"
        b"Subject: data\r\n\r\n..leading\r\n...two\r\nlast line without end\r\n.\r\n"
        # All recipients refused: DATA was already pipelined; the server's
        # 354 is answered by an empty message, then RSET before the next one.
        b"MAIL FROM:<a@x.org>\r\nRCPT TO:<nobody@x.org>\r\nDATA\r\n.\r\n"
        b"RSET\r\n"
        b"MAIL FROM:<a@x.org>\r\nRCPT TO:<b@x.org>\r\nDATA\r\ny\r\n.\r\n"
        b"QUIT\r\n"
    )


async def test_helo_fallback_and_no_pipelining() -> None:
    async with (
        ScriptServer(refuse_ehlo=True).running() as srv,
        SMTPClient("127.0.0.1", srv.port, local_hostname="old.test", limits=FAST) as c,
    ):
        assert not c.conn.esmtp
        result = await c.send_message(b".x\r\n", "a@x.org", ["nobody@x.org", "b@x.org"])
    assert result.delivered == ["b@x.org"]
    assert bytes(srv.raw) == (
        b"EHLO old.test\r\nHELO old.test\r\nMAIL FROM:<a@x.org>\r\n"
        b"RCPT TO:<nobody@x.org>\r\nRCPT TO:<b@x.org>\r\nDATA\r\n..x\r\n.\r\nQUIT\r\n"
    )


@pytest.mark.parametrize(
    "inject",
    [b"250 injected\r\n", b"250-PIPELINING\r\n250-CHUNKING\r\n250 AUTH PLAIN\r\n"],
)
async def test_starttls_reply_injection_is_discarded(tls: TLS, inject: bytes) -> None:
    srv = ScriptServer(
        ehlo=("STARTTLS",), tls_ehlo=("8BITMIME", "X-TLS-ONLY"), tls=tls.server, inject=inject
    )
    async with (
        srv.running(),
        SMTPClient(
            "127.0.0.1",
            srv.port,
            starttls=True,
            ssl_context=tls.client,
            local_hostname="c.test",
            limits=FAST,
        ) as c,
    ):
        assert c.tls and srv.tls_used
        # The keywords are those sent over TLS, not the injected ones.
        assert c.conn.extensions == {"8BITMIME": "", "X-TLS-ONLY": ""}
        assert c.conn.discarded == len(inject)
        result = await c.send_message(b"secret\r\n", "a@x.org", ["b@x.org"])
    assert result.ok
    assert srv.messages == [b"secret\r\n"]
    assert bytes(srv.raw) == (
        b"EHLO c.test\r\nSTARTTLS\r\nEHLO c.test\r\nMAIL FROM:<a@x.org>\r\n"
        b"RCPT TO:<b@x.org>\r\nDATA\r\nsecret\r\n.\r\nQUIT\r\n"
    )


async def test_scram_sha256_against_mailcore_sasl_server(tls: TLS) -> None:
    srv = ScriptServer(ehlo=("AUTH SCRAM-SHA-256 PLAIN",), scram_users={"alice": "pencil"})
    async with srv.running():
        async with SMTPClient("127.0.0.1", srv.port, limits=FAST) as c:
            await c.login("alice", "pencil")
            assert c.authenticated_as == "alice"
        async with SMTPClient("127.0.0.1", srv.port, limits=FAST) as c:
            with pytest.raises(AuthError, match="535"):
                await c.login("alice", "wrong")
    assert b"AUTH SCRAM-SHA-256 " in srv.raw


async def test_scram_client_refuses_a_server_that_cannot_prove_itself() -> None:
    srv = ScriptServer(ehlo=("AUTH SCRAM-SHA-256",), lie_about_auth=True)
    async with srv.running(), SMTPClient("127.0.0.1", srv.port, limits=FAST) as c:
        with pytest.raises(AuthError, match="did not prove"):
            await c.login("alice", "pencil")
        assert c.authenticated_as is None


async def test_size_limit_and_smtputf8_checked_before_sending() -> None:
    async with (
        ScriptServer(ehlo=("SIZE 10", "8BITMIME")).running() as srv,
        SMTPClient("127.0.0.1", srv.port, local_hostname="c.test", limits=FAST) as c,
    ):
        with pytest.raises(SMTPClientError, match="SIZE 10"):
            await c.send_message(b"x" * 11, "a@x.org", ["b@x.org"])
        with pytest.raises(SMTPClientError, match="SMTPUTF8"):
            await c.send_message(b"x", "josé@x.org", ["b@x.org"])
        with pytest.raises(LocalProtocolError, match="CR, LF or NUL"):
            await c.send_message(b"x", "a@x.org", ["b@x.org>\r\nRCPT TO:<evil@x.org"])
    assert bytes(srv.raw) == b"EHLO c.test\r\nQUIT\r\n"


async def test_silent_server_times_out() -> None:
    limits = SMTPClientLimits(greeting_timeout=0.3)
    async with ScriptServer(silent=True).running() as srv:
        with pytest.raises(SMTPTimeout):
            async with SMTPClient("127.0.0.1", srv.port, limits=limits):
                pass


async def test_refused_sender_decides_every_recipient() -> None:
    for ehlo in (("PIPELINING",), ()):
        async with (
            ScriptServer(ehlo=ehlo).running() as srv,
            SMTPClient("127.0.0.1", srv.port, limits=FAST) as c,
        ):
            result = await c.send_message(b"x\r\n", "blocked@x.org", ["a@x.org", "b@x.org"])
            assert {r: str(resp) for r, resp in result.recipients.items()} == {
                "a@x.org": "550 5.7.1 sender blocked",
                "b@x.org": "550 5.7.1 sender blocked",
            }
            assert (await c.send_message(b"y\r\n", "ok@x.org", ["a@x.org"])).ok
        assert srv.messages == [b"y\r\n"]
        assert srv.raw.count(b"RSET\r\n") == 1


@pytest.mark.parametrize("chunking", [True, False])
async def test_lmtp_per_recipient_results_with_bdat_and_data(chunking: bool) -> None:
    ehlo = ("PIPELINING", "CHUNKING") if chunking else ("PIPELINING",)
    async with (
        ScriptServer(ehlo=ehlo, lmtp=True).running() as srv,
        SMTPClient("127.0.0.1", srv.port, lmtp=True, local_hostname="c.test", limits=FAST) as c,
    ):
        result = await c.send_message(
            b"Subject: lmtp\r\n\r\nbody\r\n",
            "s@x.org",
            ["a@x.org", "nobody@x.org", "full@x.org", "b@x.org"],
        )
        assert (await c.send_message(b"again\r\n", "s@x.org", ["b@x.org"])).ok
    assert {r: resp.code for r, resp in result.recipients.items()} == {
        "a@x.org": 250,
        "nobody@x.org": 550,
        "full@x.org": 452,
        "b@x.org": 250,
    }
    # Each reply went to the recipient it names.
    assert result.recipients["a@x.org"].text.startswith("TO:<a@x.org>")
    assert result.recipients["b@x.org"].text.startswith("TO:<b@x.org>")
    assert srv.raw.startswith(b"LHLO c.test\r\n")
    assert srv.messages == [b"Subject: lmtp\r\n\r\nbody\r\n", b"again\r\n"]


@pytest.mark.parametrize(
    ("body", "wire"),
    [
        # SMTP smuggling payloads (CVE-2023-51764 and relatives): whatever
        # the caller hands over, exactly one end of data leaves the client.
        (b"a\n.\nMAIL FROM:<evil@x.org>\r\n", b"a\r\n..\r\nMAIL FROM:<evil@x.org>\r\n.\r\n"),
        (b"a\r\n.\rMAIL FROM:<e@x>\r\n", b"a\r\n..\r\nMAIL FROM:<e@x>\r\n.\r\n"),
        (b"a\r.\r\nRSET\r\n", b"a\r\n..\r\nRSET\r\n.\r\n"),
        (b"a\n.\r\nRSET", b"a\r\n..\r\nRSET\r\n.\r\n"),
        (b"a\r\n.\r\nQUIT\r\n", b"a\r\n..\r\nQUIT\r\n.\r\n"),
    ],
)
async def test_smuggling_payloads_leave_as_one_message(body: bytes, wire: bytes) -> None:
    async with (
        ScriptServer(ehlo=("PIPELINING",)).running() as srv,
        SMTPClient("127.0.0.1", srv.port, local_hostname="c.test", limits=FAST) as c,
    ):
        assert (await c.send_message(body, "a@x.org", ["b@x.org"])).ok
    assert len(srv.messages) == 1
    assert bytes(srv.raw) == (
        b"EHLO c.test\r\nMAIL FROM:<a@x.org>\r\nRCPT TO:<b@x.org>\r\nDATA\r\n" + wire + b"QUIT\r\n"
    )


async def test_bcc_is_not_transmitted_and_the_message_is_untouched() -> None:
    msg = message()
    msg["Bcc"] = "hidden@example.org"
    with aiosmtpd_server() as (port, rec):
        async with SMTPClient("127.0.0.1", port, limits=FAST) as c:
            result = await c.send_message(
                msg, "alice@example.org", ["bob@example.org", "hidden@example.org"]
            )
    assert result.ok
    assert b"hidden@example.org" not in rec.envelopes[0][3]
    assert rec.envelopes[0][1] == ["bob@example.org", "hidden@example.org"]
    assert msg["Bcc"] == "hidden@example.org"


async def test_failed_connect_leaves_nothing_open(tls: TLS) -> None:
    # A refused STARTTLS handshake inside ``async with`` must close the socket;
    # pytest turns an unclosed transport's ResourceWarning into an error.
    with aiosmtpd_server(tls_context=tls.server) as (port, _):
        client = SMTPClient("127.0.0.1", port, starttls=True, limits=FAST)
        with pytest.raises(ssl.SSLError):
            await client.connect()
        assert client._wire is None


def test_mailcore_send_command_errors() -> None:
    base = [sys.executable, "-m", "mailcore", "send", "--from", "a@x.org", "--to", "b@x.org"]
    bad = subprocess.run(
        [*base, "--server", "no-port-here"],
        input=b"x",
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 2
    assert b"expected ADDR:PORT" in bad.stderr
    down = subprocess.run(
        [*base, "--server", f"127.0.0.1:{free_port()}"],
        input=b"x",
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert down.returncode == 1
    assert down.stderr.startswith(b"mailcore send: ")


async def test_dsn_parameters_reach_the_server() -> None:
    async with (
        ScriptServer(ehlo=("PIPELINING", "DSN")).running() as srv,
        SMTPClient("127.0.0.1", srv.port, local_hostname="c.test", limits=FAST) as c,
    ):
        result = await c.send_message(
            b"x\r\n",
            "a@x.org",
            ["b@x.org", "c@x.org"],
            mail_options={"RET": "HDRS", "ENVID": xtext("id+1")},
            rcpt_options={
                "b@x.org": {"NOTIFY": "SUCCESS,FAILURE", "ORCPT": xtext("rfc822;b@x.org")}
            },
        )
        with pytest.raises(LocalProtocolError):
            await c.send_message(b"x", "a@x.org", ["b@x.org"], mail_options={"RET": "A B"})
    assert result.ok
    assert bytes(srv.raw).startswith(
        b"EHLO c.test\r\nMAIL FROM:<a@x.org> RET=HDRS ENVID=id+2B1\r\n"
        b"RCPT TO:<b@x.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@x.org\r\n"
        b"RCPT TO:<c@x.org>\r\nDATA\r\n"
    )
    assert bytes(srv.raw).endswith(b"x\r\n.\r\nQUIT\r\n")


async def test_concurrent_sends_share_one_connection_in_turn() -> None:
    srv = ScriptServer(ehlo=("PIPELINING", "SMTPUTF8", "8BITMIME"))
    async with (
        srv.running(),
        SMTPClient("127.0.0.1", srv.port, local_hostname="c.test", limits=FAST) as c,
    ):
        results = await asyncio.gather(
            *(
                c.send_message(b"Subject: %d\r\n\r\nbody\r\n" % i, "a@x.org", ["b@x.org"])
                for i in range(5)
            ),
            # Raw UTF-8 in a header asks for SMTPUTF8 (RFC 6532).
            c.send_message("Subject: ñ\r\n\r\nx\r\n".encode(), "a@x.org", ["b@x.org"]),
        )
    assert all(r.ok for r in results)
    assert sorted(srv.messages)[:5] == [b"Subject: %d\r\n\r\nbody\r\n" % i for i in range(5)]
    assert bytes(srv.raw).count(b"MAIL FROM:<a@x.org>\r\n") == 5
    assert b"MAIL FROM:<a@x.org> BODY=8BITMIME SMTPUTF8\r\n" in srv.raw


async def test_bdat_without_pipelining_waits_for_each_chunk() -> None:
    limits = SMTPClientLimits(command_timeout=3, data_end_timeout=3, bdat_chunk=4)
    srv = ScriptServer(ehlo=("CHUNKING",))
    async with (
        srv.running(),
        SMTPClient("127.0.0.1", srv.port, local_hostname="c.test", limits=limits) as c,
    ):
        result = await c.send_message(b"abcdefghij", "a@x.org", ["nobody@x.org", "b@x.org"])
        refused = await c.send_message(b"zz", "a@x.org", ["nobody@x.org"])
    assert result.delivered == ["b@x.org"]
    assert not refused.delivered
    assert srv.messages == [b"abcdefghij\r\n"]
    assert bytes(srv.raw) == (
        b"EHLO c.test\r\nMAIL FROM:<a@x.org>\r\nRCPT TO:<nobody@x.org>\r\nRCPT TO:<b@x.org>\r\n"
        b"BDAT 4\r\nabcdBDAT 4\r\nefghBDAT 4 LAST\r\nij\r\n"
        # No recipient accepted: no chunk is sent.
        b"MAIL FROM:<a@x.org>\r\nRCPT TO:<nobody@x.org>\r\nQUIT\r\n"
    )
