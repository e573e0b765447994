"""The live events' errors."""

from __future__ import annotations

from todo_service.core.errors import AppError, Unauthorized

__all__ = ("InvalidTicket", "TicketExpired", "TooManyStreams")


class TooManyStreams(AppError):
    """The user (or this server process) already holds as many open streams as it may."""

    status_code = 429
    error_code = "TOO_MANY_STREAMS"
    default_detail = "Too many open event streams: close one, or retry in a moment"


class InvalidTicket(Unauthorized):
    """The ``ticket`` is not a stream ticket this service issued (an access token is not one)."""

    error_code = "INVALID_TICKET"
    default_detail = "The stream ticket is invalid: get one from POST .../tasks/events/tokens"


class TicketExpired(Unauthorized):
    """The ticket's short lifetime has passed: get a new one."""

    error_code = "TICKET_EXPIRED"
    default_detail = "The stream ticket has expired: get a new one from POST .../tasks/events/tokens"
