"""Parsing of what experts type, shared by every kind of work (grades, reviews) and by the
API: each function takes a raw form or JSON value, returns the clean value or raises
`InputError` naming the field, before anything is written."""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from annotate.models import SCORES
from annotate.text import unstorable_reason

MAX_COMMENT_CHARS = 20_000
MAX_NOTE_CHARS = 5_000
MAX_SKIP_NOTE_CHARS = 2_000
MAX_ACTIVE_SECONDS = 7 * 24 * 3600
MAX_REVISION = 2**62


class InputError(ValueError):
    """Invalid input. `field` names the offending field (e.g. "score", "issues[2].quote")."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def parse_score(value: Any, *, required: bool = True, field: str = "score") -> Decimal | None:
    """0, 0.5 or 1 as number or string; None only when not required."""
    if value is None or value == "":
        if required:
            raise InputError(field, "Choose a score: 0, 0.5 or 1.")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise InputError(field, "The score must be 0, 0.5 or 1.")
    try:
        score = Decimal(str(value).strip())
    except InvalidOperation:
        raise InputError(field, "The score must be 0, 0.5 or 1.") from None
    if not score.is_finite() or score not in SCORES:
        raise InputError(field, "The score must be 0, 0.5 or 1.")
    return next(s for s in SCORES if s == score)


def parse_text(value: Any, field: str, label: str, max_chars: int) -> str:
    """Free text (a comment, a note, a reason): None is empty; at most `max_chars`."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(field, f"{label} must be text.")
    if len(value) > max_chars:
        raise InputError(field, f"{label} is longer than {max_chars} characters.")
    refuse_unstorable(value, field, label)
    return value


def parse_comment(value: Any) -> str:
    return parse_text(value, "comment", "The comment", MAX_COMMENT_CHARS)


def parse_active_seconds(value: Any) -> int:
    """Whole seconds of active time (an int, an integral float, or digits as text)."""
    if value is None or value == "":
        return 0
    seconds: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, float) and value.is_integer():
        seconds = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        seconds = int(value.strip())
    if seconds is None:
        raise InputError("active_seconds", "Active time must be a whole number of seconds.")
    if not 0 <= seconds <= MAX_ACTIVE_SECONDS:
        raise InputError("active_seconds", "Active time is out of range.")
    return seconds


def parse_revision(value: Any, field: str = "revision") -> int | None:
    """A draft revision: a whole number made by the page (None when not sent)."""
    if value is None or value == "":
        return None
    revision: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        revision = value
    elif isinstance(value, str) and value.strip().isdigit():
        revision = int(value.strip())
    if revision is None or not 0 <= revision <= MAX_REVISION:
        raise InputError(field, "The draft revision must be a whole number.")
    return revision


def parse_tab(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > 64:
        raise InputError("tab", "The tab id must be text of at most 64 characters.")
    refuse_unstorable(value, "tab", "The tab id")
    return value


def parse_version(value: Any) -> int:
    """The version of committed work an editor saw (an edit names it; see work/commit.py)."""
    if isinstance(value, bool):
        raise InputError("version", "The version you edited is required.")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InputError("version", "The version you edited is required.") from None


def refuse_unstorable(value: str, field: str, label: str) -> None:
    """Text no database column can hold (the rule: annotate/text.py) is an InputError."""
    reason = unstorable_reason(value)
    if reason:
        raise InputError(field, f"{label} {reason}; remove it and try again.")


def parse_submission_key(value: Any) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        raise InputError(
            "submission_key", "A submission key (a UUID made by the form) is required."
        ) from None
