"""Logging for ``mailcore serve``: one line per session event and per message.

Two formats share one set of fields: ``text`` (readable, ``key=value``) and
``json`` (one object per line, for log shippers). Events go through the
standard :mod:`logging` module under the ``mailcore.events`` logger, so an
application that embeds mailcore can route them like any other log record.

Example lines::

    2026-11-27T00:20:01.123Z info smtp connect peer=127.0.0.1:40312
    2026-11-27T00:20:01.131Z info smtp message queue_id=1A2B3C4D5E6F from=<a@b.example>
        to=<ann@localhost> size=612 result=delivered reply="250 2.0.0" delay=0.0042
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import queue
import re
import sys
import threading
import time
from typing import Any, Literal, NamedTuple, TextIO

from mailcore.smtp.local import MessageRecord

__all__ = ["EventLog", "JsonFormatter", "LogWriter", "TextFormatter", "setup_logging"]

EVENTS = "mailcore.events"


_last_second: list[tuple[int, str]] = [(-1, "")]


def _timestamp(created: float) -> str:
    whole = int(created)
    second, text = _last_second[0]
    if whole != second:
        # A busy log writes many lines in the same second: format it once.
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        _last_second[0] = (whole, text)
    return f"{text}.{int((created - whole) * 1000):03d}Z"


class _Line(NamedTuple):
    """A session event or message line on its way to the writer thread.

    What :class:`EventLog` queues instead of a :class:`logging.LogRecord`
    when the log is the one :func:`setup_logging` set up: the same fields,
    without the cost of building a record in the event loop.
    """

    created: float
    levelno: int
    name: str
    msg: str
    fields: dict[str, object]


# A character that makes a text value need quotes: it would split the line's
# key=value pairs, hide where the value ends, or (a line end or another
# control character) forge a line of its own.
_NEEDS_QUOTES = re.compile(r'[\s"=\\\x00-\x1f\x7f]')


def _text_value(value: object) -> str:
    text = value if type(value) is str else str(value)
    if not text or _NEEDS_QUOTES.search(text):
        return json.dumps(text, ensure_ascii=False)
    return text


class TextFormatter(logging.Formatter):
    """``TIME level message key=value ...``: what a person reads in a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        """One line; fields attached as ``record.fields`` follow the message."""
        fields: dict[str, Any] = getattr(record, "fields", {})
        line = self._line(record.created, record.levelname, record.getMessage(), fields)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        elif record.exc_text:
            line += "\n" + record.exc_text
        return line

    def format_line(self, line: _Line) -> str:
        """The same line for an event queued by :class:`EventLog`."""
        return self._line(line.created, logging.getLevelName(line.levelno), line.msg, line.fields)

    @staticmethod
    def _line(created: float, level: str, msg: str, fields: dict[str, Any]) -> str:
        parts = [_timestamp(created), level.lower(), msg]
        parts += [f"{k}={_text_value(v)}" for k, v in fields.items()]
        return " ".join(parts)


class JsonFormatter(logging.Formatter):
    """One JSON object per line with ``time``, ``level``, ``logger``, ``msg`` and the fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Serialise the record; exceptions go into ``exc``."""
        obj = self._object(record.created, record.levelname, record.name, record.getMessage())
        obj.update(getattr(record, "fields", {}))
        if record.exc_info:
            obj["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            obj["exc"] = record.exc_text
        return json.dumps(obj, ensure_ascii=False, default=str)

    def format_line(self, line: _Line) -> str:
        """The same object for an event queued by :class:`EventLog`."""
        level = logging.getLevelName(line.levelno)
        obj = self._object(line.created, level, line.name, line.msg)
        obj.update(line.fields)
        return json.dumps(obj, ensure_ascii=False, default=str)

    @staticmethod
    def _object(created: float, level: str, name: str, msg: str) -> dict[str, Any]:
        return {"time": _timestamp(created), "level": level.lower(), "logger": name, "msg": msg}


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


class LogWriter:
    """Formats and writes queued records from a thread of its own, in batches.

    The event loop pays one queue put per line. The thread sleeps while the
    queue is empty; once a record arrives it waits ``linger`` seconds for
    more, then formats everything queued and writes it with one write and
    one flush. A busy server thus wakes this thread (and hands it the GIL)
    a few times a second, not once per line, and lines appear at most
    ``linger`` seconds late.
    """

    def __init__(
        self,
        records: queue.SimpleQueue[logging.LogRecord | _Line | None],
        handler: logging.StreamHandler[TextIO],
        linger: float = 0.05,
    ) -> None:
        self._records = records
        self._handler = handler
        self._linger = linger
        self._thread = threading.Thread(target=self._run, name="mailcore-log", daemon=True)

    def start(self) -> None:
        """Start the writing thread."""
        self._thread.start()

    def stop(self) -> None:
        """Write whatever is queued and stop the thread."""
        self._records.put(None)
        self._thread.join()

    def _run(self) -> None:
        while True:
            first = self._records.get()
            if first is not None and self._linger > 0:
                time.sleep(self._linger)
            batch = [first]
            while True:
                try:
                    batch.append(self._records.get_nowait())
                except queue.Empty:
                    break
            done = None in batch
            self._write([r for r in batch if r is not None])
            if done:
                return

    def _write(self, records: list[logging.LogRecord | _Line]) -> None:
        handler = self._handler
        formatter = handler.formatter
        lines: list[str] = []
        last: logging.LogRecord | None = None
        for record in records:
            try:
                if isinstance(record, _Line):
                    assert isinstance(formatter, TextFormatter | JsonFormatter)
                    text = formatter.format_line(record)
                else:
                    last = record
                    text = handler.format(record)
                lines.append(text + handler.terminator)
            except Exception:  # noqa: BLE001 - a bad record must not stop the log
                handler.handleError(_as_record(record))
        if not lines:
            return
        try:
            handler.stream.write("".join(lines))
            handler.flush()
        except Exception:  # noqa: BLE001 - e.g. stderr closed: reported, not fatal
            handler.handleError(last if last is not None else _as_record(records[-1]))


def _as_record(item: logging.LogRecord | _Line) -> logging.LogRecord:
    """A real record for ``handleError`` (which prints what failed)."""
    if isinstance(item, logging.LogRecord):
        return item
    record = logging.LogRecord(item.name, item.levelno, __file__, 0, item.msg, None, None)
    record.fields = item.fields
    return record


def setup_logging(
    fmt: Literal["text", "json"] = "text", level: str = "info", stream: TextIO | None = None
) -> LogWriter:
    """Send mailcore's (and asyncio's) log records to ``stream`` (stderr) in ``fmt``.

    Formatting and writing happen in a thread of their own, in batches (see
    :class:`LogWriter`), so a busy event loop pays a queue put per line
    rather than a write system call. Call ``stop()`` on the returned writer
    to flush before exiting.
    """
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    # Neither format shows thread or process names: do not collect them for
    # every record (the server owns this process, so the switch is ours).
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    records: queue.SimpleQueue[logging.LogRecord | _Line | None] = queue.SimpleQueue()
    writer = LogWriter(records, handler)
    enqueue = _Enqueue(records)
    for name in ("mailcore", "asyncio"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [enqueue]
        logger.setLevel(level.upper())
        logger.propagate = False
    writer.start()
    return writer


def _only_enqueue(logger: logging.Logger) -> _Enqueue | None:
    """setup_logging()'s handler, when it is the only one ``logger``'s records reach unfiltered."""
    found: _Enqueue | None = None
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            return None
        for handler in current.handlers:
            if found is not None or type(handler) is not _Enqueue or handler.filters:
                return None
            found = handler
        if not current.propagate:
            break
        current = current.parent
    return found


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
        """``PROTOCOL message queue_id=... from=... to=... size=... result=... delay=...``."""
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
                # Not "time": that is every JSON line's timestamp.
                "delay": round(record.seconds, 4),
            }
            self._emit(level, f"{record.protocol} message", data)

    def _emit(self, level: int, msg: str, fields: dict[str, object]) -> None:
        logger = self.logger
        direct = _only_enqueue(logger)
        if direct is not None and level >= direct.level:
            # The log of setup_logging(): hand the fields to its writer
            # thread as they are; it formats them as it formats records.
            direct.queue.put_nowait(_Line(time.time(), level, logger.name, msg, fields))
            return
        # makeRecord + handle skips Logger._log's stack walk (findCaller),
        # which costs more than the rest of a line: the caller is always here.
        record = self.logger.makeRecord(
            self.logger.name, level, __file__, 0, msg, (), None, extra={"fields": fields}
        )
        self.logger.handle(record)
