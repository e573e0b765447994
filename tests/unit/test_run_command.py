"""``todo-service run`` as users start it: host and port from where people set them, the line that says
where the API is, the development key that survives restarts, and the schema's state."""

from __future__ import annotations

import logging
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from todo_service.cli import run, where_to_find
from todo_service.core.settings import Settings, SettingsError, development_key
from todo_service.system.schema import SchemaBehind, SchemaState

if TYPE_CHECKING:
    from collections.abc import Iterator

GOOD_SECRET = "9f2c4e1a7b3d8e6f0a5c2b9d4e7f1a3c6b8d0e2f4a6c8e0b"
ADDRESS_VARIABLES = ("HOST", "PORT", "LITESTAR_HOST", "LITESTAR_PORT", "WEB_CONCURRENCY")


# Host and port: the option, else HOST / PORT, else LITESTAR_HOST / LITESTAR_PORT, else the default


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ADDRESS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def options(*args: str) -> dict[str, object]:
    """What ``run`` would be called with (click parses the options and the environment; nothing runs)."""
    with run.make_context("run", list(args)) as context:
        return dict(context.params)


@pytest.mark.parametrize(
    ("environ", "args", "host", "port"),
    [
        ({}, (), "127.0.0.1", 8000),
        ({"PORT": "8080"}, (), "127.0.0.1", 8080),
        ({"LITESTAR_PORT": "8081"}, (), "127.0.0.1", 8081),
        ({"PORT": "8080", "LITESTAR_PORT": "8081"}, (), "127.0.0.1", 8080),
        ({"PORT": "8080"}, ("--port", "9000"), "127.0.0.1", 9000),
        ({"PORT": "8080"}, ("-p", "9001"), "127.0.0.1", 9001),
        ({"HOST": "0.0.0.0", "LITESTAR_HOST": "::1"}, (), "0.0.0.0", 8000),  # noqa: S104
        ({"LITESTAR_HOST": "::1"}, (), "::1", 8000),
        ({"HOST": "0.0.0.0"}, ("--host", "127.0.0.2"), "127.0.0.2", 8000),  # noqa: S104
        ({"PORT": ""}, (), "127.0.0.1", 8000),  # empty counts as unset
    ],
)
def test_the_flag_wins_over_port_which_wins_over_the_default(
    clean_environment: pytest.MonkeyPatch, environ: dict[str, str], args: tuple[str, ...], host: str, port: int
) -> None:
    for name, value in environ.items():
        clean_environment.setenv(name, value)
    parsed = options(*args)
    assert (parsed["host"], parsed["port"]) == (host, port)
    assert parsed["reload"] is False
    assert parsed["migrate"] is False


def test_a_port_out_of_range_is_refused(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("PORT", "70000")
    with pytest.raises(Exception, match="70000"):
        options()


def test_reload_and_migrate_are_flags(clean_environment: pytest.MonkeyPatch) -> None:
    parsed = options("--reload", "--migrate", "-W", "3")
    assert (parsed["reload"], parsed["migrate"], parsed["web_concurrency"]) == (True, True, 3)


def test_run_does_not_build_the_app_in_the_command_process(tmp_path: Path) -> None:
    """Litestar's CLI builds the app to list its commands; ``run`` goes around it (its workers build the app)."""
    script = (
        "import sys\n"
        "sys.argv = ['todo-service', 'run', '--help']\n"
        "from todo_service.cli import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('APP MODULE LOADED' if 'todo_service.app' in sys.modules else 'NO APP MODULE')\n"
    )
    result = subprocess.run(  # noqa: S603  (this interpreter)
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "--migrate" in result.stdout
    assert "--reload" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "NO APP MODULE"


# The line that says where the API is


@pytest.mark.parametrize(
    ("host", "port", "docs", "line"),
    [
        (
            "127.0.0.1",
            8000,
            True,
            "todo-service listening on http://127.0.0.1:8000 - docs at http://127.0.0.1:8000/api/docs",
        ),
        (
            "0.0.0.0",  # noqa: S104
            8080,
            True,
            (
                "todo-service listening on http://127.0.0.1:8080 (every address of this machine)"
                " - docs at http://127.0.0.1:8080/api/docs"
            ),
        ),
        (
            "::",
            8000,
            True,
            (
                "todo-service listening on http://[::1]:8000 (every address of this machine)"
                " - docs at http://[::1]:8000/api/docs"
            ),
        ),
        ("::1", 9000, False, "todo-service listening on http://[::1]:9000 - docs off (DOCS_ENABLED=false)"),
        ("api.local", 80, True, "todo-service listening on http://api.local:80 - docs at http://api.local:80/api/docs"),
    ],
)
def test_the_start_line_says_where_the_api_and_the_docs_are(host: str, port: int, docs: bool, line: str) -> None:
    assert where_to_find(host, port, docs=docs) == line


# The development key


@pytest.fixture
def fresh_keys() -> Iterator[None]:
    """Each test reads or makes its key as a new process would."""
    development_key.cache_clear()
    yield
    development_key.cache_clear()


def settings(**environ: str) -> Settings:
    return Settings.from_env(environ, env_file=None)


def key_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno == logging.WARNING and "SECRET_KEY is not set" in r.getMessage()]


@pytest.mark.usefixtures("fresh_keys")
def test_the_development_key_is_made_once_private_and_kept(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "state" / "dev-key"
    caplog.set_level(logging.WARNING, logger="todo_service.core.settings")
    first = settings(DEV_SECRET_KEY_FILE=str(path)).signing_key
    again = settings(DEV_SECRET_KEY_FILE=str(path), ACCESS_TOKEN_EXPIRE_MINUTES="5").signing_key

    assert first == again
    assert len(first) >= 32
    assert path.read_text().strip() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["dev-key"]  # no draft left behind
    warnings = key_warnings(caplog)
    assert len(warnings) == 1  # once per process
    assert f"made in {path}" in warnings[0].getMessage()

    development_key.cache_clear()  # a restart: the same key, read from the file
    caplog.clear()
    assert settings(DEV_SECRET_KEY_FILE=str(path)).signing_key == first
    assert f"from {path}" in key_warnings(caplog)[0].getMessage()


@pytest.mark.usefixtures("fresh_keys")
def test_the_default_file_is_in_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    key = settings().signing_key
    assert (tmp_path / ".dev-secret-key").read_text().strip() == key


def test_processes_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    """Workers started without the file reach for the key at the same moment: one key for all."""
    path = tmp_path / "dev-key"
    start_at = time.time() + 5  # each process imports first; then they all make the key at once
    script = (
        "import sys, time\n"
        "from todo_service.core.settings import Settings\n"
        "settings = Settings.from_env({'DEV_SECRET_KEY_FILE': sys.argv[1]}, env_file=None)\n"
        "time.sleep(max(0.0, float(sys.argv[2]) - time.time()))\n"
        "print(settings.signing_key)\n"
    )
    processes = [
        subprocess.Popen(  # noqa: S603  (this interpreter)
            [sys.executable, "-c", script, str(path), str(start_at)],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    outputs = [process.communicate(timeout=120) for process in processes]
    assert [process.returncode for process in processes] == [0] * 6, outputs
    assert {stdout.strip() for stdout, _ in outputs} == {path.read_text().strip()}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dev-key"]  # no draft left behind


@pytest.mark.usefixtures("fresh_keys")
def test_a_file_without_a_usable_key_stops_with_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "dev-key"
    path.write_text("short\n")
    with pytest.raises(SettingsError, match=r"DEV_SECRET_KEY_FILE: .*dev-key holds no usable key; delete it"):
        _ = settings(DEV_SECRET_KEY_FILE=str(path)).signing_key


@pytest.mark.usefixtures("fresh_keys")
def test_where_no_file_can_be_kept_a_key_for_this_process_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    caplog.set_level(logging.WARNING, logger="todo_service.core.settings")
    key = settings(DEV_SECRET_KEY_FILE=str(blocker / "dev-key")).signing_key  # a directory that cannot exist
    assert len(key) >= 32
    assert key == settings(DEV_SECRET_KEY_FILE=str(blocker / "dev-key")).signing_key  # still one per process
    [warning] = key_warnings(caplog)
    assert "for this process only" in warning.getMessage()


@pytest.mark.usefixtures("fresh_keys")
def test_production_never_uses_the_development_key(tmp_path: Path) -> None:
    path = tmp_path / "dev-key"
    with pytest.raises(SettingsError, match="SECRET_KEY: required when APP_ENV=production"):
        settings(APP_ENV="production", DEV_SECRET_KEY_FILE=str(path))
    production = settings(APP_ENV="production", SECRET_KEY=GOOD_SECRET, DEV_SECRET_KEY_FILE=str(path))
    assert production.signing_key == GOOD_SECRET
    assert not path.exists()


# The schema's state


def state(current: set[str], heads: set[str] | None = None) -> SchemaState:
    return SchemaState(
        current=frozenset(current), heads=frozenset(heads or {"0003"}), known=frozenset({"0001", "0002", "0003"})
    )


def test_a_database_never_migrated_is_behind() -> None:
    assert state(set()).behind
    assert state(set()).describe() == "never migrated, the code needs 0003"


def test_a_database_at_an_older_revision_is_behind() -> None:
    assert state({"0001"}).behind
    assert state({"0001"}).describe() == "at 0001, the code needs 0003"
    message = str(SchemaBehind(state({"0001"})))
    assert message == "the database schema is at 0001, the code needs 0003: run `todo-service database upgrade`"


def test_a_database_at_the_head_is_not_behind() -> None:
    assert not state({"0003"}).behind


def test_a_database_a_newer_release_migrated_is_not_behind() -> None:
    """During a rolling update the old replicas keep serving a schema migrated ahead of them."""
    assert not state({"0004"}).behind
