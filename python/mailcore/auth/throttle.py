"""Slowing down failed logins, per account and per peer address.

Protocol adapters ask :meth:`LoginThrottle.delay` before answering an
authentication attempt and report the outcome with :meth:`failure` or
:meth:`success`. The delay doubles with each recent failure (``base``,
``2*base``, ... up to ``maximum``) and is the larger of the account's and
the peer's, so guessing many passwords for one account from many addresses
and many accounts from one address are both slowed. It is applied to the
reply whatever the reason the login failed, so it reveals nothing about
whether the account exists. Time is a parameter: tests never sleep.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LoginThrottle"]


@dataclass
class _Record:
    failures: int
    last: float


class LoginThrottle:
    """Growing delays after failed logins, forgotten after ``forget_after`` quiet seconds."""

    def __init__(
        self,
        *,
        base: float = 0.5,
        maximum: float = 30.0,
        forget_after: float = 900.0,
        max_entries: int = 100_000,
    ) -> None:
        self.base = base
        self.maximum = maximum
        self.forget_after = forget_after
        self.max_entries = max_entries
        self._records: dict[tuple[str, str], _Record] = {}

    def _delay_for(self, key: tuple[str, str], now: float) -> float:
        rec = self._records.get(key)
        if rec is None or rec.failures == 0:
            return 0.0
        if now - rec.last >= self.forget_after:
            del self._records[key]
            return 0.0
        return float(min(self.maximum, self.base * 2.0 ** (rec.failures - 1)))

    def delay(self, account: str, peer: str, *, now: float) -> float:
        """Seconds to wait before answering the next attempt for ``account`` from ``peer``."""
        return max(
            self._delay_for(("account", account.lower()), now),
            self._delay_for(("peer", peer), now),
        )

    def failure(self, account: str, peer: str, *, now: float) -> None:
        """Record a failed attempt (unknown accounts count too)."""
        if len(self._records) >= self.max_entries:
            self._prune(now)
        for key in (("account", account.lower()), ("peer", peer)):
            rec = self._records.get(key)
            if rec is None or now - rec.last >= self.forget_after:
                rec = _Record(0, now)
                self._records[key] = rec
            rec.failures += 1
            rec.last = now

    def success(self, account: str, peer: str, *, now: float) -> None:
        """A correct login clears the account's record (the peer's stays: it may be guessing)."""
        self._records.pop(("account", account.lower()), None)

    def _prune(self, now: float) -> None:
        # Bound memory under a flood of distinct peers: drop quiet entries,
        # then the oldest half if that was not enough.
        stale = [k for k, r in self._records.items() if now - r.last >= self.forget_after]
        for k in stale:
            del self._records[k]
        if len(self._records) >= self.max_entries:
            for k, _r in sorted(self._records.items(), key=lambda kv: kv[1].last)[
                : len(self._records) // 2
            ]:
                del self._records[k]
