"""The server log (and any program's that embeds taskyard): every line goes through
the stdlib logger ``taskyard`` (``taskyard.server``, ``taskyard.transitions``,
``taskyard.hooks``, ``taskyard.client``...), so a program can plug in its own
handler. Structured lines carry their fields on the record: ``record.event`` (a
name like ``transition`` or ``server.start``) and ``record.fields`` (a dict).

Two formats: readable text (the default) and JSON lines. Nothing a task controls
(its name, argv, messages) can forge or break a line: the text format escapes
every control character (``\\n``, ``\\r``, ``\\x1b``...) of the whole line, and
JSON is written with ``ensure_ascii``, so a line is always exactly one line.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import logging.handlers
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import IO, Any

LOGGER = "taskyard"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(message)s"
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape(text: str) -> str:
    """``text`` with every control character written as an escape, so that it can
    neither end a log line nor colour a terminal; other characters stay as they are."""
    if text.isprintable():  # no control, format or separator character (the usual case)
        return text
    return "".join(c if c.isprintable() else _escape_char(c) for c in text)


def _escape_char(c: str) -> str:
    if c in _NAMED:
        return _NAMED[c]
    code = ord(c)
    return (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000
            else f"\\U{code:08x}")


def quote(text: object) -> str:
    """A value a task or a user chose, for a text line: in double quotes, with
    backslashes, quotes and control characters escaped (unambiguous, and one line)."""
    raw = str(text).replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escape(raw) + '"'


def utc_iso(unix_time: float) -> str:
    """``2026-01-02T03:04:05.678Z``."""
    moment = dt.datetime.fromtimestamp(unix_time, dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def log_event(logger: logging.Logger, event: str, message: str, *,
              level: int = logging.INFO, **fields: Any) -> None:
    """One structured line: ``message`` for the text format, ``event`` and ``fields``
    as keys of the JSON format (and on the record for other handlers)."""
    if logger.isEnabledFor(level):
        # made here rather than by logger.log: its look for the caller's frame was a
        # quarter of a transition line's cost, and the caller is known
        record = logger.makeRecord(logger.name, level, __file__, 0, "%s", (message,), None,
                                   func=event, extra={"event": event, "fields": fields})
        logger.handle(record)


def client_logger(given: object) -> logging.Logger:
    """The logger a client (``Yard(logger=...)``) writes to: ``given``, checked before
    anything is written (a name or a handler given by mistake would fail only after
    the first change, which it then seemed not to have made), or ``taskyard.client``."""
    if given is None:
        return logging.getLogger(f"{LOGGER}.client")
    if not isinstance(given, logging.Logger):
        from .errors import ConfigError

        raise ConfigError("logger must be a logging.Logger (logging.getLogger(name)),"
                          f" not {type(given).__name__}", field="logger")
    return given


def log_hook_run(logger: logging.Logger | None = None, *, task: int, attempt: int, hook: str,
                 outcome: str, seconds: float, error: str | None = None,
                 exit_code: int | None = None) -> None:
    """The line of one hook run, for whoever runs hooks (logger ``taskyard.hooks``):
    ``outcome`` is ``ok``, ``failed``, ``timeout``... and ``error`` what went wrong."""
    extra = f": {quote(error)}" if error else ""
    code = f" (exit {exit_code})" if exit_code is not None else ""
    log_event(logger or logging.getLogger(f"{LOGGER}.hooks"), "hook",
              f"hook {quote(hook)} for task {task} attempt {attempt}: {outcome}{code}"
              f" in {seconds:.3f}s{extra}",
              level=logging.INFO if outcome == "ok" else logging.WARNING,
              task=task, attempt=attempt, hook=hook, outcome=outcome,
              seconds=round(seconds, 6), exit_code=exit_code, error=error)


class TextFormatter(logging.Formatter):
    """``TIME LEVEL message``, one line whatever the message holds; a traceback
    follows on lines of its own, each indented (so none can pass for a line)."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape(super().formatMessage(record))

    def formatException(self, ei: Any) -> str:
        lines = super().formatException(ei).splitlines()
        return "\n".join("  | " + escape(line) for line in lines)

    def formatStack(self, stack_info: str) -> str:
        return "\n".join("  | " + escape(line) for line in stack_info.splitlines())


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, event and the
    event's fields, message; ``exception`` with a traceback. ASCII only."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": utc_iso(record.created),
            "level": record.levelname.lower(), "logger": record.name,
        }
        event = getattr(record, "event", None)
        if event is not None:
            line["event"] = event
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            line.update((k, v) for k, v in fields.items() if k not in line)
        line["message"] = record.getMessage()
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=True, default=str, separators=(", ", ": "))


def formatter(kind: str) -> logging.Formatter:
    return JsonFormatter() if kind == "json" else TextFormatter()


class Holding(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler whose flush can be held over many lines (see :func:`batch`)."""

    held = False

    def flush(self) -> None:
        if not self.held:
            super().flush()


@contextmanager
def batch() -> Iterator[None]:
    """Lines logged inside are written out together at its end: one ``write`` (and for
    a log file one look whether it was moved) for the lot instead of one per line (the
    transition lines of a busy server were a quarter of its CPU per task). Lines held
    are lost if the process dies inside; callers hold them for one pass of a loop."""
    handlers = [h for h in logging.getLogger(LOGGER).handlers
                if isinstance(h, Holding) and not h.held]
    for handler in handlers:
        if isinstance(handler, LogFile):
            handler.reopen_if_moved()
        handler.held = True
    try:
        yield
    finally:
        for handler in handlers:
            handler.held = False
            handler.flush()


class LogFile(logging.handlers.RotatingFileHandler, Holding):
    """A log file that is reopened when it is moved or removed (logrotate, ``mv``:
    no SIGHUP needed), and rotated by size when ``max_bytes`` is set (``.1``,
    ``.2``... up to ``backups``). With ``follow_stderr``, descriptors 1 and 2 are
    pointed at each new file too, so that what is written to them (a traceback the
    interpreter prints) lands in the current file and not in a rotated one."""

    def __init__(self, path: str, max_bytes: int = 0, backups: int = 0,
                 follow_stderr: bool = False) -> None:
        super().__init__(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8",
                         errors="backslashreplace")
        self.follow_stderr = follow_stderr
        self._identity = self._opened()

    def _opened(self) -> tuple[int, int] | None:
        if self.stream is None:
            return None
        st = os.fstat(self.stream.fileno())
        if self.follow_stderr:
            for fd in (1, 2):
                os.dup2(self.stream.fileno(), fd)
        return st.st_dev, st.st_ino

    def _moved(self) -> bool:
        try:
            st = os.stat(self.baseFilename)
        except FileNotFoundError:
            return True
        return (st.st_dev, st.st_ino) != self._identity

    def reopen_if_moved(self) -> bool:
        """Reopen the file if it was moved or removed; False if that failed."""
        try:
            if self.stream is not None and self._moved():
                self.stream.close()
                self.stream = self._open()
                self._identity = self._opened()
        except OSError:
            return False
        return True

    def emit(self, record: logging.LogRecord) -> None:
        # in a batch, looked at once at its start
        if not self.held and not self.reopen_if_moved():
            self.handleError(record)
            return
        super().emit(record)

    def shouldRollover(self, record: logging.LogRecord) -> int:
        """By the size written so far (the stdlib's stats the path twice a line too)."""
        if self.maxBytes <= 0 or self.stream is None:
            return 0
        return int(self.stream.tell() + len(self.format(record)) + 1 >= self.maxBytes)

    def doRollover(self) -> None:
        super().doRollover()
        self._identity = self._opened()


def setup(kind: str, level: str, log_file: str, *, max_mib: float = 0, backups: int = 0,
          stream: IO[str] | None = None) -> logging.Handler:
    """Send the ``taskyard`` logger's lines to ``log_file`` (``-``: ``stream``,
    standard error by default) in format ``kind``. The handler set up by an earlier
    call is replaced; handlers a program added itself are kept."""
    handler: logging.Handler
    if log_file == "-":
        handler = Holding(stream or sys.stderr)
    else:
        handler = LogFile(log_file, int(max_mib * 1024 * 1024), backups,
                          follow_stderr=_is_stderr(log_file))
    handler.setFormatter(formatter(kind))
    handler.set_name("taskyard-setup")
    root = logging.getLogger(LOGGER)
    for earlier in [h for h in root.handlers if h.get_name() == "taskyard-setup"]:
        root.removeHandler(earlier)
        earlier.close()
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler


def _is_stderr(path: str) -> bool:
    """Whether standard error is this file (a daemonized server's is its log)."""
    try:
        a, b = os.fstat(2), os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
