from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from core.database import install_replanning
        from core.roles import sync_roles_after_migrate

        # Postgres: a prepared statement made stale by a migration is planned again.
        connection_created.connect(install_replanning)
        post_migrate.connect(sync_roles_after_migrate, sender=self)
