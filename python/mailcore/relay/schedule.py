"""Retry schedule: when a deferred recipient is tried again, and when to give up.

Time is a parameter (``now``, seconds since the epoch as a float) so the
schedule, and the queue that uses it, are tested without sleeping. The
defaults follow Postfix: the first retry after 5 minutes
(``minimal_backoff_time`` is 300 s), the interval doubling up to about an hour
(``maximal_backoff_time`` 4000 s), giving up after 5 days
(``maximal_queue_lifetime``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RetrySchedule"]


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """Exponential backoff with a ceiling and a lifetime.

    Attributes:
        first: seconds before the first retry.
        factor: multiplier applied after each further failure.
        maximum: the longest wait between two attempts.
        lifetime: seconds after which a still-deferred recipient is bounced.
        delay_warning: seconds after which the sender gets one "delayed"
            notification (RFC 3464 Action: delayed); ``None`` for never.
    """

    first: float = 300.0
    factor: float = 2.0
    maximum: float = 3600.0
    lifetime: float = 5 * 24 * 3600.0
    delay_warning: float | None = None

    def __post_init__(self) -> None:
        if self.first <= 0 or self.factor < 1 or self.maximum < self.first or self.lifetime <= 0:
            raise ValueError(
                "retry schedule: need first > 0, factor >= 1, maximum >= first, lifetime > 0"
            )

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt (1 for the first)."""
        if attempts <= 1:
            return self.first
        # Capped exponent: no float overflow however many attempts were made.
        steps = min(attempts - 1, 64)
        return float(min(self.maximum, self.first * self.factor**steps))

    def next_attempt(self, attempts: int, now: float) -> float:
        """When to try again after the ``attempts``-th failure at ``now``."""
        return now + self.delay(attempts)

    def expired(self, queued_at: float, now: float) -> bool:
        """Whether a message queued at ``queued_at`` has been in the queue too long."""
        return now - queued_at >= self.lifetime
