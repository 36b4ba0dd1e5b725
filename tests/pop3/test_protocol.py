"""The sans-IO POP3 server machine, bytes in and bytes out, fed whole and byte by byte."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailcore.errors import LocalProtocolError
from mailcore.limits import POP3Limits
from mailcore.pop3 import events
from mailcore.pop3.protocol import TRANSITIONS, State, TopCutter
from tests.helpers import splits
from tests.pop3.driver import Drop, make_conn, run

GREETING = b"+OK mailcore POP3 ready <42.7@pop.example>\r\n"
SEED_MESSAGE = (
    "Subject: Hola\r\n\r\nHola Meandus:\r\n¿Cómo andan tus cosas?\r\n\r\n¡Nos vemos pronto!\r\n"
).encode()
SECOND = b"Subject: two\r\n\r\n.starts with a dot\r\nline\r\n"


def drop() -> Drop:
    return Drop([SEED_MESSAGE, SECOND])


def session(client: bytes, *, every_split: bool = True, **kw: object) -> tuple[bytes, Drop]:
    """Run ``client`` whole, byte by byte and (optionally) cut at every offset."""
    results = []
    cuts = list(splits(client)) if every_split else [[client], list(map(bytes, zip(client)))]
    for chunks in cuts:
        d = drop()
        results.append((run(make_conn(**kw), chunks, d), d.deleted))
    first = results[0]
    assert all(r == first for r in results)
    d = drop()
    return run(make_conn(**kw), [client], d), d


def test_seed_session() -> None:
    out, d = session(b"USER jeff\r\nPASS password\r\nSTAT\r\nTOP 1 5\r\nQUIT\r\n")
    total = len(SEED_MESSAGE) + len(SECOND)
    assert out == (
        GREETING + b"+OK\r\n"
        b"+OK Logged in, maildrop has 2 messages (" + str(total).encode() + b" octets).\r\n"
        b"+OK 2 " + str(total).encode() + b"\r\n"
        b"+OK\r\n" + SEED_MESSAGE + b".\r\n"
        b"+OK Logging out, 2 messages left.\r\n"
    )
    assert d.deleted == []


def test_transaction_commands_and_dele_only_at_quit() -> None:
    client = (
        b"USER jeff\r\nPASS password\r\nLIST\r\nUIDL\r\nLIST 2\r\nUIDL 1\r\nRETR 2\r\n"
        b"DELE 1\r\nSTAT\r\nLIST\r\nRETR 1\r\nDELE 1\r\nRSET\r\nDELE 2\r\nNOOP\r\nQUIT\r\n"
    )
    out, d = session(client, every_split=False)
    a, b = len(SEED_MESSAGE), len(SECOND)
    expected = (
        GREETING + b"+OK\r\n"
        b"+OK Logged in, maildrop has 2 messages (%d octets).\r\n"
        b"+OK 2 messages (%d octets)\r\n1 %d\r\n2 %d\r\n.\r\n"
        b"+OK\r\n1 1.1\r\n2 1.2\r\n.\r\n"
        b"+OK 2 %d\r\n"
        b"+OK 1 1.1\r\n"
        b"+OK %d octets\r\nSubject: two\r\n\r\n..starts with a dot\r\nline\r\n.\r\n"
        b"+OK Marked to be deleted.\r\n"
        b"+OK 1 %d\r\n"
        b"+OK 1 messages (%d octets)\r\n2 %d\r\n.\r\n"
        b"-ERR Message is deleted.\r\n"
        b"-ERR Message is deleted.\r\n"
        b"+OK 2 messages (%d octets)\r\n"
        b"+OK Marked to be deleted.\r\n"
        b"+OK\r\n"
        b"+OK Logging out, 1 messages left.\r\n"
    ) % (a + b, a + b, a, b, b, b, b, b, b, a + b)
    assert out == expected
    assert d.deleted == [2]


def test_dropped_connection_deletes_nothing() -> None:
    d = drop()
    conn = make_conn()
    run(conn, [b"USER jeff\r\nPASS password\r\nDELE 1\r\nDELE 2\r\n"], d, eof=True)
    assert d.deleted == []
    assert d.events[-1] == events.Closed("eof")
    assert conn.state is State.CLOSED


def test_bad_password_and_unknown_user_get_the_same_reply() -> None:
    bad_pass, _ = session(b"USER jeff\r\nPASS nope\r\n")
    no_user, _ = session(b"USER nobody\r\nPASS password\r\n")
    assert bad_pass == no_user == GREETING + b"+OK\r\n-ERR [AUTH] Authentication failed.\r\n"


def test_failed_logins_close_the_session() -> None:
    d = drop()
    out = run(make_conn(), [b"USER a\r\nPASS b\r\n" * 3 + b"USER jeff\r\nPASS password\r\n"], d)
    assert out.count(b"-ERR [AUTH] Authentication failed.") == 3
    assert out.endswith(b"-ERR Too many failed logins.\r\n")
    assert b"Logged in" not in out


def test_in_use_on_locked_maildrop() -> None:
    d = drop()
    d.locked = True
    out = run(make_conn(), [b"USER jeff\r\nPASS password\r\n"], d)
    assert out.endswith(b"-ERR [IN-USE] Mailbox is locked by another POP3 session.\r\n")


def test_user_pass_refused_on_plaintext_unless_allowed() -> None:
    out, _ = session(
        b"CAPA\r\nUSER jeff\r\nPASS password\r\nAUTH PLAIN AGplZmYAcGFzc3dvcmQ=\r\n",
        allow_plaintext_auth=False,
        tls_available=True,
        every_split=False,
    )
    assert b"\r\nUSER\r\n" not in out
    assert b"SASL PLAIN" not in out
    assert b"STLS\r\n" in out
    assert out.endswith(
        b"-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.\r\n"
        b"-ERR No username given.\r\n"
        b"-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) connections.\r\n"
    )


def test_capa_lists_extensions() -> None:
    out, _ = session(b"CAPA\r\n", tls_available=True, expire="NEVER", login_delay=60)
    assert out == GREETING + (
        b"+OK Capability list follows\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n"
        b"PIPELINING\r\nUTF8\r\nUSER\r\nSASL PLAIN\r\nSTLS\r\nEXPIRE NEVER\r\nLOGIN-DELAY 60\r\n"
        b"IMPLEMENTATION mailcore\r\n.\r\n"
    )


def test_stls_discards_pipelined_plaintext() -> None:
    # The STARTTLS-injection probe from RELIABILITY.md: "STLS\r\nCAPA\r\n".
    d = drop()
    conn = make_conn(tls_available=True, allow_plaintext_auth=False)
    out = run(conn, [b"STLS\r\nCAPA\r\n", b"QUIT\r\n"], d)
    assert out == GREETING + b"+OK Begin TLS negotiation now.\r\n+OK Logging out.\r\n"
    assert conn.tls_active
    assert isinstance(d.events[0], events.StartTLS)


def test_stls_pauses_until_the_handshake() -> None:
    conn = make_conn(tls_available=True)
    conn.receive_data(b"STLS\r\nUSER jeff\r\n")
    assert conn.next_event() == events.StartTLS()
    assert conn.next_event() is events.Paused.PAUSED
    conn.receive_data(b"PASS injected\r\n")
    conn.tls_started()
    assert conn.next_event() is events.NeedData.NEED_DATA
    out = conn.data_to_send()
    assert out.endswith(b"+OK Begin TLS negotiation now.\r\n")
    conn.receive_data(b"STLS\r\n")
    assert conn.next_event() is events.NeedData.NEED_DATA
    assert conn.data_to_send() == b"-ERR TLS is already active.\r\n"


def test_apop() -> None:
    digest = hashlib.md5(b"<42.7@pop.example>password").hexdigest().encode()
    out, _ = session(b"APOP jeff " + digest + b"\r\nSTAT\r\n", every_split=False)
    total = len(SEED_MESSAGE) + len(SECOND)
    assert out.endswith(b" octets).\r\n+OK 2 %d\r\n" % total)
    wrong = hashlib.md5(b"<42.8@pop.example>password").hexdigest().encode()
    out, _ = session(b"APOP jeff " + wrong + b"\r\n", every_split=False)
    assert out.endswith(b"-ERR [AUTH] Authentication failed.\r\n")
    out, _ = session(b"APOP jeff xyz\r\n", every_split=False)
    assert out.endswith(b"-ERR APOP needs a name and a digest.\r\n")


def test_auth_plain_initial_response_and_continuation() -> None:
    creds = base64.b64encode(b"\0jeff\0password")
    out, _ = session(b"AUTH PLAIN " + creds + b"\r\nSTAT\r\n", every_split=False)
    assert b"+OK Logged in" in out
    out, _ = session(b"AUTH PLAIN\r\n" + creds + b"\r\nSTAT\r\n", every_split=False)
    assert b"+ \r\n+OK Logged in" in out
    out, _ = session(b"AUTH PLAIN\r\n*\r\nQUIT\r\n")
    assert out == GREETING + b"+ \r\n-ERR Authentication cancelled.\r\n+OK Logging out.\r\n"
    out, _ = session(b"AUTH PLAIN !!!\r\nAUTH CRAM-MD5\r\n")
    assert out == GREETING + (
        b"-ERR Invalid base64 data.\r\n-ERR Unsupported authentication mechanism.\r\n"
    )
    out, _ = session(b"AUTH\r\n")
    assert out == GREETING + b"+OK\r\nPLAIN\r\n.\r\n"


def test_syntax_errors_and_limits() -> None:
    limits = POP3Limits(command_line=20, bad_commands=4)
    client = (
        b"USER jeff\r\nPASS password\r\nRETR\r\nRETR x\r\nRETR 99999999999\r\nRETR 3\r\n"
        b"TOP 1\r\nTOP 1 -1\r\nSTAT 1\r\nUSER again\r\n"
    )
    out, _ = session(client, limits=limits, every_split=False)
    assert out.split(b"\r\n")[3:] == [
        b"-ERR Invalid message number.",
        b"-ERR Invalid message number.",
        b"-ERR Invalid message number.",
        b"-ERR No such message.",
        b"-ERR Invalid message number.",
        b"-ERR Invalid number of lines.",
        b"-ERR Noise after command arguments.",
        b"-ERR Already logged in.",
        b"-ERR Too many bad commands.",
        b"",
    ]


def test_too_many_bad_commands_before_login() -> None:
    out, d = session(b"HELO\r\nEHLO\r\nXYZ\r\nQUIT\r\n")
    assert out == GREETING + (b"-ERR Unknown command.\r\n" * 3 + b"-ERR Too many bad commands.\r\n")
    assert d.events == [events.Closed("errors")]


def test_long_line_and_bare_lf() -> None:
    limits = POP3Limits(command_line=10, auth_line=10)
    # A bare LF does not end a line: "CAPA\nQUIT" is one bad line.
    out, _ = session(b"USER " + b"x" * 20 + b"\r\nCAPA\nQUIT\r\nQUIT\r\n", limits=limits)
    assert out == GREETING + (
        b"-ERR Input line too long.\r\n-ERR Unknown command.\r\n+OK Logging out.\r\n"
    )


def test_bare_lf_quirk() -> None:
    out, _ = session(b"QUIT\n", limits=POP3Limits(allow_bare_lf_commands=True))
    assert out == GREETING + b"+OK Logging out.\r\n"


def test_transaction_only_commands_before_login() -> None:
    out, _ = session(b"STAT\r\nQUIT\r\n")
    assert out == GREETING + b"-ERR Not logged in.\r\n+OK Logging out.\r\n"


def test_illegal_adapter_move_raises() -> None:
    conn = make_conn()
    with pytest.raises(LocalProtocolError):
        conn.accept_login("jeff", [], [])
    with pytest.raises(LocalProtocolError):
        conn.begin_message()


def test_transition_table_reaches_every_state() -> None:
    reached = {State.AUTHORIZATION} | set(TRANSITIONS.values())
    assert reached == set(State)


@pytest.mark.parametrize(
    ("message", "lines", "expected"),
    [
        (b"A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\nl3\r\n", 0, b"A: 1\r\nB: 2\r\n\r\n"),
        (b"A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\nl3\r\n", 2, b"A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\n"),
        (b"A: 1\r\n\r\nl1\r\n", 9, b"A: 1\r\n\r\nl1\r\n"),
        (b"A: 1\n\nl1\nl2\n", 1, b"A: 1\n\nl1\n"),
        (b"\r\nbody\r\nmore\r\n", 1, b"\r\nbody\r\n"),
        (b"A: no body\r\n", 3, b"A: no body\r\n"),
        (b"A: 1\r\nB\r\r\n\r\nx\r\n", 0, b"A: 1\r\nB\r\r\n\r\n"),
    ],
)
def test_top_cutter(message: bytes, lines: int, expected: bytes) -> None:
    for chunks in splits(message):
        cutter = TopCutter(lines)
        assert b"".join(cutter.feed(c) for c in chunks) == expected


def test_top_through_the_machine_is_stuffed() -> None:
    out, _ = session(b"USER jeff\r\nPASS password\r\nTOP 2 0\r\nTOP 2 1\r\n", every_split=False)
    assert out.endswith(
        b"+OK\r\nSubject: two\r\n\r\n.\r\n+OK\r\nSubject: two\r\n\r\n..starts with a dot\r\n.\r\n"
    )


_COMMANDS = [
    b"USER jeff",
    b"PASS password",
    b"PASS wrong",
    b"STAT",
    b"LIST",
    b"LIST 1",
    b"UIDL 2",
    b"RETR 1",
    b"TOP 2 1",
    b"DELE 1",
    b"RSET",
    b"NOOP",
    b"CAPA",
    b"AUTH PLAIN",
    b"AGplZmYAcGFzc3dvcmQ=",
    b"*",
    b"QUIT",
    b"",
    b"\xff\xfe",
    b"RETR 99999999999999",
]


@given(
    st.lists(st.sampled_from(_COMMANDS) | st.binary(max_size=12), max_size=12),
    st.lists(st.integers(min_value=1, max_value=40), max_size=8),
)
def test_any_input_same_output_however_split(lines: list[bytes], cuts: list[int]) -> None:
    # STLS is left out on purpose: where the bytes are cut decides which ones
    # arrive after the handshake, so its output does depend on the split.
    data = b"".join(line + b"\r\n" for line in lines)
    chunks, rest = [], data
    for cut in cuts:
        chunks.append(rest[:cut])
        rest = rest[cut:]
    chunks.append(rest)
    whole_drop, split_drop = drop(), drop()
    whole = run(make_conn(), [data], whole_drop, eof=True)
    split = run(make_conn(), [c for c in chunks if c], split_drop, eof=True)
    assert whole == split
    assert whole_drop.deleted == split_drop.deleted
    assert whole.startswith(GREETING)


def test_rfc1939_example_session() -> None:
    # The RFC's APOP example: same timestamp, same digest, same sizes.
    path = Path(__file__).parent.parent / "data" / "transcripts" / "pop3_rfc1939.txt"
    client: list[bytes] = []
    server: list[bytes] = []
    bodies: list[bytes] = []
    body: list[bytes] | None = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        if raw.startswith("# "):
            continue
        text = raw[3:].encode() + b"\r\n"
        if raw.startswith("C: "):
            client.append(text)
            # After RETR: the status line, then the stuffed body up to ".".
            body = [] if text.startswith(b"RETR") else None
            continue
        server.append(text)
        if body is None or text.startswith(b"+OK"):
            continue
        if text == b".\r\n":
            bodies.append(b"".join(body))
            body = None
        else:
            body.append(text[1:] if text.startswith(b"..") else text)
    assert [len(b) for b in bodies] == [120, 200]
    for chunks in splits(b"".join(client)):
        d = Drop(list(bodies), user="mrose", secret=b"tanstaaf")
        conn = make_conn(host="dbc.mtview.ca.us", pid=1896, clock=697170952)
        assert run(conn, chunks, d) == b"".join(server)
        assert d.deleted == [1, 2]
