"""Hostile input over real loopback TCP: the protocol's own error reply, bounded memory."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme

from tests.imap.serverkit import PASSWORD, USER, Running, running_server
from tests.imap.wire import Wire

LOGIN = f'a LOGIN {USER} "{PASSWORD}"'.encode()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def srv(tmp_path: Path, ca: trustme.CA) -> AsyncIterator[Running]:
    async with running_server(tmp_path, ca) as running:
        yield running


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
