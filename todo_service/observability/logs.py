"""Structured logs: every record of the process, ours and the libraries', through one handler.

:func:`configure_logging` (first thing in ``create_app``) puts one :class:`LogHandler` on the root
logger: JSON lines (msgspec) or one readable console line per record, on stderr, so a CLI
command's own output on stdout stays clean. The root logger has that handler and no other: each
call replaces what was there, so the factory may run any number of times per process (CLI
discovery, then the server; the tests) without stacking handlers. Console handlers of libraries
(uvicorn's, SQLAlchemy's ``echo``) are removed so their records reach ours; ``uvicorn.access`` is
left without a handler, which turns uvicorn's access log off (``todo-service run`` cannot pass
``--no-access-log``): ours replaces it.
This module is ``logs``, not ``logging``: ruff's A005 refuses a module that shadows the stdlib.

Inside a request every record carries ``request_id``, ``trace_id``, ``span_id``, ``route`` (the
path template) and ``user_id``: the transport's front door, right after the request id (before
authentication, rate limits, metrics, the handler) keeps the request's ASGI scope in a context
variable, read when a record is written. Trace ids come from a function passed in
(``create_app`` passes ``telemetry.current_trace_ids``), "no trace" by default.

The access log (logger ``todo_service.access``) is written by a ``before_send`` hook when the
response starts: one line per request, unknown-route 404s and 405s included (the router answers
those before any middleware runs: their ``duration_ms`` is null, and their ``route`` too). No
header, query string or body is ever logged; :func:`redact` scrubs bearer tokens, JWTs,
``password=``-like values and SQL parameters from every message and traceback as a second line of
defence; ``DB_ECHO`` shows statements, never their values. Lines are written synchronously (a
write and a flush each, 10 to 20 µs): no queue thread to lose the last lines at exit.

The access line is built once: the hook makes its whole line (every field above, in order) and,
when our handler is the only one the record would reach, writes it to that handler directly (no
LogRecord, no dispatch); otherwise a record carries the line and the handler only serialises it.

(Over 300 lines: the handler, the library loggers it adopts and the request side share the
record's fields and are read together.)
"""

from __future__ import annotations

import logging
import sys
import time
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO, TypeAlias

import msgspec
from litestar.logging.config import BaseLoggingConfig
from litestar.plugins import InitPlugin

from todo_service.core.request_context import REQUEST_ID_KEY, ClientAddress, request_id_of
from todo_service.observability.redaction import redact

if TYPE_CHECKING:
    from collections.abc import Callable

    from litestar.config.app import AppConfig
    from litestar.types import Message, Scope
    from litestar.types.callable_types import GetLogger

    from todo_service.core.settings import Settings

__all__ = ("ACCESS_LOGGER", "LogHandler", "RequestLogging", "TraceIds", "configure_logging", "in_request")

TraceIds: TypeAlias = "Callable[[], tuple[str, str] | None]"
"""Returns the current ``(trace_id, span_id)`` in hex, or None outside any span (``telemetry.current_trace_ids``)."""

ACCESS_LOGGER = "todo_service.access"
_SCOPE_ATTR = "log_scope"  # a record's request, when logged where the context variable is not set
_LINE_ATTR = "log_line"  # a record's complete line, built where it was logged (the access line)
_STARTED = "log_started"  # scope state: perf_counter() when the first middleware saw the request
_MAX_PATH = 200
_current_request: ContextVar[Scope | None] = ContextVar("todo_service_log_request", default=None)
_access = logging.getLogger(ACCESS_LOGGER)


def _message(record: logging.LogRecord) -> str:
    # SQLAlchemy's echo (DB_ECHO) logs each statement's values in a record of their own: hide them.
    if record.msg == "[%s] %r" and record.name.startswith("sqlalchemy.engine") and isinstance(record.args, tuple):
        return f"[{record.args[0]}] [parameters hidden]"
    return record.getMessage()


def no_trace() -> None:
    """The default trace reader: no tracing."""


def in_request(scope: Scope) -> dict[str, Any]:
    """``extra=`` for a record about ``scope`` logged outside the request middleware (app-level handlers)."""
    return {_SCOPE_ATTR: scope}


class LogHandler(logging.Handler):
    """Writes each record as one JSON object per line, or one readable line (``console``)."""

    def __init__(self, *, json: bool, trace_ids: TraceIds, stream: TextIO | None) -> None:
        super().__init__()
        self.json = json
        self.trace_ids = trace_ids
        self._stream = stream  # None: sys.stderr as it is when writing (pytest's capture replaces it)
        self._encoder = msgspec.json.Encoder(enc_hook=str)
        self._exceptions = logging.Formatter()

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        """The record as the flat mapping that is written (an access record brings its own, complete)."""
        if (line := record.__dict__.get(_LINE_ATTR)) is not None:
            return line  # type: ignore[no-any-return]
        fields: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(_message(record)),
        }
        scope = record.__dict__.get(_SCOPE_ATTR) or _current_request.get()
        if scope is not None:
            state = scope.get("state", {})
            user_id = getattr(scope.get("user"), "user_id", None)
            fields["request_id"] = state.get(REQUEST_ID_KEY)
            fields["route"] = scope.get("path_template")
            fields["user_id"] = None if user_id is None else str(user_id)
        ids = self.trace_ids()
        if ids is not None or scope is not None:
            fields["trace_id"], fields["span_id"] = ids or (None, None)
        if record.exc_info:
            fields["exception"] = redact(self._exceptions.formatException(record.exc_info))
        if record.stack_info:
            fields["stack"] = redact(record.stack_info)
        return fields

    def render(self, record: logging.LogRecord) -> str:
        """One line for ``record`` (console: plus its traceback, indented, below), without the newline."""
        return self.render_fields(self.fields(record))

    def render_fields(self, written: dict[str, Any]) -> str:
        """One line for a record's fields (see :meth:`fields`), without the newline."""
        if self.json:
            return self._encoder.encode(written).decode()
        fields = dict(written)  # taken apart below
        stamp = fields.pop("time").isoformat(timespec="milliseconds").replace("+00:00", "Z")
        line = f"{stamp} {fields.pop('level'):<8} {fields.pop('logger')}: {fields.pop('message')}"
        trace = [f"    {text}" for key in ("exception", "stack") for text in fields.pop(key, "").splitlines()]
        if context := " ".join(f"{key}={value}" for key, value in fields.items() if value is not None):
            line = f"{line}  [{context}]"
        return "\n".join([line, *trace])

    def write_line(self, line: dict[str, Any]) -> None:
        """Write a line built by its logger (the access line), as :meth:`emit` would, under the handler's lock."""
        text = self.render_fields(line) + "\n"
        self.acquire()
        try:
            stream = self._stream or sys.stderr
            stream.write(text)
            stream.flush()
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001  (as emit: logging must never break the caller)
            self.handleError(logging.makeLogRecord({"name": line.get("logger"), "msg": line.get("message")}))
        finally:
            self.release()

    def emit(self, record: logging.LogRecord) -> None:
        """Write the record and flush (the handler's lock is held)."""
        try:
            stream = self._stream or sys.stderr
            stream.write(self.render(record) + "\n")
            stream.flush()
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001  (logging must never break the caller; the stdlib's way)
            self.handleError(record)


def _is_console(handler: logging.Handler) -> bool:
    stream = getattr(handler, "stream", None)
    consoles = (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)
    return isinstance(handler, logging.StreamHandler) and any(stream is console for console in consoles)


def _adopt_library_loggers() -> None:
    """Send libraries' records to the root handler: drop their console handlers, let them propagate.

    A ``NullHandler`` takes a dropped handler's place: SQLAlchemy adds its console handler again to
    a logger left without one (``echo=True``, each time an engine with options is derived).
    """
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger) and (console := [h for h in logger.handlers if _is_console(h)]):
            for handler in console:
                logger.removeHandler(handler)
            if not logger.handlers:
                logger.addHandler(logging.NullHandler())
            logger.propagate = True
    for name in ("uvicorn", "uvicorn.error"):  # uvicorn pins INFO: let LOG_LEVEL decide
        logging.getLogger(name).setLevel(logging.NOTSET)
    # uvicorn logs access only when this logger has a handler (checked per connection).
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.handlers.clear()
    uvicorn_access.propagate = False


def configure_logging(
    settings: Settings,
    *,
    trace_ids: TraceIds = no_trace,
    stream: TextIO | None = None,
    ensure_request_id: Callable[[Scope], str | None] = request_id_of,
) -> RequestLogging:
    """Install (or replace) the process's one log handler from ``LOG_LEVEL`` and ``LOG_FORMAT``.

    ``ensure_request_id`` gives a request its id (the transport layer's, which makes one when the
    client sent none); by default the id already in the scope is read.

    Returns:
        The request side, a plugin (the access log, Litestar's logging) with the request context (enter/leave).
    """
    root = logging.getLogger()
    handler = LogHandler(json=settings.effective_log_format == "json", trace_ids=trace_ids, stream=stream)
    for old in root.handlers[:]:  # the root logger is ours alone, as Litestar's LoggingConfig had it
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    # No record field of ours reads the process, thread or multiprocessing names: skip looking them
    # up for every record (the logging HOWTO's "Optimization" switches).
    logging.logProcesses = logging.logThreads = logging.logMultiprocessing = False
    # aiosqlite's DEBUG records print every statement's values (emails, password and token hashes).
    logging.getLogger("aiosqlite").setLevel(max(logging.INFO, root.level))
    # Warnings (SQLAlchemy's among them) become records, not raw stderr. Off, then on: a second "on" does
    # nothing, even if ``warnings.showwarning`` was swapped since (``warnings.catch_warnings``).
    logging.captureWarnings(capture=False)
    logging.captureWarnings(capture=True)
    _adopt_library_loggers()
    return RequestLogging(ClientAddress(settings.trusted_proxies), ensure_request_id, trace_ids, handler)


class _LitestarLogging(BaseLoggingConfig):
    """Litestar's loggers (``app.logger``, ``request.logger``) are plain ones that reach our handler."""

    def __init__(self) -> None:
        self.log_exceptions = "never"  # our exception handler logs every 5xx once, with its traceback
        self.exception_logging_handler = None
        self.traceback_line_limit = -1
        self.disable_stack_trace: set[int | type[Exception]] = set()

    def configure(self) -> GetLogger:
        """Called while the app is built, after the engine exists: adopt SQLAlchemy's echo handler."""
        _adopt_library_loggers()
        return logging.getLogger

    @staticmethod
    def set_level(logger: logging.Logger, level: int) -> None:
        """Set a logger's level."""
        logger.setLevel(level)


class RequestLogging(InitPlugin):
    """The access log and the request log context of one app, as a plugin.

    It inserts no middleware: the transport's front door calls :meth:`enter` and :meth:`leave`.
    """

    def __init__(
        self,
        client_address: ClientAddress,
        ensure_request_id: Callable[[Scope], str | None],
        trace_ids: TraceIds = no_trace,
        handler: LogHandler | None = None,
    ) -> None:
        self.client_address = client_address
        self.ensure_request_id = ensure_request_id
        self.trace_ids = trace_ids
        self.handler = handler  # the process's handler, written to directly when it alone would see the line

    def _only_handler(self) -> LogHandler | None:
        """Our handler, when an access record would reach it and nothing else (no other handler or filter)."""
        handler, root = self.handler, logging.root
        if handler is None or _access.filters or handler.filters or handler.level > logging.INFO:
            return None
        if len(root.handlers) != 1 or root.handlers[0] is not handler:
            return None
        logger: logging.Logger | None = _access
        while logger is not None and logger is not root:
            if logger.handlers or not logger.propagate:
                return None
            logger = logger.parent
        return handler

    def enter(self, scope: Scope) -> Token[Scope | None]:
        """Start the request's clock and make its scope the context of every record it logs.

        The transport's front door calls it, right after the request id and the Host check, and
        :meth:`leave` once the request is done.
        """
        scope.setdefault("state", {})[_STARTED] = time.perf_counter()
        return _current_request.set(scope)

    def leave(self, token: Token[Scope | None]) -> None:
        """The request is done: its scope is no longer the log context."""
        _current_request.reset(token)

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        """The access line (a ``before_send`` hook) and Litestar's logging left to ours."""
        app_config.before_send.append(self.before_send)
        app_config.logging_config = _LitestarLogging()
        return app_config

    async def before_send(self, message: Message, scope: Scope) -> None:
        """``before_send`` hook: the access line, once, when the response starts.

        The line is built once, whole: no caller lookup (the line is always this one), no second
        mapping, and the message is not scanned again for secrets (its parts are a method, the
        route template or the redacted path, and a status). When our handler alone would see it,
        it is written straight to it; otherwise a record carries it (the handler writes it as it
        is) through the logging module, to every handler and filter there is.
        """
        if message["type"] != "http.response.start" or not _access.isEnabledFor(logging.INFO):
            return
        # The same id the response header carries, whichever hook runs first.
        request_id = self.ensure_request_id(scope)
        started = scope.get("state", {}).get(_STARTED)
        path = redact(scope.get("path", ""))
        if len(path) > _MAX_PATH:
            path = path[:_MAX_PATH] + "..."
        method, status, route = scope.get("method", ""), message["status"], scope.get("path_template")
        message_text = f"{method} {route or path} {status}"
        now = time.time()
        user_id = getattr(scope.get("user"), "user_id", None)
        trace_id, span_id = self.trace_ids() or (None, None)
        line = {
            "time": datetime.fromtimestamp(now, UTC),
            "level": "INFO",
            "logger": ACCESS_LOGGER,
            "message": message_text,
            "request_id": request_id,
            "route": route,
            "user_id": None if user_id is None else str(user_id),
            "trace_id": trace_id,
            "span_id": span_id,
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": None if started is None else round((time.perf_counter() - started) * 1000, 3),
            "client_ip": self.client_address.of(scope),
        }
        if (handler := self._only_handler()) is not None:
            # Only our handler would see it: written straight away, without a LogRecord and the
            # logging module's dispatch (30-40 µs of a request's CPU in process, measured).
            handler.write_line(line)
            return
        record = _access.makeRecord(ACCESS_LOGGER, logging.INFO, __file__, 0, message_text, (), None)
        record.created, record.__dict__[_LINE_ATTR] = now, line
        _access.handle(record)
