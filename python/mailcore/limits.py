"""Every bound and every leniency mailcore applies, with where it comes from.

A limit lives here and nowhere else; protocol machines receive a ``Limits``
(or one of its parts) and never hard-code a number. A *quirk* is a leniency
towards broken peers; each is off unless its comment says otherwise, and
each has its own test.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ImapLimits", "Limits", "POP3Limits", "SMTPClientLimits", "SMTPLimits"]

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
    # A DATA/BDAT body with a longer line is read to its end (memory bounded
    # by message_size, nothing passed on) and refused with 500 5.5.6; the
    # session goes on (issue 3). Postfix instead delivers such lines
    # (line_length_limit 2048): raise this to accept them.
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
    # the total for one listener, answered with 421 4.7.0 on accept. With
    # SMTP worker processes (mailcore serve's smtp_processes) each process
    # admits its share.
    connections: int = 1000
    # Quirk: accept bare LF as a line end in commands (Postfix
    # smtpd_forbid_bare_newline = no). Off: a bare LF is a syntax error.
    allow_bare_lf_commands: bool = False
    # Quirk: bare LF / CR in a DATA body are turned into CRLF instead of the
    # message being refused with 550 5.5.2 (Postfix smtpd_forbid_bare_newline
    # "normalize" versus "reject"; CVE-2023-51764). Off by default. Either
    # way only CRLF "." CRLF ends the body.
    normalize_bare_lf_body: bool = False
    # RFC 2034 enhanced status codes: advertised and sent on 2xx/4xx/5xx
    # replies. Off only for peers that choke on them.
    enhanced_status_codes: bool = True
    # Seconds to wait before answering a failed password check (Dovecot
    # auth_failure_delay is 2 s): slows guessing, the same for unknown users.
    auth_failure_delay: float = 1.0
    # RFC 4954 section 4 / RFC 3207: AUTH PLAIN and LOGIN send the password in
    # clear, so AUTH is offered only inside TLS unless the operator allows it.
    auth_requires_tls: bool = True


@dataclass(frozen=True, slots=True)
class POP3Limits:
    """Bounds and quirks of the POP3 (and POP2) server and client."""

    # RFC 2449 section 4 asks for 255 octets per command line; Dovecot accepts
    # 512 before "-ERR Input line too long", which we follow (CRLF not counted).
    command_line: int = 512
    # RFC 5034 section 4: a server SHOULD accept at least 255 octets of SASL
    # response; SCRAM and GSSAPI need more, so we allow what RFC 4954 asks of SMTP.
    auth_line: int = 12288
    # A reply line the client accepts (RFC 2449 section 4: 512 octets) plus room
    # for long CAPA/IMPLEMENTATION texts seen in the wild.
    reply_line: int = 8192
    # Dovecot: 3 bad commands before login, 20 after, then close.
    login_bad_commands: int = 3
    bad_commands: int = 20
    # Failed logins before "-ERR" and close, and the pause after each one
    # (Dovecot auth_failure_delay = 2 secs).
    failed_logins: int = 3
    failed_login_delay: float = 2.0
    # RFC 1939 section 3: the autologout timer MUST be at least 10 minutes.
    idle_timeout: float = 600.0
    # Largest message the client accepts from RETR/TOP (memory bound on the
    # client side only; the server streams).
    message_size: int = 100 * MIB
    # Sessions per listener set; one more is answered "-ERR [SYS/TEMP]" and
    # closed (Dovecot's pop3-login process_limit/client_limit play this part).
    connections: int = 1000
    # Messages the server starts reading ahead while a pipelining client's
    # next RETRs wait (each holds at most one store chunk, 256 KiB).
    read_ahead: int = 4
    # Quirk: accept a bare LF as a command line end (old Windows clients).
    # Off: a bare LF is refused with "-ERR".
    allow_bare_lf_commands: bool = False


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
    # A literal before login (LOGIN, AUTHENTICATE arguments) is short. A
    # bigger synchronising one is refused with BAD before it is sent; a
    # bigger non-synchronising one (LITERAL+, sent without waiting) ends the
    # session with "* BYE [TOOBIG]" once its header line is read and none of
    # it is kept (RFC 7888 section 4; Dovecot's imap-login also says BYE).
    # Either way an anonymous client cannot make the server buffer an
    # APPEND-sized literal.
    unauthenticated_literal: int = 8 * KIB
    # Invalid commands in a row before "* BYE" (Dovecot: 10 bad commands).
    bad_commands: int = 10
    # RFC 9051 5.4: an autologout timer must be at least 30 minutes.
    idle_timeout: float = 30 * 60.0
    # First delay after a failed login; doubles per failure (auth/throttle).
    failed_login_delay: float = 0.5
    # Simultaneous connections of one listener; more get "* BYE" at once.
    connections: int = 1000
    # Messages per FETCH response batch written at once (bounds memory when
    # bodies are fetched, keeps writes large when only metadata is).
    fetch_batch: int = 500
    # Bytes of message data read ahead for one FETCH batch of bodies (and of
    # the sections built from them).
    fetch_batch_bytes: int = 8 * MIB
    # Octets of message data one FETCH may return per message, counted from
    # the message size before anything is read: FETCH 1 (BODY[]<0.N>
    # BODY[]<1.N> ...) could otherwise make a response of 40 times a 25 MiB
    # message. Over it: "NO [LIMIT]" (RFC 5530). A message can always be
    # fetched once whatever its size; the default leaves room for two and a
    # half copies of the largest literal_size message (BODY[] and BODY[TEXT]).
    fetch_response_size: int = 64 * MIB


@dataclass(frozen=True, slots=True)
class Limits:
    """All limits of one mailcore instance, one part per protocol."""

    smtp: SMTPLimits = field(default_factory=SMTPLimits)
    pop3: POP3Limits = field(default_factory=POP3Limits)
    imap: ImapLimits = field(default_factory=ImapLimits)


@dataclass(frozen=True, slots=True)
class SMTPClientLimits:
    """Bounds and timeouts of the SMTP and LMTP client (``mailcore.smtp.client``)."""

    # RFC 5321 4.5.3.1.5 puts a reply line at 512 octets, but servers send
    # longer EHLO lines, and an AUTH challenge may be as long as RFC 4954's
    # 12288-octet SASL line; a longer line is a protocol error, not memory.
    reply_line: int = 16 * KIB
    # Lines in one multi-line reply (an EHLO list has about 15); more ends
    # the session instead of growing a list without bound.
    reply_lines: int = 200
    # Not in the RFC; Postfix smtp_connect_timeout is 30 s, a TLS handshake
    # gets the same (Postfix smtp_starttls_timeout 300 s is for slow links).
    connect_timeout: float = 30.0
    # RFC 5321 4.5.3.2: the client waits 5 minutes for the greeting and for
    # replies to MAIL, RCPT and other commands, 2 minutes for the 354 to DATA,
    # 3 minutes for each data block to be taken, and 10 minutes for the reply
    # after the end of data (the server may be delivering).
    greeting_timeout: float = 300.0
    command_timeout: float = 300.0
    data_init_timeout: float = 120.0
    data_block_timeout: float = 180.0
    data_end_timeout: float = 600.0
    # RFC 3030 leaves the BDAT chunk size to the client; 1 MiB keeps memory
    # bounded per write while needing few round trips without PIPELINING.
    bdat_chunk: int = MIB
