"""ESMTP parameters of MAIL and RCPT: which ones the server knows, and their syntax.

MAIL: SIZE (RFC 1870), BODY (RFC 6152), SMTPUTF8 (RFC 6531), RET and ENVID
(RFC 3461), AUTH (RFC 4954). RCPT: NOTIFY and ORCPT (RFC 3461). Each rule is a
check plus the usage text the 501 reply carries. xtext (RFC 3461 section 4)
is decoded here, refusing CR, LF and NUL (Exim "21Nails").
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["MAIL_PARAM_RULES", "RCPT_PARAM_RULES", "ParamRule", "decode_xtext", "xtext_ok"]

_NOTIFY = frozenset(("SUCCESS", "FAILURE", "DELAY"))
_XTEXT = re.compile(r"\+([0-9A-F]{2})")


def decode_xtext(value: str) -> str:
    """Decode RFC 3461 xtext (``+HH`` escapes); refuse CR, LF, NUL and bad escapes.

    RFC 3461 section 4: xtext = *( xchar / hexchar ), hexchar = "+" 2(%x30-39 / %x41-46).
    """
    if value.count("+") != len(_XTEXT.findall(value)):
        raise ValueError("xtext: '+' must be followed by two upper-case hex digits")
    decoded = _XTEXT.sub(lambda m: chr(int(m.group(1), 16)), value)
    if any(c in decoded for c in "\r\n\0"):
        raise ValueError("xtext: CR, LF or NUL")
    return decoded


def xtext_ok(value: str | None, limit: int) -> bool:
    """Whether ``value`` is valid xtext decoding to at most ``limit`` characters."""
    if value is None:
        return False
    try:
        return len(decode_xtext(value)) <= limit
    except ValueError:
        return False


def _notify_ok(value: str | None) -> bool:
    # RFC 3461 4.1: "NEVER" alone, or a comma list of SUCCESS, FAILURE, DELAY.
    words = (value or "").upper().split(",")
    return words == ["NEVER"] or (set(words) <= _NOTIFY and len(set(words)) == len(words))


def _orcpt_ok(value: str | None) -> bool:
    # RFC 3461 4.2: ORCPT=addr-type ";" xtext
    kind, sep, rest = (value or "").partition(";")
    return bool(sep and kind) and xtext_ok(rest, 500)


ParamRule = tuple[Callable[[str | None], bool], str]
"""A check of a parameter value, and the usage text sent when it fails."""

# MAIL parameters this server knows (RFC 1870 SIZE, RFC 6152 BODY, RFC 6531
# SMTPUTF8, RFC 3461 RET/ENVID, RFC 4954 AUTH), with the usage sent on error.
MAIL_PARAM_RULES: dict[str, ParamRule] = {
    "SIZE": (lambda v: v is not None and v.isdigit() and len(v) <= 20, "Syntax: SIZE=number"),
    "BODY": (
        lambda v: v is not None and v.upper() in ("7BIT", "8BITMIME"),
        "Syntax: BODY=7BIT or BODY=8BITMIME",
    ),
    "SMTPUTF8": (lambda v: v is None, "SMTPUTF8 takes no value"),
    "RET": (
        lambda v: v is not None and v.upper() in ("FULL", "HDRS"),
        "Syntax: RET=FULL or RET=HDRS",
    ),
    "ENVID": (lambda v: xtext_ok(v, 100), "ENVID must be xtext"),
    "AUTH": (lambda v: xtext_ok(v, 500), "AUTH must be xtext"),
}
RCPT_PARAM_RULES: dict[str, ParamRule] = {
    "NOTIFY": (_notify_ok, "Syntax: NOTIFY=NEVER or SUCCESS,FAILURE,DELAY"),
    "ORCPT": (_orcpt_ok, "Syntax: ORCPT=addr-type;xtext"),
}
