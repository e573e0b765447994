"""Bodies of the health routes."""

from typing import Literal

import msgspec

__all__ = ("Health", "Readiness")


class Health(msgspec.Struct, frozen=True):
    """The process is up and serving."""

    status: Literal["ok"] = "ok"


class Readiness(msgspec.Struct, frozen=True, omit_defaults=True):
    """The service can serve: every required dependency answered.

    ``checks`` gives each dependency's outcome ("ok", or what went wrong). ``status`` is "ready"
    when every check passed, "degraded" when only optional ones failed (``degraded`` names them):
    the API still serves, with a fallback (Redis down: requests are served without rate limits, fail open).
    """

    checks: dict[str, str]
    status: Literal["ready", "degraded"]
    degraded: list[str] = msgspec.field(default_factory=list)
