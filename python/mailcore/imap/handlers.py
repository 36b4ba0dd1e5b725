"""IMAP commands that work on the store (everything after login), for the asyncio server.

:class:`Commands` is the part of a server session that turns
:class:`~mailcore.imap.events.Request` events into store calls and
responses. Sequence numbers, \\Recent and pending updates live in the
session's :class:`~mailcore.imap.selected.View`; the store only sees UIDs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from typing import cast

from mailcore import _core
from mailcore.imap import command as c
from mailcore.imap.fetch import (
    StructureCache,
    UnknownCTE,
    cached_kinds,
    compile_items,
    need,
    response_bound,
    sets_seen,
    write_chunks,
)
from mailcore.imap.mutf7 import MailboxNameError, check_name, decode
from mailcore.imap.protocol import ServerConnection
from mailcore.imap.replies import compress_set, flag_list, mailbox_text
from mailcore.imap.search import Need, SearchContext, matches, needs
from mailcore.imap.selected import Index, View
from mailcore.limits import ImapLimits
from mailcore.store.base import (
    DELIMITER,
    ChangeFeed,
    FlagMode,
    MailboxExists,
    MailboxNameTooLong,
    MailboxNotFound,
    Store,
    StoreError,
    match_pattern,
)

__all__ = ["Commands", "IndexCache", "RecentClaims"]

log = logging.getLogger("mailcore.imap")

# FETCH output is written in pieces of about this size; a larger literal
# (a message body) is written on its own, without joining it to anything.
_WRITE_CHUNK = 1024 * 1024

_SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")


class RecentClaims:
    """Which session saw a message first, for \\Recent (RFC 3501 2.3.2).

    Per process: the highest UID of each mailbox some session has been told
    about. Messages above it are \\Recent for the next session to SELECT (or
    be told of) them; sessions in other processes are not coordinated.
    """

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str, int], int] = {}

    def claim(self, key: tuple[str, str, int], uids: list[int]) -> list[int]:
        """Take the UIDs nobody has seen yet; return them."""
        top = self._seen.get(key, 0)
        if not uids or uids[-1] <= top:
            return []  # the usual case: nothing new since the last session
        mine = [u for u in uids if u > top]
        if mine:
            self._seen[key] = mine[-1]
        return mine

    def count(self, key: tuple[str, str, int], uids: list[int]) -> int:
        """How many of ``uids`` are unclaimed (STATUS RECENT)."""
        top = self._seen.get(key, 0)
        return sum(1 for u in uids if u > top)


class IndexCache:
    """The message index of recently selected mailboxes, reused while unchanged.

    Every change to a mailbox (append, flags, expunge, by any process) bumps
    its HIGHESTMODSEQ, so an entry read when the mailbox had the same
    UIDVALIDITY, UIDNEXT and HIGHESTMODSEQ it has now is exact: a SELECT then
    reads only the mailbox's row. At most ``capacity`` mailboxes are kept.
    """

    def __init__(self, capacity: int = 64) -> None:
        self.capacity = capacity
        self._data: OrderedDict[tuple[str, str], tuple[tuple[int, int, int], Index]]
        self._data = OrderedDict()

    def get(self, key: tuple[str, str], state: tuple[int, int, int]) -> Index | None:
        """The cached index if the mailbox has not changed since it was read."""
        found = self._data.get(key)
        if found is None or found[0] != state:
            return None
        self._data.move_to_end(key)
        return found[1]

    def put(self, key: tuple[str, str], state: tuple[int, int, int], index: Index) -> None:
        """Remember an index read after the mailbox was in ``state``."""
        self._data[key] = (state, index)
        self._data.move_to_end(key)
        if len(self._data) > self.capacity:
            self._data.popitem(last=False)


class _Refused(Exception):
    """A command refused with a tagged NO/BAD (status, text)."""

    def __init__(self, status: str, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


def _matching(key: c.SearchKey, ctxs: list[SearchContext]) -> list[SearchContext]:
    return [ctx for ctx in ctxs if matches(key, ctx)]


class Commands:
    """Store-backed commands of one session (mixed into the server's session)."""

    conn: ServerConnection
    store: Store
    account: str
    session_id: str
    view: View | None
    feed: ChangeFeed | None
    limits: ImapLimits
    cache: StructureCache
    claims: RecentClaims
    indexes: IndexCache
    flush: Callable[[], Awaitable[None]]

    # ----------------------------------------------------------- plumbing
    async def execute(self, command: c.Command) -> None:
        """Run one command and complete it (OK, or NO/BAD with a reason)."""
        handler = getattr(self, "cmd_" + type(command).__name__.lower())
        try:
            text = await handler(command)
        except _Refused as r:
            self.conn.complete(command.tag, r.status, r.text)
            return
        except MailboxNameError as e:
            self.conn.complete(command.tag, "NO", f"[CANNOT] {e}")
            return
        except MailboxNotFound:
            self.conn.complete(command.tag, "NO", "[NONEXISTENT] No such mailbox")
            return
        except MailboxExists:
            self.conn.complete(command.tag, "NO", "[ALREADYEXISTS] Mailbox exists")
            return
        except MailboxNameTooLong as e:
            # RFC 5530: CANNOT, "can never succeed" (the name will not fit).
            self.conn.complete(command.tag, "NO", f"[CANNOT] {e}")
            return
        except StoreError:
            log.exception("imap: store failure in %s", type(command).__name__)
            self.conn.complete(command.tag, "NO", "[SERVERBUG] Internal error")
            return
        self.conn.complete(command.tag, "OK", text)

    def name(self, raw: str) -> str:
        """A client's mailbox name in the store's spelling (raises MailboxNameError)."""
        return check_name(raw if self.conn.utf8 else decode(raw))

    def out_name(self, name: str) -> bytes:
        return mailbox_text(name, self.conn.utf8)

    async def poll_updates(self, *, expunges: bool) -> None:
        """Send what other sessions changed, as the moment allows (RFC 9051 7.5.1)."""
        view, feed = self.view, self.feed
        if view is None or feed is None:
            return
        # What was committed before this command (by any process) is news now.
        self.store.refresh()
        appended = view.apply(feed.pending())
        if appended:
            await self.load_new()
        self.conn.send(view.updates(expunges=expunges, rev2=self.conn.rev2))

    async def load_new(self) -> None:
        """Add messages above the view's last UID (appended by anyone)."""
        view = self.view
        if view is None:
            return
        metas = await self.store.message_index(self.account, view.name, view.last_uid + 1)
        recent: list[int] = []
        if not view.read_only:
            recent = self.claims.claim(
                (self.account, view.name, view.uidvalidity), [m.uid for m in metas]
            )
        view.add(metas, recent=recent)

    async def close_view(self) -> None:
        if self.feed is not None:
            await self.feed.close()
        self.view = None
        self.feed = None

    def selected_view(self) -> View:
        if self.view is None:  # the machine only lets selected-state commands through
            raise AssertionError("no mailbox selected")
        return self.view

    # ------------------------------------------------------------ commands
    async def cmd_noop(self, cmd: c.Noop) -> str:
        await self.poll_updates(expunges=True)
        return "NOOP completed"

    async def cmd_check(self, cmd: c.Check) -> str:
        await self.poll_updates(expunges=True)
        return "CHECK completed"

    async def cmd_select(self, cmd: c.Select) -> str:
        was_selected = self.view is not None
        if was_selected:
            await self.close_view()
            self.conn.unselected()
            # RFC 9051 7.1: CLOSED marks where the old mailbox's responses end.
            self.conn.untagged("OK [CLOSED] Previous mailbox closed")
        name = self.name(cmd.mailbox)
        feed = self.store.watch(self.account, name, session=self.session_id)
        try:
            state = await self.store.mailbox_state(self.account, name)
            uidvalidity, uidnext, _modseq = state
            index = self.indexes.get((self.account, name), state)
            if index is None:
                # Read after the state: the index is at least as new, so a
                # later SELECT finding the same state never gets stale data.
                index = Index(await self.store.message_index(self.account, name))
                self.indexes.put((self.account, name), state, index)
        except BaseException:
            await feed.close()
            raise
        if index.uids:
            uidnext = max(uidnext, index.uids[-1] + 1)
        key = (self.account, name, uidvalidity)
        recent = [] if cmd.read_only else self.claims.claim(key, index.uids)
        view = View(
            name,
            index,
            recent=recent,
            read_only=cmd.read_only,
            uidvalidity=uidvalidity,
            uidnext=uidnext,
        )
        self.view, self.feed = view, feed
        rev2 = self.conn.rev2
        flags = " ".join([*_SYSTEM_FLAGS, *index.keywords])
        out = [f"* {view.exists} EXISTS\r\n"]
        if not rev2:
            out.append(f"* {len(view.recent)} RECENT\r\n")
        out.append(f"* FLAGS ({flags})\r\n")
        perm = "" if cmd.read_only else f"{flags} \\*"
        out.append(f"* OK [PERMANENTFLAGS ({perm})] Flags permitted\r\n")
        out.append(f"* OK [UIDVALIDITY {uidvalidity}] UIDs valid\r\n")
        out.append(f"* OK [UIDNEXT {uidnext}] Predicted next UID\r\n")
        if not rev2:
            unseen = index.first_unseen
            if unseen is not None:
                out.append(f"* OK [UNSEEN {unseen}] First unseen\r\n")
        self.conn.send("".join(out).encode())
        if rev2:
            self.conn.send(b'* LIST () "/" ' + self.out_name(name) + b"\r\n")
        self.conn.selected()
        mode = "READ-ONLY" if cmd.read_only else "READ-WRITE"
        return f"[{mode}] {'EXAMINE' if cmd.read_only else 'SELECT'} completed"

    async def cmd_create(self, cmd: c.Create) -> str:
        name = self.name(cmd.mailbox)
        if name == "INBOX":
            raise _Refused("NO", "[ALREADYEXISTS] INBOX always exists")
        await self.store.create_mailbox(self.account, name)
        return "CREATE completed"

    async def cmd_delete(self, cmd: c.Delete) -> str:
        name = self.name(cmd.mailbox)
        if name == "INBOX":
            raise _Refused("NO", "[CANNOT] INBOX cannot be deleted")
        await self.store.delete_mailbox(self.account, name)
        return "DELETE completed"

    async def cmd_rename(self, cmd: c.Rename) -> str:
        old, new = self.name(cmd.old), self.name(cmd.new)
        if new == "INBOX" or (new.startswith("INBOX/") and old == "INBOX"):
            raise _Refused("NO", "[CANNOT] Cannot rename onto INBOX")
        await self.store.rename_mailbox(self.account, old, new)
        return "RENAME completed"

    async def cmd_subscribe(self, cmd: c.Subscribe) -> str:
        await self.store.set_subscribed(self.account, self.name(cmd.mailbox), True)
        return "SUBSCRIBE completed"

    async def cmd_unsubscribe(self, cmd: c.Unsubscribe) -> str:
        await self.store.set_subscribed(self.account, self.name(cmd.mailbox), False)
        return "UNSUBSCRIBE completed"

    def pattern(self, raw: str) -> str:
        if self.conn.utf8:
            return raw
        try:
            return decode(raw)
        except MailboxNameError:
            return raw

    async def cmd_list(self, cmd: c.List) -> str:
        if cmd.patterns == ("",) and not cmd.selection:
            self.conn.send(b'* LIST (\\Noselect) "/" ""\r\n')
            return "LIST completed"
        subscribed_only = "SUBSCRIBED" in cmd.selection
        special_only = "SPECIAL-USE" in cmd.selection
        want_subscribed = subscribed_only or "SUBSCRIBED" in cmd.returns
        recursive = "RECURSIVEMATCH" in cmd.selection
        if recursive and not set(cmd.selection) - {"RECURSIVEMATCH", "REMOTE"}:
            # RFC 5258 3: it only modifies another selection option.
            raise _Refused("BAD", "RECURSIVEMATCH needs another selection option")
        seen: set[str] = set()
        out: list[bytes] = []
        reference = self.pattern(cmd.reference)
        patterns = [self.pattern(p) for p in cmd.patterns]
        # RECURSIVEMATCH with SUBSCRIBED: a mailbox the patterns match also
        # comes back when a descendant the patterns do not reach is
        # subscribed, with CHILDINFO ("SUBSCRIBED") saying so (RFC 5258 3.5).
        hidden_subscribed: list[str] = []
        if recursive and subscribed_only:
            regexes = [match_pattern(reference, p) for p in patterns]
            hidden_subscribed = [
                info.name
                for info in await self.store.list_mailboxes(self.account, subscribed=True)
                if not any(r.match(info.name) for r in regexes)
            ]
        for pat in patterns:
            infos = await self.store.list_mailboxes(
                self.account,
                reference,
                pat,
                subscribed=subscribed_only and not hidden_subscribed,
            )
            if hidden_subscribed:
                # That listing covered every existing mailbox; the subscribed
                # names without one (\NonExistent) come from the subscribed listing.
                infos += [
                    info
                    for info in await self.store.list_mailboxes(
                        self.account, reference, pat, subscribed=True
                    )
                    if "\\NonExistent" in info.attributes
                ]
            for info in infos:
                if info.name in seen:
                    continue
                prefix = info.name + DELIMITER
                childinfo = any(n.startswith(prefix) for n in hidden_subscribed)
                if subscribed_only and not info.subscribed and not childinfo:
                    continue
                seen.add(info.name)
                attrs = set(info.attributes)
                if special_only and not attrs - {
                    "\\HasChildren",
                    "\\HasNoChildren",
                    "\\Noselect",
                }:
                    continue
                if want_subscribed and info.subscribed:
                    attrs.add("\\Subscribed")
                line = b"* LIST " + flag_list(attrs) + b' "/" ' + self.out_name(info.name)
                if childinfo:
                    line += b' ("CHILDINFO" ("SUBSCRIBED"))'
                out.append(line + b"\r\n")
                if "STATUS" in cmd.returns and not attrs & {"\\Noselect", "\\NonExistent"}:
                    out.append(await self.status_line(info.name, cmd.status_items))
        self.conn.send(b"".join(out))
        return "LIST completed"

    async def cmd_lsub(self, cmd: c.Lsub) -> str:
        out = []
        for info in await self.store.list_mailboxes(
            self.account, self.pattern(cmd.reference), self.pattern(cmd.pattern), subscribed=True
        ):
            attrs = {a for a in info.attributes if a == "\\Noselect"}
            out.append(
                b"* LSUB " + flag_list(attrs) + b' "/" ' + self.out_name(info.name) + b"\r\n"
            )
        self.conn.send(b"".join(out))
        return "LSUB completed"

    async def status_line(self, name: str, items: tuple[str, ...]) -> bytes:
        st = await self.store.status(self.account, name)
        values: dict[str, int] = {
            "MESSAGES": st.messages,
            "UIDNEXT": st.uidnext,
            "UIDVALIDITY": st.uidvalidity,
            "UNSEEN": st.unseen,
            "SIZE": st.size,
            "HIGHESTMODSEQ": st.highestmodseq,
        }
        if "RECENT" in items or "DELETED" in items:
            metas = await self.store.messages(self.account, name)
            key = (self.account, name, st.uidvalidity)
            values["RECENT"] = self.claims.count(key, [m.uid for m in metas])
            values["DELETED"] = sum(1 for m in metas if "\\Deleted" in m.flags)
        parts = [f"{item} {values[item]}" for item in items if item in values]
        return b"* STATUS " + self.out_name(name) + f" ({' '.join(parts)})\r\n".encode()

    async def cmd_status(self, cmd: c.Status) -> str:
        name = self.name(cmd.mailbox)
        self.conn.send(await self.status_line(name, cmd.items))
        return "STATUS completed"

    async def cmd_append(self, cmd: c.Append) -> str:
        name = self.name(cmd.mailbox)
        if not cmd.message:
            raise _Refused("NO", "Empty message")
        flags = [f for f in cmd.flags if f.lower() != "\\recent"]
        when = cmd.date.timestamp() if cmd.date is not None else None
        try:
            res = await self.store.append(
                self.account,
                name,
                cmd.message,
                flags=flags,
                internal_date=when,
                session=self.session_id,
            )
        except MailboxNotFound:
            raise _Refused("NO", "[TRYCREATE] No such mailbox") from None
        if self.view is not None and self.view.name == name:
            await self.load_new()
            self.conn.send(self.view.updates(expunges=False, rev2=self.conn.rev2))
        return f"[APPENDUID {res.uidvalidity} {res.uid}] APPEND completed"

    async def cmd_close(self, cmd: c.Close) -> str:
        view = self.selected_view()
        if not view.read_only:
            await self.store.expunge(self.account, view.name, session=self.session_id)
        await self.close_view()
        self.conn.unselected()
        return "CLOSE completed"

    async def cmd_unselect(self, cmd: c.Unselect) -> str:
        await self.close_view()
        self.conn.unselected()
        return "UNSELECT completed"

    async def cmd_expunge(self, cmd: c.Expunge) -> str:
        view = self.selected_view()
        if view.read_only:
            raise _Refused("NO", "[READ-ONLY] Mailbox is read-only")
        uids = None if cmd.uids is None else view.resolve(cmd.uids, uid=True)
        gone = await self.store.expunge(self.account, view.name, uids, session=self.session_id)
        self.conn.send(view.remove(gone))
        await self.poll_updates(expunges=True)
        return "EXPUNGE completed"

    def check_set(self, view: View, seqset: c.SequenceSet, uid: bool) -> list[int]:
        if not uid and not view.seq_valid(seqset):
            raise _Refused("BAD", "Invalid message sequence number")
        return view.resolve(seqset, uid=uid)

    async def cmd_search(self, cmd: c.Search) -> str:
        view = self.selected_view()
        if cmd.charset is not None and cmd.charset.upper() not in ("UTF-8", "US-ASCII"):
            raise _Refused("NO", "[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset")
        await self.poll_updates(expunges=False)
        level = needs(cmd.key)
        found: list[tuple[int, int]] = []
        rev2 = self.conn.rev2
        uids = list(view.uids)
        step = 200 if level is Need.FULL else 2000
        for i in range(0, len(uids), step):
            part = uids[i : i + step]
            raws: dict[int, bytes] = {}
            if level is not Need.META:
                raws = await self.store.read_many(
                    self.account, view.name, part, header_only=level is Need.HEADER
                )
            ctxs = [
                SearchContext(view, uid, i + j + 1, view.meta[uid], rev2, raws.get(uid))
                for j, uid in enumerate(part)
            ]
            if level is not Need.META:
                ctxs = [ctx for ctx in ctxs if ctx.raw is not None]  # expunged meanwhile
            if level is Need.FULL:
                # Whole bodies (and decoding encoded parts) take long enough
                # to stall every other session of the loop: a thread does it.
                hits = await asyncio.to_thread(_matching, cmd.key, ctxs)
            else:
                hits = _matching(cmd.key, ctxs)
            found += [(ctx.seq, ctx.uid) for ctx in hits]
        numbers = [u if cmd.uid else s for s, u in found]
        self.search_reply(cmd, view, numbers, [u for _, u in found])
        return f"{'UID ' if cmd.uid else ''}SEARCH completed"

    def search_reply(self, cmd: c.Search, view: View, numbers: list[int], uids: list[int]) -> None:
        returns = cmd.returns
        if returns is None and not self.conn.rev2:
            self.conn.send(("* SEARCH" + "".join(f" {n}" for n in numbers) + "\r\n").encode())
            return
        opts = set(returns or ()) or {"ALL"}
        if "SAVE" in opts:
            if opts & {"MIN", "MAX"} and not opts & {"ALL", "COUNT"}:
                keep = set()
                if uids and "MIN" in opts:
                    keep.add(uids[0])
                if uids and "MAX" in opts:
                    keep.add(uids[-1])
                view.saved = sorted(keep)
            else:
                view.saved = list(uids)
            opts.discard("SAVE")
            if not opts:
                return
        parts = [f'* ESEARCH (TAG "{cmd.tag}")']
        if cmd.uid:
            parts.append("UID")
        if numbers and "MIN" in opts:
            parts.append(f"MIN {numbers[0]}")
        if numbers and "MAX" in opts:
            parts.append(f"MAX {numbers[-1]}")
        if numbers and "ALL" in opts:
            parts.append(f"ALL {compress_set(numbers)}")
        if "COUNT" in opts:
            parts.append(f"COUNT {len(numbers)}")
        self.conn.send((" ".join(parts) + "\r\n").encode())

    async def cmd_fetch(self, cmd: c.Fetch) -> str:
        view = self.selected_view()
        uids = self.check_set(view, cmd.sequence, cmd.uid)
        await self.poll_updates(expunges=False)
        attrs = cmd.attributes
        level = max((need(a) for a in attrs), default=Need.META)
        meta, seq_of = view.meta, view.seq_of
        bound = response_bound(attrs)
        if bound is not None and uids:
            # Refused before anything is read or built (and before \Seen is
            # set): FETCH 1 (BODY[]<0.N> BODY[]<1.N> ...) would make a response
            # of many times the message. A message may always be fetched once.
            cap = self.limits.fetch_response_size
            per_message = len(bound.shared) + len(bound.copied)
            if per_message * max(meta[u].size for u in uids) > cap and any(
                bound.total(m) > max(cap, m.size) for m in map(meta.__getitem__, uids)
            ):
                raise _Refused(
                    "NO", f"[LIMIT] FETCH response over {cap} octets per message; ask for less"
                )
        seen = not view.read_only and any(sets_seen(a) for a in attrs)
        if seen:
            unseen = [u for u in uids if "\\Seen" not in view.flags.get(u, frozenset())]
            if unseen:
                res = await self.store.store_flags(
                    self.account,
                    view.name,
                    unseen,
                    ["\\Seen"],
                    FlagMode.ADD,
                    session=self.session_id,
                )
                for u, flags, _modseq in res.updated:
                    view.set_flags(u, flags)
        key = (self.account, view.name, view.uidvalidity)
        build = compile_items(
            attrs,
            view=view,
            rev2=self.conn.rev2,
            cache=self.cache,
            cache_key=key,
            with_uid=cmd.uid,
            with_flags=seen and "FLAGS" not in {a.name for a in attrs},
        )
        batch_max, bytes_max = self.limits.fetch_batch, self.limits.fetch_batch_bytes
        # When every item needing message bytes can come from the cache, only
        # messages missing from it are read.
        kinds = cached_kinds(attrs)
        tables = None if kinds is None else [self.cache.table(key, k) for k in kinds]
        # FETCH 1:* (the usual case): sequence numbers are positions.
        whole = len(uids) == view.exists
        # Batches of up to fetch_batch messages and about fetch_batch_bytes of
        # them and of the sections built from them.
        copies = bound.copies if bound is not None and bound.copied else None
        bounds: list[tuple[int, int]] = []
        i = 0
        while i < len(uids):
            if level is Need.FULL:
                j, size = i, 0
                while j < len(uids) and j - i < batch_max:
                    one = meta[uids[j]]
                    size += one.size if copies is None else one.size + copies(one)
                    j += 1
                    if size >= bytes_max:
                        break
            else:
                j = min(i + batch_max, len(uids))
            bounds.append((i, j))
            i = j

        def wanted(part: list[int]) -> list[int]:
            if level is Need.META:
                return []
            if tables is None:
                return part
            if len(tables) == 1:
                table = tables[0]
                return [u for u in part if u not in table]
            return [u for u in part if not all(u in t for t in tables)]

        async def read(part: list[int]) -> tuple[list[int], dict[int, bytes]]:
            to_read = wanted(part)
            if not to_read:
                return to_read, {}
            raws = await self.store.read_many(
                self.account, view.name, to_read, header_only=level is Need.HEADER
            )
            return to_read, raws

        # The next batch is read from disk while this one is written out.
        ahead: asyncio.Task[tuple[list[int], dict[int, bytes]]] | None = None
        try:
            for n, (lo, hi) in enumerate(bounds):
                part = uids[lo:hi]
                to_read, raws = await ahead if ahead is not None else await read(part)
                ahead = None
                if n + 1 < len(bounds) and level is not Need.META:
                    nlo, nhi = bounds[n + 1]
                    ahead = asyncio.ensure_future(read(uids[nlo:nhi]))
                if len(raws) < len(to_read):
                    # Messages expunged by another session meanwhile are left
                    # out; their EXPUNGE comes at the next moment it may.
                    reading = set(to_read)
                    part = [u for u in part if u in raws or u not in reading]
                try:
                    items = build(part, raws)
                except UnknownCTE:
                    raise _Refused("NO", "[UNKNOWN-CTE] Cannot decode this part") from None
                seqs: range | list[int]
                if whole and len(part) == hi - lo:
                    seqs = range(lo + 1, hi + 1)
                else:
                    seqs = [seq_of(u) or 0 for u in part]
                batch = list(zip(seqs, items, strict=True))
                del items
                if level is Need.FULL:
                    await self.write_pieces(write_chunks(batch))
                else:
                    # write_fetch reads any sequence of items; tuples save a
                    # copy each (no memoryview here: those are FULL items).
                    data = _core.write_fetch(
                        cast("list[tuple[int, list[tuple[bytes, int | bytes | None]]]]", batch)
                    )
                    self.conn.send(data)
                del batch
                await self.flush()
        finally:
            if ahead is not None:
                ahead.cancel()
                with contextlib.suppress(asyncio.CancelledError, StoreError):
                    await ahead
        return f"{'UID ' if cmd.uid else ''}FETCH completed"

    async def write_pieces(self, pieces: Iterable[bytes | memoryview]) -> None:
        """Send FETCH output in pieces of about _WRITE_CHUNK, each large value alone.

        Only one large value is copied (if it is a view) and in flight at a
        time, so a FETCH of big bodies takes about one body of memory on top
        of what was read, not the whole response two or three times over.
        """
        joined: list[bytes | memoryview] = []
        size = 0
        for piece in pieces:
            if len(piece) >= _WRITE_CHUNK:
                if joined:
                    self.conn.send(b"".join(joined))
                    joined.clear()
                    size = 0
                self.conn.send(piece if isinstance(piece, bytes) else piece.tobytes())
                await self.flush()
                continue
            joined.append(piece)
            size += len(piece)
            if size >= _WRITE_CHUNK:
                self.conn.send(b"".join(joined))
                joined.clear()
                size = 0
                await self.flush()
        if joined:
            self.conn.send(b"".join(joined))

    async def cmd_store(self, cmd: c.Store) -> str:
        view = self.selected_view()
        uids = self.check_set(view, cmd.sequence, cmd.uid)
        await self.poll_updates(expunges=False)
        if view.read_only:
            raise _Refused("NO", "[READ-ONLY] Mailbox is read-only")
        flags = [f for f in cmd.flags if f.lower() != "\\recent"]
        mode = {"set": FlagMode.REPLACE, "add": FlagMode.ADD, "remove": FlagMode.REMOVE}[cmd.mode]
        uids = [u for u in uids if not view.is_ghost(u)]
        if uids:
            res = await self.store.store_flags(
                self.account, view.name, uids, flags, mode, session=self.session_id
            )
            for u, fl, _modseq in res.updated:
                view.set_flags(u, fl)
        if not cmd.silent:
            out = []
            for u in uids:
                seq = view.seq_of(u)
                if seq is None:
                    continue
                uid_part = b"UID %d " % u if cmd.uid else b""
                out.append(
                    b"* %d FETCH (%sFLAGS %s)\r\n"
                    % (seq, uid_part, view.flag_bytes(u, rev2=self.conn.rev2))
                )
            self.conn.send(b"".join(out))
        return f"{'UID ' if cmd.uid else ''}STORE completed"

    async def transfer(self, cmd: c.Copy | c.Move) -> str:
        view = self.selected_view()
        uids = self.check_set(view, cmd.sequence, cmd.uid)
        is_move = isinstance(cmd, c.Move)
        verb = "MOVE" if is_move else "COPY"
        if is_move and view.read_only:
            raise _Refused("NO", "[READ-ONLY] Mailbox is read-only")
        dest = self.name(cmd.mailbox)
        uids = [u for u in uids if not view.is_ghost(u)]
        if not uids:
            await self.poll_updates(expunges=cmd.uid)
            return f"{verb} completed (no messages)"
        op = self.store.move if is_move else self.store.copy
        try:
            mapping = await op(self.account, view.name, uids, dest, session=self.session_id)
        except MailboxNotFound:
            raise _Refused("NO", "[TRYCREATE] No such mailbox") from None
        code = (
            f"[COPYUID {mapping.uidvalidity} {compress_set(mapping.source)} "
            f"{','.join(str(u) for u in mapping.destination)}]"
            if mapping.source
            else ""
        )
        if dest == view.name:
            await self.load_new()
        if is_move:
            if code:
                self.conn.untagged(f"OK {code} Moved")
            self.conn.send(view.remove(mapping.source))
            await self.poll_updates(expunges=True)
            return f"{'UID ' if cmd.uid else ''}MOVE completed"
        await self.poll_updates(expunges=cmd.uid)
        return f"{code} {'UID ' if cmd.uid else ''}COPY completed".strip()

    async def cmd_copy(self, cmd: c.Copy) -> str:
        return await self.transfer(cmd)

    async def cmd_move(self, cmd: c.Move) -> str:
        return await self.transfer(cmd)
