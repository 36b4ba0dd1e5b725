"""RFC 3464 delivery status notifications (bounces) built from queue rows.

A DSN is a ``multipart/report; report-type=delivery-status`` message
(RFC 6522) with three parts: a human-readable explanation, the
``message/delivery-status`` fields (one per-message group, then one group
per recipient), and the original message (``message/rfc822``) or only its
header (``text/rfc822-headers``) when the sender asked RET=HDRS (RFC 3461
section 4.3). It goes from the null sender, so it never bounces itself.

Who gets one (RFC 3461 section 4.1): a recipient with ``NOTIFY=NEVER`` never
does; with an explicit NOTIFY list only the listed events are reported; without
NOTIFY, failures are reported and delays only when a warning is configured.
Nothing is ever sent to the null sender (RFC 5321 section 4.5.5).
"""

from __future__ import annotations

import email.utils
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from mailcore.relay.queue import NewMessage, NewRecipient, QueuedMessage, QueuedRecipient
from mailcore.store.files import header_size

__all__ = ["build_dsn", "wants_notification"]

# Keep bounces small: past this size only the header goes back.
_MAX_RETURNED = 1024 * 1024


@dataclass(frozen=True, slots=True)
class _Status:
    code: str
    diagnostic: str | None


def wants_notification(rcpt: QueuedRecipient, event: str) -> bool:
    """Whether ``rcpt`` asked to hear about ``event`` (``SUCCESS``, ``FAILURE`` or ``DELAY``).

    Without NOTIFY failures and delays are reported, successes never
    (RFC 3461 section 4.1 leaves the default to the MTA; delays are only
    ever looked at when the schedule has a ``delay_warning``).
    """
    if rcpt.notify is None:
        return event != "SUCCESS"
    if "NEVER" in rcpt.notify:
        return False
    return event in rcpt.notify


def _status(reply: str | None, delayed: bool, success: bool = False) -> _Status:
    # The last reply is "CODE ENH text" as the client's Response prints it.
    if success:
        parts = (reply or "").split(" ", 2)
        code = parts[1] if len(parts) > 1 and parts[1][:2] == "2." else "2.0.0"
        return _Status(code, reply or None)
    if not reply:
        return _Status("4.0.0" if delayed else "5.0.0", None)
    parts = reply.split(" ", 2)
    code = parts[0] if parts and parts[0].isdigit() else ""
    enhanced = parts[1] if len(parts) > 1 and parts[1][:1] in "245" and "." in parts[1] else None
    if enhanced is None:
        enhanced = "4.0.0" if delayed or code.startswith("4") else "5.0.0"
    if not delayed and enhanced.startswith("4"):
        # A deferral that timed out is a permanent failure now.
        enhanced = "5" + enhanced[1:]
    return _Status(enhanced, reply if code else None)


def _xtext_free(value: str) -> str:
    # Header field values must not break lines.
    return value.replace("\r", " ").replace("\n", " ")


def build_dsn(
    message: QueuedMessage,
    recipients: Sequence[QueuedRecipient],
    original: bytes,
    *,
    reporting_mta: str,
    now: datetime | None = None,
    delayed: bool = False,
    success: str | None = None,
) -> NewMessage | None:
    """The DSN for ``recipients`` of ``message`` (None when nobody is to be told).

    ``delayed`` makes a delay warning (Action: delayed) instead of a failure
    report; ``success`` ("delivered" or "relayed") a success notification
    for recipients that asked NOTIFY=SUCCESS (RFC 3461 section 6.2: a relay
    whose next hop does not take DSN responsibility sends "relayed").
    """
    if not message.sender:
        return None
    event = "SUCCESS" if success else "DELAY" if delayed else "FAILURE"
    told = [r for r in recipients if wants_notification(r, event)]
    if not told:
        return None
    when = now or datetime.now(timezone.utc)
    date = email.utils.format_datetime(when)
    boundary = f"=_mailcore_{secrets.token_hex(12)}"
    action = success or ("delayed" if delayed else "failed")
    if success:
        subject = "Successful Mail Delivery Report"
    elif delayed:
        subject = "Delayed Mail (still being retried)"
    else:
        subject = "Undelivered Mail Returned to Sender"
    lines = [
        f"Date: {date}",
        f"From: Mail Delivery System <MAILER-DAEMON@{reporting_mta}>",
        f"To: <{message.sender}>",
        f"Subject: {subject}",
        f"Message-ID: <{secrets.token_hex(10)}@{reporting_mta}>",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
        "",
        "This is a MIME-encapsulated message.",
        "",
        f"--{boundary}",
        "Content-Type: text/plain; charset=utf-8",
        "",
        f"This is the mail system at host {reporting_mta}.",
        "",
    ]
    if success == "delivered":
        lines.append("Your message was delivered to the recipients below.")
    elif success:
        lines.append(
            "Your message was passed on to the recipients below; the next system"
            " does not send delivery notifications."
        )
    elif delayed:
        lines.append("Your message could not be delivered yet; it will be retried.")
    else:
        lines.append("Your message could not be delivered to one or more recipients.")
    lines.append("")
    for rcpt in told:
        lines.append(f"<{rcpt.address}>: {_xtext_free(rcpt.last_reply or 'no reply')}")
    lines += ["", f"--{boundary}", "Content-Type: message/delivery-status", ""]
    # Per-message fields (RFC 3464 section 2.2).
    if message.envid:
        lines.append(f"Original-Envelope-Id: {_xtext_free(message.envid)}")
    lines += [
        f"Reporting-MTA: dns; {reporting_mta}",
        f"Arrival-Date: {email.utils.format_datetime(datetime.fromtimestamp(message.created, timezone.utc))}",  # noqa: E501
    ]
    # Per-recipient fields (RFC 3464 section 2.3).
    for rcpt in told:
        status = _status(rcpt.last_reply, delayed, success is not None)
        lines.append("")
        if rcpt.orcpt:
            lines.append(f"Original-Recipient: {rcpt.orcpt[0]};{_xtext_free(rcpt.orcpt[1])}")
        lines += [
            f"Final-Recipient: rfc822; {rcpt.address}",
            f"Action: {action}",
            f"Status: {status.code}",
        ]
        if rcpt.remote:
            lines.append(f"Remote-MTA: dns; {rcpt.remote}")
        if status.diagnostic:
            lines.append(f"Diagnostic-Code: smtp; {_xtext_free(status.diagnostic)}")
        lines.append(f"Last-Attempt-Date: {date}")
    headers_only = message.ret == "HDRS" or len(original) > _MAX_RETURNED
    if headers_only:
        part_type = "text/rfc822-headers"
        returned = original[: header_size(original)]
    else:
        part_type = "message/rfc822"
        returned = original
    lines += ["", f"--{boundary}", f"Content-Type: {part_type}", "", ""]
    head = "\r\n".join(lines).encode("utf-8")
    if not returned.endswith(b"\r\n"):
        returned += b"\r\n"
    tail = f"\r\n--{boundary}--\r\n".encode()
    return NewMessage(
        sender="",
        recipients=[NewRecipient(message.sender)],
        data=head + returned + tail,
    )
