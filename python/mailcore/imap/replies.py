"""Formatting of IMAP response pieces: strings, flag lists, dates, sequence sets."""

from __future__ import annotations

import datetime
import functools
from collections.abc import Iterable

from mailcore import _core
from mailcore.imap.mutf7 import encode

__all__ = ["astring", "compress_set", "flag_list", "internal_date", "mailbox_text", "quoted"]

_ATOM_SPECIALS = frozenset(b'(){ %*"\\]')
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def quoted(text: str) -> bytes:
    """A quoted string (a literal when it holds CR, LF or NUL).

    UTF-8 goes in quoted strings as it is (RFC 9051 / RFC 6855 allow it where
    the client accepts UTF-8; others only ever get modified UTF-7 names).
    """
    if text.isascii() or any(c in text for c in "\r\n\0"):
        return _core.imap_string(text.encode("utf-8"))
    return ('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"').encode("utf-8")


def astring(text: str) -> bytes:
    """An atom when ``text`` is one, else a quoted string or literal."""
    raw = text.encode("utf-8")
    if (
        raw
        and raw.upper() != b"NIL"
        and all(0x20 < b < 0x7F and b not in _ATOM_SPECIALS for b in raw)
    ):
        return raw
    return _core.imap_string(raw)


def flag_list(flags: Iterable[str]) -> bytes:
    """``(\\Seen $Label)`` in a stable order (system flags first)."""
    if isinstance(flags, frozenset):
        return _flag_list_of(flags)
    return _flag_list_of(frozenset(flags))


@functools.lru_cache(maxsize=4096)
def flag_list_recent(flags: frozenset[str]) -> bytes:
    """:func:`flag_list` of ``flags`` plus ``\\Recent``."""
    return _flag_list_of(flags | {"\\Recent"})


# A mailbox has few distinct flag sets and each message one date: FETCH 1:*
# formats each once per process instead of once per message per session.
@functools.lru_cache(maxsize=4096)
def _flag_list_of(flags: frozenset[str]) -> bytes:
    return ("(" + " ".join(sorted(flags, key=lambda f: (not f.startswith("\\"), f))) + ")").encode()


@functools.lru_cache(maxsize=200_000)
def internal_date(timestamp: float) -> bytes:
    """RFC 9051 date-time text (without quotes): ``"27-Nov-2026 00:10:00 +0000"``."""
    d = datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc)
    return f"{d.day:02d}-{_MONTHS[d.month - 1]}-{d.year:04d} {d:%H:%M:%S} +0000".encode()


def compress_set(numbers: Iterable[int]) -> str:
    """``1:3,7,9:10`` from ascending (or any) numbers; empty input gives ``""``."""
    out: list[str] = []
    start = prev = -2
    for n in sorted(numbers):
        if n == prev + 1:
            prev = n
            continue
        if start >= 0:
            out.append(str(start) if start == prev else f"{start}:{prev}")
        start = prev = n
    if start >= 0:
        out.append(str(start) if start == prev else f"{start}:{prev}")
    return ",".join(out)


def mailbox_text(name: str, utf8: bool) -> bytes:
    """A mailbox name for a response: UTF-8 or modified UTF-7, quoted."""
    return quoted(name if utf8 else encode(name))
