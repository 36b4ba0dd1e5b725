"""Hostile input over real loopback TCP: the protocol's own error reply, bounded memory."""

from __future__ import annotations

import asyncio
import gc
import os
import tracemalloc
from pathlib import Path

import trustme

from mailcore.limits import ImapLimits
from tests.imap.serverkit import PASSWORD, USER, Running, running_server
from tests.imap.wire import Wire

LOGIN = f'a LOGIN {USER} "{PASSWORD}"'.encode()


async def login(srv: Running) -> Wire:
    w = await Wire.open(srv.port)
    assert (await w.cmd(LOGIN)).endswith(b"Logged in\r\n")
    return w


def folders(srv: Running) -> set[str]:
    home = srv.store.layout.account_dir(USER)
    return {d for d in os.listdir(home) if d.startswith(".")}


# ------------------------------------------------------ names over NAME_MAX


async def test_create_and_rename_of_names_too_long_for_a_directory(srv: Running) -> None:
    w = await login(srv)
    before = folders(srv)
    long_name = b'"' + b"L" * 300 + b'"'
    deep = b'"' + b"/".join([b"q"] * 200) + b'"'
    for line in (b"c1 CREATE " + long_name, b"c2 CREATE " + deep):
        out = await w.cmd(line)
        assert out.startswith(line[:3] + b"NO [CANNOT] mailbox name too long"), out
    assert folders(srv) == before  # not one superior of q/q/q/... is left
    assert (await w.cmd(b"c3 CREATE Short")).startswith(b"c3 OK")
    out = await w.cmd(b'c4 RENAME Short "' + b"R" * 300 + b'"')
    assert out.startswith(b"c4 NO [CANNOT] mailbox name too long"), out
    out = await w.cmd(b'c5 LIST "" "*"')
    assert b"Short" in out and b"LLLL" not in out and b"RRRR" not in out and b'"q' not in out
    # The deepest name that fits is still fine: ".q" * 127 is 254 bytes.
    fits = b"/".join([b"q"] * 127)
    assert (await w.cmd(b"c6 CREATE " + fits)).startswith(b"c6 OK")


# ------------------------------------------- literals before authentication


async def test_nonsync_literal_before_login_is_refused_before_its_octets(srv: Running) -> None:
    w = await Wire.open(srv.port)
    # Nothing of the 20 MB is sent: the answer comes after the header alone,
    # so the server cannot have buffered the literal (RFC 7888 section 4).
    await w.send(b"a LOGIN {20000000+}\r\n")
    assert await w.line() == b"* BYE [TOOBIG] Literal too large before authentication\r\n"
    assert await w.line() == b""  # closed
    # A literal within unauthenticated_literal still logs in, pipelined
    # commands behind it included (they get the full literal size).
    w = await Wire.open(srv.port)
    user, password = USER.encode(), PASSWORD.encode()
    message = b"Subject: pipelined\r\n\r\n" + b"x" * 20_000 + b"\r\n"
    await w.send(
        b"a LOGIN {%d+}\r\n%s {%d+}\r\n%s\r\n" % (len(user), user, len(password), password)
        + b"b APPEND INBOX {%d+}\r\n%s\r\n" % (len(message), message)
    )
    assert (await w.until(b"a")).endswith(b"Logged in\r\n")
    assert (await w.until(b"b")).startswith(b"b OK [APPENDUID ")


# ------------------------------------------------- FETCH response amplification


async def test_fetch_over_the_response_cap_is_refused_before_anything(
    tmp_path: Path, ca: trustme.CA
) -> None:
    limits = ImapLimits(failed_login_delay=0.01, fetch_response_size=100_000)
    async with running_server(tmp_path, ca, limits=limits) as srv:
        body = bytes(range(32, 127)) * 800  # 76 000 octets of text
        message = b"Subject: big\r\n\r\n" + body + b"\r\n"
        await srv.deliver(message)
        w = await login(srv)
        assert b"OK" in await w.cmd(b"s SELECT INBOX")
        # Three views of the message: 228 000 octets > 100 000. BODY[] (not
        # PEEK) would set \Seen: the refusal comes first and sets nothing.
        out = await w.cmd(b"f1 FETCH 1 (BODY[]<0.100000> BODY[]<1.100000> BODY[]<2.100000>)")
        assert (
            out == b"f1 NO [LIMIT] FETCH response over 100000 octets per message; ask for less\r\n"
        )
        assert b"\\Seen" not in await w.cmd(b"f2 FETCH 1 FLAGS")
        # Partials whose sum fits are answered, each from its own offset.
        out = await w.cmd(b"f3 FETCH 1 (BODY.PEEK[]<0.5000> BODY.PEEK[]<70000.5000>)")
        assert out == (
            b"* 1 FETCH (BODY[]<0> {5000}\r\n"
            + message[:5000]
            + b" BODY[]<70000> {5000}\r\n"
            + message[70000:75000]
            + b")\r\nf3 OK FETCH completed\r\n"
        )
        # A message is always fetched once, even one over the cap, and two
        # sections of it that fit the cap together also are.
        await srv.deliver(b"Subject: bigger\r\n\r\n" + body * 2 + b"\r\n")
        assert b"* 2 EXISTS" in await w.cmd(b"n1 SELECT INBOX")
        out = await w.cmd(b"f4 FETCH 2 BODY.PEEK[]")
        assert out.startswith(b"* 2 FETCH (BODY[] {152021}\r\n") and out.endswith(
            b"f4 OK FETCH completed\r\n"
        )
        out = await w.cmd(b"f5 FETCH 1:2 (BODY.PEEK[HEADER] BODY.PEEK[TEXT]<0.10>)")
        assert out.endswith(b"f5 OK FETCH completed\r\n")


async def test_fetch_of_many_large_partials_holds_about_one_message(srv: Running) -> None:
    size = 2_000_000
    message = b"Subject: big\r\n\r\n" + (b"y" * 998 + b"\r\n") * (size // 1000)
    await srv.deliver(message)
    w = await login(srv)
    assert b"OK" in await w.cmd(b"s SELECT INBOX")
    items = b" ".join(b"BODY.PEEK[]<%d.%d>" % (i, size) for i in range(20))
    gc.collect()
    tracemalloc.start()
    try:
        await w.send(b"f FETCH 1 (" + items + b")\r\n")
        received, tail = 0, b""
        while not tail.endswith(b"f OK FETCH completed\r\n"):
            data = await asyncio.wait_for(w.reader.read(1 << 16), 10)
            assert data, "connection closed"
            received += len(data)
            tail = (tail + data)[-100:]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    expected = sum(len(message) - i for i in range(20))
    assert received > expected
    # The response is 20 times the message; before, it was built whole (and
    # copied while being joined and written): peak memory several times that.
    assert peak < 6 * len(message), peak
