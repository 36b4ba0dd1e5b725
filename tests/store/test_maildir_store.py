"""The embedded store, through its public async interface, on a real temp directory."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mailcore.store import (
    ChangeKind,
    FlagMode,
    MailboxExists,
    MailboxInfo,
    MailboxNotFound,
    MaildirStore,
    MaildropLocked,
    NoSuchMessage,
    StoreError,
    reindex,
)
from mailcore.store.base import match_pattern
from tests.store.conftest import ACC

MSG = b"From: Bob <bob@example.org>\r\nTo: alice@example.org\r\nSubject: Hello\r\n\r\nHi!\r\n"


async def read_all(s: MaildirStore, mailbox: str, uid: int, **kw: object) -> bytes:
    return b"".join([c async for c in s.read(ACC, mailbox, uid, **kw)])  # type: ignore[arg-type]


def files_in(maildir: Path) -> list[str]:
    return sorted(os.listdir(maildir / "new") + os.listdir(maildir / "cur"))


async def test_new_account_has_inbox_and_special_use(store: MaildirStore) -> None:
    boxes = {b.name: b for b in await store.list_mailboxes(ACC)}
    assert sorted(boxes) == ["Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash"]
    assert "\\Sent" in boxes["Sent"].attributes
    assert "\\Trash" in boxes["Trash"].attributes
    assert all(b.subscribed for b in boxes.values())
    # Creating it again changes nothing.
    await store.create_account(ACC)
    assert len(await store.list_mailboxes(ACC)) == 6


async def test_append_is_a_file_in_new_with_exact_bytes(
    store: MaildirStore, tmp_path: Path
) -> None:
    r1 = await store.append(ACC, "INBOX", MSG)
    r2 = await store.append(ACC, "inbox", MSG + b"more\r\n")
    assert (r1.uid, r2.uid) == (1, 2)
    assert r2.modseq > r1.modseq and r1.uidvalidity == r2.uidvalidity
    inbox = tmp_path / "mail" / ACC
    names = os.listdir(inbox / "new")
    assert len(names) == 2 and os.listdir(inbox / "tmp") == []
    assert sorted((inbox / "new" / n).read_bytes() for n in names) == [MSG, MSG + b"more\r\n"]
    assert await read_all(store, "INBOX", 1) == MSG
    assert await read_all(store, "INBOX", 1, header_only=True) == MSG[: MSG.index(b"\r\n\r\n") + 4]
    assert await read_all(store, "INBOX", 2, start=6, length=3) == MSG[6:9]
    meta = await store.messages(ACC, "INBOX")
    assert [m.uid for m in meta] == [1, 2]
    assert meta[0].size == len(MSG)
    assert meta[0].cache["subject"] == "Hello"
    assert meta[0].cache["from"] == "Bob <bob@example.org>"
    st = await store.status(ACC, "INBOX")
    assert (st.messages, st.unseen, st.uidnext, st.size) == (2, 2, 3, 2 * len(MSG) + 6)


async def test_big_message_streams_in_chunks(store: MaildirStore) -> None:
    big = b"Subject: big\r\n\r\n" + os.urandom(700_000)
    r = await store.append(ACC, "INBOX", big)
    chunks = [c async for c in store.read(ACC, "INBOX", r.uid)]
    assert len(chunks) >= 3 and b"".join(chunks) == big


async def test_append_with_flags_goes_to_cur_with_info(store: MaildirStore, tmp_path: Path) -> None:
    await store.append(ACC, "Sent", MSG, flags=["\\seen", "\\Answered", "$Label1", "\\Recent"])
    [name] = os.listdir(tmp_path / "mail" / ACC / ".Sent" / "cur")
    assert name.endswith(",U=1:2,RS")
    [meta] = await store.messages(ACC, "Sent")
    assert meta.flags == {"\\Seen", "\\Answered", "$Label1"}


async def test_flags_rename_files_and_bump_modseq(store: MaildirStore, tmp_path: Path) -> None:
    for _ in range(3):
        await store.append(ACC, "INBOX", MSG)
    before = (await store.status(ACC, "INBOX")).highestmodseq
    res = await store.store_flags(ACC, "INBOX", [1, 2], ["\\Seen", "\\Flagged"], FlagMode.ADD)
    assert res.modseq == before + 1
    assert [u for u, _f, _m in res.updated] == [1, 2]
    inbox = tmp_path / "mail" / ACC
    assert len(os.listdir(inbox / "new")) == 1
    assert all(n.endswith(":2,FS") for n in os.listdir(inbox / "cur"))
    res = await store.store_flags(ACC, "INBOX", [1], ["\\Flagged"], FlagMode.REMOVE)
    assert res.updated == ((1, frozenset({"\\Seen"}), before + 2),)
    res = await store.store_flags(ACC, "INBOX", [2], ["$Work"], FlagMode.REPLACE)
    assert res.updated[0][1] == {"$Work"}
    # No change, no new MODSEQ.
    same = await store.store_flags(ACC, "INBOX", [2], ["$Work"], FlagMode.ADD)
    assert same.updated == () and same.modseq == res.modseq
    # UNCHANGEDSINCE (RFC 7162): message 2 changed after `before`.
    cond = await store.store_flags(
        ACC, "INBOX", [2, 3], ["\\Seen"], FlagMode.ADD, unchanged_since=before
    )
    assert cond.failed == (2,) and [u for u, _f, _m in cond.updated] == [3]
    meta = {m.uid: m for m in await store.messages(ACC, "INBOX")}
    assert meta[1].flags == {"\\Seen"} and meta[3].flags == {"\\Seen"}
    assert (await store.status(ACC, "INBOX")).unseen == 1


async def test_expunge_removes_only_deleted(store: MaildirStore, tmp_path: Path) -> None:
    for _ in range(4):
        await store.append(ACC, "INBOX", MSG)
    await store.store_flags(ACC, "INBOX", [1, 3, 4], ["\\Deleted"], FlagMode.ADD)
    assert await store.expunge(ACC, "INBOX", [3, 2]) == [3]
    assert await store.expunge(ACC, "INBOX") == [1, 4]
    assert [m.uid for m in await store.messages(ACC, "INBOX")] == [2]
    assert len(files_in(tmp_path / "mail" / ACC)) == 1
    # UIDs are never reused.
    assert (await store.append(ACC, "INBOX", MSG)).uid == 5
    with pytest.raises(NoSuchMessage):
        await read_all(store, "INBOX", 1)


async def test_copy_and_move_return_uid_mappings(store: MaildirStore, tmp_path: Path) -> None:
    for i in range(3):
        await store.append(ACC, "INBOX", MSG + str(i).encode())
    await store.store_flags(ACC, "INBOX", [2], ["\\Seen"], FlagMode.ADD)
    copied = await store.copy(ACC, "INBOX", [2, 3, 99], "Archive")
    assert (copied.source, copied.destination) == ((2, 3), (1, 2))
    assert copied.uidvalidity == (await store.status(ACC, "Archive")).uidvalidity
    assert await read_all(store, "Archive", 1) == MSG + b"1"
    assert (await store.messages(ACC, "Archive"))[0].flags == {"\\Seen"}
    moved = await store.move(ACC, "INBOX", [1, 3], "Trash")
    assert (moved.source, moved.destination) == ((1, 3), (1, 2))
    assert [m.uid for m in await store.messages(ACC, "INBOX")] == [2]
    assert await read_all(store, "Trash", 2) == MSG + b"2"
    assert len(files_in(tmp_path / "mail" / ACC)) == 1
    assert len(files_in(tmp_path / "mail" / ACC / ".Trash")) == 2


async def test_create_rename_delete_hierarchy(store: MaildirStore, tmp_path: Path) -> None:
    await store.create_mailbox(ACC, "Work/2024/Q1")
    with pytest.raises(MailboxExists):
        await store.create_mailbox(ACC, "Work/2024")
    r = await store.append(ACC, "Work/2024/Q1", MSG)
    validity = (await store.status(ACC, "Work/2024/Q1")).uidvalidity
    assert (tmp_path / "mail" / ACC / ".Work.2024.Q1" / "new").is_dir()
    await store.rename_mailbox(ACC, "Work", "Jobs")
    names = [b.name for b in await store.list_mailboxes(ACC, "", "Jobs*")]
    assert names == ["Jobs", "Jobs/2024", "Jobs/2024/Q1"]
    assert await read_all(store, "Jobs/2024/Q1", r.uid) == MSG
    assert (await store.status(ACC, "Jobs/2024/Q1")).uidvalidity == validity
    with pytest.raises(MailboxNotFound):
        await store.status(ACC, "Work/2024/Q1")
    # A mailbox with inferiors becomes \Noselect; a leaf disappears.
    await store.delete_mailbox(ACC, "Jobs/2024")
    info = {b.name: b for b in await store.list_mailboxes(ACC)}
    assert "\\Noselect" in info["Jobs/2024"].attributes
    assert "\\HasChildren" in info["Jobs/2024"].attributes
    await store.delete_mailbox(ACC, "Jobs/2024/Q1")
    assert not (tmp_path / "mail" / ACC / ".Jobs.2024.Q1").exists()
    with pytest.raises(StoreError):
        await store.delete_mailbox(ACC, "INBOX")
    # Names with dots survive the Maildir++ encoding.
    await store.create_mailbox(ACC, "a.b%c")
    assert "a.b%c" in [b.name for b in await store.list_mailboxes(ACC)]


async def test_rename_inbox_moves_messages_and_leaves_inbox_empty(store: MaildirStore) -> None:
    for i in range(3):
        await store.append(ACC, "INBOX", MSG + bytes([65 + i]))
    await store.rename_mailbox(ACC, "INBOX", "Old")
    assert (await store.status(ACC, "INBOX")).messages == 0
    assert (await store.status(ACC, "INBOX")).uidnext == 4
    old = await store.messages(ACC, "Old")
    assert [await read_all(store, "Old", m.uid) for m in old] == [
        MSG + b"A",
        MSG + b"B",
        MSG + b"C",
    ]
    assert (await store.append(ACC, "INBOX", MSG)).uid == 4


async def test_list_patterns_and_subscriptions(store: MaildirStore) -> None:
    for name in ("a", "a/b", "a/b/c", "ab"):
        await store.create_mailbox(ACC, name)

    def names(boxes: list[MailboxInfo]) -> list[str]:
        return [b.name for b in boxes]

    assert names(await store.list_mailboxes(ACC, "", "a/%")) == ["a/b"]
    assert names(await store.list_mailboxes(ACC, "", "a/*")) == ["a/b", "a/b/c"]
    assert names(await store.list_mailboxes(ACC, "a/", "%")) == ["a/b"]
    assert names(await store.list_mailboxes(ACC, "", "a%")) == ["a", "ab"]
    assert names(await store.list_mailboxes(ACC, "", "inbox")) == ["INBOX"]
    assert names(await store.list_mailboxes(ACC, "", "%")) == [
        "Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash", "a", "ab",
    ]  # fmt: skip
    await store.set_subscribed(ACC, "a/b", True)
    await store.set_subscribed(ACC, "Junk", False)
    subscribed = names(await store.list_mailboxes(ACC, subscribed=True))
    assert "a/b" in subscribed and "Junk" not in subscribed and "a" not in subscribed


async def test_deleted_mailbox_stays_subscribed(store: MaildirStore) -> None:
    # RFC 3501 6.3.6: the server does not take a name off the subscription
    # list by itself; LIST (SUBSCRIBED) shows it as \NonExistent.
    await store.create_mailbox(ACC, "Fruit/Peach")
    await store.create_mailbox(ACC, "Fruit/Pear")
    await store.set_subscribed(ACC, "Fruit/Peach", True)
    await store.delete_mailbox(ACC, "Fruit/Peach")
    await store.delete_mailbox(ACC, "Fruit/Pear")  # not subscribed: gone for good
    subscribed = {
        b.name: b for b in await store.list_mailboxes(ACC, "", "Fruit/*", subscribed=True)
    }
    assert list(subscribed) == ["Fruit/Peach"]
    assert subscribed["Fruit/Peach"].attributes == frozenset({"\\NonExistent"})
    assert subscribed["Fruit/Peach"].subscribed
    # Not a mailbox: plain LIST does not show it, STATUS does not find it.
    assert [b.name for b in await store.list_mailboxes(ACC, "", "Fruit/*")] == []
    with pytest.raises(MailboxNotFound):
        await store.status(ACC, "Fruit/Peach")
    # Created again under the same name: subscribed, a real mailbox.
    await store.create_mailbox(ACC, "Fruit/Peach")
    again = await store.list_mailboxes(ACC, "", "Fruit/Peach", subscribed=True)
    assert [(b.name, b.attributes) for b in again] == [
        ("Fruit/Peach", frozenset({"\\HasNoChildren"}))
    ]
    # Deleted once more and unsubscribed by name: off the list.
    await store.delete_mailbox(ACC, "Fruit/Peach")
    await store.set_subscribed(ACC, "Fruit/Peach", True)  # already on it: no change
    await store.set_subscribed(ACC, "Fruit/Peach", False)
    assert await store.list_mailboxes(ACC, "", "Fruit/*", subscribed=True) == []
    with pytest.raises(MailboxNotFound):
        await store.set_subscribed(ACC, "Fruit/Peach", False)
    # A rename onto a subscribed name without a mailbox takes the subscription.
    await store.create_mailbox(ACC, "Kiwi")
    await store.set_subscribed(ACC, "Kiwi", True)
    await store.delete_mailbox(ACC, "Kiwi")
    await store.create_mailbox(ACC, "Lime")
    await store.rename_mailbox(ACC, "Lime", "Kiwi")
    kiwi = await store.list_mailboxes(ACC, "", "Kiwi", subscribed=True)
    assert [(b.name, b.attributes) for b in kiwi] == [("Kiwi", frozenset({"\\HasNoChildren"}))]


async def test_kept_subscriptions_survive_reindex(tmp_path: Path) -> None:
    async with MaildirStore(tmp_path) as s:
        await s.create_account(ACC)
        for name in ("Plum", "Fig", "Date"):
            await s.create_mailbox(ACC, name)
            await s.set_subscribed(ACC, name, True)
        await s.delete_mailbox(ACC, "Plum")
        await s.delete_mailbox(ACC, "Fig")
        await s.set_subscribed(ACC, "Fig", False)  # off the list for good
    assert await reindex(tmp_path) == 0
    async with MaildirStore(tmp_path) as s:
        listed = {
            b.name: b.attributes for b in await s.list_mailboxes(ACC, "", "*", subscribed=True)
        }
        assert listed["Plum"] == frozenset({"\\NonExistent"})
        assert "Fig" not in listed and "Date" in listed
        # Still a name without a mailbox: creating it takes the subscription,
        # and the note forgets it (a second reindex does not bring it back).
        await s.create_mailbox(ACC, "Plum")
        await s.delete_mailbox(ACC, "Plum")
        await s.set_subscribed(ACC, "Plum", False)
    assert not (tmp_path / "mail" / ACC / "mailcore-kept-subscriptions").exists()
    assert await reindex(tmp_path) == 0
    async with MaildirStore(tmp_path) as s:
        names = [b.name for b in await s.list_mailboxes(ACC, "", "*", subscribed=True)]
        assert "Plum" not in names and "Date" in names


def test_match_pattern_table() -> None:
    cases = [
        ("", "*", "x/y/z", True),
        ("", "%", "x/y", False),
        ("", "x/%/z", "x/y/z", True),
        ("", "INBOX", "INBOX", True),
        ("", "InBoX/%", "INBOX/sub", True),
        ("x/", "*", "x/q", True),
        ("x/", "*", "y/q", False),
        ("", "a.b", "axb", False),
    ]
    for ref, pat, name, expected in cases:
        assert bool(match_pattern(ref, pat).match(name)) is expected, (ref, pat, name)


async def test_unknown_mailbox_errors(store: MaildirStore) -> None:
    with pytest.raises(MailboxNotFound):
        await store.append(ACC, "Nope", MSG)
    with pytest.raises(MailboxNotFound):
        await store.messages(ACC, "Nope")
    with pytest.raises(MailboxNotFound):
        await store.append("nobody@example.org", "INBOX", MSG)


async def test_reconcile_picks_up_foreign_files_and_drops_vanished(
    store: MaildirStore, tmp_path: Path
) -> None:
    inbox = tmp_path / "mail" / ACC
    for _ in range(3):
        await store.append(ACC, "INBOX", MSG)
    # Another tool delivers two messages and marks one of ours seen and deletes another.
    (inbox / "new" / "1700000000.M1P1.other").write_bytes(b"Subject: foreign\r\n\r\nx")
    (inbox / "cur" / "1700000001.M1P1.other:2,FS").write_bytes(b"Subject: seen\r\n\r\ny")
    ours = sorted(os.listdir(inbox / "new"))
    first = next(n for n in ours if n.endswith(",U=1"))
    second = next(n for n in ours if n.endswith(",U=2"))
    os.rename(inbox / "new" / first, inbox / "cur" / (first + ":2,S"))
    os.unlink(inbox / "new" / second)
    feed = store.watch(ACC, "INBOX", session="watcher")
    assert await store.reconcile(ACC) == 4
    meta = {m.uid: m for m in await store.messages(ACC, "INBOX")}
    assert sorted(meta) == [1, 3, 4, 5]
    assert meta[1].flags == {"\\Seen"}
    assert meta[4].cache["subject"] == "foreign" and meta[4].flags == frozenset()
    assert meta[5].flags == {"\\Seen", "\\Flagged"}
    # The foreign files got their UID recorded in their names.
    assert any(n.endswith(",U=5:2,FS") for n in os.listdir(inbox / "cur"))
    kinds: set[ChangeKind] = set()
    deadline = time.monotonic() + 5
    while len(kinds) < 3 and time.monotonic() < deadline:
        change = await asyncio.wait_for(feed.next(), 5)
        kinds.add(change.kind)
    assert kinds == {ChangeKind.APPENDED, ChangeKind.FLAGS, ChangeKind.EXPUNGED}
    await feed.close()
    # Nothing new: nothing changes.
    assert await store.reconcile(ACC) == 0


async def test_reindex_keeps_uids_uidvalidity_and_uidnext(tmp_path: Path) -> None:
    async with MaildirStore(tmp_path) as s:
        await s.create_account(ACC)
        for i in range(5):
            await s.append(ACC, "INBOX", MSG + bytes([48 + i]))
        await s.store_flags(ACC, "INBOX", [2], ["\\Seen"], FlagMode.ADD)
        await s.store_flags(ACC, "INBOX", [4, 5], ["\\Deleted"], FlagMode.ADD)
        await s.expunge(ACC, "INBOX")
        await s.create_mailbox(ACC, "Lists/python.org")
        await s.append(ACC, "Lists/python.org", MSG)
        before = await s.status(ACC, "INBOX")
    assert await reindex(tmp_path) == 4
    async with MaildirStore(tmp_path) as s:
        after = await s.status(ACC, "INBOX")
        assert (after.uidvalidity, after.uidnext, after.messages) == (
            before.uidvalidity,
            before.uidnext,
            3,
        )
        meta = await s.messages(ACC, "INBOX")
        assert [(m.uid, set(m.flags)) for m in meta] == [(1, set()), (2, {"\\Seen"}), (3, set())]
        assert [b.name for b in await s.list_mailboxes(ACC, "", "Lists/*")] == ["Lists/python.org"]
        assert (await s.append(ACC, "INBOX", MSG)).uid == 6


async def test_change_feed_in_process_is_fast_and_skips_own_session(
    store: MaildirStore,
) -> None:
    async with store.watch(ACC, "INBOX", session="imap-1") as feed:
        t0 = time.monotonic()
        await store.append(ACC, "INBOX", MSG, session="smtp")
        change = await asyncio.wait_for(feed.next(), 2)
        assert change.kind is ChangeKind.APPENDED and change.uid == 1
        assert time.monotonic() - t0 < 0.5
        await store.store_flags(ACC, "INBOX", [1], ["\\Seen"], FlagMode.ADD, session="imap-1")
        await store.store_flags(ACC, "INBOX", [1], ["$X"], FlagMode.ADD, session="imap-2")
        change = await asyncio.wait_for(feed.next(), 2)
        assert (change.kind, change.flags, change.origin) == (
            ChangeKind.FLAGS,
            frozenset({"\\Seen", "$X"}),
            "imap-2",
        )
        assert feed.pending() == []


async def test_a_feed_opened_after_unwatched_changes_hears_only_later_ones(
    store: MaildirStore, tmp_path: Path
) -> None:
    # Changes made while nobody in this process watches (another process
    # delivering) are skipped, not replayed to the next session's feed.
    async with MaildirStore(tmp_path, reconcile_on_open=False) as other:
        for _ in range(3):
            await other.append(ACC, "INBOX", MSG, session="smtp")
        await asyncio.sleep(store.poll_interval * 4)  # several polls without a feed
        async with store.watch(ACC, "INBOX", session="imap-1") as feed:
            await asyncio.sleep(store.poll_interval * 4)
            assert feed.pending() == []
            await other.append(ACC, "INBOX", MSG, session="smtp")
            change = await asyncio.wait_for(feed.next(), 2)
            assert (change.kind, change.uid) == (ChangeKind.APPENDED, 4)
            assert feed.pending() == []


async def test_a_long_backlog_of_changes_reaches_a_feed_whole_and_in_order(
    store: MaildirStore, tmp_path: Path
) -> None:
    # More changes than one poll reads (they are read in pages): every one
    # arrives, in commit order, and catching up returns every new message.
    async with store.watch(ACC, "INBOX", session="imap-1") as feed:
        async with MaildirStore(tmp_path, reconcile_on_open=False) as other:
            await asyncio.gather(*(other.append(ACC, "INBOX", MSG) for _ in range(1300)))
        uids: list[int] = []
        while len(uids) < 1300:
            change = await asyncio.wait_for(feed.next(), 10)
            uids.append(change.uid)
            uids += [c.uid for c in feed.pending()]
    assert uids == list(range(1, 1301))
    tail = await store.message_index(ACC, "INBOX", 1000)
    assert [m.uid for m in tail] == list(range(1000, 1301))
    assert [m.uid for m in await store.message_index(ACC, "INBOX", 1290)] == list(range(1290, 1301))
    assert await store.message_index(ACC, "INBOX", 1301) == []


LOCK_SCRIPT = """
import asyncio, sys
from mailcore.store import MaildirStore, MaildropLocked
async def main():
    async with MaildirStore(sys.argv[1]) as s:
        try:
            async with s.maildrop_lock(sys.argv[2]):
                print("locked")
        except MaildropLocked:
            print("busy")
asyncio.run(main())
"""


async def test_maildrop_lock_is_exclusive_across_processes(
    store: MaildirStore, tmp_path: Path
) -> None:
    def other() -> str:
        proc = subprocess.run(
            [sys.executable, "-c", LOCK_SCRIPT, str(tmp_path), ACC],
            capture_output=True,
            check=True,
            timeout=60,
        )
        return proc.stdout.decode().strip()

    async with store.maildrop_lock(ACC):
        assert await asyncio.to_thread(other) == "busy"
        with pytest.raises(MaildropLocked):
            async with store.maildrop_lock(ACC):
                pass
        # Another account's maildrop is free.
        async with store.maildrop_lock("bob@example.org"):
            pass
    assert await asyncio.to_thread(other) == "locked"


async def test_read_whole_one_call_with_limit(store: MaildirStore, tmp_path: Path) -> None:
    small = await store.append(ACC, "INBOX", MSG)
    big = await store.append(ACC, "INBOX", MSG + b"x" * 1000)
    assert await store.read_whole(ACC, "INBOX", small.uid, len(MSG)) == MSG
    # Bigger than the limit: None, the caller streams it with read().
    assert await store.read_whole(ACC, "INBOX", big.uid, len(MSG)) is None
    assert await store.read_whole(ACC, "INBOX", big.uid, 10_000) == MSG + b"x" * 1000
    with pytest.raises(NoSuchMessage):
        await store.read_whole(ACC, "INBOX", 99, 10_000)
    with pytest.raises(MailboxNotFound):
        await store.read_whole(ACC, "Nope", small.uid, 10_000)
    # Another tool (mutt) marked it seen: the file moved from new/ to cur/
    # behind the index's back; read_whole finds it again.
    inbox = tmp_path / "mail" / ACC
    [name] = [n for n in os.listdir(inbox / "new") if n.endswith(f",U={small.uid}")]
    os.rename(inbox / "new" / name, inbox / "cur" / f"{name}:2,S")
    assert await store.read_whole(ACC, "INBOX", small.uid, 10_000) == MSG


async def test_read_whole_many(store: MaildirStore, tmp_path: Path) -> None:
    bodies = [MSG + b"%d\r\n" % i * i for i in range(5)]
    uids = [(await store.append(ACC, "INBOX", b)).uid for b in bodies]
    await store.append(ACC, "Sent", MSG)  # same UID 1 in another mailbox: not mixed in
    got = await store.read_whole_many(ACC, "INBOX", [uids[3], uids[0], 77, uids[4]], 10_000)
    assert got == [bodies[3], bodies[0], None, bodies[4]]
    # Over the limit: None for that one only.
    limit = len(bodies[2])
    assert await store.read_whole_many(ACC, "INBOX", uids, limit) == [*bodies[:3], None, None]
    # A file moved behind the index's back is None here; read() finds it.
    inbox = tmp_path / "mail" / ACC
    [name] = [n for n in os.listdir(inbox / "new") if n.endswith(f",U={uids[1]}")]
    os.rename(inbox / "new" / name, inbox / "cur" / f"{name}:2,S")
    got = await store.read_whole_many(ACC, "INBOX", uids, 10_000)
    assert got == [bodies[0], None, *bodies[2:]]
    assert await read_all(store, "INBOX", uids[1]) == bodies[1]
    assert await store.read_whole_many(ACC, "INBOX", [], 10_000) == []


async def test_store_default_read_whole_streams_through_read(store: MaildirStore) -> None:
    # The base-class versions (for backends without a one-call read) must
    # agree with the Maildir overrides.
    from mailcore.store.base import Store

    big = b"Subject: big\r\n\r\n" + os.urandom(600_000)
    small = await store.append(ACC, "INBOX", MSG)
    large = await store.append(ACC, "INBOX", big)
    assert await Store.read_whole(store, ACC, "INBOX", small.uid, 1000) == MSG
    assert await Store.read_whole(store, ACC, "INBOX", large.uid, 1000) is None
    assert await Store.read_whole(store, ACC, "INBOX", large.uid, 10**6) == big
    got = await Store.read_whole_many(store, ACC, "INBOX", [large.uid, 5, small.uid], 10**6)
    assert got == [big, None, MSG]


async def test_a_huge_header_costs_a_bounded_cache(tmp_path: Path) -> None:
    # A hostile message with megabytes of folded header is stored byte for
    # byte; the index caches only what the first 64 KiB of header hold.
    header = b"Subject: first\r\n" + b"X-Junk: a\r\n" + b" b\r\n" * 2_000_000
    raw = header + b"From: late@example.org\r\n\r\nbody\r\n"
    async with MaildirStore(tmp_path) as store:
        await store.create_account("big@example.org")
        result = await store.append("big@example.org", "INBOX", raw)
        [meta] = await store.messages("big@example.org", "INBOX")
        assert meta.cache == {"subject": "first"}
        assert meta.header_size == len(raw) - len(b"body\r\n")
        assert await store.read_whole("big@example.org", "INBOX", result.uid, len(raw)) == raw


async def test_header_cache_rules_same_for_append_and_reindex(tmp_path: Path) -> None:
    # Any case and blanks before the colon; folded values unfolded; the first
    # of a field wins; a header ending in a bare-LF blank line; octets that
    # are not UTF-8 kept as surrogate escapes; fields not cached are left out.
    raw = (
        b"Received: from x\r\n"
        b"FROM :  Bob <bob@example.org>  \r\n"
        b"Subject: caf\xc3\xa9 \xff and\r\n"
        b'\t folded  "quoted" \\ line\r\n'
        b"subject: a second one\r\n"
        b"X-To: nobody\r\n"
        b"Message-ID:<id@x>\n"
        b"\n"
        b"To: in the body\r\n"
    )
    want = {
        "from": "Bob <bob@example.org>",
        "subject": 'café \udcff and folded "quoted" \\ line',
        "message-id": "<id@x>",
    }
    async with MaildirStore(tmp_path) as s:
        await s.create_account(ACC)
        await s.append(ACC, "INBOX", raw)
        [meta] = await s.messages(ACC, "INBOX")
        assert meta.cache == want
        assert list(meta.cache) == ["from", "subject", "message-id"]
        assert meta.header_size == raw.index(b"\n\n") + 2
    assert await reindex(tmp_path) == 1
    async with MaildirStore(tmp_path) as s:
        [meta] = await s.messages(ACC, "INBOX")
        assert meta.cache == want
