"""Bodies of the health routes."""

from typing import Literal

import msgspec

__all__ = ("Health", "Readiness")


class Health(msgspec.Struct, frozen=True):
    """The process is up and serving."""

    status: Literal["ok"] = "ok"


class Readiness(msgspec.Struct, frozen=True):
    """Every dependency answered; ``checks`` names each one."""

    checks: dict[str, str]
    status: Literal["ready"] = "ready"
