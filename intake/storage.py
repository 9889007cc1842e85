"""Where referral documents live: a private directory with no URL of its own."""

from __future__ import annotations

import os

from django.conf import settings
from django.core.files.storage import FileSystemStorage


class PrivateStorage(FileSystemStorage):
    """Files under settings.PRIVATE_STORAGE_ROOT, outside STATIC_ROOT and MEDIA_ROOT, so no
    web server configuration can expose them by mistake. The only way out is the
    permission-checked, audited download view."""

    # Read from settings on every use (not cached like the parent's), so a changed
    # setting, e.g. a test's temporary directory, applies at once.
    @property
    def base_location(self) -> str:
        return str(settings.PRIVATE_STORAGE_ROOT)

    @property
    def location(self) -> str:
        return os.path.abspath(self.base_location)

    def url(self, name: str | None) -> str:
        raise ValueError("Private documents have no URL; link to the download view.")


def private_storage() -> PrivateStorage:
    return PrivateStorage()
