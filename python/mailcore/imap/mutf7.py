"""Modified UTF-7 mailbox names (RFC 3501 section 5.1.3) and name checks.

IMAP4rev1 clients send non-ASCII mailbox names in "modified UTF-7": printable
ASCII stands for itself except ``&``, which is written ``&-``; anything else
is UTF-16 in a modified base64 (``,`` instead of ``/``, no padding) between
``&`` and ``-``. Sessions that ENABLE UTF8=ACCEPT or IMAP4rev2 use UTF-8 names
as they are. The standard library has no codec for this, and it is a few
lines, so it is written here.
"""

from __future__ import annotations

import base64
import binascii

__all__ = ["DELIMITER", "MailboxNameError", "check_name", "decode", "encode"]

#: The hierarchy delimiter (the store's, ``mailcore.store.base.DELIMITER``).
DELIMITER = "/"


class MailboxNameError(ValueError):
    """A mailbox name that is not valid modified UTF-7 or not allowed."""


def encode(name: str) -> str:
    """UTF-8 text -> modified UTF-7."""
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            raw = "".join(run).encode("utf-16-be")
            b64 = base64.b64encode(raw).decode("ascii").rstrip("=").replace("/", ",")
            out.append("&" + b64 + "-")
            run.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    flush()
    return "".join(out)


def decode(name: str) -> str:
    """Modified UTF-7 -> text; raises :class:`MailboxNameError` when malformed."""
    out: list[str] = []
    i = 0
    n = len(name)
    while i < n:
        ch = name[i]
        if not 0x20 <= ord(ch) <= 0x7E:
            raise MailboxNameError("8-bit character in a modified UTF-7 name")
        if ch != "&":
            out.append(ch)
            i += 1
            continue
        end = name.find("-", i + 1)
        if end < 0:
            raise MailboxNameError("unterminated modified base64")
        chunk = name[i + 1 : end]
        i = end + 1
        if not chunk:
            out.append("&")
            continue
        b64 = chunk.replace(",", "/")
        try:
            raw = base64.b64decode(b64 + "=" * (-len(b64) % 4), validate=True)
            text = raw.decode("utf-16-be")
        except (binascii.Error, UnicodeDecodeError) as e:
            raise MailboxNameError("bad modified base64") from e
        # RFC 3501: the shortest form must be used; printable ASCII in a
        # base64 run is refused, so every name has exactly one spelling.
        if any(0x20 <= ord(c) <= 0x7E for c in text) or len(raw) % 2:
            raise MailboxNameError("non-canonical modified UTF-7")
        out.append(text)
    return "".join(out)


def check_name(name: str) -> str:
    """Refuse names a store must never see; return it with INBOX upper-cased.

    Refused: empty names, a leading delimiter (an absolute path), empty
    components (``a//b``), ``.`` and ``..`` components (directory escapes),
    control characters and the LIST wildcards ``*`` and ``%``. A trailing
    delimiter is dropped (RFC 3501 6.3.3: it only announces inferiors).
    """
    if name.endswith(DELIMITER) and len(name) > 1:
        name = name[:-1]
    if not name:
        raise MailboxNameError("empty mailbox name")
    if name.startswith(DELIMITER):
        raise MailboxNameError("mailbox names may not start with the delimiter")
    for part in name.split(DELIMITER):
        if part in ("", ".", ".."):
            raise MailboxNameError("empty, '.' or '..' component in mailbox name")
    if any(ord(c) < 0x20 or ord(c) == 0x7F or c in "*%" for c in name):
        raise MailboxNameError("control character or wildcard in mailbox name")
    if name.upper() == "INBOX" or name[:6].upper() == "INBOX" + DELIMITER:
        name = "INBOX" + name[5:]
    return name
