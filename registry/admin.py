from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from registry.forms import PracticeLocationForm
from registry.models import ImportJob, PracticeLocation, RegistryProvider, Taxonomy


@admin.register(Taxonomy)
class TaxonomyAdmin(admin.ModelAdmin):
    list_display = ["code", "grouping", "classification", "specialization", "section"]
    list_filter = ["section", "grouping"]
    search_fields = ["code", "classification", "specialization", "display_name"]


@admin.register(RegistryProvider)
class RegistryProviderAdmin(admin.ModelAdmin):
    list_display = ["npi", "display_name", "primary_taxonomy_code", "city", "state", "deactivated"]
    list_filter = ["entity_type", "deactivated"]
    # An exact NPI hits the unique index; a name search on millions of rows would not.
    search_fields = ["=npi"]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Public data, written only by the importer.
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(PracticeLocation)
class PracticeLocationAdmin(admin.ModelAdmin):
    form = PracticeLocationForm
    list_display = ["name", "city", "state", "zip_code", "latitude", "longitude"]


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = [
        "original_name",
        "kind",
        "status",
        "progress",
        "created_at",
        "imported",
        "rejected",
    ]
    readonly_fields = [f.name for f in ImportJob._meta.fields]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
