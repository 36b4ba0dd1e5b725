"""Our Maildirs against Python's own Maildir implementation, both ways."""

from __future__ import annotations

import mailbox
from pathlib import Path

from mailcore.store import FlagMode, MaildirStore

ACC = "carol@example.org"


def msg(n: int) -> bytes:
    return f"From: x@example.org\r\nSubject: number {n}\r\n\r\nbody {n}\r\n".encode()


async def test_mailbox_maildir_reads_what_we_write(tmp_path: Path) -> None:
    async with MaildirStore(tmp_path) as store:
        await store.create_account(ACC)
        for n in range(4):
            await store.append(ACC, "INBOX", msg(n))
        await store.store_flags(ACC, "INBOX", [1], ["\\Seen", "\\Answered"], FlagMode.ADD)
        await store.store_flags(ACC, "INBOX", [2], ["\\Flagged", "\\Deleted"], FlagMode.ADD)
        await store.store_flags(ACC, "INBOX", [3], ["\\Draft", "$Forwarded"], FlagMode.ADD)
        await store.create_mailbox(ACC, "Lists/python")
        await store.append(ACC, "Lists/python", msg(9), flags=["\\Seen"])

    md = mailbox.Maildir(tmp_path / "mail" / ACC, factory=None, create=False)
    by_subject = {m["Subject"]: m for m in md}
    assert sorted(by_subject) == [f"number {n}" for n in range(4)]
    assert by_subject["number 0"].get_flags() == "RS"
    assert by_subject["number 1"].get_flags() == "FT"
    assert by_subject["number 2"].get_flags() == "DP"
    assert by_subject["number 3"].get_flags() == ""
    assert by_subject["number 3"].get_subdir() == "new"
    for key in md.iterkeys():
        assert md.get_bytes(key) in {msg(n) for n in range(4)}
    assert sorted(md.list_folders()) == [
        "Archive", "Drafts", "Junk", "Lists", "Lists.python", "Sent", "Trash",
    ]  # fmt: skip
    sub = md.get_folder("Lists.python")
    [only] = list(sub)
    assert only["Subject"] == "number 9" and only.get_flags() == "S"


async def test_we_pick_up_what_mailbox_maildir_writes(tmp_path: Path) -> None:
    root = tmp_path / "mail" / ACC
    root.parent.mkdir()
    md = mailbox.Maildir(root, create=True)
    plain = mailbox.MaildirMessage(msg(1))
    md.add(plain)
    seen = mailbox.MaildirMessage(msg(2))
    seen.set_subdir("cur")
    seen.set_flags("SRF")
    md.add(seen)
    trashed = mailbox.MaildirMessage(msg(3))
    trashed.set_subdir("cur")
    trashed.set_flags("TP")
    md.add(trashed)
    folder = md.add_folder("Projects")
    folder.add(mailbox.MaildirMessage(msg(4)))

    async with MaildirStore(tmp_path) as store:
        metas = await store.messages(ACC, "INBOX")
        flags = {m.cache["subject"]: set(m.flags) for m in metas}
        assert flags == {
            "number 1": set(),
            "number 2": {"\\Seen", "\\Answered", "\\Flagged"},
            "number 3": {"\\Deleted", "$Forwarded"},
        }
        for m in metas:
            data = b"".join([c async for c in store.read(ACC, "INBOX", m.uid)])
            # mailbox.Maildir stores messages with LF line ends; we keep bytes exactly.
            assert data == msg(int(m.cache["subject"].split()[1])).replace(b"\r\n", b"\n")
        assert [m.uid for m in metas] == [1, 2, 3]
        projects = await store.messages(ACC, "Projects")
        assert [m.cache["subject"] for m in projects] == ["number 4"]
        # A change made by mailbox.Maildir while we run shows up after reconcile.
        key = next(k for k in md.iterkeys() if md[k]["Subject"] == "number 1")
        changed = md[key]
        changed.set_subdir("cur")
        changed.add_flag("S")
        md[key] = changed
        await store.reconcile(ACC)
        after = {m.cache["subject"]: set(m.flags) for m in await store.messages(ACC, "INBOX")}
        assert after["number 1"] == {"\\Seen"}
        # And our flag change is what mailbox.Maildir then sees.
        uid = next(m.uid for m in metas if m.cache["subject"] == "number 2")
        await store.store_flags(ACC, "INBOX", [uid], ["\\Seen"], FlagMode.REPLACE)
    md2 = mailbox.Maildir(root, create=False)
    assert {m["Subject"]: m.get_flags() for m in md2}["number 2"] == "S"
