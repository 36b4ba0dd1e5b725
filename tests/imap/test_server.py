"""mailcore's IMAP server over real loopback TCP, on a real MaildirStore and Accounts."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import re
import ssl
import time
from pathlib import Path

import pytest
import trustme

from mailcore.delivery import LocalDelivery
from mailcore.limits import ImapLimits
from mailcore.store import MaildirStore
from tests.imap.serverkit import PASSWORD, USER, Running, running_server
from tests.imap.wire import Wire

LOGIN = f'a LOGIN {USER} "{PASSWORD}"'.encode()


def msg(subject: str, body: str = "hello", frm: str = "ann@example.org", date: str = "") -> bytes:
    date = date or "Mon, 01 Jan 2024 10:00:00 +0000"
    return (
        f"From: {frm}\r\nTo: {USER}\r\nSubject: {subject}\r\nDate: {date}\r\n"
        f"Message-ID: <{subject.replace(' ', '.')}@example.org>\r\n\r\n{body}\r\n"
    ).encode()


@pytest.fixture
def client_tls(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


async def login(srv: Running, select: str | None = "INBOX") -> Wire:
    w = await Wire.open(srv.port)
    assert (await w.cmd(LOGIN)).endswith(b"Logged in\r\n")
    if select:
        assert b"OK [READ-WRITE]" in await w.cmd(f"s SELECT {select}".encode())
    return w


async def test_session_transcript(srv: Running) -> None:
    await srv.deliver(msg("first"))
    await srv.deliver(msg("second", "two\r\nlines"))
    w = await Wire.open(srv.port)
    assert w.greeting.startswith(b"* OK [CAPABILITY IMAP4rev1 IMAP4rev2 ")
    await w.cmd(LOGIN)
    out = await w.cmd(b"s SELECT INBOX")
    assert out.startswith(
        b"* 2 EXISTS\r\n* 2 RECENT\r\n* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
    )
    assert b"* OK [UNSEEN 1] First unseen\r\n" in out
    assert re.search(rb"\* OK \[UIDVALIDITY \d+\] UIDs valid\r\n\* OK \[UIDNEXT 3\]", out)
    assert out.endswith(b"s OK [READ-WRITE] SELECT completed\r\n")
    out = await w.cmd(b"f FETCH 1:* (UID FLAGS RFC822.SIZE)")
    size1, size2 = len(msg("first")), len(msg("second", "two\r\nlines"))
    assert (
        out
        == (
            f"* 1 FETCH (UID 1 FLAGS (\\Recent) RFC822.SIZE {size1})\r\n"
            f"* 2 FETCH (UID 2 FLAGS (\\Recent) RFC822.SIZE {size2})\r\n"
            "f OK FETCH completed\r\n"
        ).encode()
    )
    out = await w.cmd(b"g FETCH 2 (BODY[TEXT] BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert out == (
        b"* 2 FETCH (BODY[TEXT] {12}\r\ntwo\r\nlines\r\n "
        b"BODY[HEADER.FIELDS (SUBJECT)] {19}\r\nSubject: second\r\n\r\n"
        b" FLAGS (\\Recent \\Seen))\r\n"
        b"g OK FETCH completed\r\n"
    )
    out = await w.cmd(b"h UID FETCH 1 (ENVELOPE BODY[]<0.4>)")
    assert out.startswith(
        b'* 1 FETCH (UID 1 ENVELOPE ("Mon, 01 Jan 2024 10:00:00 +0000" "first" '
        b'((NIL NIL "ann" "example.org"))'
    )
    assert out.endswith(
        b'BODY[]<0> "From" FLAGS (\\Recent \\Seen))\r\nh OK UID FETCH completed\r\n'
    )
    out = await w.cmd(b"i STORE 1 +FLAGS (\\Deleted)")
    assert out == b"* 1 FETCH (FLAGS (\\Deleted \\Recent \\Seen))\r\ni OK STORE completed\r\n"
    assert await w.cmd(b"j FETCH 3 FLAGS") == b"j BAD Invalid message sequence number\r\n"
    assert await w.cmd(b"k EXPUNGE") == b"* 1 EXPUNGE\r\nk OK EXPUNGE completed\r\n"
    out = await w.cmd(b"l LOGOUT")
    assert out == b"* BYE imap.example logging out\r\nl OK LOGOUT completed\r\n"
    await w.close()


async def test_two_clients_see_each_others_changes(srv: Running) -> None:
    # The seed's first promise: two clients on one mailbox at once.
    await srv.deliver(msg("one"))
    await srv.deliver(msg("two"))
    a, b = await login(srv), await login(srv)
    assert b"* 1 FETCH (FLAGS (\\Flagged \\Recent \\Seen))" in await a.cmd(
        b"x STORE 1 +FLAGS (\\Seen \\Flagged)"
    )
    out = b""
    for _ in range(50):
        out += await b.cmd(b"n NOOP")
        if b"FETCH" in out:
            break
        await asyncio.sleep(0.01)
    assert b"* 1 FETCH (UID 1 FLAGS (\\Flagged \\Seen))\r\n" in out
    # b appends; a hears EXISTS.
    assert b"[APPENDUID " in await b.cmd(b"p APPEND INBOX {5+}\r\nhi!\r\n")
    out = b""
    for _ in range(50):
        out += await a.cmd(b"n NOOP")
        if b"EXISTS" in out:
            break
        await asyncio.sleep(0.01)
    assert b"* 3 EXISTS\r\n" in out
    # a expunges message 1; b must not see EXPUNGE during FETCH, only later.
    await a.cmd(b"d STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert await a.cmd(b"e EXPUNGE") == b"* 1 EXPUNGE\r\ne OK EXPUNGE completed\r\n"
    await asyncio.sleep(0.1)
    out = await b.cmd(b"f FETCH 1:* (UID)")
    assert b"EXPUNGE" not in out
    assert out.endswith(b"* 3 FETCH (UID 3)\r\nf OK FETCH completed\r\n")
    assert b"EXPUNGE" not in await b.cmd(b"g SEARCH ALL")
    out = await b.cmd(b"h NOOP")
    assert out.startswith(b"* 1 EXPUNGE\r\n")
    assert await b.cmd(b"i FETCH 1:* (UID)") == (
        b"* 1 FETCH (UID 2)\r\n* 2 FETCH (UID 3)\r\ni OK FETCH completed\r\n"
    )
    await a.close()
    await b.close()


async def test_noop_reports_what_another_process_committed_before_it(srv: Running) -> None:
    # RFC 3501 6.1.2: NOOP is the client's poll for new mail. A message
    # delivered (by another process) before the NOOP is in its answer, not
    # only in the answer to a later one after the store's next poll.
    w = await login(srv)
    srv.store.poll_interval = 60.0  # from its next wait on: no timely poll
    await asyncio.sleep(0.05)
    async with MaildirStore(srv.root / "data", reconcile_on_open=False) as other:
        for n in range(3):
            await other.append(USER, "INBOX", msg(f"m{n}"))
            out = await w.cmd(b"n NOOP")
            assert out.startswith(b"* %d EXISTS\r\n" % (n + 1)), out
    await w.close()


async def test_idle_learns_of_smtp_delivery_within_100ms(srv: Running) -> None:
    w = await login(srv)
    await w.send(b"i IDLE\r\n")
    assert await w.line() == b"+ idling\r\n"
    delivery = LocalDelivery(srv.store, srv.accounts)
    start = time.perf_counter()
    await delivery.deliver([USER], msg("pushed"))
    line = await w.line(timeout=2)
    elapsed = time.perf_counter() - start
    assert line == b"* 1 EXISTS\r\n"
    assert elapsed < 0.1, elapsed
    assert await w.line() == b"* 1 RECENT\r\n"
    await w.send(b"DONE\r\n")
    assert await w.line() == b"i OK IDLE terminated\r\n"
    out = await w.cmd(b"f FETCH 1 (BODY.PEEK[HEADER.FIELDS (DELIVERED-TO SUBJECT)])")
    assert f"Delivered-To: {USER}\r\nSubject: pushed\r\n\r\n".encode() in out
    await w.close()


async def test_idle_reports_expunge_and_flags(srv: Running) -> None:
    await srv.deliver(msg("one"))
    a, b = await login(srv), await login(srv)
    await b.send(b"i IDLE\r\n")
    assert await b.line() == b"+ idling\r\n"
    await a.cmd(b"s STORE 1 +FLAGS (\\Answered)")
    assert await b.line() == b"* 1 FETCH (UID 1 FLAGS (\\Answered))\r\n"
    await a.cmd(b"s STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert await b.line() == b"* 1 FETCH (UID 1 FLAGS (\\Answered \\Deleted))\r\n"
    await a.cmd(b"x EXPUNGE")
    assert await b.line() == b"* 1 EXPUNGE\r\n"
    await b.send(b"DONE\r\n")
    assert await b.line() == b"i OK IDLE terminated\r\n"


async def test_several_mailboxes(srv: Running) -> None:
    # The seed's second promise: many mailboxes kept on the server.
    w = await login(srv, select=None)
    for name in (b"Work", b"Work/Reports", b"Family", b"Lists/python"):
        assert await w.cmd(b"c CREATE " + name) == b"c OK CREATE completed\r\n"
    await srv.deliver(msg("r1"), "Work/Reports")
    await srv.deliver(msg("r2"), "Work/Reports")
    await srv.deliver(msg("f1"), "Family")
    out = await w.cmd(b'l LIST "" "Work*"')
    assert out == (
        b'* LIST (\\HasChildren) "/" "Work"\r\n* LIST (\\HasNoChildren) "/" "Work/Reports"\r\n'
        b"l OK LIST completed\r\n"
    )
    assert await w.cmd(b'l LIST "" "%"') == (
        b'* LIST (\\Archive \\HasNoChildren) "/" "Archive"\r\n'
        b'* LIST (\\Drafts \\HasNoChildren) "/" "Drafts"\r\n'
        b'* LIST (\\HasNoChildren) "/" "Family"\r\n* LIST (\\HasNoChildren) "/" "INBOX"\r\n'
        b'* LIST (\\HasNoChildren \\Junk) "/" "Junk"\r\n* LIST (\\HasChildren) "/" "Lists"\r\n'
        b'* LIST (\\HasNoChildren \\Sent) "/" "Sent"\r\n'
        b'* LIST (\\HasNoChildren \\Trash) "/" "Trash"\r\n'
        b'* LIST (\\HasChildren) "/" "Work"\r\nl OK LIST completed\r\n'
    )
    assert await w.cmd(b'l LIST "" ""') == b'* LIST (\\Noselect) "/" ""\r\nl OK LIST completed\r\n'
    out = await w.cmd(b"t STATUS Work/Reports (MESSAGES UNSEEN UIDNEXT SIZE DELETED)")
    size = len(msg("r1")) + len(msg("r2"))
    assert (
        out
        == (
            f'* STATUS "Work/Reports" (MESSAGES 2 UNSEEN 2 UIDNEXT 3 SIZE {size} DELETED 0)\r\n'
            "t OK STATUS completed\r\n"
        ).encode()
    )
    assert (await w.cmd(b"s SUBSCRIBE Family")).endswith(b"OK SUBSCRIBE completed\r\n")
    out = await w.cmd(b'l LIST (SUBSCRIBED) "" "F*" RETURN (STATUS (MESSAGES))')
    assert out == (
        b'* LIST (\\HasNoChildren \\Subscribed) "/" "Family"\r\n* STATUS "Family" (MESSAGES 1)\r\n'
        b"l OK LIST completed\r\n"
    )
    assert await w.cmd(b'l LSUB "" "F*"') == b'* LSUB () "/" "Family"\r\nl OK LSUB completed\r\n'
    out = await w.cmd(b'l LIST (SPECIAL-USE) "" "*"')
    assert out.count(b"* LIST") == 5 and b"\\Sent" in out
    assert (await w.cmd(b"r RENAME Work Job")).endswith(b"OK RENAME completed\r\n")
    out = await w.cmd(b"x SELECT Job/Reports")
    assert out.startswith(b"* 2 EXISTS\r\n")
    out = await w.cmd(b"x EXAMINE Family")
    assert b"* OK [CLOSED] Previous mailbox closed\r\n" in out and b"* 1 EXISTS\r\n" in out
    assert out.endswith(b"x OK [READ-ONLY] EXAMINE completed\r\n")
    assert (await w.cmd(b"d DELETE Lists/python")).endswith(b"d OK DELETE completed\r\n")
    assert await w.cmd(b"d DELETE Nope") == b"d NO [NONEXISTENT] No such mailbox\r\n"
    assert await w.cmd(b"d DELETE INBOX") == b"d NO [CANNOT] INBOX cannot be deleted\r\n"
    assert await w.cmd(b"d CREATE Family") == b"d NO [ALREADYEXISTS] Mailbox exists\r\n"
    # RENAME INBOX moves its messages and leaves INBOX empty.
    await srv.deliver(msg("in"))
    assert (await w.cmd(b"r RENAME INBOX Old")).endswith(b"OK RENAME completed\r\n")
    out = await w.cmd(b"t STATUS INBOX (MESSAGES)")
    assert out.startswith(b'* STATUS "INBOX" (MESSAGES 0)')
    assert (await w.cmd(b"t STATUS Old (MESSAGES)")).startswith(b'* STATUS "Old" (MESSAGES 1)')


async def test_a_long_body_search_does_not_stall_other_sessions(srv: Running) -> None:
    # Decoding big quoted-printable bodies takes a while; another session
    # sharing the event loop (here a NOOP, in serve an SMTP delivery) is
    # answered meanwhile, before the search completes.
    body = b"abc=\r\n" * 1_500_000
    for i in range(3):
        await srv.deliver(
            b"Subject: big %d\r\nContent-Type: text/plain\r\n" % i
            + b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
            + body
        )
    searcher = await login(srv)
    other = await login(srv)
    await searcher.send(b"s SEARCH BODY nowhere\r\n")
    search = asyncio.ensure_future(searcher.until(b"s", timeout=120))
    await asyncio.sleep(0.2)
    assert await other.cmd(b"n NOOP", timeout=60) == b"n OK NOOP completed\r\n"
    # The NOOP came back first: the search was still running.
    assert not search.done()
    assert (await search).endswith(b"* SEARCH\r\ns OK SEARCH completed\r\n")


async def test_list_recursivematch_reports_subscribed_descendants(srv: Running) -> None:
    # The mailboxes of RFC 5258's examples.
    w = await login(srv, select=None)
    for name in (b"Fruit", b"Fruit/Apple", b"Fruit/Banana", b"Tofu", b"Vegetable"):
        assert (await w.cmd(b"c CREATE " + name)).endswith(b"OK CREATE completed\r\n")
    for name in (b"Vegetable/Broccoli", b"Vegetable/Corn"):
        assert (await w.cmd(b"c CREATE " + name)).endswith(b"OK CREATE completed\r\n")
    for name in (b"Fruit/Banana", b"Vegetable", b"Vegetable/Broccoli"):
        assert (await w.cmd(b"s SUBSCRIBE " + name)).endswith(b"OK SUBSCRIBE completed\r\n")

    def ours(out: bytes) -> list[bytes]:
        keep = (b'"Fruit', b'"Tofu', b'"Vegetable')
        return [line for line in out.split(b"\r\n") if any(k in line for k in keep)]

    # "%" does not reach Fruit/Banana or Vegetable/Broccoli: their parents
    # come back with CHILDINFO, subscribed or not.
    out = await w.cmd(b'l LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"')
    assert out.endswith(b"l OK LIST completed\r\n")
    assert ours(out) == [
        b'* LIST (\\HasChildren) "/" "Fruit" ("CHILDINFO" ("SUBSCRIBED"))',
        b'* LIST (\\HasChildren \\Subscribed) "/" "Vegetable" ("CHILDINFO" ("SUBSCRIBED"))',
    ]
    # "*" reaches them, so they answer for themselves.
    out = await w.cmd(b'l LIST (SUBSCRIBED RECURSIVEMATCH) "" "*"')
    assert ours(out) == [
        b'* LIST (\\HasNoChildren \\Subscribed) "/" "Fruit/Banana"',
        b'* LIST (\\HasChildren \\Subscribed) "/" "Vegetable"',
        b'* LIST (\\HasNoChildren \\Subscribed) "/" "Vegetable/Broccoli"',
    ]
    # Without RECURSIVEMATCH, "%" gives the subscribed mailboxes only.
    out = await w.cmd(b'l LIST (SUBSCRIBED) "" "%"')
    assert ours(out) == [b'* LIST (\\HasChildren \\Subscribed) "/" "Vegetable"']
    out = await w.cmd(b'l LIST (RECURSIVEMATCH) "" "%"')
    assert out == b"l BAD RECURSIVEMATCH needs another selection option\r\n"


async def test_deleted_subscribed_mailbox_listed_as_nonexistent(srv: Running) -> None:
    # RFC 3501 6.3.6 / RFC 9051 6.3.9: DELETE does not unsubscribe; RFC 5258 3.4's example.
    w = await login(srv, select=None)
    assert (await w.cmd(b"c CREATE Fruit/Peach")).endswith(b"OK CREATE completed\r\n")
    assert (await w.cmd(b"s SUBSCRIBE Fruit/Peach")).endswith(b"OK SUBSCRIBE completed\r\n")
    assert (await w.cmd(b"d DELETE Fruit/Peach")).endswith(b"OK DELETE completed\r\n")
    out = await w.cmd(b'l LIST (SUBSCRIBED) "" "Fruit/*" RETURN (STATUS (MESSAGES))')
    assert out == (
        b'* LIST (\\NonExistent \\Subscribed) "/" "Fruit/Peach"\r\nl OK LIST completed\r\n'
    )
    out = await w.cmd(b'l LIST (SUBSCRIBED RECURSIVEMATCH) "" "Fruit/%"')
    assert b'* LIST (\\NonExistent \\Subscribed) "/" "Fruit/Peach"\r\n' in out
    assert await w.cmd(b'l LIST "" "Fruit/*"') == b"l OK LIST completed\r\n"
    assert await w.cmd(b'l LSUB "" "Fruit/*"') == (
        b'* LSUB () "/" "Fruit/Peach"\r\nl OK LSUB completed\r\n'
    )
    assert (await w.cmd(b"x SELECT Fruit/Peach")).startswith(b"x NO")
    out = await w.cmd(b"u UNSUBSCRIBE Fruit/Peach")
    assert out.endswith(b"u OK UNSUBSCRIBE completed\r\n")
    assert await w.cmd(b'l LSUB "" "Fruit/*"') == b"l OK LSUB completed\r\n"


async def _expect_searches(w: Wire, cases: dict[bytes, bytes]) -> None:
    """Each query's first response line (literal continuations left out) is as given."""
    for query, expected in cases.items():
        out = await w.cmd(b"q " + query)
        assert out.replace(b"+ Ready for literal data\r\n", b"").split(b"\r\n")[0] == expected, (
            query
        )


async def test_search_by_several_criteria(srv: Running) -> None:
    # The seed's third promise: find mail by several criteria.
    await srv.deliver(
        msg(
            "Invoice March",
            "pay 100 EUR",
            "billing@shop.example",
            "Tue, 05 Mar 2024 09:00:00 +0000",
        )
    )
    await srv.deliver(
        msg("Lunch?", "see you at noon", "bob@example.org", "Wed, 06 Mar 2024 12:00:00 +0000")
    )
    await srv.deliver(
        msg(
            "Invoice April",
            "pay 200 EUR" + "x" * 500,
            "billing@shop.example",
            "Fri, 05 Apr 2024 09:00:00 +0000",
        )
    )
    await srv.deliver(
        msg(
            "=?utf-8?q?R=C3=A9sum=C3=A9?=",
            "cv attached",
            "carla@example.org",
            "Sat, 06 Apr 2024 09:00:00 +0000",
        )
    )
    w = await login(srv)
    await w.cmd(b"s STORE 2 +FLAGS (\\Seen $Work)")
    cases = {
        b"SEARCH FROM billing": b"* SEARCH 1 3",
        b"SEARCH FROM billing SUBJECT april": b"* SEARCH 3",
        b"SEARCH OR SUBJECT lunch BODY eur": b"* SEARCH 1 2 3",
        b"SEARCH NOT FROM billing": b"* SEARCH 2 4",
        b"SEARCH SENTSINCE 1-Apr-2024": b"* SEARCH 3 4",
        b"SEARCH SENTBEFORE 6-Mar-2024 BODY pay": b"* SEARCH 1",
        b"SEARCH SENTON 6-Mar-2024": b"* SEARCH 2",
        b"SEARCH LARGER 400": b"* SEARCH 3",
        b"SEARCH SMALLER 400 UNSEEN": b"* SEARCH 1 4",
        b"SEARCH SEEN KEYWORD $Work": b"* SEARCH 2",
        b"SEARCH CHARSET UTF-8 SUBJECT {8}\r\nR\xc3\xa9sum\xc3\xa9": b"* SEARCH 4",
        b"SEARCH HEADER Message-ID lunch": b"* SEARCH 2",
        b"SEARCH TEXT noon": b"* SEARCH 2",
        b"SEARCH 2:4 NOT 3": b"* SEARCH 2 4",
        b"UID SEARCH UID 3:* FROM billing": b"* SEARCH 3",
        b"SEARCH SINCE 1-Jan-2000 NEW": b"* SEARCH 1 3 4",
        b"SEARCH (OR FROM bob FROM carla) (OR SENTON 6-Mar-2024 DELETED)": b"* SEARCH 2",
    }
    await _expect_searches(w, cases)
    assert await w.cmd(b"q SEARCH CHARSET KOI8-R ALL") == (
        b"q NO [BADCHARSET (UTF-8 US-ASCII)] Unsupported charset\r\n"
    )
    out = await w.cmd(b"e SEARCH RETURN (MIN MAX COUNT ALL) FROM billing")
    assert out == b'* ESEARCH (TAG "e") MIN 1 MAX 3 ALL 1,3 COUNT 2\r\ne OK SEARCH completed\r\n'
    out = await w.cmd(b"e UID SEARCH RETURN () NOT FROM billing")
    assert out == b'* ESEARCH (TAG "e") UID ALL 2,4\r\ne OK UID SEARCH completed\r\n'
    assert await w.cmd(b"e SEARCH RETURN (SAVE) SUBJECT invoice") == b"e OK SEARCH completed\r\n"
    out = await w.cmd(b"f FETCH $ (UID)")
    assert out == b"* 1 FETCH (UID 1)\r\n* 3 FETCH (UID 3)\r\nf OK FETCH completed\r\n"
    assert (await w.cmd(b"g SEARCH $ BODY 200")).startswith(b"* SEARCH 3\r\n")


async def test_search_body_looks_inside_encoded_text_parts(srv: Running) -> None:
    # What Thunderbird, iOS Mail and mutt send: words in base64 and
    # quoted-printable text parts (any charset) must be found, as Dovecot
    # finds them; a word inside an encoded attachment of another type is not.
    b64 = base64.b64encode("Reunión el miércoles a las diez\r\n".encode()).decode()
    attachment = base64.b64encode(b"secretword inside a binary file").decode()
    await srv.deliver(
        (
            "From: ana@example.org\r\nSubject: multi\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
            "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n"
            "--b1\r\nContent-Type: text/html; charset=iso-8859-1\r\n"
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
            "<p>Caf=E9 con le=\r\nche</p>\r\n"
            "--b1\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\n{attachment}\r\n--b1--\r\n"
        ).encode()
    )
    await srv.deliver(msg("plain", "nothing encoded here"))
    w = await login(srv)
    cases = {
        b"SEARCH BODY diez": b"* SEARCH 1",
        b"SEARCH CHARSET UTF-8 BODY {10}\r\nmi\xc3\xa9rcoles": b"* SEARCH 1",
        b"SEARCH CHARSET UTF-8 TEXT {12}\r\nCAF\xc3\x89 CON LE": b"* SEARCH 1",
        b"SEARCH BODY leche": b"* SEARCH 1",
        b"SEARCH BODY secretword": b"* SEARCH",
        b"SEARCH BODY encoded": b"* SEARCH 2",
        b"SEARCH NOT BODY diez": b"* SEARCH 2",
    }
    await _expect_searches(w, cases)


async def test_rev2_session(srv: Running) -> None:
    await srv.deliver(msg("one"))
    w = await Wire.open(srv.port)
    await w.cmd(LOGIN)
    assert await w.cmd(b"e ENABLE IMAP4rev2") == b"* ENABLED IMAP4rev2\r\ne OK ENABLE completed\r\n"
    out = await w.cmd(b"s SELECT INBOX")
    assert b"RECENT" not in out and b"UNSEEN" not in out
    assert b'* LIST () "/" "INBOX"\r\n' in out
    assert await w.cmd(b"f FETCH 1 FLAGS") == b"* 1 FETCH (FLAGS ())\r\nf OK FETCH completed\r\n"
    assert await w.cmd(b"q SEARCH ALL") == b'* ESEARCH (TAG "q") ALL 1\r\nq OK SEARCH completed\r\n'


async def test_recent_goes_to_the_first_session_only(srv: Running) -> None:
    await srv.deliver(msg("one"))
    a = await login(srv)
    b = await login(srv)
    assert (
        await a.cmd(b"f FETCH 1 FLAGS")
        == b"* 1 FETCH (FLAGS (\\Recent))\r\nf OK FETCH completed\r\n"
    )
    assert await b.cmd(b"f FETCH 1 FLAGS") == b"* 1 FETCH (FLAGS ())\r\nf OK FETCH completed\r\n"
    assert (await b.cmd(b"q SEARCH RECENT")).startswith(b"* SEARCH\r\n")


async def test_append_copy_move(srv: Running) -> None:
    w = await login(srv)
    out = await w.cmd(
        b'a APPEND INBOX (\\Seen $Label) "05-Mar-2024 09:00:00 +0100" {12+}\r\nSubject: x\r\n'
    )
    assert re.fullmatch(
        rb"\* 1 EXISTS\r\n\* 1 RECENT\r\na OK \[APPENDUID \d+ 1\] APPEND completed\r\n", out
    )
    out = await w.cmd(b"f FETCH 1 (FLAGS INTERNALDATE)")
    assert out == (
        b'* 1 FETCH (FLAGS (\\Recent \\Seen $Label) INTERNALDATE "05-Mar-2024 08:00:00 +0000")\r\n'
        b"f OK FETCH completed\r\n"
    )
    assert await w.cmd(b"a APPEND Nope {1+}\r\nx") == b"a NO [TRYCREATE] No such mailbox\r\n"
    assert await w.cmd(b"c COPY 1 Nope") == b"c NO [TRYCREATE] No such mailbox\r\n"
    out = await w.cmd(b"c COPY 1 Archive")
    assert re.fullmatch(rb"c OK \[COPYUID \d+ 1 1\] COPY completed\r\n", out)
    out = await w.cmd(b"m UID MOVE 1 Trash")
    assert re.fullmatch(
        rb"\* OK \[COPYUID \d+ 1 1\] Moved\r\n\* 1 EXPUNGE\r\nm OK UID MOVE completed\r\n", out
    )
    out = await w.cmd(b"t STATUS Trash (MESSAGES)")
    assert out.startswith(b'* STATUS "Trash" (MESSAGES 1)')


async def test_append_too_big_over_the_wire(tmp_path: Path, ca: trustme.CA) -> None:
    async with running_server(
        tmp_path, ca, limits=ImapLimits(literal_size=100, failed_login_delay=0.01)
    ) as srv:
        w = await login(srv)
        await w.send(b"a APPEND INBOX {101}\r\n")
        assert await w.line() == b"a NO [TOOBIG] Literal larger than 100 octets\r\n"
        assert await w.cmd(b"n NOOP") == b"n OK NOOP completed\r\n"
        await w.send(b"a APPEND INBOX {3}\r\n")
        assert await w.line() == b"+ Ready for literal data\r\n"
        await w.send(b"abc\r\n")
        assert b"APPENDUID" in await w.until(b"a")


async def test_mailbox_names(srv: Running) -> None:
    w = await login(srv, select=None)
    assert await w.cmd(b"c CREATE &AOQ-pfel") == b"c OK CREATE completed\r\n"
    assert await w.cmd(b'l LIST "" "&AOQ-*"') == (
        b'* LIST (\\HasNoChildren) "/" "&AOQ-pfel"\r\nl OK LIST completed\r\n'
    )
    for bad in (b"a/../b", b"/abs", b"a//b", b"..", b"./x"):
        assert (await w.cmd(b"c CREATE " + bad)).startswith(b"c NO [CANNOT] "), bad
    assert (await w.cmd(b"c CREATE &Jjo")).startswith(b"c NO [CANNOT] ")
    await w.cmd(b"e ENABLE UTF8=ACCEPT")
    assert await w.cmd('l LIST "" "äpfel"'.encode()) == (
        '* LIST (\\HasNoChildren) "/" "äpfel"\r\nl OK LIST completed\r\n'.encode()
    )
    assert await w.cmd(b"c CREATE inbox") == b"c NO [ALREADYEXISTS] INBOX always exists\r\n"


async def test_fetch_sections_binary_and_seen(srv: Running) -> None:
    mime = (
        b"From: a@example.org\r\nSubject: parts\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nplain part\r\n"
        b"--b\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n"
        b"AAECAw==\r\n--b--\r\n"
    )
    await srv.deliver(mime)
    w = await Wire.open(srv.port)
    await w.cmd(LOGIN)
    await w.cmd(b"s EXAMINE INBOX")
    out = await w.cmd(b"f FETCH 1 (BODY[1] BINARY.SIZE[2] BODY[2.MIME] RFC822.SIZE)")
    assert out.startswith(b'* 1 FETCH (BODY[1] "plain part" BINARY.SIZE[2] 4 BODY[2.MIME] {77}\r\n')
    assert b"\\Seen" not in out  # EXAMINE never sets \Seen
    out = await w.cmd(b"f FETCH 1 BINARY[2]")
    assert out == b"* 1 FETCH (BINARY[2] ~{4}\r\n\x00\x01\x02\x03)\r\nf OK FETCH completed\r\n"
    out = await w.cmd(b"f FETCH 1 BODYSTRUCTURE")
    assert out.startswith(b'* 1 FETCH (BODYSTRUCTURE (("TEXT" "PLAIN" ')
    await w.cmd(b"s SELECT INBOX")
    out = await w.cmd(b"f FETCH 1 RFC822.TEXT")
    assert out.endswith(b" FLAGS (\\Recent \\Seen))\r\nf OK FETCH completed\r\n")


async def test_implicit_tls_and_starttls(srv: Running, client_tls: ssl.SSLContext) -> None:
    w = await Wire.open(srv.tls_port, client_tls)
    assert b"STARTTLS" not in w.greeting and b"AUTH=PLAIN" in w.greeting
    assert (await w.cmd(LOGIN)).endswith(b"Logged in\r\n")
    await w.close()
    w = await Wire.open(srv.port)
    assert b"STARTTLS" in w.greeting
    # Plaintext pipelined behind STARTTLS is dropped, never executed.
    await w.send(b"t STARTTLS\r\nx LOGOUT\r\n")
    assert await w.line() == b"t OK Begin TLS negotiation now\r\n"
    await w.writer.start_tls(client_tls, server_hostname="localhost")
    out = await w.cmd(b"c CAPABILITY")
    assert b"STARTTLS" not in out and out.endswith(b"c OK CAPABILITY completed\r\n")
    assert (await w.cmd(LOGIN)).endswith(b"Logged in\r\n")
    await w.close()


async def test_login_disabled_in_the_clear(tmp_path: Path, ca: trustme.CA) -> None:
    async with running_server(tmp_path, ca, allow_plaintext_login=False) as srv:
        w = await Wire.open(srv.port)
        assert b"LOGINDISABLED" in w.greeting and b"AUTH=PLAIN" not in w.greeting
        assert (await w.cmd(LOGIN)).startswith(b"a NO [PRIVACYREQUIRED]")


async def test_authenticate_and_failed_logins_slowed(srv: Running) -> None:
    import base64

    w = await Wire.open(srv.port)
    ir = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode())
    assert (await w.cmd(b"a AUTHENTICATE PLAIN " + ir)).endswith(b"Logged in\r\n")
    w = await Wire.open(srv.port)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        out = await w.cmd(f"b LOGIN {USER} wrong".encode())
        times.append(time.perf_counter() - start)
        assert out == b"b NO [AUTHENTICATIONFAILED] Authentication failed\r\n"
    # Delays double: 0.01, 0.02, 0.04 s at least.
    assert times[2] >= 0.04 and times[2] > times[0]


async def test_autologout(tmp_path: Path, ca: trustme.CA) -> None:
    limits = ImapLimits(idle_timeout=0.2, failed_login_delay=0.01)
    async with running_server(tmp_path, ca, limits=limits) as srv:
        w = await login(srv)
        assert await w.line(timeout=2) == b"* BYE Autologout; idle for too long\r\n"
        assert await w.line(timeout=2) == b""
        w = await login(srv)
        await w.send(b"i IDLE\r\n")
        assert await w.line() == b"+ idling\r\n"
        assert await w.line(timeout=2) == b"* BYE Autologout; idle for too long\r\n"


async def test_autologout_is_not_wound_back_by_a_trickle(tmp_path: Path, ca: trustme.CA) -> None:
    # A command line that never ends, a byte at a time, is still inactivity.
    limits = ImapLimits(idle_timeout=0.5, failed_login_delay=0.01)
    async with running_server(tmp_path, ca, limits=limits) as srv:
        w = await login(srv)

        async def trickle() -> None:
            with contextlib.suppress(ConnectionError):
                for byte in b"n NOOP NOOP NOOP NOOP":
                    await w.send(bytes([byte]))
                    await asyncio.sleep(0.1)

        started = time.perf_counter()
        sender = asyncio.create_task(trickle())
        assert await w.line(timeout=5) == b"* BYE Autologout; idle for too long\r\n"
        assert time.perf_counter() - started < 1.2  # the trickle would take 2.1 s
        sender.cancel()


def test_default_autologout_is_at_least_30_minutes() -> None:
    assert ImapLimits().idle_timeout >= 30 * 60


async def test_reselect_after_changes_elsewhere(srv: Running) -> None:
    # SELECT reuses an unchanged mailbox index; any change must invalidate it.
    await srv.deliver(msg("one"))
    a = await login(srv)
    assert (
        await a.cmd(b"f FETCH 1 FLAGS")
        == b"* 1 FETCH (FLAGS (\\Recent))\r\nf OK FETCH completed\r\n"
    )
    await a.cmd(b"u UNSELECT")
    from mailcore.store.base import FlagMode

    await srv.store.store_flags(USER, "INBOX", [1], ["\\Answered"], FlagMode.ADD)
    await a.cmd(b"s SELECT INBOX")
    assert (
        await a.cmd(b"f FETCH 1 FLAGS")
        == b"* 1 FETCH (FLAGS (\\Answered))\r\nf OK FETCH completed\r\n"
    )
    await a.cmd(b"u UNSELECT")
    await srv.deliver(msg("two"))
    out = await a.cmd(b"s SELECT INBOX")
    assert out.startswith(b"* 2 EXISTS\r\n* 1 RECENT\r\n")
    assert b"[UIDNEXT 3]" in out
    await a.cmd(b"u UNSELECT")
    await srv.store.store_flags(USER, "INBOX", [1], ["\\Deleted"], FlagMode.ADD)
    await srv.store.expunge(USER, "INBOX")
    assert (await a.cmd(b"s EXAMINE INBOX")).startswith(b"* 1 EXISTS\r\n")


async def test_fetch_in_small_batches(tmp_path: Path, ca: trustme.CA) -> None:
    # Batches of 3 messages / 100 bytes: read-ahead, batch edges, partly cached ENVELOPEs.
    limits = ImapLimits(fetch_batch=3, fetch_batch_bytes=100, failed_login_delay=0.01)
    async with running_server(tmp_path, ca, limits=limits) as srv:
        bodies = [msg(f"m{i}", "x" * (i * 37)) for i in range(10)]
        for body in bodies:
            await srv.deliver(body)
        w = await login(srv)
        out = await w.cmd(b"f FETCH 1:* (UID BODY.PEEK[])")
        expected = b"".join(
            b"* %d FETCH (UID %d BODY[] {%d}\r\n%s)\r\n" % (i + 1, i + 1, len(b), b)
            for i, b in enumerate(bodies)
        )
        assert out == expected + b"f OK FETCH completed\r\n"
        await w.cmd(b"e FETCH 2:3 ENVELOPE")
        out = await w.cmd(b"e FETCH 1:* ENVELOPE")
        assert out.count(b" FETCH (ENVELOPE (") == 10
        for i in range(10):
            assert (
                b'* %d FETCH (ENVELOPE ("Mon, 01 Jan 2024 10:00:00 +0000" "m%d"' % (i + 1, i) in out
            )
        out = await w.cmd(b"g UID FETCH 4:7 (RFC822.SIZE)")
        assert (
            out
            == b"".join(
                b"* %d FETCH (UID %d RFC822.SIZE %d)\r\n" % (u, u, len(bodies[u - 1]))
                for u in range(4, 8)
            )
            + b"g OK UID FETCH completed\r\n"
        )


async def sasl_login(w: Wire, mech: str, password: str = PASSWORD) -> bytes:
    """AUTHENTICATE with mailcore's client half of ``mech``; return the tagged reply."""
    import base64

    from mailcore.auth.sasl import client_mechanism

    client = client_mechanism(mech, USER, password)
    first = client.initial()
    line = b"a AUTHENTICATE " + mech.encode()
    if first is not None:
        line += b" " + (base64.b64encode(first) or b"=")
    await w.send(line + b"\r\n")
    while True:
        reply = await w.line()
        if not reply.startswith(b"+ "):
            return reply
        challenge = base64.b64decode(reply[2:].strip())
        if mech == "SCRAM-SHA-256" and challenge.startswith(b"v="):
            assert client.verify_final(challenge)
            await w.send(b"\r\n")
            continue
        await w.send(base64.b64encode(client.respond(challenge)) + b"\r\n")


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN", "SCRAM-SHA-256", "CRAM-MD5"])
async def test_authenticate_mechanisms(srv: Running, mech: str) -> None:
    w = await Wire.open(srv.port)
    assert (await sasl_login(w, mech)).startswith(b"a OK [CAPABILITY IMAP4rev1 ")
    assert b"OK [READ-WRITE]" in await w.cmd(b"s SELECT INBOX")
    w = await Wire.open(srv.port)
    assert await sasl_login(w, mech, "wrong") == (
        b"a NO [AUTHENTICATIONFAILED] Authentication failed\r\n"
    )


async def test_uid_expunge_check_and_flag_modes(srv: Running) -> None:
    for i in range(4):
        await srv.deliver(msg(f"m{i}"))
    w = await login(srv)
    assert await w.cmd(b"c CHECK") == b"c OK CHECK completed\r\n"
    await w.cmd(b"s STORE 1:4 +FLAGS.SILENT (\\Deleted \\Seen)")
    # UID EXPUNGE removes only the named \Deleted messages (RFC 4315).
    assert await w.cmd(b"x UID EXPUNGE 2:3") == (
        b"* 2 EXPUNGE\r\n* 2 EXPUNGE\r\nx OK EXPUNGE completed\r\n"
    )
    assert await w.cmd(b"s STORE 1 FLAGS (\\Flagged $Work)") == (
        b"* 1 FETCH (FLAGS (\\Flagged \\Recent $Work))\r\ns OK STORE completed\r\n"
    )
    assert await w.cmd(b"s UID STORE 4 -FLAGS (\\Deleted)") == (
        b"* 2 FETCH (UID 4 FLAGS (\\Recent \\Seen))\r\ns OK UID STORE completed\r\n"
    )
    assert await w.cmd(b"c COPY 5 Archive") == b"c BAD Invalid message sequence number\r\n"
    assert await w.cmd(b"c UID COPY 99 Archive") == b"c OK COPY completed (no messages)\r\n"
    # UNSELECT does not expunge; CLOSE after EXAMINE does not either.
    await w.cmd(b"s STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert await w.cmd(b"u UNSELECT") == b"u OK UNSELECT completed\r\n"
    await w.cmd(b"e EXAMINE INBOX")
    assert await w.cmd(b"s STORE 1 +FLAGS (\\Seen)") == b"s NO [READ-ONLY] Mailbox is read-only\r\n"
    assert await w.cmd(b"x EXPUNGE") == b"x NO [READ-ONLY] Mailbox is read-only\r\n"
    assert await w.cmd(b"c CLOSE") == b"c OK CLOSE completed\r\n"
    assert (await w.cmd(b"t STATUS INBOX (MESSAGES)")).startswith(b'* STATUS "INBOX" (MESSAGES 2)')
    await w.cmd(b"s SELECT INBOX")
    assert await w.cmd(b"c CLOSE") == b"c OK CLOSE completed\r\n"
    assert (await w.cmd(b"t STATUS INBOX (MESSAGES)")).startswith(b'* STATUS "INBOX" (MESSAGES 1)')


async def test_limits_over_the_wire(tmp_path: Path, ca: trustme.CA) -> None:
    limits = ImapLimits(connections=1, nesting_depth=4, failed_login_delay=0.01)
    async with running_server(tmp_path, ca, limits=limits) as srv:
        w = await login(srv)
        out = await w.cmd(b"q SEARCH NOT NOT NOT NOT NOT ALL")
        assert out.startswith(b"q BAD Error in IMAP command: expected ")
        assert await w.cmd(b"n NOOP") == b"n OK NOOP completed\r\n"
        # A second connection over limits.connections is turned away at once.
        w2 = await Wire.open(srv.port)
        assert w2.greeting == b"* BYE Too many connections\r\n"


async def test_a_deleted_parent_stays_as_noselect_and_cannot_be_selected(srv: Running) -> None:
    w = await Wire.open(srv.port)
    await w.cmd(LOGIN)
    assert (await w.cmd(b"c CREATE Projects/2024")).endswith(b"c OK CREATE completed\r\n")
    # RFC 3501 6.3.4: a mailbox with inferiors is deleted but keeps its name as \Noselect.
    assert (await w.cmd(b"d DELETE Projects")).endswith(b"d OK DELETE completed\r\n")
    out = await w.cmd(b'l LIST "" "Projects*"')
    assert out.startswith(b'* LIST (\\HasChildren \\Noselect) "/" "Projects"\r\n')
    out = await w.cmd(b"s SELECT Projects")
    assert out.startswith(b"s NO "), out
    out = await w.cmd(b"e EXAMINE Projects/2024")
    assert out.endswith(b"e OK [READ-ONLY] EXAMINE completed\r\n")
    await w.close()
