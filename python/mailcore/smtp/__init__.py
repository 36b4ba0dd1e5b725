"""SMTP and LMTP: the sans-IO server machine, its asyncio server and handlers.

:mod:`mailcore.smtp.protocol` is the state machine, :mod:`~mailcore.smtp.replies`
the named reply catalog, :mod:`~mailcore.smtp.events` what the machine reports,
:mod:`~mailcore.smtp.server` the asyncio adapter and :mod:`~mailcore.smtp.handlers`
the typed hook API (``Handler``, ``Session``, ``Envelope``, ``Sink``, ``Debugging``).
"""
