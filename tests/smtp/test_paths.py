"""RFC 5321 paths through the Python binding: table, bounds, properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailcore import _core
from mailcore.errors import LimitExceeded, ParseError


@pytest.mark.parametrize(
    ("arg", "address", "params"),
    [
        (b"<a@b.org>", "a@b.org", {}),
        (b"<>", "", {}),
        (b"<> SIZE=10 BODY=8BITMIME", "", {"SIZE": "10", "BODY": "8BITMIME"}),
        (b"<@x.org,@y.org:u@z.org> smtputf8", "u@z.org", {"SMTPUTF8": None}),
        (b'<"a b"@[IPv6:::1]>', '"a b"@[IPv6:::1]', {}),
        (b"<a@[10.0.0.1]> AUTH=<>", "a@[10.0.0.1]", {"AUTH": "<>"}),
    ],
)
def test_mail_from_table(arg: bytes, address: str, params: dict[str, str | None]) -> None:
    assert _core.parse_mail_from(arg, smtputf8_allowed=False) == (address, params)
    assert _core.parse_mail_from(bytearray(arg), smtputf8_allowed=False) == (address, params)
    assert _core.parse_mail_from(memoryview(arg), smtputf8_allowed=False) == (address, params)


@pytest.mark.parametrize(
    ("arg", "offset", "expected"),
    [
        (b"<a@b", 4, '">"'),
        (b"<a@b> =", 6, "esmtp-param: keyword"),
        ("<ü@b>".encode(), 1, _core.SMTP_EXPECTED_ASCII),
        (b"<a@b>\r\n", 5, "esmtp-param: SP between parameters"),
    ],
)
def test_errors_say_where_and_what(arg: bytes, offset: int, expected: str) -> None:
    with pytest.raises(ParseError) as err:
        _core.parse_mail_from(arg, smtputf8_allowed=True)
    assert (err.value.offset, err.value.expected) == (offset, expected)


def test_bounds() -> None:
    _core.parse_rcpt_to(b"<" + b"a" * 64 + b"@b.org>", smtputf8=False)
    with pytest.raises(LimitExceeded) as err:
        _core.parse_rcpt_to(b"<" + b"a" * 65 + b"@b.org>", smtputf8=False)
    assert err.value.expected == "at most 64 bytes"
    with pytest.raises(TypeError):
        _core.parse_rcpt_to("<a@b>", smtputf8=False)  # type: ignore[arg-type]


ATEXT = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~"
atoms = st.text(alphabet=ATEXT, min_size=1, max_size=10)
labels = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?\Z")


@given(
    local=st.lists(atoms, min_size=1, max_size=4).map(".".join),
    domain=st.lists(labels, min_size=1, max_size=4).map(".".join),
)
def test_any_dot_atom_address_round_trips(local: str, domain: str) -> None:
    address = f"{local}@{domain}"
    got = _core.parse_rcpt_to(f"<{address}> NOTIFY=NEVER".encode(), smtputf8=False)
    assert got == (address, {"NOTIFY": "NEVER"})


@given(st.binary(max_size=300))
def test_arbitrary_bytes_only_raise_core_errors(data: bytes) -> None:
    for utf8 in (False, True):
        try:
            address, params = _core.parse_mail_from(data, smtputf8_allowed=utf8)
        except (ParseError, LimitExceeded):
            continue
        assert len(address) <= 256
        assert all(k == k.upper() for k in params)
