"""TOP (RFC 1939 section 7): cut a streamed message after the header and n body lines.

Pure and sans-IO; the server machine feeds it each chunk read from the store.
"""

from __future__ import annotations

__all__ = ["TopCutter"]


class TopCutter:
    """Streams the header, the blank line and the first ``lines`` body lines (TOP).

    Works chunk by chunk with ``bytes.find``/``bytes.split`` so Python never
    walks a message byte by byte; accepts CRLF and bare-LF line ends.
    """

    __slots__ = ("_at", "_done", "_in_header", "_left")

    # _at: what the current (unfinished) line holds so far.
    _EMPTY, _CR, _TEXT = 0, 1, 2

    def __init__(self, lines: int) -> None:
        self._left = lines
        self._in_header = True
        self._done = False
        self._at = self._EMPTY

    @property
    def done(self) -> bool:
        """Whether everything TOP asked for has been passed on."""
        return self._done

    def feed(self, chunk: bytes) -> bytes:
        """Return the part of ``chunk`` that belongs to the TOP reply."""
        if self._done or not chunk:
            return b""
        start = 0
        if self._in_header:
            end = self._header_end(chunk)
            if end < 0:
                return chunk
            self._in_header = False
            start = end
            if self._left == 0:
                self._done = True
                return chunk[:end]
        rest = chunk[start:] if start else chunk
        if rest.count(b"\n") < self._left:
            self._left -= rest.count(b"\n")
            return chunk
        tail = rest.split(b"\n", self._left)[-1]
        self._left = 0
        self._done = True
        return chunk[: len(chunk) - len(tail)]

    def _header_end(self, chunk: bytes) -> int:
        """Offset just past the blank line ending the header, or -1 (state kept)."""
        # The blank line may start in an earlier chunk.
        if self._at == self._EMPTY:
            if chunk.startswith(b"\n"):
                return 1
            if chunk.startswith(b"\r\n"):
                return 2
        elif self._at == self._CR and chunk.startswith(b"\n"):
            return 1
        found = [p + 2 for p in (chunk.find(b"\n\n"),) if p >= 0]
        found += [p + 3 for p in (chunk.find(b"\n\r\n"),) if p >= 0]
        if found:
            return min(found)
        if chunk.endswith(b"\n"):
            self._at = self._EMPTY
        elif chunk.endswith(b"\n\r") or (chunk == b"\r" and self._at == self._EMPTY):
            self._at = self._CR
        else:
            self._at = self._TEXT
        return -1
