"""The sans-IO SMTP/LMTP client machine: every input fed whole and split."""

from __future__ import annotations

import ast
import contextlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailcore.errors import LocalProtocolError, RemoteProtocolError
from mailcore.limits import SMTPClientLimits
from mailcore.smtp.client_protocol import (
    NEED_DATA,
    ClientConnection,
    ClientState,
    ReplyReceived,
    Response,
    format_params,
    xtext,
)
from tests.helpers import splits

EHLO_REPLY = (
    b"250-mx.example.org greets you\r\n"
    b"250-PIPELINING\r\n"
    b"250-SIZE 10240000\r\n"
    b"250-8BITMIME\r\n"
    b"250-AUTH=LOGIN\r\n"
    b"250-auth PLAIN login SCRAM-SHA-256\r\n"
    b"250-CHUNKING\r\n"
    b"250-STARTTLS\r\n"
    b"250-ENHANCEDSTATUSCODES\r\n"
    b"250 \r\n"
)


def drain(conn: ClientConnection) -> list[ReplyReceived]:
    out: list[ReplyReceived] = []
    while True:
        event = conn.next_event()
        if event is NEED_DATA:
            return out
        assert isinstance(event, ReplyReceived)
        out.append(event)


def feed(conn: ClientConnection, chunks: list[bytes]) -> list[ReplyReceived]:
    """Feed chunk by chunk and collect events as an adapter would."""
    out: list[ReplyReceived] = []
    for chunk in chunks:
        conn.receive_data(chunk)
        out.extend(drain(conn))
    return out


def ready(*, lmtp: bool = False, ehlo: bytes = EHLO_REPLY) -> ClientConnection:
    conn = ClientConnection(lmtp=lmtp)
    assert feed(conn, [b"220 mx.example.org ESMTP\r\n"])[0].command == "GREETING"
    conn.ehlo("client.example.org")
    (event,) = feed(conn, [ehlo])
    assert event.response.is_success
    return conn


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"220 mx ESMTP ready\r\n", Response(220, None, ("mx ESMTP ready",))),
        (b"220\r\n", Response(220, None, ("",))),
        (
            b"220-first\r\n220-second\r\n220 third\r\n",
            Response(220, None, ("first", "second", "third")),
        ),
        (b"220 2.0.0 ready\r\n", Response(220, "2.0.0", ("ready",))),
        # An enhanced code of another class is text, not a status code.
        (b"220 5.1.1 odd\r\n", Response(220, None, ("5.1.1 odd",))),
        (b"220 caf\xc3\xa9\r\n", Response(220, None, ("café",))),
    ],
)
def test_greeting_whole_and_split(data: bytes, expected: Response) -> None:
    for chunks in splits(data):
        conn = ClientConnection()
        assert feed(conn, chunks) == [ReplyReceived("GREETING", "", expected)]
        assert conn.state is ClientState.READY


def test_ehlo_keywords() -> None:
    for chunks in splits(EHLO_REPLY):
        conn = ClientConnection()
        feed(conn, [b"220 hi\r\n"])
        assert conn.ehlo("me.example") == b"EHLO me.example\r\n"
        (event,) = feed(conn, chunks)
        assert event.command == "EHLO"
        assert conn.esmtp
        assert conn.extensions == {
            "PIPELINING": "",
            "SIZE": "10240000",
            "8BITMIME": "",
            "AUTH": "PLAIN login SCRAM-SHA-256",
            "CHUNKING": "",
            "STARTTLS": "",
            "ENHANCEDSTATUSCODES": "",
        }
        assert conn.auth_mechanisms == ["PLAIN", "LOGIN", "SCRAM-SHA-256"]
        assert conn.max_size == 10240000
        assert conn.has_extension("pipelining")


def test_old_style_auth_and_size_without_limit() -> None:
    conn = ready(ehlo=b"250-mx\r\n250-AUTH=LOGIN PLAIN\r\n250 SIZE 0\r\n")
    assert conn.auth_mechanisms == ["LOGIN", "PLAIN"]
    assert conn.has_extension("SIZE")
    assert conn.max_size is None


def test_multi_line_enhanced_codes_are_taken_off_every_line() -> None:
    conn = ready()
    conn.noop()
    (event,) = feed(conn, [b"250-2.0.0 one\r\n250 2.0.0 two\r\n"])
    assert event.response == Response(250, "2.0.0", ("one", "two"))
    assert str(event.response) == "250 2.0.0 one / two"


PIPELINED_REPLIES = (
    b"250 2.1.0 Sender ok\r\n"
    b"250 2.1.5 Recipient ok\r\n"
    b"550-5.1.1 No such user here\r\n550 5.1.1 (really)\r\n"
    b"250 2.1.5 Recipient ok\r\n"
    b"354 End data with <CR><LF>.<CR><LF>\r\n"
)


def test_pipelined_replies_belong_to_their_commands() -> None:
    for chunks in splits(PIPELINED_REPLIES):
        conn = ready()
        wire = (
            conn.mail("a@example.org", {"SIZE": "100", "BODY": "8BITMIME"})
            + conn.rcpt("b@example.org")
            + conn.rcpt("nobody@example.org")
            + conn.rcpt("c@example.org", {"NOTIFY": "SUCCESS,FAILURE"})
            + conn.data()
        )
        assert wire == (
            b"MAIL FROM:<a@example.org> SIZE=100 BODY=8BITMIME\r\n"
            b"RCPT TO:<b@example.org>\r\n"
            b"RCPT TO:<nobody@example.org>\r\n"
            b"RCPT TO:<c@example.org> NOTIFY=SUCCESS,FAILURE\r\n"
            b"DATA\r\n"
        )
        assert conn.pending == 5
        events = feed(conn, chunks)
        assert [(e.command, e.argument, e.response.code) for e in events] == [
            ("MAIL", "a@example.org", 250),
            ("RCPT", "b@example.org", 250),
            ("RCPT", "nobody@example.org", 550),
            ("RCPT", "c@example.org", 250),
            ("DATA", "", 354),
        ]
        assert events[2].response.text_lines == ("No such user here", "(really)")
        assert conn.accepted_recipients == ["b@example.org", "c@example.org"]
        assert conn.state is ClientState.DATA_BODY
        assert conn.body(b".leading dot\nbare LF") == b"..leading dot\r\nbare LF\r\n.\r\n"
        (final,) = feed(conn, [b"250 2.0.0 queued as 1234\r\n"])
        assert (final.command, final.response.enhanced) == ("BODY", "2.0.0")
        assert conn.state.name == "READY"  # body() moved it on from DATA_BODY


LMTP_REPLIES = b"250 2.1.0 ok\r\n250 2.1.5 ok\r\n550 5.1.1 no\r\n250 2.1.5 ok\r\n354 go\r\n"
LMTP_FINAL = b"250 2.0.0 <a> delivered\r\n452 4.2.2 <c> mailbox full\r\n"


def test_lmtp_one_reply_per_accepted_recipient_after_data() -> None:
    for chunks in splits(LMTP_FINAL):
        conn = ready(lmtp=True)
        sent = conn.mail("s@x") + conn.rcpt("a@x") + conn.rcpt("b@x") + conn.rcpt("c@x")
        assert sent.count(b"\r\n") == 4
        sent += conn.data()
        feed(conn, [LMTP_REPLIES])
        conn.body(b"hello\r\n")
        assert conn.pending == 1
        events = feed(conn, chunks)
        assert [(e.command, e.argument, e.response.code) for e in events] == [
            ("BODY", "a@x", 250),
            ("BODY", "c@x", 452),
        ]
        assert conn.pending == 0


def test_lmtp_bdat_last_answered_per_recipient() -> None:
    conn = ready(lmtp=True)
    conn.mail("s@x")
    conn.rcpt("a@x")
    conn.rcpt("b@x")
    feed(conn, [b"250 ok\r\n250 ok\r\n250 ok\r\n"])
    assert conn.bdat(b"abc\r\n", last=False) == b"BDAT 5\r\nabc\r\n"
    assert conn.bdat(b"", last=True) == b"BDAT 0 LAST\r\n"
    events = feed(conn, [b"250 2.0.0 5 octets\r\n250 ok a\r\n554 no b\r\n"])
    assert [(e.command, e.argument, e.response.code) for e in events] == [
        ("BDAT", "5", 250),
        ("BDAT", "a@x", 250),
        ("BODY", "b@x", 554),
    ]


def test_lmtp_uses_lhlo_and_has_no_helo() -> None:
    conn = ClientConnection(lmtp=True)
    feed(conn, [b"220 lmtp\r\n"])
    assert conn.ehlo("me") == b"LHLO me\r\n"
    with pytest.raises(LocalProtocolError, match="HELO"):
        conn.helo("me")


@pytest.mark.parametrize("injected", [b"250 injected\r\n", b"250-PIPELINING\r\n250 AUTH PLAIN\r\n"])
def test_starttls_discards_what_follows_the_220(injected: bytes) -> None:
    data = b"220 2.0.0 Ready to start TLS\r\n" + injected
    for chunks in splits(data):
        conn = ready()
        assert conn.starttls() == b"STARTTLS\r\n"
        events = feed(conn, chunks)
        assert [(e.command, e.response.code) for e in events] == [("STARTTLS", 220)]
        assert conn.state is ClientState.TLS_HANDSHAKE
        assert conn.discarded == len(injected)
        with pytest.raises(LocalProtocolError):
            conn.ehlo("me")
        conn.tls_started()
        assert conn.extensions == {}
        assert not conn.esmtp
        conn.ehlo("me")
        (event,) = feed(conn, [b"250-mx\r\n250 AUTH SCRAM-SHA-256\r\n"])
        assert event.command == "EHLO"
        assert conn.auth_mechanisms == ["SCRAM-SHA-256"]


def test_starttls_refused_keeps_plaintext_session() -> None:
    conn = ready()
    conn.starttls()
    (event,) = feed(conn, [b"454 4.7.0 TLS not available\r\n"])
    assert event.response.code == 454
    assert conn.state is ClientState.READY
    with pytest.raises(LocalProtocolError):
        conn.tls_started()


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.mail("a@example.org>\r\nRCPT TO:<victim@example.org"),
        lambda c: c.mail("a@example.org\n"),
        lambda c: c.rcpt("b@example.org\x00"),
        lambda c: c.rcpt("b@example.org\r"),
        lambda c: c.ehlo("me\r\nMAIL FROM:<x>"),
        lambda c: c.mail("a@x", {"ENVID": "x\r\nDATA"}),
        lambda c: c.mail("a@x", {"X\r\nRSET": None}),
        lambda c: c.mail("a@x", {"ENVID": "has space"}),
        lambda c: c.mail("a@x", {"ENVID": "a=b"}),
        lambda c: c.mail("a@x", {"-BAD": None}),
        lambda c: c.auth("PLAIN\r\nQUIT", None),
        lambda c: c.auth("plain", None),
    ],
)
def test_arguments_that_would_inject_commands_are_refused(call: object) -> None:
    conn = ready()
    with pytest.raises(LocalProtocolError):
        call(conn)  # type: ignore[operator]
    assert conn.pending == 0


def test_no_pipelining_without_the_extension() -> None:
    conn = ready(ehlo=b"250-mx\r\n250 8BITMIME\r\n")
    conn.mail("a@x")
    with pytest.raises(LocalProtocolError, match="PIPELINING"):
        conn.rcpt("b@x")
    feed(conn, [b"250 ok\r\n"])
    conn.rcpt("b@x")


@pytest.mark.parametrize("verb", ["ehlo", "starttls", "data", "quit", "auth"])
def test_nothing_is_pipelined_behind_a_sync_point(verb: str) -> None:
    conn = ready()
    if verb == "ehlo":
        conn.ehlo("me")
    elif verb == "auth":
        conn.auth("PLAIN", b"\x00u\x00p")
    else:
        getattr(conn, verb)()
    with pytest.raises(LocalProtocolError, match="pipelined"):
        conn.noop()


def test_body_needs_a_354_and_commands_wait_for_the_body() -> None:
    conn = ready()
    with pytest.raises(LocalProtocolError, match="354"):
        conn.body(b"x")
    conn.data()
    feed(conn, [b"354 go\r\n"])
    with pytest.raises(LocalProtocolError, match="DATA_BODY"):
        conn.rset()
    conn.body(b"x")


def test_data_refused_does_not_expect_a_body() -> None:
    conn = ready()
    conn.data()
    feed(conn, [b"554 5.5.1 no valid recipients\r\n"])
    with pytest.raises(LocalProtocolError):
        conn.body(b"x")


def test_auth_exchange_lines() -> None:
    conn = ready()
    assert conn.auth("PLAIN", b"\x00user\x00pass") == b"AUTH PLAIN AHVzZXIAcGFzcw==\r\n"
    feed(conn, [b"235 2.7.0 ok\r\n"])
    assert conn.auth("PLAIN", b"") == b"AUTH PLAIN =\r\n"
    feed(conn, [b"535 no\r\n"])
    assert conn.auth("LOGIN", None) == b"AUTH LOGIN\r\n"
    with pytest.raises(LocalProtocolError, match="challenge"):
        conn.auth_response(b"user")
    (event,) = feed(conn, [b"334 VXNlcm5hbWU6\r\n"])
    assert event.response.text_lines == ("VXNlcm5hbWU6",)
    assert conn.auth_response(b"user") == b"dXNlcg==\r\n"
    (event,) = feed(conn, [b"334 UGFzc3dvcmQ6\r\n"])
    assert event.command == "AUTH-RESPONSE"
    assert conn.auth_cancel() == b"*\r\n"
    (event,) = feed(conn, [b"501 5.0.0 cancelled\r\n"])
    assert event.response.code == 501


def test_bdat_needs_chunking_and_frames_bytes_exactly() -> None:
    conn = ready(ehlo=b"250-mx\r\n250 PIPELINING\r\n")
    with pytest.raises(LocalProtocolError, match="CHUNKING"):
        conn.bdat(b"x", last=True)
    conn = ready()
    body = b"Subject: x\r\n\r\n.not stuffed\r\n"
    assert conn.bdat(body, last=True) == b"BDAT %d LAST\r\n" % len(body) + body


def test_quit_closes_and_421_closes_anywhere() -> None:
    conn = ready()
    conn.quit()
    feed(conn, [b"221 2.0.0 bye\r\n"])
    assert conn.state is ClientState.CLOSED
    with pytest.raises(LocalProtocolError, match="closed"):
        conn.noop()
    conn = ready()
    conn.mail("a@x")
    conn.rcpt("b@x")
    events = feed(conn, [b"421 4.3.2 shutting down\r\n"])
    assert events[0].command == "MAIL"
    assert conn.state is ClientState.CLOSED
    assert conn.pending == 0
    conn = ready()
    (event,) = feed(conn, [b"421 4.4.2 idle too long\r\n"])
    assert event.command == "UNSOLICITED"
    assert conn.state is ClientState.CLOSED


@pytest.mark.parametrize(
    "data",
    [
        b"abc\r\n",
        b"25\r\n",
        b"250x\r\n",
        b"600 no\r\n",
        b"199 no\r\n",
        b"250-a\r\n251 b\r\n",
        b"250 bare LF\n250 x\r\n",
        b"250 bare\rCR\r\n",
        b"250 " + b"x" * 100 + b"\r\n",
        b"250-x\r\n" * 6,
    ],
)
def test_malformed_replies_raise_remote_protocol_error(data: bytes) -> None:
    for chunks in splits(data):
        conn = ClientConnection(limits=SMTPClientLimits(reply_line=64, reply_lines=5))
        feed(conn, [b"220 hi\r\n"])
        conn.noop()
        with pytest.raises(RemoteProtocolError):
            feed(conn, chunks)


def test_unsolicited_reply_is_an_error() -> None:
    conn = ready()
    with pytest.raises(RemoteProtocolError, match="nobody asked"):
        feed(conn, [b"250 surprise\r\n"])


def test_helo_fallback_forgets_extensions() -> None:
    conn = ClientConnection()
    feed(conn, [b"220 old\r\n"])
    conn.ehlo("me")
    (event,) = feed(conn, [b"502 5.5.1 what?\r\n"])
    assert not event.response.is_success
    assert conn.helo("me") == b"HELO me\r\n"
    (event,) = feed(conn, [b"250 old\r\n"])
    assert event.command == "HELO"
    assert conn.extensions == {} and not conn.esmtp


def test_response_classes() -> None:
    assert Response(250, None, ()).is_success
    assert Response(354, None, ()).is_intermediate
    assert Response(450, None, ()).is_transient
    assert Response(550, None, ()).is_permanent
    assert Response(250, None, ("a", "b")).text == "a\nb"


def test_client_machine_does_no_io() -> None:
    path = Path(__file__).resolve().parents[2] / "python/mailcore/smtp/client_protocol.py"
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    assert not names & {"asyncio", "socket", "ssl", "time", "selectors"}


@given(data=st.binary(max_size=300), cut=st.integers(min_value=0, max_value=300))
def test_random_server_bytes_only_ever_raise_remote_protocol_error(data: bytes, cut: int) -> None:
    conn = ready()
    conn.mail("a@x")
    conn.rcpt("b@x")
    conn.data()
    with contextlib.suppress(RemoteProtocolError):
        feed(conn, [data[:cut], data[cut:]])


@given(
    lines=st.lists(
        st.tuples(
            st.sampled_from([250, 251, 452, 550]),
            st.text(max_size=30).filter(lambda t: not any(c in t for c in "\r\n")),
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_generated_multi_line_replies_round_trip(lines: list[tuple[int, str]]) -> None:
    code = lines[0][0]
    wire = b"".join(
        f"{code}{'-' if i < len(lines) - 1 else ' '}{text}\r\n".encode()
        for i, (_, text) in enumerate(lines)
    )
    for chunks in (
        [wire],
        [wire[i : i + 1] for i in range(len(wire))],
    ):
        conn = ready()
        conn.noop()
        (event,) = feed(conn, chunks)
        assert event.response.code == code
        assert len(event.response.text_lines) == len(lines)


@pytest.mark.parametrize(
    ("text", "encoded"),
    [
        # RFC 3461 section 4: "+" and "=" and anything outside "!".."~" are hex.
        ("rfc822;a@example.org", "rfc822;a@example.org"),
        ("a+b=c", "a+2Bb+3Dc"),
        ("with space", "with+20space"),
        ("josé", "jos+C3+A9"),
        ("", ""),
    ],
)
def test_xtext(text: str, encoded: str) -> None:
    assert xtext(text) == encoded
    assert format_params({"ORCPT": xtext(text)} if text else None) == (
        f" ORCPT={encoded}" if text else ""
    )


def test_many_pipelined_replies_in_one_read_are_not_one_long_reply() -> None:
    conn = ClientConnection(limits=SMTPClientLimits(reply_lines=5))
    feed(conn, [b"220 hi\r\n"])
    conn.ehlo("me")
    feed(conn, [b"250-mx\r\n250 PIPELINING\r\n"])
    conn.mail("a@x")
    for i in range(300):
        conn.rcpt(f"r{i}@x")
    events = feed(conn, [b"250 ok\r\n" * 301])
    assert len(events) == 301
    assert conn.accepted_recipients == [f"r{i}@x" for i in range(300)]
    # Four continuation lines and an end line is the most a reply may have.
    conn.noop()
    (event,) = feed(conn, [b"250-1\r\n250-2\r\n250-3\r\n250-4\r\n250 5\r\n"])
    assert len(event.response.text_lines) == 5
