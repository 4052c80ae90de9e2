"""Structured (JSON) logs without personal data.

One JSON object per line, with the request id of the request being served. Exception messages are
never written: database and validation errors quote submitted values, which can be personal data. (The one
exception: a failed start-up's reason, written by the service itself; see `screening.log_redaction.Reason`.)
A logged exception carries its type and its frames (file, line, function) only, in the JSON lines and in the
text lines alike (SCREENING_LOG_JSON=false).
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
# The request id in the ASGI scope too: the handler of an unhandled error (a 500) runs in Starlette's outermost
# middleware, after the request middleware has returned and reset `request_id_var`.
REQUEST_ID_KEY = "screening.request_id"

# Extra fields a call may attach with `extra={...}`; anything else is dropped, so a careless
# `extra={"body": ...}` cannot leak into the logs.
ALLOWED_EXTRA = ("method", "route", "status", "duration_ms", "worker_pid", "event")


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def _frames(tb: Any) -> list[str]:
    """A logged exception's frames, the last ten, as `file:line:function`: what both formats write of a traceback."""
    return [f"{f.filename}:{f.lineno}:{f.name}" for f in traceback.extract_tb(tb)][-10:]


# One encoder for every line: json.dumps with any option builds a new JSONEncoder per call.
_encode = json.JSONEncoder(separators=(",", ":"), default=str).encode


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key in ALLOWED_EXTRA:
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            exc_type, _exc, tb = record.exc_info
            entry["exc_type"] = exc_type.__name__
            entry["frames"] = _frames(tb)
        return _encode(entry)


class ExceptionArgs(logging.Filter):
    """A library's line that quotes an exception as an argument writes the exception's message: psycopg's "error
    ignored terminating %r: %s" when a pipeline ends after a failure, psycopg_pool's "error connecting in %r: %s". A
    database error's message can quote a row ("Failing row contains (...)" in a constraint's DETAIL), so on the
    service's handler such an argument is written as its type, as the service's own lines name an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(map(_named, record.args))
        elif isinstance(record.args, dict):
            record.args = {key: _named(value) for key, value in record.args.items()}
        return True


def _named(value: object) -> object:
    return type(value).__name__ if isinstance(value, BaseException) else value


# The service handler's filters, in order: `log_config` and `command_logger` install them, and `RequestLog` writes
# its line itself only where these alone are on the handler (ExceptionArgs leaves a request line as it is).
HANDLER_FILTERS: tuple[type[logging.Filter], ...] = (RequestIdFilter, ExceptionArgs)


_TRACEBACK = "Traceback (most recent call last):"


class TracebackText(logging.Filter):
    """uvicorn logs a failed lifespan (the app's start-up or shut-down raised) as a message: the text that Starlette
    made with `traceback.format_exc()`, every exception's message in it. A message there can quote data (a
    connection string, a row that broke a constraint in a data migration). The app's lifespan has logged the
    exception already, as the service logs any (its type and frames, and the words of a `Reason`), so this filter,
    on uvicorn's error logger, keeps uvicorn's line and withholds the text."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and _TRACEBACK in record.msg:  # an exception group's text nests it in a box
            record.msg, record.args = "the application's lifespan failed (its traceback withheld: it quotes messages)", ()
        return True


class JsonLines(logging.StreamHandler):  # type: ignore[type-arg]  # (generic over its stream in typeshed)
    """The service's log handler when it logs JSON (`log_config`): a StreamHandler, named so that `RequestLog`
    can tell the set-up it writes ready-made lines for."""


class RequestLog:
    """The request log: one line per request, as `logger.info("request", extra=...)` formatted by `JsonFormatter`
    would write it.

    Every request writes one, and through the logging module the line cost a screen read about an eighth of its
    CPU in-process (a LogRecord of some thirty attributes, the logger's and the handler's dispatch, a dict
    encoded per line). So where the logger's records would reach one handler only, the service's own
    `JsonLines` with `JsonFormatter` (what `log_config` sets up), the line is made from a template and written
    to that handler's stream under its lock. In any other set-up (a test's capture handler, the text format, a
    filter of someone else's) it goes through the logger, so what reaches the handlers is what always did.
    """

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self._name = _encode(logger.name)
        self._strings: dict[str, str] = {}  # methods and route templates, JSON-encoded

    def __call__(self, request_id: str, method: str, route: str, status: int, duration_ms: float, pid: int) -> None:
        logger = self.logger
        if not logger.isEnabledFor(logging.INFO):
            return
        handler = self._sole_handler()
        if handler is None:
            logger.info("request", extra={"request_id": request_id, "method": method, "route": route, "status": status,
                                          "duration_ms": duration_ms, "worker_pid": pid})
            return
        ts = datetime.fromtimestamp(time.time(), UTC).isoformat(timespec="milliseconds")
        # The keys in JsonFormatter's order; the request id is the one RequestIdFilter would set.
        line = (f'{{"ts":"{ts}","level":"info","logger":{self._name},"msg":"request",'
                f'"request_id":{_encode(request_id_var.get() or request_id)},"method":{self._string(method)},'
                f'"route":{self._string(route)},"status":{status:d},"duration_ms":{float(duration_ms)!r},'
                f'"worker_pid":{pid:d}}}\n')
        with handler.lock:  # type: ignore[union-attr]  # created with the handler
            try:
                handler.stream.write(line)
                handler.stream.flush()
            except Exception:  # noqa: BLE001 - as StreamHandler.emit: a failed write is reported, not raised
                handler.handleError(logging.makeLogRecord({"msg": "request"}))

    def _string(self, value: str) -> str:
        encoded = self._strings.get(value)
        if encoded is None:
            encoded = _encode(value)
            if len(self._strings) < 512:  # route templates and methods; a client's odd method is not kept
                self._strings[value] = encoded
        return encoded

    def _sole_handler(self) -> JsonLines | None:
        """The one handler the logger's records reach, if it is a JsonLines with JsonFormatter that lets INFO pass
        and filters with `HANDLER_FILTERS` alone; else None."""
        if self.logger.filters:
            return None
        found: logging.Handler | None = None
        current: logging.Logger | None = self.logger
        while current is not None:
            for handler in current.handlers:
                if found is not None:
                    return None
                found = handler
            current = current.parent if current.propagate else None
        if (type(found) is not JsonLines or type(found.formatter) is not JsonFormatter or found.level > logging.INFO
                or not all(type(f) in HANDLER_FILTERS for f in found.filters)):
            return None
        return found


def lean_records() -> None:
    """Stop the logging module gathering what these logs never show: the calling file and line (a walk up
    the stack), thread and process names. The logging HOWTO's "Optimization" section lists these switches;
    every request writes a line, and gathering them cost about a sixth of it (13.8 against 11.6 µs here)."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"  # with SCREENING_LOG_JSON=false


class TextFormatter(logging.Formatter):
    """The text line (SCREENING_LOG_JSON=false): logging's, except that an exception is written as the JSON line
    writes it, its type and its frames, never its message (logging's own formatter writes the whole traceback)."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        # logging keeps a record's traceback text once made, and another handler's formatter may have made it whole.
        kept, record.exc_text = record.exc_text, None
        try:
            return super().format(record)
        finally:
            record.exc_text = kept

    def formatException(self, ei: Any) -> str:
        exc_type, _exc, tb = ei
        return "\n".join([f"{exc_type.__name__} (its message withheld), in:", *(f"  {f}" for f in _frames(tb))])


def log_config(level: str = "INFO", json_format: bool = True) -> dict[str, Any]:
    """A `logging.config.dictConfig` for the service's, uvicorn's and gunicorn's loggers (given to `uvicorn.run`,
    or as gunicorn's `logconfig_dict`)."""
    formatter = {"()": "screening.ops.logging." + ("JsonFormatter" if json_format else "TextFormatter")}
    handler = {
        "class": "screening.ops.logging.JsonLines" if json_format else "logging.StreamHandler",
        "stream": "ext://sys.stderr",
        "formatter": "default",
        "filters": [f.__name__ for f in HANDLER_FILTERS],
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {f.__name__: {"()": f"{__name__}.{f.__name__}"} for f in (*HANDLER_FILTERS, TracebackText)},
        "formatters": {"default": formatter},
        "handlers": {"default": handler},
        "loggers": {
            "screening": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            # A failed lifespan's traceback, which uvicorn logs as text (its exceptions' messages in it).
            "uvicorn.error": {"level": level, "filters": [TracebackText.__name__]},
            # Request lines carry raw paths and query strings; the service writes its own request log.
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            # gunicorn's arbiter, with several workers (screening.ops.server).
            "gunicorn.error": {"handlers": ["default"], "level": level, "propagate": False},
            "gunicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
        "root": {"handlers": ["default"], "level": "WARNING"},
    }


def command_logger(name: str, level: str = "INFO", json_format: bool = True) -> logging.Logger:
    """A logger that writes to standard error as `log_config` has the service's write, without configuring logging
    for the process: for a command, which may run inside another program (a test's CliRunner)."""
    logger = logging.Logger(name, level)  # not registered with logging's manager: nothing global changes
    handler = JsonLines(sys.stderr) if json_format else logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_format else TextFormatter())
    for kind in HANDLER_FILTERS:
        handler.addFilter(kind())
    logger.addHandler(handler)
    return logger
