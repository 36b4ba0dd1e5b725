"""IMAP4rev1 / IMAP4rev2: framing, command grammar and (later) the server."""
