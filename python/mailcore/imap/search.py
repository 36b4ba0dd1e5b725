"""SEARCH key evaluation (RFC 3501 6.4.4, RFC 9051 6.4.4) over one message at a time.

Pure functions: the server decides from :func:`needs` whether a search needs
the message header or the whole message, reads those in batches, and calls
:func:`matches` per message. Text keys compare case-insensitively
(``i;unicode-casemap`` approximated by ``str.casefold``); header values are
unfolded and RFC 2047-decoded first. BODY and TEXT look at the raw body
bytes first, case-folded as UTF-8 (and Latin-1 where that fails); when that
finds nothing and the message has base64 or quoted-printable parts (or the
needle is not ASCII), the text parts are decoded (transfer encoding, then
their charset) and searched too, as Dovecot does without its full-text
search plugin: a word in a base64 or quoted-printable UTF-8 body is found.
"""

from __future__ import annotations

import contextlib
import datetime
import email
import email.policy
import email.utils
import enum
import re
from collections.abc import Iterator
from dataclasses import dataclass

from mailcore import _core
from mailcore.imap import command as c
from mailcore.imap.selected import View
from mailcore.store.base import MessageMeta

__all__ = ["Need", "SearchContext", "matches", "needs"]


class Need(enum.IntEnum):
    """How much of each message a search key looks at."""

    META = 0
    HEADER = 1
    FULL = 2


def needs(key: c.SearchKey) -> Need:
    """The most any part of ``key`` needs."""
    if isinstance(key, c.SearchText):
        return Need.FULL if key.field in ("BODY", "TEXT") else Need.HEADER
    if isinstance(key, c.SearchHeader):
        return Need.HEADER
    if isinstance(key, c.SearchDate) and key.field == "sent":
        return Need.HEADER
    if isinstance(key, c.SearchNot):
        return needs(key.key)
    if isinstance(key, c.SearchOr):
        return max(needs(key.left), needs(key.right))
    if isinstance(key, c.SearchAnd):
        return max((needs(k) for k in key.keys), default=Need.META)
    return Need.META


@dataclass
class SearchContext:
    """One message under test."""

    view: View
    uid: int
    seq: int
    meta: MessageMeta
    rev2: bool
    raw: bytes | None = None  # header (Need.HEADER) or whole message (Need.FULL)
    _fields: dict[str, list[str]] | None = None

    def header_fields(self) -> dict[str, list[str]]:
        """Unfolded, decoded header fields by lower-case name."""
        if self._fields is None:
            self._fields = _parse_header(self.raw or b"")
        return self._fields


_FOLD = re.compile(rb"\r?\n[ \t]")


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _parse_header(raw: bytes) -> dict[str, list[str]]:
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        end = raw.find(b"\n\n")
    head = raw if end < 0 else raw[:end]
    out: dict[str, list[str]] = {}
    for line in _FOLD.sub(b" ", head).splitlines():
        name, sep, value = line.partition(b":")
        if not sep or not name or b" " in name:
            continue
        text = _text(value.strip())
        with contextlib.suppress(ValueError):
            text = _core.decode_header(text)
        out.setdefault(_text(name).lower(), []).append(text)
    return out


def _has(values: list[str], needle: bytes) -> bool:
    want = _text(needle).casefold()
    return any(want in v.casefold() for v in values)


def _day(ts: float) -> datetime.date:
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).date()


def _compare(day: datetime.date, key: c.SearchDate) -> bool:
    if key.when == "before":
        return day < key.date
    if key.when == "on":
        return day == key.date
    return day >= key.date


def _sent_day(ctx: SearchContext) -> datetime.date | None:
    values = ctx.header_fields().get("date")
    if not values:
        return None
    try:
        return email.utils.parsedate_to_datetime(values[0]).date()
    except (TypeError, ValueError, IndexError):
        return None


def _body(raw: bytes) -> bytes:
    end = raw.find(b"\r\n\r\n")
    return raw[end + 4 :] if end >= 0 else b""


# A part whose bytes do not show its words as they are.
_ENCODED = re.compile(rb"content-transfer-encoding:[ \t]*(?:base64|quoted-printable)", re.I)


def _decoded_texts(raw: bytes) -> Iterator[str]:
    """The text/* parts of ``raw``, transfer-decoded and charset-decoded."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    for part in msg.walk():
        if part.is_multipart() or part.get_content_maintype() != "text":
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        charset = part.get_content_charset() or "us-ascii"
        try:
            yield payload.decode(charset, "replace")
        except LookupError:  # a charset Python does not know
            yield _text(payload)


def _search_text(raw: bytes, needle: bytes, *, whole: bool) -> bool:
    """BODY (``whole=False``: after the header) or TEXT over raw, then decoded parts."""
    if _contains(raw if whole else _body(raw), needle):
        return True
    if needle.isascii() and _ENCODED.search(raw) is None:
        return False
    want = _text(needle).casefold()
    try:
        return any(want in text.casefold() for text in _decoded_texts(raw))
    except (RecursionError, ValueError, TypeError):  # a structure the parser gives up on
        return False


def _contains(haystack: bytes, needle: bytes) -> bool:
    if not needle:
        return True
    if haystack.isascii() and needle.isascii():
        return needle.lower() in haystack.lower()
    return _text(needle).casefold() in _text(haystack).casefold()


def matches(key: c.SearchKey, ctx: SearchContext) -> bool:
    """Whether the message in ``ctx`` matches ``key``."""
    if isinstance(key, c.SearchAnd):
        return all(matches(k, ctx) for k in key.keys)
    if isinstance(key, c.SearchAll):
        return True
    if isinstance(key, c.SearchFlag):
        if key.flag == "\\Recent":
            has = ctx.uid in ctx.view.recent
        else:
            flags = ctx.view.flags.get(ctx.uid, frozenset())
            has = key.flag in flags or (
                not key.flag.startswith("\\") and key.flag.lower() in {f.lower() for f in flags}
            )
        return has == key.set
    if isinstance(key, c.SearchNot):
        return not matches(key.key, ctx)
    if isinstance(key, c.SearchOr):
        return matches(key.left, ctx) or matches(key.right, ctx)
    if isinstance(key, c.SearchSize):
        return ctx.meta.size > key.size if key.larger else ctx.meta.size < key.size
    if isinstance(key, c.SearchSequence):
        if key.set.saved:
            return ctx.uid in ctx.view.saved
        return key.set.contains(ctx.seq, ctx.view.exists)
    if isinstance(key, c.SearchUid):
        if key.set.saved:
            return ctx.uid in ctx.view.saved
        return key.set.contains(ctx.uid, ctx.view.last_uid)
    if isinstance(key, c.SearchDate):
        if key.field == "internal":
            return _compare(_day(ctx.meta.internal_date), key)
        sent = _sent_day(ctx)
        return sent is not None and _compare(sent, key)
    if isinstance(key, c.SearchHeader):
        values = ctx.header_fields().get(key.name.lower())
        if values is None:
            return False
        return not key.value or _has(values, key.value)
    if isinstance(key, c.SearchText):
        raw = ctx.raw or b""
        if key.field == "BODY":
            return _search_text(raw, key.value, whole=False)
        if key.field == "TEXT":
            return _has(
                [v for vs in ctx.header_fields().values() for v in vs], key.value
            ) or _search_text(raw, key.value, whole=True)
        return _has(ctx.header_fields().get(key.field.lower(), []), key.value)
    raise TypeError(f"unknown search key {key!r}")  # pragma: no cover
