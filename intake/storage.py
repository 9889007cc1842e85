"""Where referral documents live: a private directory with no URL of its own."""

from __future__ import annotations

from django.conf import settings
from django.core.files.storage import FileSystemStorage


def private_storage() -> FileSystemStorage:
    # base_url=None: nothing in this storage can be linked to directly; the only way out
    # is the permission-checked download view. The directory is under VAR_DIR, outside
    # STATIC_ROOT and MEDIA_ROOT, so no web server configuration can expose it by mistake.
    return FileSystemStorage(location=settings.PRIVATE_STORAGE_ROOT, base_url=None)
