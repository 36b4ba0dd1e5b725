"""mailcore: SMTP, POP3, POP2 and IMAP4 for Python, on a Rust core.

The compiled half, :mod:`mailcore._core`, does the byte-level work; the rest of
the package is typed asyncio Python. Users import from the public modules
(:mod:`mailcore.codecs`, :mod:`mailcore.smtp`, ...), never from ``_core``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__: str = version("mailcore")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
