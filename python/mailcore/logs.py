"""Logging for ``mailcore serve``: one line per session event and per message.

Two formats share one set of fields: ``text`` (readable, ``key=value``) and
``json`` (one object per line, for log shippers). Events go through the
standard :mod:`logging` module under the ``mailcore.events`` logger, so an
application that embeds mailcore can route them like any other log record.

Example lines::

    2026-11-27T00:20:01.123Z info smtp connect peer=127.0.0.1:40312
    2026-11-27T00:20:01.131Z info smtp message queue_id=1A2B3C4D5E6F from=<a@b.example>
        to=<ann@localhost> size=612 result=delivered reply="250 2.0.0" time=0.0042
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import queue
import sys
import time
from typing import Any, Literal, TextIO

from mailcore.smtp.local import MessageRecord

__all__ = ["EventLog", "JsonFormatter", "TextFormatter", "setup_logging"]

EVENTS = "mailcore.events"


def _timestamp(record: logging.LogRecord) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}Z"


def _text_value(value: object) -> str:
    text = str(value)
    if not text or any(c in text for c in ' "=\\'):
        return json.dumps(text, ensure_ascii=False)
    return text


class TextFormatter(logging.Formatter):
    """``TIME level message key=value ...``: what a person reads in a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        """One line; fields attached as ``record.fields`` follow the message."""
        fields: dict[str, Any] = getattr(record, "fields", {})
        parts = [_timestamp(record), record.levelname.lower(), record.getMessage()]
        parts += [f"{k}={_text_value(v)}" for k, v in fields.items()]
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        elif record.exc_text:
            line += "\n" + record.exc_text
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line with ``time``, ``level``, ``logger``, ``msg`` and the fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Serialise the record; exceptions go into ``exc``."""
        obj: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        obj.update(getattr(record, "fields", {}))
        if record.exc_info:
            obj["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            obj["exc"] = record.exc_text
        return json.dumps(obj, ensure_ascii=False, default=str)


class _Enqueue(logging.handlers.QueueHandler):
    """Hands records to the writer thread as they are (no pre-formatting in the loop)."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        """Merge the arguments into the message so the record can cross threads."""
        record.msg = record.getMessage()
        record.args = None
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        return record


def setup_logging(
    fmt: Literal["text", "json"] = "text", level: str = "info", stream: TextIO | None = None
) -> logging.handlers.QueueListener:
    """Send mailcore's (and asyncio's) log records to ``stream`` (stderr) in ``fmt``.

    Formatting and writing happen in a thread of their own, so a busy event
    loop pays a queue put per line rather than a write system call. Call
    ``stop()`` on the returned listener to flush before exiting.
    """
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(records, handler)
    enqueue = _Enqueue(records)
    for name in ("mailcore", "asyncio"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [enqueue]
        logger.setLevel(level.upper())
        logger.propagate = False
    listener.start()
    return listener


class EventLog:
    """Writes session events and message records as log lines."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger if logger is not None else logging.getLogger(EVENTS)

    def session_event(self, protocol: str, event: str, peer: str, **fields: object) -> None:
        """``PROTOCOL EVENT peer=... fields``."""
        if self.logger.isEnabledFor(logging.INFO):
            data = {"protocol": protocol, "event": event, "peer": peer, **fields}
            self._emit(logging.INFO, f"{protocol} {event}", data)

    def message(self, record: MessageRecord) -> None:
        """``PROTOCOL message queue_id=... from=... to=... size=... result=... time=...``."""
        level = logging.INFO if record.result != "failed" else logging.WARNING
        if self.logger.isEnabledFor(level):
            data = {
                "protocol": record.protocol,
                "event": "message",
                "queue_id": record.queue_id,
                "peer": record.peer,
                "from": f"<{record.mail_from}>",
                "to": ",".join(f"<{r}>" for r in record.recipients),
                "size": record.size,
                "result": record.result,
                "reply": record.reply,
                "time": round(record.seconds, 4),
            }
            self._emit(level, f"{record.protocol} message", data)

    def _emit(self, level: int, msg: str, fields: dict[str, object]) -> None:
        # makeRecord + handle skips Logger._log's stack walk (findCaller),
        # which costs more than the rest of a line: the caller is always here.
        record = self.logger.makeRecord(
            self.logger.name, level, __file__, 0, msg, (), None, extra={"fields": fields}
        )
        self.logger.handle(record)
