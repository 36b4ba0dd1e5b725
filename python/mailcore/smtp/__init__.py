"""SMTP and LMTP: the sans-IO server machine, its asyncio server and handlers.

:mod:`mailcore.smtp.protocol` is the state machine, :mod:`~mailcore.smtp.replies`
the named reply catalog, :mod:`~mailcore.smtp.events` what the machine reports,
:mod:`~mailcore.smtp.server` the asyncio adapter and :mod:`~mailcore.smtp.handlers`
the typed hook API (``Handler``, ``Session``, ``Envelope``, ``Sink``, ``Debugging``).

A server that refuses one recipient and keeps the rest::

    import asyncio
    from mailcore.smtp import replies
    from mailcore.smtp.handlers import Handler
    from mailcore.smtp.server import SMTPServer

    class Inbox(Handler):
        async def handle_RCPT(self, session, envelope, address, params):
            if address == "nobody@example.org":
                return replies.NO_SUCH_USER
            return replies.RECIPIENT_OK

        async def handle_DATA(self, session, envelope):
            print(envelope.mail_from, envelope.rcpt_tos, len(envelope.content))
            return replies.MESSAGE_ACCEPTED

    async def main():
        server = SMTPServer(Inbox(), hostname="mx.example.org")
        await server.start("127.0.0.1", 2525)
        await server.serve_forever()

    asyncio.run(main())
"""
