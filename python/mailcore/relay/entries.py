"""What the relay queue holds and reports: messages, recipients, states, outcomes.

Plain data, shared by :mod:`mailcore.relay.queue` (which stores them),
:mod:`mailcore.relay.worker` and :mod:`mailcore.relay.dsn`.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = [
    "NewMessage",
    "NewRecipient",
    "Outcome",
    "QueuedMessage",
    "QueuedRecipient",
    "Recorded",
    "State",
]


class State(enum.Enum):
    """Where a recipient stands."""

    QUEUED = "queued"
    """Waiting for its next attempt."""
    DELIVERED = "delivered"
    """The next hop (or the local store) accepted it."""
    FAILED = "failed"
    """Permanently failed; a DSN is still to be made."""
    BOUNCED = "bounced"
    """Failed, and the DSN (or the decision not to send one) is recorded."""


class Outcome(enum.Enum):
    """What one delivery attempt did to a recipient."""

    DELIVERED = "delivered"
    DEFERRED = "deferred"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class NewRecipient:
    """A recipient to enqueue, with its RCPT parameters (NOTIFY, ORCPT kept for DSN)."""

    address: str
    params: dict[str, str | None] = field(default_factory=dict)
    notify: tuple[str, ...] | None = None
    orcpt: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to enqueue: envelope and bytes."""

    sender: str
    recipients: Sequence[NewRecipient]
    data: bytes
    params: dict[str, str | None] = field(default_factory=dict)
    envid: str | None = None
    ret: str | None = None


@dataclass(slots=True)
class Recorded:
    """What :meth:`Queue.record` found: recipients now due a failure or delay DSN."""

    failed: list[int] = field(default_factory=list)
    delayed: list[int] = field(default_factory=list)
    finished: bool = False
    """No recipient is left to deliver or bounce: the message was removed."""
    segment: int | None = None


@dataclass(frozen=True, slots=True)
class QueuedRecipient:
    """One recipient row."""

    msg_id: str
    idx: int
    address: str
    params: dict[str, str | None]
    notify: tuple[str, ...] | None
    orcpt: tuple[str, str] | None
    state: State
    attempts: int
    next_attempt: float
    last_reply: str | None
    remote: str | None
    warned: bool


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """A message row with (some of) its recipients."""

    id: str
    sender: str
    params: dict[str, str | None]
    created: float
    size: int
    envid: str | None
    ret: str | None
    recipients: tuple[QueuedRecipient, ...]
