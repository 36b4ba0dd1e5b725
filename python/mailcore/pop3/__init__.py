"""POP3 (RFC 1939 with CAPA, STLS, AUTH, APOP) and POP2 (RFC 937): servers and a client.

- :mod:`mailcore.pop3.protocol`: the sans-IO POP3 server machine;
  :mod:`mailcore.pop3.pop2_protocol`: the sans-IO POP2 machine.
- :mod:`mailcore.pop3.server` (:class:`POP3Server`) and
  :mod:`mailcore.pop3.pop2` (:class:`POP2Server`): asyncio servers on a
  :class:`mailcore.store.Store` and a SASL credential source.
- :mod:`mailcore.pop3.client` (:class:`POP3Client`): the async client.

Names are imported lazily from their modules so that importing the package
does not pull in asyncio or the store.
"""

from __future__ import annotations

__all__ = ["POP2Server", "POP3Client", "POP3ReplyError", "POP3Server"]

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mailcore.pop3.client import POP3Client, POP3ReplyError
    from mailcore.pop3.pop2 import POP2Server
    from mailcore.pop3.server import POP3Server

_WHERE = {
    "POP3Client": "mailcore.pop3.client",
    "POP3ReplyError": "mailcore.pop3.client",
    "POP2Server": "mailcore.pop3.pop2",
    "POP3Server": "mailcore.pop3.server",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'mailcore.pop3' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
