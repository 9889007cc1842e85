from django.urls import path

from registry import views

app_name = "registry"

urlpatterns = [
    path("finder/", views.finder, name="finder"),
    path("finder/add/", views.finder_add, name="finder_add"),
    path("finder/specialties/", views.specialty_typeahead, name="specialty_typeahead"),
    path("locations/", views.LocationList.as_view(), name="location_list"),
    path("locations/new/", views.LocationCreate.as_view(), name="location_create"),
    path("locations/<int:pk>/edit/", views.LocationUpdate.as_view(), name="location_update"),
    path("locations/<int:pk>/delete/", views.LocationDelete.as_view(), name="location_delete"),
    path("import/", views.import_upload, name="import"),
    path(
        "import/shared-patients/",
        views.import_shared_patients_upload,
        name="import_shared_patients",
    ),
    path("import/<int:pk>/", views.import_detail, name="import_detail"),
]
