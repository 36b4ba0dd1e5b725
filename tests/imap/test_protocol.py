"""The sans-IO IMAP server machine: every input fed whole, byte by byte and cut in two."""

from __future__ import annotations

import base64

import pytest

from mailcore.errors import LocalProtocolError
from mailcore.imap import command as c
from mailcore.imap import events as ev
from mailcore.imap.protocol import ServerConnection, State
from mailcore.limits import ImapLimits
from tests.helpers import splits


def run(conn: ServerConnection, chunks: list[bytes]) -> tuple[list[ev.Event], bytes]:
    """Feed chunks; answer nothing; collect events and output (stops at the first event)."""
    events: list[ev.Event] = []
    out = [conn.data_to_send()]
    for chunk in chunks:
        conn.receive_data(chunk)
        while True:
            e = conn.next_event()
            out.append(conn.data_to_send())
            if e is ev.NeedData.NEED_DATA or e is ev.Paused.PAUSED:
                break
            assert not isinstance(e, (ev.NeedData, ev.Paused))
            events.append(e)
            if isinstance(e, ev.Closed):
                return events, b"".join(out)
            if isinstance(e, ev.Request):
                conn.complete(e.command.tag, "OK", "done")
            elif isinstance(e, ev.LoginRequest):
                conn.login_succeeded(e.tag, e.username)
    return events, b"".join(out)


def fresh(**kw: object) -> ServerConnection:
    conn = ServerConnection(hostname="imap.example", **kw)  # type: ignore[arg-type]
    conn.greet()
    conn.data_to_send()
    return conn


def logged_in(**kw: object) -> ServerConnection:
    conn = fresh(allow_plaintext_login=True, **kw)
    run(conn, [b"a LOGIN u p\r\n"])
    assert conn.state is State.AUTHENTICATED
    return conn


def test_greeting_announces_capabilities() -> None:
    conn = ServerConnection(hostname="imap.example", tls_available=True)
    conn.greet()
    greeting = conn.data_to_send()
    assert greeting.startswith(b"* OK [CAPABILITY IMAP4rev1 IMAP4rev2 ")
    assert b" STARTTLS LOGINDISABLED" in greeting
    # PLAIN is not offered in the clear.
    assert b"AUTH=PLAIN" not in greeting
    assert greeting.endswith(b"] imap.example IMAP server ready\r\n")


@pytest.mark.parametrize("chunks", list(splits(b"a CAPABILITY\r\nb NOOP\r\nc LOGOUT\r\n")))
def test_pipelined_commands(chunks: list[bytes]) -> None:
    conn = fresh(tls_active=True)
    events, out = run(conn, chunks)
    assert out.startswith(b"* CAPABILITY IMAP4rev1 ")
    assert b"\r\na OK CAPABILITY completed\r\n" in out
    assert b"AUTH=PLAIN" in out and b"LOGINDISABLED" not in out
    assert isinstance(events[0], ev.Request) and isinstance(events[0].command, c.Noop)
    assert out.endswith(b"b OK done\r\n* BYE imap.example logging out\r\nc OK LOGOUT completed\r\n")
    assert isinstance(events[-1], ev.Closed)
    assert conn.state is State.LOGOUT


@pytest.mark.parametrize("chunks", list(splits(b'a LOGIN {4}\r\nj"ff {3+}\r\np w\r\n')))
def test_login_with_literals_split_anywhere(chunks: list[bytes]) -> None:
    conn = fresh(allow_plaintext_login=True)
    events, out = run(conn, chunks)
    # The synchronising literal gets "+ Ready" before its bytes are read.
    assert out.startswith(b"+ Ready for literal data\r\n")
    assert events == [ev.LoginRequest("a", 'j"ff', "p w")]
    assert out.endswith(
        b"a OK [CAPABILITY IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ENABLE IDLE "
        b"NAMESPACE UIDPLUS MOVE UNSELECT CHILDREN SPECIAL-USE LIST-EXTENDED "
        b"LIST-STATUS ESEARCH SEARCHRES STATUS=SIZE UTF8=ACCEPT ID] Logged in\r\n"
    )


def test_login_refused_without_tls() -> None:
    conn = fresh()
    events, out = run(conn, [b"a LOGIN u p\r\n"])
    assert events == []
    assert out == b"a NO [PRIVACYREQUIRED] LOGIN is disabled without TLS; use STARTTLS\r\n"
    assert conn.state is State.NOT_AUTHENTICATED


def test_login_failure_stays_unauthenticated() -> None:
    conn = fresh(allow_plaintext_login=True)
    conn.receive_data(b"a LOGIN u p\r\n")
    e = conn.next_event()
    assert e == ev.LoginRequest("a", "u", "p")
    assert conn.next_event() is ev.Paused.PAUSED
    conn.login_failed("a")
    assert conn.data_to_send() == b"a NO [AUTHENTICATIONFAILED] Authentication failed\r\n"
    assert conn.state is State.NOT_AUTHENTICATED


@pytest.mark.parametrize("chunks", list(splits(b"a STARTTLS\r\nb LOGIN u p\r\n")))
def test_starttls_discards_pipelined_plaintext(chunks: list[bytes]) -> None:
    conn = fresh(tls_available=True, allow_plaintext_login=False)
    out = [b""]
    events = []
    for chunk in chunks:
        conn.receive_data(chunk)
        e = conn.next_event()
        out.append(conn.data_to_send())
        if isinstance(e, ev.StartTLS):
            events.append(e)
    assert events == [ev.StartTLS("a")]
    assert b"".join(out) == b"a OK Begin TLS negotiation now\r\n"
    conn.tls_started()
    # Nothing of "b LOGIN" survives; new input is read normally.
    assert conn.next_event() is ev.NeedData.NEED_DATA
    conn.receive_data(b"c CAPABILITY\r\n")
    assert conn.next_event() is ev.NeedData.NEED_DATA
    caps = conn.data_to_send()
    assert b"STARTTLS" not in caps and b"AUTH=PLAIN" in caps and b"LOGINDISABLED" not in caps


def test_authenticate_plain_with_initial_response() -> None:
    conn = fresh(tls_active=True)
    ir = base64.b64encode(b"\0jeff\0secret")
    conn.receive_data(b"a AUTHENTICATE PLAIN " + ir + b"\r\n")
    assert conn.next_event() == ev.AuthStart("a", "PLAIN", b"\0jeff\0secret")
    conn.login_succeeded("a", "jeff")
    assert conn.data_to_send().startswith(b"a OK [CAPABILITY ")


@pytest.mark.parametrize("chunks", list(splits(b"a AUTHENTICATE PLAIN\r\nAGpAAHg=\r\n")))
def test_authenticate_challenge_and_response(chunks: list[bytes]) -> None:
    conn = fresh(tls_active=True)
    got: list[ev.Event] = []
    out = []
    for chunk in chunks:
        conn.receive_data(chunk)
        while True:
            e = conn.next_event()
            if e is ev.NeedData.NEED_DATA or e is ev.Paused.PAUSED:
                break
            assert not isinstance(e, (ev.NeedData, ev.Paused))
            got.append(e)
            if isinstance(e, ev.AuthStart):
                conn.challenge("a", b"")
        out.append(conn.data_to_send())
    assert got == [ev.AuthStart("a", "PLAIN", None), ev.AuthResponse("a", b"\0j@\0x")]
    assert b"".join(out) == b"+ \r\n"


def test_authenticate_cancel_and_unknown_mechanism() -> None:
    conn = fresh(tls_active=True)
    conn.receive_data(b"a AUTHENTICATE SCRAM-SHA-1\r\nb AUTHENTICATE PLAIN\r\n*\r\n")
    assert conn.next_event() == ev.AuthStart("b", "PLAIN", None)
    assert conn.data_to_send() == b"a NO [CANNOT] Unsupported authentication mechanism\r\n"
    conn.challenge("b", b"")
    assert conn.next_event() == ev.AuthCancelled("b")
    assert conn.data_to_send() == b"+ \r\nb BAD AUTHENTICATE cancelled\r\n"


def test_commands_in_the_wrong_state_are_bad() -> None:
    conn = fresh(allow_plaintext_login=True)
    _, out = run(conn, [b"a SELECT INBOX\r\nb FETCH 1 FLAGS\r\n"])
    assert out == (
        b"a BAD SELECT not allowed now: Not logged in\r\n"
        b"b BAD FETCH not allowed now: Not logged in\r\n"
    )
    conn = logged_in()
    _, out = run(conn, [b"c FETCH 1 FLAGS\r\nd LOGIN a b\r\n"])
    assert out == (
        b"c BAD FETCH not allowed now: No mailbox selected\r\n"
        b"d BAD LOGIN not allowed now: Already logged in\r\n"
    )


def test_syntax_error_names_offset() -> None:
    conn = fresh()
    _, out = run(conn, [b"a1 FETCH\r\n* x\r\n"])
    assert out.startswith(b"a1 BAD Error in IMAP command: expected ")
    assert out.endswith(b"* BAD Error in IMAP command: expected tag at offset 0\r\n")


def test_too_many_bad_commands_end_the_session() -> None:
    conn = fresh(limits=ImapLimits(bad_commands=3))
    events, out = run(conn, [b"a BOGUS\r\n" * 5])
    assert out.count(b"a BAD") == 3
    assert out.endswith(b"* BYE Too many invalid commands\r\n")
    assert isinstance(events[-1], ev.Closed)


@pytest.mark.parametrize("chunks", list(splits(b"a APPEND INBOX {99999}\r\nb NOOP\r\n")))
def test_append_too_big_refused_before_the_literal(chunks: list[bytes]) -> None:
    conn = logged_in(limits=ImapLimits(literal_size=1000))
    events, out = run(conn, chunks)
    assert out.startswith(b"a NO [TOOBIG] Literal larger than 1000 octets\r\n")
    assert b"+ Ready" not in out
    assert [type(e) for e in events] == [ev.Request]


def test_big_literal_refused_before_login() -> None:
    conn = fresh(allow_plaintext_login=True)
    events, out = run(conn, [b"a LOGIN {9000}\r\n"])
    assert out == b"a BAD Literal too large before authentication\r\n"
    assert events == []


@pytest.mark.parametrize(
    "chunks", list(splits(b"a APPEND INBOX (\\Seen) {5}\r\nHi!\r\n\r\nb NOOP\r\n"))
)
def test_append_literal_split_anywhere(chunks: list[bytes]) -> None:
    conn = logged_in()
    events, out = run(conn, chunks)
    assert out.startswith(b"+ Ready for literal data\r\n")
    first = events[0]
    assert isinstance(first, ev.Request) and isinstance(first.command, c.Append)
    assert first.command.message == b"Hi!\r\n" and first.command.flags == ("\\Seen",)
    assert out.endswith(b"a OK done\r\nb OK done\r\n")


def test_literal_plus_needs_no_continuation() -> None:
    conn = logged_in()
    events, out = run(conn, [b"a APPEND INBOX {3+}\r\nabc\r\n"])
    assert b"+ Ready" not in out
    assert isinstance(events[0], ev.Request)


@pytest.mark.parametrize("chunks", list(splits(b"a IDLE\r\nDONE\r\nb NOOP\r\n")))
def test_idle_and_done(chunks: list[bytes]) -> None:
    conn = logged_in()
    conn.receive_data(b"s SELECT INBOX\r\n")
    e = conn.next_event()
    assert isinstance(e, ev.Request)
    conn.selected()
    conn.complete("s", "OK", "[READ-WRITE] done")
    conn.data_to_send()
    events, out = run(conn, chunks)
    assert events[:2] == [ev.IdleStart("a"), ev.IdleDone("a")]
    assert out == b"+ idling\r\na OK IDLE terminated\r\nb OK done\r\n"


def test_idle_with_something_else_than_done() -> None:
    conn = logged_in()
    events, out = run(conn, [b"a IDLE\r\nNOPE\r\n"])
    assert events == [ev.IdleStart("a"), ev.IdleDone("a")]
    assert out.endswith(b"a BAD Expected DONE\r\n")


def test_enable_rev2_and_utf8() -> None:
    conn = logged_in()
    _, out = run(conn, [b"a ENABLE IMAP4rev2 UTF8=ACCEPT X-UNKNOWN\r\nb ENABLE IMAP4rev2\r\n"])
    assert out == (
        b"* ENABLED IMAP4rev2 UTF8=ACCEPT\r\na OK ENABLE completed\r\n"
        b"* ENABLED\r\nb OK ENABLE completed\r\n"
    )
    assert conn.rev2 and conn.utf8


def test_id_and_namespace() -> None:
    conn = logged_in()
    _, out = run(conn, [b'a ID ("name" "x")\r\nb NAMESPACE\r\n'])
    assert out == (
        b'* ID ("name" "mailcore" "vendor" "mailcore")\r\na OK ID completed\r\n'
        b'* NAMESPACE (("" "/")) NIL NIL\r\nb OK NAMESPACE completed\r\n'
    )


def test_command_too_long_is_bad_and_framing_continues() -> None:
    conn = fresh(limits=ImapLimits(command_length=64, literal_size=16))
    _, out = run(conn, [b"a NOOP " + b"x" * 200 + b"\r\nb CAPABILITY\r\n"])
    assert out.startswith(b"a BAD Command line too long\r\n")
    assert out.endswith(b"b OK CAPABILITY completed\r\n")


def test_autologout_and_eof() -> None:
    conn = logged_in()
    conn.autologout()
    assert conn.data_to_send() == b"* BYE Autologout; idle for too long\r\n"
    assert isinstance(conn.next_event(), ev.Closed)
    conn = logged_in()
    conn.receive_data(b"")
    assert isinstance(conn.next_event(), ev.Closed)


def test_illegal_moves_raise() -> None:
    conn = fresh()
    with pytest.raises(LocalProtocolError):
        conn.selected()
    with pytest.raises(LocalProtocolError):
        conn.complete("x", "OK", "nothing asked")
    with pytest.raises(LocalProtocolError):
        conn.tls_started()


# Before login a literal holds at most unauthenticated_literal octets, also a
# non-synchronising one (RFC 7888): the client sends it without waiting, so it
# is never kept; the session ends with BYE (RFC 7888 section 4, as Dovecot).
_SMALL = ImapLimits(unauthenticated_literal=16)
_BYE_TOOBIG = b"* BYE [TOOBIG] Literal too large before authentication\r\n"


@pytest.mark.parametrize(
    "chunks", list(splits(b"a LOGIN {40+}\r\n" + b"u" * 40 + b" pw\r\nb NOOP\r\n"))
)
def test_nonsync_literal_over_the_login_bound_ends_the_session(chunks: list[bytes]) -> None:
    conn = fresh(allow_plaintext_login=True, limits=_SMALL)
    events, out = run(conn, chunks)
    assert out == _BYE_TOOBIG
    assert [type(e) for e in events] == [ev.Closed]
    assert conn.state is State.LOGOUT


def test_nonsync_literal_over_the_login_bound_is_refused_before_its_octets() -> None:
    conn = fresh(allow_plaintext_login=True)
    events, out = run(conn, [b"a LOGIN {20000000+}\r\n"])
    assert out == _BYE_TOOBIG and [type(e) for e in events] == [ev.Closed]
    # Whatever still arrives is not kept.
    conn.receive_data(b"x" * 1_000_000)
    assert isinstance(conn.next_event(), ev.Closed)
    assert conn.data_to_send() == b""


@pytest.mark.parametrize(
    "chunks", list(splits(b"a LOGIN {4+}\r\nuser {16+}\r\n" + b"p" * 16 + b"\r\nb NOOP\r\n"))
)
def test_nonsync_literals_within_the_login_bound(chunks: list[bytes]) -> None:
    conn = fresh(allow_plaintext_login=True, limits=_SMALL)
    events, out = run(conn, chunks)
    assert events[0] == ev.LoginRequest("a", "user", "p" * 16)
    assert b"a OK [CAPABILITY " in out
    assert out.endswith(b"b OK done\r\n")


@pytest.mark.parametrize(
    "chunks",
    list(splits(b"a LOGIN u p\r\nb APPEND INBOX {40+}\r\n" + b"m" * 40 + b"\r\nc NOOP\r\n")),
)
def test_commands_pipelined_behind_login_get_the_full_literal_size(chunks: list[bytes]) -> None:
    conn = fresh(allow_plaintext_login=True, limits=_SMALL)
    events, out = run(conn, chunks)
    assert isinstance(events[0], ev.LoginRequest)
    append = events[1]
    assert isinstance(append, ev.Request) and isinstance(append.command, c.Append)
    assert append.command.message == b"m" * 40
    assert out.endswith(b"b OK done\r\nc OK done\r\n")
