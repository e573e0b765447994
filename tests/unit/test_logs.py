"""The log handler, the redaction filter and the once-per-process configuration (observability/logs.py)."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
import uuid
import warnings
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from tests.factories import make_settings
from todo_service.observability.logs import ACCESS_LOGGER, LogHandler, configure_logging, in_request
from todo_service.observability.redaction import redact

if TYPE_CHECKING:
    from todo_service.observability.logs import TraceIds

# They reconfigure the process's logging (tests/conftest.py puts it back).
pytestmark = pytest.mark.usefixtures("preserved_logging")
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
CONSOLE_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR|CRITICAL) +[\w.]+: ")
TRACE = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")


def configure(fmt: str = "json", level: str = "INFO", trace_ids: TraceIds | None = None) -> io.StringIO:
    stream = io.StringIO()
    settings = make_settings("sqlite+aiosqlite:///unused.db", log_format=fmt, log_level=level)
    if trace_ids is None:
        configure_logging(settings, stream=stream)
    else:
        configure_logging(settings, stream=stream, trace_ids=trace_ids)
    return stream


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def request_scope(**overrides: Any) -> dict[str, Any]:
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "path": "/api/v1/users/me",
        "path_template": "/api/v1/users/me",
        "state": {"request_id": "req-42"},
    }
    scope.update(overrides)
    return scope


def fail(error: Exception) -> None:
    raise error


class FakeCaller:
    def __init__(self, user_id: uuid.UUID) -> None:
        self.user_id = user_id


@pytest.mark.parametrize(
    ("text", "secret", "kept"),
    [
        ('{"email": "a@example.com", "password": "Hunter-2-secret"}', "Hunter-2-secret", '"email": "a@example.com"'),
        ("{'new_password': 'Hunter-2-secret', 'x': 1}", "Hunter-2-secret", "'x': 1"),
        ("Authorization: Bearer abc.def-123", "abc.def-123", "Authorization: "),
        ("headers: authorization=Basic dXNlcjpwYXNz, accept=json", "dXNlcjpwYXNz", "accept=json"),
        ("sent Bearer tok_3f9a8b7c6d5e in a header", "tok_3f9a8b7c6d5e", "in a header"),
        ("GET /cb?access_token=tok3f9a8b7c&page=2", "tok3f9a8b7c", "&page=2"),
        ('{"refresh_token":"rt-9f8e7d6c5b4a"}', "rt-9f8e7d6c5b4a", '{"refresh_token":'),
        (f"token in a path /api/v1/{JWT}/x", JWT, "/x"),
        ("cookie=session-value-123; Path=/", "session-value-123", "; Path=/"),
        ("SECRET_KEY=abcdefghijkl", "abcdefghijkl", "SECRET_KEY="),
        (
            "(IntegrityError) UNIQUE failed\n[SQL: INSERT INTO users]\n[parameters: ('a@b.c', '$argon2id$v=19')]",
            "$argon2id$v=19",
            "[SQL: INSERT INTO users]",
        ),
    ],
)
def test_redact_removes_the_secret_and_keeps_the_rest(text: str, secret: str, kept: str) -> None:
    redacted = redact(text)
    assert secret not in redacted
    assert "[REDACTED]" in redacted
    assert kept in redacted


@pytest.mark.parametrize(
    "text",
    ["GET /api/v1/users/{user_id}/tasks 200", "password changed for 3 sessions", "pruned 0 expired login sessions"],
)
def test_redact_leaves_ordinary_messages_alone(text: str) -> None:
    assert redact(text) == text


def test_a_json_record_is_one_line_with_the_standard_fields() -> None:
    stream = configure()
    before = datetime.now(UTC)
    logging.getLogger("todo_service.example").warning("disk at %d%%", 91)

    [line] = stream.getvalue().splitlines()
    record = json.loads(line)
    assert set(record) == {"time", "level", "logger", "message"}  # outside a request and a trace
    assert (record["level"], record["logger"], record["message"]) == ("WARNING", "todo_service.example", "disk at 91%")
    assert record["time"].endswith("Z")
    stamped = datetime.fromisoformat(record["time"])
    assert before - timedelta(seconds=1) <= stamped <= datetime.now(UTC) + timedelta(seconds=1)


def test_an_exception_is_a_field_with_the_traceback_not_extra_lines() -> None:
    stream = configure()
    try:
        fail(ValueError("boom with password=Hunter-2-secret"))
    except ValueError:
        logging.getLogger("todo_service.example").exception("failed")

    [record] = json_lines(stream)
    assert record["message"] == "failed"
    assert record["exception"].startswith("Traceback (most recent call last):")
    assert "ValueError: boom with password=[REDACTED]" in record["exception"]
    assert "Hunter-2-secret" not in stream.getvalue()


def test_secrets_in_messages_and_arguments_are_redacted() -> None:
    stream = configure()
    logging.getLogger("some.library").info("calling with headers %s", {"Authorization": f"Bearer {JWT}"})

    [record] = json_lines(stream)
    assert JWT not in stream.getvalue()
    assert "Bearer" not in stream.getvalue()
    assert record["message"] == "calling with headers {'Authorization': [REDACTED]}"


def test_the_level_filters_records_of_every_logger() -> None:
    stream = configure(level="WARNING")
    logging.getLogger("uvicorn.error").info("Started server process [1]")
    logging.getLogger("todo_service.example").info("not shown")
    logging.getLogger("uvicorn.error").warning("shown")
    logging.getLogger("todo_service.example").error("shown too")

    assert [(r["logger"], r["message"]) for r in json_lines(stream)] == [
        ("uvicorn.error", "shown"),
        ("todo_service.example", "shown too"),
    ]


def test_debug_level_lets_debug_records_through() -> None:
    stream = configure(level="DEBUG")
    logging.getLogger("todo_service.example").debug("details")
    assert [r["level"] for r in json_lines(stream)] == ["DEBUG"]


def test_a_record_about_a_request_carries_its_fields_and_the_trace() -> None:
    stream = configure(trace_ids=lambda: TRACE)
    user_id = uuid.uuid4()
    scope = request_scope(user=FakeCaller(user_id))
    logging.getLogger("todo_service.http.errors").warning("failed", extra=in_request(scope))  # type: ignore[arg-type]

    [record] = json_lines(stream)
    assert record["request_id"] == "req-42"
    assert record["route"] == "/api/v1/users/me"
    assert record["user_id"] == str(user_id)
    assert (record["trace_id"], record["span_id"]) == TRACE


def test_request_fields_are_null_when_unknown() -> None:
    stream = configure()
    scope = request_scope(path_template=None, state={})
    logging.getLogger(ACCESS_LOGGER).info("GET /x 404", extra=in_request(scope))  # type: ignore[arg-type]

    [record] = json_lines(stream)
    assert {key: record[key] for key in ("request_id", "route", "user_id", "trace_id", "span_id")} == dict.fromkeys(
        ("request_id", "route", "user_id", "trace_id", "span_id")
    )


def test_a_trace_outside_a_request_is_still_written() -> None:
    stream = configure(trace_ids=lambda: TRACE)
    logging.getLogger("todo_service.security.sessions").info("pruned 3 expired login sessions")

    [record] = json_lines(stream)
    assert (record["trace_id"], record["span_id"]) == TRACE
    assert "request_id" not in record


def test_console_lines_are_readable_with_the_context_in_brackets() -> None:
    stream = configure(fmt="console")
    scope = request_scope(user=FakeCaller(uuid.UUID(int=7)))
    logging.getLogger("todo_service.example").info("hello", extra=in_request(scope))  # type: ignore[arg-type]
    try:
        fail(KeyError("missing"))
    except KeyError:
        logging.getLogger("todo_service.example").exception("broken")

    lines = stream.getvalue().splitlines()
    assert CONSOLE_LINE.match(lines[0]), lines[0]
    assert lines[0].endswith(
        "INFO     todo_service.example: hello  "
        "[request_id=req-42 route=/api/v1/users/me user_id=00000000-0000-0000-0000-000000000007]"
    )
    assert CONSOLE_LINE.match(lines[1]), lines[1]
    assert lines[1].endswith("ERROR    todo_service.example: broken")
    assert lines[2] == "    Traceback (most recent call last):"
    assert lines[-1] == "    KeyError: 'missing'"
    assert all(line.startswith("    ") for line in lines[2:])


def test_configuring_again_replaces_the_handler_instead_of_stacking() -> None:
    logging.getLogger().addHandler(logging.StreamHandler(sys.stderr))  # e.g. a logging.basicConfig() before
    first = configure()
    configure()
    last = configure(fmt="console")
    logging.getLogger("todo_service.example").warning("once")

    [handler] = logging.getLogger().handlers
    assert isinstance(handler, LogHandler)
    assert first.getvalue() == ""
    assert last.getvalue().count("once") == 1


def test_library_console_handlers_are_adopted_and_uvicorn_access_is_silenced() -> None:
    # As uvicorn's LOGGING_CONFIG and SQLAlchemy's echo=True leave them before the app is built.
    uvicorn = logging.getLogger("uvicorn")
    uvicorn_access = logging.getLogger("uvicorn.access")
    engine_logger = logging.getLogger("sqlalchemy.engine.Engine")
    for logger, stream in ((uvicorn, sys.stderr), (uvicorn_access, sys.stdout), (engine_logger, sys.stdout)):
        logger.addHandler(logging.StreamHandler(stream))
        logger.propagate = False
    uvicorn.setLevel(logging.INFO)
    own_file = logging.StreamHandler(io.StringIO())  # not a console: somebody's deliberate choice, kept
    engine_logger.addHandler(own_file)
    try:
        stream = configure()
        assert all(type(h) is logging.NullHandler for h in uvicorn.handlers)  # SQLAlchemy re-adds to an empty one
        assert uvicorn.propagate
        assert uvicorn.level == logging.NOTSET
        assert [h for h in engine_logger.handlers if type(h) is not logging.NullHandler] == [own_file]
        assert not uvicorn_access.hasHandlers()  # uvicorn writes no access line then

        logging.getLogger("uvicorn.error").info("Application startup complete.")
        engine_logger.warning("SELECT 1")
        logging.getLogger("uvicorn.access").info("127.0.0.1 - GET / 200")
        assert [(r["logger"], r["message"]) for r in json_lines(stream)] == [
            ("uvicorn.error", "Application startup complete."),
            ("sqlalchemy.engine.Engine", "SELECT 1"),
        ]
    finally:
        engine_logger.removeHandler(own_file)
        engine_logger.propagate = True


def test_warnings_become_json_records() -> None:
    with warnings.catch_warnings():  # pytest turns warnings into errors; here one is only shown
        warnings.simplefilter("always")
        stream = configure()
        warnings.warn("this API is going away", DeprecationWarning, stacklevel=1)

    [record] = json_lines(stream)
    assert record["logger"] == "py.warnings"
    assert "DeprecationWarning: this API is going away" in record["message"]


def test_the_handler_writes_to_the_current_stderr_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(make_settings("sqlite+aiosqlite:///unused.db", log_format="json", log_level="INFO"))
    logging.getLogger("todo_service.example").info("to stderr")

    captured = capsys.readouterr()
    assert captured.out == ""
    assert json.loads(captured.err)["message"] == "to stderr"


class Collecting(logging.Handler):
    """Another handler on the root logger: keeps what it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def access_settings(fmt: str = "json") -> Any:
    return make_settings("sqlite+aiosqlite:///unused.db", log_format=fmt, log_level="INFO")


@pytest.mark.parametrize("fmt", ["json", "console"])
async def test_the_access_line_is_the_same_whether_written_directly_or_through_logging(fmt: str) -> None:
    scope: Any = request_scope(client=("203.0.113.9", 4000), user=None)
    start: Any = {"type": "http.response.start", "status": 200, "headers": []}
    body: Any = {"type": "http.response.body", "body": b""}
    lines: list[str] = []
    for other_handler in (False, True):
        stream = io.StringIO()
        request_logging = configure_logging(access_settings(fmt), stream=stream, trace_ids=lambda: TRACE)
        collecting = Collecting()
        if other_handler:  # the access record must reach it: the line goes through the logging module
            logging.getLogger().addHandler(collecting)
        await request_logging.before_send(start, scope)
        await request_logging.before_send(body, scope)  # no line
        lines.append(stream.getvalue())
        assert [record.getMessage() for record in collecting.records] == (
            ["GET /api/v1/users/me 200"] if other_handler else []
        )

    direct, through_logging = lines
    assert direct.count("\n") == through_logging.count("\n") == 1
    if fmt == "json":
        first, second = json.loads(direct), json.loads(through_logging)
        assert first.pop("time") <= second.pop("time")
        assert (
            first
            == second
            == {
                "level": "INFO",
                "logger": ACCESS_LOGGER,
                "message": "GET /api/v1/users/me 200",
                "request_id": "req-42",
                "route": "/api/v1/users/me",
                "user_id": None,
                "trace_id": TRACE[0],
                "span_id": TRACE[1],
                "method": "GET",
                "path": "/api/v1/users/me",
                "status": 200,
                "duration_ms": None,
                "client_ip": "203.0.113.9",
            }
        )
    else:
        assert CONSOLE_LINE.match(direct)
        assert direct.split(" ", 1)[1] == through_logging.split(" ", 1)[1]
        assert f"INFO     {ACCESS_LOGGER}: GET /api/v1/users/me 200  [request_id=req-42 " in direct


async def test_the_access_line_goes_through_logging_when_a_filter_could_drop_it() -> None:
    stream = io.StringIO()
    request_logging = configure_logging(access_settings(), stream=stream)
    dropped = logging.Filter("nothing.of.ours")  # refuses every record of other loggers
    logging.getLogger(ACCESS_LOGGER).addFilter(dropped)
    try:
        start: Any = {"type": "http.response.start", "status": 204}
        scope: Any = request_scope()
        await request_logging.before_send(start, scope)
    finally:
        logging.getLogger(ACCESS_LOGGER).removeFilter(dropped)
    assert stream.getvalue() == ""


async def test_a_handler_on_the_access_logger_gets_the_record_and_ours_the_line() -> None:
    stream = io.StringIO()
    request_logging = configure_logging(access_settings(), stream=stream)
    collecting = Collecting()
    logging.getLogger(ACCESS_LOGGER).addHandler(collecting)
    start: Any = {"type": "http.response.start", "status": 201}
    scope: Any = request_scope()
    try:
        await request_logging.before_send(start, scope)
    finally:
        logging.getLogger(ACCESS_LOGGER).removeHandler(collecting)
    assert [record.getMessage() for record in collecting.records] == ["GET /api/v1/users/me 201"]
    assert json_lines(stream)[0]["status"] == 201


async def test_a_failing_stream_does_not_fail_the_request(capsys: pytest.CaptureFixture[str]) -> None:
    class Broken(io.StringIO):
        def write(self, text: str) -> int:  # noqa: ARG002
            raise OSError("disk full")

    request_logging = configure_logging(access_settings(), stream=Broken())
    start: Any = {"type": "http.response.start", "status": 200}
    scope: Any = request_scope()

    await request_logging.before_send(start, scope)  # written directly: the error is reported, not raised

    assert "disk full" in capsys.readouterr().err
