"""Which text Proofdesk can store: one rule for every write path.

PostgreSQL's text columns refuse NUL characters, and no database can encode a lone
surrogate (JSON's `"\\ud800"` decodes to one). SQLite stores the NUL without a word, so a
path that forgot the check would work in development and answer 500 in production. The
importer, the grading form and API (comments, issue notes, skip notes, draft tab ids) and
the admin's forms all refuse such text before anything is written; the first two through
`text_problem` here, the admin through Django's own form fields.
"""

from __future__ import annotations


def unstorable_reason(value: str) -> str | None:
    """Why `value` cannot be stored in a text column whatever its length, or None."""
    if "\x00" in value:
        return "contains a NUL character"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "contains an unpaired surrogate (not valid Unicode)"
    return None


def text_problem(value: str, limit: int) -> str | None:
    """Why `value` cannot be stored as a text of at most `limit` characters, or None."""
    if len(value) > limit:
        return f"longer than {limit} characters ({len(value)})"
    return unstorable_reason(value)
