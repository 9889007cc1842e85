from django.urls import path

from partners import history_views, import_views, vcard_views, views

app_name = "partners"

urlpatterns = [
    path("", views.provider_list, name="provider_list"),
    path("new/", views.provider_create, name="provider_create"),
    path("typeahead/", views.provider_typeahead, name="provider_typeahead"),
    path("export/", import_views.provider_export, name="provider_export"),
    path("import/", import_views.import_upload, name="import_upload"),
    path("import/<int:pk>/", import_views.import_detail, name="import_detail"),
    path("import/<int:pk>/columns/", import_views.import_mapping, name="import_mapping"),
    path("import/<int:pk>/apply/", import_views.import_apply, name="import_apply"),
    path("import/<int:pk>/rejects.csv", import_views.import_rejects, name="import_rejects"),
    path("<int:pk>/", views.provider_detail, name="provider_detail"),
    path("<int:pk>/edit/", views.provider_update, name="provider_update"),
    path(
        "<int:pk>/shared-patients/",
        views.provider_shared_patients,
        name="provider_shared_patients",
    ),
    path("<int:pk>/contact.vcf", vcard_views.provider_vcard, name="provider_vcard"),
    path("<int:pk>/tier/", views.provider_tier, name="provider_tier"),
    path("<int:pk>/tier/unpin/", views.provider_unpin_tier, name="provider_unpin_tier"),
    path("<int:pk>/merge/", views.provider_merge, name="provider_merge"),
    path("<int:pk>/changes/", history_views.provider_history, name="provider_history"),
    path("offices/", views.organization_list, name="organization_list"),
    path("offices/new/", views.organization_create, name="organization_create"),
    path("offices/<int:pk>/", views.organization_detail, name="organization_detail"),
    path("offices/<int:pk>/edit/", views.organization_update, name="organization_update"),
    path(
        "offices/<int:pk>/contacts.vcf", vcard_views.organization_vcard, name="organization_vcard"
    ),
    path("offices/<int:pk>/merge/", views.organization_merge, name="organization_merge"),
    path(
        "offices/<int:pk>/changes/",
        history_views.organization_history,
        name="organization_history",
    ),
    path("offices/<int:organization_pk>/staff/new/", views.staff_create, name="staff_create"),
    path("staff/<int:pk>/edit/", views.staff_update, name="staff_update"),
    path("staff/<int:pk>/changes/", history_views.staff_history, name="staff_history"),
    path(
        "offices/<int:organization_pk>/removed-staff/<int:pk>/changes/",
        history_views.removed_staff_history,
        name="removed_staff_history",
    ),
]
