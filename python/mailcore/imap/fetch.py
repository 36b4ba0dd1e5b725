"""FETCH item building: from store metadata and message bytes to ``write_fetch`` input.

Metadata items (UID, FLAGS, RFC822.SIZE, INTERNALDATE) come from the
session's :class:`~mailcore.imap.selected.View`, which holds the store
index's rows, so they never open a file. ENVELOPE and BODYSTRUCTURE are
computed by the Rust MIME scanner once per message and kept in a
:class:`StructureCache` shared by the server's sessions. What needs message
bytes says so through :func:`need`, and the server reads those in batches.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from mailcore import _core
from mailcore.imap.command import FetchAttribute, Section
from mailcore.imap.replies import flag_list, flag_list_recent, internal_date
from mailcore.imap.search import Need
from mailcore.imap.selected import View
from mailcore.store.base import MessageMeta

__all__ = [
    "FetchItem",
    "ResponseBound",
    "StructureCache",
    "UnknownCTE",
    "cached_kinds",
    "compile_items",
    "need",
    "response_bound",
    "section_spec",
    "sets_seen",
    "write_chunks",
    "write_large",
]

FetchItem = tuple[bytes, int | bytes | memoryview | None]
"""One ``(name, value)`` pair of :func:`mailcore._core.write_fetch`; a
``memoryview`` is a slice of the message bytes (a partial ``BODY[]``), only
in items that need the whole message (written by :func:`write_chunks`)."""

_META = frozenset({"UID", "FLAGS", "RFC822.SIZE", "INTERNALDATE", "MODSEQ"})


def section_spec(section: Section) -> str:
    """The text between the brackets: ``1.2.HEADER.FIELDS (FROM TO)``."""
    parts = [".".join(str(p) for p in section.part)] if section.part else []
    if section.text is not None:
        parts.append(section.text)
    spec = ".".join(parts)
    if section.fields:
        spec += " (" + " ".join(section.fields) + ")"
    return spec


def need(attr: FetchAttribute) -> Need:
    """How much of a message one attribute needs."""
    if attr.name in _META:
        return Need.META
    if attr.name in ("ENVELOPE", "RFC822.HEADER"):
        return Need.HEADER
    if attr.name == "BODY" and attr.section is not None:
        s = attr.section
        if not s.part and s.text in ("HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT"):
            return Need.HEADER
    return Need.FULL


def sets_seen(attr: FetchAttribute) -> bool:
    """Whether fetching ``attr`` sets \\Seen (RFC 9051 6.4.5: BODY[] and BINARY[] without PEEK)."""
    if attr.name in ("RFC822", "RFC822.TEXT"):
        return True
    return attr.name in ("BODY", "BINARY") and attr.section is not None and not attr.peek


class StructureCache:
    """ENVELOPE / BODYSTRUCTURE / header-field bytes by message, shared by a server's sessions.

    One table (UID -> bytes) per mailbox and kind, so a FETCH 1:* looks each
    message up by an integer. Keys include the UIDVALIDITY, so a recreated
    mailbox never sees old entries (UIDs are never reused within one). Past
    ``capacity`` entries the least recently used tables are dropped whole.
    """

    def __init__(self, capacity: int = 500_000) -> None:
        self.capacity = capacity
        self._tables: OrderedDict[tuple[str, str, int, str], dict[int, bytes]] = OrderedDict()
        self._size = 0

    def table(self, mailbox: tuple[str, str, int], kind: str) -> dict[int, bytes]:
        """The (live, read-only for callers) table of one mailbox and kind."""
        key = (*mailbox, kind)
        found = self._tables.get(key)
        if found is None:
            found = self._tables[key] = {}
        else:
            self._tables.move_to_end(key)
        return found

    def put(self, mailbox: tuple[str, str, int], kind: str, uid: int, value: bytes) -> None:
        """Remember one value, dropping the oldest tables beyond ``capacity``."""
        table = self.table(mailbox, kind)
        if uid not in table:
            self._size += 1
        table[uid] = value
        while self._size > self.capacity and len(self._tables) > 1:
            _key, oldest = self._tables.popitem(last=False)
            self._size -= len(oldest)


class UnknownCTE(Exception):
    """BINARY of a part whose Content-Transfer-Encoding is unknown (``NO [UNKNOWN-CTE]``)."""


Getter = Callable[[int, MessageMeta, bytes | None], FetchItem]
"""Produces one item of one message from (uid, meta, raw bytes)."""


Column = Callable[[list[int]], list[FetchItem]]
"""One attribute's items for a batch of UIDs."""


def compile_items(
    attrs: tuple[FetchAttribute, ...],
    *,
    view: View,
    rev2: bool,
    cache: StructureCache,
    cache_key: tuple[str, str, int],
    with_uid: bool,
    with_flags: bool,
) -> Callable[[list[int], dict[int, bytes]], list[tuple[FetchItem, ...]]]:
    """Turn the attributes of one FETCH into a function building a batch's items.

    The attribute names are looked at once per command, and items are built
    a column (one attribute for every message of the batch) at a time, then
    zipped per message: ``FETCH 1:* FLAGS`` of 10 000 messages costs a few
    list comprehensions, not 10 000 dispatches per attribute.
    """
    meta = view.meta
    columns: list[Column] = []

    def uid_column(part: list[int]) -> list[FetchItem]:
        return [(b"UID", u) for u in part]

    def flags_column(part: list[int]) -> list[FetchItem]:
        flags, empty, recent = view.flags, frozenset[str](), view.recent
        if rev2 or not recent:
            return [(b"FLAGS", flag_list(flags.get(u, empty))) for u in part]
        return [
            (b"FLAGS", (flag_list_recent if u in recent else flag_list)(flags.get(u, empty)))
            for u in part
        ]

    def size_column(part: list[int]) -> list[FetchItem]:
        return [(b"RFC822.SIZE", meta[u].size) for u in part]

    def date_column(part: list[int]) -> list[FetchItem]:
        return [(b"INTERNALDATE", internal_date(meta[u].internal_date)) for u in part]

    simple: dict[str, Column] = {
        "UID": uid_column,
        "FLAGS": flags_column,
        "RFC822.SIZE": size_column,
        "INTERNALDATE": date_column,
    }
    raws_now: dict[int, bytes] = {}

    def per_message(getter: Getter) -> Column:
        return lambda part: [getter(u, meta[u], raws_now.get(u)) for u in part]

    if with_uid:
        columns.append(uid_column)
    for attr in attrs:
        if (attr.name == "UID" and with_uid) or (attr.name == "FLAGS" and with_flags):
            continue
        column = simple.get(attr.name)
        if column is None:
            getter = _getter(
                attr,
                view=view,
                rev2=rev2,
                cache=cache,
                cache_key=cache_key,
                with_uid=with_uid,
                with_flags=with_flags,
            )
            if getter is None:
                continue
            column = per_message(getter)
        columns.append(column)
    if with_flags:
        columns.append(flags_column)

    def build(part: list[int], raws: dict[int, bytes]) -> list[tuple[FetchItem, ...]]:
        raws_now.clear()
        raws_now.update(raws)
        try:
            return list(zip(*(column(part) for column in columns), strict=True))
        finally:
            raws_now.clear()

    return build


def _getter(
    attr: FetchAttribute,
    *,
    view: View,
    rev2: bool,
    cache: StructureCache,
    cache_key: tuple[str, str, int],
    with_uid: bool,
    with_flags: bool,
) -> Getter | None:
    name = attr.name
    if name == "UID":
        return None if with_uid else (lambda uid, meta, raw: (b"UID", uid))
    if name == "FLAGS":
        if with_flags:
            return None
        return lambda uid, meta, raw: (b"FLAGS", view.flag_bytes(uid, rev2=rev2))
    if name == "RFC822.SIZE":
        return lambda uid, meta, raw: (b"RFC822.SIZE", meta.size)
    if name == "INTERNALDATE":
        return lambda uid, meta, raw: (b"INTERNALDATE", view.date_bytes(uid))
    if name == "MODSEQ":
        return lambda uid, meta, raw: (b"MODSEQ", b"(%d)" % meta.modseq)
    if name in ("ENVELOPE", "BODYSTRUCTURE") or (name == "BODY" and attr.section is None):
        label = name.encode()
        table = cache.table(cache_key, name)

        def structure(uid: int, meta: MessageMeta, raw: bytes | None) -> FetchItem:
            value = table.get(uid)
            if value is None:
                value = _structure(name, raw or b"")
                cache.put(cache_key, name, uid, value)
            return (label, value)

        return structure
    if name == "RFC822":
        return lambda uid, meta, raw: (b"RFC822", raw or b"")
    if name in ("RFC822.HEADER", "RFC822.TEXT"):
        spec = name[7:]
        label = name.encode()
        return lambda uid, meta, raw: (label, _core.mime_section(raw or b"", spec))
    if name == "BODY" and attr.section is not None:
        spec = section_spec(attr.section)
        text = f"BODY[{spec}]"
        if attr.partial is not None:
            text += f"<{attr.partial[0]}>"
        label = text.encode()
        partial = attr.partial
        if not attr.section.part and attr.section.text == "HEADER.FIELDS":
            # Like Dovecot's cache of the header fields clients ask for: the
            # second listing of FROM/SUBJECT/DATE never opens a file.
            kind = "BODY[" + spec + "]"
            table = cache.table(cache_key, kind)

            def cached_fields(uid: int, meta: MessageMeta, raw: bytes | None) -> FetchItem:
                value = table.get(uid)
                if value is None:
                    value = _core.mime_section(raw or b"", spec)
                    cache.put(cache_key, kind, uid, value)
                if partial is not None:
                    value = value[partial[0] : partial[0] + partial[1]]
                return (label, value)

            return cached_fields
        if spec == "":
            # BODY[] is the message itself: no scan, no copy.
            if partial is None:
                return lambda uid, meta, raw: (label, raw or b"")
            lo, hi = partial[0], partial[0] + partial[1]

            def body_slice(uid: int, meta: MessageMeta, raw: bytes | None) -> FetchItem:
                # A view, not a copy: FETCH 1 (BODY[]<0.N> BODY[]<1.N> ...)
                # would otherwise hold the message once per item. Slices
                # with NUL are copied for write_fetch's literal8.
                data = raw or b""
                if data.find(b"\0", lo, hi) >= 0:
                    return (label, data[lo:hi])
                return (label, memoryview(data)[lo:hi])

            return body_slice
        return lambda uid, meta, raw: (label, _core.mime_section(raw or b"", spec, partial))
    if name in ("BINARY", "BINARY.SIZE"):
        part = ".".join(str(p) for p in attr.section.part) if attr.section else ""
        if name == "BINARY.SIZE":
            label = f"BINARY.SIZE[{part}]".encode()

            def binary_size(uid: int, meta: MessageMeta, raw: bytes | None) -> FetchItem:
                try:
                    return (label, b"%d" % _core.mime_binary_size(raw or b"", part))
                except ValueError as e:
                    raise UnknownCTE(str(e)) from e

            return binary_size
        text = f"BINARY[{part}]"
        if attr.partial is not None:
            text += f"<{attr.partial[0]}>"
        label = text.encode()
        partial = attr.partial

        def binary(uid: int, meta: MessageMeta, raw: bytes | None) -> FetchItem:
            try:
                return (label, _core.mime_binary(raw or b"", part, partial))
            except ValueError as e:
                raise UnknownCTE(str(e)) from e

        return binary
    raise ValueError(f"unknown FETCH attribute {name}")  # pragma: no cover


_VERBATIM = frozenset({b"FLAGS", b"ENVELOPE", b"BODYSTRUCTURE", b"BODY", b"MODSEQ"})
# Values at least this long are sent as literals by write_large without a copy.
_LARGE = 1024


def write_chunks(batch: Iterable[tuple[int, Sequence[FetchItem]]]) -> Iterator[bytes | memoryview]:
    """The bytes of :func:`mailcore._core.write_fetch` as pieces, large values uncopied.

    ``write_fetch`` copies every value into Rust, into its output and into
    the result; for message bodies (hundreds of MB in a FETCH 1:*) this
    yields the literal framing and then each large value itself (a bytes
    object or a view of the message), so the caller can write them one at
    a time instead of building the whole response. Small values and values
    with NUL (literal8 / 0x80 rules) still go through ``write_fetch``.
    """
    for seq, items in batch:
        parts: list[bytes] = [b"* %d FETCH (" % seq]
        for i, (name, value) in enumerate(items):
            if i:
                parts.append(b" ")
            if (
                isinstance(value, bytes | memoryview)
                and len(value) >= _LARGE
                and name not in _VERBATIM
                and not name.startswith(b"BINARY.SIZE")
                and (isinstance(value, memoryview) or b"\0" not in value)
            ):
                parts.append(b"%s {%d}\r\n" % (name, len(value)))
                yield b"".join(parts)
                parts.clear()
                yield value
                continue
            small = value.tobytes() if isinstance(value, memoryview) else value
            one = _core.write_fetch([(0, [(name, small)])])
            # "* 0 FETCH (" + "name value" + ")\r\n": keep the middle.
            parts.append(one[11:-3])
        parts.append(b")\r\n")
        yield b"".join(parts)


def write_large(batch: Iterable[tuple[int, Sequence[FetchItem]]]) -> bytes:
    """Like :func:`mailcore._core.write_fetch`, large values copied once (:func:`write_chunks`)."""
    return b"".join(write_chunks(batch))


@dataclass(frozen=True, slots=True)
class ResponseBound:
    """Upper bounds, from a message's sizes, of what one FETCH makes of it.

    Each item is ``(start, length, header_only)`` from ``<start.length>``
    (length None: no partial). ``shared`` items are the message itself or a
    view of it (BODY[], RFC822); ``copied`` ones are built as new bytes
    (sections, BINARY). Structures (ENVELOPE, BODYSTRUCTURE) and metadata
    are small and left out.
    """

    shared: tuple[tuple[int, int | None, bool], ...]
    copied: tuple[tuple[int, int | None, bool], ...]

    @staticmethod
    def _sum(items: tuple[tuple[int, int | None, bool], ...], meta: MessageMeta) -> int:
        # A section or decoded part is never longer than the message (a
        # header section than the header), and a partial <start.length> is
        # at most min(length, that - start).
        total = 0
        for start, length, header_only in items:
            whole = meta.header_size if header_only else meta.size
            total += whole if length is None else min(length, max(0, whole - start))
        return total

    def total(self, meta: MessageMeta) -> int:
        """Octets of message data the response holds for one message."""
        return self._sum(self.shared, meta) + self._sum(self.copied, meta)

    def copies(self, meta: MessageMeta) -> int:
        """Octets of it built as new bytes."""
        return self._sum(self.copied, meta)


def response_bound(attrs: tuple[FetchAttribute, ...]) -> ResponseBound | None:
    """The :class:`ResponseBound` of a FETCH's items, or None if none carries message data."""
    shared: list[tuple[int, int | None, bool]] = []
    copied: list[tuple[int, int | None, bool]] = []
    for attr in attrs:
        name, section = attr.name, attr.section
        start, length = attr.partial if attr.partial is not None else (0, None)
        header_only = need(attr) is Need.HEADER
        if name == "RFC822" or (
            name == "BODY" and section is not None and section_spec(section) == ""
        ):
            shared.append((start, length, header_only))
        elif name in ("RFC822.HEADER", "RFC822.TEXT", "BINARY") or (
            name == "BODY" and section is not None
        ):
            copied.append((start, length, header_only))
    if not shared and not copied:
        return None
    return ResponseBound(tuple(shared), tuple(copied))


def cached_kinds(attrs: tuple[FetchAttribute, ...]) -> list[str] | None:
    """The cache tables that can answer every non-metadata item of ``attrs``, or None."""
    kinds = []
    for attr in attrs:
        if need(attr) is Need.META:
            continue
        if attr.name in ("ENVELOPE", "BODYSTRUCTURE") or (
            attr.name == "BODY" and attr.section is None
        ):
            kinds.append(attr.name)
        elif (
            attr.name == "BODY"
            and attr.section is not None
            and not attr.section.part
            and attr.section.text == "HEADER.FIELDS"
        ):
            kinds.append("BODY[" + section_spec(attr.section) + "]")
        else:
            return None
    return kinds


def _structure(name: str, raw: bytes) -> bytes:
    if name == "ENVELOPE":
        return _core.mime_envelope(raw)
    return _core.mime_bodystructure(raw, extensible=name == "BODYSTRUCTURE")
