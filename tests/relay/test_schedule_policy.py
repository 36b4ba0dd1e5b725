"""Retry schedule and relay policy, including every open-relay trick."""

from __future__ import annotations

import pytest

from mailcore.relay.policy import (
    RELAY_DENIED,
    ROUTING_IN_LOCAL_PART,
    RelayPolicy,
    Verdict,
    split_address,
)
from mailcore.relay.schedule import RetrySchedule
from mailcore.smtp.handlers import Session


def test_default_schedule_is_postfix_like() -> None:
    s = RetrySchedule()
    assert [s.delay(n) for n in range(1, 7)] == [300, 600, 1200, 2400, 3600, 3600]
    assert s.next_attempt(1, 1000.0) == 1300.0
    assert not s.expired(0.0, 5 * 86400 - 1)
    assert s.expired(0.0, 5 * 86400)
    # Huge attempt counts stay at the ceiling, no overflow.
    assert s.delay(10_000) == 3600


def test_schedule_validates() -> None:
    with pytest.raises(ValueError):
        RetrySchedule(first=0)
    with pytest.raises(ValueError):
        RetrySchedule(first=10, maximum=5)


POLICY = RelayPolicy(["example.org"], ["10.0.0.0/8", "2001:db8::/32"], ["192.0.2.1"])


def session(peer: str, user: str | None = None) -> Session:
    return Session(peer=(peer, 1234), server_hostname="mx.example.org", authenticated=user)


@pytest.mark.parametrize(
    ("peer", "user", "allowed"),
    [
        ("10.1.2.3", None, True),
        ("11.1.2.3", None, False),
        ("11.1.2.3", "ann@example.org", True),
        ("2001:db8::5", None, True),
        ("::ffff:10.0.0.1", None, True),
        ("not-an-ip", None, False),
    ],
)
def test_may_relay(peer: str, user: str | None, allowed: bool) -> None:
    assert POLICY.may_relay(session(peer, user)) is allowed


def test_split_address() -> None:
    assert split_address('"a@b"@Example.ORG.') == ('"a@b"', "example.org")
    assert split_address("postmaster") == ("postmaster", "")


@pytest.mark.parametrize(
    ("address", "relay_allowed", "verdict", "reply"),
    [
        # Plain cases.
        ("ann@example.org", False, Verdict.LOCAL, None),
        ("ann@EXAMPLE.org.", False, Verdict.LOCAL, None),
        ("bob@remote.example", False, Verdict.REFUSE, RELAY_DENIED),
        ("bob@remote.example", True, Verdict.RELAY, None),
        # Percent hack: never relayed through a local domain, even for relay clients.
        ("bob%remote.example@example.org", False, Verdict.REFUSE, ROUTING_IN_LOCAL_PART),
        ("bob%remote.example@example.org", True, Verdict.REFUSE, ROUTING_IN_LOCAL_PART),
        # Bang paths.
        ("remote.example!bob@example.org", False, Verdict.REFUSE, ROUTING_IN_LOCAL_PART),
        ("a!b!bob@example.org", False, Verdict.REFUSE, ROUTING_IN_LOCAL_PART),
        # Quoted local parts holding @ (or %).
        ('"bob@remote.example"@example.org', False, Verdict.REFUSE, ROUTING_IN_LOCAL_PART),
        ('"bob%remote.example"@example.org', False, Verdict.REFUSE, ROUTING_IN_LOCAL_PART),
        # Address literals of this server are local (and get the same checks).
        ("ann@[192.0.2.1]", False, Verdict.LOCAL, None),
        ("ann@[127.0.0.1]", False, Verdict.LOCAL, None),
        ("ann@[IPv6:::1]", False, Verdict.LOCAL, None),
        ("bob%remote.example@[192.0.2.1]", False, Verdict.REFUSE, ROUTING_IN_LOCAL_PART),
        # Literals of other hosts are remote.
        ("bob@[198.51.100.7]", False, Verdict.REFUSE, RELAY_DENIED),
        ("bob@[198.51.100.7]", True, Verdict.RELAY, None),
        # No domain at all.
        ("remote.example!bob", False, Verdict.REFUSE, None),
    ],
)
def test_classify(address: str, relay_allowed: bool, verdict: Verdict, reply: object) -> None:
    decision = POLICY.classify(address, relay_allowed=relay_allowed)
    assert decision.verdict is verdict
    if reply is not None:
        assert decision.reply == reply
    if verdict is Verdict.REFUSE:
        assert decision.reply is not None and decision.reply.code >= 500
