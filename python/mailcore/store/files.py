"""Maildir on disk: file names, flags, the header cache, folder names.

The layout is Maildir++ as Dovecot, Courier and Python's ``mailbox.Maildir``
use it, so those tools read and write our mailboxes: an account directory is
the INBOX Maildir (``tmp/ new/ cur/``) and every other mailbox is a
sub-Maildir ``.<name>`` in it, hierarchy levels joined by ``.``.

A message file is named ``<time>.M<usec>P<pid>Q<n>.<host>,S=<size>,U=<uid>``
(plus ``:2,<flags>`` in ``cur/``). ``S=`` is Dovecot's size field; ``U=``
records the IMAP UID so the index can be rebuilt from the files alone
without renumbering (tools that do not know a field keep it, as the Maildir
spec says the unique part is opaque).
"""

from __future__ import annotations

import itertools
import os
import socket
import time
from dataclasses import dataclass

from mailcore import _core

__all__ = [
    "SYSTEM_FLAGS",
    "MaildirName",
    "decode_folder",
    "encode_folder",
    "flags_from_info",
    "header_cache_json",
    "info_from_flags",
    "make_maildir",
    "normalize_flags",
    "parse_name",
    "unique_name",
]

#: IMAP system flags we store (``\\Recent`` is a session property, never stored).
SYSTEM_FLAGS = ("\\Answered", "\\Deleted", "\\Draft", "\\Flagged", "\\Seen")

# Maildir info letters (cr.yp.to/proto/maildir.html) and their IMAP flag.
# "P" (passed) is the $Forwarded keyword, as Dovecot maps it.
_LETTER_TO_FLAG = {
    "D": "\\Draft",
    "F": "\\Flagged",
    "P": "$Forwarded",
    "R": "\\Answered",
    "S": "\\Seen",
    "T": "\\Deleted",
}
_FLAG_TO_LETTER = {flag.lower(): letter for letter, flag in _LETTER_TO_FLAG.items()}
_CANONICAL = {flag.lower(): flag for flag in SYSTEM_FLAGS}

_counter = itertools.count()
_HOST = socket.gethostname().replace("/", "\\057").replace(":", "\\072") or "localhost"


def normalize_flags(flags: object) -> frozenset[str]:
    """Canonical spelling for system flags (case-insensitive), keywords as given."""
    out = set()
    for flag in flags:  # type: ignore[attr-defined]
        text = str(flag)
        if text.startswith("\\"):
            canon = _CANONICAL.get(text.lower())
            if canon is None:
                # \Recent and unknown system flags are not stored.
                continue
            out.add(canon)
        elif text:
            out.add(text)
    return frozenset(out)


def info_from_flags(flags: frozenset[str]) -> str:
    """The ``:2,`` letters for a flag set, in ASCII order as the spec asks."""
    letters = {_FLAG_TO_LETTER[f.lower()] for f in flags if f.lower() in _FLAG_TO_LETTER}
    return "".join(sorted(letters))


def flags_from_info(info: str) -> frozenset[str]:
    """The flags the ``:2,`` letters of a file name stand for (unknown letters ignored)."""
    return frozenset(_LETTER_TO_FLAG[c] for c in info if c in _LETTER_TO_FLAG)


@dataclass(frozen=True, slots=True)
class MaildirName:
    """A parsed Maildir file name: unique part, ``U=`` UID if any, ``:2,`` info if any."""

    base: str
    uid: int | None
    info: str | None


def parse_name(name: str) -> MaildirName:
    """Split ``base[:2,info]`` and find a ``,U=<uid>`` field in the base."""
    base, sep, info = name.partition(":2,")
    uid = None
    for part in base.split(",")[1:]:
        if part.startswith("U=") and part[2:].isdigit():
            uid = int(part[2:])
    return MaildirName(base, uid, info if sep else None)


def unique_name(size: int) -> str:
    """A new unique part (before a UID is known), carrying the size field."""
    now = time.time()
    sec = int(now)
    usec = int((now - sec) * 1_000_000)
    return f"{sec}.M{usec}P{_pid[0]}Q{next(_counter)}.{_HOST},S={size}"


# os.getpid() is a system call; a forked child looks its own up once.
_pid = [os.getpid()]
os.register_at_fork(after_in_child=lambda: _pid.__setitem__(0, os.getpid()))


def with_uid(base: str, uid: int) -> str:
    """``base`` with its ``,U=`` field set to ``uid``."""
    parts = [p for p in base.split(",") if not p.startswith("U=")]
    return ",".join([*parts, f"U={uid}"])


def file_name(base: str, flags: frozenset[str], subdir: str) -> str:
    """Relative path ``new/base`` or ``cur/base:2,FLAGS``."""
    if subdir == "new":
        return f"new/{base}"
    return f"cur/{base}:2,{info_from_flags(flags)}"


def make_maildir(path: str) -> None:
    """Create ``tmp/ new/ cur/`` under ``path`` (and ``path``), durably."""
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    parent = os.path.dirname(path.rstrip("/"))
    for d in (path, parent):
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def header_size(data: bytes) -> int:
    """Length of the header section including the empty line that ends it."""
    crlf = data.find(b"\r\n\r\n")
    # A bare-LF blank line counts only before the first CRLF one: no second
    # scan of the whole body of an ordinary message.
    lf = data.find(b"\n\n", 0, crlf + 2 if crlf >= 0 else len(data))
    if lf >= 0:
        return lf + 2
    return crlf + 4 if crlf >= 0 else len(data)


#: Only this much of a header section is scanned for the cache: a hostile
#: message with megabytes of header costs no more than a normal one.
CACHE_SCAN = 64 * 1024


def header_cache_json(data: bytes, header_len: int) -> str:
    """The common header fields of ``data[:header_len]``, as the index stores them (JSON).

    Fields are looked for within the first ``CACHE_SCAN`` octets; the first
    occurrence of each wins. Folded values are unfolded (every run of white
    space becomes one space); others are stripped. Bytes that are not UTF-8
    come back from ``json.loads`` as surrogate escapes. The Rust core does it
    (it runs for every delivered message, on the event loop).
    """
    return _core.header_cache_json(data, header_len)


# Folder names: "/" is the hierarchy delimiter and becomes "."; "." and "%"
# inside a level are escaped so names map to directories and back exactly.
def encode_folder(name: str) -> str:
    """Directory name (``.a.b``) of mailbox ``a/b``; INBOX is the account root ("")."""
    if name.upper() == "INBOX":
        return ""
    levels = [lvl.replace("%", "%25").replace(".", "%2E") for lvl in name.split("/")]
    return "." + ".".join(levels)


def decode_folder(dirname: str) -> str:
    """Mailbox name of a Maildir++ folder directory (inverse of :func:`encode_folder`)."""
    if not dirname:
        return "INBOX"
    levels = dirname[1:].split(".")
    return "/".join(
        lvl.replace("%2E", ".").replace("%2e", ".").replace("%25", "%") for lvl in levels
    )
