"""Logging filters named by LOGGING in proofdesk/settings.py."""

from __future__ import annotations

import logging


class OneLineClientErrors(logging.Filter):
    """A 4xx answer logged by `django.request` is one line: its reason, no traceback.

    Django logs a 403 or 404 with the exception that caused it, so every ordinary "not
    yours" printed a full traceback. The exception's message is kept on the line; server
    errors (5xx) keep their traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if status is not None and 400 <= status < 500 and record.exc_info:
            exception = record.exc_info[1]
            message = record.getMessage()
            if exception is not None and exception.args and isinstance(exception.args[0], str):
                message = f"{message} ({exception.args[0]})"
            record.msg, record.args = message, ()
            record.exc_info = record.exc_text = None
        return True
