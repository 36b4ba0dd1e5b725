"""Quoted-printable: mailcore.codecs.qp_encode / qp_decode against the standard library."""

from __future__ import annotations

import binascii
import os
import quopri
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailcore.codecs import qp_decode, qp_encode

# Mostly text: letters, spaces and tabs, "=", CRLF, lone CR/LF, some 8-bit bytes.
textish = st.lists(
    st.one_of(
        st.sampled_from([b"a", b"Z", b" ", b"\t", b"=", b".", b"_", b"?", b"\r\n"]),
        st.sampled_from([b"\r", b"\n", b"\xe9", b"\x00", b"\xff"]),
        st.binary(min_size=1, max_size=90),
    ),
    max_size=60,
).map(b"".join)


def lines_of(encoded: bytes) -> list[bytes]:
    return encoded.split(b"\r\n")


@given(st.one_of(st.binary(max_size=3000), textish))
def test_round_trip_line_length_and_stdlib_decodes_it(data: bytes) -> None:
    encoded = qp_encode(data)
    assert qp_decode(encoded) == data
    assert all(len(line) <= 76 for line in lines_of(encoded))
    # Only printable ASCII and CRLF on the wire; no line ends in white space.
    assert all(32 <= c < 127 or c == 9 for c in encoded.replace(b"\r\n", b""))
    assert not any(line.endswith((b" ", b"\t")) for line in lines_of(encoded))
    assert binascii.a2b_qp(encoded) == data
    assert quopri.decodestring(encoded) == data


@given(textish, st.integers(min_value=4, max_value=100))
def test_any_line_length(data: bytes, line_length: int) -> None:
    encoded = qp_encode(data, line_length=line_length)
    assert qp_decode(encoded) == data
    assert all(len(line) <= line_length for line in lines_of(encoded))


@given(st.one_of(st.binary(max_size=500), textish))
def test_header_form_round_trips_and_is_one_safe_line(data: bytes) -> None:
    encoded = qp_encode(data, header=True)
    assert qp_decode(encoded, header=True) == data
    assert binascii.a2b_qp(encoded, header=True) == data
    assert not set(encoded) & set(b" \t\r\n?")
    assert encoded.count(b"_") == data.count(b" ")
    assert all(33 <= c < 127 for c in encoded)


@given(st.one_of(st.binary(max_size=2000), textish))
def test_decode_agrees_with_a2b_qp_on_well_formed_input(data: bytes) -> None:
    # binascii.b2a_qp writes well-formed quoted-printable (LF or CRLF lines).
    for encoded in (binascii.b2a_qp(data), binascii.b2a_qp(data, quotetabs=True)):
        assert qp_decode(encoded) == binascii.a2b_qp(encoded)


def test_rfc_2045_encoding_rules() -> None:
    # Rule 1 and 2: "=" and 8-bit bytes encoded in uppercase hex, the rest literal.
    assert qp_encode(b"caf\xc3\xa9 = ok") == b"caf=C3=A9 =3D ok"
    # Rule 3: white space before a line end is encoded.
    assert qp_encode(b"end \r\ntab\t") == b"end=20\r\ntab=09"
    # Rule 4: CRLF is a hard break; a lone CR or LF is binary data.
    assert qp_encode(b"a\r\nb\nc\rd") == b"a\r\nb=0Ac=0Dd"
    # Rule 5: soft breaks keep lines at 76 characters, "=" included.
    assert qp_encode(b"x" * 100) == b"x" * 75 + b"=\r\n" + b"x" * 25
    assert qp_encode(b"x" * 76) == b"x" * 76


def test_lone_lf_is_encoded_where_b2a_qp_makes_a_line_break() -> None:
    # Deliberate difference: a lone LF is data, not a line end, so it survives
    # CRLF-normalising transports.
    assert binascii.b2a_qp(b"a\nb") == b"a\nb"
    assert qp_encode(b"a\nb") == b"a=0Ab"


def test_trailing_white_space_added_by_transport_is_dropped() -> None:
    # RFC 2045 6.7 rule 3: trailing white space must be deleted by decoders.
    encoded = b"hello  \r\nworld\t \r\nend \t"
    assert binascii.a2b_qp(encoded) == b"hello  \r\nworld\t \r\nend \t"
    assert qp_decode(encoded) == b"hello\r\nworld\r\nend"
    # Encoded white space is data and stays.
    assert qp_decode(b"kept=20\r\n") == b"kept \r\n"


def test_soft_break_with_white_space_before_the_line_end() -> None:
    # transport-padding after the "=" of a soft break (RFC 2045 qp-segment).
    encoded = b"soft= \r\nbreak=\t\nhere"
    assert binascii.a2b_qp(encoded) != b"softbreakhere"
    assert qp_decode(encoded) == b"softbreakhere"


def test_text_after_a_lone_equals_cr_is_kept() -> None:
    # "=" then CR not followed by LF is malformed: kept as it is (RFC 2045
    # note 1), where the standard library drops the rest of the line.
    encoded = b"abc=\rdef\r\nnext"
    assert b"def" not in binascii.a2b_qp(encoded)
    assert qp_decode(encoded) == b"abc=\rdef\r\nnext"


def test_malformed_sequences_pass_through() -> None:
    assert qp_decode(b"a=ZZb=4") == b"a=ZZb=4"
    assert qp_decode(b"=3d=3D") == b"=="
    assert qp_decode(b"end=") == b"end"
    assert qp_decode(b"x_y") == b"x_y"
    assert qp_decode(b"x_y=5F", header=True) == b"x y_"


def test_line_length_below_four_is_refused() -> None:
    with pytest.raises(ValueError, match="line_length"):
        qp_encode(b"abc", line_length=3)


def test_bytes_like_inputs() -> None:
    data = b"caf\xc3\xa9\r\n" * 10
    assert qp_encode(bytearray(data)) == qp_encode(memoryview(data)) == qp_encode(data)
    assert qp_decode(bytearray(qp_encode(data))) == data


def test_two_threads_decode_large_inputs_at_once() -> None:
    inputs = [os.urandom(1024 * 1024 + i) for i in range(2)]
    encoded = [qp_encode(d) for d in inputs]
    ok: list[bool] = []
    lock = threading.Lock()
    start = threading.Barrier(2)

    def work(k: int) -> None:
        start.wait()
        for _ in range(3):
            good = qp_decode(encoded[k]) == inputs[k] and qp_encode(inputs[k]) == encoded[k]
            with lock:
                ok.append(good)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ok == [True] * 6
