"""Filters for the log: what a reader needs to see, once."""

from __future__ import annotations

import logging


class RefusalsWithoutTraceback(logging.Filter):
    """A request refused with a 4xx (a role without access, a page not found) is one line
    in the log: Django attaches the exception's traceback, which for an expected refusal
    is only noise that buries the errors that matter."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if isinstance(status, int) and 400 <= status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
