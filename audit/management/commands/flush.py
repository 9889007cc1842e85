"""Django's flush, let through the audit trail's append-only triggers (see audit.triggers).

Flush empties every table, the audit trail with the rest: an administrator's deliberate
wipe, and what test runners do between transactional tests. Everything else that tries to
delete audit rows is refused by the database."""

from __future__ import annotations

from typing import Any

from django.core.management.commands.flush import Command as DjangoFlush

from audit.triggers import audit_deletes_allowed


class Command(DjangoFlush):
    def handle(self, **options: Any) -> None:
        with audit_deletes_allowed(using=options["database"]):
            super().handle(**options)
