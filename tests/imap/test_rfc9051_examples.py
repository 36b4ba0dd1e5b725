"""The examples of RFC 9051 section 6, run against the server over loopback.

Each example's client lines are sent as written (after an IMAP4rev2 login
where the example is past authentication); the server's lines are compared
exactly where the RFC fixes them, and with this mailbox's values where the
RFC's are illustrative (UIDs, UIDVALIDITY, counts). Examples that need
extensions outside this issue (CONDSTORE, QRESYNC, ...) are not here.
"""

from __future__ import annotations

import re

from tests.imap.serverkit import PASSWORD, USER, Running
from tests.imap.wire import Wire

MESSAGE = (
    b"Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n"
    b"From: Fred Foobar <foobar@Blurdybloop.example>\r\n"
    b"Subject: afternoon meeting\r\n"
    b"To: mooch@owatagu.siam.edu.example\r\n"
    b"Message-Id: <B27397-0100000@Blurdybloop.example>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
    b"\r\n"
    b"Hello Joe, do you think we can meet at 3:30 tomorrow?\r\n"
)


async def rev2(srv: Running) -> Wire:
    w = await Wire.open(srv.port)
    await w.cmd(f'x LOGIN {USER} "{PASSWORD}"'.encode())
    assert await w.cmd(b"t2 ENABLE IMAP4rev2") == (
        b"* ENABLED IMAP4rev2\r\nt2 OK ENABLE completed\r\n"
    )
    return w


async def test_6_1_any_state(srv: Running) -> None:
    w = await Wire.open(srv.port)
    out = await w.cmd(b"abcd CAPABILITY")
    assert re.fullmatch(
        rb"\* CAPABILITY IMAP4rev1 IMAP4rev2 [^\r\n]*STARTTLS[^\r\n]*\r\n"
        rb"abcd OK CAPABILITY completed\r\n",
        out,
    )
    # 6.1.2: NOOP is valid in every state.
    assert await w.cmd(b"a002 NOOP") == b"a002 OK NOOP completed\r\n"
    out = await w.cmd(b"A023 LOGOUT")
    assert out == b"* BYE imap.example logging out\r\nA023 OK LOGOUT completed\r\n"


async def test_6_3_create_rename_list(srv: Running) -> None:
    w = await rev2(srv)
    # 6.3.4: a trailing delimiter only says inferiors will follow.
    assert await w.cmd(b"A003 CREATE owatagusiam/") == b"A003 OK CREATE completed\r\n"
    assert await w.cmd(b"A004 CREATE owatagusiam/blurdybloop") == b"A004 OK CREATE completed\r\n"
    await w.cmd(b"A005 CREATE blurdybloop")
    await w.cmd(b"A006 CREATE foo/bar")
    # 6.3.6: renaming a mailbox renames its inferiors.
    assert await w.cmd(b"A683 RENAME blurdybloop sarasoop") == b"A683 OK RENAME completed\r\n"
    assert await w.cmd(b"A685 RENAME foo zowie") == b"A685 OK RENAME completed\r\n"
    out = await w.cmd(b'A686 LIST "" *')
    assert b'"sarasoop"' in out and b'"zowie/bar"' in out and b'"foo' not in out
    # 6.3.9: the empty pattern returns the delimiter and root.
    assert await w.cmd(b'A101 LIST "" ""') == (
        b'* LIST (\\Noselect) "/" ""\r\nA101 OK LIST completed\r\n'
    )
    out = await w.cmd(b'A202 LIST "" owatagusiam/%')
    assert out == (
        b'* LIST (\\HasNoChildren) "/" "owatagusiam/blurdybloop"\r\nA202 OK LIST completed\r\n'
    )
    # 6.3.5: DELETE of a mailbox without inferiors.
    assert await w.cmd(b"A683 DELETE sarasoop") == b"A683 OK DELETE completed\r\n"


async def test_6_3_append_and_status(srv: Running) -> None:
    w = await rev2(srv)
    await w.cmd(b"c CREATE saved-messages")
    await w.send(b"A003 APPEND saved-messages (\\Seen) {%d}\r\n" % len(MESSAGE))
    assert await w.line() == b"+ Ready for literal data\r\n"
    await w.send(MESSAGE + b"\r\n")
    out = await w.until(b"A003")
    assert re.fullmatch(rb"A003 OK \[APPENDUID \d+ 1\] APPEND completed\r\n", out)
    out = await w.cmd(b"A042 STATUS saved-messages (UIDNEXT MESSAGES)")
    assert (
        out == b'* STATUS "saved-messages" (UIDNEXT 2 MESSAGES 1)\r\nA042 OK STATUS completed\r\n'
    )


async def test_6_3_select(srv: Running) -> None:
    for _ in range(3):
        await srv.deliver(MESSAGE)
    w = await rev2(srv)
    out = await w.cmd(b"A142 SELECT INBOX")
    assert re.fullmatch(
        rb"\* 3 EXISTS\r\n"
        rb"\* FLAGS \(\\Answered \\Flagged \\Deleted \\Seen \\Draft\)\r\n"
        rb"\* OK \[PERMANENTFLAGS \(\\Answered \\Flagged \\Deleted \\Seen \\Draft \\\*\)\] "
        rb"[^\r]*\r\n"
        rb"\* OK \[UIDVALIDITY \d+\] [^\r]*\r\n"
        rb"\* OK \[UIDNEXT 4\] [^\r]*\r\n"
        rb'\* LIST \(\) "/" "INBOX"\r\n'
        rb"A142 OK \[READ-WRITE\] SELECT completed\r\n",
        out,
    )
    # 6.3.3: EXAMINE is read-only and has no PERMANENTFLAGS to offer.
    out = await w.cmd(b"A932 EXAMINE INBOX")
    assert out.startswith(b"* OK [CLOSED] Previous mailbox closed\r\n* 3 EXISTS\r\n")
    assert b"* OK [PERMANENTFLAGS ()]" in out
    assert out.endswith(b"A932 OK [READ-ONLY] EXAMINE completed\r\n")


async def test_6_4_store_search_expunge_copy(srv: Running) -> None:
    for _ in range(11):
        await srv.deliver(MESSAGE)
    w = await rev2(srv)
    await w.cmd(b"s SELECT INBOX")
    await w.cmd(b"s STORE 2 FLAGS.SILENT (\\Seen)")
    await w.cmd(b"s STORE 4 FLAGS.SILENT (\\Seen \\Flagged)")
    # 6.4.6
    assert await w.cmd(b"A003 STORE 2:4 +FLAGS (\\Deleted)") == (
        b"* 2 FETCH (FLAGS (\\Deleted \\Seen))\r\n"
        b"* 3 FETCH (FLAGS (\\Deleted))\r\n"
        b"* 4 FETCH (FLAGS (\\Deleted \\Flagged \\Seen))\r\n"
        b"A003 OK STORE completed\r\n"
    )
    # 6.4.4
    out = await w.cmd(b'A282 SEARCH RETURN (MIN COUNT) FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"')
    assert out == b'* ESEARCH (TAG "A282") MIN 4 COUNT 1\r\nA282 OK SEARCH completed\r\n'
    out = await w.cmd(b'A283 SEARCH RETURN () FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"')
    assert out == b'* ESEARCH (TAG "A283") ALL 4\r\nA283 OK SEARCH completed\r\n'
    out = await w.cmd(b'A284 SEARCH TEXT "string not in mailbox"')
    assert out == b'* ESEARCH (TAG "A284")\r\nA284 OK SEARCH completed\r\n'
    # 6.4.7
    await w.cmd(b"c CREATE MEETING")
    out = await w.cmd(b"A003 COPY 2:4 MEETING")
    assert re.fullmatch(rb"A003 OK \[COPYUID \d+ 2:4 1,2,3\] COPY completed\r\n", out)
    # 6.4.3: messages 3, 4, 7 and 11 deleted.
    await w.cmd(b"s STORE 1:* -FLAGS.SILENT (\\Deleted)")
    await w.cmd(b"s STORE 3,4,7,11 +FLAGS.SILENT (\\Deleted)")
    assert await w.cmd(b"A202 EXPUNGE") == (
        b"* 3 EXPUNGE\r\n* 3 EXPUNGE\r\n* 5 EXPUNGE\r\n* 8 EXPUNGE\r\nA202 OK EXPUNGE completed\r\n"
    )
    # 6.4.9: UID FETCH of a range; a UID range beyond the mailbox is not an error.
    out = await w.cmd(b"A999 UID FETCH 4:6 FLAGS")
    assert out == (
        b"* 3 FETCH (UID 5 FLAGS ())\r\n* 4 FETCH (UID 6 FLAGS ())\r\n"
        b"A999 OK UID FETCH completed\r\n"
    )
    assert await w.cmd(b"A998 UID FETCH 100:200 FLAGS") == b"A998 OK UID FETCH completed\r\n"
    # 6.4.2: CLOSE expunges silently.
    await w.cmd(b"s STORE 1 +FLAGS.SILENT (\\Deleted)")
    assert await w.cmd(b"A341 CLOSE") == b"A341 OK CLOSE completed\r\n"
    out = await w.cmd(b"t STATUS INBOX (MESSAGES)")
    assert out.startswith(b'* STATUS "INBOX" (MESSAGES 6)')


async def test_6_4_fetch(srv: Running) -> None:
    await srv.deliver(MESSAGE)
    w = await rev2(srv)
    await w.cmd(b"s SELECT INBOX")
    # 6.4.5 (FETCH 1 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])).
    out = await w.cmd(b"A654 FETCH 1 (FLAGS BODY[HEADER.FIELDS (DATE FROM)])")
    header = (
        b"Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\n"
        b"From: Fred Foobar <foobar@Blurdybloop.example>\r\n\r\n"
    )
    assert out == (
        b"* 1 FETCH (FLAGS (\\Seen) BODY[HEADER.FIELDS (DATE FROM)] {%d}\r\n" % len(header)
        + header
        + b")\r\nA654 OK FETCH completed\r\n"
    )
    out = await w.cmd(b"a FETCH 1 ENVELOPE")
    assert out == (
        b'* 1 FETCH (ENVELOPE ("Mon, 7 Feb 1994 21:52:25 -0800 (PST)" "afternoon meeting" '
        b'(("Fred Foobar" NIL "foobar" "Blurdybloop.example")) '
        b'(("Fred Foobar" NIL "foobar" "Blurdybloop.example")) '
        b'(("Fred Foobar" NIL "foobar" "Blurdybloop.example")) '
        b'((NIL NIL "mooch" "owatagu.siam.edu.example")) NIL NIL NIL '
        b'"<B27397-0100000@Blurdybloop.example>"))\r\na OK FETCH completed\r\n'
    )
