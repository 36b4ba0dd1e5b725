"""The durable queue: enqueue, outcomes, retries by ``now``, crash leftovers, DSNs."""

from __future__ import annotations

import email
import email.policy
import os
from pathlib import Path

import pytest

from mailcore.relay.dsn import build_dsn
from mailcore.relay.queue import NewMessage, NewRecipient, Outcome, Queue, QueueBusy, State
from mailcore.relay.schedule import RetrySchedule

MSG = b"From: a@example.org\r\nSubject: hi\r\n\r\nbody\r\n"
T0 = 1_700_000_000.0


def new(*rcpts: str, sender: str = "a@example.org", **kw: object) -> NewMessage:
    return NewMessage(sender, [NewRecipient(r) for r in rcpts], MSG, **kw)  # type: ignore[arg-type]


@pytest.fixture
def queue(tmp_path: Path) -> Queue:
    q = Queue(tmp_path / "q", RetrySchedule(first=60, factor=2, maximum=600, lifetime=3600))
    q.open()
    return q


def test_enqueue_is_on_disk_and_due(queue: Queue) -> None:
    msg_id = queue.enqueue(new("x@r.example", "y@r.example"), T0)
    assert os.listdir(queue.spool) == ["1"]
    assert (queue.spool / "1").read_bytes() == MSG
    assert queue.read(msg_id) == MSG
    due = queue.due(T0)
    assert [m.id for m in due] == [msg_id]
    assert [r.address for r in due[0].recipients] == ["x@r.example", "y@r.example"]
    assert queue.due(T0 - 1) == []
    assert queue.due(T0, exclude=[msg_id]) == []
    # A tool opening the queue beside its owner sees the same, and only
    # one owner at a time.
    other = Queue(queue.path)
    other.open(owner=False)
    assert [m.id for m in other.due(T0)] == [msg_id]
    with pytest.raises(QueueBusy):
        other.enqueue(new("z@r.example"), T0)
    with pytest.raises(QueueBusy):
        Queue(queue.path).open()


def test_retry_then_deliver_once(queue: Queue) -> None:
    msg_id = queue.enqueue(new("x@r.example"), T0)
    assert queue.record(msg_id, [(0, Outcome.DEFERRED, "451 4.3.0 later")], T0).failed == []
    assert queue.due(T0 + 59) == []
    (msg,) = queue.due(T0 + 60)
    assert msg.recipients[0].attempts == 1
    assert msg.recipients[0].last_reply == "451 4.3.0 later"
    queue.record(msg_id, [(0, Outcome.DEFERRED, "451 again")], T0 + 60)
    assert queue.due(T0 + 60 + 119) == []
    assert queue.due(T0 + 60 + 120) != []
    assert queue.record(msg_id, [(0, Outcome.DELIVERED, "250 ok")], T0 + 200).finished
    # Delivered to everyone: gone in the same commit, bytes and all.
    assert queue.message(msg_id) is None
    assert os.listdir(queue.spool) == ["1"]  # the segment still being appended to
    # A late outcome for it changes nothing.
    assert not queue.record(msg_id, [(0, Outcome.DEFERRED, "451 stale")], T0 + 201).finished
    assert queue.due(T0 + 10_000) == []
    assert queue.entries() == []


def test_partial_delivery_keeps_the_rest(queue: Queue) -> None:
    msg_id = queue.enqueue(new("x@r.example", "y@r.example"), T0)
    queue.record(msg_id, [(0, Outcome.DELIVERED, "250 ok"), (1, Outcome.DEFERRED, "421 busy")], T0)
    assert not queue.finish(msg_id)
    (msg,) = queue.due(T0 + 60)
    assert [r.address for r in msg.recipients] == ["y@r.example"]


def test_deferral_past_lifetime_fails(queue: Queue) -> None:
    msg_id = queue.enqueue(new("x@r.example"), T0)
    assert queue.record(
        msg_id, [(0, Outcome.DEFERRED, "451 4.4.1 no answer")], T0 + 3600
    ).failed == [0]
    (m,) = queue.unbounced()
    assert m.recipients[0].state is State.FAILED
    assert "too long" in (m.recipients[0].last_reply or "")


def test_bounce_queues_dsn_atomically(queue: Queue) -> None:
    msg_id = queue.enqueue(new("x@r.example", envid="E1", ret="HDRS"), T0)
    assert queue.record(msg_id, [(0, Outcome.FAILED, "550 5.1.1 no such user")], T0).failed == [0]
    (m,) = queue.unbounced()
    dsn = build_dsn(m, m.recipients, queue.read(msg_id), reporting_mta="mx.example.org")
    assert dsn is not None
    dsn_id = queue.bounce(msg_id, [0], dsn, T0)
    assert dsn_id is not None
    assert queue.unbounced() == []
    assert queue.finish(msg_id)
    (left,) = queue.entries()
    assert left.id == dsn_id and left.sender == ""
    assert [r.address for r in left.recipients] == ["a@example.org"]
    report = email.message_from_bytes(queue.read(dsn_id), policy=email.policy.default)
    assert report.get_content_type() == "multipart/report"
    assert report.get_param("report-type") == "delivery-status"
    parts = list(report.iter_parts())
    assert [p.get_content_type() for p in parts] == [
        "text/plain",
        "message/delivery-status",
        "text/rfc822-headers",
    ]
    status = parts[1].as_bytes().decode()
    assert "Original-Envelope-Id: E1" in status
    assert "Final-Recipient: rfc822; x@r.example" in status
    assert "Action: failed" in status
    assert "Status: 5.1.1" in status
    assert "Diagnostic-Code: smtp; 550 5.1.1 no such user" in status
    assert b"body" not in parts[2].as_bytes()  # RET=HDRS: header only


def test_no_dsn_to_null_sender_or_notify_never(queue: Queue) -> None:
    msg_id = queue.enqueue(new("x@r.example", sender=""), T0)
    queue.record(msg_id, [(0, Outcome.FAILED, "550 no")], T0)
    (m,) = queue.unbounced()
    assert build_dsn(m, m.recipients, MSG, reporting_mta="h") is None
    never = NewMessage("a@example.org", [NewRecipient("x@r.example", notify=("NEVER",))], MSG)
    msg2 = queue.enqueue(never, T0)
    queue.record(msg2, [(0, Outcome.FAILED, "550 no")], T0)
    m2 = queue.message(msg2, [State.FAILED])
    assert m2 is not None
    assert build_dsn(m2, m2.recipients, MSG, reporting_mta="h") is None
    success_only = NewMessage(
        "a@example.org", [NewRecipient("x@r.example", notify=("SUCCESS",))], MSG
    )
    msg3 = queue.enqueue(success_only, T0)
    queue.record(msg3, [(0, Outcome.FAILED, "550 no")], T0)
    m3 = queue.message(msg3, [State.FAILED])
    assert m3 is not None
    assert build_dsn(m3, m3.recipients, MSG, reporting_mta="h") is None
    delay = NewMessage(
        "a@example.org",
        [NewRecipient("x@r.example", notify=("DELAY", "FAILURE"), orcpt=("rfc822", "o@x"))],
        MSG,
    )
    msg4 = queue.enqueue(delay, T0)
    queue.record(msg4, [(0, Outcome.DEFERRED, "451 4.2.0 full")], T0)
    m4 = queue.message(msg4)
    assert m4 is not None
    warn = build_dsn(m4, m4.recipients, MSG, reporting_mta="h", delayed=True)
    assert warn is not None
    assert b"Action: delayed" in warn.data and b"Status: 4.2.0" in warn.data
    assert b"Original-Recipient: rfc822;o@x" in warn.data
    assert b"Content-Type: message/rfc822\r\n\r\n" + MSG in warn.data


def test_uncommitted_files_are_removed_on_open(queue: Queue) -> None:
    kept = queue.enqueue(new("x@r.example"), T0)
    # What a SIGKILL between the segment's fsync and the commit leaves behind.
    (queue.spool / "9").write_bytes(b"half")
    queue.close()
    again = Queue(queue.path)
    again.open()
    assert os.listdir(again.spool) == ["1"]
    assert [m.id for m in again.entries()] == [kept]
    assert again.read(kept) == MSG
    # Appends go to a new segment after a restart.
    again.enqueue(new("y@r.example"), T0)
    assert sorted(os.listdir(again.spool)) == ["1", "10"]


def test_failed_commit_leaves_nothing(queue: Queue) -> None:
    with pytest.raises(ValueError):
        queue.enqueue_many([new("x@r.example"), new()], T0)
    assert os.listdir(queue.spool) == []
    assert queue.entries() == []


def test_flush_and_delete(queue: Queue) -> None:
    a = queue.enqueue(new("x@r.example"), T0)
    b = queue.enqueue(new("y@r.example"), T0)
    queue.record(a, [(0, Outcome.DEFERRED, "451")], T0)
    queue.record(b, [(0, Outcome.DEFERRED, "451")], T0)
    assert queue.due(T0 + 1) == []
    assert queue.next_due() == T0 + 60
    assert queue.flush(T0 + 1) == 2
    assert len(queue.due(T0 + 1)) == 2
    assert queue.delete(a)
    assert not queue.delete(a)
    assert [m.id for m in queue.entries()] == [b]
    with pytest.raises(KeyError):
        queue.read(a)


def test_segments_roll_over_and_go_when_unused(tmp_path: Path) -> None:
    q = Queue(tmp_path / "q", segment_size=1)  # every batch starts a new segment
    q.open()
    a, b = q.enqueue_many([new("x@r.example"), new("y@r.example")], T0)
    c = q.enqueue(new("z@r.example"), T0)
    assert sorted(os.listdir(q.spool)) == ["1", "2"]
    assert q.read(a) == q.read(b) == q.read(c) == MSG
    assert q.record(a, [(0, Outcome.DELIVERED, "250")], T0).finished
    assert sorted(os.listdir(q.spool)) == ["1", "2"]  # b still lives in segment 1
    assert q.record(b, [(0, Outcome.DELIVERED, "250")], T0).finished
    assert os.listdir(q.spool) == ["2"]
    assert q.record(c, [(0, Outcome.DELIVERED, "250")], T0).finished
    assert os.listdir(q.spool) == ["2"]  # still the segment being appended to
    q.close()
    assert os.listdir(q.spool) == []


def test_delay_warning_once(tmp_path: Path) -> None:
    q = Queue(tmp_path / "q", RetrySchedule(first=60, maximum=600, delay_warning=300))
    q.open()
    msg_id = q.enqueue(new("x@r.example"), T0)
    assert q.record(msg_id, [(0, Outcome.DEFERRED, "451")], T0 + 100).delayed == []
    assert q.record(msg_id, [(0, Outcome.DEFERRED, "451")], T0 + 300).delayed == [0]
    q.bounce(msg_id, [0], None, T0 + 300, warning=True)
    assert q.record(msg_id, [(0, Outcome.DEFERRED, "451")], T0 + 900).delayed == []
    m = q.message(msg_id)
    assert m is not None and m.recipients[0].state is State.QUEUED and m.recipients[0].warned
