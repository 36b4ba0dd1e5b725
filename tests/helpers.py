"""Helpers shared by the tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")


def splits(data: bytes) -> Iterator[list[bytes]]:
    """Yield ``data`` whole, one byte at a time, and cut in two at every offset."""
    yield [data]
    yield [data[i : i + 1] for i in range(len(data))]
    for cut in range(1, len(data)):
        yield [data[:cut], data[cut:]]


def feed_all(make: Callable[[], Callable[[bytes], Sequence[T]]], chunks: list[bytes]) -> list[T]:
    """Feed ``chunks`` to a fresh feeder from ``make`` and collect every result."""
    feed = make()
    out: list[T] = []
    for chunk in chunks:
        out.extend(feed(chunk))
    return out
