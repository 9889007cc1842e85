from django.apps import AppConfig


class InteropConfig(AppConfig):
    name = "interop"
    verbose_name = "Interoperability (API and FHIR)"

    def ready(self) -> None:
        from interop.api import schema  # noqa: F401  (registers the token scheme and the filters)
