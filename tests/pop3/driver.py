"""A tiny in-memory adapter that drives :class:`ServerConnection` for the sans-IO tests.

It plays the part of ``pop3/server.py`` without sockets: a fixed account, a
list of messages, and the same calls the real adapter makes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from mailcore.pop3 import events, replies
from mailcore.pop3.protocol import ServerConnection, apop_matches

USER = "jeff"
PASSWORD = "password"


@dataclass
class Drop:
    """What the fake store holds and what the session did to it."""

    messages: list[bytes]
    user: str = USER
    secret: bytes = PASSWORD.encode()
    deleted: list[int] = field(default_factory=list)
    locked: bool = False
    events: list[events.Event] = field(default_factory=list)

    def uid(self, number: int) -> str:
        return f"1.{number}"


def make_conn(**kw: object) -> ServerConnection:
    params: dict[str, object] = {
        "host": "pop.example",
        "pid": 42,
        "clock": 7,
        "allow_plaintext_auth": True,
        "mechanisms": ("PLAIN",),
        "apop": True,
    }
    params.update(kw)
    conn = ServerConnection(**params)  # type: ignore[arg-type]
    conn.greet()
    return conn


def _handle(conn: ServerConnection, drop: Drop, event: events.Event) -> None:
    drop.events.append(event)
    sizes = [len(m) for m in drop.messages]
    uids = [drop.uid(n) for n in range(1, len(sizes) + 1)]
    if isinstance(event, events.PasswordLogin):
        if drop.locked:
            conn.reject_login(replies.IN_USE)
        elif (event.username, event.password.encode()) == (drop.user, drop.secret):
            conn.accept_login(drop.user, sizes, uids)
        else:
            conn.reject_login()
    elif isinstance(event, events.ApopLogin):
        secret = drop.secret if event.username == drop.user else None
        if apop_matches(event.timestamp, secret, event.digest):
            conn.accept_login(drop.user, sizes, uids)
        else:
            conn.reject_login()
    elif isinstance(event, events.AuthStart):
        if event.initial is None:
            conn.send_challenge(b"")
        else:
            _plain(conn, event.initial, sizes, uids)
    elif isinstance(event, events.AuthResponse):
        _plain(conn, event.data, sizes, uids)
    elif isinstance(event, events.StartTLS):
        conn.tls_started()
    elif isinstance(event, events.Retrieve):
        conn.begin_message()
        body = drop.messages[event.number - 1]
        # Several chunks, as the store streams them.
        for i in range(0, len(body), 7):
            conn.message_data(body[i : i + 7])
        conn.end_message()
    elif isinstance(event, events.Quit):
        drop.deleted.extend(event.deleted)
        conn.update_done()


def _plain(conn: ServerConnection, data: bytes, sizes: Sequence[int], uids: Sequence[str]) -> None:
    parts = data.split(b"\0")
    if len(parts) == 3 and parts[1:] == [USER.encode(), PASSWORD.encode()]:
        conn.accept_login(USER, sizes, uids)
    else:
        conn.reject_login()


def run(conn: ServerConnection, chunks: Sequence[bytes], drop: Drop, *, eof: bool = False) -> bytes:
    """Feed ``chunks`` one by one, answer every event, return all output."""
    out = [conn.data_to_send()]
    for chunk in [*chunks, b""] if eof else chunks:
        conn.receive_data(chunk)
        while True:
            event = conn.next_event()
            if event is events.NeedData.NEED_DATA:
                break
            if event is events.Paused.PAUSED:
                raise AssertionError("the driver answers every event before asking again")
            assert not isinstance(event, (events.NeedData, events.Paused))
            _handle(conn, drop, event)
            out.append(conn.data_to_send())
        out.append(conn.data_to_send())
    return b"".join(out)
