"""The ``todo-service`` command: Litestar's CLI bound to this app (``run``, ``database upgrade``, ...)."""

from __future__ import annotations

import os
import sys

from todo_service.settings import SettingsError

__all__ = ("main",)

APP_FACTORY = "todo_service.app:create_app"


def main() -> None:
    """Run Litestar's CLI on the service; a bad setting stops it with one line naming the variable."""
    os.environ.setdefault("LITESTAR_APP", APP_FACTORY)
    from litestar.cli.main import litestar_group  # noqa: PLC0415  (after LITESTAR_APP is set)

    try:
        litestar_group()
    except SettingsError as exc:
        sys.exit(f"todo-service: {exc}")
