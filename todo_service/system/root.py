"""``/``: a browser pointed at the service lands on the interactive docs (registered with the docs only)."""

from typing import Final

from litestar import get
from litestar.response import Redirect

from todo_service.core.request_context import RATE_LIMIT
from todo_service.http.openapi import DOCS_PATH
from todo_service.observability.traces import UNTRACED

__all__ = ("ROOT_REDIRECT_STATUS", "to_the_docs")

# 307, temporary: a browser does not remember it (a 308 would be cached for good, and keep sending
# people to a docs path that DOCS_ENABLED=false later removes); and the method is kept.
ROOT_REDIRECT_STATUS: Final = 307


@get(
    "/",
    exclude_from_auth=True,
    include_in_schema=False,  # not part of the API: a convenience for people
    status_code=ROOT_REDIRECT_STATUS,
    opt={RATE_LIMIT: False, UNTRACED: True},  # like the docs it leads to: not rate limited, not traced
    sync_to_thread=False,
)
def to_the_docs() -> Redirect:
    """Redirect to the interactive docs."""
    return Redirect(DOCS_PATH, status_code=ROOT_REDIRECT_STATUS)
