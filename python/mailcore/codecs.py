"""MIME and transport codecs, implemented in the Rust core.

This module is the public face of :mod:`mailcore._core`'s codecs; import from
here, not from ``_core``.
"""

from __future__ import annotations

__all__: list[str] = []
