"""The sans-IO SMTP/LMTP server machine: every command, reply and limit.

Each conversation is fed whole, one byte at a time and cut in two at every
offset (``tests.helpers.splits``) and must give the same bytes on the wire and
the same events (body chunks joined, since their cut follows the input's).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailcore.auth import sasl
from mailcore.errors import LocalProtocolError
from mailcore.limits import SMTPLimits
from mailcore.smtp import replies as R
from mailcore.smtp.events import (
    NEED_DATA,
    PAUSED,
    Authenticated,
    AuthPassword,
    AuthScramSecrets,
    BodyChunk,
    BodyStart,
    Close,
    ConnectionClosed,
    Ehlo,
    Event,
    MailFrom,
    MessageAborted,
    MessageEnd,
    RcptTo,
    Reset,
    Signal,
    StartTLS,
)
from mailcore.smtp.protocol import (
    ALLOWED,
    TRANSITIONS,
    ServerConnection,
    State,
    decode_xtext,
    received_header,
)
from mailcore.smtp.replies import Reply
from tests.helpers import splits

HOST = "mx.example.org"
GREETING = b"220 mx.example.org ESMTP mailcore ready\r\n"
EHLO_REPLY = (
    b"250-mx.example.org\r\n"
    b"250-PIPELINING\r\n"
    b"250-SIZE 26214400\r\n"
    b"250-8BITMIME\r\n"
    b"250-SMTPUTF8\r\n"
    b"250-CHUNKING\r\n"
    b"250-DSN\r\n"
    b"250 ENHANCEDSTATUSCODES\r\n"
)
USERS = {"alice": "wonderland"}

Answer = Callable[[Event], Sequence[Reply] | None]


def default_answer(event: Event) -> Sequence[Reply] | None:
    """Accept everything, except recipients at "nobody@"."""
    if isinstance(event, Ehlo):
        return [Reply(250, None, HOST)]
    if isinstance(event, MailFrom):
        return [R.SENDER_OK]
    if isinstance(event, RcptTo):
        if event.address.startswith("nobody@"):
            return [R.NO_SUCH_USER]
        return [R.RECIPIENT_OK]
    if isinstance(event, MessageEnd):
        return [R.MESSAGE_ACCEPTED] * event.replies_due
    return None


class Run:
    """One conversation driven through a fresh machine."""

    def __init__(
        self,
        chunks: Sequence[bytes],
        answer: Answer = default_answer,
        make: Callable[[], ServerConnection] = lambda: ServerConnection(HOST),
    ) -> None:
        self.conn = make()
        self.conn.send(R.greeting(HOST))
        out = [self.conn.data_to_send()]
        self.events: list[Event] = []
        for chunk in [*chunks, b""]:
            self.conn.receive_data(chunk)
            self._drain(answer)
            out.append(self.conn.data_to_send())
        self.wire = b"".join(out)

    def _drain(self, answer: Answer) -> None:
        while True:
            ev = self.conn.next_event()
            if isinstance(ev, Signal):
                return
            self.events.append(ev)
            if isinstance(ev, StartTLS):
                self.conn.tls_started()
            elif isinstance(ev, AuthPassword):
                ok = USERS.get(ev.authcid) == ev.password
                self.conn.auth_password_result(ev.authcid if ok else None)
            elif isinstance(ev, AuthScramSecrets):
                secrets = None
                if ev.authcid in USERS:
                    secrets = sasl.scram_secrets_for(
                        USERS[ev.authcid], salt=b"saltsalt", iterations=4096
                    )
                self.conn.auth_scram_secrets(secrets)
            else:
                for reply in answer(ev) or ():
                    self.conn.send(reply)

    @property
    def merged(self) -> list[Event]:
        """Events with adjacent body chunks joined, those of refused bodies dropped
        (how much of a refused body was passed on depends on the split)."""
        merged: list[Event] = []
        for ev in self.events:
            if isinstance(ev, MessageAborted):
                while merged and isinstance(merged[-1], BodyChunk):
                    merged.pop()
            if isinstance(ev, BodyChunk) and merged and isinstance(merged[-1], BodyChunk):
                merged[-1] = BodyChunk(merged[-1].data + ev.data)
            else:
                merged.append(ev)
        return merged

    @property
    def body(self) -> bytes:
        return b"".join(ev.data for ev in self.events if isinstance(ev, BodyChunk))


def converse(
    data: bytes,
    answer: Answer = default_answer,
    *,
    limits: SMTPLimits | None = None,
    lmtp: bool = False,
    tls_available: bool = False,
    tls_active: bool = False,
    auth_mechanisms: Sequence[str] = (),
) -> Run:
    """Run ``data`` under every split; all must agree; return the whole-feed run."""

    def make() -> ServerConnection:
        return ServerConnection(
            HOST,
            limits,
            lmtp=lmtp,
            tls_available=tls_available,
            tls_active=tls_active,
            auth_mechanisms=auth_mechanisms,
        )

    first: Run | None = None
    cases = list(splits(data))
    if len(data) > 400:
        cases = cases[:2] + cases[2 :: max(1, len(cases) // 60)]
    for chunks in cases:
        run = Run(chunks, answer, make)
        if first is None:
            first = run
        else:
            assert run.wire == first.wire, chunks
            assert run.merged == first.merged, chunks
    assert first is not None
    return first


def replies(run: Run) -> list[bytes]:
    """The reply lines after the greeting."""
    return run.wire[len(GREETING) :].split(b"\r\n")[:-1]


# ------------------------------------------------------------------ basics


def test_seed_transaction() -> None:
    run = converse(
        b"EHLO machine1.commentcamarche.net\r\n"
        b"MAIL FROM:<webmaster@commentcamarche.net>\r\n"
        b"RCPT TO:<meandus@meandus.net>\r\n"
        b"RCPT TO:<nobody@tittom.fr>\r\n"
        b"DATA\r\n"
        b"Subject: Hola\r\n\r\nHola Meandus:\r\n..dot\r\n.\r\n"
        b"QUIT\r\n"
    )
    assert run.wire == (
        GREETING + EHLO_REPLY + b"250 2.1.0 Sender OK\r\n"
        b"250 2.1.5 Recipient OK\r\n"
        b"550 5.1.1 No such user here\r\n"
        b"354 Start mail input; end with <CRLF>.<CRLF>\r\n"
        b"250 2.0.0 Message accepted for delivery\r\n"
        b"221 2.0.0 mx.example.org closing transmission\r\n"
    )
    assert run.merged == [
        Ehlo("machine1.commentcamarche.net", True),
        MailFrom("webmaster@commentcamarche.net", {}),
        RcptTo("meandus@meandus.net", {}),
        RcptTo("nobody@tittom.fr", {}),
        BodyStart(bdat=False),
        BodyChunk(b"Subject: Hola\r\n\r\nHola Meandus:\r\n.dot\r\n"),
        MessageEnd(38, 1),
        Close(R.closing(HOST)),
    ]
    assert run.conn.state is State.CLOSED


def test_helo_gets_no_extension_list() -> None:
    run = converse(b"HELO client\r\nMAIL FROM:<a@b.org>\r\n")
    assert replies(run) == [b"250 mx.example.org", b"250 2.1.0 Sender OK"]
    assert run.events[0] == Ehlo("client", False)


def test_ehlo_needs_a_hostname_and_ehlo_resets_the_transaction() -> None:
    run = converse(
        b"EHLO\r\nEHLO a\r\nMAIL FROM:<a@b.org>\r\nEHLO a\r\nRCPT TO:<c@d.org>\r\n",
    )
    lines = replies(run)
    assert lines[0] == b"501 5.5.4 Syntax: EHLO hostname"
    assert lines[-1] == b"503 5.5.1 Need MAIL command"


def test_ehlo_reply_offers_starttls_and_auth_as_configured() -> None:
    run = converse(b"EHLO a\r\n", tls_available=True, auth_mechanisms=["PLAIN", "LOGIN"])
    assert run.wire.endswith(b"250-ENHANCEDSTATUSCODES\r\n250 STARTTLS\r\n")
    assert b"AUTH" not in run.wire  # not before TLS
    limits = replace(SMTPLimits(), auth_requires_tls=False, enhanced_status_codes=False)
    run = converse(b"EHLO a\r\nFOO\r\n", auth_mechanisms=["PLAIN", "LOGIN"], limits=limits)
    assert b"250 AUTH PLAIN LOGIN\r\n" in run.wire
    assert b"ENHANCEDSTATUSCODES" not in run.wire
    assert replies(run)[-1] == b"500 Syntax error, command unrecognized"


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        (b"NOOP", b"250 2.0.0 OK"),
        (b"NOOP anything", b"250 2.0.0 OK"),
        (b"noop", b"250 2.0.0 OK"),
        (b"RSET", b"250 2.0.0 OK"),
        (b"RSET x", b"501 5.5.4 Syntax: RSET"),
        (
            b"VRFY postmaster",
            b"252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery",
        ),
        (b"VRFY", b"501 5.5.4 Syntax: VRFY address"),
        (b"EXPN staff", b"502 5.5.1 Command not implemented"),
        (b"FOO bar", b"500 5.5.2 Syntax error, command unrecognized"),
        (b"", b"500 5.5.2 Syntax error, command unrecognized"),
        (b"MAIL TO:<a@b>", b"501 5.5.4 Syntax: MAIL FROM:<address>"),
        (b"DATA", b"503 5.5.1 Need MAIL command"),
        (b"RCPT TO:<a@b>", b"503 5.5.1 Need MAIL command"),
        (b"STARTTLS", b"454 4.7.0 TLS not available due to temporary reason"),
        (b"AUTH PLAIN", b"502 5.5.1 AUTH not available"),
        (b"LHLO x", b"500 5.5.2 Syntax error, command unrecognized"),
        (b"MAIL FROM:<a\x00b@c>", b"500 5.5.2 NUL in command"),
        (b"EHLO \xff\xfe", b"500 5.5.2 Bad UTF-8 syntax"),
    ],
)
def test_single_commands_after_ehlo(line: bytes, reply: bytes) -> None:
    run = converse(b"EHLO a\r\n" + line + b"\r\n")
    assert replies(run)[-1] == reply


def test_help_lists_the_commands() -> None:
    run = converse(b"HELP\r\n", tls_available=True)
    assert replies(run) == [
        b"214-2.0.0 Supported commands:",
        b"214 2.0.0 EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP STARTTLS VRFY",
    ]


def test_commands_before_ehlo() -> None:
    run = converse(b"MAIL FROM:<a@b.org>\r\nRCPT TO:<a@b.org>\r\nDATA\r\nRSET\r\nNOOP\r\n")
    assert replies(run) == [
        b"503 5.5.1 Send EHLO or HELO first",
        b"503 5.5.1 Need MAIL command",
        b"503 5.5.1 Need MAIL command",
        b"250 2.0.0 OK",
        b"250 2.0.0 OK",
    ]


def test_sequence_errors_inside_a_transaction() -> None:
    run = converse(
        b"EHLO a\r\nMAIL FROM:<a@b.org>\r\nMAIL FROM:<a@b.org>\r\nDATA\r\n"
        b"RCPT TO:<nobody@x.org>\r\nDATA\r\nRSET\r\nRCPT TO:<c@d.org>\r\n"
    )
    assert replies(run)[-7:] == [
        b"250 2.1.0 Sender OK",
        b"503 5.5.1 Sender already specified",
        b"554 5.5.1 No valid recipients",
        b"550 5.1.1 No such user here",
        b"554 5.5.1 No valid recipients",
        b"250 2.0.0 OK",
        b"503 5.5.1 Need MAIL command",
    ]
    assert Reset() in run.events


def test_refused_greeting_serves_only_quit() -> None:
    conn = ServerConnection(HOST)
    conn.send(Reply(554, "5.7.1", "No SMTP service here"))
    conn.receive_data(b"EHLO a\r\nNOOP\r\nQUIT\r\n")
    events = [conn.next_event() for _ in range(2)]
    assert conn.data_to_send() == (
        b"554 5.7.1 No SMTP service here\r\n503 5.5.1 Bad sequence of commands\r\n"
        b"250 2.0.0 OK\r\n221 2.0.0 mx.example.org closing transmission\r\n"
    )
    assert events == [Close(R.closing(HOST)), PAUSED]


def test_pipelined_batch_is_answered_in_order_however_split() -> None:
    batch = (
        b"EHLO a\r\nMAIL FROM:<a@b.org> SIZE=30\r\nRCPT TO:<x@y.org>\r\n"
        b"RCPT TO:<nobody@y.org>\r\nRCPT TO:<z@y.org>\r\nDATA\r\n"
        b"line one\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<x@y.org>\r\nDATA\r\n.\r\nQUIT\r\n"
    )
    run = converse(batch)
    assert replies(run)[8:] == [
        b"250 2.1.0 Sender OK",
        b"250 2.1.5 Recipient OK",
        b"550 5.1.1 No such user here",
        b"250 2.1.5 Recipient OK",
        b"354 Start mail input; end with <CRLF>.<CRLF>",
        b"250 2.0.0 Message accepted for delivery",
        b"250 2.1.0 Sender OK",
        b"250 2.1.5 Recipient OK",
        b"354 Start mail input; end with <CRLF>.<CRLF>",
        b"250 2.0.0 Message accepted for delivery",
        b"221 2.0.0 mx.example.org closing transmission",
    ]
    ends = [ev for ev in run.events if isinstance(ev, MessageEnd)]
    assert ends == [MessageEnd(10, 1), MessageEnd(0, 1)]


def test_machine_pauses_until_the_reply_is_sent() -> None:
    conn = ServerConnection(HOST)
    conn.send(R.greeting(HOST))
    conn.receive_data(b"EHLO a\r\nNOOP\r\n")
    assert conn.next_event() == Ehlo("a", True)
    assert conn.next_event() is PAUSED
    with pytest.raises(LocalProtocolError):
        conn.auth_password_result(None)
    conn.send(R.OK.with_text(HOST))
    assert conn.next_event() is NEED_DATA
    assert conn.data_to_send().endswith(b"250 ENHANCEDSTATUSCODES\r\n250 2.0.0 OK\r\n")
    with pytest.raises(LocalProtocolError):
        conn.send(R.OK)


def test_eof_gives_connection_closed() -> None:
    run = converse(b"EHLO a\r\nNOOP")
    assert run.events[-1] == ConnectionClosed()
    assert replies(run)[-1].startswith(b"250 ENHANCED")


# ------------------------------------------------------------------ paths and parameters


@pytest.mark.parametrize(
    ("line", "reply"),
    [
        (b"MAIL FROM:<>", b"250 2.1.0 Sender OK"),
        (b"MAIL FROM: <a@b.org>", b"250 2.1.0 Sender OK"),
        (b"MAIL FROM:<a@[192.0.2.1]>", b"250 2.1.0 Sender OK"),
        (b"MAIL FROM:<@hop.org:a@b.org>", b"250 2.1.0 Sender OK"),
        (b"MAIL FROM:a@b.org", b'501 5.1.7 Bad sender address syntax: expected "<" at position 0'),
        (
            b"MAIL FROM:<a@b..org>",
            b"501 5.1.7 Bad sender address syntax: expected domain label at position 5",
        ),
        (
            b"MAIL FROM:<" + b"a" * 65 + b"@b.org>",
            b"501 5.1.7 Bad sender address syntax: too long (at most 64 bytes)",
        ),
        ("MAIL FROM:<josé@b.org>".encode(), b"553 5.6.7 Non-ASCII address requires SMTPUTF8"),
        ("MAIL FROM:<josé@b.org> SMTPUTF8".encode(), b"250 2.1.0 Sender OK"),
        (b"MAIL FROM:<a@b.org> SIZE=26214400", b"250 2.1.0 Sender OK"),
        (
            b"MAIL FROM:<a@b.org> SIZE=26214401",
            b"552 5.3.4 Message size exceeds fixed maximum message size",
        ),
        (b"MAIL FROM:<a@b.org> SIZE=big", b"501 5.5.4 Syntax: SIZE=number"),
        (b"MAIL FROM:<a@b.org> BODY=8BITMIME", b"250 2.1.0 Sender OK"),
        (b"MAIL FROM:<a@b.org> BODY=BINARYMIME", b"501 5.5.4 Syntax: BODY=7BIT or BODY=8BITMIME"),
        (b"MAIL FROM:<a@b.org> RET=HDRS ENVID=QQ+2B1", b"250 2.1.0 Sender OK"),
        (b"MAIL FROM:<a@b.org> RET=ALL", b"501 5.5.4 Syntax: RET=FULL or RET=HDRS"),
        (b"MAIL FROM:<a@b.org> ENVID=a+0D+0Ab", b"501 5.5.4 ENVID must be xtext"),
        (b"MAIL FROM:<a@b.org> ENVID=a+zz", b"501 5.5.4 ENVID must be xtext"),
        (b"MAIL FROM:<a@b.org> AUTH=<>", b"250 2.1.0 Sender OK"),
        (b"MAIL FROM:<a@b.org> FOO=1", b"555 5.5.4 Parameter FOO not recognized"),
        (
            b"MAIL FROM:<a@b.org> SIZE=1=2",
            b"501 5.5.4 Bad parameter at position 16: expected esmtp-param: SP or end of line",
        ),
    ],
)
def test_mail_from(line: bytes, reply: bytes) -> None:
    run = converse(b"EHLO a\r\n" + line + b"\r\n")
    assert replies(run)[-1] == reply


@pytest.mark.parametrize(
    ("mail", "line", "reply"),
    [
        (b"<a@b.org>", b"RCPT TO:<Postmaster>", b"250 2.1.5 Recipient OK"),
        (
            b"<a@b.org>",
            b"RCPT TO:<>",
            b"501 5.1.3 Bad recipient address syntax: expected atext at position 1",
        ),
        (b"<a@b.org>", b"RCPT TO:<x@[IPv6:2001:db8::1]>", b"250 2.1.5 Recipient OK"),
        (
            b"<a@b.org>",
            b"RCPT TO:<x@[IPv6:2001:db8::zz]>",
            b"501 5.1.3 Bad recipient address syntax: expected IPv6-addr at position 9",
        ),
        (
            b"<a@b.org>",
            "RCPT TO:<müller@b.org>".encode(),
            b"553 5.6.7 Non-ASCII address requires SMTPUTF8",
        ),
        (b"<a@b.org> SMTPUTF8", "RCPT TO:<müller@b.org>".encode(), b"250 2.1.5 Recipient OK"),
        (
            b"<a@b.org>",
            b"RCPT TO:<x@y.org> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;x+40y.org",
            b"250 2.1.5 Recipient OK",
        ),
        (
            b"<a@b.org>",
            b"RCPT TO:<x@y.org> NOTIFY=NEVER,DELAY",
            b"501 5.5.4 Syntax: NOTIFY=NEVER or SUCCESS,FAILURE,DELAY",
        ),
        (
            b"<a@b.org>",
            b"RCPT TO:<x@y.org> ORCPT=rfc822",
            b"501 5.5.4 Syntax: ORCPT=addr-type;xtext",
        ),
        (b"<a@b.org>", b"RCPT TO:<x@y.org> SIZE=1", b"555 5.5.4 Parameter SIZE not recognized"),
        (b"<a@b.org>", b"RCPT FROM:<x@y.org>", b"501 5.5.4 Syntax: RCPT TO:<address>"),
    ],
)
def test_rcpt_to(mail: bytes, line: bytes, reply: bytes) -> None:
    run = converse(b"EHLO a\r\nMAIL FROM:" + mail + b"\r\n" + line + b"\r\n")
    assert replies(run)[-1] == reply


def test_dsn_parameters_reach_the_events() -> None:
    run = converse(
        b"EHLO a\r\nMAIL FROM:<a@b.org> RET=HDRS ENVID=id+2B1\r\n"
        b"RCPT TO:<x@y.org> NOTIFY=FAILURE ORCPT=rfc822;x@y.org\r\n"
    )
    assert run.events[1] == MailFrom("a@b.org", {"RET": "HDRS", "ENVID": "id+2B1"})
    assert run.events[2] == RcptTo("x@y.org", {"NOTIFY": "FAILURE", "ORCPT": "rfc822;x@y.org"})
    assert decode_xtext("id+2B1") == "id+1"


# ------------------------------------------------------------------ limits


def test_long_command_line_is_refused_and_the_session_goes_on() -> None:
    limits = replace(SMTPLimits(), command_line=64, auth_line=64)
    run = converse(b"EHLO a\r\nNOOP " + b"x" * 100 + b"\r\nNOOP\r\n", limits=limits)
    assert replies(run)[-2:] == [b"500 5.5.6 Line too long", b"250 2.0.0 OK"]
    # a line within the reader's bound but over the command bound
    limits = replace(SMTPLimits(), command_line=64, auth_line=1000)
    run = converse(b"EHLO a\r\nNOOP " + b"x" * 100 + b"\r\nNOOP\r\n", limits=limits)
    assert replies(run)[-2:] == [b"500 5.5.6 Line too long", b"250 2.0.0 OK"]


def test_too_many_recipients() -> None:
    limits = replace(SMTPLimits(), recipients=2)
    run = converse(
        b"EHLO a\r\nMAIL FROM:<a@b.org>\r\n"
        + b"".join(b"RCPT TO:<r%d@y.org>\r\n" % i for i in range(3)),
        limits=limits,
    )
    assert replies(run)[-3:] == [
        b"250 2.1.5 Recipient OK",
        b"250 2.1.5 Recipient OK",
        b"452 4.5.3 Too many recipients",
    ]


def test_too_many_errors_closes_with_421() -> None:
    limits = replace(SMTPLimits(), errors=3)
    run = converse(b"EHLO a\r\nFOO\r\nBAR\r\nBAZ\r\nNOOP\r\n", limits=limits)
    assert replies(run)[-4:] == [
        b"500 5.5.2 Syntax error, command unrecognized",
        b"500 5.5.2 Syntax error, command unrecognized",
        b"500 5.5.2 Syntax error, command unrecognized",
        b"421 4.7.0 Too many errors, closing transmission channel",
    ]
    assert Close(R.TOO_MANY_ERRORS) in run.events
    assert run.conn.state is State.CLOSED


def test_message_too_big_is_read_to_its_end_then_refused() -> None:
    limits = replace(SMTPLimits(), message_size=20)
    run = converse(
        b"EHLO a\r\nMAIL FROM:<a@b.org>\r\nRCPT TO:<x@y.org>\r\nDATA\r\n"
        + b"0123456789\r\n" * 4
        + b"MAIL FROM:<evil@x.org>\r\n.\r\nNOOP\r\n",
        limits=limits,
    )
    assert replies(run)[-3:] == [
        b"354 Start mail input; end with <CRLF>.<CRLF>",
        b"552 5.3.4 Message too big for system",
        b"250 2.0.0 OK",
    ]
    assert MessageAborted(R.MESSAGE_TOO_BIG) in run.events
    assert not any(isinstance(ev, MessageEnd) for ev in run.events)
    assert sum(isinstance(ev, MailFrom) for ev in run.events) == 1


def test_http_request_is_cut_off() -> None:
    run = converse(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert replies(run) == [b"221 2.7.0 This is an SMTP server, not a web server"]
    assert run.events == [Close(R.HTTP_COMMAND)]


def test_bare_lf_in_a_command() -> None:
    # The line runs to the CRLF; a bare LF or CR inside spoils all of it.
    run = converse(b"EHLO a\r\nNOOP\nNOOP\r\nNOOP\rNOOP\r\nNOOP\r\n")
    assert replies(run)[-3:] == [
        b"500 5.5.2 Bare CR or LF in command",
        b"500 5.5.2 Bare CR or LF in command",
        b"250 2.0.0 OK",
    ]
    limits = replace(SMTPLimits(), allow_bare_lf_commands=True)
    run = converse(b"EHLO a\nNOOP\nNOOP\r\n", limits=limits)
    assert replies(run)[-2:] == [b"250 2.0.0 OK", b"250 2.0.0 OK"]


# ------------------------------------------------------------------ SMTP smuggling

TRANSACTION = b"EHLO a\r\nMAIL FROM:<a@b.org>\r\nRCPT TO:<x@y.org>\r\nDATA\r\n"
SMUGGLED = b"MAIL FROM:<ceo@bank.example>\r\nRCPT TO:<x@y.org>\r\nDATA\r\nspoofed\r\n"

# Every end-of-data imitation from the SEC Consult write-up, SMTP-Smuggling-Tools
# and smtpsmug (RELIABILITY.md 3.1).
SMUGGLING_VARIANTS = [
    b"\n.\n",
    b"\n.\r",
    b"\r.\n",
    b"\r.\r",
    b"\n.\r\n",
    b"\r\n.\n",
    b"\r.\r\n",
    b"\r\n.\r",
    b"\r\n\x00.\r\n",
    b"\r\n.\x00\r\n",
    b"\r\n.\r\r\n",
    b"\r\r\n.\r\r\n",
]


@pytest.mark.parametrize("fake_end", SMUGGLING_VARIANTS)
def test_smuggled_end_of_data_never_ends_the_message(fake_end: bytes) -> None:
    data = TRANSACTION + b"Subject: x\r\n\r\nbody" + fake_end + SMUGGLED + b"\r\n.\r\nQUIT\r\n"
    run = converse(data)
    mails = [ev for ev in run.events if isinstance(ev, MailFrom)]
    assert mails == [MailFrom("a@b.org", {})]
    lines = replies(run)
    has_bare = b"\n" in fake_end.replace(b"\r\n", b"") or b"\r" in fake_end.replace(b"\r\n", b"")
    if has_bare:
        # Refused with a 5xx, after reading to the real end.
        assert lines[-2] == b"550 5.5.2 Bare CR or LF in message body (SMTP smuggling protection)"
        assert not any(isinstance(ev, MessageEnd) for ev in run.events)
    else:
        # NUL variants: no bare line end, so one message holding the NUL bytes.
        assert lines[-2] == b"250 2.0.0 Message accepted for delivery"
        assert SMUGGLED in run.body
    assert lines[-1] == b"221 2.0.0 mx.example.org closing transmission"


@pytest.mark.parametrize("fake_end", SMUGGLING_VARIANTS)
def test_smuggling_with_normalize_quirk_keeps_one_message(fake_end: bytes) -> None:
    limits = replace(SMTPLimits(), normalize_bare_lf_body=True)
    data = TRANSACTION + b"body" + fake_end + SMUGGLED + b"\r\n.\r\nQUIT\r\n"
    run = converse(data, limits=limits)
    assert [ev for ev in run.events if isinstance(ev, MailFrom)] == [MailFrom("a@b.org", {})]
    assert replies(run)[-2] == b"250 2.0.0 Message accepted for delivery"
    assert b"MAIL FROM:<ceo@bank.example>" in run.body
    assert b"\n" not in run.body.replace(b"\r\n", b"")
    assert b"\r" not in run.body.replace(b"\r\n", b"")


def test_empty_message_and_dot_stuffed_first_line() -> None:
    run = converse(TRANSACTION + b".\r\n")
    assert [ev for ev in run.events if isinstance(ev, MessageEnd)] == [MessageEnd(0, 1)]
    run = converse(TRANSACTION + b"..x\r\n.\r\n")
    assert run.body == b".x\r\n"


# ------------------------------------------------------------------ BDAT


def test_bdat_chunks_mixed_with_pipelining() -> None:
    run = converse(
        b"EHLO a\r\nMAIL FROM:<a@b.org>\r\nRCPT TO:<x@y.org>\r\n"
        b"BDAT 15\r\nQUIT\r\n.\r\nDATA\r\nBDAT 5 LAST\r\nhello"
        b"MAIL FROM:<>\r\nRCPT TO:<x@y.org>\r\nBDAT 0 LAST\r\nQUIT\r\n"
    )
    assert replies(run)[8:] == [
        b"250 2.1.0 Sender OK",
        b"250 2.1.5 Recipient OK",
        b"250 2.0.0 15 octets received",
        b"250 2.0.0 Message accepted for delivery",
        b"250 2.1.0 Sender OK",
        b"250 2.1.5 Recipient OK",
        b"250 2.0.0 Message accepted for delivery",
        b"221 2.0.0 mx.example.org closing transmission",
    ]
    ends = [ev for ev in run.events if isinstance(ev, MessageEnd)]
    assert ends == [MessageEnd(20, 1), MessageEnd(0, 1)]
    assert run.body == b"QUIT\r\n.\r\nDATA\r\nhello"
    assert run.events.count(BodyStart(bdat=True)) == 2


def test_refused_bdat_chunks_are_skipped_not_executed() -> None:
    run = converse(
        b"BDAT 6\r\nQUIT\r\nEHLO a\r\nBDAT 6 LAST\r\nQUIT\r\nMAIL FROM:<a@b.org>\r\n"
        b"BDAT 6\r\nQUIT\r\nRCPT TO:<x@y.org>\r\nDATA\r\n.\r\nBDAT 1\r\nx"
    )
    assert replies(run)[:1] + replies(run)[9:] == [
        b"503 5.5.1 Send EHLO or HELO first",
        b"503 5.5.1 Need MAIL command",
        b"250 2.1.0 Sender OK",
        b"554 5.5.1 No valid recipients",
        b"250 2.1.5 Recipient OK",
        b"354 Start mail input; end with <CRLF>.<CRLF>",
        b"250 2.0.0 Message accepted for delivery",
        b"503 5.5.1 Need MAIL command",
    ]
    assert not any(isinstance(ev, Close) for ev in run.events)


def test_data_after_bdat_and_bdat_syntax_error() -> None:
    run = converse(
        b"EHLO a\r\nMAIL FROM:<a@b.org>\r\nRCPT TO:<x@y.org>\r\n"
        b"BDAT 1\r\nxDATA\r\nBDAT x\r\nNOOP\r\n"
    )
    assert replies(run)[-3:] == [
        b"250 2.0.0 1 octets received",
        b"503 5.5.1 DATA not allowed after BDAT",
        b"501 5.5.4 Syntax: BDAT chunk-size [LAST]; closing connection",
    ]
    assert run.events[-1] == Close(R.BDAT_SYNTAX)


def test_bdat_over_the_size_limit() -> None:
    limits = replace(SMTPLimits(), message_size=10)
    run = converse(
        b"EHLO a\r\nMAIL FROM:<a@b.org>\r\nRCPT TO:<x@y.org>\r\nBDAT 8\r\n12345678"
        b"BDAT 8 LAST\r\n12345678NOOP\r\n",
        limits=limits,
    )
    assert replies(run)[-3:] == [
        b"250 2.0.0 8 octets received",
        b"552 5.3.4 Message too big for system",
        b"250 2.0.0 OK",
    ]
    assert run.body == b"12345678"


# ------------------------------------------------------------------ STARTTLS


def test_starttls_discards_pipelined_plaintext_and_restarts() -> None:
    run = Run(
        [
            b"EHLO a\r\nSTARTTLS\r\nMAIL FROM:<injected@evil.org>\r\n",
            b"MAIL FROM:<a@b.org>\r\nEHLO b\r\nSTARTTLS\r\n",
        ],
        make=lambda: ServerConnection(HOST, tls_available=True, auth_mechanisms=["PLAIN"]),
    )
    lines = replies(run)
    assert lines[9] == b"220 2.0.0 Ready to start TLS"
    assert lines[10] == b"503 5.5.1 Send EHLO or HELO first"
    assert lines[-2] == b"250 AUTH PLAIN"
    assert b"250-STARTTLS" not in lines[11:]
    assert lines[-1] == b"503 5.5.1 TLS already active"
    assert not any(isinstance(ev, MailFrom) for ev in run.events)
    assert run.conn.tls_active


def test_starttls_only_outside_a_transaction() -> None:
    run = converse(b"STARTTLS\r\nEHLO a\r\nMAIL FROM:<>\r\nSTARTTLS\r\n", tls_available=True)
    assert replies(run)[0] == b"503 5.5.1 Send EHLO or HELO first"
    assert replies(run)[-1] == b"503 5.5.1 Bad sequence of commands"


# ------------------------------------------------------------------ AUTH


def _b64(data: bytes) -> bytes:
    return base64.b64encode(data)


AUTH_MECHS = ["PLAIN", "LOGIN", "SCRAM-SHA-256"]


def test_auth_plain_with_initial_response() -> None:
    run = converse(
        b"EHLO a\r\nAUTH PLAIN " + _b64(b"\0alice\0wonderland") + b"\r\nAUTH PLAIN\r\n",
        auth_mechanisms=AUTH_MECHS,
        tls_active=True,
    )
    assert replies(run)[-2:] == [
        b"235 2.7.0 Authentication successful",
        b"503 5.5.1 Already authenticated",
    ]
    assert Authenticated("alice", "") in run.events
    assert run.conn.authenticated == "alice"


def test_auth_plain_without_initial_response_and_failure() -> None:
    run = converse(
        b"EHLO a\r\nAUTH PLAIN\r\n" + _b64(b"\0alice\0wrong") + b"\r\n",
        auth_mechanisms=AUTH_MECHS,
        tls_active=True,
    )
    assert replies(run)[-2:] == [b"334 ", b"535 5.7.8 Authentication credentials invalid"]
    run = converse(
        b"EHLO a\r\nAUTH PLAIN " + _b64(b"\0bob\0wonderland") + b"\r\n",
        auth_mechanisms=AUTH_MECHS,
        tls_active=True,
    )
    assert replies(run)[-1] == b"535 5.7.8 Authentication credentials invalid"


def test_auth_login() -> None:
    run = converse(
        b"EHLO a\r\nAUTH LOGIN\r\n" + _b64(b"alice") + b"\r\n" + _b64(b"wonderland") + b"\r\n",
        auth_mechanisms=AUTH_MECHS,
        tls_active=True,
    )
    assert replies(run)[-3:] == [
        b"334 " + _b64(b"Username:"),
        b"334 " + _b64(b"Password:"),
        b"235 2.7.0 Authentication successful",
    ]


@pytest.mark.parametrize(
    ("lines", "reply"),
    [
        (b"AUTH LOGIN\r\n*\r\n", b"501 5.0.0 Authentication cancelled"),
        (b"AUTH LOGIN\r\n!!!\r\n", b"501 5.5.2 Cannot decode response"),
        (b"AUTH LOGIN\r\nYQ==\nYQ==\r\n", b"500 5.5.2 Bare CR or LF in command"),
        (b"AUTH PLAIN !!!\r\n", b"501 5.5.2 Cannot decode response"),
        (b"AUTH GSSAPI\r\n", b"504 5.5.4 Unrecognized authentication type"),
        (b"AUTH\r\n", b"501 5.5.4 Syntax: AUTH mechanism [initial-response]"),
        (b"MAIL FROM:<>\r\nAUTH PLAIN\r\n", b"503 5.5.1 Bad sequence of commands"),
    ],
)
def test_auth_errors(lines: bytes, reply: bytes) -> None:
    run = converse(b"EHLO a\r\n" + lines, auth_mechanisms=AUTH_MECHS, tls_active=True)
    assert replies(run)[-1] == reply


def test_auth_needs_tls_unless_allowed() -> None:
    run = converse(b"EHLO a\r\nAUTH PLAIN AGFsaWNlAHdvbmRlcmxhbmQ=\r\n", auth_mechanisms=["PLAIN"])
    assert (
        replies(run)[-1] == b"538 5.7.11 Encryption required for requested authentication mechanism"
    )


def test_auth_line_limit() -> None:
    limits = replace(SMTPLimits(), auth_line=100)
    run = converse(
        b"EHLO a\r\nAUTH LOGIN\r\n" + b"A" * 200 + b"\r\nNOOP\r\n",
        limits=limits,
        auth_mechanisms=AUTH_MECHS,
        tls_active=True,
    )
    assert replies(run)[-2:] == [
        b"500 5.5.6 Authentication exchange line is too long",
        b"250 2.0.0 OK",
    ]


def test_auth_scram_sha_256() -> None:
    client = sasl.client_mechanism("SCRAM-SHA-256", "alice", "wonderland")
    first = client.initial()
    assert first is not None
    conn = ServerConnection(HOST, tls_active=True, auth_mechanisms=["SCRAM-SHA-256"])
    conn.send(R.greeting(HOST))
    conn.receive_data(b"EHLO a\r\nAUTH SCRAM-SHA-256 " + _b64(first) + b"\r\n")
    assert isinstance(conn.next_event(), Ehlo)
    conn.send(R.OK.with_text(HOST))
    ev = conn.next_event()
    assert ev == AuthScramSecrets("alice")
    conn.auth_scram_secrets(sasl.scram_secrets_for("wonderland", salt=b"s" * 16, iterations=4096))
    assert conn.next_event() is NEED_DATA
    challenge = conn.data_to_send().split(b"\r\n")[-2]
    assert challenge.startswith(b"334 ")
    final = client.respond(base64.b64decode(challenge[4:]))
    conn.receive_data(_b64(final) + b"\r\n")
    assert conn.next_event() is NEED_DATA
    server_final = conn.data_to_send()
    assert server_final.startswith(b"334 ")
    assert client.verify_final(base64.b64decode(server_final[4:-2]))
    conn.receive_data(b"\r\n")
    assert conn.next_event() == Authenticated("alice", "")
    assert conn.data_to_send() == b"235 2.7.0 Authentication successful\r\n"


def test_auth_credential_source_failure() -> None:
    conn = ServerConnection(HOST, tls_active=True, auth_mechanisms=["PLAIN"])
    conn.send(R.greeting(HOST))
    conn.receive_data(b"EHLO a\r\nAUTH PLAIN " + _b64(b"\0alice\0x") + b"\r\nNOOP\r\n")
    assert isinstance(conn.next_event(), Ehlo)
    conn.send(R.OK.with_text(HOST))
    assert isinstance(conn.next_event(), AuthPassword)
    conn.auth_unavailable()
    assert conn.next_event() is NEED_DATA
    assert conn.data_to_send().endswith(
        b"454 4.7.0 Temporary authentication failure\r\n250 2.0.0 OK\r\n"
    )


# ------------------------------------------------------------------ LMTP


def test_lmtp_one_reply_per_recipient() -> None:
    def answer(ev: Event) -> Sequence[Reply] | None:
        if isinstance(ev, MessageEnd):
            return [R.MESSAGE_ACCEPTED, Reply(452, "4.2.2", "Mailbox full")]
        return default_answer(ev)

    run = converse(
        b"LHLO a\r\nMAIL FROM:<a@b.org>\r\nRCPT TO:<x@y.org>\r\nRCPT TO:<nobody@y.org>\r\n"
        b"RCPT TO:<z@y.org>\r\nDATA\r\nhi\r\n.\r\nEHLO a\r\nQUIT\r\n",
        answer,
        lmtp=True,
    )
    assert replies(run)[-5:] == [
        b"354 Start mail input; end with <CRLF>.<CRLF>",
        b"250 2.0.0 Message accepted for delivery",
        b"452 4.2.2 Mailbox full",
        b"500 5.5.2 Syntax error, command unrecognized",
        b"221 2.0.0 mx.example.org closing transmission",
    ]
    assert [ev for ev in run.events if isinstance(ev, MessageEnd)] == [MessageEnd(4, 2)]


def test_lmtp_bdat_last_gets_one_reply_per_recipient() -> None:
    run = converse(
        b"LHLO a\r\nMAIL FROM:<a@b.org>\r\nRCPT TO:<x@y.org>\r\nRCPT TO:<z@y.org>\r\n"
        b"BDAT 3\r\nabcBDAT 2 LAST\r\nde",
        lmtp=True,
    )
    assert replies(run)[-3:] == [
        b"250 2.0.0 3 octets received",
        b"250 2.0.0 Message accepted for delivery",
        b"250 2.0.0 Message accepted for delivery",
    ]
    assert run.body == b"abcde"


# ------------------------------------------------------------------ tables and helpers


def test_transition_table_covers_every_state() -> None:
    targets = set(TRANSITIONS.values())
    sources = {s for s, _ in TRANSITIONS}
    assert sources | targets == set(State)
    for states in ALLOWED.values():
        assert states <= set(State)


def test_reply_rendering() -> None:
    reply = Reply(250, "2.0.0", "first\nsecond\nlast")
    assert reply.to_bytes() == b"250-2.0.0 first\r\n250-2.0.0 second\r\n250 2.0.0 last\r\n"
    assert reply.to_bytes(enhanced=False) == b"250-first\r\n250-second\r\n250 last\r\n"
    with pytest.raises(ValueError, match="CR"):
        Reply(250, None, "a\rb")
    with pytest.raises(ValueError, match="does not match"):
        Reply(250, "5.0.0", "x")
    with pytest.raises(ValueError, match="range"):
        Reply(999, None, "x")


def test_every_catalog_reply_is_well_formed() -> None:
    for name in R.__all__:
        value = getattr(R, name)
        if isinstance(value, Reply):
            assert value.to_bytes().endswith(b"\r\n")
            if value.enhanced is not None:
                klass, subject, detail = value.enhanced.split(".")
                assert klass == str(value.code)[0] and subject.isdigit() and detail.isdigit()


def test_received_header() -> None:
    now = datetime(2026, 11, 26, 19, 39, 13, tzinfo=timezone.utc)
    header = received_header(
        helo="client.example (evil)",
        peer_ip="192.0.2.7",
        hostname=HOST,
        protocol="ESMTPS",
        queue_id="abc123",
        recipient="x@y.org",
        now=now,
    )
    assert header == (
        b"Received: from client.example??evil? ([192.0.2.7])\r\n"
        b"\tby mx.example.org (mailcore) with ESMTPS id abc123\r\n"
        b"\tfor <x@y.org>; Thu, 26 Nov 2026 19:39:13 +0000\r\n"
    )
    header = received_header(
        helo="c",
        peer_ip="::1",
        hostname=HOST,
        protocol="LMTP",
        queue_id="q",
        recipient=None,
        now=now,
    )
    assert header.endswith(b"id q;\r\n\tThu, 26 Nov 2026 19:39:13 +0000\r\n")
    # Seconds since the epoch (what the server passes) give the same date.
    assert header == received_header(
        helo="c",
        peer_ip="::1",
        hostname=HOST,
        protocol="LMTP",
        queue_id="q",
        recipient=None,
        now=now.timestamp() + 0.75,
    )


def test_xtext() -> None:
    assert decode_xtext("a+2Bb+3D") == "a+b="
    for bad in ("a+", "a+2b", "a+0D", "+00"):
        with pytest.raises(ValueError, match="xtext"):
            decode_xtext(bad)


@settings(max_examples=150)
@given(st.lists(st.binary(max_size=40), max_size=12), st.booleans())
def test_arbitrary_input_never_breaks_the_machine(chunks: list[bytes], lmtp: bool) -> None:
    # RELIABILITY R11: whatever the bytes, the machine answers or closes, never raises.
    prefix = b"LHLO a\r\n" if lmtp else b"EHLO a\r\n"
    run = Run(
        [prefix + b"MAIL FROM:<a@b.org>\r\nRCPT TO:<c@d.org>\r\n", *chunks],
        make=lambda: ServerConnection(HOST, lmtp=lmtp, auth_mechanisms=["PLAIN"], tls_active=True),
    )
    assert run.wire.startswith(GREETING)
    assert run.wire.endswith(b"\r\n")


# ------------------------------------------------------------------ text line limit


@pytest.mark.parametrize("content", [998, 999, 2500])
def test_data_line_over_the_text_line_limit_is_refused_at_the_end(content: int) -> None:
    # RFC 5321 4.5.3.1.6: 1000 octets with the CRLF. The body is read to its
    # end (the smuggled MAIL inside is data), then 500 5.5.6; the session goes on.
    body = b"short\r\n" + b"x" * content + b"\r\nMAIL FROM:<evil@x.org>\r\nend\r\n"
    run = converse(TRANSACTION + body + b".\r\nNOOP\r\n")
    if content <= 998:
        assert replies(run)[-2:] == [b"250 2.0.0 Message accepted for delivery", b"250 2.0.0 OK"]
        [end] = [ev for ev in run.merged if isinstance(ev, MessageEnd)]
        assert end.size == len(body)
        return
    assert replies(run)[-3:] == [
        b"354 Start mail input; end with <CRLF>.<CRLF>",
        b"500 5.5.6 Message text line too long",
        b"250 2.0.0 OK",
    ]
    assert MessageAborted(R.TEXT_LINE_TOO_LONG) in run.events
    assert not any(isinstance(ev, MessageEnd) for ev in run.events)
    assert sum(isinstance(ev, MailFrom) for ev in run.events) == 1


def test_long_line_check_spans_chunks_and_resets_per_message() -> None:
    limits = replace(SMTPLimits(), text_line=20)
    second = b"MAIL FROM:<a@b.org>\r\nRCPT TO:<x@y.org>\r\nDATA\r\n"
    run = converse(
        TRANSACTION
        + b"a" * 18
        + b"\r\n"
        + b".\r\n"  # 18 + CRLF = 20: fits
        + second
        + b"b" * 10
        + b"\r\n"
        + b"c" * 19
        + b"\r\n.\r\n"  # 21 octets: refused
        + second
        + b"d" * 5
        + b"\r\n.\r\n",  # a new message starts afresh
        limits=limits,
    )
    accepted = b"250 2.0.0 Message accepted for delivery"
    assert replies(run)[-9:] == [
        accepted,
        b"250 2.1.0 Sender OK",
        b"250 2.1.5 Recipient OK",
        b"354 Start mail input; end with <CRLF>.<CRLF>",
        b"500 5.5.6 Message text line too long",
        b"250 2.1.0 Sender OK",
        b"250 2.1.5 Recipient OK",
        b"354 Start mail input; end with <CRLF>.<CRLF>",
        accepted,
    ]
    ends = [ev for ev in run.events if isinstance(ev, MessageEnd)]
    assert len(ends) == 2
    assert [ev for ev in run.events if isinstance(ev, MessageAborted)] == [
        MessageAborted(R.TEXT_LINE_TOO_LONG)
    ]


def test_bdat_line_over_the_limit_is_refused_after_last() -> None:
    limits = replace(SMTPLimits(), text_line=20)
    run = converse(
        b"EHLO a\r\nMAIL FROM:<a@b.org>\r\nRCPT TO:<x@y.org>\r\n"
        b"BDAT 12\r\n" + b"e" * 12 + b"BDAT 14 LAST\r\n" + b"f" * 10 + b"\r\nok"
        b"NOOP\r\n",
        limits=limits,
    )
    assert replies(run)[-3:] == [
        b"250 2.0.0 12 octets received",
        b"500 5.5.6 Message text line too long",
        b"250 2.0.0 OK",
    ]
    assert MessageAborted(R.TEXT_LINE_TOO_LONG) in run.events
    assert not any(isinstance(ev, MessageEnd) for ev in run.events)


def test_ehlo_extensions_follow_each_configuration() -> None:
    # The EHLO reply is remembered per configuration: another size limit,
    # the enhanced-code switch, TLS or AUTH each give their own list, and
    # a handler's own 250 text is kept.
    def ehlo(answer: Answer = default_answer, **kw: object) -> list[bytes]:
        return replies(Run([b"EHLO c\r\n"], answer, lambda: ServerConnection(HOST, **kw)))  # type: ignore[arg-type]

    assert b"250-SIZE 26214400" in ehlo()
    small = ehlo(limits=SMTPLimits(message_size=1000))
    assert b"250-SIZE 1000" in small and b"250 ENHANCEDSTATUSCODES" in small
    plain = ehlo(limits=SMTPLimits(message_size=1000, enhanced_status_codes=False))
    assert plain[-1] == b"250 DSN"
    assert ehlo(tls_available=True)[-1] == b"250 STARTTLS"
    assert ehlo(tls_available=True, tls_active=True)[-1] == b"250 ENHANCEDSTATUSCODES"
    mechs = ehlo(tls_active=True, auth_mechanisms=["plain"])
    assert mechs[-1] == b"250 AUTH PLAIN"
    assert ehlo(auth_mechanisms=["plain"])[-1] == b"250 ENHANCEDSTATUSCODES"  # not in clear
    custom = ehlo(lambda ev: [Reply(250, None, "mx hello")] if isinstance(ev, Ehlo) else None)
    assert custom[0] == b"250-mx hello" and custom[-1] == b"250 ENHANCEDSTATUSCODES"
    assert ehlo()[0] == b"250-mx.example.org"


BDAT_START = b"EHLO a\r\nMAIL FROM:<a@b.org>\r\nRCPT TO:<x@y.org>\r\n"


def test_bdat_bare_line_ends_refused_like_data() -> None:
    # A bare LF in an early chunk: that chunk is acknowledged, the message
    # refused at LAST (as DATA refuses it at the dot).
    run = converse(BDAT_START + b"BDAT 4\r\na\nbcBDAT 3 LAST\r\nx\r\nQUIT\r\n")
    assert replies(run)[-3:] == [
        b"250 2.0.0 4 octets received",
        b"550 5.5.2 Bare CR or LF in message body (SMTP smuggling protection)",
        b"221 2.0.0 mx.example.org closing transmission",
    ]
    assert not any(isinstance(ev, MessageEnd) for ev in run.events)
    # A CRLF cut in two by the chunks is no bare line end.
    run = converse(BDAT_START + b"BDAT 3\r\nab\rBDAT 4 LAST\r\n\ncd\nQUIT\r\n")
    assert replies(run)[-2].startswith(b"550 5.5.2")
    run = converse(BDAT_START + b"BDAT 3\r\nab\rBDAT 5 LAST\r\n\ncd\r\nQUIT\r\n")
    assert replies(run)[-2] == b"250 2.0.0 Message accepted for delivery"
    assert run.body == b"ab\r\ncd\r\n"
    # A CR with no LF after it, at the very end, or before other text.
    for body in (b"BDAT 3 LAST\r\nab\r", b"BDAT 1\r\n\rBDAT 2 LAST\r\nab"):
        run = converse(BDAT_START + body + b"QUIT\r\n")
        assert replies(run)[-2].startswith(b"550 5.5.2"), body


def test_bdat_bare_line_ends_normalized_when_asked() -> None:
    limits = replace(SMTPLimits(), normalize_bare_lf_body=True)
    run = converse(BDAT_START + b"BDAT 4\r\na\nb\rBDAT 4 LAST\r\n\nc\r\rQUIT\r\n", limits=limits)
    assert replies(run)[-2] == b"250 2.0.0 Message accepted for delivery"
    assert run.body == b"a\r\nb\r\nc\r\n\r\n"
