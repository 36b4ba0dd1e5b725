"""Envelope, Session and the reply-string parser of the aiosmtpd adapter."""

from __future__ import annotations

import pytest

from mailcore.smtp.handlers import Envelope, parse_reply_string
from mailcore.smtp.replies import Reply


def test_envelope_records_dsn_parameters() -> None:
    env = Envelope()
    env.set_mail("a@b.org", {"SIZE": "123", "BODY": "8bitmime", "RET": "hdrs", "ENVID": "QQ+2B1"})
    env.add_recipient("x@y.org", {"NOTIFY": "success,delay", "ORCPT": "rfc822;x+40y.org"})
    env.add_recipient("z@y.org", {})
    assert (env.declared_size, env.body_type, env.ret, env.envid) == (
        123,
        "8BITMIME",
        "HDRS",
        "QQ+1",
    )
    assert env.rcpt_tos == ["x@y.org", "z@y.org"]
    assert env.recipients[0].notify == ("SUCCESS", "DELAY")
    assert env.recipients[0].orcpt == ("rfc822", "x@y.org")
    assert env.recipients[1].notify is None and env.recipients[1].orcpt is None


def test_envelope_spills_large_bodies_to_a_file() -> None:
    env = Envelope(spool_threshold=1000)
    env.write(b"a" * 600)
    assert env._spool is None  # still in memory
    env.write(b"b" * 600)
    assert env._spool is not None and env._spool.fileno() >= 0  # now a temporary file
    assert env.content == b"a" * 600 + b"b" * 600
    assert env.size == 1200
    assert env.open().read(3) == b"aaa"
    env.write(b"c")  # after open(): appended, not written over the start
    assert env.content == b"a" * 600 + b"b" * 600 + b"c"
    env.discard()
    assert env.content == b"" and env.size == 0


def test_envelope_small_body_in_memory() -> None:
    env = Envelope()
    for part in (b"Subject: x\r\n", bytearray(b"\r\n"), memoryview(b"body\r\n")):
        env.write(part)  # type: ignore[arg-type]
    assert env.content == b"Subject: x\r\n\r\nbody\r\n"
    assert type(env.content) is bytes and env.size == 20
    fh = env.open()
    assert fh.read() == env.content
    env.write(b"more")
    assert env.content.endswith(b"body\r\nmore") and env.size == 24
    env.discard()
    assert env.content == b"" and env.size == 0


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        ("250 OK", Reply(250, None, "OK")),
        ("250 2.0.0 Queued", Reply(250, "2.0.0", "Queued")),
        ("550 5.1.1 No such user", Reply(550, "5.1.1", "No such user")),
        ("250-first\r\n250 second", Reply(250, None, "first\nsecond")),
        ("452 2.0.0 mismatched class", Reply(452, None, "2.0.0 mismatched class")),
        ("hello", Reply(451, "4.3.0", "Local error in processing")),
    ],
)
def test_parse_reply_string(text: str, reply: Reply) -> None:
    assert parse_reply_string(text) == reply
