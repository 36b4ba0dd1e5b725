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

from mailcore import _core
from mailcore.imap.command import FetchAttribute, Section
from mailcore.imap.replies import internal_date
from mailcore.imap.search import Need
from mailcore.imap.selected import View
from mailcore.store.base import MessageMeta

__all__ = ["FetchItem", "StructureCache", "build_items", "need", "section_spec", "sets_seen"]

FetchItem = tuple[bytes, int | bytes | None]
"""One ``(name, value)`` pair of :func:`mailcore._core.write_fetch`."""

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
    """ENVELOPE / BODYSTRUCTURE / BODY bytes by message, least recently used dropped first.

    Keys include the UIDVALIDITY, so a recreated mailbox never sees old entries.
    """

    def __init__(self, capacity: int = 200_000) -> None:
        self.capacity = capacity
        self._data: OrderedDict[tuple[str, str, int, int, str], bytes] = OrderedDict()

    def get(self, key: tuple[str, str, int, int, str]) -> bytes | None:
        """A cached value, or None."""
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: tuple[str, str, int, int, str], value: bytes) -> None:
        """Remember a value, dropping the oldest beyond ``capacity``."""
        self._data[key] = value
        if len(self._data) > self.capacity:
            self._data.popitem(last=False)


class UnknownCTE(Exception):
    """BINARY of a part whose Content-Transfer-Encoding is unknown (``NO [UNKNOWN-CTE]``)."""


def build_items(
    attrs: tuple[FetchAttribute, ...],
    *,
    uid: int,
    meta: MessageMeta,
    view: View,
    raw: bytes | None,
    rev2: bool,
    cache: StructureCache,
    cache_key: tuple[str, str, int],
    with_uid: bool,
    with_flags: bool,
) -> list[FetchItem]:
    """The items of one message's FETCH response, in the order asked."""
    items: list[FetchItem] = []
    if with_uid:
        items.append((b"UID", uid))
    for attr in attrs:
        name = attr.name
        if name == "UID":
            if not with_uid:
                items.append((b"UID", uid))
        elif name == "FLAGS":
            if not with_flags:
                items.append((b"FLAGS", view.flag_bytes(uid, rev2=rev2)))
        elif name == "RFC822.SIZE":
            items.append((b"RFC822.SIZE", meta.size))
        elif name == "INTERNALDATE":
            items.append((b"INTERNALDATE", internal_date(meta.internal_date)))
        elif name == "MODSEQ":
            items.append((b"MODSEQ", b"(%d)" % meta.modseq))
        elif name in ("ENVELOPE", "BODYSTRUCTURE") or (name == "BODY" and attr.section is None):
            items.append((name.encode(), _structure(name, raw or b"", cache, (*cache_key, uid))))
        elif name == "RFC822":
            items.append((b"RFC822", raw or b""))
        elif name == "RFC822.HEADER":
            items.append((b"RFC822.HEADER", _core.mime_section(raw or b"", "HEADER")))
        elif name == "RFC822.TEXT":
            items.append((b"RFC822.TEXT", _core.mime_section(raw or b"", "TEXT")))
        elif name == "BODY" and attr.section is not None:
            spec = section_spec(attr.section)
            label = f"BODY[{spec}]"
            if attr.partial is not None:
                label += f"<{attr.partial[0]}>"
            items.append((label.encode(), _core.mime_section(raw or b"", spec, attr.partial)))
        elif name in ("BINARY", "BINARY.SIZE"):
            part = ".".join(str(p) for p in attr.section.part) if attr.section else ""
            try:
                if name == "BINARY.SIZE":
                    items.append(
                        (
                            f"BINARY.SIZE[{part}]".encode(),
                            b"%d" % _core.mime_binary_size(raw or b"", part),
                        )
                    )
                else:
                    label = f"BINARY[{part}]"
                    if attr.partial is not None:
                        label += f"<{attr.partial[0]}>"
                    items.append(
                        (label.encode(), _core.mime_binary(raw or b"", part, attr.partial))
                    )
            except ValueError as e:
                raise UnknownCTE(str(e)) from e
    if with_flags:
        items.append((b"FLAGS", view.flag_bytes(uid, rev2=rev2)))
    return items


def _structure(
    name: str, raw: bytes, cache: StructureCache, key: tuple[str, str, int, int]
) -> bytes:
    full = (*key, name)
    value = cache.get(full)
    if value is None:
        if name == "ENVELOPE":
            value = _core.mime_envelope(raw)
        else:
            value = _core.mime_bodystructure(raw, extensible=name == "BODYSTRUCTURE")
        cache.put(full, value)
    return value
