"""Building blocks for request and response bodies (msgspec structs, snake_case on the wire)."""

from typing import Annotated, Any

import msgspec

__all__ = (
    "FOLDS_CASE",
    "NON_BLANK",
    "NO_NUL",
    "PATTERN_MEANINGS",
    "Email",
    "MessageResponse",
    "Password",
    "PersonName",
    "RequestBody",
    "explain_pattern",
)

# PostgreSQL cannot store NUL characters in text: refuse them at the edge, not as a 500 later.
NO_NUL = r"^[^\x00]*$"
NON_BLANK = r"^[^\x00]*[^\x00\s][^\x00]*$"
EMAIL_PATTERN = r"^[^@\s\x00]+@[^@\s\x00]+\.[^@\s\x00]+$"

# What each pattern means, for validation messages.
PATTERN_MEANINGS: dict[str, str] = {}
# ``Meta(extra={FOLDS_CASE: True})``: the value is compared and stored lower-cased, so its length
# limit holds for the lower-cased value too ("İ" is one character, "i̇" two).
FOLDS_CASE = "folds_case"


def explain_pattern(pattern: str, meaning: str) -> str:
    """Register what ``pattern`` means for error messages; returns the pattern."""
    PATTERN_MEANINGS[pattern] = meaning
    return pattern


explain_pattern(NO_NUL, "without NUL characters")
explain_pattern(NON_BLANK, "that is not blank, without NUL characters")
explain_pattern(EMAIL_PATTERN, "that is an email address")

Email = Annotated[
    str,
    msgspec.Meta(
        min_length=3,
        max_length=255,
        pattern=EMAIL_PATTERN,
        description="An email address; compared case-insensitively and stored lower-cased.",
        examples=["ada@example.com"],
        extra={FOLDS_CASE: True},
    ),
]
PersonName = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=NON_BLANK, examples=["Ada"])]
Password = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=128,
        description="At least 8 characters with a lower-case letter, an upper-case letter and a digit.",
        examples=["Correct-Horse-42"],
    ),
]


class RequestBody(msgspec.Struct, forbid_unknown_fields=True):
    """Base for request bodies: an unknown field is a client mistake, answered with a 422."""

    def sent_fields(self) -> dict[str, Any]:
        """The fields the client actually sent (``None`` included), for partial updates.

        Advanced Alchemy's ``update`` cannot take structs that still hold ``UNSET``.
        """
        return {name: value for name in self.__struct_fields__ if (value := getattr(self, name)) is not msgspec.UNSET}


class MessageResponse(msgspec.Struct, frozen=True):
    """A confirmation with nothing else to return."""

    message: str
