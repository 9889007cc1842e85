"""Fax transmission is pluggable: `settings.FAX_BACKEND` names a class with a `send`
method. The default needs no fax service: it leaves the PDF in the print queue for a
person to fax, which is what most practices do with a fax machine today."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from django.conf import settings
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from outreach.models import Letter


class FaxError(Exception):
    """A transmission failed in a way worth retrying (line busy, service down)."""


class FaxBackend(Protocol):
    def send(self, *, letter: Letter, pdf: bytes) -> str:
        """Transmit `pdf` to `letter.recipient` (the fax number) and return the letter's
        new status: `sent` when transmitted, `print_queue` when a person must do it.
        Raise FaxError for a failure that a retry may fix."""
        ...


class PrintQueueFaxBackend:
    def send(self, *, letter: Letter, pdf: bytes) -> str:
        from outreach.models import Letter

        return Letter.Status.PRINT_QUEUE


def fax_backend() -> FaxBackend:
    return import_string(settings.FAX_BACKEND)()
