"""Transaction bodies of the embedded store, run in the index writer thread.

Each function takes a :class:`~mailcore.store.index.Txn` inside an open
``BEGIN IMMEDIATE`` transaction, so it sees and changes the index and the
Maildir files with no other writer (thread or process) in between. File
operations come before the commit: a crash in between leaves files the
index does not describe yet, and :func:`reconcile_account` settles those the
same way every time (a file is the truth about a message's existence and
system flags; the index is the truth about UIDs already handed out).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace

from mailcore import _core
from mailcore.store.base import (
    DELIMITER,
    SPECIAL_USE,
    ChangeKind,
    FlagMode,
    FlagResult,
    MailboxExists,
    MailboxNameTooLong,
    MailboxNotFound,
    StoreError,
    UIDMapping,
)
from mailcore.store.files import (
    encode_folder,
    file_name,
    make_maildir,
    unique_name,
    with_uid,
)
from mailcore.store.index import Txn

__all__ = ["Layout", "MailboxRow"]

META_FILE = "mailcore-meta"
#: In an account's INBOX Maildir: subscribed names whose mailbox was deleted.
ORPHANS_FILE = "mailcore-kept-subscriptions"
# The Maildir spec: a tmp/ file untouched for 36 hours is garbage.
TMP_MAX_AGE = 36 * 3600
_MAX_UIDVALIDITY = 2**32 - 1


def canonical_name(name: str) -> str:
    """INBOX is case-insensitive (RFC 3501 5.1); other names are exact."""
    name = name.strip(DELIMITER)
    if name.upper() == "INBOX":
        return "INBOX"
    if name.upper().startswith("INBOX" + DELIMITER):
        return "INBOX" + name[5:]
    if not name or "\x00" in name or f"{DELIMITER}{DELIMITER}" in name:
        raise StoreError(f"invalid mailbox name {name!r}")
    return name


#: POSIX NAME_MAX and Linux PATH_MAX in bytes. A Maildir++ mailbox is ONE
#: directory (``.a.b.c`` for ``a/b/c``), so a deep or long name hits
#: NAME_MAX long before any per-level limit would.
NAME_MAX = 255
PATH_MAX = 4096
# Below a mailbox directory: "/cur/" and a message file name, which
# (unique part, ",S=", ",U=", ":2,flags") stays within NAME_MAX.
_BELOW_MAILBOX = len("/cur/") + NAME_MAX


def check_mailbox_fits(layout: Layout, account: str, name: str) -> None:
    """Raise :class:`MailboxNameTooLong` unless ``name`` can become a Maildir.

    Called before CREATE or RENAME makes anything: the folder's directory
    name must fit NAME_MAX, and the path of a message file below it PATH_MAX
    (an ``OSError: File name too long`` halfway through would leave the
    superiors made so far on disk while the index rolls back).
    """
    folder = os.fsencode(encode_folder(name))
    if len(folder) > NAME_MAX:
        raise MailboxNameTooLong(
            f"mailbox name too long: {len(folder)} bytes as a directory name, at most {NAME_MAX}"
        )
    path = os.fsencode(os.path.join(layout.account_dir(account), encode_folder(name)))
    if len(path) + _BELOW_MAILBOX >= PATH_MAX:
        raise MailboxNameTooLong("mailbox name too long for the mail directory's path")


def flags_text(flags: Iterable[str]) -> str:
    """Stored form of a flag set: sorted, space-separated."""
    return " ".join(sorted(flags))


def flags_set(text: str) -> frozenset[str]:
    """Inverse of :func:`flags_text`."""
    return frozenset(text.split())


@dataclass(frozen=True, slots=True)
class Layout:
    """Where an account's Maildirs live under the data directory."""

    root: str

    def account_dir(self, account: str) -> str:
        """The account's INBOX Maildir, which holds its other mailboxes."""
        safe = account.replace("%", "%25").replace("/", "%2F")
        if safe.startswith("."):
            safe = "%2E" + safe[1:]
        return os.path.join(self.root, "mail", safe)

    def mailbox_dir(self, account: str, name: str) -> str:
        """Maildir of one mailbox."""
        return _mailbox_dir(self.root, account, name)


@functools.lru_cache(maxsize=4096)
def _mailbox_dir(root: str, account: str, name: str) -> str:
    # Every delivery asks for this: remembered, it is a dict lookup.
    folder = encode_folder(name)
    home = Layout(root).account_dir(account)
    return os.path.join(home, folder) if folder else home


@dataclass(frozen=True, slots=True)
class MailboxRow:
    """One ``mailboxes`` row."""

    id: int
    account: str
    name: str
    dir: str
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    subscribed: bool
    special: str
    noselect: bool


_MBOX_COLS = (
    "id, account, name, dir, uidvalidity, uidnext, highestmodseq, subscribed, special, noselect"
)


def _row(values: tuple[object, ...]) -> MailboxRow:
    i, acc, name, d, v, n, m, s, sp, ns = values
    return MailboxRow(
        int(i),  # type: ignore[call-overload]
        str(acc),
        str(name),
        str(d),
        int(v),  # type: ignore[call-overload]
        int(n),  # type: ignore[call-overload]
        int(m),  # type: ignore[call-overload]
        bool(s),
        str(sp),
        bool(ns),
    )


def get_mailbox(
    conn: sqlite3.Connection, account: str, name: str, *, selectable: bool = True
) -> MailboxRow:
    """The mailbox row, or MailboxNotFound."""
    cur = conn.execute(
        f"SELECT {_MBOX_COLS} FROM mailboxes WHERE account=? AND name=?",
        (account, canonical_name(name)),
    )
    found = cur.fetchone()
    if found is None or (selectable and found[9]):
        raise MailboxNotFound(f"no mailbox {name!r}")
    return _row(found)


def all_mailboxes(conn: sqlite3.Connection, account: str) -> list[MailboxRow]:
    """Every mailbox row of an account, by name."""
    cur = conn.execute(
        f"SELECT {_MBOX_COLS} FROM mailboxes WHERE account=? ORDER BY name", (account,)
    )
    return [_row(r) for r in cur.fetchall()]


def bump_modseq(conn: sqlite3.Connection, mailbox: int) -> int:
    row = conn.execute(
        "UPDATE mailboxes SET highestmodseq=highestmodseq+1 WHERE id=? RETURNING highestmodseq",
        (mailbox,),
    ).fetchone()
    return int(row[0])


def record_change(
    txn: Txn, mailbox: int, kind: ChangeKind, uid: int, modseq: int, *, flags: str, origin: str
) -> None:
    txn.conn.execute(
        "INSERT INTO changes(mailbox, kind, uid, modseq, flags, origin) VALUES (?,?,?,?,?,?)",
        (mailbox, kind.value, uid, modseq, flags, origin),
    )
    txn.notify = True


def write_meta(row: MailboxRow, uidnext: int | None = None, *, sync: bool = False) -> None:
    """Record UIDVALIDITY, UIDNEXT and the subscription in the Maildir itself.

    ``mailcore store reindex`` reads it back so a rebuilt index keeps
    UIDVALIDITY and never hands out a UID again after the highest ones were
    expunged. Written on create, subscribe and expunge (not per append: the
    ``U=`` fields of the files already bound UIDNEXT from below).
    """
    meta = {
        "uidvalidity": row.uidvalidity,
        "uidnext": uidnext if uidnext is not None else row.uidnext,
        "subscribed": row.subscribed,
        "special": row.special,
    }
    path = os.path.join(row.dir, META_FILE)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(meta, fh)
        if sync:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_meta(path: str) -> dict[str, object]:
    try:
        with open(os.path.join(path, META_FILE), encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _new_uidvalidity(conn: sqlite3.Connection) -> int:
    # Time-based like Dovecot, but strictly increasing so a mailbox deleted and
    # created again within a second still gets a new UIDVALIDITY.
    last = conn.execute("SELECT value FROM meta WHERE key='uidvalidity'").fetchone()
    value = max(int(time.time()), (int(last[0]) + 1) if last else 1)
    if value > _MAX_UIDVALIDITY:
        value = 1
    conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('uidvalidity', ?)", (value,))
    return value


def insert_mailbox(
    txn: Txn,
    layout: Layout,
    account: str,
    name: str,
    *,
    special: str = "",
    subscribed: bool = False,
    uidvalidity: int | None = None,
    uidnext: int = 1,
) -> MailboxRow:
    """Create one mailbox's Maildir and row (no superiors, no existence check)."""
    conn = txn.conn
    subscribed = _claim_subscription(conn, layout, account, name) or subscribed
    d = layout.mailbox_dir(account, name)
    make_maildir(d)
    validity = uidvalidity if uidvalidity is not None else _new_uidvalidity(conn)
    cur = conn.execute(
        "INSERT INTO mailboxes(account, name, dir, uidvalidity, uidnext, highestmodseq,"
        " subscribed, special) VALUES (?,?,?,?,?,1,?,?) RETURNING id",
        (account, name, d, validity, uidnext, int(subscribed), special),
    )
    row = MailboxRow(
        int(cur.fetchone()[0]), account, name, d, validity, uidnext, 1, subscribed, special, False
    )
    write_meta(row, sync=True)
    return row


def _claim_subscription(conn: sqlite3.Connection, layout: Layout, account: str, name: str) -> bool:
    """Whether ``name`` stayed subscribed while it had no mailbox (it has one now)."""
    cur = conn.execute(
        "DELETE FROM orphan_subscriptions WHERE account=? AND name=?", (account, name)
    )
    if cur.rowcount > 0:
        write_orphans(conn, layout, account)
        return True
    return False


def write_orphans(conn: sqlite3.Connection, layout: Layout, account: str) -> None:
    """Note the subscribed names without a mailbox in the account's Maildir.

    The index is where they live; this copy (``ORPHANS_FILE``, a JSON list,
    absent when empty) is what ``mailcore store reindex`` reads them back from.
    """
    path = os.path.join(layout.account_dir(account), ORPHANS_FILE)
    names = orphan_subscriptions(conn, account)
    if not names:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(names, fh)
    os.replace(tmp, path)


def read_orphans(layout: Layout, account: str) -> list[str]:
    """The names :func:`write_orphans` kept (empty if none or unreadable)."""
    try:
        with open(os.path.join(layout.account_dir(account), ORPHANS_FILE), encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return []
    if not isinstance(data, list):
        return []
    return [name for name in data if isinstance(name, str)]


def orphan_subscriptions(conn: sqlite3.Connection, account: str) -> list[str]:
    """Subscribed names that have no mailbox (deleted since), in order."""
    return [
        str(name)
        for (name,) in conn.execute(
            "SELECT name FROM orphan_subscriptions WHERE account=? ORDER BY name", (account,)
        )
    ]


def create_account(txn: Txn, layout: Layout, account: str) -> None:
    """INBOX and the SPECIAL-USE mailboxes, subscribed; existing ones are kept."""
    existing = {row.name for row in all_mailboxes(txn.conn, account)}
    wanted = [("INBOX", ""), *SPECIAL_USE.items()]
    for name, special in wanted:
        if name not in existing:
            insert_mailbox(txn, layout, account, name, special=special, subscribed=True)


def delete_account(txn: Txn, layout: Layout, account: str) -> None:
    """Drop an account's rows and remove its directory tree."""
    conn = txn.conn
    ids = [row.id for row in all_mailboxes(conn, account)]
    for i in ids:
        conn.execute("DELETE FROM messages WHERE mailbox=?", (i,))
        conn.execute("DELETE FROM changes WHERE mailbox=?", (i,))
    conn.execute("DELETE FROM mailboxes WHERE account=?", (account,))
    conn.execute("DELETE FROM orphan_subscriptions WHERE account=?", (account,))
    shutil.rmtree(layout.account_dir(account), ignore_errors=True)


def create_mailbox(txn: Txn, layout: Layout, account: str, name: str) -> MailboxRow:
    """CREATE with missing superiors (RFC 3501 6.3.3 SHOULD)."""
    name = canonical_name(name)
    # The superiors' folder names are prefixes of this one: one check covers all.
    check_mailbox_fits(layout, account, name)
    conn = txn.conn
    levels = name.split(DELIMITER)
    for depth in range(1, len(levels) + 1):
        part = DELIMITER.join(levels[:depth])
        found = conn.execute(
            "SELECT noselect FROM mailboxes WHERE account=? AND name=?", (account, part)
        ).fetchone()
        if depth == len(levels):
            if found is not None and not found[0]:
                raise MailboxExists(f"mailbox {name!r} exists")
            if found is not None:
                conn.execute(
                    "UPDATE mailboxes SET noselect=0 WHERE account=? AND name=?", (account, part)
                )
                return get_mailbox(conn, account, part)
            return insert_mailbox(txn, layout, account, part)
        if found is None:
            insert_mailbox(txn, layout, account, part)
    raise StoreError("unreachable: empty mailbox name")


def _inferiors(conn: sqlite3.Connection, account: str, name: str) -> list[MailboxRow]:
    prefix = name + DELIMITER
    return [r for r in all_mailboxes(conn, account) if r.name.startswith(prefix)]


def _remove_messages(txn: Txn, row: MailboxRow) -> None:
    for (path,) in txn.conn.execute(
        "SELECT path FROM messages WHERE mailbox=?", (row.id,)
    ).fetchall():
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(row.dir, path))
    txn.conn.execute("DELETE FROM messages WHERE mailbox=?", (row.id,))


def delete_mailbox(txn: Txn, layout: Layout, account: str, name: str) -> None:
    """DELETE (RFC 3501 6.3.4): a mailbox with inferiors becomes ``\\Noselect``."""
    name = canonical_name(name)
    if name == "INBOX":
        raise StoreError("INBOX cannot be deleted")
    conn = txn.conn
    row = get_mailbox(conn, account, name, selectable=False)
    if _inferiors(conn, account, name):
        if row.noselect:
            raise StoreError(f"{name!r} has inferiors and is already \\Noselect")
        _remove_messages(txn, row)
        conn.execute("UPDATE mailboxes SET noselect=1 WHERE id=?", (row.id,))
        return
    _remove_messages(txn, row)
    conn.execute("DELETE FROM changes WHERE mailbox=?", (row.id,))
    conn.execute("DELETE FROM mailboxes WHERE id=?", (row.id,))
    if row.subscribed:
        # The name stays on the subscription list (LSUB, LIST (SUBSCRIBED)
        # with \NonExistent) until the client unsubscribes it.
        conn.execute("INSERT OR IGNORE INTO orphan_subscriptions VALUES (?,?)", (account, row.name))
        write_orphans(conn, layout, account)
    shutil.rmtree(row.dir, ignore_errors=True)


def rename_mailbox(txn: Txn, layout: Layout, account: str, old: str, new: str) -> None:
    """RENAME (RFC 3501 6.3.5), inferiors included; INBOX moves its messages out."""
    old, new = canonical_name(old), canonical_name(new)
    conn = txn.conn
    src = get_mailbox(conn, account, old, selectable=False)
    exists = conn.execute(
        "SELECT noselect FROM mailboxes WHERE account=? AND name=?", (account, new)
    ).fetchone()
    if exists is not None:
        raise MailboxExists(f"mailbox {new!r} exists")
    if new == old or new.startswith(old + DELIMITER):
        raise StoreError("cannot rename a mailbox into itself")
    # Every new name (the inferiors' too) is checked before anything moves.
    check_mailbox_fits(layout, account, new)
    if old != "INBOX":  # INBOX's inferiors stay where they are
        for row in _inferiors(conn, account, old):
            check_mailbox_fits(layout, account, new + row.name[len(old) :])
    if old == "INBOX":
        dest = create_mailbox(txn, layout, account, new)
        uids = [
            int(u)
            for (u,) in conn.execute(
                "SELECT uid FROM messages WHERE mailbox=? ORDER BY uid", (src.id,)
            ).fetchall()
        ]
        transfer(txn, layout, account, "INBOX", uids, dest=new, move=True, origin="")
        del dest
        return
    # Superiors of the new name first, so the hierarchy stays complete.
    parent = new.rpartition(DELIMITER)[0]
    if (
        parent
        and conn.execute(
            "SELECT 1 FROM mailboxes WHERE account=? AND name=?", (account, parent)
        ).fetchone()
        is None
    ):
        create_mailbox(txn, layout, account, parent)
    for row in [src, *_inferiors(conn, account, old)]:
        name = new + row.name[len(old) :]
        d = layout.mailbox_dir(account, name)
        os.rename(row.dir, d)
        conn.execute("UPDATE mailboxes SET name=?, dir=? WHERE id=?", (name, d, row.id))
        if _claim_subscription(conn, layout, account, name) and not row.subscribed:
            conn.execute("UPDATE mailboxes SET subscribed=1 WHERE id=?", (row.id,))
            write_meta(get_mailbox(conn, account, name, selectable=False))
    txn.sync_dirs.add(layout.account_dir(account))


def set_subscribed(txn: Txn, layout: Layout, account: str, name: str, subscribed: bool) -> None:
    """SUBSCRIBE / UNSUBSCRIBE (and note it in the Maildir for reindex).

    A name whose mailbox was deleted can still be unsubscribed (and
    subscribing it again changes nothing); any other unknown name is
    MailboxNotFound.
    """
    name = canonical_name(name)
    try:
        row = get_mailbox(txn.conn, account, name, selectable=False)
    except MailboxNotFound:
        orphan = txn.conn.execute(
            "SELECT 1 FROM orphan_subscriptions WHERE account=? AND name=?", (account, name)
        ).fetchone()
        if orphan is None:
            raise
        if not subscribed:
            _claim_subscription(txn.conn, layout, account, name)
        return
    txn.conn.execute("UPDATE mailboxes SET subscribed=? WHERE id=?", (int(subscribed), row.id))
    write_meta(get_mailbox(txn.conn, account, name, selectable=False))


@dataclass(frozen=True, slots=True)
class PendingAppend:
    """A message written and fsynced in ``maildir/tmp/base``, waiting for its UID."""

    account: str
    mailbox: str
    maildir: str
    base: str
    size: int
    hdr_size: int
    flags: frozenset[str]
    internal_date: float
    cache: str
    origin: str


# Rows per multi-row INSERT: 10 parameters each stays far below SQLite's
# limit of 32 766 bound parameters.
_ROWS_PER_INSERT = 256


def _insert_rows(conn: sqlite3.Connection, head: str, rows: list[tuple[object, ...]]) -> None:
    """``head`` + ``VALUES (...),(...)``: many rows in one statement (one step)."""
    if not rows:
        return
    marks = "(" + ",".join("?" * len(rows[0])) + ")"
    for at in range(0, len(rows), _ROWS_PER_INSERT):
        chunk = rows[at : at + _ROWS_PER_INSERT]
        conn.execute(
            head + " VALUES " + ",".join([marks] * len(chunk)),
            [value for row in chunk for value in row],
        )


# UPDATE ... RETURNING (SQLite 3.35): one statement takes a mailbox's next
# UIDs and MODSEQs where a SELECT and an UPDATE took two (each statement is
# two hand-backs of the GIL for the index writer thread).
_RETURNING = sqlite3.sqlite_version_info >= (3, 35, 0)


def _reserve(conn: sqlite3.Connection, account: str, name: str, count: int) -> MailboxRow:
    """Take ``count`` UIDs and MODSEQs of a selectable mailbox; its row as it was before."""
    if _RETURNING:
        found = conn.execute(
            "UPDATE mailboxes SET uidnext=uidnext+?1, highestmodseq=highestmodseq+?1"
            f" WHERE account=?2 AND name=?3 AND noselect=0 RETURNING {_MBOX_COLS}",
            (count, account, name),
        ).fetchall()
        if found:
            row = _row(found[0])
            return replace(
                row, uidnext=row.uidnext - count, highestmodseq=row.highestmodseq - count
            )
    row = get_mailbox(conn, account, name)  # MailboxNotFound, or an old SQLite
    conn.execute(
        "UPDATE mailboxes SET uidnext=?, highestmodseq=? WHERE id=?",
        (row.uidnext + count, row.highestmodseq + count, row.id),
    )
    return row


def commit_appends(
    txn: Txn, appends: list[PendingAppend]
) -> list[tuple[int, int, int] | Exception]:
    """Give fsynced tmp/ files their UIDs, rename them into new/ or cur/, index them.

    One result per append, in order: ``(uidvalidity, uid, modseq)``, or the
    exception for that append alone (``MailboxNotFound``, or the ``OSError``
    of its rename; its file is then still in ``tmp/``). Appends to one
    mailbox get ascending UIDs and MODSEQs in the order given.

    The whole group costs a handful of statements (one read and one update
    per mailbox, one multi-row insert into ``messages`` and one into
    ``changes``) and one call into the core for every rename, however many
    appends it holds: each statement and each rename would otherwise win the
    GIL back from the event loop once per append. If an insert fails, the
    renamed files are moved back to ``tmp/`` before the error propagates,
    so the caller can run the appends again one by one.
    """
    conn = txn.conn
    results: list[tuple[int, int, int] | Exception | None] = [None] * len(appends)
    by_box: dict[tuple[str, str], list[int]] = {}
    for index, item in enumerate(appends):
        by_box.setdefault((item.account, canonical_name(item.mailbox)), []).append(index)
    moves: list[tuple[str, str]] = []
    planned: list[tuple[int, MailboxRow, int, int, str, str]] = []
    for (account, name), indexes in by_box.items():
        try:
            row = _reserve(conn, account, name, len(indexes))
        except MailboxNotFound as exc:
            for index in indexes:
                results[index] = exc
            continue
        for step, index in enumerate(indexes):
            item = appends[index]
            uid, modseq = row.uidnext + step, row.highestmodseq + 1 + step
            final = with_uid(item.base, uid)
            subdir = "cur" if item.flags else "new"
            rel = file_name(final, item.flags, subdir)
            moves.append((os.path.join(item.maildir, "tmp", item.base), os.path.join(row.dir, rel)))
            planned.append((index, row, uid, modseq, final, rel))
    messages: list[tuple[object, ...]] = []
    changes: list[tuple[object, ...]] = []
    done: list[tuple[str, str]] = []
    for (index, row, uid, modseq, final, rel), move, error in zip(
        planned, moves, _core.rename_files(moves), strict=True
    ):
        if error is not None:
            results[index] = error
            continue
        done.append(move)
        item = appends[index]
        txn.sync_dirs.add(os.path.dirname(move[1]))
        ftext = flags_text(item.flags)
        messages.append(
            (
                row.id,
                uid,
                final,
                rel,
                item.size,
                item.hdr_size,
                item.internal_date,
                ftext,
                modseq,
                item.cache,
            )
        )
        changes.append((row.id, ChangeKind.APPENDED.value, uid, modseq, ftext, item.origin))
        results[index] = (row.uidvalidity, uid, modseq)
    try:
        _insert_rows(
            conn,
            "INSERT INTO messages(mailbox, uid, base, path, size, hdr_size, internaldate,"
            " flags, modseq, cache)",
            messages,
        )
        _insert_rows(
            conn, "INSERT INTO changes(mailbox, kind, uid, modseq, flags, origin)", changes
        )
    except BaseException:
        _core.rename_files([(target, source) for source, target in done])
        raise
    if changes:
        txn.notify = True
    settled: list[tuple[int, int, int] | Exception] = []
    for result in results:
        assert result is not None  # every append got its UID or its error above
        settled.append(result)
    return settled


def _find_file(row: MailboxRow, base: str) -> str | None:
    # Another tool (mutt, Dovecot) moved the file from new/ to cur/ or
    # changed its flags since the index last looked.
    for sub in ("cur", "new"):
        try:
            names = os.listdir(os.path.join(row.dir, sub))
        except FileNotFoundError:
            continue
        for n in names:
            if n == base or n.startswith(base + ":"):
                return f"{sub}/{n}"
    return None


def _uid_rows(
    conn: sqlite3.Connection, mailbox: int, uids: Iterable[int]
) -> list[tuple[int, str, str, str, int]]:
    wanted = sorted(set(uids))
    out: list[tuple[int, str, str, str, int]] = []
    for i in range(0, len(wanted), 500):
        chunk = wanted[i : i + 500]
        marks = ",".join("?" * len(chunk))
        out.extend(
            conn.execute(
                f"SELECT uid, base, path, flags, modseq FROM messages WHERE mailbox=?"
                f" AND uid IN ({marks}) ORDER BY uid",
                (mailbox, *chunk),
            ).fetchall()
        )
    return out


def store_flags(
    txn: Txn,
    account: str,
    mailbox: str,
    uids: list[int],
    flags: frozenset[str],
    *,
    mode: FlagMode,
    unchanged_since: int | None,
    origin: str,
) -> FlagResult:
    """STORE: rename each changed file to its new ``:2,`` info, one new MODSEQ."""
    conn = txn.conn
    row = get_mailbox(conn, account, mailbox)
    modseq = None
    updated: list[tuple[int, frozenset[str], int]] = []
    failed: list[int] = []
    for uid, base, path, ftext, old_modseq in _uid_rows(conn, row.id, uids):
        old = flags_set(ftext)
        if mode is FlagMode.ADD:
            new = old | flags
        elif mode is FlagMode.REMOVE:
            new = old - flags
        else:
            new = flags
        if unchanged_since is not None and old_modseq > unchanged_since:
            failed.append(uid)
            continue
        if new == old:
            continue
        if modseq is None:
            modseq = bump_modseq(conn, row.id)
        rel = file_name(base, new, "cur")
        if rel != path:
            try:
                os.rename(os.path.join(row.dir, path), os.path.join(row.dir, rel))
            except FileNotFoundError:
                found = _find_file(row, base)
                if found is None:
                    continue  # gone: the next reconcile reports the expunge
                os.rename(os.path.join(row.dir, found), os.path.join(row.dir, rel))
        new_text = flags_text(new)
        conn.execute(
            "UPDATE messages SET flags=?, path=?, modseq=? WHERE mailbox=? AND uid=?",
            (new_text, rel, modseq, row.id, uid),
        )
        record_change(txn, row.id, ChangeKind.FLAGS, uid, modseq, flags=new_text, origin=origin)
        updated.append((uid, new, modseq))
    final = modseq if modseq is not None else row.highestmodseq
    return FlagResult(final, tuple(updated), tuple(failed))


def transfer(
    txn: Txn,
    layout: Layout,
    account: str,
    mailbox: str,
    uids: list[int],
    *,
    dest: str,
    move: bool,
    origin: str,
) -> UIDMapping:
    """COPY (hard link, or a fsynced copy across devices) or MOVE (rename)."""
    conn = txn.conn
    src = get_mailbox(conn, account, mailbox)
    dst = get_mailbox(conn, account, dest)
    if src.id == dst.id and move:
        raise StoreError("cannot move a message into its own mailbox")
    rows = _uid_rows(conn, src.id, uids)
    if not rows:
        return UIDMapping(dst.uidvalidity, (), ())
    dst_modseq = bump_modseq(conn, dst.id)
    src_modseq = bump_modseq(conn, src.id) if move else 0
    uid = dst.uidnext
    done_src: list[int] = []
    done_dst: list[int] = []
    for old_uid, base, path, ftext, _ms in rows:
        meta = conn.execute(
            "SELECT size, hdr_size, internaldate, cache FROM messages WHERE mailbox=? AND uid=?",
            (src.id, old_uid),
        ).fetchone()
        new_base = with_uid(unique_name(int(meta[0])), uid)
        rel = file_name(new_base, flags_set(ftext), path.split("/", 1)[0])
        src_path = os.path.join(src.dir, path)
        dst_path = os.path.join(dst.dir, rel)
        try:
            if move:
                os.rename(src_path, dst_path)
            else:
                _link_or_copy(src_path, dst_path, dst.dir)
        except FileNotFoundError:
            found = _find_file(src, base)
            if found is None:
                continue
            if move:
                os.rename(os.path.join(src.dir, found), dst_path)
            else:
                _link_or_copy(os.path.join(src.dir, found), dst_path, dst.dir)
        txn.sync_dirs.add(os.path.dirname(dst_path))
        conn.execute(
            "INSERT INTO messages(mailbox, uid, base, path, size, hdr_size, internaldate, flags,"
            " modseq, cache) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (dst.id, uid, new_base, rel, meta[0], meta[1], meta[2], ftext, dst_modseq, meta[3]),
        )
        record_change(txn, dst.id, ChangeKind.APPENDED, uid, dst_modseq, flags=ftext, origin=origin)
        if move:
            txn.sync_dirs.add(os.path.dirname(src_path))
            conn.execute("DELETE FROM messages WHERE mailbox=? AND uid=?", (src.id, old_uid))
            record_change(
                txn, src.id, ChangeKind.EXPUNGED, old_uid, src_modseq, flags="", origin=origin
            )
        done_src.append(old_uid)
        done_dst.append(uid)
        uid += 1
    conn.execute("UPDATE mailboxes SET uidnext=? WHERE id=?", (uid, dst.id))
    if move:
        write_meta(src)
    return UIDMapping(dst.uidvalidity, tuple(done_src), tuple(done_dst))


def _link_or_copy(src: str, dst: str, dst_maildir: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        # Another filesystem, or links not allowed: copy through tmp/ durably.
        tmp = os.path.join(dst_maildir, "tmp", os.path.basename(dst))
        shutil.copyfile(src, tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, dst)


def expunge(txn: Txn, account: str, mailbox: str, uids: list[int] | None, origin: str) -> list[int]:
    """Unlink the ``\\Deleted`` files first, then drop their rows (see module doc)."""
    conn = txn.conn
    row = get_mailbox(conn, account, mailbox)
    if uids is None:
        rows = conn.execute(
            "SELECT uid, base, path, flags, modseq FROM messages WHERE mailbox=?"
            " AND instr(' ' || flags || ' ', ' \\Deleted ') > 0 ORDER BY uid",
            (row.id,),
        ).fetchall()
    else:
        rows = [r for r in _uid_rows(conn, row.id, uids) if "\\Deleted" in flags_set(r[3])]
    if not rows:
        return []
    modseq = bump_modseq(conn, row.id)
    gone = []
    for uid, base, path, _f, _m in rows:
        try:
            os.unlink(os.path.join(row.dir, path))
        except FileNotFoundError:
            found = _find_file(row, base)
            if found is not None:
                os.unlink(os.path.join(row.dir, found))
        conn.execute("DELETE FROM messages WHERE mailbox=? AND uid=?", (row.id, uid))
        record_change(txn, row.id, ChangeKind.EXPUNGED, uid, modseq, flags="", origin=origin)
        gone.append(int(uid))
    write_meta(row)
    return gone
