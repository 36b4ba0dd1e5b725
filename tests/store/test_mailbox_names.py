"""Mailbox names that cannot become a Maildir++ folder are refused before anything is made."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mailcore.store import MaildirStore
from mailcore.store.base import MailboxNameTooLong, MailboxNotFound
from mailcore.store.ops import NAME_MAX, Layout, check_mailbox_fits
from tests.store.conftest import ACC


def folders(store: MaildirStore) -> set[str]:
    home = store.layout.account_dir(ACC)
    return {d for d in os.listdir(home) if d.startswith(".")}


async def names(store: MaildirStore) -> set[str]:
    return {m.name for m in await store.list_mailboxes(ACC, "", "*")}


@pytest.mark.parametrize(
    "name",
    [
        "L" * 300,  # one level over NAME_MAX
        "/".join(["q"] * 200),  # ".q.q.q..." over NAME_MAX; superiors fit
        "é" * 128,  # 256 bytes of UTF-8
        "a." * 90,  # "." is written as "%2E": 3 bytes each
    ],
)
async def test_create_of_a_name_over_name_max_is_refused_and_leaves_nothing(
    store: MaildirStore, name: str
) -> None:
    before, listed = folders(store), await names(store)
    with pytest.raises(MailboxNameTooLong):
        await store.create_mailbox(ACC, name)
    assert folders(store) == before
    assert await names(store) == listed


async def test_the_longest_name_that_fits_is_created(store: MaildirStore) -> None:
    name = "x" * (NAME_MAX - 1)  # "." + name = NAME_MAX bytes
    await store.create_mailbox(ACC, name)
    assert "." + name in folders(store)
    deep = "/".join(["q"] * (NAME_MAX // 2))  # ".q" * 127 = 254 bytes
    await store.create_mailbox(ACC, deep)
    assert "." + ".".join(["q"] * (NAME_MAX // 2)) in folders(store)


async def test_rename_checks_the_new_names_of_inferiors_too(store: MaildirStore) -> None:
    await store.create_mailbox(ACC, "a/" + "b" * 200)
    before, listed = folders(store), await names(store)
    # "c" * 60 fits; its inferior "c...c/bbb..." (262 bytes as a folder) does not.
    with pytest.raises(MailboxNameTooLong):
        await store.rename_mailbox(ACC, "a", "c" * 60)
    with pytest.raises(MailboxNameTooLong):
        await store.rename_mailbox(ACC, "a", "R" * 300)
    assert folders(store) == before
    assert await names(store) == listed
    await store.rename_mailbox(ACC, "a", "c")
    assert "c/" + "b" * 200 in await names(store)


async def test_rename_inbox_to_a_long_name_is_refused(store: MaildirStore) -> None:
    await store.append(ACC, "INBOX", b"Subject: x\r\n\r\nhi\r\n")
    before = folders(store)
    with pytest.raises(MailboxNameTooLong):
        await store.rename_mailbox(ACC, "INBOX", "L" * 300)
    assert folders(store) == before
    assert (await store.status(ACC, "INBOX")).messages == 1
    with pytest.raises(MailboxNotFound):
        await store.status(ACC, "L" * 300)


def test_a_path_over_path_max_is_refused(tmp_path: Path) -> None:
    # A data directory deep enough that a name within NAME_MAX still puts a
    # message file's path over PATH_MAX (SQLite refuses such a data
    # directory for its index, so only the check itself is called here).
    layout = Layout(str(tmp_path / "/".join(["d" * 240] * 15)))
    check_mailbox_fits(layout, ACC, "x" * 50)
    with pytest.raises(MailboxNameTooLong):
        check_mailbox_fits(layout, ACC, "x" * 200)
