"""The sans-IO POP2 machine (RFC 937): the RFC's sample dialogue and the state rules."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mailcore.pop3.events import NeedData, Paused
from mailcore.pop3.pop2_protocol import (
    POP2_TRANSITIONS,
    Pop2Closed,
    Pop2Connection,
    Pop2Event,
    Pop2Fold,
    Pop2Login,
    Pop2Quit,
    Pop2Send,
    Pop2State,
)
from tests.helpers import splits

TRANSCRIPT = Path(__file__).parent.parent / "data" / "transcripts" / "pop2_rfc937.txt"


@dataclass
class Folders:
    """The fake store behind the driver: folder name → messages."""

    folders: dict[str, list[bytes]]
    current: str = "INBOX"
    deleted: list[tuple[str, int]] = field(default_factory=list)
    events: list[Pop2Event] = field(default_factory=list)


def _sizes(store: Folders) -> list[int]:
    return [len(m) for m in store.folders[store.current]]


def drive(store: Folders, chunks: Sequence[bytes], *, eof: bool = False) -> bytes:
    conn = Pop2Connection(host="pop2.example")
    conn.greet()
    out = [conn.data_to_send()]
    for chunk in [*chunks, b""] if eof else chunks:
        conn.receive_data(chunk)
        while True:
            event = conn.next_event()
            if event is NeedData.NEED_DATA:
                break
            assert event is not Paused.PAUSED
            assert not isinstance(event, (NeedData, Paused))
            store.events.append(event)
            if isinstance(event, Pop2Login):
                if (event.username, event.password) == ("POSTEL", "SECRET"):
                    conn.accept_login(event.username, _sizes(store))
                else:
                    conn.reject_login()
            elif isinstance(event, Pop2Send):
                body = store.folders[store.current][event.number - 1]
                conn.message_data(body[:10])
                conn.message_data(body[10:])
                conn.end_message()
            elif isinstance(event, Pop2Fold):
                store.deleted += [(store.current, n) for n in event.deleted]
                if event.folder in store.folders:
                    store.current = event.folder
                    conn.folder_opened(_sizes(store))
                else:
                    conn.folder_failed()
            elif isinstance(event, Pop2Quit):
                store.deleted += [(store.current, n) for n in event.deleted]
                conn.quit_done()
            out.append(conn.data_to_send())
    return b"".join(out)


def load_transcript() -> tuple[bytes, bytes, list[bytes]]:
    """Client bytes, expected server bytes, and the messages RETR sends."""
    client, server, messages = [], [], []
    current: list[bytes] | None = None
    for raw in TRANSCRIPT.read_text(encoding="utf-8").splitlines():
        if raw.startswith("# "):
            continue
        side, text = raw[:3], raw[3:].encode("utf-8") + b"\r\n"
        if side == "C: ":
            client.append(text)
            current = [] if text == b"RETR\r\n" else None
            if current is not None:
                messages.append(current)
        else:
            assert side == "S: "
            server.append(text)
            if current is not None:
                current.append(text)
    return b"".join(client), b"".join(server), [b"".join(m) for m in messages]


def test_rfc937_sample_dialogue() -> None:
    client, server, messages = load_transcript()
    for chunks in splits(client):
        store = Folders({"INBOX": list(messages)})
        assert drive(store, chunks) == server
        assert store.deleted == [("INBOX", 1)]


def test_bad_helo_closes_without_login() -> None:
    store = Folders({"INBOX": [b"x\r\n"]})
    out = drive(store, [b"HELO POSTEL WRONG\r\nREAD\r\n"])
    assert out.endswith(b"- Authentication failed\r\n")
    assert store.events[-1] == Pop2Closed("errors")


def test_dropped_connection_deletes_nothing_and_nack_keeps_the_message() -> None:
    store = Folders({"INBOX": [b"one\r\n", b"two\r\n"]})
    out = drive(
        store, [b"HELO POSTEL SECRET\r\nREAD\r\nRETR\r\nNACK\r\nRETR\r\nACKD\r\n"], eof=True
    )
    assert out.endswith(
        b"=5 characters in message 1\r\none\r\n=5 characters in message 1\r\none\r\n"
        b"=5 characters in message 2\r\n"
    )
    assert store.deleted == []
    assert store.events[-1] == Pop2Closed("eof")


def test_fold_applies_deletions_and_switches_folder() -> None:
    store = Folders({"INBOX": [b"a\r\n"], "Archive": [b"b\r\n", b"cc\r\n"]})
    out = drive(
        store,
        [b"HELO POSTEL SECRET\r\nREAD\r\nRETR\r\nACKD\r\nFOLD Archive\r\nREAD 2\r\nFOLD Nope\r\n"],
    )
    assert out.endswith(
        b"=0 no more messages\r\n#2 messages in folder\r\n=4 characters in message 2\r\n"
        b"#0 messages in folder\r\n"
    )
    assert store.deleted == [("INBOX", 1)]


def test_commands_out_of_state_and_syntax() -> None:
    store = Folders({"INBOX": [b"a\r\n"]})
    out = drive(
        store,
        [b"READ\r\nHELO x\r\nHELO POSTEL SECRET\r\nRETR\r\nACKS\r\nREAD 9\r\nREAD x\r\nQUIT\r\n"],
    )
    assert out.split(b"\r\n")[1:] == [
        b"- READ not allowed now",
        b"- HELO needs a user and a password",
        b"#1 messages in folder",
        b"- RETR not allowed now",
        b"- ACKS not allowed now",
        b"=0 no more messages",
        b"- Bad message number",
        b"+ Bye",
        b"",
    ]
    assert store.events[-1] == Pop2Quit(())


def test_every_state_is_reachable() -> None:
    assert {Pop2State.AUTH} | set(POP2_TRANSITIONS.values()) == set(Pop2State)
