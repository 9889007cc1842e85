from django.apps import AppConfig
from django.db.backends.signals import connection_created


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Patient data audit"

    def ready(self) -> None:
        from audit import roles  # noqa: F401  (registers the deploy check)
        from audit.triggers import register_sqlite_function

        connection_created.connect(register_sqlite_function, dispatch_uid="audit_sqlite_flag")
