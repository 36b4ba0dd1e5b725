"""base64: mailcore.codecs.b64encode / b64decode against the standard library."""

from __future__ import annotations

import base64
import binascii
import os
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailcore.codecs import b64decode, b64encode
from mailcore.errors import DecodeError

ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

# Strings close to base64: mostly alphabet, some padding, now and then junk.
near_base64 = st.lists(
    st.one_of(
        st.sampled_from(list(ALPHABET)),
        st.just(ord("=")),
        st.sampled_from(list(b"\r\n \t*-.")),
    ),
    max_size=40,
).map(bytes)


@given(st.binary(max_size=2000))
def test_mime_encode_equals_encodebytes_with_crlf(data: bytes) -> None:
    assert b64encode(data) == base64.encodebytes(data).replace(b"\n", b"\r\n")
    assert b64encode(data, 76) == b64encode(data)


@given(st.binary(max_size=2000))
def test_single_line_encode_equals_b64encode(data: bytes) -> None:
    assert b64encode(data, None) == base64.b64encode(data)


@given(st.binary(max_size=2000), st.integers(min_value=1, max_value=120))
def test_any_line_length_round_trips_and_bounds_lines(data: bytes, line_length: int) -> None:
    encoded = b64encode(data, line_length)
    assert b64decode(encoded) == data
    lines = encoded.split(b"\r\n")
    assert lines[-1] == b""
    assert all(0 < len(line) <= line_length for line in lines[:-1])
    assert b"".join(lines) == base64.b64encode(data)


@given(st.binary(max_size=2000))
def test_strict_decodes_single_line_output(data: bytes) -> None:
    assert b64decode(base64.b64encode(data), strict=True) == data


@given(near_base64)
def test_strict_accepts_exactly_what_validate_true_accepts(text: bytes) -> None:
    try:
        expected = base64.b64decode(text, validate=True)
    except binascii.Error:
        with pytest.raises(DecodeError) as info:
            b64decode(text, strict=True)
        assert 0 <= info.value.offset <= len(text)
    else:
        assert b64decode(text, strict=True) == expected


@given(near_base64)
def test_lenient_agrees_with_b64decode_wherever_it_succeeds(text: bytes) -> None:
    try:
        expected = base64.b64decode(text)
    except binascii.Error:
        b64decode(text)  # never raises
    else:
        assert b64decode(text) == expected


@given(st.binary(max_size=300), st.data())
def test_lenient_skips_junk_inserted_anywhere(data: bytes, draw: st.DataObject) -> None:
    encoded = bytearray(b64encode(data))
    for _ in range(draw.draw(st.integers(0, 5))):
        at = draw.draw(st.integers(0, len(encoded)))
        encoded[at:at] = draw.draw(st.sampled_from([b" ", b"\t", b"\r\n", b"*", b"\n\n"]))
    assert b64decode(bytes(encoded)) == data


def test_strict_error_names_the_offset() -> None:
    cases = {
        b"Zm9v\r\nYmFy": 4,
        b"Zm9vYmFy!": 8,
        b"=Zm9v": 0,
        b"Zg=": 3,
        b"Zg==Zm9v": 4,
        b"Zm9vZ": 5,
    }
    for text, offset in cases.items():
        with pytest.raises(DecodeError) as info:
            b64decode(text, strict=True)
        assert info.value.offset == offset, text
        assert f"offset {offset}" in str(info.value)


def test_lenient_tolerates_missing_padding_where_the_stdlib_raises() -> None:
    # Deliberate difference: mail readers show what is there.
    with pytest.raises(binascii.Error):
        base64.b64decode(b"Zm8")
    assert b64decode(b"Zm8") == b"fo"
    assert b64decode(b"Zm9vY") == b"foo"


def test_lenient_stops_at_the_padding_like_the_stdlib() -> None:
    assert b64decode(b"Zg==Zm9v") == base64.b64decode(b"Zg==Zm9v") == b"f"


def test_bytes_like_inputs() -> None:
    data = os.urandom(1000)
    encoded = b64encode(data)
    assert b64encode(bytearray(data)) == encoded
    assert b64encode(memoryview(data)) == encoded
    assert b64decode(bytearray(encoded)) == data
    assert b64decode(memoryview(encoded)[: len(encoded)]) == data
    with pytest.raises(TypeError):
        b64encode("text")  # type: ignore[arg-type]


def test_line_length_zero_is_refused() -> None:
    with pytest.raises(ValueError, match="line_length"):
        b64encode(b"abc", 0)


def test_large_inputs_cross_internal_block_boundaries() -> None:
    data = os.urandom(3 * 1024 * 1024 + 7)
    encoded = b64encode(data)
    assert encoded == base64.encodebytes(data).replace(b"\n", b"\r\n")
    assert b64decode(encoded) == data
    assert b64decode(b64encode(data, None), strict=True) == data


def test_two_threads_decode_large_inputs_at_once() -> None:
    # Inputs above 64 KiB are decoded with the GIL released; results must
    # stay right when two threads do it at the same time.
    inputs = [os.urandom(4 * 1024 * 1024 + i) for i in range(2)]
    encoded = [b64encode(d) for d in inputs]
    results: dict[int, list[bool]] = {0: [], 1: []}
    start = threading.Barrier(2)

    def work(k: int) -> None:
        start.wait()
        for _ in range(5):
            results[k].append(b64decode(encoded[k]) == inputs[k])
            results[k].append(b64encode(inputs[k]) == encoded[k])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {0: [True] * 10, 1: [True] * 10}
