"""The log of ``mailcore serve``: event lines, ordinary records, both formats, one writer."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator

import pytest

from mailcore.logs import EventLog, _only_enqueue, setup_logging
from mailcore.smtp.local import MessageRecord

RECORD = MessageRecord(
    protocol="smtp",
    queue_id="0A1B2C3D4E5F",
    peer="127.0.0.1",
    mail_from="a@b.example",
    recipients=("ann@localhost", "bob@localhost"),
    size=612,
    result="delivered",
    reply="250 2.0.0",
    seconds=0.00421,
)
STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


@pytest.fixture
def restore_loggers() -> Iterator[None]:
    saved = {}
    for name in ("mailcore", "asyncio"):
        logger = logging.getLogger(name)
        saved[name] = (logger.handlers[:], logger.level, logger.propagate)
    yield
    for name, (handlers, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


@pytest.mark.usefixtures("restore_loggers")
def test_text_lines_in_order() -> None:
    out = io.StringIO()
    writer = setup_logging("text", "info", stream=out)
    events = EventLog()
    # Event lines go straight to the writer's queue, without a LogRecord.
    assert _only_enqueue(events.logger) is not None
    events.session_event("smtp", "connect", "127.0.0.1:40312")
    events.message(RECORD)
    logging.getLogger("mailcore.app").warning("disk %s", "full")
    events.session_event("smtp", "reject", "127.0.0.1:40312", rcpt="x y@z", reply="550 5.1.1")
    logging.getLogger("mailcore.app").debug("not shown at info")
    writer.stop()
    lines = out.getvalue().splitlines()
    assert len(lines) == 4
    assert re.fullmatch(
        STAMP + r" info smtp connect protocol=smtp event=connect "
        r"peer=127\.0\.0\.1:40312",
        lines[0],
    )
    assert lines[1].endswith(
        "info smtp message protocol=smtp event=message queue_id=0A1B2C3D4E5F peer=127.0.0.1"
        " from=<a@b.example> to=<ann@localhost>,<bob@localhost> size=612 result=delivered"
        ' reply="250 2.0.0" delay=0.0042'
    )
    assert re.fullmatch(STAMP + " warning disk full", lines[2])
    assert lines[3].endswith('rcpt="x y@z" reply="550 5.1.1"')


@pytest.mark.usefixtures("restore_loggers")
def test_text_values_with_line_ends_or_controls_stay_on_their_line() -> None:
    # A peer controls some values (a refused address, an EHLO name): a line
    # end or another control character is quoted, so no line can be forged.
    out = io.StringIO()
    writer = setup_logging("text", "info", stream=out)
    events = EventLog()
    events.session_event(
        "smtp",
        "reject",
        "127.0.0.1:1",
        rcpt="a@b\n2026-01-01T00:00:00.000Z info forged",
        x="\x1b[2J",
    )
    writer.stop()
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    assert lines[0].endswith('rcpt="a@b\\n2026-01-01T00:00:00.000Z info forged" x="\\u001b[2J"')


@pytest.mark.usefixtures("restore_loggers")
def test_json_lines() -> None:
    out = io.StringIO()
    writer = setup_logging("json", "info", stream=out)
    EventLog().message(RECORD)
    EventLog().message(
        MessageRecord("lmtp", "X", "::1", "", ("c@d",), 1, "failed", "451 4.3.0", 0.5)
    )
    logging.getLogger("mailcore.app").info("plain")
    writer.stop()
    first, failed, plain = (json.loads(line) for line in out.getvalue().splitlines())
    assert re.fullmatch(STAMP, first.pop("time"))
    assert first == {
        "level": "info",
        "logger": "mailcore.events",
        "msg": "smtp message",
        "protocol": "smtp",
        "event": "message",
        "queue_id": "0A1B2C3D4E5F",
        "peer": "127.0.0.1",
        "from": "<a@b.example>",
        "to": "<ann@localhost>,<bob@localhost>",
        "size": 612,
        "result": "delivered",
        "reply": "250 2.0.0",
        "delay": 0.0042,
    }
    assert failed["level"] == "warning" and failed["from"] == "<>"
    assert plain["msg"] == "plain" and plain["logger"] == "mailcore.app"


@pytest.mark.usefixtures("restore_loggers")
def test_event_level_and_extra_handlers_respected() -> None:
    out = io.StringIO()
    writer = setup_logging("text", "warning", stream=out)
    events = EventLog()
    events.session_event("smtp", "connect", "127.0.0.1:1")  # below the level
    events.message(MessageRecord("smtp", "Q", "p", "", (), 0, "failed", "451 4.3.0", 0.1))
    # An application's own handler next to ours gets the event as a record.
    seen: list[logging.LogRecord] = []
    extra = logging.Handler()
    extra.emit = seen.append  # type: ignore[method-assign, assignment]
    logging.getLogger("mailcore").addHandler(extra)
    assert _only_enqueue(events.logger) is None
    events.message(MessageRecord("smtp", "R", "p", "", (), 0, "failed", "451 4.3.0", 0.1))
    writer.stop()
    lines = out.getvalue().splitlines()
    assert [line.split(" queue_id=")[1].split()[0] for line in lines] == ["Q", "R"]
    assert len(seen) == 1 and seen[0].fields["queue_id"] == "R"  # type: ignore[attr-defined]
