"""Every bound and every leniency mailcore applies, with where it comes from.

A limit lives here and nowhere else; protocol machines receive a ``Limits``
(or one of its parts) and never hard-code a number. A *quirk* is a leniency
towards broken peers; each is off unless its comment says otherwise, and
each has its own test.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ImapLimits", "Limits", "SMTPLimits"]

KIB = 1024
MIB = 1024 * KIB


@dataclass(frozen=True, slots=True)
class SMTPLimits:
    """Bounds and quirks of the SMTP and LMTP server and client."""

    # RFC 5321 4.5.3.1.4: a command line is at most 512 octets with its CRLF.
    # Extensions (SIZE=, AUTH=, ENVID=, ORCPT=) add to MAIL and RCPT, and
    # RFC 1869 allows 512 more per extension keyword; Postfix uses 2048 for
    # all lines. We accept 512 + 4 * 512 bytes on MAIL/RCPT through this one
    # bound, which still keeps a session's buffer small.
    command_line: int = 2048
    # RFC 5321 4.5.3.1.6: a text line is at most 1000 octets with its CRLF.
    # Real mail breaks this; like Postfix (line_length_limit 2048, longer lines
    # are still delivered) we do not refuse long body lines, only bound memory.
    text_line: int = 1000
    # RFC 1870 SIZE; Postfix message_size_limit is 10240000.
    message_size: int = 25 * MIB
    # RFC 5321 4.5.3.1.8 asks for at least 100; Postfix smtpd_recipient_limit 1000.
    recipients: int = 1000
    # Postfix smtpd_hard_error_limit 20: then 421 4.7.0 and close.
    errors: int = 20
    # RFC 4954 section 4: a server SHOULD accept at least 12288 octets of SASL.
    auth_line: int = 12288
    # RFC 5321 4.5.3.2: initial 220 5 min, MAIL 5 min, RCPT 5 min, DATA
    # initiation 2 min, data block 3 min, DATA termination 10 min; a server
    # SHOULD wait at least 5 minutes for the next command.
    command_timeout: float = 300.0
    data_block_timeout: float = 180.0
    # Postfix smtpd_client_connection_count_limit is 50 per client; this is
    # the total for one listener, answered with 421 4.7.0 on accept.
    connections: int = 1000
    # Quirk: accept bare LF as a line end in commands (Postfix
    # smtpd_forbid_bare_newline = no). Off: a bare LF is a syntax error.
    allow_bare_lf_commands: bool = False
    # Quirk: bare LF / CR in a DATA body are turned into CRLF instead of the
    # message being refused with 550 5.6.11 (Postfix "normalize"). Off by default.
    normalize_bare_lf_body: bool = False


@dataclass(frozen=True, slots=True)
class ImapLimits:
    """Bounds of the IMAP command reader (framing and grammar)."""

    # Bytes of a command's lines (literals not counted). RFC 7162 section 4
    # asks servers to accept at least 8192 octets; Dovecot's
    # imap_max_line_length is 64 KiB, which long UID sets from sync clients
    # need. Over it: the command is dropped and answered "TAG BAD".
    command_length: int = 64 * KIB
    # One literal (an APPEND message). Stalwart caps a request at 25 MiB; it
    # matches SMTPLimits.message_size so whatever SMTP accepts can be
    # appended. Over it a synchronising literal is refused before a byte
    # arrives ("NO [TOOBIG]"), a non-synchronising one is read and discarded.
    literal_size: int = 25 * MIB
    # Parentheses and SEARCH key nesting (NOT/OR count). Recursion in the
    # parser never goes deeper; Dovecot allows 1 level of lists before login.
    nesting_depth: int = 32
    # Ranges in one sequence set: a command_length line of "1,3,5,..." is
    # about 16000 ranges, so 10000 bounds the work per command.
    sequence_ranges: int = 10000
    # Pipelined commands read ahead of the one being answered (Dovecot
    # queues a few; Stalwart processes one at a time per session).
    commands_in_flight: int = 16


@dataclass(frozen=True, slots=True)
class Limits:
    """All limits of one mailcore instance, one part per protocol."""

    smtp: SMTPLimits = field(default_factory=SMTPLimits)
    imap: ImapLimits = field(default_factory=ImapLimits)
