"""Reconciling the index with the Maildirs: on open, on demand, and for reindex.

Other tools (mutt, Dovecot, a crashed append of ours) change the Maildirs
behind the index's back. The rules: a file is the truth about whether a
message exists and about its system flags; the index is the truth about
UIDs already handed out, so a UID is never reused or changed.
"""

from __future__ import annotations

import os
import time

from mailcore.store.base import SPECIAL_USE, ChangeKind
from mailcore.store.files import (
    decode_folder,
    flags_from_info,
    header_cache_json,
    header_size,
    normalize_flags,
    parse_name,
    with_uid,
)
from mailcore.store.index import Txn
from mailcore.store.ops import (
    Layout,
    MailboxRow,
    all_mailboxes,
    bump_modseq,
    flags_set,
    flags_text,
    insert_mailbox,
    read_meta,
    read_orphans,
    record_change,
)

__all__ = ["reconcile_account", "reconcile_all", "reconcile_mailbox"]

# The Maildir spec: a tmp/ file untouched for 36 hours is garbage.
TMP_MAX_AGE = 36 * 3600


def reconcile_all(txn: Txn, layout: Layout) -> int:
    """Reconcile every account found in the index or under ``mail/``; return changes."""
    accounts = {str(a) for (a,) in txn.conn.execute("SELECT DISTINCT account FROM mailboxes")}
    mail = os.path.join(layout.root, "mail")
    if os.path.isdir(mail):
        for entry in os.listdir(mail):
            if os.path.isdir(os.path.join(mail, entry)):
                accounts.add(entry.replace("%2F", "/").replace("%2E", ".").replace("%25", "%"))
    return sum(reconcile_account(txn, layout, account) for account in sorted(accounts))


def reconcile_account(txn: Txn, layout: Layout, account: str) -> int:
    """Bring the index in line with an account's Maildirs; UIDs never change.

    Folders on disk without a row get one (UIDVALIDITY from their meta file
    if present, so a rebuilt index keeps it); rows whose Maildir vanished
    are dropped; then every mailbox's files are compared with its rows.
    """
    conn = txn.conn
    root = layout.account_dir(account)
    rows = {os.path.normpath(row.dir): row for row in all_mailboxes(conn, account)}
    known = bool(rows)
    on_disk: list[str] = []
    if os.path.isdir(os.path.join(root, "cur")):
        on_disk.append(root)
        on_disk.extend(
            os.path.join(root, e)
            for e in sorted(os.listdir(root))
            if e.startswith(".")
            and e not in (".", "..")
            and os.path.isdir(os.path.join(root, e, "cur"))
        )
    changes = 0
    for d, row in list(rows.items()):
        if d not in on_disk and not row.noselect:
            conn.execute("DELETE FROM messages WHERE mailbox=?", (row.id,))
            conn.execute("DELETE FROM mailboxes WHERE id=?", (row.id,))
            del rows[d]
            changes += 1
    for d in on_disk:
        fresh = False
        found = rows.get(d)
        if found is not None:
            row = found
        else:
            name = decode_folder(os.path.basename(d) if d != root else "")
            meta = read_meta(d)
            validity = meta.get("uidvalidity")
            uidnext = meta.get("uidnext")
            row = insert_mailbox(
                txn,
                layout,
                account,
                name,
                special=str(meta.get("special", SPECIAL_USE.get(name, ""))),
                subscribed=bool(meta.get("subscribed", name == "INBOX" or name in SPECIAL_USE)),
                uidvalidity=validity if isinstance(validity, int) and validity > 0 else None,
                uidnext=uidnext if isinstance(uidnext, int) and uidnext > 0 else 1,
            )
            fresh = True
            changes += 1
        changes += reconcile_mailbox(txn, row, adopt_all=fresh)
    if not known:
        # A rebuilt index: the subscriptions kept for deleted mailboxes
        # come back from the account's own note of them.
        mailboxes = {row.name for row in all_mailboxes(conn, account)}
        for name in read_orphans(layout, account):
            if name not in mailboxes:
                conn.execute(
                    "INSERT OR IGNORE INTO orphan_subscriptions VALUES (?,?)", (account, name)
                )
    return changes


def reconcile_mailbox(txn: Txn, row: MailboxRow, *, adopt_all: bool = False) -> int:
    """Compare one Maildir's files with its rows (see :func:`reconcile_account`).

    A file whose ``U=`` is free is indexed under that UID when it is at or
    above UIDNEXT (an append that crashed between rename and commit) or when
    the index is being rebuilt (``adopt_all``); any other unknown file gets
    the next UID and its name is rewritten to record it.
    """
    conn = txn.conn
    files: dict[str, tuple[str, str, str | None, int | None]] = {}
    for sub in ("new", "cur"):
        for name in os.listdir(os.path.join(row.dir, sub)):
            if name.startswith("."):
                continue
            parsed = parse_name(name)
            files[parsed.base] = (sub, name, parsed.info, parsed.uid)
    _clean_tmp(row.dir)
    changes = 0
    modseq: int | None = None

    def bump() -> int:
        nonlocal modseq
        if modseq is None:
            modseq = bump_modseq(conn, row.id)
        return modseq

    used: set[int] = set()
    for uid, base, path, ftext in conn.execute(
        "SELECT uid, base, path, flags FROM messages WHERE mailbox=?", (row.id,)
    ).fetchall():
        found = files.pop(base, None)
        if found is None:
            conn.execute("DELETE FROM messages WHERE mailbox=? AND uid=?", (row.id, uid))
            record_change(txn, row.id, ChangeKind.EXPUNGED, uid, bump(), flags="", origin="")
            changes += 1
            continue
        used.add(int(uid))
        sub, name, info, _u = found
        rel = f"{sub}/{name}"
        if rel == path:
            continue
        old = flags_set(ftext)
        # Keep keywords the file name cannot carry; take system flags from the file.
        keep = frozenset(f for f in old if not f.startswith("\\") and f != "$Forwarded")
        new = keep | flags_from_info(info or "")
        conn.execute("UPDATE messages SET path=? WHERE mailbox=? AND uid=?", (rel, row.id, uid))
        if new != old:
            ms = bump()
            conn.execute(
                "UPDATE messages SET flags=?, modseq=? WHERE mailbox=? AND uid=?",
                (flags_text(new), ms, row.id, uid),
            )
            record_change(txn, row.id, ChangeKind.FLAGS, uid, ms, flags=flags_text(new), origin="")
            changes += 1
    uidnext = row.uidnext
    leftovers = sorted(files.values(), key=lambda f: (f[3] is None, f[3] or 0, f[1]))
    for sub, name, info, file_uid in leftovers:
        if file_uid is not None and file_uid not in used and (adopt_all or file_uid >= uidnext):
            uid = file_uid
        else:
            # Every indexed or adopted UID is below uidnext (the index's
            # invariant, kept by the line below), so uidnext is free.
            uid = uidnext
        used.add(uid)
        uidnext = max(uidnext, uid + 1)
        path = os.path.join(row.dir, sub, name)
        parsed = parse_name(name)
        base = parsed.base
        if parsed.uid != uid:
            base = with_uid(base, uid)
            new_name = base + (f":2,{info}" if info is not None else "")
            os.rename(path, os.path.join(row.dir, sub, new_name))
            path = os.path.join(row.dir, sub, new_name)
        with open(path, "rb") as fh:
            data = fh.read()
        st = os.stat(path)
        hsize = header_size(data)
        flags = normalize_flags(flags_from_info(info or ""))
        ms = bump()
        ftext = flags_text(flags)
        conn.execute(
            "INSERT INTO messages(mailbox, uid, base, path, size, hdr_size, internaldate, flags,"
            " modseq, cache) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                row.id,
                uid,
                base,
                f"{sub}/{name}",
                len(data),
                hsize,
                st.st_mtime,
                ftext,
                ms,
                header_cache_json(data, hsize),
            ),
        )
        record_change(txn, row.id, ChangeKind.APPENDED, uid, ms, flags=ftext, origin="")
        changes += 1
    if uidnext != row.uidnext:
        conn.execute("UPDATE mailboxes SET uidnext=? WHERE id=?", (uidnext, row.id))
    return changes


def _clean_tmp(maildir: str) -> None:
    tmp = os.path.join(maildir, "tmp")
    cutoff = time.time() - TMP_MAX_AGE
    try:
        names = os.listdir(tmp)
    except FileNotFoundError:
        return
    for name in names:
        path = os.path.join(tmp, name)
        try:
            if os.stat(path).st_mtime < cutoff:
                os.unlink(path)
        except FileNotFoundError:
            continue
